//! Token usage as the providers report it. An answer passed on as it is has only its
//! `usage` member found (by [`crate::scan`]) and read: no tree is built. The same fields
//! are read from a usage object that is already a [`Value`] (translated answers).
//!
//! Reading is lenient, like the providers' SDKs: a count that is not a whole number
//! reads as absent, and a `usage` that is not an object as no usage at all.

use crate::scan;
use serde_json::Value;
use spendgate_core::TokenUsage;

/// Which provider format a usage object is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageFormat {
    /// OpenAI Chat Completions: `prompt_tokens` includes the cached tokens.
    Chat,
    /// OpenAI Responses: `input_tokens` includes the cached tokens.
    Responses,
    /// OpenAI Embeddings: input only.
    Embeddings,
    /// Anthropic Messages: cache reads and writes apart from `input_tokens`.
    Messages,
}

/// The counts of a usage object, in the order of [`Reported::counts`].
const COUNTS: [&str; 8] = [
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_tokens_details",
    "input_tokens_details",
];
const PROMPT: usize = 0;
const COMPLETION: usize = 1;
const INPUT: usize = 2;
const OUTPUT: usize = 3;
const CACHE_READ: usize = 4;
const CACHE_WRITE: usize = 5;
/// `cached_tokens` of `prompt_tokens_details` and of `input_tokens_details`.
const PROMPT_CACHED: usize = 6;
const INPUT_CACHED: usize = 7;

/// A usage object of any of the formats: the counts of all of them (absent: not given,
/// or not a whole number).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reported {
    counts: [Option<u64>; 8],
}

/// A whole number written as JSON, else `None`.
fn whole(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse().ok()
}

impl Reported {
    /// From the raw bytes of a usage object; `None` when it is not an object.
    pub(crate) fn from_raw(raw: &[u8]) -> Option<Reported> {
        let found = scan::members(raw, COUNTS)?;
        let mut counts = found.map(|v| v.and_then(whole));
        for details in [PROMPT_CACHED, INPUT_CACHED] {
            let cached = found[details].and_then(|d| scan::members(d, ["cached_tokens"]));
            counts[details] = cached.and_then(|[c]| c).and_then(whole);
        }
        Some(Reported { counts })
    }

    /// From a usage object already parsed; `None` when it is not an object.
    pub(crate) fn from_value(usage: &Value) -> Option<Reported> {
        let obj = usage.as_object()?;
        let mut counts = COUNTS.map(|name| obj.get(name).and_then(Value::as_u64));
        for details in [PROMPT_CACHED, INPUT_CACHED] {
            counts[details] = obj.get(COUNTS[details]).and_then(|d| d.get("cached_tokens")).and_then(Value::as_u64);
        }
        Some(Reported { counts })
    }

    fn count(&self, i: usize) -> u64 {
        self.counts[i].unwrap_or(0)
    }

    pub(crate) fn input_tokens(&self) -> Option<u64> {
        self.counts[INPUT]
    }

    pub(crate) fn output_tokens(&self) -> Option<u64> {
        self.counts[OUTPUT]
    }

    pub(crate) fn cache_read_input_tokens(&self) -> Option<u64> {
        self.counts[CACHE_READ]
    }

    pub(crate) fn cache_creation_input_tokens(&self) -> Option<u64> {
        self.counts[CACHE_WRITE]
    }

    /// Tokens by kind; cached input is priced apart from the rest of the input.
    pub(crate) fn tokens(&self, format: UsageFormat) -> TokenUsage {
        match format {
            UsageFormat::Chat => TokenUsage {
                input: self.count(PROMPT).saturating_sub(self.count(PROMPT_CACHED)),
                cached_input: self.count(PROMPT_CACHED),
                cache_write: 0,
                output: self.count(COMPLETION),
            },
            UsageFormat::Responses => TokenUsage {
                input: self.count(INPUT).saturating_sub(self.count(INPUT_CACHED)),
                cached_input: self.count(INPUT_CACHED),
                cache_write: 0,
                output: self.count(OUTPUT),
            },
            UsageFormat::Embeddings => TokenUsage { input: self.count(PROMPT), ..TokenUsage::default() },
            UsageFormat::Messages => TokenUsage {
                input: self.count(INPUT),
                cached_input: self.count(CACHE_READ),
                cache_write: self.count(CACHE_WRITE),
                output: self.count(OUTPUT),
            },
        }
    }
}

/// The usage of a whole answer body: its `usage` member, found by a scan from the end
/// (where answers put it), read on its own; `None` when the body is not an object or
/// reports no usage object.
pub fn answer_usage(format: UsageFormat, body: &[u8]) -> Option<TokenUsage> {
    Reported::from_raw(scan::last_member(body, "usage")?).map(|u| u.tokens(format))
}

/// The usage of an answer already parsed (its `usage` member), if it reports one.
pub fn usage_in(format: UsageFormat, answer: &Value) -> Option<TokenUsage> {
    Reported::from_value(answer.get("usage")?).map(|u| u.tokens(format))
}

/// Whether a raw JSON value is an empty array.
pub(crate) fn is_empty_array(raw: &[u8]) -> bool {
    raw.strip_prefix(b"[").and_then(|rest| rest.strip_suffix(b"]")).is_some_and(|inside| inside.trim_ascii().is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_without_their_other_fields() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"hi \"usage\": {}"}}],
            "usage":{"prompt_tokens":30,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":20}}}"#;
        let u = answer_usage(UsageFormat::Chat, body).unwrap();
        assert_eq!(u, TokenUsage { input: 10, cached_input: 20, cache_write: 0, output: 4 });
        assert_eq!(answer_usage(UsageFormat::Chat, b"{}"), None);
        assert_eq!(answer_usage(UsageFormat::Chat, br#"{"usage":null}"#), None);
        assert_eq!(answer_usage(UsageFormat::Chat, br#"{"usage":[1]}"#), None);
        assert_eq!(answer_usage(UsageFormat::Chat, b"not json"), None);
        assert_eq!(answer_usage(UsageFormat::Chat, br#"{"usage":{"prompt_tokens":1}"#), None, "cut short");
    }

    #[test]
    fn odd_counts_read_as_zero_and_the_rest_still_counts() {
        let body = br#"{"usage":{"input_tokens":"12","output_tokens":7,"cache_read_input_tokens":-1,
            "cache_creation_input_tokens":2.5,"input_tokens_details":5}}"#;
        let u = answer_usage(UsageFormat::Messages, body).unwrap();
        assert_eq!(u, TokenUsage { input: 0, cached_input: 0, cache_write: 0, output: 7 });
        assert_eq!(answer_usage(UsageFormat::Responses, body).unwrap().output, 7);
    }

    #[test]
    fn every_format_and_values_alike() {
        let cases = [
            (UsageFormat::Chat, json!({"prompt_tokens": 9, "completion_tokens": 2}), (9, 0, 0, 2)),
            (
                UsageFormat::Responses,
                json!({"input_tokens": 9, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 4}}),
                (5, 4, 0, 2),
            ),
            (UsageFormat::Embeddings, json!({"prompt_tokens": 9, "total_tokens": 9}), (9, 0, 0, 0)),
            (
                UsageFormat::Messages,
                json!({"input_tokens": 9, "output_tokens": 2, "cache_read_input_tokens": 3,
                    "cache_creation_input_tokens": 1}),
                (9, 3, 1, 2),
            ),
        ];
        for (format, usage, (input, cached_input, cache_write, output)) in cases {
            let want = TokenUsage { input, cached_input, cache_write, output };
            let answer = json!({"object": "x", "usage": usage});
            assert_eq!(usage_in(format, &answer), Some(want), "{format:?}");
            assert_eq!(answer_usage(format, answer.to_string().as_bytes()), Some(want), "{format:?}");
        }
    }

    #[test]
    fn empty_arrays() {
        assert!(is_empty_array(b"[]") && is_empty_array(b"[ \n ]"));
        assert!(!is_empty_array(b"[1]") && !is_empty_array(b"null") && !is_empty_array(b"[") && !is_empty_array(b""));
    }

    fn count() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            Just(Value::Null),
            Just(json!("7")),
            Just(json!({"cached_tokens": 3})),
            Just(json!({"cached_tokens": "x"})),
        ]
    }

    proptest! {
        /// Raw bytes and a tree read alike.
        #[test]
        fn raw_and_tree_agree(fields in prop::collection::vec((prop::sample::select(&COUNTS[..]), count()), 0..10)) {
            let usage = Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            let raw = serde_json::to_vec(&usage).unwrap();
            let tree: Value = serde_json::from_slice(&raw).unwrap();
            prop_assert_eq!(Reported::from_raw(&raw), Reported::from_value(&tree));
        }
    }
}
