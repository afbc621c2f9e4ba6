//! The deterministic part of the mock, shared by every endpoint: the generated text
//! (one word plus a space per token), the `[[mock:...]]` directives read from the
//! prompt, the input-token estimate, and the output plan (how many tokens, capped or
//! not). Pure functions over `serde_json::Value`: no I/O, no clock.

use serde_json::Value;

/// The words the reply cycles through; token `i` is `WORDS[i % WORDS.len()]` + a space.
pub const WORDS: [&str; 19] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

/// Output tokens reported for a tool-call answer, whatever the cap.
pub const TOOL_OUTPUT_TOKENS: u32 = 12;

/// The arguments of every mock tool call, in the fragments they are streamed in.
pub const TOOL_ARGUMENT_FRAGMENTS: [&str; 4] = ["{\"location\":", "\"Paris\",", "\"unit\":", "\"celsius\"}"];

/// Used when the request asks for a tool call but declares no named tool.
pub const FALLBACK_TOOL_NAME: &str = "get_weather";

/// Anthropic: the short text block before a `tool_use` block (its words are streamed
/// one delta each). Counted inside `TOOL_OUTPUT_TOKENS`.
pub const TOOL_PREAMBLE: [&str; 3] = ["Let ", "me ", "check. "];

/// Anthropic: the `thinking` block's text, one delta per word; each word is one
/// output token on top of the text's.
pub const THINKING_WORDS: [&str; 8] = ["The ", "user ", "wants ", "some ", "text, ", "so ", "write ", "it. "];

/// Anthropic: the `signature` of the thinking block (opaque to clients; must round-trip).
pub const THINKING_SIGNATURE: &str = "bW9jay10aGlua2luZy1zaWduYXR1cmUtdjE=";

/// The full tool-call arguments (the fragments joined).
pub fn tool_arguments() -> String {
    TOOL_ARGUMENT_FRAGMENTS.concat()
}

/// The tool-call arguments as a JSON value (Anthropic's `input`).
pub fn tool_input() -> Value {
    serde_json::json!({ "location": "Paris", "unit": "celsius" })
}

/// Token `i` of the reply: a word followed by a space.
pub fn token(i: usize) -> String {
    format!("{} ", WORDS[i % WORDS.len()])
}

/// The tokens of a reply of `n` tokens, in order.
pub fn tokens(n: u32) -> Vec<String> {
    (0..n as usize).map(token).collect()
}

/// The text of a reply of `n` tokens.
pub fn text(n: u32) -> String {
    tokens(n).concat()
}

/// What a request's `[[mock:NAME]]` / `[[mock:NAME:VALUE]]` directives ask for.
/// Unknown names and unparsable values are ignored; a later directive of the same
/// name wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `tokens:N`: produce N output tokens (before the request's cap).
    pub tokens: Option<u32>,
    /// `cached:N`: report N cached (cache-read) input tokens.
    pub cached: u32,
    /// `cache_write:N`: Anthropic `cache_creation_input_tokens`.
    pub cache_write: u32,
    /// `tool`: answer with a call to the request's first tool.
    pub tool: bool,
    /// `error:STATUS`: answer with that HTTP status and the provider's error body.
    pub error: Option<u16>,
    /// `midstream_error`: streaming only, an in-stream error after 2 content chunks.
    pub midstream_error: bool,
    /// `break:K`: streaming only, abort the connection after K content chunks.
    pub break_after: Option<usize>,
    /// `stall:K`: streaming only, after K content chunks nothing more comes and the
    /// stream stays open.
    pub stall: bool,
    /// `slow:MS`: delay between stream events for this request.
    pub slow_ms: Option<u64>,
    /// `thinking`: Anthropic, a `thinking` block before the text.
    pub thinking: bool,
}

impl Directives {
    /// Reads every `[[mock:...]]` in `text`.
    pub fn parse(text: &str) -> Directives {
        let mut d = Directives::default();
        let mut rest = text;
        while let Some(start) = rest.find("[[mock:") {
            let after = &rest[start + "[[mock:".len()..];
            let Some(end) = after.find("]]") else { break };
            let body = &after[..end];
            rest = &after[end + 2..];
            let (name, value) = match body.split_once(':') {
                Some((name, value)) => (name.trim(), Some(value.trim())),
                None => (body.trim(), None),
            };
            match (name, value) {
                ("tokens", Some(v)) => d.tokens = v.parse().ok().or(d.tokens),
                ("cached", Some(v)) => d.cached = v.parse().unwrap_or(d.cached),
                ("cache_write", Some(v)) => d.cache_write = v.parse().unwrap_or(d.cache_write),
                ("tool", _) => d.tool = true,
                ("error", Some(v)) => {
                    if let Ok(status) = v.parse::<u16>() {
                        // Only error statuses make sense here; anything else is a 500.
                        d.error = Some(if (400..=599).contains(&status) { status } else { 500 });
                    }
                }
                ("midstream_error", _) => d.midstream_error = true,
                ("break", Some(v)) => d.break_after = v.parse().ok().or(d.break_after),
                ("stall", Some(v)) => {
                    if let Ok(k) = v.parse() {
                        (d.break_after, d.stall) = (Some(k), true);
                    }
                }
                ("slow", Some(v)) => d.slow_ms = v.parse().ok().or(d.slow_ms),
                ("thinking", _) => d.thinking = true,
                _ => {}
            }
        }
        d
    }
}

/// Characters and messages seen in a request's prompt, for the input-token estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub chars: u64,
    pub messages: u64,
}

impl Tally {
    /// Counts the characters (Unicode scalar values) of `s`.
    pub fn text(&mut self, s: &str) {
        self.chars += s.chars().count() as u64;
    }

    /// Counts the text inside a content value (see [`content_text`]).
    pub fn content(&mut self, content: &Value) {
        self.text(&content_text(content));
    }

    /// One more message.
    pub fn message(&mut self) {
        self.messages += 1;
    }

    /// `ceil(chars / 4) + messages`, at least 1.
    pub fn tokens(&self) -> u32 {
        let tokens = self.chars.div_ceil(4) + self.messages;
        u32::try_from(tokens.max(1)).unwrap_or(u32::MAX)
    }
}

/// The text inside a content value, concatenated: a string as is; in an array, the
/// strings, every part's `text` string (OpenAI `text`, Anthropic `text`, Responses
/// `input_text`/`output_text`), a part's `content` (Anthropic `tool_result`, Responses
/// message items) and `output` (Responses `function_call_output`), recursively. Images,
/// tool-call arguments and thinking are not text.
pub fn content_text(content: &Value) -> String {
    let mut out = String::new();
    collect_text(content, &mut out);
    out
}

fn collect_text(content: &Value, out: &mut String) {
    match content {
        Value::String(s) => out.push_str(s),
        Value::Array(parts) => {
            for part in parts {
                match part {
                    Value::String(s) => out.push_str(s),
                    Value::Object(obj) => {
                        if let Some(Value::String(s)) = obj.get("text") {
                            out.push_str(s);
                        }
                        if let Some(inner) = obj.get("content") {
                            collect_text(inner, out);
                        }
                        if let Some(inner) = obj.get("output") {
                            collect_text(inner, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Chat-style `messages` (OpenAI chat, Anthropic messages): every message's content,
/// one message each.
pub fn tally_messages(messages: Option<&Value>, tally: &mut Tally) {
    for message in messages.and_then(Value::as_array).into_iter().flatten() {
        tally.message();
        if let Some(content) = message.get("content") {
            tally.content(content);
        }
    }
}

/// The text of the last message whose `role` is `user` (where directives are read).
pub fn last_user_text(messages: Option<&Value>) -> String {
    messages
        .and_then(Value::as_array)
        .and_then(|all| all.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user")))
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default()
}

/// A request's output cap, if the field is a non-negative integer.
pub fn cap(body: &Value, field: &str) -> Option<u64> {
    body.get(field).and_then(Value::as_u64)
}

/// How many tokens to produce and whether the cap cut the answer short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub tokens: u32,
    pub truncated: bool,
}

impl Plan {
    /// `wanted` tokens, capped by `cap`.
    pub fn new(wanted: u32, cap: Option<u64>) -> Plan {
        match cap {
            Some(cap) if cap < u64::from(wanted) => Plan {
                // cap < wanted <= u32::MAX, so it fits.
                tokens: u32::try_from(cap).unwrap_or(wanted),
                truncated: true,
            },
            _ => Plan { tokens: wanted, truncated: false },
        }
    }
}

/// The name of the first tool in `tools` that has one (`function.name` for OpenAI
/// chat, `name` for Anthropic and Responses), or [`FALLBACK_TOOL_NAME`].
pub fn first_tool_name(tools: Option<&Value>) -> String {
    tools
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|tool| {
            tool.get("function").and_then(|f| f.get("name")).or_else(|| tool.get("name")).and_then(Value::as_str)
        })
        .unwrap_or(FALLBACK_TOOL_NAME)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_cycles_through_the_words() {
        assert_eq!(text(3), "lorem ipsum dolor ");
        assert_eq!(text(0), "");
        let long = tokens(WORDS.len() as u32 + 2);
        assert_eq!(long[WORDS.len()], "lorem ");
        assert_eq!(long[WORDS.len() + 1], "ipsum ");
    }

    #[test]
    fn directives_parse() {
        let d = Directives::parse(
            "hi [[mock:tokens:5]] [[mock:cached:100]][[mock:cache_write:7]] [[mock:tool]] \
             [[mock:error:429]] [[mock:midstream_error]] [[mock:break:3]] [[mock:slow:20]] \
             [[mock:thinking]]",
        );
        assert_eq!(
            d,
            Directives {
                tokens: Some(5),
                cached: 100,
                cache_write: 7,
                tool: true,
                error: Some(429),
                midstream_error: true,
                break_after: Some(3),
                stall: false,
                slow_ms: Some(20),
                thinking: true,
            }
        );
        let d = Directives::parse("[[mock:stall:2]]");
        assert_eq!((d.break_after, d.stall), (Some(2), true));
    }

    #[test]
    fn directives_ignore_junk() {
        assert_eq!(Directives::parse("no directives"), Directives::default());
        assert_eq!(Directives::parse("[[mock:tokens:abc]] [[mock:nope]] [[mock:tokens:4"), Directives::default());
        assert_eq!(Directives::parse("[[mock:error:200]]").error, Some(500));
        assert_eq!(Directives::parse("[[mock:tokens:1]][[mock:tokens:9]]").tokens, Some(9));
    }

    #[test]
    fn tally_counts_chars_and_messages() {
        let messages = json!([
            {"role": "system", "content": "abcd"},
            {"role": "user", "content": [{"type": "text", "text": "efgh"}, {"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "ij"}]}]},
        ]);
        let mut t = Tally::default();
        tally_messages(Some(&messages), &mut t);
        assert_eq!(t, Tally { chars: 10, messages: 3 });
        assert_eq!(t.tokens(), 3 + 3);
        assert_eq!(Tally::default().tokens(), 1);
        let mut unicode = Tally::default();
        unicode.text("héllo");
        assert_eq!(unicode.chars, 5);
    }

    #[test]
    fn last_user_text_skips_other_roles() {
        let messages = json!([
            {"role": "user", "content": "first"},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": "reply"},
        ]);
        assert_eq!(last_user_text(Some(&messages)), "second");
        assert_eq!(last_user_text(None), "");
    }

    #[test]
    fn plan_caps() {
        assert_eq!(Plan::new(16, None), Plan { tokens: 16, truncated: false });
        assert_eq!(Plan::new(16, Some(16)), Plan { tokens: 16, truncated: false });
        assert_eq!(Plan::new(16, Some(5)), Plan { tokens: 5, truncated: true });
        assert_eq!(cap(&json!({"max_tokens": -1}), "max_tokens"), None);
    }

    #[test]
    fn first_tool_name_per_format() {
        assert_eq!(first_tool_name(Some(&json!([{"type": "function", "function": {"name": "a"}}]))), "a");
        assert_eq!(first_tool_name(Some(&json!([{"type": "web_search"}, {"type": "function", "name": "b"}]))), "b");
        assert_eq!(first_tool_name(None), FALLBACK_TOOL_NAME);
        assert_eq!(tool_arguments(), r#"{"location":"Paris","unit":"celsius"}"#);
    }
}
