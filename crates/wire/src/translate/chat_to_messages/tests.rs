use super::*;
use crate::sse::Parser;
use proptest::prelude::*;

fn req(body: Value) -> Value {
    request(&body, 4096).unwrap().body
}

fn ctx(include_usage: bool) -> Context {
    Context { model: "claude-sonnet-4-20250514".into(), created: 1_795_425_696, include_usage, ..Context::default() }
}

#[test]
fn system_and_developer_messages_become_system_blocks_in_order() {
    insta::assert_json_snapshot!(req(json!({
        "model": "claude-sonnet-4-20250514",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Again"}
        ]
    })));
}

#[test]
fn images_become_base64_or_url_sources_and_pdfs_documents() {
    insta::assert_json_snapshot!(req(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What are these?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}}
        ]}]
    })));
}

#[test]
fn tool_calls_and_results_become_tool_use_and_one_merged_user_turn() {
    insta::assert_json_snapshot!(req(json!({
        "model": "m",
        "max_completion_tokens": 300,
        "parallel_tool_calls": false,
        "tool_choice": "required",
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "now"}}
        ],
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome, and the time?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call.2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}},
                {"id": "call_3", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call.2", "content": [{"type": "text", "text": "22C"}]},
            {"role": "tool", "tool_call_id": "call_3", "content": "12:00"},
            {"role": "user", "content": "Thanks; which is warmer?"}
        ]
    })));
}

#[test]
fn tool_choices_map_one_to_one() {
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let choices: Vec<Value> = [json!("auto"), json!("none"), json!("required"), json!({"type": "function", "function": {"name": "f"}})]
        .into_iter()
        .map(|c| req(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": c}))["tool_choice"].clone())
        .collect();
    insta::assert_json_snapshot!(choices);
}

#[test]
fn tool_history_without_tools_declares_them() {
    let body = req(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "found"}
    ]}));
    assert_eq!(body["tools"], json!([{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}]));
    assert_eq!(body["tool_choice"], json!({"type": "none"}));
}

#[test]
fn max_tokens_stop_sampling_and_unknown_fields() {
    let t = request(
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "END", "temperature": 0.2,
            "top_p": 0.9, "stream": true, "stream_options": {"include_usage": true}, "seed": 7, "user": "u-1",
            "max_tokens": 50, "some_future_field": {"a": 1}, "reasoning_effort": "low"}),
        4096,
    )
    .unwrap();
    insta::assert_json_snapshot!(t.body);
    // No thinking budget (at least 1024) fits under max_tokens 50: the effort is dropped.
    assert_eq!(t.dropped, vec!["reasoning_effort".to_string(), "seed".to_string(), "stream_options".to_string()]);
    assert_eq!(req(json!({"model": "m", "messages": []}))["max_tokens"], 4096, "the default when none is given");
}

#[test]
fn what_has_no_equivalent_is_refused_by_name() {
    let base = || json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("n", json!(2), "n"),
        ("logprobs", json!(true), "logprobs"),
        ("logit_bias", json!({"50256": -100}), "logit_bias"),
        ("presence_penalty", json!(0.5), "presence_penalty"),
        ("response_format", json!({"type": "json_schema", "json_schema": {}}), "response_format"),
        ("temperature", json!(1.5), "temperature"),
        ("tool_choice", json!("sometimes"), "tool_choice"),
        ("tools", json!([{"type": "custom", "custom": {"name": "x"}}]), "tools[0].type"),
    ];
    for (field, value, param) in cases {
        let mut b = base();
        b[field] = value;
        assert_eq!(request(&b, 10).unwrap_err().param, param, "{field}");
    }
    let mut b = base();
    b["messages"] = json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]);
    assert_eq!(request(&b, 10).unwrap_err().param, "messages[0].content[0]");
    b["messages"] =
        json!([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}]);
    assert_eq!(request(&b, 10).unwrap_err().param, "messages[0].tool_calls[0].function.arguments");
    // Zero penalties and `logprobs: false` change nothing: accepted.
    let mut b = base();
    b["presence_penalty"] = json!(0);
    b["logprobs"] = json!(false);
    assert!(request(&b, 10).is_ok());
}

#[test]
fn answers_map_stop_reasons_and_usage_without_double_counting() {
    let message = |stop: &str, content: Value| {
        json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200, "output_tokens": 30}})
    };
    let text = json!([{"type": "text", "text": "Hello!"}]);
    let tool = json!([{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]);
    let answers: Vec<Value> = vec![
        response(&message("end_turn", text.clone()), &ctx(false)),
        response(&message("max_tokens", text.clone()), &ctx(false))["choices"][0]["finish_reason"].clone(),
        response(&message("stop_sequence", text.clone()), &ctx(false))["choices"][0]["finish_reason"].clone(),
        response(&message("refusal", text), &ctx(false))["choices"][0]["finish_reason"].clone(),
        response(&message("tool_use", tool), &ctx(false)),
    ];
    insta::assert_json_snapshot!(answers);
}

/// An Anthropic stream as recorded: text, then a tool call, pings, usage in message_start
/// and a cumulative output count in message_delta.
const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"check.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

/// Runs `stream` through the translator, `chunk` bytes at a time.
fn translate(stream_text: &str, ctx: Context, chunk: usize) -> String {
    let mut t = super::stream(ctx);
    let mut parser = Parser::new();
    let mut out = Vec::new();
    for piece in stream_text.as_bytes().chunks(chunk.max(1)) {
        parser.push(piece);
        for e in parser.events() {
            match e.data.as_deref() {
                Some("[DONE]") => t.done(&mut out),
                Some(d) => {
                    if let Ok(v) = serde_json::from_str::<Value>(d) {
                        t.event(e.event.as_deref(), &v, &mut out);
                    }
                }
                None => {}
            }
        }
    }
    t.finish(&mut out);
    String::from_utf8(out).unwrap()
}

fn chunks(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn a_stream_becomes_chat_chunks_with_tool_calls_and_usage() {
    let out = translate(ANTHROPIC_STREAM, ctx(true), 4096);
    insta::assert_snapshot!(out);
    assert!(out.ends_with("data: [DONE]\n\n"));
    assert!(!out.contains("event:"), "OpenAI streams have no event names");
    let cs = chunks(&out);
    let text: String = cs.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Let me check.");
    let args: String =
        cs.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"city": "Paris"}));
    let first_call = cs.iter().find(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"].is_string()).unwrap();
    assert_eq!(first_call["choices"][0]["delta"]["tool_calls"][0]["index"], 0, "k counts tool calls, not blocks");
    let last = cs.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 125);
    assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
    assert_eq!(last["usage"]["completion_tokens"], 42);
    assert_eq!(cs[cs.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn without_include_usage_no_usage_chunk_is_sent() {
    let out = translate(ANTHROPIC_STREAM, ctx(false), 4096);
    assert!(chunks(&out).iter().all(|c| !c["choices"].as_array().unwrap().is_empty()));
    assert!(chunks(&out).iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn a_midstream_error_becomes_an_openai_error_line() {
    let s = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":1}}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let out = translate(s, ctx(true), 7);
    let cs = chunks(&out);
    assert_eq!(cs.last().unwrap()["error"]["message"], "Overloaded");
    assert!(!out.contains("[DONE]"), "nothing after the error");
}

proptest! {
    #[test]
    fn any_split_of_the_stream_gives_the_same_output(chunk in 1usize..300) {
        prop_assert_eq!(translate(ANTHROPIC_STREAM, ctx(true), chunk), translate(ANTHROPIC_STREAM, ctx(true), 100_000));
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = request(&v, 100);
        let _ = request(&json!({"model": "m", "messages": [v.clone()], "tools": [v.clone()], "tool_choice": v.clone(), "stop": v.clone()}), 100);
        let _ = response(&v, &ctx(true));
        let mut t = super::stream(ctx(true));
        let mut out = Vec::new();
        for name in ["message_start", "content_block_start", "content_block_delta", "message_delta", "message_stop", "error"] {
            t.event(Some(name), &v, &mut out);
        }
        t.finish(&mut out);
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z_]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("role".to_string()),
                    Just("content".to_string()),
                    Just("text".to_string()),
                    Just("index".to_string()),
                    Just("delta".to_string()),
                    Just("usage".to_string()),
                    "[a-z_]{1,8}".prop_map(String::from)
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
