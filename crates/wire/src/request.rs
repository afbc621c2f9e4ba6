//! What a request asks for (model, streaming, max tokens, a bound on its input tokens),
//! read in one pass over its bytes without building a JSON tree: a request that is
//! passed on as it is never has one built. The same reading runs over a tree
//! ([`read_value`]) for requests that are.
//!
//! The fields are checked after the pass, in a fixed order, so that a request with two
//! bad fields always names the same one.

use crate::RequestError;
use crate::bound::{Walk, Walked, walk_object};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// The request bodies the gateway reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Chat,
    Responses,
    Embeddings,
    Messages,
    CountTokens,
}

impl RequestKind {
    /// The fields that carry the max output tokens, in the order they are checked (the
    /// first one given wins).
    fn max_fields(self) -> &'static [&'static str] {
        match self {
            RequestKind::Chat => &["max_completion_tokens", "max_tokens"],
            RequestKind::Responses => &["max_output_tokens"],
            RequestKind::Messages => &["max_tokens"],
            RequestKind::Embeddings | RequestKind::CountTokens => &[],
        }
    }
}

/// What the gateway reads from a request body before sending it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub model: String,
    pub stream: bool,
    /// The max output tokens the request asked for, if it did.
    pub max_output_tokens: Option<u64>,
    /// Completions asked for (OpenAI `n`), 1 elsewhere.
    pub choices: u64,
    /// Upper bound on the input tokens (see [`crate::bound`]).
    pub input_bound: u64,
    /// The body has a `stream_options` member.
    pub stream_options: bool,
    /// It asks for usage in the stream (`stream_options.include_usage: true`).
    pub stream_usage: bool,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON at all.
    #[error("the request body is not valid JSON ({0})")]
    Json(#[from] serde_json::Error),
    /// JSON, but a field is missing or wrong.
    #[error(transparent)]
    Field(#[from] RequestError),
}

/// Max tokens anyone may ask for (well above any model's maximum).
pub const MAX_TOKENS_CEILING: u64 = 100_000_000;
/// Completions one request may ask for (OpenAI's `n`).
const MAX_CHOICES: u64 = 128;

/// Reads a request body of `kind`.
pub fn read(kind: RequestKind, body: &[u8]) -> Result<RequestFacts, ReadError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let fields = Top.deserialize(&mut de)?;
    de.end()?;
    Ok(fields.check(kind)?)
}

/// Reads a request that is already a tree.
pub fn read_value(kind: RequestKind, body: &Value) -> Result<RequestFacts, RequestError> {
    Top.deserialize(body).map_err(|e| RequestError::new("body", e.to_string()))?.check(kind)
}

/// A scalar member as it was given, checked later.
#[derive(Clone, Debug, Default, PartialEq)]
enum Given {
    #[default]
    Absent,
    Null,
    Bool(bool),
    Whole(u64),
    Text(String),
    /// Anything else: a negative or fractional number, an array, an object.
    Other,
}

/// The members of the top-level object that the gateway reads.
#[derive(Debug, Default)]
struct Fields {
    /// The body is an object (else nothing else was read).
    object: bool,
    model: Given,
    stream: Given,
    max_tokens: Given,
    max_completion_tokens: Given,
    max_output_tokens: Given,
    n: Given,
    messages: Shape,
    input: Shape,
    stream_options: bool,
    stream_usage: bool,
    bound: u64,
}

impl Fields {
    fn given(&mut self, key: &str) -> Option<&mut Given> {
        Some(match key {
            "model" => &mut self.model,
            "stream" => &mut self.stream,
            "max_tokens" => &mut self.max_tokens,
            "max_completion_tokens" => &mut self.max_completion_tokens,
            "max_output_tokens" => &mut self.max_output_tokens,
            "n" => &mut self.n,
            _ => return None,
        })
    }

    fn check(self, kind: RequestKind) -> Result<RequestFacts, RequestError> {
        if !self.object {
            return Err(RequestError::new("body", "must be a JSON object"));
        }
        let mut max_output_tokens = None;
        for field in kind.max_fields() {
            let given = match *field {
                "max_completion_tokens" => &self.max_completion_tokens,
                "max_output_tokens" => &self.max_output_tokens,
                _ => &self.max_tokens,
            };
            max_output_tokens = max_output_tokens.or(positive(given, field, MAX_TOKENS_CEILING)?);
        }
        if kind == RequestKind::Messages && max_output_tokens.is_none() {
            return Err(RequestError::new("max_tokens", "is required"));
        }
        let choices = match kind {
            RequestKind::Chat => positive(&self.n, "n", MAX_CHOICES)?.unwrap_or(1),
            _ => 1,
        };
        let model = match self.model {
            Given::Text(m) if !m.is_empty() => m,
            Given::Text(_) => return Err(RequestError::new("model", "must not be empty")),
            Given::Absent => return Err(RequestError::new("model", "is required")),
            _ => return Err(RequestError::new("model", "must be a string")),
        };
        let stream = match (kind, self.stream) {
            (RequestKind::CountTokens, _) | (_, Given::Absent | Given::Null) => false,
            (_, Given::Bool(b)) => b,
            _ => return Err(RequestError::new("stream", "must be true or false")),
        };
        match kind {
            RequestKind::Chat | RequestKind::Messages | RequestKind::CountTokens => match self.messages {
                Shape::Array => {}
                Shape::Absent => return Err(RequestError::new("messages", "is required")),
                _ => return Err(RequestError::new("messages", "must be an array of messages")),
            },
            RequestKind::Responses | RequestKind::Embeddings => match self.input {
                Shape::Text | Shape::Array => {}
                // A response may continue a previous one (or use a stored prompt) instead.
                Shape::Absent if kind == RequestKind::Responses => {}
                Shape::Absent => return Err(RequestError::new("input", "is required")),
                _ => return Err(RequestError::new("input", "must be a string or an array")),
            },
        }
        if kind == RequestKind::CountTokens {
            max_output_tokens = Some(0);
        }
        Ok(RequestFacts {
            model,
            stream,
            max_output_tokens,
            choices,
            input_bound: self.bound,
            stream_options: self.stream_options,
            stream_usage: self.stream_usage,
        })
    }
}

/// A positive whole number, if given (null counts as absent).
fn positive(given: &Given, field: &str, max: u64) -> Result<Option<u64>, RequestError> {
    match given {
        Given::Absent | Given::Null => Ok(None),
        Given::Whole(0) => Err(RequestError::new(field, "must be at least 1")),
        Given::Whole(n) if *n <= max => Ok(Some(*n)),
        Given::Whole(n) => Err(RequestError::new(field, format!("is {n}; at most {max}"))),
        _ => Err(RequestError::new(field, "must be a positive whole number")),
    }
}

impl Given {
    fn of(member: Option<&Value>) -> Given {
        match member {
            None => Given::Absent,
            Some(Value::Null) => Given::Null,
            Some(Value::Bool(b)) => Given::Bool(*b),
            Some(Value::Number(n)) => n.as_u64().map_or(Given::Other, Given::Whole),
            Some(Value::String(s)) => Given::Text(s.clone()),
            Some(_) => Given::Other,
        }
    }
}

/// A positive whole number member of an object, if given (for requests read as trees,
/// with the same rule).
pub(crate) fn positive_member(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    max: u64,
) -> Result<Option<u64>, RequestError> {
    positive(&Given::of(obj.get(field)), field, max)
}

/// The `stream` member of an object: absent or null is false.
pub(crate) fn stream_member(obj: &serde_json::Map<String, Value>) -> Result<bool, RequestError> {
    match Given::of(obj.get("stream")) {
        Given::Absent | Given::Null => Ok(false),
        Given::Bool(b) => Ok(b),
        _ => Err(RequestError::new("stream", "must be true or false")),
    }
}

/// The whole body: the top-level object's members, each walked for the bound.
struct Top;

impl<'de> DeserializeSeed<'de> for Top {
    type Value = Fields;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields { object: true, ..Fields::default() };
        let walked = walk_object(map, |key, map| match key {
            "stream_options" => {
                // Small: read whole, to see `include_usage`.
                let options: Value = map.next_value()?;
                fields.stream_options = true;
                fields.stream_usage = options.get("include_usage").and_then(Value::as_bool) == Some(true);
                Ok(Walk.deserialize(&options).unwrap_or_default())
            }
            "messages" | "input" => {
                let (shape, walked) = map.next_value_seed(Shaped)?;
                *(if key == "messages" { &mut fields.messages } else { &mut fields.input }) = shape;
                Ok(walked)
            }
            _ => match fields.given(key) {
                Some(given) => {
                    let (value, walked) = map.next_value_seed(Scalar)?;
                    *given = value;
                    Ok(walked)
                }
                None => map.next_value_seed(Walk),
            },
        })?;
        fields.bound = walked.bound;
        Ok(fields)
    }
    // Anything but an object is walked and refused after (`Fields::object` false).
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Fields, A::Error> {
        Walk.visit_seq(seq)?;
        Ok(Fields::default())
    }
    fn visit_unit<E>(self) -> Result<Fields, E> {
        Ok(Fields::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Fields, E> {
        Ok(Fields::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Fields, E> {
        Ok(Fields::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Fields, E> {
        Ok(Fields::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Fields, E> {
        Ok(Fields::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Fields, E> {
        Ok(Fields::default())
    }
}

/// A member the gateway reads: what it is, and its walk.
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = (Given, Walked);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(Given, Walked), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = (Given, Walked);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok((Given::Null, Walk.visit_unit()?))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok((Given::Bool(b), Walk.visit_bool(b)?))
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok((Given::Whole(n), Walk.visit_u64(n)?))
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok((Given::Other, Walk.visit_i64(n)?))
    }
    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Self::Value, E> {
        Ok((Given::Other, Walk.visit_f64(f)?))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok((Given::Text(s.to_owned()), Walk.visit_str(s)?))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok((Given::Other, Walk.visit_seq(seq)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok((Given::Other, Walk.visit_map(map)?))
    }
}

/// The JSON type of a member whose content the gateway does not read (`messages`,
/// `input`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Shape {
    #[default]
    Absent,
    Text,
    Array,
    /// A number, a boolean, an object.
    Other,
}

/// A member the gateway only checks the type of: its type, and its walk (nothing copied).
struct Shaped;

impl<'de> DeserializeSeed<'de> for Shaped {
    type Value = (Shape, Walked);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(Shape, Walked), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shaped {
    type Value = (Shape, Walked);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    /// Null counts as absent.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok((Shape::Absent, Walk.visit_unit()?))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok((Shape::Other, Walk.visit_bool(b)?))
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok((Shape::Other, Walk.visit_u64(n)?))
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok((Shape::Other, Walk.visit_i64(n)?))
    }
    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Self::Value, E> {
        Ok((Shape::Other, Walk.visit_f64(f)?))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok((Shape::Text, Walk.visit_str(s)?))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok((Shape::Array, Walk.visit_seq(seq)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok((Shape::Other, Walk.visit_map(map)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bound::tests::{json_value, oracle};
    use proptest::prelude::*;
    use serde_json::json;

    fn facts(kind: RequestKind, body: Value) -> Result<RequestFacts, RequestError> {
        // The tree of the bytes (parsed back, a float may differ in its last bit).
        let raw = serde_json::to_vec(&body).unwrap();
        let from_tree = read_value(kind, &serde_json::from_slice(&raw).unwrap());
        let from_bytes = read(kind, &raw).map_err(|e| match e {
            ReadError::Field(f) => f,
            ReadError::Json(e) => panic!("{e}"),
        });
        assert_eq!(from_tree, from_bytes, "a tree and its bytes read alike");
        from_tree
    }

    #[test]
    fn chat_facts_and_errors_name_the_field() {
        let f = facts(
            RequestKind::Chat,
            json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": 50, "n": 2, "messages": []}),
        )
        .unwrap();
        assert_eq!((f.model.as_str(), f.stream, f.max_output_tokens, f.choices), ("gpt-4o-mini", true, Some(50), 2));
        assert!(!f.stream_options && !f.stream_usage);
        let f = facts(
            RequestKind::Chat,
            json!({"model": "m", "max_completion_tokens": 7, "max_tokens": 9, "messages": []}),
        )
        .unwrap();
        assert_eq!(f.max_output_tokens, Some(7), "max_completion_tokens wins");
        let err = |mut b: Value| {
            if let Some(o) = b.as_object_mut() {
                o.entry("messages").or_insert(json!([]));
            }
            facts(RequestKind::Chat, b).unwrap_err().param
        };
        assert_eq!(err(json!({})), "model");
        assert_eq!(err(json!({"model": 5})), "model");
        assert_eq!(err(json!({"model": null})), "model");
        assert_eq!(err(json!({"model": ""})), "model");
        assert_eq!(err(json!({"model": "m", "stream": "yes"})), "stream");
        assert_eq!(err(json!({"model": "m", "max_tokens": -1})), "max_tokens");
        assert_eq!(err(json!({"model": "m", "max_tokens": 0})), "max_tokens");
        assert_eq!(err(json!({"model": "m", "max_tokens": 2.5})), "max_tokens");
        assert_eq!(err(json!({"model": "m", "max_completion_tokens": 1e30})), "max_completion_tokens");
        assert_eq!(err(json!({"model": "m", "max_tokens": 100_000_001})), "max_tokens");
        assert_eq!(err(json!({"model": "m", "n": 500})), "n");
        assert_eq!(err(json!({"model": 1, "n": 500, "max_tokens": "x"})), "max_tokens", "a fixed order");
        assert_eq!(err(json!([1])), "body");
        assert_eq!(err(json!("text")), "body");
        for messages in [json!("hi"), json!({"role": "user"}), json!(5), json!(true)] {
            assert_eq!(err(json!({"model": "m", "messages": messages})), "messages", "{messages}");
        }
        let missing = facts(RequestKind::Chat, json!({"model": "m"})).unwrap_err();
        assert_eq!((missing.param.as_str(), missing.reason.as_str()), ("messages", "is required"));
        assert!(facts(RequestKind::Chat, json!({"model": "m", "messages": null})).is_err());
        for input in [json!("x"), json!(["x", "y"]), json!([[1, 2]])] {
            assert!(facts(RequestKind::Embeddings, json!({"model": "m", "input": input})).is_ok());
            assert!(facts(RequestKind::Responses, json!({"model": "m", "input": input})).is_ok());
        }
        for input in [json!(5), json!({"text": "x"})] {
            let e = facts(RequestKind::Embeddings, json!({"model": "m", "input": input})).unwrap_err();
            assert_eq!(e.param, "input");
            assert_eq!(
                facts(RequestKind::Responses, json!({"model": "m", "input": input})).unwrap_err().param,
                "input"
            );
        }
        assert_eq!(facts(RequestKind::Embeddings, json!({"model": "m"})).unwrap_err().param, "input");
        assert!(facts(RequestKind::Responses, json!({"model": "m", "previous_response_id": "r"})).is_ok());
        let r = facts(RequestKind::Responses, json!({"model": "m", "max_output_tokens": 3, "max_tokens": 0})).unwrap();
        assert_eq!(r.max_output_tokens, Some(3), "max_tokens is not a Responses field");
        let e = facts(RequestKind::Embeddings, json!({"model": "m", "input": "x", "n": 0})).unwrap();
        assert_eq!((e.max_output_tokens, e.choices), (None, 1));
    }

    #[test]
    fn messages_require_max_tokens_and_count_tokens_only_a_model() {
        let f = facts(
            RequestKind::Messages,
            json!({"model": "claude-sonnet-4-20250514", "max_tokens": 1024, "stream": true, "messages": []}),
        )
        .unwrap();
        assert_eq!((f.max_output_tokens, f.stream), (Some(1024), true));
        let err = |b: Value| facts(RequestKind::Messages, b).unwrap_err().param;
        assert_eq!(err(json!({"model": "m", "messages": []})), "max_tokens");
        assert_eq!(err(json!({"max_tokens": 5, "messages": []})), "model");
        assert_eq!(err(json!({"model": "m", "max_tokens": 5})), "messages");
        assert_eq!(err(json!({"model": "m", "max_tokens": 5, "messages": "hi"})), "messages");
        assert_eq!(facts(RequestKind::CountTokens, json!({"model": "m"})).unwrap_err().param, "messages");
        let c = facts(RequestKind::CountTokens, json!({"model": "m", "stream": "x", "messages": []})).unwrap();
        assert_eq!((c.max_output_tokens, c.stream), (Some(0), false));
        assert!(c.input_bound > 0);
    }

    #[test]
    fn stream_options_are_seen() {
        let chat = |options: Value| {
            facts(RequestKind::Chat, json!({"model": "m", "messages": [], "stream_options": options})).unwrap()
        };
        let f = chat(json!({"include_usage": true}));
        assert!(f.stream_options && f.stream_usage);
        let f = chat(json!({"include_usage": "yes"}));
        assert!(f.stream_options && !f.stream_usage);
        let f = chat(Value::Null);
        assert!(f.stream_options && !f.stream_usage);
    }

    #[test]
    fn bytes_that_are_not_json_say_so() {
        for body in [&b""[..], b"{", b"{\"model\": \"m\"} x", b"nul"] {
            assert!(matches!(read(RequestKind::Chat, body), Err(ReadError::Json(_))), "{body:?}");
        }
        let err = read(RequestKind::Chat, b"{\"model\": }").unwrap_err().to_string();
        assert!(err.starts_with("the request body is not valid JSON (expected value at line 1"), "{err}");
    }

    proptest! {
        /// The bound over the bytes of any object is the tree's.
        #[test]
        fn the_bound_is_the_trees(members in prop::collection::vec(("[a-z_]{1,12}", json_value()), 0..8)) {
            let mut body: serde_json::Map<String, Value> = members.into_iter().collect();
            body.insert("model".into(), json!("m"));
            if !body.get("messages").is_some_and(Value::is_array) {
                body.insert("messages".into(), json!([]));
            }
            body.remove("stream_options");
            for f in ["stream", "max_tokens", "max_completion_tokens", "n"] {
                body.remove(f);
            }
            let body = Value::Object(body);
            let f = facts(RequestKind::Chat, body.clone()).unwrap();
            let parsed: Value = serde_json::from_slice(&serde_json::to_vec(&body).unwrap()).unwrap();
            prop_assert_eq!(f.input_bound, oracle(&parsed));
        }
    }
}
