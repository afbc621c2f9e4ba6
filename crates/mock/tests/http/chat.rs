//! `POST /v1/chat/completions`.

use crate::common::{lorem, ok_json, read_stream, start, start_with};
use serde_json::{Value, json};
use spendgate_mock::MockConfig;
use std::time::{Duration, Instant};

/// 14 + 18 characters in 2 messages: ceil(32 / 4) + 2 = 10 input tokens.
fn request(user: &str) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": user},
        ],
    })
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn non_streaming_shape_and_usage() {
    let s = start().await;
    let response = s.openai("/v1/chat/completions", &request("Hello there, mock!")).await;
    assert!(response.headers().contains_key("x-request-id"));
    let body = ok_json(response).await;
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-4o-mini");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": lorem(16), "refusal": null, "annotations": []})
    );
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], 10);
    assert_eq!(usage["completion_tokens"], 16);
    assert_eq!(usage["total_tokens"], 26);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn content_parts_and_config_output_tokens() {
    let s = start_with(MockConfig { output_tokens: 3, ..MockConfig::default() }).await;
    // Parts: only text counts (8 chars); images do not. ceil(8 / 4) + 1 = 3.
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "abcd"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "efgh"},
    ]}]});
    let body = ok_json(s.openai("/v1/chat/completions", &body).await).await;
    assert_eq!(body["choices"][0]["message"]["content"], "lorem ipsum dolor ");
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(body["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn streaming_matches_non_streaming_without_usage() {
    let s = start().await;
    let stream = read_stream(
        s.openai("/v1/chat/completions", &with(request("Hi [[mock:tokens:5]]"), json!({"stream": true}))).await,
    )
    .await;
    assert!(!stream.broken);
    assert!(stream.events.iter().all(|e| e.event.is_none()), "no event: names");
    assert_eq!(stream.events.last().unwrap().data, "[DONE]");
    let chunks = stream.datas();
    // role chunk, 5 content chunks, finish chunk.
    assert_eq!(chunks.len(), 7);
    let id = chunks[0]["id"].as_str().unwrap();
    for chunk in &chunks {
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-4o-mini");
        assert!(chunk.get("usage").is_none(), "no usage key without include_usage");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": "", "refusal": null}));
    let text: String = chunks[1..6].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert_eq!(text, lorem(5));
    for chunk in &chunks[..6] {
        assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
    }
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");

    let plain = ok_json(s.openai("/v1/chat/completions", &request("Hi [[mock:tokens:5]]")).await).await;
    assert_eq!(plain["choices"][0]["message"]["content"], text);
}

#[tokio::test]
async fn streaming_with_include_usage() {
    let s = start().await;
    let body = with(request("Hello there, mock!"), json!({"stream": true, "stream_options": {"include_usage": true}}));
    let stream = read_stream(s.openai("/v1/chat/completions", &body).await).await;
    let chunks = stream.datas();
    assert_eq!(chunks.len(), 1 + 16 + 1 + 1);
    for chunk in &chunks[..chunks.len() - 1] {
        assert_eq!(chunk["usage"], Value::Null);
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 10);
    assert_eq!(last["usage"]["completion_tokens"], 16);
    assert_eq!(last["usage"]["total_tokens"], 26);
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(stream.events.last().unwrap().data, "[DONE]");

    // include_usage: false is the same as absent.
    let body = with(request("x"), json!({"stream": true, "stream_options": {"include_usage": false}}));
    let stream = read_stream(s.openai("/v1/chat/completions", &body).await).await;
    assert!(stream.datas().iter().all(|c| c.get("usage").is_none()));
}

#[tokio::test]
async fn max_tokens_cap() {
    let s = start().await;
    let capped = ok_json(s.openai("/v1/chat/completions", &with(request("x"), json!({"max_tokens": 4}))).await).await;
    assert_eq!(capped["choices"][0]["finish_reason"], "length");
    assert_eq!(capped["choices"][0]["message"]["content"], lorem(4));
    assert_eq!(capped["usage"]["completion_tokens"], 4);

    // max_completion_tokens wins over max_tokens.
    let body = with(request("x [[mock:tokens:10]]"), json!({"max_tokens": 2, "max_completion_tokens": 7}));
    let capped = ok_json(s.openai("/v1/chat/completions", &body).await).await;
    assert_eq!(capped["usage"]["completion_tokens"], 7);
    assert_eq!(capped["choices"][0]["finish_reason"], "length");

    // A cap at or above the wanted count changes nothing.
    let body = with(request("x [[mock:tokens:3]]"), json!({"max_completion_tokens": 3}));
    let exact = ok_json(s.openai("/v1/chat/completions", &body).await).await;
    assert_eq!(exact["choices"][0]["finish_reason"], "stop");

    // Streamed: the finish chunk says length too.
    let body = with(request("x"), json!({"max_tokens": 2, "stream": true, "stream_options": {"include_usage": true}}));
    let chunks = read_stream(s.openai("/v1/chat/completions", &body).await).await.datas();
    assert_eq!(chunks.len(), 1 + 2 + 1 + 1);
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[4]["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn cached_directive_is_included_in_prompt_tokens() {
    let s = start().await;
    // Directives are read from the LAST user message only.
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "[[mock:tokens:99]]"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "[[mock:cached:100]] [[mock:cache_write:5]] [[mock:tokens:2]]"},
    ]});
    // 18 + 2 + 60 = 80 chars -> 20, + 3 messages = 23 input tokens.
    let body = ok_json(s.openai("/v1/chat/completions", &body).await).await;
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], 123);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 100);
    assert_eq!(usage["completion_tokens"], 2);
    assert_eq!(usage["total_tokens"], 125);
}

fn tool_request(stream: bool) -> Value {
    json!({
        "model": "gpt-4o",
        "stream": stream,
        "messages": [{"role": "user", "content": "Weather? [[mock:tool]]"}],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "other"}},
        ],
    })
}

#[tokio::test]
async fn tool_directive() {
    let s = start().await;
    let body = ok_json(s.openai("/v1/chat/completions", &tool_request(false)).await).await;
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments = call["function"]["arguments"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(arguments).unwrap(), json!({"location": "Paris", "unit": "celsius"}));
    assert_eq!(body["usage"]["completion_tokens"], 12);

    let chunks = read_stream(s.openai("/v1/chat/completions", &tool_request(true)).await).await.datas();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let first = &chunks[1]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["index"], 0);
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(first["type"], "function");
    assert_eq!(first["function"], json!({"name": "get_weather", "arguments": ""}));
    let mut streamed = String::new();
    for chunk in &chunks[2..chunks.len() - 1] {
        let call = &chunk["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["index"], 0);
        assert!(call.get("id").is_none());
        streamed.push_str(call["function"]["arguments"].as_str().unwrap());
    }
    assert_eq!(streamed, arguments);
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn error_directive() {
    let s = start().await;
    let response = s.openai("/v1/chat/completions", &request("[[mock:error:429]]")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after-ms"], "10");
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_object().unwrap();
    assert_eq!(error.len(), 4, "message, type, param, code: {body}");
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["param"], Value::Null);
    assert!(error["message"].as_str().unwrap().contains("rate limit"));

    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "invalid_request_error"),
        (404, "invalid_request_error"),
        (500, "server_error"),
        (529, "server_error"),
    ] {
        // An error directive wins over streaming: the answer is a plain JSON error.
        let body = with(request(&format!("[[mock:error:{status}]]")), json!({"stream": true}));
        let response = s.openai("/v1/chat/completions", &body).await;
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], kind, "{status}");
    }
}

#[tokio::test]
async fn midstream_error() {
    let s = start().await;
    let body =
        with(request("[[mock:midstream_error]]"), json!({"stream": true, "stream_options": {"include_usage": true}}));
    let stream = read_stream(s.openai("/v1/chat/completions", &body).await).await;
    assert!(!stream.broken);
    let chunks = stream.datas();
    // role, 2 content chunks, the error; no finish, usage or [DONE].
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "lorem ");
    assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "ipsum ");
    assert_eq!(chunks[3]["error"]["type"], "server_error");
    assert!(stream.events.iter().all(|e| e.data != "[DONE]"));
}

#[tokio::test]
async fn break_aborts_the_connection() {
    let s = start().await;
    let body = with(request("[[mock:break:3]]"), json!({"stream": true, "stream_options": {"include_usage": true}}));
    let stream = read_stream(s.openai("/v1/chat/completions", &body).await).await;
    assert!(stream.broken, "the body must end in an error");
    let chunks = stream.datas();
    assert_eq!(chunks.len(), 4, "role chunk + 3 content chunks");
    assert!(chunks.iter().all(|c| c["usage"].is_null()));
    assert!(stream.events.iter().all(|e| e.data != "[DONE]"));

    // break is streaming only: a non-streamed request is answered whole.
    let body = ok_json(s.openai("/v1/chat/completions", &request("[[mock:break:3]]")).await).await;
    assert_eq!(body["usage"]["completion_tokens"], 16);
}

#[tokio::test]
async fn slow_directive_and_chunk_delay() {
    let s = start().await;
    let body = with(request("[[mock:slow:40]] [[mock:tokens:3]]"), json!({"stream": true}));
    let started = Instant::now();
    let stream = read_stream(s.openai("/v1/chat/completions", &body).await).await;
    // 6 events (role, 3 tokens, finish, [DONE]): 5 gaps of 40 ms.
    assert_eq!(stream.events.len(), 6);
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());

    let s = start_with(MockConfig { chunk_delay_ms: 30, latency_ms: 100, ..MockConfig::default() }).await;
    let started = Instant::now();
    ok_json(s.openai("/v1/chat/completions", &request("x")).await).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    let started = Instant::now();
    let body = with(request("[[mock:tokens:2]]"), json!({"stream": true}));
    read_stream(s.openai("/v1/chat/completions", &body).await).await;
    // latency + 4 gaps (role, 2 tokens, finish, [DONE]).
    assert!(started.elapsed() >= Duration::from_millis(100 + 4 * 30));
}

#[tokio::test]
async fn required_fields() {
    let s = start().await;
    let response = s.openai("/v1/chat/completions", &json!({"model": "gpt-4o"})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "messages");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}
