//! `POST /v1/messages` and `POST /v1/messages/count_tokens`.

use crate::common::{lorem, ok_json, read_stream, start};
use serde_json::{Value, json};

/// system (14 chars) + one user message (18 chars): ceil(32 / 4) + 1 = 9 input tokens.
fn request(user: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": user}],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn non_streaming_shape_and_usage() {
    let s = start().await;
    let response = s.anthropic("/v1/messages", &request("Hello there, mock!", json!({}))).await;
    assert!(response.headers().contains_key("request-id"));
    let body = ok_json(response).await;
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-20250514");
    assert_eq!(body["content"], json!([{"type": "text", "text": lorem(16)}]));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    let usage = &body["usage"];
    assert_eq!(usage["input_tokens"], 9);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(usage["output_tokens"], 16);
}

#[tokio::test]
async fn streaming_sequence_matches_non_streaming() {
    let s = start().await;
    let stream = read_stream(
        s.anthropic(
            "/v1/messages?beta=true",
            &request("Hello there, mock! [[mock:tokens:4]]", json!({"stream": true})),
        )
        .await,
    )
    .await;
    assert!(!stream.broken);
    assert_eq!(
        stream.names(),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let datas = stream.datas();
    for (event, data) in stream.events.iter().zip(&datas) {
        assert_eq!(data["type"], event.event.as_deref().unwrap());
    }
    let message = &datas[0]["message"];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["content"], json!([]));
    assert_eq!(message["stop_reason"], Value::Null);
    // 14 + 36 chars -> 13, + 1 message.
    assert_eq!(message["usage"]["input_tokens"], 14);
    assert_eq!(message["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(message["usage"]["output_tokens"], 1);
    assert_eq!(datas[2]["content_block"], json!({"type": "text", "text": ""}));
    let text: String = datas[3..7]
        .iter()
        .map(|d| {
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, lorem(4));
    assert_eq!(datas[7]["index"], 0);
    assert_eq!(datas[8]["delta"], json!({"stop_reason": "end_turn", "stop_sequence": null}));
    assert_eq!(datas[8]["usage"]["output_tokens"], 4);

    let plain =
        ok_json(s.anthropic("/v1/messages", &request("Hello there, mock! [[mock:tokens:4]]", json!({}))).await).await;
    assert_eq!(plain["content"][0]["text"], text);
    assert_eq!(plain["usage"]["input_tokens"], 14);
}

#[tokio::test]
async fn max_tokens_cap() {
    let s = start().await;
    let body = ok_json(s.anthropic("/v1/messages", &request("x", json!({"max_tokens": 3}))).await).await;
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["content"][0]["text"], lorem(3));
    assert_eq!(body["usage"]["output_tokens"], 3);

    let stream =
        read_stream(s.anthropic("/v1/messages", &request("x", json!({"max_tokens": 3, "stream": true}))).await).await;
    let delta = &stream.datas()[stream.events.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn missing_max_tokens_is_a_400() {
    let s = start().await;
    let mut body = request("x", json!({}));
    body.as_object_mut().unwrap().remove("max_tokens");
    let response = s.anthropic("/v1/messages", &body).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("max_tokens"));
}

#[tokio::test]
async fn cache_directives_are_excluded_from_input_tokens() {
    let s = start().await;
    let user = "[[mock:cached:300]][[mock:cache_write:40]]";
    let body = ok_json(s.anthropic("/v1/messages", &request(user, json!({}))).await).await;
    // 14 + 42 chars -> 14, + 1 message.
    assert_eq!(body["usage"]["input_tokens"], 15);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 300);
    assert_eq!(body["usage"]["cache_creation_input_tokens"], 40);

    let stream = read_stream(s.anthropic("/v1/messages", &request(user, json!({"stream": true}))).await).await;
    let usage = &stream.datas()[0]["message"]["usage"];
    assert_eq!(usage["input_tokens"], 15);
    assert_eq!(usage["cache_read_input_tokens"], 300);
    assert_eq!(usage["cache_creation_input_tokens"], 40);
}

fn tools() -> Value {
    json!({"tools": [
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}},
        {"name": "other", "input_schema": {"type": "object"}},
    ]})
}

#[tokio::test]
async fn tool_directive() {
    let s = start().await;
    let body = ok_json(s.anthropic("/v1/messages", &request("[[mock:tool]]", tools())).await).await;
    assert_eq!(body["stop_reason"], "tool_use");
    let content = body["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["type"], "text");
    assert!(!content[0]["text"].as_str().unwrap().is_empty());
    assert_eq!(content[1]["type"], "tool_use");
    assert!(content[1]["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(content[1]["name"], "get_weather");
    assert_eq!(content[1]["input"], json!({"location": "Paris", "unit": "celsius"}));
    assert_eq!(body["usage"]["output_tokens"], 12);

    let mut streamed = request("[[mock:tool]]", tools());
    streamed["stream"] = json!(true);
    let stream = read_stream(s.anthropic("/v1/messages", &streamed).await).await;
    let datas = stream.datas();
    let starts: Vec<&Value> = datas.iter().filter(|d| d["type"] == "content_block_start").collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(starts[1]["content_block"]["type"], "tool_use");
    assert_eq!(starts[1]["content_block"]["input"], json!({}));
    let text: String = datas
        .iter()
        .filter(|d| d["delta"]["type"] == "text_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, content[0]["text"].as_str().unwrap());
    let partial: String = datas
        .iter()
        .filter(|d| d["delta"]["type"] == "input_json_delta")
        .map(|d| {
            assert_eq!(d["index"], 1);
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&partial).unwrap(), content[1]["input"]);
    let delta = &datas[datas.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 12);
}

#[tokio::test]
async fn thinking_directive() {
    let s = start().await;
    let body =
        ok_json(s.anthropic("/v1/messages", &request("[[mock:thinking]] [[mock:tokens:2]]", json!({}))).await).await;
    let content = body["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking");
    let thinking = content[0]["thinking"].as_str().unwrap();
    let signature = content[0]["signature"].as_str().unwrap();
    assert!(!thinking.is_empty() && !signature.is_empty());
    assert_eq!(content[1], json!({"type": "text", "text": lorem(2)}));
    // Thinking words count as output: 8 + 2.
    assert_eq!(body["usage"]["output_tokens"], 10);

    let stream = read_stream(
        s.anthropic("/v1/messages", &request("[[mock:thinking]] [[mock:tokens:2]]", json!({"stream": true}))).await,
    )
    .await;
    let datas = stream.datas();
    assert_eq!(datas[2]["content_block"]["type"], "thinking");
    let streamed_thinking: String = datas
        .iter()
        .filter(|d| d["delta"]["type"] == "thinking_delta")
        .map(|d| d["delta"]["thinking"].as_str().unwrap())
        .collect();
    assert_eq!(streamed_thinking, thinking);
    let signatures: Vec<&Value> = datas.iter().filter(|d| d["delta"]["type"] == "signature_delta").collect();
    assert_eq!(signatures.len(), 1);
    assert_eq!(signatures[0]["delta"]["signature"], signature);
    assert_eq!(signatures[0]["index"], 0);
    let text_start = datas.iter().find(|d| d["type"] == "content_block_start" && d["index"] == 1).unwrap();
    assert_eq!(text_start["content_block"]["type"], "text");
    assert_eq!(datas[datas.len() - 2]["usage"]["output_tokens"], 10);

    // Thinking spends part of max_tokens.
    let body =
        ok_json(s.anthropic("/v1/messages", &request("[[mock:thinking]]", json!({"max_tokens": 11}))).await).await;
    assert_eq!(body["content"][1]["text"], lorem(3));
    assert_eq!(body["usage"]["output_tokens"], 11);
    assert_eq!(body["stop_reason"], "max_tokens");
}

#[tokio::test]
async fn error_directive_types() {
    let s = start().await;
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let response = s.anthropic("/v1/messages", &request(&format!("[[mock:error:{status}]]"), json!({}))).await;
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind, "{status}");
        assert!(body["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn midstream_error_and_break() {
    let s = start().await;
    let stream =
        read_stream(s.anthropic("/v1/messages", &request("[[mock:midstream_error]]", json!({"stream": true}))).await)
            .await;
    assert!(!stream.broken);
    assert_eq!(
        stream.names(),
        ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta", "error",]
    );
    let error = stream.datas().pop().unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error", "{error}");
    assert_eq!(error["type"], "error");

    let stream =
        read_stream(s.anthropic("/v1/messages", &request("[[mock:break:2]]", json!({"stream": true}))).await).await;
    assert!(stream.broken);
    assert_eq!(
        stream.names(),
        ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",]
    );
}

#[tokio::test]
async fn count_tokens() {
    let s = start().await;
    let body = ok_json(
        s.anthropic(
            "/v1/messages/count_tokens",
            &json!({
                "model": "claude-sonnet-4-20250514",
                "system": "You are terse.",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there, mock!"}]}],
            }),
        )
        .await,
    )
    .await;
    assert_eq!(body, json!({"input_tokens": 9}));
}
