//! OpenAI Responses, `POST /v1/responses`: a `response` object with one `message` (or
//! `function_call`) output item, or the named-event stream (`response.created` ...
//! `response.completed`, each `data` with its `type` and an increasing
//! `sequence_number`). A capped answer is `status: "incomplete"` and its stream ends
//! with `response.incomplete`, as the real API does.

use crate::errors::{ApiError, Provider};
use crate::sse::{self, Script};
use crate::text::{self, Directives, Plan, Tally};
use crate::{Mock, now_secs, require, wants_stream};
use axum::Json;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub fn create(mock: &Mock, body: &Value) -> Response {
    if let Err(e) = require(Provider::OpenAi, body, &["model"]) {
        return mock.error(Provider::OpenAi, &e);
    }
    let input = body.get("input");
    let directives = Directives::parse(&last_user_text(input));
    if let Some(status) = directives.error {
        return mock.error(Provider::OpenAi, &ApiError::directive(status));
    }
    let (item, output_tokens, truncated) = if directives.tool {
        let item = Item::Call {
            id: mock.id("fc_"),
            call_id: mock.id("call_"),
            name: text::first_tool_name(body.get("tools")),
        };
        (item, text::TOOL_OUTPUT_TOKENS, false)
    } else {
        let plan =
            Plan::new(directives.tokens.unwrap_or(mock.config().output_tokens), text::cap(body, "max_output_tokens"));
        let item = Item::Message { id: mock.id("msg_"), tokens: plan.tokens, incomplete: plan.truncated };
        (item, plan.tokens, plan.truncated)
    };
    let input_tokens = tally(body).tokens();
    let usage = usage(input_tokens, directives.cached, output_tokens);
    let frame = Frame { id: mock.id("resp_"), created_at: now_secs(), request: body };
    let status = if truncated { "incomplete" } else { "completed" };
    let done = frame.response(status, vec![item.done()], usage);
    if wants_stream(body) {
        let script = stream_script(&frame, &item, done);
        let (events, end) = script.play(
            directives.midstream_error.then_some(2),
            directives.break_after,
            |sequence_number| {
                sse::named(
                    "error",
                    &json!({
                        "type": "error",
                        "code": "server_error",
                        "message": "The server had an error while processing your request. (mock: [[mock:midstream_error]])",
                        "param": null,
                        "sequence_number": sequence_number,
                    }),
                )
            },
        );
        mock.stream(events, end, &directives)
    } else {
        Json(done).into_response()
    }
}

/// `input` counts one message per item (a string is one message); `instructions` adds
/// its characters only.
fn tally(body: &Value) -> Tally {
    let mut tally = Tally::default();
    if let Some(instructions) = body.get("instructions") {
        tally.content(instructions);
    }
    match body.get("input") {
        Some(Value::String(s)) => {
            tally.message();
            tally.text(s);
        }
        Some(items @ Value::Array(all)) => {
            for _ in all {
                tally.message();
            }
            tally.content(items);
        }
        _ => {}
    }
    tally
}

/// The `input` string, or the content of its last item with `role: "user"`.
fn last_user_text(input: Option<&Value>) -> String {
    match input {
        Some(Value::String(s)) => s.clone(),
        other => text::last_user_text(other),
    }
}

/// Responses usage: `input_tokens` includes the cached tokens.
fn usage(input: u32, cached: u32, output: u32) -> Value {
    let input = u64::from(input) + u64::from(cached);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + u64::from(output),
    })
}

/// The one output item.
enum Item {
    Message { id: String, tokens: u32, incomplete: bool },
    Call { id: String, call_id: String, name: String },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Message { id, .. } | Item::Call { id, .. } => id,
        }
    }

    fn part(text: &str) -> Value {
        json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
    }

    /// The item as it is when `response.output_item.added` announces it.
    fn added(&self) -> Value {
        match self {
            Item::Message { id, .. } => json!({
                "id": id, "type": "message", "status": "in_progress", "content": [], "role": "assistant",
            }),
            Item::Call { id, call_id, name } => json!({
                "id": id, "type": "function_call", "status": "in_progress",
                "arguments": "", "call_id": call_id, "name": name,
            }),
        }
    }

    /// The finished item.
    fn done(&self) -> Value {
        match self {
            Item::Message { id, tokens, incomplete } => json!({
                "id": id,
                "type": "message",
                "status": if *incomplete { "incomplete" } else { "completed" },
                "content": [Item::part(&text::text(*tokens))],
                "role": "assistant",
            }),
            Item::Call { id, call_id, name } => json!({
                "id": id, "type": "function_call", "status": "completed",
                "arguments": text::tool_arguments(), "call_id": call_id, "name": name,
            }),
        }
    }
}

/// What every rendering of the response shares.
struct Frame<'a> {
    id: String,
    created_at: u64,
    request: &'a Value,
}

impl Frame<'_> {
    /// The request's value for `field`, or the real API's default.
    fn echo(&self, field: &str, default: Value) -> Value {
        match self.request.get(field) {
            Some(v) if !v.is_null() => v.clone(),
            _ => default,
        }
    }

    /// The full `response` object.
    fn response(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": if status == "incomplete" {
                json!({"reason": "max_output_tokens"})
            } else {
                Value::Null
            },
            "instructions": self.echo("instructions", Value::Null),
            "max_output_tokens": self.echo("max_output_tokens", Value::Null),
            "max_tool_calls": self.echo("max_tool_calls", Value::Null),
            "model": self.echo("model", Value::Null),
            "output": output,
            "parallel_tool_calls": self.echo("parallel_tool_calls", json!(true)),
            "previous_response_id": self.echo("previous_response_id", Value::Null),
            "prompt_cache_key": self.echo("prompt_cache_key", Value::Null),
            "reasoning": self.echo("reasoning", json!({"effort": null, "summary": null})),
            "safety_identifier": self.echo("safety_identifier", Value::Null),
            "service_tier": "default",
            "store": self.echo("store", json!(true)),
            "temperature": self.echo("temperature", json!(1.0)),
            "text": self.echo("text", json!({"format": {"type": "text"}, "verbosity": "medium"})),
            "tool_choice": self.echo("tool_choice", json!("auto")),
            "tools": self.echo("tools", json!([])),
            "top_logprobs": self.echo("top_logprobs", json!(0)),
            "top_p": self.echo("top_p", json!(1.0)),
            "truncation": self.echo("truncation", json!("disabled")),
            "usage": usage,
            "user": self.echo("user", Value::Null),
            "metadata": self.echo("metadata", json!({})),
        })
    }
}

/// Numbers the events as they are added: `sequence_number` is the event's position.
struct Events {
    script: Script,
    next: u64,
}

impl Events {
    fn event(&mut self, name: &str, mut data: Value) -> Bytes {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.next);
        self.next += 1;
        sse::named(name, &data)
    }
}

fn stream_script(frame: &Frame<'_>, item: &Item, done: Value) -> Script {
    let mut ev = Events { script: Script::default(), next: 0 };
    let start = frame.response("in_progress", Vec::new(), Value::Null);
    let e = ev.event("response.created", json!({"response": start}));
    ev.script.frame(e);
    let e = ev.event("response.in_progress", json!({"response": start}));
    ev.script.frame(e);
    let e = ev.event("response.output_item.added", json!({"output_index": 0, "item": item.added()}));
    ev.script.frame(e);
    let item_id = item.id();
    match item {
        Item::Message { tokens, .. } => {
            let e = ev.event(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": Item::part("")}),
            );
            ev.script.frame(e);
            for token in text::tokens(*tokens) {
                let e = ev.event(
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": token, "logprobs": []}),
                );
                ev.script.content(e);
            }
            let full = text::text(*tokens);
            let e = ev.event(
                "response.output_text.done",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "text": full, "logprobs": []}),
            );
            ev.script.finish(e);
            let e = ev.event(
                "response.content_part.done",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": Item::part(&full)}),
            );
            ev.script.frame(e);
        }
        Item::Call { name, .. } => {
            for fragment in text::TOOL_ARGUMENT_FRAGMENTS {
                let e = ev.event(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": 0, "delta": fragment}),
                );
                ev.script.content(e);
            }
            let e = ev.event(
                "response.function_call_arguments.done",
                json!({"item_id": item_id, "output_index": 0, "name": name, "arguments": text::tool_arguments()}),
            );
            ev.script.finish(e);
        }
    }
    let e = ev.event("response.output_item.done", json!({"output_index": 0, "item": item.done()}));
    ev.script.frame(e);
    let terminal = if done.get("status").and_then(Value::as_str) == Some("incomplete") {
        "response.incomplete"
    } else {
        "response.completed"
    };
    let e = ev.event(terminal, json!({"response": done}));
    ev.script.frame(e);
    ev.script
}
