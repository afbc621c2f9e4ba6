//! `POST /v1/responses`.

use crate::common::{lorem, ok_json, read_stream, start};
use serde_json::{Value, json};

/// instructions (14 chars) + input string (18 chars, 1 message): 8 + 1 = 9 tokens.
fn request(input: &str, extra: Value) -> Value {
    let mut body = json!({"model": "gpt-4.1", "instructions": "You are terse.", "input": input});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn non_streaming_shape_and_usage() {
    let s = start().await;
    let body = ok_json(s.openai("/v1/responses", &request("Hello there, mock!", json!({}))).await).await;
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["object"], "response");
    assert!(body["created_at"].as_u64().is_some());
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-4.1");
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["incomplete_details"], Value::Null);
    assert_eq!(body["instructions"], "You are terse.");
    assert_eq!(body["parallel_tool_calls"], true);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"], json!([]));
    assert_eq!(body["metadata"], json!({}));
    assert_eq!(body["temperature"], 1.0);
    assert_eq!(body["top_p"], 1.0);
    assert_eq!(body["text"]["format"]["type"], "text");
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    let item = &output[0];
    assert_eq!(item["type"], "message");
    assert!(item["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(item["status"], "completed");
    assert_eq!(item["role"], "assistant");
    assert_eq!(item["content"][0]["type"], "output_text");
    assert_eq!(item["content"][0]["text"], lorem(16));
    assert_eq!(item["content"][0]["annotations"], json!([]));
    assert_eq!(
        body["usage"],
        json!({
            "input_tokens": 9,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 16,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 25,
        })
    );
}

#[tokio::test]
async fn input_items_and_cached() {
    let s = start().await;
    // Items: 2 messages + a function_call_output (its output counts) = 3 messages;
    // chars: 4 + 2 + 36 = 42 -> 11; + 3 = 14; cached 50 is added: 64.
    let body = json!({
        "model": "gpt-4.1",
        "input": [
            {"role": "user", "content": "abcd"},
            {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "[[mock:cached:50]] [[mock:tokens:3]]"}
            ]},
        ],
    });
    let body = ok_json(s.openai("/v1/responses", &body).await).await;
    assert_eq!(body["usage"]["input_tokens"], 14 + 50);
    assert_eq!(body["usage"]["input_tokens_details"]["cached_tokens"], 50);
    assert_eq!(body["usage"]["output_tokens"], 3);
    assert_eq!(body["output"][0]["content"][0]["text"], lorem(3));
}

#[tokio::test]
async fn streaming_sequence() {
    let s = start().await;
    let stream =
        read_stream(s.openai("/v1/responses", &request("Hi [[mock:tokens:3]]", json!({"stream": true}))).await).await;
    assert!(!stream.broken);
    assert_eq!(
        stream.names(),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let datas = stream.datas();
    for (i, (event, data)) in stream.events.iter().zip(&datas).enumerate() {
        assert_eq!(data["type"], event.event.as_deref().unwrap());
        assert_eq!(data["sequence_number"], i);
    }
    assert_eq!(datas[0]["response"]["status"], "in_progress");
    assert_eq!(datas[0]["response"]["output"], json!([]));
    let item_id = datas[2]["item"]["id"].as_str().unwrap();
    assert_eq!(datas[2]["item"]["type"], "message");
    let text: String = datas[4..7]
        .iter()
        .map(|d| {
            assert_eq!(d["item_id"], item_id);
            assert_eq!(d["output_index"], 0);
            assert_eq!(d["content_index"], 0);
            d["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, lorem(3));
    assert_eq!(datas[7]["text"], text);
    assert_eq!(datas[8]["part"]["text"], text);
    assert_eq!(datas[9]["item"]["content"][0]["text"], text);
    let done = &datas[10]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], text);
    assert_eq!(done["usage"]["output_tokens"], 3);

    let plain = ok_json(s.openai("/v1/responses", &request("Hi [[mock:tokens:3]]", json!({}))).await).await;
    assert_eq!(plain["output"][0]["content"][0]["text"], text);
    assert_eq!(plain["usage"]["input_tokens"], done["usage"]["input_tokens"]);
}

#[tokio::test]
async fn max_output_tokens_makes_it_incomplete() {
    let s = start().await;
    let body = ok_json(s.openai("/v1/responses", &request("x", json!({"max_output_tokens": 5}))).await).await;
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(body["max_output_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 5);
    assert_eq!(body["output"][0]["status"], "incomplete");

    let stream =
        read_stream(s.openai("/v1/responses", &request("x", json!({"max_output_tokens": 2, "stream": true}))).await)
            .await;
    assert_eq!(*stream.names().last().unwrap(), "response.incomplete");
    let last = stream.datas().pop().unwrap();
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(last["response"]["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn tool_directive() {
    let s = start().await;
    let tools = json!({"tools": [
        {"type": "web_search"},
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
    ]});
    let body = ok_json(s.openai("/v1/responses", &request("[[mock:tool]]", tools.clone())).await).await;
    let item = &body["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "get_weather");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(item["status"], "completed");
    let arguments = item["arguments"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(arguments).unwrap(), json!({"location": "Paris", "unit": "celsius"}));
    assert_eq!(body["usage"]["output_tokens"], 12);
    assert_eq!(body["tools"], tools["tools"]);

    let mut streamed = request("[[mock:tool]]", tools);
    streamed["stream"] = json!(true);
    let stream = read_stream(s.openai("/v1/responses", &streamed).await).await;
    assert_eq!(
        stream.names(),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let datas = stream.datas();
    assert_eq!(datas[2]["item"]["type"], "function_call");
    assert_eq!(datas[2]["item"]["arguments"], "");
    let joined: String = datas[3..7].iter().map(|d| d["delta"].as_str().unwrap()).collect();
    assert_eq!(joined, arguments);
    assert_eq!(datas[7]["arguments"], arguments);
    assert_eq!(datas[9]["response"]["output"][0]["arguments"], arguments);
}

#[tokio::test]
async fn stream_interruptions() {
    let s = start().await;
    let stream =
        read_stream(s.openai("/v1/responses", &request("[[mock:midstream_error]]", json!({"stream": true}))).await)
            .await;
    assert!(!stream.broken);
    let names = stream.names();
    assert_eq!(names.len(), 4 + 2 + 1);
    assert_eq!(names[4..6], ["response.output_text.delta"; 2]);
    assert_eq!(names[6], "error");
    let error = stream.datas().pop().unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["sequence_number"], 6);
    assert_eq!(error["code"], "server_error");

    let stream =
        read_stream(s.openai("/v1/responses", &request("[[mock:break:1]]", json!({"stream": true}))).await).await;
    assert!(stream.broken);
    assert_eq!(stream.names().len(), 5);
    assert_eq!(stream.names()[4], "response.output_text.delta");

    let response = s.openai("/v1/responses", &request("[[mock:error:404]]", json!({}))).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
}
