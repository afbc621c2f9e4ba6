//! The providers' wire formats, as far as the gateway must understand them: the SSE
//! framing of streams, what a request asks for (model, streaming, max tokens, a bound on
//! its input tokens) and what an answer used (tokens, from JSON or from a stream).
//! One module per format. Pure: no I/O.
#![forbid(unsafe_code)]

pub mod anthropic;
pub mod bound;
pub mod openai;
pub mod sse;
pub mod translate;

use serde_json::Value;
use spendgate_core::TokenUsage;

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

/// What the gateway reads from a request body before sending it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub model: String,
    pub stream: bool,
    /// The max output tokens the request asked for, if it did.
    pub max_output_tokens: Option<u64>,
    /// Completions asked for (OpenAI `n`), 1 elsewhere.
    pub choices: u64,
    /// Upper bound on the input tokens (see [`bound`]).
    pub input_bound: u64,
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

/// Watches a stream's events and keeps what they say about usage.
pub trait StreamUsage: Send {
    /// Looks at one event's data (and name, where the format has them).
    fn observe(&mut self, event: Option<&str>, data: &Value);
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

/// Reads an unsigned integer field, absent or null as 0.
pub(crate) fn uint(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64().unwrap_or(0)
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
