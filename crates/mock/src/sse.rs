//! Server-sent events: encoding one event, a [`Script`] (the whole planned stream of one
//! answer, with its content events marked so the `midstream_error` and `break`
//! directives can cut it), and the streaming HTTP response that plays a script with a
//! delay between events and, for `break`, ends by failing the body so hyper drops the
//! connection mid-stream.

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `event: NAME` + `data: JSON` (Anthropic, OpenAI Responses).
pub fn named(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// `data: JSON` alone (OpenAI chat completions).
pub fn data(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// The OpenAI chat stream's terminator.
pub fn done() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// Where an event sits in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Before or between the content (role chunk, `message_start`, block starts...).
    Frame,
    /// One piece of output: a text, thinking or tool-argument delta.
    Content,
    /// The first event of the ending (finish chunk, `message_delta`, `*.done`...);
    /// everything after it belongs to the ending too.
    Finish,
}

/// How a played stream ends after its last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The body ends normally.
    Close,
    /// The body fails: the connection is dropped without a proper end.
    Abort,
    /// Nothing more is sent, and the body never ends (a provider that went quiet).
    Stall,
}

/// The planned events of one streamed answer.
#[derive(Debug, Default)]
pub struct Script {
    events: Vec<(Kind, Bytes)>,
}

impl Script {
    pub fn push(&mut self, kind: Kind, event: Bytes) {
        self.events.push((kind, event));
    }

    pub fn frame(&mut self, event: Bytes) {
        self.push(Kind::Frame, event);
    }

    pub fn content(&mut self, event: Bytes) {
        self.push(Kind::Content, event);
    }

    /// Marks the start of the ending; later events are part of it whatever their kind.
    pub fn finish(&mut self, event: Bytes) {
        self.push(Kind::Finish, event);
    }

    /// Where the stream is cut "after `k` content events": right after the k-th one,
    /// or where the ending starts when there are fewer.
    fn cut_after(&self, k: usize) -> usize {
        let finish = self.events.iter().position(|(kind, _)| *kind == Kind::Finish).unwrap_or(self.events.len());
        let mut seen = 0;
        if k == 0 {
            return self.events[..finish].iter().position(|(kind, _)| *kind == Kind::Content).unwrap_or(finish);
        }
        for (i, (kind, _)) in self.events[..finish].iter().enumerate() {
            if *kind == Kind::Content {
                seen += 1;
                if seen == k {
                    return i + 1;
                }
            }
        }
        finish
    }

    /// The events to send and how to end, after applying the interruptions: an
    /// in-stream error event (built by `make_error` from its position in the stream,
    /// then a normal close) after `error_after` content events, and/or an abort after
    /// `abort_after` content events. The earlier one wins; at the same place the abort.
    pub fn play(
        self,
        error_after: Option<usize>,
        abort_after: Option<usize>,
        make_error: impl FnOnce(usize) -> Bytes,
    ) -> (Vec<Bytes>, End) {
        let abort = abort_after.map(|k| self.cut_after(k));
        let error = error_after.map(|k| self.cut_after(k));
        let mut events: Vec<Bytes> = self.events.into_iter().map(|(_, e)| e).collect();
        match (abort, error) {
            (Some(a), Some(e)) if a <= e => {
                events.truncate(a);
                (events, End::Abort)
            }
            (Some(a), None) => {
                events.truncate(a);
                (events, End::Abort)
            }
            (_, Some(e)) => {
                events.truncate(e);
                events.push(make_error(e));
                (events, End::Close)
            }
            (None, None) => (events, End::Close),
        }
    }
}

/// A `text/event-stream` response playing `events`, `delay` apart, then ending as `end`;
/// `cancelled` counts the streams dropped before their end (the client went away).
pub fn response(events: Vec<Bytes>, end: End, delay: Duration, cancelled: Arc<AtomicU64>) -> Response {
    struct Player {
        events: std::vec::IntoIter<Bytes>,
        first: bool,
        end: Option<End>,
        delay: Duration,
        ended: bool,
        cancelled: Arc<AtomicU64>,
    }
    impl Drop for Player {
        fn drop(&mut self) {
            if !self.ended {
                self.cancelled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let player = Player { events: events.into_iter(), first: true, end: Some(end), delay, ended: false, cancelled };
    let stream = futures_util::stream::unfold(player, |mut p| async move {
        if let Some(event) = p.events.next() {
            if !p.first && !p.delay.is_zero() {
                tokio::time::sleep(p.delay).await;
            }
            p.first = false;
            return Some((Ok(event), p));
        }
        match p.end.take() {
            Some(End::Abort) => {
                // Let hyper flush what was sent so far, so the client sees exactly the
                // events before the break, then fail the body: hyper drops the
                // connection without the chunked terminator.
                tokio::time::sleep(Duration::from_millis(20)).await;
                p.ended = true;
                Some((Err(std::io::Error::other("mock provider: stream broken on purpose ([[mock:break]])")), p))
            }
            Some(End::Stall) => {
                std::future::pending::<()>().await;
                None
            }
            Some(End::Close) | None => {
                p.ended = true;
                drop(p); // counted as complete
                None
            }
        }
    });
    ([(CONTENT_TYPE, "text/event-stream; charset=utf-8"), (CACHE_CONTROL, "no-cache")], Body::from_stream(stream))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> Script {
        let mut s = Script::default();
        s.frame(Bytes::from_static(b"start"));
        s.content(Bytes::from_static(b"c1"));
        s.content(Bytes::from_static(b"c2"));
        s.frame(Bytes::from_static(b"between"));
        s.content(Bytes::from_static(b"c3"));
        s.finish(Bytes::from_static(b"finish"));
        s.frame(Bytes::from_static(b"end"));
        s
    }

    fn err(at: usize) -> Bytes {
        assert_eq!(at, 3);
        Bytes::from_static(b"err")
    }

    fn names(events: &[Bytes]) -> Vec<&str> {
        events.iter().map(|e| std::str::from_utf8(e).unwrap()).collect()
    }

    #[test]
    fn plays_whole_without_interruptions() {
        let (events, end) = script().play(None, None, err);
        assert_eq!(names(&events), ["start", "c1", "c2", "between", "c3", "finish", "end"]);
        assert_eq!(end, End::Close);
    }

    #[test]
    fn error_after_two_content_events() {
        let (events, end) = script().play(Some(2), None, err);
        assert_eq!(names(&events), ["start", "c1", "c2", "err"]);
        assert_eq!(end, End::Close);
    }

    #[test]
    fn abort_cuts_and_wins() {
        let (events, end) = script().play(Some(2), Some(1), err);
        assert_eq!(names(&events), ["start", "c1"]);
        assert_eq!(end, End::Abort);
        let (events, _) = script().play(None, Some(0), err);
        assert_eq!(names(&events), ["start"]);
        let (events, _) = script().play(None, Some(10), err);
        assert_eq!(names(&events), ["start", "c1", "c2", "between", "c3"]);
    }

    #[test]
    fn encodes_events() {
        let v = serde_json::json!({"a": 1});
        assert_eq!(&named("x", &v)[..], b"event: x\ndata: {\"a\":1}\n\n");
        assert_eq!(&data(&v)[..], b"data: {\"a\":1}\n\n");
    }
}
