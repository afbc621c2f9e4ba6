//! Incremental Server-Sent Events framing. Bytes go in as they arrive, in chunks of any
//! size; complete events come out with their raw bytes (to forward untouched) and their
//! parsed `event` name and `data`. Handles `\n`, `\r\n` and `\r` line ends, comment
//! lines (`: ...`), multi-line data and fields without a space after the colon.

use bytes::{Bytes, BytesMut};

/// One complete event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event's bytes as received, through its terminating blank line (split off the
    /// parser's buffer, not copied).
    pub raw: Bytes,
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`; `None` for an event with no data (a comment
    /// or a keep-alive).
    pub data: Option<String>,
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

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.event_end() {
            let raw = self.buf.split_to(end).freeze();
            self.scanned = 0;
            events.push(parse(raw));
        }
        events
    }

    /// Bytes of an unfinished event (the stream ended without a blank line).
    pub fn remainder(&self) -> &[u8] {
        &self.buf
    }

    /// Finishes: a trailing event without its blank line, if any, as an event.
    pub fn finish(&mut self) -> Option<Event> {
        if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            self.buf.clear();
            return None;
        }
        self.scanned = 0;
        Some(parse(std::mem::take(&mut self.buf).freeze()))
    }

    /// The index just past the blank line ending the first event, if it is complete.
    fn event_end(&mut self) -> Option<usize> {
        let b = &self.buf;
        let mut i = self.scanned;
        while i < b.len() {
            // A line ends at \n, \r\n or \r; an event ends at an empty line.
            let line_start = i;
            while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                i += 1;
            }
            if i == b.len() {
                self.scanned = line_start;
                return None;
            }
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
                return Some(i);
            }
        }
        self.scanned = i;
        None
    }
}

fn parse(raw: Bytes) -> Event {
    let text = match std::str::from_utf8(&raw) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(&raw),
    };
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    Event { raw, event, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: keep-alive comment\n\ndata: {\"b\":\ndata: 2}\r\n\r\nevent: ping\ndata:{}\r\rdata: [DONE]\n\n";

    fn all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out: Vec<Event> = chunks.iter().flat_map(|c| p.push(c)).collect();
        out.extend(p.finish());
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
        let raw: Vec<u8> = events.iter().flat_map(|e| e.raw.to_vec()).collect();
        assert_eq!(raw, STREAM.as_bytes(), "raw bytes are forwarded unchanged");
    }

    #[test]
    fn unterminated_tail_is_returned_by_finish() {
        let mut p = Parser::new();
        assert!(p.push(b"data: {\"x\":1}\n").is_empty());
        assert_eq!(p.remainder(), b"data: {\"x\":1}\n");
        let e = p.finish().unwrap();
        assert_eq!(e.data.as_deref(), Some("{\"x\":1}"));
        assert!(p.finish().is_none());
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
            let mut raw: Vec<u8> = p.push(&data[..split]).into_iter().chain(p.push(&data[split..])).flat_map(|e| e.raw.to_vec()).collect();
            raw.extend_from_slice(p.remainder());
            prop_assert_eq!(raw, data);
        }
    }
}
