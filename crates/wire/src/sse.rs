//! Incremental Server-Sent Events framing. Bytes go in as they arrive, in chunks of any
//! size; complete events are looked at in place (their `event` name and `data`,
//! borrowed from the buffer) and their bytes come out untouched for forwarding: as one
//! piece split off the buffer, without a copy, unless an event is left out. Handles
//! `\n`, `\r\n` and `\r` line ends, comment lines (`: ...`), multi-line data and fields
//! without a space after the colon.

use bytes::{Bytes, BytesMut};
use std::borrow::Cow;

/// One complete event, borrowed from the parser's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event's bytes as received, through its terminating blank line.
    pub raw: &'a [u8],
    /// The `event:` field, if any.
    pub event: Option<Cow<'a, str>>,
    /// The `data:` lines joined with `\n` (borrowed when there is one, as there always is
    /// from OpenAI and Anthropic), as bytes: a JSON reader checks the text itself; `None`
    /// for an event with no data (a comment or a keep-alive).
    pub data: Option<Cow<'a, [u8]>>,
}

#[derive(Debug, Default)]
pub struct Parser {
    buf: BytesMut,
    /// Where scanning for the end of the current event resumes in `buf`.
    scanned: usize,
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    /// Feeds bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Shows each complete event to `keep` and takes them out of the buffer; returns the
    /// bytes of those it kept, in order.
    pub fn take(&mut self, mut keep: impl FnMut(&Event<'_>) -> bool) -> Bytes {
        let mut end = 0;
        // Byte ranges of events left out (rare: a stream usually passes whole).
        let mut left_out: Vec<(usize, usize)> = Vec::new();
        while let Some(next) = self.event_end(end) {
            if !keep(&parse(&self.buf[end..next])) {
                left_out.push((end, next));
            }
            end = next;
        }
        self.scanned -= end;
        let taken = self.buf.split_to(end);
        if left_out.is_empty() {
            return taken.freeze();
        }
        let mut kept = Vec::with_capacity(taken.len());
        let mut from = 0;
        for (start, stop) in left_out {
            kept.extend_from_slice(&taken[from..start]);
            from = stop;
        }
        kept.extend_from_slice(&taken[from..]);
        Bytes::from(kept)
    }

    /// Bytes of an unfinished event (the stream ended without a blank line).
    pub fn remainder(&self) -> &[u8] {
        &self.buf
    }

    /// Finishes: a trailing event without its blank line, if any, shown to `keep`;
    /// returns its bytes if kept. Trailing line ends alone are no event: they are
    /// returned as they are (a stream passed through comes out byte for byte).
    pub fn finish(&mut self, mut keep: impl FnMut(&Event<'_>) -> bool) -> Bytes {
        self.scanned = 0;
        let rest = std::mem::take(&mut self.buf);
        if rest.iter().all(u8::is_ascii_whitespace) {
            return rest.freeze();
        }
        if !keep(&parse(&rest)) {
            return Bytes::new();
        }
        rest.freeze()
    }

    /// The index just past the blank line ending the event that starts at `from`, if it
    /// is complete.
    fn event_end(&mut self, from: usize) -> Option<usize> {
        let b = &self.buf[..];
        let mut i = self.scanned.max(from);
        while i < b.len() {
            // A line ends at \n, \r\n or \r; an event ends at an empty line.
            let line_start = i;
            let Some(at) = memchr::memchr2(b'\n', b'\r', &b[i..]) else {
                self.scanned = line_start;
                return None;
            };
            i += at;
            let empty = i == line_start;
            if b[i] == b'\r' {
                if i + 1 == b.len() {
                    // Might be \r\n split across chunks: wait for the next byte.
                    self.scanned = line_start;
                    return None;
                }
                if b[i + 1] == b'\n' {
                    i += 1;
                }
            }
            i += 1;
            if empty {
                // The blank line that ends an event (or a stray one, an empty event).
                self.scanned = i;
                return Some(i);
            }
        }
        self.scanned = i;
        None
    }
}

/// An event's fields, borrowed from its bytes.
fn parse(raw: &[u8]) -> Event<'_> {
    let mut event = None;
    let mut data: Option<Cow<[u8]>> = None;
    let mut rest = raw;
    while !rest.is_empty() {
        let end = memchr::memchr2(b'\n', b'\r', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[(end + 1).min(rest.len())..];
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => event = Some(String::from_utf8_lossy(value)),
            b"data" => match &mut data {
                Some(d) => {
                    let d = d.to_mut();
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => data = Some(Cow::Borrowed(value)),
            },
            _ => {}
        }
    }
    Event { raw, event, data }
}

/// An event with its fields owned (for tests and tools that keep events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedEvent {
    pub raw: Vec<u8>,
    pub event: Option<String>,
    pub data: Option<String>,
}

impl From<&Event<'_>> for OwnedEvent {
    fn from(e: &Event<'_>) -> Self {
        OwnedEvent {
            raw: e.raw.to_vec(),
            event: e.event.as_deref().map(str::to_string),
            data: e.data.as_deref().map(|d| String::from_utf8_lossy(d).into_owned()),
        }
    }
}

impl Parser {
    /// The complete events fed so far, owned and taken out of the buffer.
    pub fn events(&mut self) -> Vec<OwnedEvent> {
        let mut events = Vec::new();
        self.take(|e| {
            events.push(OwnedEvent::from(e));
            true
        });
        events
    }

    /// The trailing event without its blank line, if any, owned.
    pub fn finish_event(&mut self) -> Option<OwnedEvent> {
        let mut event = None;
        self.finish(|e| {
            event = Some(OwnedEvent::from(e));
            true
        });
        event
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: keep-alive comment\n\ndata: {\"b\":\ndata: 2}\r\n\r\nevent: ping\ndata:{}\r\rdata: [DONE]\n\n";

    fn all(chunks: &[&[u8]]) -> Vec<OwnedEvent> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c);
            out.extend(p.events());
        }
        out.extend(p.finish_event());
        out
    }

    #[test]
    fn parses_events_of_every_line_ending() {
        let events = all(&[STREAM.as_bytes()]);
        let parsed: Vec<(Option<&str>, Option<&str>)> =
            events.iter().map(|e| (e.event.as_deref(), e.data.as_deref())).collect();
        assert_eq!(
            parsed,
            vec![
                (Some("message_start"), Some("{\"a\":1}")),
                (None, None),
                (None, Some("{\"b\":\n2}")),
                (Some("ping"), Some("{}")),
                (None, Some("[DONE]")),
            ]
        );
        let raw: Vec<u8> = events.iter().flat_map(|e| e.raw.clone()).collect();
        assert_eq!(raw, STREAM.as_bytes(), "raw bytes are forwarded unchanged");
    }

    #[test]
    fn kept_events_come_out_whole_and_left_out_ones_not_at_all() {
        let mut p = Parser::new();
        p.push(STREAM.as_bytes());
        let out = p.take(|e| e.event.as_deref() != Some("ping") && e.data.is_some());
        let expected = STREAM.replace(": keep-alive comment\n\n", "").replace("event: ping\ndata:{}\r\r", "");
        assert_eq!(out, expected.as_bytes());
        assert!(p.remainder().is_empty());
        p.push(b"data: 1\n\ndata: 2\n\n");
        assert_eq!(p.take(|_| true), &b"data: 1\n\ndata: 2\n\n"[..], "all kept: the bytes as they came");
    }

    #[test]
    fn unterminated_tail_is_returned_by_finish() {
        let mut p = Parser::new();
        p.push(b"data: {\"x\":1}\n");
        assert!(p.events().is_empty());
        assert_eq!(p.remainder(), b"data: {\"x\":1}\n");
        let e = p.finish_event().unwrap();
        assert_eq!(e.data.as_deref(), Some("{\"x\":1}"));
        assert!(p.finish_event().is_none());
    }

    #[test]
    fn invalid_utf8_is_read_lossily() {
        let mut p = Parser::new();
        p.push(b"event: a\xffb\ndata: x\xfey\n\n");
        let e = &p.events()[0];
        assert_eq!((e.event.as_deref(), e.data.as_deref()), (Some("a\u{fffd}b"), Some("x\u{fffd}y")));
        let mut p = Parser::new();
        p.push(b"data: x\xfey\n\n");
        p.take(|e| {
            assert_eq!(e.data.as_deref(), Some(&b"x\xfey"[..]), "data stays bytes");
            true
        });
    }

    proptest! {
        /// However the bytes are split, the same events come out, with the same bytes.
        #[test]
        fn any_split_gives_the_same_events(cuts in prop::collection::vec(0usize..STREAM.len(), 0..12)) {
            let bytes = STREAM.as_bytes();
            let mut cuts = cuts;
            cuts.sort();
            let mut chunks = Vec::new();
            let mut last = 0;
            for c in cuts { chunks.push(&bytes[last..c]); last = c; }
            chunks.push(&bytes[last..]);
            prop_assert_eq!(all(&chunks), all(&[bytes]));
        }

        #[test]
        fn never_panics_and_loses_no_bytes(data in prop::collection::vec(any::<u8>(), 0..400), split in 0usize..400) {
            let split = split.min(data.len());
            let mut p = Parser::new();
            p.push(&data[..split]);
            let mut raw = p.take(|_| true).to_vec();
            p.push(&data[split..]);
            raw.extend_from_slice(&p.take(|_| true));
            raw.extend_from_slice(p.remainder());
            prop_assert_eq!(raw, data);
        }
    }
}
