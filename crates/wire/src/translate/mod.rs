//! Translation between OpenAI Chat Completions and Anthropic Messages, both ways, for
//! requests, answers, streams and errors (`shared/spec/wire-formats.md`, "Translating
//! between the two formats"). One module per direction:
//!
//! - [`chat_to_messages`]: an OpenAI-format client on an Anthropic model. Chat requests
//!   become Messages requests; Anthropic answers, events and errors become OpenAI ones.
//! - [`messages_to_chat`]: an Anthropic-format client on an OpenAI(-compatible) model.
//!
//! Pure functions over `serde_json::Value`; the gateway meters usage from the provider's
//! native answer before translating it, so records hold the provider's own figures.
//! Parameters with no equivalent are refused with a 400 naming them when they would
//! change the result, and dropped (and reported in [`Translated::dropped`]) when they
//! would not.

pub mod chat_to_messages;
pub mod messages_to_chat;

use serde_json::Value;
use std::collections::HashMap;

/// A translated request.
#[derive(Clone, Debug, PartialEq)]
pub struct Translated {
    pub body: Value,
    /// Request fields that had no equivalent and no effect on the answer, dropped.
    pub dropped: Vec<String>,
    /// Tool names shortened to fit the target's limits: short name -> original.
    pub tool_names: HashMap<String, String>,
}

/// What translating an answer or a stream needs to know about the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The model as the client named it, echoed in answers.
    pub model: String,
    /// Unix seconds, for OpenAI's `created`.
    pub created: i64,
    /// OpenAI clients: whether they asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Anthropic clients: input tokens to announce in `message_start` when the provider
    /// reports usage only at the end (the real figures follow in `message_delta`).
    pub input_estimate: u64,
    /// From [`Translated::tool_names`].
    pub tool_names: HashMap<String, String>,
}

impl Context {
    /// A tool's name as the client knows it.
    pub fn original_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.tool_names.get(name).map_or(name, String::as_str)
    }
}

/// Turns a provider's stream, event by event, into the client's format.
pub trait StreamTranslator: Send {
    /// One upstream event: its `event:` name (Anthropic) and its parsed `data`. Appends
    /// the client's bytes (complete SSE events) to `out`.
    fn event(&mut self, name: Option<&str>, data: &Value, out: &mut Vec<u8>);
    /// OpenAI's `data: [DONE]`.
    fn done(&mut self, out: &mut Vec<u8>);
    /// The upstream stream ended cleanly; emit whatever is still held back.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// Appends an OpenAI-style event: `data: {json}` and a blank line.
pub(crate) fn sse_data(out: &mut Vec<u8>, data: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Appends an Anthropic-style event: `event: name`, `data: {json}`, a blank line.
pub(crate) fn sse_event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Anthropic's error `type` for an HTTP status.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// OpenAI's error `type` for an HTTP status.
pub fn openai_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    }
}

/// The message of an error body in either format, or of anything else.
pub fn error_message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .or_else(|| body["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| if body.is_null() { "the provider returned an error".to_string() } else { body.to_string() })
}

/// An error body for an OpenAI client: `{"error": {message, type, param, code}}`.
pub fn openai_error(status: u16, body: &Value) -> Value {
    serde_json::json!({ "error": {
        "message": error_message(body),
        "type": openai_error_type(status),
        "param": null,
        "code": body["error"]["type"].as_str().or_else(|| body["error"]["code"].as_str()),
    }})
}

/// An error body for an Anthropic client: `{"type": "error", "error": {type, message}}`.
pub fn anthropic_error(status: u16, body: &Value) -> Value {
    serde_json::json!({ "type": "error", "error": { "type": anthropic_error_type(status), "message": error_message(body) } })
}

/// Characters allowed in tool ids by Anthropic (`^[a-zA-Z0-9_-]+$`); others become `_`.
pub(crate) fn tool_id(id: &str) -> String {
    let clean: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if clean.is_empty() { "toolu_empty".to_string() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_cross_over_with_their_message_and_status_type() {
        let anthropic = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let o = openai_error(529, &anthropic);
        assert_eq!(o["error"]["message"], "Overloaded");
        assert_eq!(o["error"]["type"], "server_error");
        assert_eq!(o["error"]["code"], "overloaded_error");
        let openai = json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}});
        let a = anthropic_error(429, &openai);
        assert_eq!(a, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}}));
        assert_eq!(error_message(&json!("plain")), "\"plain\"");
        assert_eq!(tool_id("call abc.1"), "call_abc_1");
    }
}
