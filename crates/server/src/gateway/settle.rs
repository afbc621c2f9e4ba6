//! Settlement: turning a request's admission into a charge and a request record, exactly
//! once, whatever way the request ends (answer, provider error, broken stream, client
//! gone). A `Settlement` that is dropped unsettled releases its reservation, so none is
//! ever left hanging.

use super::Endpoint;
use super::keys::KeyEntry;
use super::recorder::Recorder;
use crate::counters::Hold;
use crate::counters::shared::Settled;
use crate::metrics::Metrics;
use spendgate_core::meter::Admission;
use spendgate_core::{Prices, SpendKey, TokenUsage, Usd};
use spendgate_store::RequestRecord;
use std::sync::Arc;
use std::time::Instant;

/// Caps an estimate of usage so that it never exceeds what was reserved for.
#[derive(Clone, Copy, Debug)]
pub struct Estimate {
    /// Input tokens to assume when the provider reported none.
    pub input: u64,
    pub max_input: u64,
    pub max_output: u64,
}

/// A request's ids: the gateway's (its record's), the client's `x-request-id`, and
/// (when spans are exported) the client's trace context.
pub struct Identity {
    pub record: String,
    pub client: Option<axum::http::HeaderValue>,
    pub trace: Option<Trace>,
}

/// Where a request's span goes, and its parent: the client's `traceparent` and
/// `tracestate`.
pub struct Trace {
    pub otel: Arc<crate::otel::Otel>,
    pub parent: Option<axum::http::HeaderValue>,
    pub state: Option<axum::http::HeaderValue>,
}

pub struct Settlement {
    entry: Arc<KeyEntry>,
    /// The client's `x-request-id`, logged beside the record's id.
    client_id: Option<axum::http::HeaderValue>,
    trace: Option<Trace>,
    pub metrics: Arc<Metrics>,
    /// Label values: the client's API format, the provider and the model.
    pub format: &'static str,
    pub provider: &'static str,
    model: &'static str,
    admission: Option<Admission>,
    hold: Hold,
    recorder: Recorder,
    prices: Prices,
    record: RequestRecord,
    pub started: Instant,
    pub estimate: Estimate,
}

impl Settlement {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        entry: Arc<KeyEntry>,
        admission: Admission,
        hold: Hold,
        recorder: Recorder,
        key: &SpendKey,
        model: &spendgate_core::Model,
        endpoint: Endpoint,
        estimate: Estimate,
        started: Instant,
        metrics: Arc<Metrics>,
        ids: Identity,
    ) -> Settlement {
        let record = RequestRecord {
            id: ids.record,
            key_id: key.id.clone(),
            wallet_id: key.wallet_id.clone(),
            model: model.id.clone(),
            provider: model.provider.clone(),
            endpoint: endpoint.path().to_string(),
            status: 0,
            usage: TokenUsage::default(),
            cost: Usd::ZERO,
            latency_ms: 0,
            created_at: admission.at,
        };
        Settlement {
            entry,
            client_id: ids.client,
            trace: ids.trace,
            format: endpoint.format().as_str(),
            provider: metrics.name(&model.provider),
            model: metrics.name(&model.id),
            metrics,
            admission: Some(admission),
            hold,
            recorder,
            prices: model.prices,
            record,
            started,
            estimate,
        }
    }

    pub fn reserved(&self) -> Usd {
        self.admission.as_ref().map_or(Usd::ZERO, |a| a.reserved)
    }

    /// The request reached the provider and used `usage`: charge it and record it.
    /// Returns the cost. A second call does nothing.
    pub fn settle(&mut self, usage: TokenUsage, status: u16) -> Usd {
        let Some(admission) = self.admission.take() else { return Usd::ZERO };
        let cost = self.prices.cost(&usage);
        let mut record = self.record.clone();
        record.status = status;
        record.usage = usage;
        record.cost = cost;
        record.latency_ms = self.started.elapsed().as_millis() as u64;
        self.metrics.settled(record.key_id.as_str(), self.provider, self.model, &usage, cost);
        // The request's log line (one per request; refused ones are logged by `handle`).
        let client_id = self.client_id.as_ref().and_then(|v| v.to_str().ok());
        tracing::info!(
            request_id = client_id.unwrap_or(&record.id),
            record_id = client_id.map(|_| record.id.as_str()),
            key = record.key_id.as_str(),
            endpoint = record.endpoint,
            model = record.model,
            status,
            input_tokens = usage.input + usage.cached_input + usage.cache_write,
            output_tokens = usage.output,
            cost = %cost,
            ms = record.latency_ms,
            "request"
        );
        if let Some(t) = &self.trace {
            fn header(v: &Option<axum::http::HeaderValue>) -> Option<&str> {
                v.as_ref().and_then(|v| v.to_str().ok())
            }
            t.otel.request(&crate::otel::Finished {
                record: &record,
                usage: &usage,
                cost,
                status,
                started: std::time::SystemTime::now() - self.started.elapsed(),
                traceparent: header(&t.parent),
                tracestate: header(&t.state),
                client_id,
            });
        }
        match self.hold {
            Hold::Local => {
                self.entry.lock().meter.settle(admission, cost);
                self.recorder.record(record, None);
            }
            // Shared counters settle once the ledger has the record.
            Hold::Shared { .. } => {
                let at = admission.at;
                let settled = self.settled(admission, Some((cost, at)));
                self.recorder.record(record, Some(settled));
            }
        }
        cost
    }

    /// The provider reported no (complete) usage: charge an estimate, within what was
    /// reserved for.
    pub fn settle_estimated(&mut self, partial: TokenUsage, output_chars: u64, status: u16) -> Usd {
        let e = self.estimate;
        let mut usage = spendgate_wire::estimate(partial, output_chars, e.input);
        let input_total = usage.input + usage.cached_input + usage.cache_write;
        if input_total > e.max_input {
            usage.input = usage.input.saturating_sub(input_total - e.max_input);
        }
        usage.output = usage.output.min(e.max_output);
        self.settle(usage, status)
    }

    /// Nothing reached the provider: drop the reservation, record nothing.
    pub fn release(&mut self) {
        let Some(admission) = self.admission.take() else { return };
        match self.hold {
            Hold::Local => self.entry.lock().meter.release(&admission),
            Hold::Shared { .. } => {
                let settled = self.settled(admission, None);
                self.recorder.release(settled);
            }
        }
    }

    fn settled(&self, admission: Admission, charge: Option<(Usd, spendgate_core::Timestamp)>) -> Settled {
        Settled {
            entry: Some(self.entry.clone()),
            key_id: self.record.key_id.clone(),
            release: Some((admission, self.hold)),
            charge,
        }
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        self.release();
    }
}
