//! The providers' wire formats, as far as the gateway must understand them: the SSE
//! framing of streams, what a request asks for (model, streaming, max tokens, a bound on
//! its input tokens) and what an answer used (tokens, from JSON or from a stream).
//! One module per format. Pure: no I/O.
#![forbid(unsafe_code)]

pub mod anthropic;
pub mod bound;
pub mod openai;
pub mod request;
pub mod scan;
pub mod sse;
pub mod translate;
pub mod usage;

pub use request::{ReadError, RequestFacts, RequestKind};
use serde_json::Value;
use spendgate_core::TokenUsage;
pub use usage::{UsageFormat, answer_usage, usage_in};

/// A request field the gateway needs is missing or of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct RequestError {
    pub param: String,
    pub reason: String,
}

impl RequestError {
    pub fn new(param: &str, reason: impl Into<String>) -> Self {
        RequestError { param: param.to_string(), reason: reason.into() }
    }
}

/// What a stream has said so far: its usage, once reported, and the characters of
/// output streamed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub usage: Option<TokenUsage>,
    pub chars: u64,
}

impl Tally {
    /// Counts the characters of a text field, if it is one.
    pub fn count(&mut self, text: &Value) {
        self.chars += text.as_str().map_or(0, |s| s.chars().count() as u64);
    }
}

/// Characters of the JSON string values of `keys` anywhere in `json` (an escape counts
/// as the one character it stands for), without parsing it: the streamed-text tally of
/// every event, for the estimate of a stream that breaks. Strings are skipped whole, so
/// a key's name inside another string never counts.
pub fn text_chars(json: &str, keys: &[&str]) -> u64 {
    let b = json.as_bytes();
    let (mut total, mut i, mut wanted) = (0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => {
                let (end, chars) = scan_string(b, i + 1);
                if wanted {
                    total += chars;
                    wanted = false;
                } else {
                    let mut k = end + 1;
                    while k < b.len() && b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if k < b.len() && b[k] == b':' && keys.contains(&&json[i + 1..end]) {
                        wanted = true;
                        i = k + 1;
                        continue;
                    }
                }
                i = end + 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                // The value is not a string (null, a number, an object): not text.
                wanted = false;
                i += 1;
            }
        }
    }
    total
}

/// From just after an opening quote: the index of the closing quote (or the end) and
/// the characters in between.
fn scan_string(b: &[u8], mut j: usize) -> (usize, u64) {
    let mut chars = 0;
    while j < b.len() && b[j] != b'"' {
        if b[j] == b'\\' {
            j += if b.get(j + 1) == Some(&b'u') { 6 } else { 2 };
        } else {
            j += 1;
            while j < b.len() && (b[j] & 0xC0) == 0x80 {
                j += 1;
            }
        }
        chars += 1;
    }
    (j.min(b.len()), chars)
}

/// What one event was, to the watcher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The event carries only usage (OpenAI's `include_usage` chunk).
    pub usage_only: bool,
}

/// Watches a stream's events and keeps what they say about usage. Reads the raw `data`
/// (JSON) itself, with typed, borrowed parsing of just the fields it needs: this runs
/// for every event a stream passes.
pub trait StreamUsage: Send {
    /// Looks at one event's data (and name, where the format has them).
    fn observe(&mut self, event: Option<&str>, data: &str) -> Observed;
    fn tally(&self) -> &Tally;
    /// The provider's usage, once it has been reported in full.
    fn reported(&self) -> Option<TokenUsage> {
        self.tally().usage
    }
    /// Characters of output streamed so far (for an estimate when the stream breaks).
    fn output_chars(&self) -> u64 {
        self.tally().chars
    }
    /// Whatever usage was reported, even partially (Anthropic reports input first).
    fn partial(&self) -> TokenUsage {
        self.tally().usage.unwrap_or_default()
    }
}

/// The usage estimated for a stream that ended without reporting it: the input part
/// from whatever was reported (else the estimate given), output from the characters
/// streamed (4 per token, rounded up, at least 1 if anything was streamed).
pub fn estimate(partial: TokenUsage, output_chars: u64, input_estimate: u64) -> TokenUsage {
    let reported_input = partial.input + partial.cached_input + partial.cache_write;
    TokenUsage {
        input: if reported_input == 0 { input_estimate } else { partial.input },
        output: partial.output.max(output_chars.div_ceil(4)),
        ..partial
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn text_chars_counts_only_the_named_string_values() {
        let keys = ["content", "arguments"];
        let chunk = r#"{"choices":[{"delta":{"content":"héllo \"x\" \u00e9"},"finish_reason":null}],"usage":null}"#;
        assert_eq!(super::text_chars(chunk, &keys), 11);
        // A key's name inside another string, and non-string values, do not count.
        assert_eq!(super::text_chars(r#"{"content":null,"other":"\"content\":\"no\""}"#, &keys), 0);
        assert_eq!(super::text_chars(r#"{"a": {"arguments" : "{\"q\":1}"}}"#, &keys), 7);
        assert_eq!(super::text_chars(r#"{"content":"unterminated"#, &keys), 12);
        assert_eq!(super::text_chars("", &keys), 0);
    }

    proptest::proptest! {
        /// Any input: no panic, and never more characters than the input has.
        #[test]
        fn text_chars_never_panics(s in ".{0,200}") {
            proptest::prop_assert!(super::text_chars(&s, &["content"]) <= s.chars().count() as u64);
        }
    }
}
