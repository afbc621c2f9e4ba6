//! Cross-format traffic over real HTTP: OpenAI clients on Claude models and Anthropic
//! clients on GPT models, answers and streams in the client's own format, usage metered
//! in the provider's native figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Gateway;
use serde_json::{Value, json};
use spendgate_core::Usd;
use spendgate_mock::MockConfig;

const MINI: &str = "gpt-4o-mini";
const SONNET: &str = "claude-sonnet-4-20250514";

fn data_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// (event name, data) pairs of an Anthropic-style stream.
fn events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((std::mem::take(&mut name), serde_json::from_str(d).unwrap()));
        }
    }
    out
}

async fn stream_text(gw: &Gateway, path: &str, auth: (&str, &str), body: &Value) -> String {
    gw.http
        .post(format!("{}{path}", gw.url))
        .header(auth.0, auth.1)
        .json(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_openai_client_on_claude() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (id, key) = gw.key(json!({"name": "oa", "allowed_models": [SONNET]})).await;

    // Text, with cache figures: the record holds Anthropic's native numbers.
    let r = gw
        .call("/v1/chat/completions", &key, Gateway::chat(SONNET, "[[mock:tokens:5]] [[mock:cached:30]] hello"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["object"], "chat.completion");
    assert_eq!(r.body["choices"][0]["message"]["content"], "lorem ipsum dolor sit amet ");
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");
    let sent = gw.mock.recorded().pop().unwrap();
    assert_eq!(sent.path, "/v1/messages", "sent to Anthropic's endpoint");
    assert_eq!(sent.body["max_tokens"], 64000, "no max given: the model's maximum");
    let record = gw.records(&id).await.remove(0); // newest first
    assert_eq!((record.usage.cached_input, record.usage.output), (30, 5));
    let prompt = r.body["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(prompt, record.usage.input + 30, "prompt_tokens includes the cache reads, counted once");
    assert_eq!(r.body["usage"]["prompt_tokens_details"]["cached_tokens"], 30);
    // Nano-dollars per token: $3 per million = 3,000; $0.30 = 300; $15 = 15,000.
    let expected = record.usage.input as i64 * 3_000 + 30 * 300 + 5 * 15_000;
    assert_eq!(record.cost, Usd::from_nanos(expected));

    // Streamed with include_usage, and a tool call.
    let body = json!({"model": SONNET, "stream": true, "stream_options": {"include_usage": true},
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}],
        "messages": [{"role": "user", "content": "[[mock:tool]] weather?"}]});
    let text = stream_text(&gw, "/v1/chat/completions", ("authorization", &format!("Bearer {key}")), &body).await;
    assert!(!text.contains("event:"), "OpenAI clients get data-only streams");
    assert!(text.trim_end().ends_with("data: [DONE]"));
    let chunks = data_lines(&text);
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"location": "Paris", "unit": "celsius"}));
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 12);

    // The tool-result follow-up turn reaches Anthropic as tool_result blocks.
    let follow = json!({"model": SONNET, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}],
        "tools": [{"type": "function", "function": {"name": "get_weather"}}]});
    assert_eq!(gw.call("/v1/chat/completions", &key, follow).await.status, 200);
    let sent = gw.mock.recorded().pop().unwrap().body;
    assert_eq!(
        sent["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"})
    );

    // Something Anthropic cannot do is a 400 naming it, in OpenAI's format.
    let mut n2 = Gateway::chat(SONNET, "hi");
    n2["n"] = json!(2);
    let r = gw.call("/v1/chat/completions", &key, n2).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("n")));

    // A provider error comes back in OpenAI's format.
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(SONNET, "[[mock:error:529]]")).await;
    assert_eq!(r.status, 529);
    assert_eq!(r.body["error"]["type"], "server_error");
    assert!(r.body["error"]["message"].is_string());

    // The Responses API is OpenAI's own.
    let r = gw.call("/v1/responses", &key, json!({"model": SONNET, "input": "hi"})).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("/v1/chat/completions"));
}

#[tokio::test]
async fn an_anthropic_client_on_gpt() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (id, key) = gw.key(json!({"name": "an", "request_shape": "anthropic"})).await;

    let r = gw
        .send_raw(gw.http.post(format!("{}/v1/messages", gw.url)).header("x-api-key", &key).json(&Gateway::message(
            MINI,
            "[[mock:tokens:4]] [[mock:cached:20]] hi",
            100,
        )))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["type"], "message");
    assert_eq!(r.body["content"][0], json!({"type": "text", "text": "lorem ipsum dolor sit "}));
    assert_eq!(r.body["stop_reason"], "end_turn");
    assert_eq!(r.body["usage"]["cache_read_input_tokens"], 20);
    let sent = gw.mock.recorded().pop().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["max_completion_tokens"], 100);
    let record = gw.records(&id).await.remove(0); // newest first
    assert_eq!((record.usage.cached_input, record.usage.output), (20, 4));
    assert_eq!(r.body["usage"]["input_tokens"].as_u64().unwrap(), record.usage.input, "input excludes the cache reads");

    // Streamed, the way Claude Code asks (thinking, a beta field, a query string).
    let body = json!({"model": MINI, "max_tokens": 2000, "stream": true, "thinking": {"type": "adaptive"},
        "context_management": {"edits": []},
        "messages": [{"role": "user", "content": "[[mock:tokens:6]] hello"}]});
    let resp = gw
        .http
        .post(format!("{}/v1/messages?beta=true", gw.url))
        .header("x-api-key", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let dropped = resp.headers().get("x-spendgate-dropped").unwrap().to_str().unwrap().to_string();
    let mut dropped: Vec<&str> = dropped.split(", ").collect();
    dropped.sort_unstable();
    assert_eq!(dropped, ["context_management", "thinking"]);
    let evs = events(&resp.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], &["message_delta", "message_stop"]);
    assert!(evs.iter().all(|(n, d)| !n.is_empty() && d["type"] == *n), "every event is named");
    let start_input = evs[0].1["message"]["usage"]["input_tokens"].as_u64().unwrap();
    assert!(start_input > 0, "message_start carries a non-zero input figure");
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["usage"]["output_tokens"], 6);
    let text: String = evs.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect();
    assert_eq!(text, "lorem ipsum dolor sit amet consectetur ");
    let record = gw.records(&id).await.remove(0); // newest first
    assert_eq!(
        delta["usage"]["input_tokens"].as_u64().unwrap(),
        record.usage.input,
        "the real input count in message_delta"
    );

    // A tool call, streamed: one tool_use block with the arguments as input_json_delta.
    let body = json!({"model": MINI, "max_tokens": 100, "stream": true,
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "[[mock:tool]] weather?"}]});
    let evs = events(&stream_text(&gw, "/v1/messages", ("x-api-key", &key), &body).await);
    let start =
        evs.iter().find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use").unwrap();
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    let index = &start.1["index"];
    let json_text: String = evs
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["index"] == *index)
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&json_text).unwrap(), json!({"location": "Paris", "unit": "celsius"}));
    assert_eq!(evs.iter().find(|(n, _)| n == "message_delta").unwrap().1["delta"]["stop_reason"], "tool_use");

    // count_tokens on a GPT model: an estimate, not billed.
    let r = gw
        .send_raw(
            gw.http
                .post(format!("{}/v1/messages/count_tokens", gw.url))
                .header("x-api-key", &key)
                .json(&json!({"model": MINI, "messages": [{"role": "user", "content": "count these words please"}]})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.header("x-spendgate-estimated"), Some("true"));

    // top_k has no OpenAI equivalent: 400 in Anthropic's format.
    let mut b = Gateway::message(MINI, "hi", 10);
    b["top_k"] = json!(5);
    let r = gw.send_raw(gw.http.post(format!("{}/v1/messages", gw.url)).header("x-api-key", &key).json(&b)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["type"], "error");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("top_k"));

    // A provider error comes back in Anthropic's format.
    let r = gw
        .send_raw(gw.http.post(format!("{}/v1/messages", gw.url)).header("x-api-key", &key).json(&Gateway::message(
            MINI,
            "[[mock:error:429]]",
            10,
        )))
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.body,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": r.body["error"]["message"]}})
    );
}
