//! Both translators (requests, answers, errors and streams, each way) on arbitrary JSON:
//! no panic, and what they produce is JSON (or SSE events of JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use spendgate_wire::translate::{self, Context, chat_to_messages, messages_to_chat};

fn context() -> Context {
    Context { model: "m".into(), created: 0, include_usage: true, input_estimate: 3, tool_names: Default::default() }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let _ = chat_to_messages::request(&value, 1024);
    let _ = messages_to_chat::request(&value, true);
    let _ = messages_to_chat::request(&value, false);
    let _ = chat_to_messages::response(&value, &context());
    let _ = messages_to_chat::response(&value, &context());
    let _ = translate::openai_error(500, &value);
    let _ = translate::anthropic_error(529, &value);
    // The value as a stream event of each format, then as a list of events.
    let events: Vec<Value> = match &value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    for mut stream in [chat_to_messages::stream(context()), messages_to_chat::stream(context())] {
        let mut out = Vec::new();
        for e in &events {
            let name = e.get("type").and_then(Value::as_str);
            stream.event(name, e, &mut out);
        }
        stream.done(&mut out);
        stream.finish(&mut out);
        for line in out.split(|&b| b == b'\n') {
            if let Some(data) = line.strip_prefix(b"data: ") {
                if data != b"[DONE]" {
                    assert!(serde_json::from_slice::<Value>(data).is_ok(), "{}", String::from_utf8_lossy(data));
                }
            }
        }
    }
});
