//! OpenAI's formats: Chat Completions, Responses, Embeddings. What a request asks for,
//! how to lower its max tokens or ask for usage in its stream, and what it used.

use crate::{Observed, RequestError, RequestFacts, StreamUsage, Tally, bound, uint};
use serde_json::{Map, Value, json};
use spendgate_core::TokenUsage;

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

pub(crate) fn object(body: &Value) -> Result<&Map<String, Value>, RequestError> {
    body.as_object().ok_or_else(|| RequestError::new("body", "must be a JSON object"))
}

pub(crate) fn model(obj: &Map<String, Value>) -> Result<String, RequestError> {
    match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        Some(Value::String(_)) => Err(RequestError::new("model", "must not be empty")),
        Some(_) => Err(RequestError::new("model", "must be a string")),
        None => Err(RequestError::new("model", "is required")),
    }
}

pub(crate) fn stream(obj: &Map<String, Value>) -> Result<bool, RequestError> {
    match obj.get("stream") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(RequestError::new("stream", "must be true or false")),
    }
}

/// A positive integer field, if present (null counts as absent).
pub(crate) fn positive(obj: &Map<String, Value>, field: &str, max: u64) -> Result<Option<u64>, RequestError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
            Some(0) => Err(RequestError::new(field, "must be at least 1")),
            Some(n) => Err(RequestError::new(field, format!("is {n}; at most {max}"))),
            None => Err(RequestError::new(field, "must be a positive whole number")),
        },
    }
}

/// Max tokens anyone may ask for (well above any model's maximum).
pub const MAX_TOKENS_CEILING: u64 = 100_000_000;

/// Reads what the gateway needs from a request body.
pub fn facts(endpoint: Endpoint, body: &Value) -> Result<RequestFacts, RequestError> {
    let obj = object(body)?;
    let mut max_output_tokens = None;
    for field in endpoint.max_fields() {
        max_output_tokens = max_output_tokens.or(positive(obj, field, MAX_TOKENS_CEILING)?);
    }
    let choices = match endpoint {
        Endpoint::Chat => positive(obj, "n", 128)?.unwrap_or(1),
        _ => 1,
    };
    Ok(RequestFacts {
        model: model(obj)?,
        stream: stream(obj)?,
        max_output_tokens,
        choices,
        input_bound: bound::input_tokens(body),
    })
}

/// Whether the client asked for usage in its stream (`stream_options.include_usage`).
pub fn wants_stream_usage(body: &Value) -> bool {
    body["stream_options"]["include_usage"].as_bool() == Some(true)
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

/// Usage from a non-streamed answer of `endpoint`.
pub fn usage(endpoint: Endpoint, answer: &Value) -> Option<TokenUsage> {
    let u = answer.get("usage").filter(|u| u.is_object())?;
    Some(match endpoint {
        Endpoint::Chat => chat_usage(u),
        Endpoint::Responses => responses_usage(u),
        Endpoint::Embeddings => TokenUsage { input: uint(u, &["prompt_tokens"]), ..TokenUsage::default() },
    })
}

/// `prompt_tokens` includes the cached tokens: they are priced apart.
fn chat_usage(u: &Value) -> TokenUsage {
    let cached = uint(u, &["prompt_tokens_details", "cached_tokens"]);
    TokenUsage {
        input: uint(u, &["prompt_tokens"]).saturating_sub(cached),
        cached_input: cached,
        cache_write: 0,
        output: uint(u, &["completion_tokens"]),
    }
}

fn responses_usage(u: &Value) -> TokenUsage {
    let cached = uint(u, &["input_tokens_details", "cached_tokens"]);
    TokenUsage {
        input: uint(u, &["input_tokens"]).saturating_sub(cached),
        cached_input: cached,
        cache_write: 0,
        output: uint(u, &["output_tokens"]),
    }
}

/// Usage from a Chat Completions stream: the last chunk (`choices: []`, `usage`).
#[derive(Debug, Default)]
pub struct ChatStream(Tally);

/// Whether a chat chunk is the usage-only chunk that `include_usage` adds.
pub fn is_usage_chunk(data: &Value) -> bool {
    data["usage"].is_object() && data["choices"].as_array().is_some_and(Vec::is_empty)
}

impl StreamUsage for ChatStream {
    fn observe(&mut self, _event: Option<&str>, data: &str) -> Observed {
        // Every chunk: its text, counted by a scan. The one chunk with usage (`usage`
        // not null) is read whole.
        self.0.chars += crate::text_chars(data, &["content", "refusal", "reasoning_content", "arguments", "name"]);
        if !crate::has_object(data, "usage") {
            return Observed::default();
        }
        let Ok(full) = serde_json::from_str::<Value>(data) else { return Observed::default() };
        if let Some(u) = full.get("usage").filter(|u| u.is_object()) {
            self.0.usage = Some(chat_usage(u));
        }
        Observed { usage_only: is_usage_chunk(&full) }
    }

    fn tally(&self) -> &Tally {
        &self.0
    }
}

/// Usage from a Responses stream: `response.completed` (or `incomplete`/`failed`).
#[derive(Debug, Default)]
pub struct ResponsesStream(Tally);

impl StreamUsage for ResponsesStream {
    fn observe(&mut self, event: Option<&str>, data: &str) -> Observed {
        let Ok(data) = serde_json::from_str::<Value>(data) else { return Observed::default() };
        let kind = event.or_else(|| data["type"].as_str()).unwrap_or("");
        match kind {
            "response.completed" | "response.incomplete" | "response.failed" => {
                if let Some(u) = data["response"].get("usage").filter(|u| u.is_object()) {
                    self.0.usage = Some(responses_usage(u));
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
    fn chat_facts_and_errors_name_the_field() {
        let f = facts(
            Endpoint::Chat,
            &json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": 50, "n": 2, "messages": []}),
        )
        .unwrap();
        assert_eq!((f.model.as_str(), f.stream, f.max_output_tokens, f.choices), ("gpt-4o-mini", true, Some(50), 2));
        let f = facts(Endpoint::Chat, &json!({"model": "m", "max_completion_tokens": 7, "max_tokens": 9})).unwrap();
        assert_eq!(f.max_output_tokens, Some(7), "max_completion_tokens wins");
        let err = |b: Value| facts(Endpoint::Chat, &b).unwrap_err().param;
        assert_eq!(err(json!({})), "model");
        assert_eq!(err(json!({"model": 5})), "model");
        assert_eq!(err(json!({"model": "m", "stream": "yes"})), "stream");
        assert_eq!(err(json!({"model": "m", "max_tokens": -1})), "max_tokens");
        assert_eq!(err(json!({"model": "m", "max_tokens": 0})), "max_tokens");
        assert_eq!(err(json!({"model": "m", "max_completion_tokens": 1e30})), "max_completion_tokens");
        assert_eq!(err(json!({"model": "m", "n": 500})), "n");
        assert_eq!(err(json!([1])), "body");
        let r = facts(Endpoint::Responses, &json!({"model": "m", "max_output_tokens": 3})).unwrap();
        assert_eq!(r.max_output_tokens, Some(3));
    }

    #[test]
    fn stream_usage_option_and_max_tokens_are_set_in_place() {
        let mut b = json!({"model": "m", "stream_options": {"other": 1}, "unknown": {"kept": true}});
        assert!(!wants_stream_usage(&b));
        request_stream_usage(&mut b);
        assert!(wants_stream_usage(&b));
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
        let seen = |s: &mut ChatStream, v: Value| s.observe(None, &v.to_string());
        seen(&mut s, json!({"choices": [{"delta": {"role": "assistant", "content": ""}}]}));
        seen(&mut s, json!({"choices": [{"delta": {"content": "Hello \"there\""}}], "usage": null}));
        seen(
            &mut s,
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}}]}),
        );
        assert_eq!(s.reported(), None);
        assert_eq!(s.output_chars(), 17, "escaped text counted as its characters");
        let chunk = json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}});
        assert!(is_usage_chunk(&chunk));
        assert_eq!(seen(&mut s, chunk), Observed { usage_only: true });
        assert_eq!(s.reported(), Some(TokenUsage { input: 5, cached_input: 0, cache_write: 0, output: 4 }));
        // Usage on a chunk that also has a choice is not a usage-only chunk.
        let mut t = ChatStream::default();
        let both =
            json!({"choices": [{"delta": {"content": "x"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}});
        assert_eq!(seen(&mut t, both), Observed { usage_only: false });
        assert!(t.reported().is_some());
        assert_eq!(t.observe(None, "not json"), Observed::default());
    }

    #[test]
    fn responses_stream_usage() {
        let mut s = ResponsesStream::default();
        s.observe(
            Some("response.output_text.delta"),
            &json!({"type": "response.output_text.delta", "delta": "abcd"}).to_string(),
        );
        assert_eq!(s.output_chars(), 4);
        s.observe(
            Some("response.completed"),
            &json!({"type": "response.completed", "response": {"usage": {"input_tokens": 7, "output_tokens": 1}}})
                .to_string(),
        );
        assert_eq!(s.reported().unwrap().input, 7);
    }
}
