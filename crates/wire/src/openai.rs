//! OpenAI's formats: Chat Completions, Responses, Embeddings. What a request asks for,
//! how to lower its max tokens or ask for usage in its stream, and what it used.

use crate::usage::{Reported, UsageFormat, is_empty_array, usage_in};
use crate::{Observed, StreamUsage, Tally, TextKeys};
use serde_json::{Value, json};
use spendgate_core::TokenUsage;
use std::sync::LazyLock;

/// The OpenAI endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Responses,
    Embeddings,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Responses => "/responses",
            Endpoint::Embeddings => "/embeddings",
        }
    }

    /// The field that carries the max output tokens in a request, as sent.
    fn max_fields(self) -> &'static [&'static str] {
        match self {
            Endpoint::Chat => &["max_completion_tokens", "max_tokens"],
            Endpoint::Responses => &["max_output_tokens"],
            Endpoint::Embeddings => &[],
        }
    }
}

/// Asks for the usage chunk at the end of a chat stream.
pub fn request_stream_usage(body: &mut Value) {
    if let Some(obj) = body.as_object_mut() {
        let options = obj.entry("stream_options").or_insert_with(|| json!({}));
        if !options.is_object() {
            *options = json!({});
        }
        options["include_usage"] = Value::Bool(true);
    }
}

/// Asks for the usage chunk at the end of a chat stream, in the bytes of a request that
/// is an object with members and no `stream_options` (`None` when it is not): spliced
/// in front of its first member, the rest left as it is.
pub fn with_stream_usage(body: &[u8]) -> Option<Vec<u8>> {
    let open = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let first = open + 1 + body[open + 1..].iter().position(|b| !b.is_ascii_whitespace())?;
    if body[open] != b'{' || body[first] == b'}' {
        return None;
    }
    const MEMBER: &[u8] = br#""stream_options":{"include_usage":true},"#;
    let mut out = Vec::with_capacity(body.len() + MEMBER.len());
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(MEMBER);
    out.extend_from_slice(&body[open + 1..]);
    Some(out)
}

/// Sets the max output tokens to `tokens`, in the field the request used; where it used
/// none, in `max_completion_tokens` for OpenAI itself and `max_tokens` for compatible
/// providers (many of which do not know the newer field).
pub fn set_max_tokens(endpoint: Endpoint, body: &mut Value, tokens: u64, openai_itself: bool) {
    let Some(obj) = body.as_object_mut() else { return };
    let fields = endpoint.max_fields();
    let present: Vec<&str> = fields.iter().copied().filter(|f| obj.get(*f).is_some_and(|v| !v.is_null())).collect();
    if present.is_empty() {
        let field = match endpoint {
            Endpoint::Chat if !openai_itself => "max_tokens",
            _ => fields.first().copied().unwrap_or("max_tokens"),
        };
        obj.insert(field.to_string(), json!(tokens));
    } else {
        for f in present {
            obj.insert(f.to_string(), json!(tokens));
        }
    }
}

impl Endpoint {
    /// How this endpoint's answers report usage.
    pub fn usage_format(self) -> UsageFormat {
        match self {
            Endpoint::Chat => UsageFormat::Chat,
            Endpoint::Responses => UsageFormat::Responses,
            Endpoint::Embeddings => UsageFormat::Embeddings,
        }
    }
}

/// Usage from a non-streamed answer of `endpoint`.
pub fn usage(endpoint: Endpoint, answer: &Value) -> Option<TokenUsage> {
    usage_in(endpoint.usage_format(), answer)
}

/// Usage from a Chat Completions stream: the last chunk (`choices: []`, `usage`).
#[derive(Debug, Default)]
pub struct ChatStream(Tally);

impl StreamUsage for ChatStream {
    fn observe(&mut self, _event: Option<&str>, data: &[u8]) -> Observed {
        // Every chunk: its text, counted by a scan. The one chunk with usage (`usage`
        // not null) is read whole.
        static TEXT: LazyLock<TextKeys> =
            LazyLock::new(|| TextKeys::new(&["content", "refusal", "reasoning_content", "arguments", "name"]));
        self.0.chars += TEXT.chars(data);
        // Most chunks have `"usage":null` or none: the quick look rules out those without.
        if !crate::scan::has_object_member(data, "usage") {
            return Observed::default();
        }
        let Some([Some(usage), choices]) = crate::scan::members(data, ["usage", "choices"]) else {
            return Observed::default();
        };
        let Some(usage) = Reported::from_raw(usage) else { return Observed::default() };
        self.0.usage = Some(usage.tokens(UsageFormat::Chat));
        // The chunk that `include_usage` adds: usage and no choices.
        Observed { usage_only: choices.is_some_and(is_empty_array) }
    }

    fn tally(&self) -> &Tally {
        &self.0
    }
}

/// Usage from a Responses stream: `response.completed` (or `incomplete`/`failed`).
#[derive(Debug, Default)]
pub struct ResponsesStream(Tally);

impl StreamUsage for ResponsesStream {
    fn observe(&mut self, event: Option<&str>, data: &[u8]) -> Observed {
        let Ok(data) = serde_json::from_slice::<Value>(data) else { return Observed::default() };
        let kind = event.or_else(|| data["type"].as_str()).unwrap_or("");
        match kind {
            "response.completed" | "response.incomplete" | "response.failed" => {
                if let Some(u) = usage_in(UsageFormat::Responses, &data["response"]) {
                    self.0.usage = Some(u);
                }
            }
            k if k.ends_with(".delta") => self.0.count(&data["delta"]),
            _ => {}
        }
        Observed::default()
    }

    fn tally(&self) -> &Tally {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_usage_is_spliced_into_the_bytes() {
        let body = br#" { "model": "m", "stream": true }"#;
        let out: Value = serde_json::from_slice(&with_stream_usage(body).unwrap()).unwrap();
        assert_eq!(out, json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}}));
        assert_eq!(with_stream_usage(b"{ }"), None);
        assert_eq!(with_stream_usage(b"[1]"), None);
        assert_eq!(with_stream_usage(b"  "), None);
    }

    #[test]
    fn stream_usage_option_and_max_tokens_are_set_in_place() {
        let mut b = json!({"model": "m", "stream_options": {"other": 1}, "unknown": {"kept": true}});
        request_stream_usage(&mut b);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["stream_options"]["other"], 1);
        assert_eq!(b["unknown"], json!({"kept": true}));
        set_max_tokens(Endpoint::Chat, &mut b, 10, true);
        assert_eq!(b["max_completion_tokens"], 10);
        let mut compat = json!({"model": "m"});
        set_max_tokens(Endpoint::Chat, &mut compat, 10, false);
        assert_eq!(compat["max_tokens"], 10);
        let mut both = json!({"model": "m", "max_tokens": 100, "max_completion_tokens": 100});
        set_max_tokens(Endpoint::Chat, &mut both, 5, true);
        assert_eq!((both["max_tokens"].as_u64(), both["max_completion_tokens"].as_u64()), (Some(5), Some(5)));
        let mut r = json!({"model": "m"});
        set_max_tokens(Endpoint::Responses, &mut r, 8, true);
        assert_eq!(r["max_output_tokens"], 8);
    }

    #[test]
    fn usage_separates_cached_tokens() {
        let answer = json!({"usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 60}}});
        assert_eq!(
            usage(Endpoint::Chat, &answer),
            Some(TokenUsage { input: 40, cached_input: 60, cache_write: 0, output: 20 })
        );
        let r =
            json!({"usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 3}});
        assert_eq!(
            usage(Endpoint::Responses, &r),
            Some(TokenUsage { input: 6, cached_input: 4, cache_write: 0, output: 3 })
        );
        let e = json!({"usage": {"prompt_tokens": 9, "total_tokens": 9}});
        assert_eq!(usage(Endpoint::Embeddings, &e).unwrap().input, 9);
        assert_eq!(usage(Endpoint::Chat, &json!({"usage": null})), None);
    }

    #[test]
    fn chat_stream_usage_and_estimate() {
        let mut s = ChatStream::default();
        let seen = |s: &mut ChatStream, v: Value| s.observe(None, v.to_string().as_bytes());
        seen(&mut s, json!({"choices": [{"delta": {"role": "assistant", "content": ""}}]}));
        seen(&mut s, json!({"choices": [{"delta": {"content": "Hello \"there\""}}], "usage": null}));
        seen(
            &mut s,
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}}]}),
        );
        assert_eq!(s.reported(), None);
        assert_eq!(s.output_chars(), 17, "escaped text counted as its characters");
        let chunk = json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}});
        assert_eq!(seen(&mut s, chunk), Observed { usage_only: true });
        assert_eq!(s.reported(), Some(TokenUsage { input: 5, cached_input: 0, cache_write: 0, output: 4 }));
        // Usage on a chunk that also has a choice is not a usage-only chunk.
        let mut t = ChatStream::default();
        let both =
            json!({"choices": [{"delta": {"content": "x"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}});
        assert_eq!(seen(&mut t, both), Observed { usage_only: false });
        assert!(t.reported().is_some());
        assert_eq!(t.observe(None, b"not json"), Observed::default());
    }

    #[test]
    fn responses_stream_usage() {
        let mut s = ResponsesStream::default();
        s.observe(
            Some("response.output_text.delta"),
            &json!({"type": "response.output_text.delta", "delta": "abcd"}).to_string().into_bytes(),
        );
        assert_eq!(s.output_chars(), 4);
        s.observe(
            Some("response.completed"),
            &json!({"type": "response.completed", "response": {"usage": {"input_tokens": 7, "output_tokens": 1}}})
                .to_string()
                .into_bytes(),
        );
        assert_eq!(s.reported().unwrap().input, 7);
    }
}
