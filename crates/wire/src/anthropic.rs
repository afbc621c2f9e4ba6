//! Anthropic's Messages format: what a request asks for and what it used.

use crate::openai::{MAX_TOKENS_CEILING, model, object, positive, stream};
use crate::{Observed, RequestError, RequestFacts, StreamUsage, Tally, bound, uint};
use serde_json::{Value, json};
use spendgate_core::TokenUsage;
use std::borrow::Cow;

/// Reads what the gateway needs from a Messages request (`max_tokens` is required).
pub fn facts(body: &Value) -> Result<RequestFacts, RequestError> {
    let obj = object(body)?;
    let max_tokens = positive(obj, "max_tokens", MAX_TOKENS_CEILING)?
        .ok_or_else(|| RequestError::new("max_tokens", "is required"))?;
    Ok(RequestFacts {
        model: model(obj)?,
        stream: stream(obj)?,
        max_output_tokens: Some(max_tokens),
        choices: 1,
        input_bound: bound::input_tokens(body),
    })
}

/// Reads the model of a `count_tokens` request.
pub fn count_tokens_model(body: &Value) -> Result<String, RequestError> {
    model(object(body)?)
}

pub fn set_max_tokens(body: &mut Value, tokens: u64) {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("max_tokens".into(), json!(tokens));
    }
}

/// `input_tokens` excludes the cache tokens, which are priced apart.
fn read_usage(u: &Value) -> TokenUsage {
    TokenUsage {
        input: uint(u, &["input_tokens"]),
        cached_input: uint(u, &["cache_read_input_tokens"]),
        cache_write: uint(u, &["cache_creation_input_tokens"]),
        output: uint(u, &["output_tokens"]),
    }
}

/// Usage from a non-streamed answer.
pub fn usage(answer: &Value) -> Option<TokenUsage> {
    answer.get("usage").filter(|u| u.is_object()).map(read_usage)
}

/// Usage from a stream: input (and cache) figures in `message_start`, the cumulative
/// output count in each `message_delta` (the last one is final; never summed).
#[derive(Debug, Default)]
pub struct MessagesStream {
    /// Usage as reported so far.
    usage: TokenUsage,
    /// `usage` once a `message_delta` has given the final output count.
    tally: Tally,
}

/// A Messages event's type, for streams that do not name their events.
#[derive(serde::Deserialize)]
struct EventType<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
}

impl StreamUsage for MessagesStream {
    fn observe(&mut self, event: Option<&str>, data: &str) -> Observed {
        // Anthropic names every event; a stream without names says it in `type`.
        let kind: Cow<str> = match event {
            Some(e) => Cow::Borrowed(e),
            None => match serde_json::from_str::<EventType>(data) {
                Ok(h) => Cow::Owned(h.kind.into_owned()),
                Err(_) => return Observed::default(),
            },
        };
        if kind == "content_block_delta" {
            // Most events: their text counted by a scan, not parsed.
            self.tally.chars += crate::text_chars(data, &["text", "partial_json", "thinking"]);
            return Observed::default();
        }
        if kind != "message_start" && kind != "message_delta" {
            return Observed::default();
        }
        let Ok(data) = serde_json::from_str::<Value>(data) else { return Observed::default() };
        match kind.as_ref() {
            "message_start" => self.usage = read_usage(&data["message"]["usage"]),
            "message_delta" => {
                let u = &data["usage"];
                self.usage.output = uint(u, &["output_tokens"]);
                // Some deltas repeat (updated) input and cache figures.
                if u.get("input_tokens").is_some_and(|v| v.is_u64()) {
                    self.usage.input = uint(u, &["input_tokens"]);
                }
                if u.get("cache_read_input_tokens").is_some_and(|v| v.is_u64()) {
                    self.usage.cached_input = uint(u, &["cache_read_input_tokens"]);
                }
                if u.get("cache_creation_input_tokens").is_some_and(|v| v.is_u64()) {
                    self.usage.cache_write = uint(u, &["cache_creation_input_tokens"]);
                }
                self.tally.usage = Some(self.usage);
            }
            _ => {}
        }
        Observed::default()
    }

    fn tally(&self) -> &Tally {
        &self.tally
    }

    fn partial(&self) -> TokenUsage {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_require_max_tokens() {
        let f = facts(&json!({"model": "claude-sonnet-4-20250514", "max_tokens": 1024, "stream": true})).unwrap();
        assert_eq!((f.max_output_tokens, f.stream), (Some(1024), true));
        assert_eq!(facts(&json!({"model": "m"})).unwrap_err().param, "max_tokens");
        assert_eq!(facts(&json!({"max_tokens": 5})).unwrap_err().param, "model");
    }

    #[test]
    fn stream_usage_takes_the_last_cumulative_output() {
        let mut s = MessagesStream::default();
        s.observe(
            Some("message_start"),
            &json!({"type": "message_start", "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 50,
                "cache_creation_input_tokens": 5, "output_tokens": 1}}})
            .to_string(),
        );
        assert_eq!(s.reported(), None);
        assert_eq!(s.partial().input, 10);
        s.observe(Some("content_block_delta"), &json!({"delta": {"type": "text_delta", "text": "Hi!"}}).to_string());
        s.observe(
            Some("message_delta"),
            &json!({"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}).to_string(),
        );
        s.observe(Some("message_delta"), &json!({"usage": {"output_tokens": 9}}).to_string());
        assert_eq!(s.reported(), Some(TokenUsage { input: 10, cached_input: 50, cache_write: 5, output: 9 }));
        assert_eq!(s.output_chars(), 3);
        assert_eq!(
            usage(&json!({"usage": {"input_tokens": 3, "output_tokens": 4}})),
            Some(TokenUsage { input: 3, output: 4, ..TokenUsage::default() })
        );
    }
}
