//! OpenAI Chat Completions, `POST /v1/chat/completions`: a `chat.completion` object, or
//! a stream of `chat.completion.chunk` `data:` lines ending in `data: [DONE]` (the
//! usage chunk only when `stream_options.include_usage` is true). Tool calls, errors
//! and stream breaks as the directives ask.

use crate::errors::{ApiError, Provider, openai_stream_error};
use crate::sse::{self, Script};
use crate::text::{self, Directives, Plan, Tally};
use crate::{Mock, now_secs, require, wants_stream};
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What the assistant answers.
enum Answer {
    Text(Plan),
    Tool { name: String, call_id: String },
}

impl Answer {
    fn output_tokens(&self) -> u32 {
        match self {
            Answer::Text(plan) => plan.tokens,
            Answer::Tool { .. } => text::TOOL_OUTPUT_TOKENS,
        }
    }

    fn finish_reason(&self) -> &'static str {
        match self {
            Answer::Text(plan) if plan.truncated => "length",
            Answer::Text(_) => "stop",
            Answer::Tool { .. } => "tool_calls",
        }
    }
}

/// The `usage` object: `prompt_tokens` includes the cached tokens.
pub fn usage(input: u32, cached: u32, output: u32) -> Value {
    let prompt = u64::from(input) + u64::from(cached);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + u64::from(output),
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

pub fn chat(mock: &Mock, body: &Value) -> Response {
    if let Err(e) = require(Provider::OpenAi, body, &["model", "messages"]) {
        return mock.error(Provider::OpenAi, &e);
    }
    let messages = body.get("messages");
    if !messages.is_some_and(Value::is_array) {
        return mock.error(Provider::OpenAi, &ApiError::invalid("messages", "'messages' must be an array."));
    }
    let mut tally = Tally::default();
    text::tally_messages(messages, &mut tally);
    let directives = Directives::parse(&text::last_user_text(messages));
    if let Some(status) = directives.error {
        return mock.error(Provider::OpenAi, &ApiError::directive(status));
    }
    let answer = if directives.tool {
        Answer::Tool { name: text::first_tool_name(body.get("tools")), call_id: mock.id("call_") }
    } else {
        let cap = text::cap(body, "max_completion_tokens").or_else(|| text::cap(body, "max_tokens"));
        Answer::Text(Plan::new(directives.tokens.unwrap_or(mock.config().output_tokens), cap))
    };
    let usage = usage(tally.tokens(), directives.cached, answer.output_tokens());
    let head = Head {
        id: mock.id("chatcmpl-"),
        created: now_secs(),
        model: body.get("model").cloned().unwrap_or(Value::Null),
    };
    if wants_stream(body) {
        let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
        let script = stream_script(&head, &answer, usage, include_usage);
        let (events, end) = script.play(directives.midstream_error.then_some(2), directives.break_after, |_| {
            sse::data(&openai_stream_error())
        });
        mock.stream(events, end, &directives)
    } else {
        Json(completion(&head, &answer, usage)).into_response()
    }
}

/// The fields shared by the completion and all its chunks.
struct Head {
    id: String,
    created: u64,
    model: Value,
}

fn completion(head: &Head, answer: &Answer, usage: Value) -> Value {
    let message = match answer {
        Answer::Text(plan) => json!({
            "role": "assistant",
            "content": text::text(plan.tokens),
            "refusal": null,
            "annotations": [],
        }),
        Answer::Tool { name, call_id } => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "annotations": [],
            "tool_calls": [{
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": text::tool_arguments()},
            }],
        }),
    };
    json!({
        "id": head.id,
        "object": "chat.completion",
        "created": head.created,
        "model": head.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": answer.finish_reason(),
        }],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    })
}

fn stream_script(head: &Head, answer: &Answer, usage: Value, include_usage: bool) -> Script {
    let chunk = |choices: Value, usage: Option<Value>| {
        let mut chunk = json!({
            "id": head.id,
            "object": "chat.completion.chunk",
            "created": head.created,
            "model": head.model,
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
            "choices": choices,
        });
        if include_usage {
            chunk["usage"] = usage.unwrap_or(Value::Null);
        }
        sse::data(&chunk)
    };
    let delta = |delta: Value, finish: Option<&str>| {
        chunk(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]), None)
    };
    let mut script = Script::default();
    match answer {
        Answer::Text(plan) => {
            script.frame(delta(json!({"role": "assistant", "content": "", "refusal": null}), None));
            for token in text::tokens(plan.tokens) {
                script.content(delta(json!({"content": token}), None));
            }
        }
        Answer::Tool { name, call_id } => {
            script.frame(delta(json!({"role": "assistant", "content": null, "refusal": null}), None));
            script.frame(delta(
                json!({"tool_calls": [{
                    "index": 0,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }]}),
                None,
            ));
            for fragment in text::TOOL_ARGUMENT_FRAGMENTS {
                script.content(delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}), None));
            }
        }
    }
    script.finish(delta(json!({}), Some(answer.finish_reason())));
    if include_usage {
        script.frame(chunk(json!([]), Some(usage)));
    }
    script.frame(sse::done());
    script
}
