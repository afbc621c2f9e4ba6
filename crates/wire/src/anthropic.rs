//! Anthropic's Messages format: what a request asks for and what it used.

use crate::scan;
use crate::usage::{Reported, UsageFormat, usage_in};
use crate::{Observed, StreamUsage, Tally, TextKeys};
use serde_json::{Value, json};
use spendgate_core::TokenUsage;
use std::sync::LazyLock;

pub fn set_max_tokens(body: &mut Value, tokens: u64) {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("max_tokens".into(), json!(tokens));
    }
}

/// Usage from a non-streamed answer (`input_tokens` excludes the cache tokens, which
/// are priced apart).
pub fn usage(answer: &Value) -> Option<TokenUsage> {
    usage_in(UsageFormat::Messages, answer)
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

impl StreamUsage for MessagesStream {
    fn observe(&mut self, event: Option<&str>, data: &[u8]) -> Observed {
        // Anthropic names every event; a stream without names says it in `type`.
        let raw = data;
        let kind = match event {
            Some(e) => e,
            None => {
                let Some([Some(kind)]) = scan::members(raw, ["type"]) else { return Observed::default() };
                match kind {
                    br#""content_block_delta""# => "content_block_delta",
                    br#""message_start""# => "message_start",
                    br#""message_delta""# => "message_delta",
                    _ => return Observed::default(),
                }
            }
        };
        match kind {
            // Most events: their text counted by a scan, not parsed.
            "content_block_delta" => {
                static TEXT: LazyLock<TextKeys> =
                    LazyLock::new(|| TextKeys::new(&["text", "partial_json", "thinking"]));
                self.tally.chars += TEXT.chars(data);
            }
            "message_start" => {
                let Some([message]) = scan::members(raw, ["message"]) else { return Observed::default() };
                let usage = message.and_then(|m| scan::members(m, ["usage"])).and_then(|[u]| u);
                self.usage = usage.and_then(Reported::from_raw).unwrap_or_default().tokens(UsageFormat::Messages);
            }
            "message_delta" => {
                let Some([usage]) = scan::members(raw, ["usage"]) else { return Observed::default() };
                let u = usage.and_then(Reported::from_raw).unwrap_or_default();
                self.usage.output = u.output_tokens().unwrap_or(0);
                // Some deltas repeat (updated) input and cache figures.
                let reported = [
                    (&mut self.usage.input, u.input_tokens()),
                    (&mut self.usage.cached_input, u.cache_read_input_tokens()),
                    (&mut self.usage.cache_write, u.cache_creation_input_tokens()),
                ];
                for (figure, count) in reported {
                    if let Some(n) = count {
                        *figure = n;
                    }
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
    fn stream_usage_takes_the_last_cumulative_output() {
        let mut s = MessagesStream::default();
        s.observe(
            Some("message_start"),
            &json!({"type": "message_start", "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 50,
                "cache_creation_input_tokens": 5, "output_tokens": 1}}})
            .to_string()
            .into_bytes(),
        );
        assert_eq!(s.reported(), None);
        assert_eq!(s.partial().input, 10);
        s.observe(
            Some("content_block_delta"),
            json!({"delta": {"type": "text_delta", "text": "Hi!"}}).to_string().as_bytes(),
        );
        s.observe(
            Some("message_delta"),
            &json!({"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}).to_string().into_bytes(),
        );
        s.observe(Some("message_delta"), json!({"usage": {"output_tokens": 9}}).to_string().as_bytes());
        assert_eq!(s.reported(), Some(TokenUsage { input: 10, cached_input: 50, cache_write: 5, output: 9 }));
        assert_eq!(s.output_chars(), 3);
        assert_eq!(
            usage(&json!({"usage": {"input_tokens": 3, "output_tokens": 4}})),
            Some(TokenUsage { input: 3, output: 4, ..TokenUsage::default() })
        );
    }
}
