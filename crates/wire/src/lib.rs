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

/// The string members whose characters count as streamed text (`content`, ...): the
/// tally every event of a stream adds to, for the estimate of a stream that breaks.
pub struct TextKeys {
    /// `"key"`, each with its searcher built once.
    finders: Vec<memchr::memmem::Finder<'static>>,
}

impl TextKeys {
    pub fn new(keys: &[&str]) -> TextKeys {
        let finders =
            keys.iter().map(|k| memchr::memmem::Finder::new(format!("\"{k}\"").as_bytes()).into_owned()).collect();
        TextKeys { finders }
    }

    /// Characters of the string values of these keys anywhere in `json` (an escape
    /// counts as the one character it stands for), without parsing it: each `"key"` is
    /// found by a vectorised search and counts when its opening quote is not escaped
    /// and it is followed by `:` and a string. (In JSON, such a `"key"` can only be a
    /// member's name: a quote inside a string is escaped.)
    pub fn chars(&self, json: &[u8]) -> u64 {
        let mut total = 0;
        for finder in &self.finders {
            for at in finder.find_iter(json) {
                let escapes = json[..at].iter().rev().take_while(|&&c| c == b'\\').count();
                if escapes % 2 == 1 {
                    continue;
                }
                let mut i = at + finder.needle().len();
                while json.get(i).is_some_and(u8::is_ascii_whitespace) {
                    i += 1;
                }
                if json.get(i) != Some(&b':') {
                    continue;
                }
                i += 1;
                while json.get(i).is_some_and(u8::is_ascii_whitespace) {
                    i += 1;
                }
                if json.get(i) == Some(&b'"') {
                    let end = scan::string_end(json, i + 1).unwrap_or(json.len());
                    total += chars(&json[i + 1..end]);
                }
            }
        }
        total
    }
}

/// The characters of a JSON string's contents: the bytes that start a UTF-8 sequence,
/// an escape (`\n`, `\u00e9`) counting as one.
fn chars(s: &[u8]) -> u64 {
    let mut n = s.iter().filter(|&&c| c & 0xC0 != 0x80).count();
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &s[i..]) {
        let escape = i + at;
        let width = if s.get(escape + 1) == Some(&b'u') { 6 } else { 2 };
        let width = width.min(s.len() - escape);
        n = n.saturating_sub(width - 1);
        i = escape + width;
        if i >= s.len() {
            break;
        }
    }
    n as u64
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
    fn observe(&mut self, event: Option<&str>, data: &[u8]) -> Observed;
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
        let keys = super::TextKeys::new(&["content", "arguments"]);
        let chunk = r#"{"choices":[{"delta":{"content":"héllo \"x\" \u00e9"},"finish_reason":null}],"usage":null}"#;
        assert_eq!(keys.chars(chunk.as_bytes()), 11);
        // A key's name inside another string, and non-string values, do not count.
        assert_eq!(keys.chars(br#"{"content":null,"other":"\"content\":\"no\""}"#), 0);
        assert_eq!(keys.chars(br#"{"a": {"arguments" : "{\"q\":1}"}}"#), 7);
        assert_eq!(keys.chars(br#"{"content":"unterminated"#), 12);
        assert_eq!(keys.chars(br#"{"content": 1, "x": "y", "content":"ab\u00e9\"#), 4);
        assert_eq!(keys.chars(b""), 0);
    }

    proptest::proptest! {
        /// Any input: no panic, and never more characters than the input has.
        #[test]
        fn text_chars_never_panics(s in "(\\\\|\"content\"|:|\"|.){0,40}") {
            let keys = super::TextKeys::new(&["content"]);
            proptest::prop_assert!(keys.chars(s.as_bytes()) <= s.chars().count() as u64);
        }
    }
}
