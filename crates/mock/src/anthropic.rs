//! Anthropic Messages, `POST /v1/messages` and `POST /v1/messages/count_tokens`: a
//! `message` object, or the named-event stream (`message_start`, `ping`, per block
//! `content_block_start`/`_delta`/`_stop`, `message_delta` with the cumulative output
//! tokens, `message_stop`). Optional `thinking` block (with its signature), `tool_use`
//! after a short text block, errors and stream breaks as the directives ask.

use crate::errors::{ApiError, Provider, anthropic_stream_error};
use crate::sse::{self, Script};
use crate::text::{self, Directives, Plan, Tally};
use crate::{Mock, require, wants_stream};
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The input tokens of a messages request: top-level `system` adds its characters,
/// each entry of `messages` counts as a message.
fn tally(body: &Value) -> Tally {
    let mut tally = Tally::default();
    if let Some(system) = body.get("system") {
        tally.content(system);
    }
    text::tally_messages(body.get("messages"), &mut tally);
    tally
}

fn check_messages(body: &Value, fields: &[&str]) -> Result<(), ApiError> {
    require(Provider::Anthropic, body, fields)?;
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err(ApiError::invalid("messages", "messages: Input should be a valid list"));
    }
    Ok(())
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, directives ignored.
pub fn count_tokens(mock: &Mock, body: &Value) -> Response {
    if let Err(e) = check_messages(body, &["model", "messages"]) {
        return mock.error(Provider::Anthropic, &e);
    }
    Json(json!({"input_tokens": tally(body).tokens()})).into_response()
}

/// One content block of the answer.
enum Block {
    Thinking,
    Text(Vec<String>),
    ToolUse { id: String, name: String },
}

impl Block {
    /// The finished block, as in a non-streamed message.
    fn done(&self) -> Value {
        match self {
            Block::Thinking => json!({
                "type": "thinking",
                "thinking": text::THINKING_WORDS.concat(),
                "signature": text::THINKING_SIGNATURE,
            }),
            Block::Text(tokens) => json!({"type": "text", "text": tokens.concat()}),
            Block::ToolUse { id, name } => json!({
                "type": "tool_use", "id": id, "name": name, "input": text::tool_input(),
            }),
        }
    }

    /// The block as `content_block_start` announces it.
    fn start(&self) -> Value {
        match self {
            Block::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Block::Text(_) => json!({"type": "text", "text": ""}),
            Block::ToolUse { id, name } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": {}})
            }
        }
    }
}

pub fn messages(mock: &Mock, body: &Value) -> Response {
    if let Err(e) = check_messages(body, &["model", "messages", "max_tokens"]) {
        return mock.error(Provider::Anthropic, &e);
    }
    let directives = Directives::parse(&text::last_user_text(body.get("messages")));
    if let Some(status) = directives.error {
        return mock.error(Provider::Anthropic, &ApiError::directive(status));
    }
    let mut blocks = Vec::new();
    let mut output_tokens = 0u32;
    if directives.thinking {
        blocks.push(Block::Thinking);
        output_tokens += text::THINKING_WORDS.len() as u32;
    }
    let stop_reason = if directives.tool {
        blocks.push(Block::Text(text::TOOL_PREAMBLE.iter().map(|w| (*w).to_owned()).collect()));
        blocks.push(Block::ToolUse { id: mock.id("toolu_"), name: text::first_tool_name(body.get("tools")) });
        output_tokens += text::TOOL_OUTPUT_TOKENS;
        "tool_use"
    } else {
        // Thinking spends part of max_tokens, as it does on the real API.
        let cap = text::cap(body, "max_tokens").map(|c| c.saturating_sub(u64::from(output_tokens)));
        let plan = Plan::new(directives.tokens.unwrap_or(mock.config().output_tokens), cap);
        blocks.push(Block::Text(text::tokens(plan.tokens)));
        output_tokens += plan.tokens;
        if plan.truncated { "max_tokens" } else { "end_turn" }
    };
    let input_tokens = tally(body).tokens();
    let usage = json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": directives.cache_write,
        "cache_read_input_tokens": directives.cached,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    });
    let id = mock.id("msg_");
    let model = body.get("model").cloned().unwrap_or(Value::Null);
    if !wants_stream(body) {
        return Json(json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks.iter().map(Block::done).collect::<Vec<_>>(),
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": usage,
        }))
        .into_response();
    }
    let mut start_usage = usage;
    start_usage["output_tokens"] = json!(1);
    let mut script = Script::default();
    script.frame(sse::named(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": start_usage,
        }}),
    ));
    script.frame(sse::named("ping", &json!({"type": "ping"})));
    for (index, block) in blocks.iter().enumerate() {
        stream_block(&mut script, index, block);
    }
    script.finish(sse::named(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output_tokens},
        }),
    ));
    script.frame(sse::named("message_stop", &json!({"type": "message_stop"})));
    let (events, end) = script.play(directives.midstream_error.then_some(2), directives.break_after, |_| {
        sse::named("error", &anthropic_stream_error())
    });
    mock.stream(events, end, &directives)
}

/// `content_block_start`, the deltas (text, thinking and argument deltas count as
/// content), `content_block_stop`.
fn stream_block(script: &mut Script, index: usize, block: &Block) {
    let delta = |delta: Value| {
        sse::named("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": delta}))
    };
    script.frame(sse::named(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index, "content_block": block.start()}),
    ));
    match block {
        Block::Thinking => {
            for word in text::THINKING_WORDS {
                script.content(delta(json!({"type": "thinking_delta", "thinking": word})));
            }
            script.frame(delta(json!({"type": "signature_delta", "signature": text::THINKING_SIGNATURE})));
        }
        Block::Text(tokens) => {
            for token in tokens {
                script.content(delta(json!({"type": "text_delta", "text": token})));
            }
        }
        Block::ToolUse { .. } => {
            script.frame(delta(json!({"type": "input_json_delta", "partial_json": ""})));
            for fragment in text::TOOL_ARGUMENT_FRAGMENTS {
                script.content(delta(json!({"type": "input_json_delta", "partial_json": fragment})));
            }
        }
    }
    script.frame(sse::named("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
}
