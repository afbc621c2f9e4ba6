//! Upstream faults over real HTTP: retries before the first byte (only on connection
//! failures, 429 and 5xx), failover and balancing over several targets, the circuit
//! breaker, first-byte and idle-stream timeouts, and a client that hangs up. Every
//! failure reaches the client as a well-formed error in its own format, and a failed
//! attempt costs nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Gateway, eventually, spawn_mock};
use futures_util::StreamExt;
use serde_json::json;
use spendgate_core::Usd;
use spendgate_mock::{Fault, Mock, MockConfig};
use std::time::{Duration, Instant};

const MINI: &str = "gpt-4o-mini";
const SONNET: &str = "claude-sonnet-4-20250514";

/// Config for the openai and anthropic providers with one target per base URL (each
/// the mock's root), and `[upstream]` settings.
fn targets(bases: &[&str], upstream: &str) -> String {
    let mut toml = format!("[upstream]\nretry_backoff_ms = 5\n{upstream}\n");
    for (name, suffix) in [("openai", "/v1"), ("anthropic", "")] {
        toml.push_str(&format!("[[provider]]\nname = \"{name}\"\n"));
        for base in bases {
            toml.push_str(&format!("[[provider.target]]\nbase_url = \"{base}{suffix}\"\n"));
        }
    }
    toml
}

fn status(code: u16) -> Fault {
    Fault { status: Some(code), ..Fault::default() }
}

fn chat_count(mock: &Mock) -> usize {
    mock.recorded().iter().filter(|r| r.path == "/v1/chat/completions").count()
}

#[tokio::test]
async fn a_5xx_or_429_fails_over_to_the_next_target_and_only_the_answer_is_charged() {
    let (b, b_url) = spawn_mock(MockConfig::default()).await;
    let (a, a_url) = spawn_mock(MockConfig::default()).await;
    let gw = Gateway::start_with(MockConfig::default(), &targets(&[&a_url, &b_url], "")).await;
    let (id, key) = gw.key(json!({"name": "f", "spend_limit": {"amount": "1", "cycle": "daily"}})).await;

    // Round robin starts at A: it answers 503, the retry goes to B.
    a.push_faults([status(503)]);
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((chat_count(&a), chat_count(&b)), (1, 1));
    // Round robin is back at A: a 429 with retry-after-ms 20, the retry goes to B.
    a.push_faults([Fault { status: Some(429), retry_after_ms: Some(20), ..Fault::default() }]);
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((chat_count(&a), chat_count(&b)), (2, 2));

    // Two requests, two records, each charged once for its answer.
    let records = gw.records(&id).await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.status == 200 && r.cost > Usd::ZERO));
    let key_view = gw.get_key(&id).await;
    assert_eq!(key_view["total_requests"], 2, "failed attempts are not requests");
    assert_eq!(
        common::nanos(&key_view["total_spend"]),
        records.iter().map(|r| r.cost.nanos()).sum::<i64>(),
        "failed attempts cost nothing"
    );
    assert_eq!(gw.meter(&id), (0, 0));
}

#[tokio::test]
async fn client_errors_are_not_retried_and_retries_are_bounded() {
    let (a, a_url) = spawn_mock(MockConfig::default()).await;
    let gw = Gateway::start_with(MockConfig::default(), &targets(&[&a_url], "retries = 2")).await;
    let (id, key) = gw.key(json!({"name": "n"})).await;

    // A 400 is the client's to fix: passed back at once.
    a.push_faults([status(400)]);
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 400);
    assert_eq!(chat_count(&a), 1);

    // 500 three times: the first attempt and two retries, then the provider's own error.
    a.clear();
    a.push_faults([status(500), status(500), status(500), status(500)]);
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body["error"]["type"], "server_error", "OpenAI's format: {}", r.body);
    assert_eq!(chat_count(&a), 3);

    // A provider that asks for a longer wait than the gateway's retry limit: its 429 is
    // passed back (with its retry-after) for the client to decide.
    a.clear();
    a.clear_faults();
    a.push_faults([Fault { status: Some(429), retry_after_ms: Some(60_000), ..Fault::default() }]);
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 429);
    assert_eq!(chat_count(&a), 1);

    let records = gw.records(&id).await;
    assert!(records.iter().all(|r| r.cost == Usd::ZERO), "provider errors cost nothing");
    assert_eq!(gw.meter(&id), (0, 0));
}

#[tokio::test]
async fn an_unreachable_target_is_skipped_and_its_circuit_opens_then_half_opens() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (b, b_url) = spawn_mock(MockConfig::default()).await;
    let upstream = "breaker_failures = 2\nbreaker_cooldown_ms = 400";
    let gw =
        Gateway::start_with(MockConfig::default(), &targets(&[&format!("http://{closed}"), &b_url], upstream)).await;
    let (id, key) = gw.key(json!({"name": "u"})).await;
    // Every request succeeds: the dead target fails to connect and the retry goes to B.
    for _ in 0..6 {
        let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(chat_count(&b), 6);
    assert_eq!(gw.get_key(&id).await["total_requests"], 6);

    // A target that answers 503 is taken out after two failures in a row: while its
    // circuit is open it gets nothing; after the cool-down, one trial.
    let (c, c_url) = spawn_mock(MockConfig::default()).await;
    let (d, d_url) = spawn_mock(MockConfig::default()).await;
    let gw = Gateway::start_with(MockConfig::default(), &targets(&[&c_url, &d_url], upstream)).await;
    let (_, key) = gw.key(json!({"name": "c"})).await;
    c.push_faults((0..10).map(|_| status(503)));
    for _ in 0..8 {
        let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(chat_count(&c), 2, "two failures open the circuit: C gets nothing more");
    assert_eq!(chat_count(&d), 8);
    tokio::time::sleep(Duration::from_millis(450)).await;
    for _ in 0..4 {
        assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await.status, 200);
    }
    assert_eq!(chat_count(&c), 3, "after the cool-down one trial, which failed: open again");
    // The trial after the next cool-down succeeds (C's faults are used up... almost):
    c.clear_faults();
    tokio::time::sleep(Duration::from_millis(450)).await;
    for _ in 0..4 {
        assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await.status, 200);
    }
    assert!(chat_count(&c) >= 5, "a successful trial closes the circuit: C is back in the rotation");
}

#[tokio::test]
async fn every_circuit_open_is_a_503_in_the_clients_format_with_retry_after() {
    let (a, a_url) = spawn_mock(MockConfig::default()).await;
    let upstream = "retries = 0\nbreaker_failures = 1\nbreaker_cooldown_ms = 30000";
    let gw = Gateway::start_with(MockConfig::default(), &targets(&[&a_url], upstream)).await;
    let (id, key) = gw.key(json!({"name": "o", "request_shape": "anthropic"})).await;
    a.push_faults([status(529)]);
    let r = gw.call("/v1/messages", &key, Gateway::message(SONNET, "hi", 5)).await;
    assert_eq!(r.status, 529, "the provider's own error first");
    let r = gw.call("/v1/messages", &key, Gateway::message(SONNET, "hi", 5)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["type"], "error");
    assert_eq!(r.body["error"]["type"], "overloaded_error");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("provider anthropic is unavailable"));
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((29..=30).contains(&after), "{after}");
    assert_eq!(a.recorded().len(), 1, "an open circuit sends nothing");
    assert_eq!(gw.meter(&id), (0, 0));
    assert_eq!(gw.get_key(&id).await["total_requests"], 1, "the refused one did not count");
}

#[tokio::test]
async fn a_slow_first_byte_is_a_504_and_is_not_retried() {
    let (a, a_url) = spawn_mock(MockConfig::default()).await;
    let gw = Gateway::start_with(MockConfig::default(), &targets(&[&a_url], "first_byte_timeout_ms = 300")).await;
    let (id, key) = gw.key(json!({"name": "t", "spend_limit": {"amount": "1", "cycle": "daily"}})).await;
    a.push_faults([Fault { wait_ms: Some(3_000), ..Fault::default() }]);
    let started = Instant::now();
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(started.elapsed() < Duration::from_millis(2_000), "{:?}", started.elapsed());
    assert_eq!(r.body["error"]["type"], "server_error");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("did not answer within 300 ms"));
    assert_eq!(chat_count(&a), 1, "a request that may be running is not sent again");
    assert_eq!(gw.meter(&id), (0, 0), "nothing is held");
    assert!(gw.records(&id).await.is_empty(), "no answer, no charge");
}

#[tokio::test]
async fn a_stalled_stream_is_broken_off_charged_for_what_came_and_cancelled_upstream() {
    let (a, a_url) = spawn_mock(MockConfig::default()).await;
    let gw = Gateway::start_with(MockConfig::default(), &targets(&[&a_url], "idle_timeout_ms = 300")).await;
    let (id, key) = gw.key(json!({"name": "s", "spend_limit": {"amount": "1", "cycle": "daily"}})).await;
    let mut body = Gateway::chat(MINI, "[[mock:tokens:40]] [[mock:stall:5]]");
    body["stream"] = json!(true);
    let resp = gw.http.post(format!("{}/v1/chat/completions", gw.url)).bearer_auth(&key).json(&body).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), 200);
    let started = Instant::now();
    let mut stream = resp.bytes_stream();
    let (mut text, mut broke) = (String::new(), false);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(broke, "the client's stream breaks too, so that its SDK sees the failure");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(text.contains("lorem") && !text.contains("[DONE]"), "{text}");
    let records = gw.records(&id).await;
    assert_eq!(records.len(), 1);
    assert!(records[0].cost > Usd::ZERO && records[0].usage.output >= 5, "{:?}", records[0]);
    assert_eq!(gw.meter(&id), (0, 0));
    assert!(eventually(|| a.streams_cancelled() == 1).await, "the provider's request was cancelled");
}

#[tokio::test]
async fn least_loaded_sends_to_the_target_with_fewer_streams_in_flight() {
    let slow = MockConfig { chunk_delay_ms: 50, ..MockConfig::default() };
    let (a, a_url) = spawn_mock(slow.clone()).await;
    let (b, b_url) = spawn_mock(slow).await;
    let gw =
        Gateway::start_with(MockConfig::default(), &targets(&[&a_url, &b_url], "balance = \"least_loaded\"")).await;
    let (_, key) = gw.key(json!({"name": "l"})).await;
    let mut body = Gateway::chat(MINI, "[[mock:tokens:40]]");
    body["stream"] = json!(true);
    // Two long streams: one on each target.
    let mut open = Vec::new();
    for _ in 0..2 {
        let resp = gw.http.post(format!("{}/v1/chat/completions", gw.url)).bearer_auth(&key).json(&body).send();
        open.push(resp.await.unwrap());
    }
    assert_eq!((chat_count(&a), chat_count(&b)), (1, 1));
    // A third while both stream goes to either; a fourth to the other one.
    for _ in 0..2 {
        let resp = gw.http.post(format!("{}/v1/chat/completions", gw.url)).bearer_auth(&key).json(&body).send();
        open.push(resp.await.unwrap());
    }
    assert_eq!((chat_count(&a), chat_count(&b)), (2, 2));
    drop(open);
}

#[tokio::test]
async fn errors_a_client_can_cause_do_not_open_the_circuit() {
    let (a, a_url) = spawn_mock(MockConfig::default()).await;
    let upstream = "retries = 0\nbreaker_failures = 1";
    let gw = Gateway::start_with(MockConfig::default(), &targets(&[&a_url], upstream)).await;
    let (_, key) = gw.key(json!({"name": "c"})).await;
    // 500s and 429s may be about one request or one credential: passed back, and the
    // provider stays in service for everyone else.
    a.push_faults([status(500), status(429), status(500)]);
    for expected in [500, 429, 500, 200] {
        assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await.status, expected);
    }
}
