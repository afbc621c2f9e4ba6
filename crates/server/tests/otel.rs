//! OpenTelemetry export over real HTTP: with `otel.endpoint` set, each model request is a
//! span sent to an OTLP/HTTP (JSON) receiver, child of the client's `traceparent`, with
//! the request's model, tokens, status, key id and cost, and no secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::extract::State;
use common::Gateway;
use serde_json::{Value, json};
use spendgate_mock::MockConfig;
use std::sync::{Arc, Mutex};

/// The spans a collector received.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Value>>>);

impl Collector {
    async fn start() -> (Collector, String) {
        let c = Collector::default();
        let app = axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(|State(c): State<Collector>, body: String| async move {
                    let export: Value = serde_json::from_str(&body).unwrap();
                    for rs in export["resourceSpans"].as_array().unwrap() {
                        for ss in rs["scopeSpans"].as_array().unwrap() {
                            for span in ss["spans"].as_array().unwrap() {
                                let mut span = span.clone();
                                span["resource"] = rs["resource"].clone();
                                c.0.lock().unwrap().push(span);
                            }
                        }
                    }
                    axum::Json(json!({}))
                }),
            )
            .with_state(c.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (c, url)
    }

    fn spans(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

fn attr(span: &Value, key: &str) -> Value {
    let a = span["attributes"].as_array().unwrap().iter().find(|a| a["key"] == key);
    let v = &a.unwrap_or_else(|| panic!("no {key} in {span}"))["value"];
    v.get("stringValue").or(v.get("intValue")).cloned().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_requests_are_exported_as_spans_of_the_clients_trace() {
    let (collector, url) = Collector::start().await;
    let gw = Gateway::start_with(
        MockConfig::default(),
        &format!("[otel]\nendpoint = \"{url}\"\nservice_name = \"gw-test\"\n"),
    )
    .await;
    let (key_id, key) = gw.key(json!({"name": "traced"})).await;

    let trace = "0af7651916cd43dd8448eb211c80319c";
    let parent = "b7ad6b7169203331";
    let traced = gw
        .send_raw(
            gw.http
                .post(format!("{}/v1/chat/completions", gw.url))
                .bearer_auth(&key)
                .header("traceparent", format!("00-{trace}-{parent}-01"))
                .header("x-request-id", "client-req-1")
                .json(&Gateway::chat("gpt-4o-mini", "[[mock:tokens:7]] hi")),
        )
        .await;
    assert_eq!(traced.status, 200);
    let plain = gw.call("/v1/chat/completions", &key, Gateway::chat("gpt-4o-mini", "hi")).await;
    assert_eq!(plain.status, 200);

    let otel = gw.state.otel.clone().unwrap();
    let mut spans = Vec::new();
    for _ in 0..50 {
        let o = otel.clone();
        tokio::task::spawn_blocking(move || o.flush()).await.unwrap();
        spans = collector.spans();
        if spans.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(spans.len(), 2, "{spans:?}");
    let child = spans
        .iter()
        .find(|s| s["traceId"] == trace)
        .unwrap_or_else(|| panic!("no span of the client's trace: {spans:?}"));
    assert_eq!(child["parentSpanId"], parent);
    assert_eq!(child["name"], "POST /v1/chat/completions");
    assert_eq!(child["kind"], 2, "server");
    assert_eq!(attr(child, "gen_ai.request.model"), "gpt-4o-mini");
    assert_eq!(attr(child, "gen_ai.system"), "openai");
    assert_eq!(attr(child, "gen_ai.usage.output_tokens"), "7");
    assert_eq!(attr(child, "http.response.status_code"), "200");
    assert_eq!(attr(child, "spendgate.spend_key_id"), key_id.as_str());
    assert_eq!(attr(child, "http.request.header.x-request-id"), "client-req-1");
    let records = gw.records(&key_id).await;
    let record = records.iter().find(|r| r.usage.output == 7).unwrap();
    assert_eq!(attr(child, "spendgate.request_id"), record.id.as_str());
    assert_eq!(attr(child, "spendgate.cost_usd"), record.cost.to_string().as_str());
    let start: u128 = child["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u128 = child["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start < end, "{start} < {end}");
    let service = &child["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "service.name")
        .unwrap()["value"]["stringValue"];
    assert_eq!(service, "gw-test");

    // Without a traceparent: a trace of its own, no parent.
    let root = spans.iter().find(|s| s["traceId"] != trace).unwrap();
    assert!(root["parentSpanId"].as_str().unwrap_or("").is_empty(), "{root}");
    // No secret in what was exported.
    let text = serde_json::to_string(&spans).unwrap();
    assert!(!text.contains(&key) && !text.contains(common::OPENAI_PROVIDER_KEY));
}

#[tokio::test]
async fn a_bad_endpoint_is_named() {
    let err = spendgate_server::config::Config::from_toml(
        "[otel]\nendpoint = \"collector:4318\"\n",
        &spendgate_server::config::Overrides::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("otel.endpoint"), "{err}");
}
