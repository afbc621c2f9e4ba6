//! A provider's event stream on its way to the client: passed through event by event as
//! it arrives (never buffered whole), watched for usage, with the usage chunk that the
//! gateway asked for removed again when the client did not ask for it. When the stream
//! ends it is settled with the provider's usage, or, if it broke or the client left, with
//! an estimate from the text streamed; dropping the stream (the client disconnected)
//! drops the upstream response, which cancels the provider's request.

use super::settle::Settlement;
use axum::body::Bytes;
use futures_util::Stream;
use serde_json::Value;
use spendgate_wire::sse::{Event, Parser};
use spendgate_wire::{StreamUsage, openai};
use std::pin::Pin;
use std::task::{Context, Poll};

/// HTTP status recorded for a stream the client abandoned (nginx's convention).
pub const CLIENT_CLOSED: u16 = 499;

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub struct MeteredStream {
    upstream: Upstream,
    parser: Parser,
    usage: Box<dyn StreamUsage>,
    /// Remove OpenAI's usage-only chunk (the client did not ask for it).
    strip_usage_chunk: bool,
    settlement: Settlement,
    done: bool,
}

impl MeteredStream {
    pub fn new(
        upstream: Upstream,
        usage: Box<dyn StreamUsage>,
        strip_usage_chunk: bool,
        settlement: Settlement,
    ) -> Self {
        MeteredStream { upstream, parser: Parser::new(), usage, strip_usage_chunk, settlement, done: false }
    }

    /// Watches one event; returns whether to forward it.
    fn observe(&mut self, event: &Event) -> bool {
        let Some(data) = event.data.as_deref() else { return true };
        if data == "[DONE]" {
            return true;
        }
        let Ok(json) = serde_json::from_str::<Value>(data) else { return true };
        self.usage.observe(event.event.as_deref(), &json);
        !(self.strip_usage_chunk && openai::is_usage_chunk(&json))
    }

    fn forward(&mut self, events: Vec<Event>) -> Bytes {
        let mut out = Vec::new();
        for event in events {
            if self.observe(&event) {
                out.extend_from_slice(&event.raw);
            }
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
                    let out = this.forward(tail);
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
