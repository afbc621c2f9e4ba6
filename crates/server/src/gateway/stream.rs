//! A provider's event stream on its way to the client: passed through (or translated to
//! the client's format) event by event as it arrives, never buffered whole, and watched
//! for usage in the provider's own figures; the usage chunk that the gateway asked for is
//! removed again when the client did not ask for it. When the stream
//! ends it is settled with the provider's usage, or, if it broke or the client left, with
//! an estimate from the text streamed; dropping the stream (the client disconnected)
//! drops the upstream response, which cancels the provider's request.

use super::settle::Settlement;
use axum::body::Bytes;
use futures_util::Stream;
use serde_json::Value;
use spendgate_wire::StreamUsage;
use spendgate_wire::sse::{Event, Parser};
use spendgate_wire::translate::StreamTranslator;
use std::pin::Pin;
use std::task::{Context, Poll};

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
}

impl MeteredStream {
    pub fn new(upstream: Upstream, usage: Box<dyn StreamUsage>, output: Output, settlement: Settlement) -> Self {
        MeteredStream { upstream, parser: Parser::new(), usage, output, settlement, done: false }
    }

    /// Watches one event and appends what the client gets of it to `out`.
    fn handle(&mut self, event: &Event, out: &mut Vec<u8>) {
        let Some(data) = event.data.as_deref() else {
            // Comments and keep-alives: passed on; a translator writes its own events.
            if let Output::PassThrough { .. } = self.output {
                out.extend_from_slice(&event.raw);
            }
            return;
        };
        if data == "[DONE]" {
            match &mut self.output {
                Output::PassThrough { .. } => out.extend_from_slice(&event.raw),
                Output::Translate(t) => t.done(out),
            }
            return;
        }
        let seen = self.usage.observe(event.event.as_deref(), data);
        match &mut self.output {
            Output::PassThrough { strip_usage_chunk } => {
                if !(*strip_usage_chunk && seen.usage_only) {
                    out.extend_from_slice(&event.raw);
                }
            }
            Output::Translate(t) => {
                if let Ok(json) = serde_json::from_str::<Value>(data) {
                    t.event(event.event.as_deref(), &json, out);
                }
            }
        }
    }

    fn forward(&mut self, events: Vec<Event>) -> Bytes {
        let mut out = Vec::new();
        for event in events {
            self.handle(&event, &mut out);
        }
        Bytes::from(out)
    }

    fn finish(&mut self, status: u16) {
        self.done = true;
        match self.usage.reported() {
            Some(usage) => self.settlement.settle(usage, status),
            None => self.settlement.settle_estimated(self.usage.partial(), self.usage.output_chars(), status),
        };
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
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let events = this.parser.push(&chunk);
                    if events.is_empty() {
                        continue;
                    }
                    let out = this.forward(events);
                    if out.is_empty() {
                        continue;
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
                    let tail = this.parser.finish().into_iter().collect();
                    let mut out = this.forward(tail).to_vec();
                    if let Output::Translate(t) = &mut this.output {
                        t.finish(&mut out);
                    }
                    let out = Bytes::from(out);
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
    }
}
