//! `GET /metrics` over HTTP: after real requests through the gateway (answered,
//! streamed, refused by each kind of limit, failed and retried upstream) the series
//! are present and moved by exactly what happened; no label holds a key id, a wallet id
//! or a secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Gateway;
use serde_json::json;
use spendgate_mock::{Fault, MockConfig};
use std::collections::HashMap;

const MINI: &str = "gpt-4o-mini";

/// The exposition as `series -> value` (`name{labels}` as written).
async fn scrape(gw: &Gateway) -> (String, HashMap<String, f64>) {
    let r = gw.http.get(format!("{}/metrics", gw.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text().await.unwrap();
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect();
    (text, series)
}

fn get(series: &HashMap<String, f64>, name: &str) -> f64 {
    series.get(name).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_are_present_and_move_with_real_requests() {
    let gw = Gateway::start_with(MockConfig::default(), "[upstream]\nretry_backoff_ms = 1\n").await;
    let (_, before) = scrape(&gw).await;
    let (id, key) = gw.key(json!({"name": "metered", "rate_limit": {"rpm": 600, "burst": 20}})).await;
    // Answered, and streamed.
    let answered = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "[[mock:tokens:12]] hi")).await;
    assert_eq!(answered.status, 200);
    let mut streamed = Gateway::chat(MINI, "[[mock:tokens:20]] hi");
    streamed["stream"] = json!(true);
    assert_eq!(gw.call("/v1/chat/completions", &key, streamed.clone()).await.status, 200);
    // A provider 503, retried once and answered.
    gw.mock.push_faults([Fault { status: Some(503), ..Fault::default() }]);
    assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "retried")).await.status, 200);
    // Refusals: model not allowed, spend limit, rate limit, paused key.
    let (_, only_claude) = gw.key(json!({"name": "claude only", "allowed_models": ["claude-sonnet-4-20250514"]})).await;
    assert_eq!(gw.call("/v1/chat/completions", &only_claude, Gateway::chat(MINI, "no")).await.status, 403);
    let (_, broke) = gw.key(json!({"name": "broke", "spend_limit": {"amount": "0.000001", "cycle": "daily"}})).await;
    assert_eq!(gw.call("/v1/chat/completions", &broke, Gateway::chat(MINI, "no")).await.status, 429);
    let (slow_id, slow) = gw.key(json!({"name": "slow", "rate_limit": {"rpm": 1, "burst": 1}})).await;
    assert_eq!(gw.call("/v1/chat/completions", &slow, Gateway::chat(MINI, "one")).await.status, 200);
    assert_eq!(gw.call("/v1/chat/completions", &slow, Gateway::chat(MINI, "two")).await.status, 429);
    let (paused_id, paused) = gw.key(json!({"name": "paused"})).await;
    gw.admin("PATCH", &format!("/v1/spend_keys/{paused_id}"), Some(json!({"status": "paused"}))).await;
    assert_eq!(gw.call("/v1/chat/completions", &paused, Gateway::chat(MINI, "no")).await.status, 401);

    // A stream held open is counted while it runs.
    let mut held = Gateway::chat(MINI, "[[mock:tokens:5]] [[mock:slow:300]]");
    held["stream"] = json!(true);
    let open = {
        let (http, url, key) = (gw.http.clone(), gw.url.clone(), key.clone());
        tokio::spawn(async move {
            let r = http.post(format!("{url}/v1/chat/completions")).bearer_auth(&key).json(&held).send().await.unwrap();
            r.text().await.unwrap()
        })
    };
    let mut counted = false;
    for _ in 0..100 {
        if get(&scrape(&gw).await.1, "spendgate_open_streams") == 1.0 {
            counted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(counted, "the held stream is not counted as open");
    assert!(open.await.unwrap().contains("[DONE]"));

    let records = gw.records(&id).await;
    let (text, after) = scrape(&gw).await;
    for family in [
        "spendgate_requests",
        "spendgate_request_duration_seconds",
        "spendgate_overhead_seconds",
        "spendgate_time_to_first_token_seconds",
        "spendgate_tokens",
        "spendgate_spend_usd",
        "spendgate_limit_rejections",
        "spendgate_upstream_errors",
        "spendgate_upstream_retries",
        "spendgate_open_streams",
        "spendgate_record_queue_depth",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family} is not declared:\n{text}");
    }
    let delta = |name: &str| get(&after, name) - get(&before, name);
    let ok = "{format=\"openai\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"200\"}";
    // metered: 4 answered + the slow key's first; the retried request counts once.
    assert_eq!(delta(&format!("spendgate_requests_total{ok}")), 5.0, "{text}");
    assert_eq!(
        delta("spendgate_requests_total{format=\"openai\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"429\"}"),
        2.0
    );
    assert_eq!(delta("spendgate_requests_total{format=\"openai\",provider=\"\",model=\"\",status=\"401\"}"), 1.0);
    for kind in ["model_not_allowed", "spend_limit", "rate_limit", "key_paused"] {
        assert_eq!(delta(&format!("spendgate_limit_rejections_total{{kind=\"{kind}\"}}")), 1.0, "{kind}\n{text}");
    }
    assert_eq!(delta("spendgate_upstream_errors_total{provider=\"openai\",kind=\"server_error\"}"), 1.0);
    assert_eq!(delta("spendgate_upstream_retries_total{provider=\"openai\"}"), 1.0);
    assert_eq!(get(&after, "spendgate_open_streams"), 0.0, "every stream ended");
    assert_eq!(delta("spendgate_time_to_first_token_seconds_count{provider=\"openai\"}"), 2.0);
    assert_eq!(delta("spendgate_request_duration_seconds_count{format=\"openai\"}"), 9.0);
    assert_eq!(delta("spendgate_overhead_seconds_count"), 9.0);
    // Tokens and spend are the records' (the metered key's plus the slow key's one request).
    let slow_records = gw.records(&slow_id).await;
    let all: Vec<_> = records.iter().chain(&slow_records).collect();
    let input: u64 = all.iter().map(|r| r.usage.input).sum();
    let output: u64 = all.iter().map(|r| r.usage.output).sum();
    let spend: i64 = all.iter().map(|r| r.cost.nanos()).sum();
    assert_eq!(delta("spendgate_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",kind=\"input\"}"), input as f64);
    assert_eq!(
        delta("spendgate_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",kind=\"output\"}"),
        output as f64
    );
    let spent = delta("spendgate_spend_usd_total{provider=\"openai\",model=\"gpt-4o-mini\"}");
    assert!((spent - spend as f64 / 1e9).abs() < 1e-9, "{spent} vs {spend} nano-dollars");
    assert_eq!(get(&after, "spendgate_record_queue_depth"), 0.0, "every record was written (flushed above)");

    // No key id, wallet id or secret in any label.
    for secret in [&key, &only_claude, &broke, &slow, &paused, &gw.wallet_key] {
        assert!(!text.contains(secret.as_str()));
    }
    for id in [&id, &slow_id, &paused_id] {
        assert!(!text.contains(id.as_str()), "{id} in:\n{text}");
    }
    assert!(!text.contains("wal_"), "{text}");
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let gw = Gateway::start_with(MockConfig::default(), "[server]\nmetrics = false\n").await;
    let r = gw.http.get(format!("{}/metrics", gw.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_metrics_token_guards_the_endpoint() {
    let token = "scrape-token-0123456789";
    let gw = Gateway::start_with(MockConfig::default(), &format!("[server]\nmetrics_token = \"{token}\"\n")).await;
    let url = format!("{}/metrics", gw.url);
    for (auth, status) in
        [(None, 401), (Some("wrong-token-0123456789"), 401), (Some(gw.wallet_key.as_str()), 401), (Some(token), 200)]
    {
        let mut req = gw.http.get(&url);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        assert_eq!(req.send().await.unwrap().status(), status, "{auth:?}");
    }
    let short = spendgate_server::config::Config::from_toml(
        "[server]\nmetrics_token = \"short\"\n",
        &spendgate_server::config::Overrides::default(),
    )
    .unwrap_err();
    assert!(short.to_string().contains("server.metrics_token"), "{short}");
}

#[tokio::test]
async fn per_key_series_only_when_asked_for() {
    let gw = Gateway::start_with(MockConfig::default(), "[server]\nmetrics_per_key = true\n").await;
    let (id, key) = gw.key(json!({"name": "watched"})).await;
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "[[mock:tokens:9]] hi")).await;
    assert_eq!(r.status, 200);
    let cost: f64 = r.header("x-spendgate-cost").unwrap().parse().unwrap();
    let (text, series) = scrape(&gw).await;
    assert_eq!(get(&series, &format!("spendgate_key_requests_total{{key=\"{id}\"}}")), 1.0, "{text}");
    let spent = get(&series, &format!("spendgate_key_spend_usd_total{{key=\"{id}\"}}"));
    assert!((spent - cost).abs() < 1e-9, "{spent} vs {cost}");
    assert!(!text.contains(&key), "never the secret");
}
