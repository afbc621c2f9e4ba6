//! A provider's event stream on its way to the client: passed through (or translated to
//! the client's format) event by event as it arrives, never buffered whole, and watched
//! for usage in the provider's own figures; the usage chunk that the gateway asked for is
//! removed again when the client did not ask for it. When the stream
//! ends it is settled with the provider's usage, or, if it broke or the client left, with
//! an estimate from the text streamed; dropping the stream (the client disconnected)
//! drops the upstream response, which cancels the provider's request. A provider
//! stream that stalls longer than the idle timeout is broken off the same way.

use super::settle::Settlement;
use super::upstream::Lease;
use axum::body::Bytes;
use futures_util::Stream;
use serde_json::Value;
use spendgate_wire::StreamUsage;
use spendgate_wire::sse::{Event, Parser};
use spendgate_wire::translate::StreamTranslator;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// HTTP status recorded for a stream the client abandoned (nginx's convention).
pub const CLIENT_CLOSED: u16 = 499;

type Upstream = Pin<Box<dyn Stream<Item = Result<Bytes, hyper::Error>> + Send>>;

/// What the client gets of the provider's events.
pub enum Output {
    /// The events as they are; with `strip_usage_chunk`, less OpenAI's usage-only chunk
    /// (the client did not ask for it; the gateway did).
    PassThrough { strip_usage_chunk: bool },
    /// The events in the client's format.
    Translate(Box<dyn StreamTranslator>),
}

pub struct MeteredStream {
    upstream: Upstream,
    parser: Parser,
    /// Watches the provider's own events: usage is metered in its native figures.
    usage: Box<dyn StreamUsage>,
    output: Output,
    settlement: Settlement,
    done: bool,
    /// The longest wait for the provider's next bytes, and the timer that enforces it
    /// (moved on at each chunk).
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    /// Content has reached the client (the time to first token is observed once).
    started_output: bool,
    _lease: Lease,
}

impl MeteredStream {
    pub fn new(
        upstream: Upstream,
        usage: Box<dyn StreamUsage>,
        output: Output,
        settlement: Settlement,
        idle: Duration,
        lease: Lease,
    ) -> Self {
        let timer = Box::pin(tokio::time::sleep(idle));
        settlement.metrics.stream_opened();
        MeteredStream {
            upstream,
            parser: Parser::new(),
            usage,
            output,
            settlement,
            done: false,
            idle,
            timer,
            started_output: false,
            _lease: lease,
        }
    }

    /// Watches the complete events in the parser and returns what the client gets of
    /// them: passed through, the events' own bytes (not copied unless one is left out);
    /// translated, the translator's. `last`: the stream ended, take the unfinished tail.
    fn forward(&mut self, last: bool) -> Bytes {
        let (usage, output) = (&mut self.usage, &mut self.output);
        match output {
            Output::PassThrough { strip_usage_chunk } => {
                let strip = *strip_usage_chunk;
                let mut pass = |e: &Event<'_>| match e.data.as_deref() {
                    // Comments, keep-alives and the end marker: passed on.
                    None | Some(b"[DONE]") => true,
                    Some(data) => !(usage.observe(e.event.as_deref(), data).usage_only && strip),
                };
                if last { self.parser.finish(pass) } else { self.parser.take(&mut pass) }
            }
            Output::Translate(t) => {
                let mut out = Vec::new();
                let mut translate = |e: &Event<'_>| {
                    match e.data.as_deref() {
                        // A translator writes its own comments and keep-alives.
                        None => {}
                        Some(b"[DONE]") => t.done(&mut out),
                        Some(data) => {
                            usage.observe(e.event.as_deref(), data);
                            if let Ok(json) = serde_json::from_slice::<Value>(data) {
                                t.event(e.event.as_deref(), &json, &mut out);
                            }
                        }
                    }
                    false
                };
                if last {
                    self.parser.finish(&mut translate);
                    t.finish(&mut out);
                } else {
                    self.parser.take(&mut translate);
                }
                Bytes::from(out)
            }
        }
    }

    fn finish(&mut self, status: u16) {
        self.done = true;
        match self.usage.reported() {
            Some(usage) => self.settlement.settle(usage, status),
            None => self.settlement.settle_estimated(self.usage.partial(), self.usage.output_chars(), status),
        };
        let s = &self.settlement;
        s.metrics.duration(s.format, s.started.elapsed());
    }
}

impl Stream for MeteredStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Pending => {
                    if this.timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The provider went quiet: break off, charge what was produced,
                    // and break the client's stream so that its SDK sees the failure.
                    tracing::warn!(idle_ms = this.idle.as_millis() as u64, "provider stream stalled; broken off");
                    this.finish(200);
                    return Poll::Ready(Some(Err(std::io::Error::other("the provider's stream stalled"))));
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    this.timer.as_mut().reset(Instant::now() + this.idle);
                    this.parser.push(&chunk);
                    let out = this.forward(false);
                    if out.is_empty() {
                        continue;
                    }
                    if !this.started_output && this.usage.output_chars() > 0 {
                        this.started_output = true;
                        let s = &this.settlement;
                        s.metrics.first_token(s.provider, s.started.elapsed());
                    }
                    return Poll::Ready(Some(Ok(out)));
                }
                Poll::Ready(Some(Err(e))) => {
                    // The provider's stream broke: charge what was produced and break
                    // the client's stream too, so that its SDK sees the failure.
                    tracing::warn!(error = %e, "provider stream broke");
                    this.finish(200);
                    return Poll::Ready(Some(Err(std::io::Error::other("the provider's stream broke"))));
                }
                Poll::Ready(None) => {
                    let out = this.forward(true);
                    this.finish(200);
                    return Poll::Ready((!out.is_empty()).then_some(Ok(out)));
                }
            }
        }
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        if !self.done {
            self.finish(CLIENT_CLOSED);
        }
        self.settlement.metrics.stream_closed();
    }
}
