//! Cluster mode end to end: three real `spendgate serve` processes sharing PostgreSQL
//! and Redis, behind no load balancer but the test's own round robin, in front of the
//! mock provider. Caps hold across instances, changes reach every instance at once, and
//! Redis and PostgreSQL going away lose nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cluster::Cluster;
use common::{Api, Reply, TcpProxy};
use serde_json::{Value, json};
use spendgate_core::{SpendKeyId, Usd};
use spendgate_mock::MockConfig;
use std::time::{Duration, Instant};

const MINI: &str = "gpt-4o-mini";

fn chat(text: &str, max_tokens: u64, stream: bool) -> Value {
    json!({"model": MINI, "max_tokens": max_tokens, "stream": stream,
        "messages": [{"role": "user", "content": text}]})
}

/// Sum of the ledger's records of a key, and their count (PostgreSQL, read directly).
async fn ledger(cluster: &Cluster, wallet: &str, key: &str) -> (Usd, u64) {
    let store = cluster.store().await;
    let (mut sum, mut n, mut before) = (Usd::ZERO, 0, None);
    loop {
        let page = store
            .list_requests(&spendgate_core::WalletId::new(wallet), Some(&SpendKeyId::new(key)), before, 500)
            .await
            .unwrap();
        let Some((last, _)) = page.last() else { break };
        before = Some(*last);
        for (_, r) in &page {
            sum += r.cost;
            n += 1;
        }
    }
    (sum, n)
}

/// Waits until `check` holds (settlement follows the ledger by a batch), or panics.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn admin(cluster: &Cluster, i: usize) -> Api {
    Api::new(&cluster.servers[i % cluster.servers.len()], &cluster.wallet_key)
}

/// Redis's counters of a key equal the ledger and nothing is held (waits up to 15 s:
/// settlement follows the ledger by a batch); a timeout shows both.
async fn counters_match_ledger(cluster: &Cluster, wallet: &str, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // The ledger is read each time too: the last records may still be on their way
        // (batched writes), and the counters settle only after them.
        let (spend, requests) = ledger(cluster, wallet, key).await;
        let c = cluster.counters(key).await;
        let get = |f: &str| c.get(f).copied().unwrap_or(0);
        if get("ts") == spend.nanos() && get("tr") == requests as i64 && get("res") == 0 && get("fl") == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the shared counters to equal the ledger with nothing in flight: \
             ledger spend {} nanos, {requests} requests; counters {c:?}",
            spend.nanos()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_hold_across_three_instances() {
    let mock = MockConfig { chunk_delay_ms: 2, ..MockConfig::default() };
    let Some(cluster) = Cluster::start("caps", 3, mock).await else { return };
    let spend_key = admin(&cluster, 0)
        .create_key(json!({"name": "spend", "spend_limit": {"amount": "0.02", "cycle": "daily"}}))
        .await;
    let count_key =
        admin(&cluster, 1).create_key(json!({"name": "count", "request_limit": {"count": 50, "cycle": "daily"}})).await;
    let wallet = spend_key["wallet_id"].as_str().unwrap().to_string();
    let keys = [spend_key["key"].as_str().unwrap(), count_key["key"].as_str().unwrap()];

    // 300 concurrent streams on each key, spread round robin over the instances.
    let mut tasks = Vec::new();
    for i in 0..600usize {
        let api = Api::new(&cluster.servers[i % 3], keys[i % 2]);
        let marker = if i % 2 == 0 { "spend" } else { "count" };
        let body = chat(&format!("[[mock:tokens:1000]] {marker} {i}"), 1000, true);
        tasks.push(tokio::spawn(async move { api.post("/v1/chat/completions", body).await }));
    }
    let mut status = std::collections::BTreeMap::new();
    for t in tasks {
        let r: Reply = t.await.unwrap();
        *status.entry(r.status).or_insert(0) += 1;
    }
    assert_eq!(status.keys().copied().collect::<Vec<_>>(), [200, 429], "{status:?}");

    let reached = |marker: &str| cluster.mock.recorded().iter().filter(|r| r.body.to_string().contains(marker)).count();
    assert_eq!(reached("count"), 50, "exactly 50 requests of the counted key reach the provider");

    let spend_id = spend_key["spend_key_id"].as_str().unwrap();
    let count_id = count_key["spend_key_id"].as_str().unwrap();
    for id in [spend_id, count_id] {
        counters_match_ledger(&cluster, &wallet, id).await;
    }
    let (ledger_spend, ledger_n) = ledger(&cluster, &wallet, spend_id).await;
    let cap = Usd::parse("0.02").unwrap();
    // Every instance reports the same figures, and they are the ledger's.
    for i in 0..3 {
        let k = admin(&cluster, i).call("GET", &format!("/v1/spend_keys/{spend_id}"), None).await.body;
        assert_eq!(k["total_spend"], ledger_spend.to_string(), "instance {i}");
        assert_eq!(k["total_requests"], ledger_n, "instance {i}");
        let c = admin(&cluster, i).call("GET", &format!("/v1/spend_keys/{count_id}"), None).await.body;
        assert_eq!(c["current_requests"], 50, "instance {i}");
    }
    assert!(ledger_spend <= cap, "spend {ledger_spend} over the cap");
    assert!(ledger_spend.nanos() * 10 >= cap.nanos() * 9, "spend {ledger_spend} under 90% of the cap");
    assert_eq!(ledger_n as usize, reached("spend"), "one record per request that reached the provider");
    println!(
        "cluster caps: spend key {ledger_n} of 300 admitted, ${ledger_spend} of $0.02; count key 50 of 300; statuses {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_every_instance_at_once() {
    let Some(cluster) = Cluster::start("changes", 3, MockConfig::default()).await else { return };
    let ask = async |i: usize, secret: &str| {
        Api::new(&cluster.servers[i], secret).post("/v1/chat/completions", chat("hi", 16, false)).await
    };
    let create = async |name: &str| {
        let k = admin(&cluster, 0).create_key(json!({"name": name, "allowed_models": [MINI, "gpt-4o"]})).await;
        let (id, secret) = (k["spend_key_id"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string());
        // Every instance has used it, so each holds a copy that must not outlive a change.
        for i in 0..3 {
            assert_eq!(ask(i, &secret).await.status, 200, "a new key works on instance {i} at once");
        }
        (id, secret)
    };

    let (id, secret) = create("revoke").await;
    assert_eq!(admin(&cluster, 0).call("DELETE", &format!("/v1/spend_keys/{id}"), None).await.status, 200);
    for i in [1, 2] {
        let r = ask(i, &secret).await;
        assert_eq!(r.status, 401, "revoked on instance {i}: {}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("revoked"));
    }

    let (id, secret) = create("pause").await;
    let r = admin(&cluster, 0).call("PATCH", &format!("/v1/spend_keys/{id}"), Some(json!({"status": "paused"}))).await;
    assert_eq!(r.status, 200);
    for i in [1, 2] {
        let r = ask(i, &secret).await;
        assert_eq!(r.status, 401, "paused on instance {i}: {}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("paused"));
    }
    admin(&cluster, 0).call("PATCH", &format!("/v1/spend_keys/{id}"), Some(json!({"status": "active"}))).await;
    for i in [1, 2] {
        assert_eq!(ask(i, &secret).await.status, 200, "resumed on instance {i}");
    }

    let (id, old) = create("rotate").await;
    let rotated = admin(&cluster, 0).call("POST", &format!("/v1/spend_keys/{id}/rotate"), None).await;
    let new = rotated.body["key"].as_str().unwrap().to_string();
    for i in [1, 2] {
        assert_eq!(ask(i, &old).await.status, 401, "the old secret on instance {i}");
        assert_eq!(ask(i, &new).await.status, 200, "the new secret on instance {i}");
    }

    let (id, secret) = create("models").await;
    let r = admin(&cluster, 0)
        .call("PUT", &format!("/v1/spend_keys/{id}"), Some(json!({"allowed_models": ["gpt-4o"]})))
        .await;
    assert_eq!(r.status, 200);
    for i in [1, 2] {
        let r = ask(i, &secret).await;
        assert_eq!(r.status, 403, "model removed, instance {i}: {}", r.body);
    }
    // And the token counter, which admits nothing, sees changes too.
    let k = admin(&cluster, 0).create_key(json!({"name": "count tokens", "request_shape": "anthropic"})).await;
    let (id, secret) = (k["spend_key_id"].as_str().unwrap(), k["key"].as_str().unwrap());
    let count = async |i: usize| {
        Api::new(&cluster.servers[i], secret)
            .post(
                "/v1/messages/count_tokens",
                json!({"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await
            .status
    };
    assert_eq!(count(2).await, 200);
    admin(&cluster, 0).call("DELETE", &format!("/v1/spend_keys/{id}"), None).await;
    assert_eq!(count(2).await, 401);
}

/// rpm 60 with bursts of 10, three instances, one minute: GCRA admits the burst and then
/// one a second, whichever instance is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_across_instances_for_a_minute() {
    let Some(cluster) = Cluster::start("rate", 3, MockConfig::default()).await else { return };
    let k = admin(&cluster, 0).create_key(json!({"name": "rate", "rate_limit": {"rpm": 60, "burst": 10}})).await;
    let secret = k["key"].as_str().unwrap().to_string();
    let start = Instant::now();
    let window = Duration::from_secs(60);
    let mut loops = Vec::new();
    for l in 0..6usize {
        let api = Api::new(&cluster.servers[l % 3], &secret);
        loops.push(tokio::spawn(async move {
            let (mut admitted, mut refused) = (0u64, 0u64);
            while start.elapsed() < window {
                match api.post("/v1/chat/completions", chat("hi", 16, false)).await.status {
                    200 => admitted += 1,
                    429 => refused += 1,
                    other => panic!("unexpected status {other}"),
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            (admitted, refused)
        }));
    }
    let (mut admitted, mut refused) = (0, 0);
    for l in loops {
        let (a, r) = l.await.unwrap();
        admitted += a;
        refused += r;
    }
    // The burst of 10 at once, then one a second for the rest of the minute.
    let expected = 10 + 59;
    println!("rate limit across 3 instances: {admitted} admitted ({refused} refused) in 60 s; GCRA allows {expected}");
    assert!(admitted.abs_diff(expected) <= 1, "{admitted} admitted, expected {expected} ± 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushing_redis_mid_load_keeps_the_caps_and_the_counters() {
    let mock = MockConfig { chunk_delay_ms: 1, ..MockConfig::default() };
    let Some(cluster) = Cluster::start("flush", 3, mock).await else { return };
    let k = admin(&cluster, 0)
        .create_key(json!({"name": "flush", "spend_limit": {"amount": "0.02", "cycle": "total"},
            "request_limit": {"count": 120, "cycle": "total"}}))
        .await;
    let (id, secret) = (k["spend_key_id"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string());
    let wallet = k["wallet_id"].as_str().unwrap().to_string();
    // A steady stream of streaming requests (each ~0.5 s long) from 30 clients for 6 s;
    // the spend cap is reached after some 75 of them.
    let start = Instant::now();
    let mut clients = Vec::new();
    for c in 0..30usize {
        let api = Api::new(&cluster.servers[c % 3], &secret);
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while start.elapsed() < Duration::from_secs(6) {
                let r = api.post("/v1/chat/completions", chat("[[mock:tokens:400]] go", 400, true)).await;
                if ![200, 429].contains(&r.status) {
                    eprintln!("unexpected {}: {}", r.status, r.body);
                }
                statuses.push(r.status);
                if r.status != 200 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            statuses
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.flushdb().await;
    let mut statuses = Vec::new();
    for c in clients {
        statuses.extend(c.await.unwrap());
    }
    assert!(statuses.iter().all(|s| [200, 429].contains(s)), "only answers and cap refusals: {statuses:?}");
    counters_match_ledger(&cluster, &wallet, &id).await;
    let (spend, n) = ledger(&cluster, &wallet, &id).await;
    let cap = Usd::parse("0.02").unwrap();
    assert!(spend <= cap, "spend {spend} over the cap");
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(spend.nanos() * 10 >= cap.nanos() * 9, "the cap was reached: {spend}, {n} records, {refused} refused");
    assert!(n <= 120, "{n} requests over the request cap");
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok as u64, n, "one record per answered request");
    let rebuilds: usize =
        cluster.servers.iter().map(|s| s.logs().matches("rebuilt the shared counters from the ledger").count()).sum();
    assert_eq!(rebuilds, 2, "one rebuild at the first start, one after the flush");
    let k = admin(&cluster, 2).call("GET", &format!("/v1/spend_keys/{id}"), None).await.body;
    assert_eq!(k["total_spend"], spend.to_string());
    println!("redis flush mid-load: {ok} answered, {n} records, ${spend} of $0.02, {} refused", statuses.len() - ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_outage_loses_no_record() {
    let Some(mut cluster) = Cluster::start("pg-outage", 0, MockConfig::default()).await else { return };
    // The instances reach PostgreSQL through a proxy the test can cut.
    let pg_host = cluster.db.url.split('@').nth(1).unwrap().split('/').next().unwrap().to_string();
    let proxy = TcpProxy::start(&pg_host).await;
    let proxied = cluster.db.url.replace(&pg_host, &proxy.addr.to_string());
    let mut instance = cluster.instance();
    instance.database = proxied;
    for _ in 0..3 {
        let s = cluster.launch(&instance);
        cluster.servers.push(s);
    }
    let k = admin(&cluster, 0)
        .create_key(json!({"name": "outage", "spend_limit": {"amount": "5", "cycle": "daily"}}))
        .await;
    let (id, secret) = (k["spend_key_id"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string());
    let wallet = k["wallet_id"].as_str().unwrap().to_string();
    for i in 0..3 {
        assert_eq!(
            Api::new(&cluster.servers[i], &secret).post("/v1/chat/completions", chat("warm", 16, false)).await.status,
            200
        );
    }

    // Load through the outage: PostgreSQL gone for 10 s in the middle. Instance 2 is
    // killed during the outage, so its clients stop before.
    let start = Instant::now();
    let mut clients = Vec::new();
    for c in 0..6usize {
        let api = Api::new(&cluster.servers[c % 3], &secret);
        let until = Duration::from_secs(if c % 3 == 2 { 3 } else { 14 });
        clients.push(tokio::spawn(async move {
            let mut ok = 0u64;
            while start.elapsed() < until {
                let stream = ok.is_multiple_of(2);
                let r = api.post("/v1/chat/completions", chat("[[mock:tokens:20]] load", 50, stream)).await;
                assert_eq!(r.status, 200, "served while PostgreSQL is away: {}", r.body);
                ok += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ok
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.down().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The wallet API says plainly that the database is away.
    let r = admin(&cluster, 1).call("GET", "/v1/spend_keys", None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    // One instance crashes with records only in its spool; another takes them over.
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.servers[2].kill_9();
    tokio::time::sleep(Duration::from_secs(6)).await;
    proxy.up();
    let mut answered = 3; // the warm-up requests
    for c in clients {
        answered += c.await.unwrap();
    }
    let restarted = cluster.launch(&instance);
    eventually("every answered request to have its record in PostgreSQL", async || {
        ledger(&cluster, &wallet, &id).await.1 >= answered
    })
    .await;
    let (spend, n) = ledger(&cluster, &wallet, &id).await;
    assert_eq!(n, answered, "exactly one record per answered request");
    counters_match_ledger(&cluster, &wallet, &id).await;
    let k = Api::new(&restarted, &cluster.wallet_key).call("GET", &format!("/v1/spend_keys/{id}"), None).await.body;
    assert_eq!(k["total_spend"], spend.to_string());
    println!("postgres outage of 10 s: {answered} requests answered, {n} records in PostgreSQL afterwards");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_gateway_fails_closed_or_open_as_configured() {
    let Some(mut cluster) = Cluster::start("redis-down", 0, MockConfig::default()).await else { return };
    let redis_host = cluster.redis_url.trim_start_matches("redis://").split('/').next().unwrap().to_string();
    let proxy = TcpProxy::start(&redis_host).await;
    let mut closed = cluster.instance();
    closed.redis = cluster.redis_url.replace(&redis_host, &proxy.addr.to_string());
    let open = common::cluster::Instance { fail_open: true, ..closed.clone() };
    cluster.servers.push(cluster.launch(&closed));
    cluster.servers.push(cluster.launch(&open));
    let k = admin(&cluster, 0)
        .create_key(json!({"name": "any", "request_shape": "openai", "request_limit": {"count": 5, "cycle": "daily"}}))
        .await;
    let a = admin(&cluster, 0).create_key(json!({"name": "anthropic", "request_shape": "anthropic"})).await;
    let (secret, asecret) = (k["key"].as_str().unwrap().to_string(), a["key"].as_str().unwrap().to_string());
    let message =
        json!({"model": "claude-sonnet-4-20250514", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    for i in 0..2 {
        assert_eq!(
            Api::new(&cluster.servers[i], &secret).post("/v1/chat/completions", chat("hi", 16, false)).await.status,
            200
        );
    }

    proxy.down().await;
    assert_eq!(Api::new(&cluster.servers[0], "").call("GET", "/readyz", None).await.status, 503, "not ready");
    // Closed: a clear 503 in each endpoint's own error format.
    let r = Api::new(&cluster.servers[0], &secret).post("/v1/chat/completions", chat("hi", 16, false)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("shared counters (Redis) cannot be reached"),
        "{}",
        r.body
    );
    assert!(r.body["error"].get("param").is_some(), "OpenAI's error shape: {}", r.body);
    let r = Api::new(&cluster.servers[0], &asecret).post("/v1/messages", message.clone()).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["type"], "error", "Anthropic's error shape: {}", r.body);
    assert_eq!(r.body["error"]["type"], "overloaded_error");
    // Open: served on the instance's own counters, which still hold the request limit as
    // far as this instance knows (its own 1 request so far of 5; the other instance's
    // request is unknown to it, so the cluster goes one over: the price of failing open).
    let api = Api::new(&cluster.servers[1], &secret);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(api.post("/v1/chat/completions", chat("hi", 16, false)).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "the local view: 1 of 5 used before, so 4 more");
    assert_eq!(Api::new(&cluster.servers[1], &asecret).post("/v1/messages", message.clone()).await.status, 200);

    proxy.up();
    eventually("the closed instance to be ready again", async || {
        Api::new(&cluster.servers[0], "").call("GET", "/readyz", None).await.status == 200
    })
    .await;
    eventually("the closed instance to serve again", async || {
        Api::new(&cluster.servers[0], &asecret).post("/v1/messages", message.clone()).await.status == 200
    })
    .await;
    // The requests served without Redis were recorded, and Redis learns them.
    let wallet = k["wallet_id"].as_str().unwrap();
    let id = k["spend_key_id"].as_str().unwrap();
    counters_match_ledger(&cluster, wallet, id).await;
    let r = Api::new(&cluster.servers[0], &secret).post("/v1/chat/completions", chat("hi", 16, false)).await;
    assert_eq!(r.status, 429, "5 requests were used across the cluster: {}", r.body);
}

/// An instance that dies with requests in flight does not hold their budget forever:
/// the others reclaim it once its lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_holds_are_reclaimed() {
    let mock = MockConfig { chunk_delay_ms: 100, ..MockConfig::default() };
    let Some(mut cluster) = Cluster::start("reclaim", 2, mock).await else { return };
    let k = admin(&cluster, 0)
        .create_key(json!({"name": "held", "spend_limit": {"amount": "1", "cycle": "daily"},
            "request_limit": {"count": 10, "cycle": "daily"}}))
        .await;
    let (id, secret) = (k["spend_key_id"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string());
    // Five slow streams on instance 1, then it is killed.
    let mut streams = Vec::new();
    for _ in 0..5 {
        let request = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", cluster.servers[1].url))
            .bearer_auth(&secret)
            .json(&chat("[[mock:tokens:200]] slow", 200, true));
        // Read until the stream breaks (the instance dies).
        streams.push(tokio::spawn(async move {
            let response = request.send().await?;
            response.bytes().await
        }));
    }
    eventually("the five streams to be admitted", async || cluster.counters(&id).await.get("fl") == Some(&5)).await;
    assert!(cluster.counters(&id).await["res"] > 0);
    cluster.servers[1].kill_9();
    for s in streams {
        let _ = s.await; // the connection broke
    }
    let started = Instant::now();
    eventually("instance 0 to reclaim the dead instance's holds", async || {
        let c = cluster.counters(&id).await;
        c.get("fl") == Some(&0) && c.get("res") == Some(&0)
    })
    .await;
    let reclaimed_after = started.elapsed();
    assert!(reclaimed_after >= Duration::from_secs(2), "not before the lease ran out ({reclaimed_after:?})");
    // All ten requests are available again.
    let api = Api::new(&cluster.servers[0], &secret);
    for _ in 0..10 {
        assert_eq!(api.post("/v1/chat/completions", chat("hi", 16, false)).await.status, 200);
    }
    assert_eq!(api.post("/v1/chat/completions", chat("hi", 16, false)).await.status, 429);
    cluster.servers.truncate(1);
    println!("holds of a killed instance reclaimed {} ms after its death", reclaimed_after.as_millis());
}

/// A webhook receiver: counts what it is sent per delivery id, answers 503 while `down`.
#[derive(Clone, Default)]
struct Receiver {
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        use axum::http::{HeaderMap, StatusCode};
        let r = Receiver::default();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |axum::extract::State(r): axum::extract::State<Receiver>, h: HeaderMap, body: String| async move {
                        if r.down.load(std::sync::atomic::Ordering::SeqCst) {
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let id = h["spendgate-delivery"].to_str().unwrap().to_string();
                        r.got.lock().unwrap().push((id, serde_json::from_str(&body).unwrap()));
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    fn received(&self) -> Vec<(String, Value)> {
        self.got.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_sent_once_by_one_instance_and_survive_a_crash() {
    let Some(mut cluster) = Cluster::start("alerts", 0, MockConfig::default()).await else { return };
    let instance = common::cluster::Instance {
        extra: "[alerts]\ncheck_interval_ms = 50\nretry_base_ms = 100\nmax_attempts = 50\n".into(),
        ..cluster.instance()
    };
    for _ in 0..2 {
        let server = cluster.launch(&instance);
        cluster.servers.push(server);
    }
    let (receiver, url) = Receiver::start().await;
    let hook = admin(&cluster, 0).post("/v1/webhooks", json!({"url": url, "thresholds": [1]})).await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    let hook_id = hook.body["webhook_id"].as_str().unwrap().to_string();

    // Ten requests through both instances reach the key's request limit (and 1% of a
    // $0.0005 spend limit: 10 requests cost about $0.000009); both instances check the key, one alert of each kind is sent.
    let key = admin(&cluster, 0)
        .create_key(json!({"name": "alerted", "request_limit": {"count": 10, "cycle": "daily"},
            "spend_limit": {"amount": "0.0005", "cycle": "daily"}}))
        .await;
    let secret = key["key"].as_str().unwrap().to_string();
    for i in 0..10 {
        let r = Api::new(&cluster.servers[i % 2], &secret).post("/v1/chat/completions", chat("hi", 1, false)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // And test events, asked of either instance.
    for i in 0..6 {
        assert_eq!(admin(&cluster, i).call("POST", &format!("/v1/webhooks/{hook_id}/test"), None).await.status, 202);
    }
    let kinds = |t: &str| receiver.received().iter().filter(|(_, b)| b["type"] == t).count();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(kinds("request_limit.reached") == 1 && kinds("spend.threshold") == 1 && kinds("webhook.test") == 6) {
        let key = admin(&cluster, 0)
            .call("GET", &format!("/v1/spend_keys/{}", key["spend_key_id"].as_str().unwrap()), None)
            .await;
        assert!(
            Instant::now() < deadline,
            "the request-limit alert, the threshold alert and six tests: {:?}; the key: {}",
            receiver.received(),
            key.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    let mut ids: Vec<&String> = got.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "each delivery sent once across the instances: {got:?}");
    assert_eq!(got.len(), 8, "{got:?}");

    // The receiver is down; an event is stored and failing; both instances die.
    receiver.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let pending = admin(&cluster, 1).call("POST", &format!("/v1/webhooks/{hook_id}/test"), None).await;
    let pending_id = pending.body["delivery_id"].as_str().unwrap().to_string();
    eventually("a failed attempt", async || {
        let log = admin(&cluster, 0).call("GET", &format!("/v1/webhooks/{hook_id}/deliveries"), None).await;
        log.body["data"][0]["attempts"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    for s in &mut cluster.servers {
        s.kill_9();
    }
    cluster.servers.clear();
    receiver.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let server = cluster.launch(&instance);
    cluster.servers.push(server);
    eventually("the stored event delivered after the restart", async || {
        receiver.received().iter().any(|(id, _)| *id == pending_id)
    })
    .await;
    let log = admin(&cluster, 0).call("GET", &format!("/v1/webhooks/{hook_id}/deliveries?limit=100"), None).await;
    let data = log.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 9);
    assert!(data.iter().all(|d| d["status"] == "delivered"), "{data:?}");
    // Nothing was sent twice, and the alerts were not sent again by the new instance.
    assert_eq!(receiver.received().len(), 9, "{:?}", receiver.received());
}

/// A key resumed through another instance works at once even where the change notice
/// has not arrived yet: a refusal (paused, revoked, expired) is only given with a copy
/// that Redis confirms current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_counts_before_its_notice_arrives() {
    let Some(cluster) = Cluster::start("resume", 2, MockConfig::default()).await else { return };
    let k = admin(&cluster, 0).create_key(json!({"name": "paused first", "status": "paused"})).await;
    let (id, secret) = (k["spend_key_id"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string());
    let ask = async || Api::new(&cluster.servers[1], &secret).post("/v1/chat/completions", chat("hi", 16, false)).await;
    assert_eq!(ask().await.status, 401, "paused, as instance 1 reads it");

    // Resumed as another instance would, but with no notice sent: the row in the store
    // and the version in Redis only (the notice is a Pub/Sub message, which can come late).
    let store = cluster.store().await;
    let mut key = store
        .spend_key(&spendgate_core::WalletId::new(k["wallet_id"].as_str().unwrap()), &SpendKeyId::new(&id))
        .await
        .unwrap()
        .unwrap();
    let version = key.version;
    key.status = spendgate_core::KeyStatus::Active;
    key.version += 1;
    let audit = spendgate_core::AuditEntry {
        id: spendgate_core::AuditId::new("aud_resume_test"),
        wallet_id: key.wallet_id.clone(),
        actor: spendgate_core::Actor::Operator,
        action: spendgate_core::Action::SpendKeyUpdated,
        target_id: id.clone(),
        changes: json!({"status": {"from": "paused", "to": "active"}}),
        ip: None,
        user_agent: None,
        created_at: key.updated_at,
    };
    assert!(store.update_spend_key(&key, version, &audit).await.unwrap());
    let _: () = redis::cmd("HSET")
        .arg(format!("{}:1:k:{id}", cluster.prefix))
        .arg("v")
        .arg(key.version)
        .query_async(&mut cluster.redis().await)
        .await
        .unwrap();
    let r = ask().await;
    assert_eq!(r.status, 200, "resumed, though no notice came: {}", r.body);
}
