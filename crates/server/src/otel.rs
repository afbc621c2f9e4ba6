//! Optional OpenTelemetry export: with `otel.endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`)
//! set, each model request that reached a provider becomes a span, sent in batches to an
//! OTLP/HTTP collector (JSON). The span's parent is the client's W3C `traceparent`, so a
//! tool's trace continues through the gateway. Nothing of this runs when it is not set.
//!
//! The span is built at settlement from what the request's log line says (no `tracing`
//! span per request on the hot path): name `<method> <endpoint>`, kind server, start at
//! arrival, end at settlement, attributes from the OpenTelemetry semantic conventions for
//! HTTP and generative AI, plus spendgate's key id, request id and cost. Never a secret.

use crate::gateway::upstream::{HttpClient, http_client};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use spendgate_core::{TokenUsage, Usd};
use spendgate_store::RequestRecord;
use std::time::{Duration, SystemTime};

/// Where and as what spans are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtelPolicy {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`); spans go to
    /// `<endpoint>/v1/traces`.
    pub endpoint: String,
    pub service_name: String,
}

pub struct Otel {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// What a span needs from its request besides the record.
pub struct Finished<'a> {
    pub record: &'a RequestRecord,
    pub usage: &'a TokenUsage,
    pub cost: Usd,
    pub status: u16,
    /// When the request arrived.
    pub started: SystemTime,
    /// The client's `traceparent` and `tracestate`.
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
    /// The client's `x-request-id`, if it sent one.
    pub client_id: Option<&'a str>,
}

impl Otel {
    /// The exporter and its batch processor (a thread of its own; the HTTP calls run on
    /// the current Tokio runtime).
    pub fn start(policy: &OtelPolicy) -> Result<Otel, String> {
        let client =
            OnRuntime { client: http_client(Duration::from_secs(10)), runtime: tokio::runtime::Handle::current() };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(format!("{}/v1/traces", policy.endpoint.trim_end_matches('/')))
            .with_timeout(Duration::from_secs(10))
            .with_http_client(client)
            .build()
            .map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(policy.service_name.clone()).build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        let tracer = provider.tracer("spendgate");
        Ok(Otel { provider, tracer })
    }

    /// Records one model request as a span.
    pub fn request(&self, f: &Finished<'_>) {
        let parent = TraceContextPropagator::new().extract(&Carrier(f.traceparent, f.tracestate));
        let r = f.record;
        let u = f.usage;
        let mut attributes = vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", r.endpoint.clone()),
            KeyValue::new("http.response.status_code", i64::from(f.status)),
            KeyValue::new("gen_ai.system", r.provider.clone()),
            KeyValue::new("gen_ai.request.model", r.model.clone()),
            KeyValue::new("gen_ai.usage.input_tokens", (u.input + u.cached_input + u.cache_write) as i64),
            KeyValue::new("gen_ai.usage.output_tokens", u.output as i64),
            KeyValue::new("spendgate.spend_key_id", r.key_id.to_string()),
            KeyValue::new("spendgate.request_id", r.id.clone()),
            KeyValue::new("spendgate.cost_usd", f.cost.to_string()),
        ];
        if let Some(id) = f.client_id {
            attributes.push(KeyValue::new("http.request.header.x-request-id", id.to_string()));
        }
        let builder = self
            .tracer
            .span_builder(format!("POST {}", r.endpoint))
            .with_kind(SpanKind::Server)
            .with_start_time(f.started)
            .with_attributes(attributes);
        let mut span = self.tracer.build_with_context(builder, &parent);
        if f.status >= 500 {
            span.set_status(Status::error(format!("HTTP {}", f.status)));
        }
        span.end_with_timestamp(SystemTime::now());
    }

    /// Sends the spans waiting in the batch.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "OpenTelemetry: sending spans failed");
        }
    }

    /// Sends what is left and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OpenTelemetry: stopping the exporter failed");
        }
    }
}

/// The client's trace headers, as the propagator reads them.
struct Carrier<'a>(Option<&'a str>, Option<&'a str>);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.0,
            "tracestate" => self.1,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The gateway's HTTP client (rustls) for the exporter, whose batch thread has no Tokio
/// runtime: each export runs on the server's.
struct OnRuntime {
    client: HttpClient,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for OnRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnRuntime")
    }
}

#[async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: axum::http::Request<Bytes>,
    ) -> Result<axum::http::Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let exchange = async move {
            let response = client.request(request.map(Full::new)).await?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, 4 << 20).collect().await?.to_bytes();
            Ok::<_, opentelemetry_http::HttpError>(axum::http::Response::from_parts(head, body))
        };
        let timed = async move {
            tokio::time::timeout(Duration::from_secs(10), exchange)
                .await
                .unwrap_or_else(|_| Err("the collector did not answer within 10 s".into()))
        };
        self.runtime.spawn(timed).await?
    }
}
