//! Prometheus metrics, served at `GET /metrics` in the OpenMetrics text format.
//!
//! Every label value is bounded: API formats, the catalog's providers and models (a name
//! outside the catalog is `other`), status codes, limit and error kinds. No series is
//! labelled with a key id (unless the operator turns on `server.metrics_per_key`), a
//! wallet id or anything a client sends as free text, and none with a secret.
//!
//! On the hot path a request costs a few atomic additions and label-set lookups of
//! `&'static str`s (no allocation).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use spendgate_core::{Catalog, TokenUsage, Usd};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// What the `other` label stands for: a name the catalog does not have.
const OTHER: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    format: &'static str,
    provider: &'static str,
    model: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormatLabel {
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    provider: &'static str,
    model: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: &'static str,
    model: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabel {
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamErrorLabels {
    provider: &'static str,
    kind: &'static str,
}

/// Why an upstream attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    /// No connection (refused, DNS, TLS) or it broke before the answer's head.
    Unreachable,
    /// No answer head within the first-byte timeout.
    Timeout,
    /// Every target's circuit was open: not sent.
    CircuitOpen,
    /// The provider answered 429.
    RateLimited,
    /// The provider answered 5xx.
    ServerError,
}

impl UpstreamError {
    fn as_str(self) -> &'static str {
        match self {
            UpstreamError::Unreachable => "unreachable",
            UpstreamError::Timeout => "timeout",
            UpstreamError::CircuitOpen => "circuit_open",
            UpstreamError::RateLimited => "rate_limited",
            UpstreamError::ServerError => "server_error",
        }
    }
}

/// Seconds, for histograms of request times (a streamed answer may take minutes).
const REQUEST_SECONDS: [f64; 15] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Seconds, for the gateway's own share of a request (tens of microseconds).
const OVERHEAD_SECONDS: [f64; 12] =
    [0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1];
/// Seconds to the first token of a stream.
const TTFT_SECONDS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0];

pub struct Metrics {
    registry: Registry,
    /// The catalog's provider and model names, for label values without allocation.
    names: HashMap<String, &'static str>,
    requests: Family<RequestLabels, Counter>,
    duration: Family<FormatLabel, Histogram>,
    overhead: Histogram,
    ttft: Family<ProviderLabel, Histogram>,
    tokens: Family<TokenLabels, Counter>,
    spend: Family<ModelLabels, Counter<f64, AtomicU64>>,
    rejections: Family<KindLabel, Counter>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    retries: Family<ProviderLabel, Counter>,
    open_streams: Gauge,
    record_queue: Gauge,
    alert_attempts: Family<AlertLabels, Counter>,
    /// Per spend key (only when the operator asks: one series per key in use).
    per_key: Option<PerKey>,
}

/// Requests and dollars per spend key id.
type PerKey = (Family<KeyLabel, Counter>, Family<KeyLabel, Counter<f64, AtomicU64>>);

impl Metrics {
    /// `per_key`: also series labelled with spend key ids (requests and spend per key).
    pub fn new(catalog: &Catalog, per_key: bool) -> Metrics {
        let mut names = HashMap::new();
        for name in catalog.providers().iter().map(|p| &p.name).chain(catalog.models().iter().map(|m| &m.id)) {
            // Leaked once per name at start: the catalog is fixed while the server runs.
            names.entry(name.clone()).or_insert_with(|| &*Box::leak(name.clone().into_boxed_str()));
        }
        let mut m = Metrics {
            registry: Registry::with_prefix("spendgate"),
            names,
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(REQUEST_SECONDS)),
            overhead: Histogram::new(OVERHEAD_SECONDS),
            ttft: Family::new_with_constructor(|| Histogram::new(TTFT_SECONDS)),
            tokens: Family::default(),
            spend: Family::default(),
            rejections: Family::default(),
            upstream_errors: Family::default(),
            retries: Family::default(),
            open_streams: Gauge::default(),
            record_queue: Gauge::default(),
            alert_attempts: Family::default(),
            per_key: per_key.then(Default::default),
        };
        let r = &mut m.registry;
        r.register("requests", "Model requests by API format, provider, model and HTTP status", m.requests.clone());
        r.register(
            "request_duration_seconds",
            "Model requests from arrival to the last byte of the answer (streams: of the stream)",
            m.duration.clone(),
        );
        r.register(
            "overhead_seconds",
            "The gateway's own time per model request: its whole time less the time waiting for the provider",
            m.overhead.clone(),
        );
        r.register(
            "time_to_first_token_seconds",
            "Streamed model requests from arrival to the first event with content sent to the client",
            m.ttft.clone(),
        );
        r.register(
            "tokens",
            "Tokens used, by provider, model and kind (input, cached_input, cache_write, output)",
            m.tokens.clone(),
        );
        r.register("spend_usd", "Spend in US dollars, by provider and model", m.spend.clone());
        r.register("limit_rejections", "Requests refused by a key's limits and rules, by kind", m.rejections.clone());
        r.register(
            "upstream_errors",
            "Failed attempts to reach a provider, by kind (retried or not)",
            m.upstream_errors.clone(),
        );
        r.register("upstream_retries", "Provider requests sent again after a failed attempt", m.retries.clone());
        r.register("open_streams", "Streamed answers being sent now", m.open_streams.clone());
        r.register("record_queue_depth", "Request records waiting to be written to the store", m.record_queue.clone());
        r.register(
            "alert_delivery_attempts",
            "Budget-alert webhook attempts, by event and outcome (delivered, retry, failed: given up)",
            m.alert_attempts.clone(),
        );
        if let Some((requests, spend)) = &m.per_key {
            r.register("key_requests", "Requests charged, by spend key id", requests.clone());
            r.register("key_spend_usd", "Spend in US dollars, by spend key id", spend.clone());
        }
        m
    }

    /// The label value for a provider or model name: the catalog's, else `other`.
    pub fn name(&self, name: &str) -> &'static str {
        self.names.get(name).copied().unwrap_or(OTHER)
    }

    /// A model request was answered (the head of its answer left with `status`).
    pub fn request(&self, format: &'static str, provider: &'static str, model: &'static str, status: u16) {
        self.requests.get_or_create(&RequestLabels { format, provider, model, status }).inc();
    }

    /// A model request is complete: `total` from arrival to its last byte.
    pub fn duration(&self, format: &'static str, total: Duration) {
        self.duration.get_or_create(&FormatLabel { format }).observe(total.as_secs_f64());
    }

    pub fn overhead(&self, own: Duration) {
        self.overhead.observe(own.as_secs_f64());
    }

    pub fn first_token(&self, provider: &'static str, after: Duration) {
        self.ttft.get_or_create(&ProviderLabel { provider }).observe(after.as_secs_f64());
    }

    /// A request was charged.
    pub fn settled(&self, key: &str, provider: &'static str, model: &'static str, usage: &TokenUsage, cost: Usd) {
        if let Some((requests, spend)) = &self.per_key {
            let label = KeyLabel { key: key.to_string() };
            requests.get_or_create(&label).inc();
            spend.get_or_create(&label).inc_by(cost.nanos() as f64 / 1e9);
        }
        for (kind, n) in [
            ("input", usage.input),
            ("cached_input", usage.cached_input),
            ("cache_write", usage.cache_write),
            ("output", usage.output),
        ] {
            if n > 0 {
                self.tokens.get_or_create(&TokenLabels { provider, model, kind }).inc_by(n);
            }
        }
        if cost > Usd::ZERO {
            self.spend.get_or_create(&ModelLabels { provider, model }).inc_by(cost.nanos() as f64 / 1e9);
        }
    }

    /// A request refused by a key's limit or rule (`spend_limit`, `request_limit`,
    /// `rate_limit`, `model_not_allowed`, ...).
    pub fn rejected(&self, kind: &'static str) {
        self.rejections.get_or_create(&KindLabel { kind }).inc();
    }

    pub fn upstream_error(&self, provider: &'static str, kind: UpstreamError) {
        self.upstream_errors.get_or_create(&UpstreamErrorLabels { provider, kind: kind.as_str() }).inc();
    }

    pub fn retried(&self, provider: &'static str) {
        self.retries.get_or_create(&ProviderLabel { provider }).inc();
    }

    /// An attempt to send a budget alert: `delivered`, `retry` (failed, tried again
    /// later) or `failed` (failed, given up).
    pub fn alert_attempt(&self, event: &'static str, outcome: &'static str) {
        self.alert_attempts.get_or_create(&AlertLabels { event, outcome }).inc();
    }

    pub fn stream_opened(&self) {
        self.open_streams.inc();
    }

    pub fn stream_closed(&self) {
        self.open_streams.dec();
    }

    /// The exposition, with `queued` records waiting for the store.
    pub fn render(&self, queued: usize) -> String {
        self.record_queue.set(i64::try_from(queued).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_catalog_are_other_and_the_text_is_openmetrics() {
        let m = Metrics::new(&Catalog::builtin(), false);
        assert_eq!(m.name("gpt-4o-mini"), "gpt-4o-mini");
        assert_eq!(m.name("openai"), "openai");
        assert_eq!(m.name("lava_sk_secret-looking-model"), OTHER);
        m.request("openai", m.name("openai"), m.name("gpt-4o-mini"), 200);
        m.settled(
            "key_1",
            "openai",
            "gpt-4o-mini",
            &TokenUsage { input: 10, cached_input: 0, cache_write: 0, output: 5 },
            Usd::parse("0.25").unwrap_or(Usd::ZERO),
        );
        m.stream_opened();
        let text = m.render(3);
        for line in [
            "spendgate_requests_total{format=\"openai\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"200\"} 1",
            "spendgate_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",kind=\"input\"} 10",
            "spendgate_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",kind=\"output\"} 5",
            "spendgate_spend_usd_total{provider=\"openai\",model=\"gpt-4o-mini\"} 0.25",
            "spendgate_open_streams 1",
            "spendgate_record_queue_depth 3",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
