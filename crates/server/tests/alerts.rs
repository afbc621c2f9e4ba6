//! Budget alerts over real HTTP: webhooks registered through the wallet API are sent,
//! to a local receiver, each event once (spend thresholds, the request limit, expiry, a
//! test), signed with HMAC-SHA256 under their secret, retried with backoff when the
//! receiver fails, given up after the last attempt; and the delivery log says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{Gateway, eventually};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use spendgate_mock::MockConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const MINI: &str = "gpt-4o-mini";

#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A webhook receiver that records what it is sent and fails the first attempt of each
/// delivery with a 503.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The bodies received with a 2xx answer (the second attempt of each), by type.
    fn delivered(&self, event: &str) -> Vec<Value> {
        let mut attempts: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for r in self.all() {
            let id = r.headers["spendgate-delivery"].to_str().unwrap().to_string();
            let n = attempts.entry(id).or_default();
            *n += 1;
            let body: Value = serde_json::from_str(&r.body).unwrap();
            if *n == 2 && body["type"] == event {
                out.push(body);
            }
        }
        out
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let mut got = r.got.lock().unwrap();
    let id = headers.get("spendgate-delivery").map(|v| v.to_str().unwrap().to_string());
    let before = got
        .iter()
        .filter(|g| g.headers.get("spendgate-delivery").map(|v| v.to_str().unwrap().to_string()) == id)
        .count();
    got.push(Received { headers, body });
    if before == 0 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
}

/// Checks `spendgate-signature` (`t=<secs>,v1=<hex>`) of a received body with the
/// webhook's secret, computed here independently of the server's code.
fn signed_with(r: &Received, secret: &str) -> bool {
    let header = r.headers["spendgate-signature"].to_str().unwrap();
    let (t, v1) = header.split_once(',').unwrap();
    let (t, v1) = (t.strip_prefix("t=").unwrap(), v1.strip_prefix("v1=").unwrap());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", r.body).as_bytes());
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    v1 == want
}

async fn deliveries(gw: &Gateway, webhook: &str) -> Vec<Value> {
    let r = gw.admin("GET", &format!("/v1/webhooks/{webhook}/deliveries?limit=100"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

/// Waits for a few rounds of the alert task.
async fn rounds() {
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_sent_once_signed_and_retried() {
    let gw = Gateway::start_with(
        MockConfig::default(),
        "[alerts]\ncheck_interval_ms = 20\nretry_base_ms = 60000\nmax_attempts = 3\n",
    )
    .await;
    let (receiver, url) = Receiver::start().await;

    // A key allowed 2 requests a day.
    let (key_id, key) = gw.key(json!({"name": "capped", "request_limit": {"count": 2, "cycle": "daily"}})).await;
    let expires = "2026-11-23T12:01:00Z";
    let (other_id, _) = gw.key(json!({"name": "expiring", "expires_at": expires})).await;

    // A webhook for every key (thresholds 25, 50 and 100) and one for the other key only.
    let created = gw.admin("POST", "/v1/webhooks", Some(json!({"url": url, "thresholds": [100, 50, 25]}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let wallet_hook = created.body["webhook_id"].as_str().unwrap().to_string();
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created.body["thresholds"], json!([25, 50, 100]));
    assert_eq!(created.body["events"], json!(["spend.threshold", "request_limit.reached", "spend_key.expired"]));
    let key_hook = gw
        .admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "spend_key_id": other_id, "events": ["spend_key.expired"]})),
        )
        .await;
    assert_eq!(key_hook.status, 201, "{}", key_hook.body);
    let key_hook_id = key_hook.body["webhook_id"].as_str().unwrap().to_string();
    let key_hook_secret = key_hook.body["secret"].as_str().unwrap().to_string();
    // The secret is shown once; bad settings are named.
    let listed = gw.admin("GET", "/v1/webhooks", None).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    assert!(listed.body["data"][0].get("secret").is_none());
    for (body, param) in [
        (json!({"url": "ftp://x"}), "url"),
        (json!({"url": url, "thresholds": [0]}), "thresholds[0]"),
        (json!({"url": url, "events": ["nope"]}), "events[0]"),
        (json!({"url": url, "spend_key_id": "key_unknown"}), "spend_key_id"),
    ] {
        let r = gw.admin("POST", "/v1/webhooks", Some(body)).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(param)), "{}", r.body);
    }

    // One request; then a spend limit of 1.8 times its cost (a change is checked too):
    // past 25 and 50 percent, not 100. The first attempt of each delivery fails (503);
    // the retry waits a minute.
    assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await.status, 200);
    let cost = common::nanos(&gw.get_key(&key_id).await["total_spend"]);
    let limit = format!("{:.9}", cost as f64 * 1.8 / 1e9);
    let r = gw
        .admin(
            "PATCH",
            &format!("/v1/spend_keys/{key_id}"),
            Some(json!({"spend_limit": {"amount": limit, "cycle": "daily"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(eventually(|| receiver.all().len() >= 2).await, "{:?}", receiver.all());
    rounds().await;
    let log = deliveries(&gw, &wallet_hook).await;
    assert_eq!(log.len(), 2, "{log:?}");
    for d in &log {
        assert_eq!(
            (d["event"].as_str(), d["status"].as_str(), d["attempts"].as_u64()),
            (Some("spend.threshold"), Some("pending"), Some(1))
        );
        assert_eq!(d["last_status"], 503);
        assert_eq!(d["next_attempt_at"], "2026-11-23T12:01:00Z", "a minute after the failure");
    }
    assert_eq!(receiver.all().len(), 2, "not retried before its time");

    // A minute later the retries go through; and the other key has expired.
    gw.clock.set("2026-11-23T12:01:00Z");
    assert!(eventually(|| receiver.delivered("spend.threshold").len() == 2).await, "{:?}", receiver.all());
    let mut thresholds: Vec<u64> = receiver
        .delivered("spend.threshold")
        .iter()
        .map(|b| b["data"]["threshold_percent"].as_u64().unwrap())
        .collect();
    thresholds.sort_unstable();
    assert_eq!(thresholds, [25, 50]);
    let alert = &receiver.delivered("spend.threshold")[0];
    assert_eq!(alert["data"]["spend_key"]["spend_key_id"], key_id.as_str());
    assert_eq!(common::nanos(&alert["data"]["spend_key"]["current_spend"]), cost);
    assert!(alert["data"]["spend_key"].get("key").is_none(), "no secret in an alert");
    assert_eq!(alert["data"]["cycle_start"], "2026-11-23T00:00:00Z");
    let log = deliveries(&gw, &wallet_hook).await;
    let spend: Vec<&Value> = log.iter().filter(|d| d["event"] == "spend.threshold").collect();
    assert_eq!(spend.len(), 2);
    assert!(
        spend.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 2 && d["last_status"] == 200),
        "{log:?}"
    );

    // Expiry, to both webhooks (each its own delivery, with its own signature).
    let expiries = || receiver.all().iter().filter(|r| r.body.contains("spend_key.expired")).count();
    assert!(eventually(|| expiries() == 2).await, "first attempts: {:?}", receiver.all());
    gw.clock.set("2026-11-23T12:02:00Z");
    assert!(eventually(|| receiver.delivered("spend_key.expired").len() == 2).await, "{:?}", receiver.all());
    for body in receiver.delivered("spend_key.expired") {
        assert_eq!(body["data"]["spend_key"]["spend_key_id"], other_id.as_str());
    }

    // The second request reaches the request limit; the 100% threshold is never reached
    // (the spend cap holds) and nothing is sent twice.
    assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "again")).await.status, 429);
    // Raise the cap (a change is checked too) so that the second request fits.
    let raised = format!("{:.9}", cost as f64 * 10.0 / 1e9);
    let r = gw
        .admin(
            "PATCH",
            &format!("/v1/spend_keys/{key_id}"),
            Some(json!({"spend_limit": {"amount": raised, "cycle": "daily"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "again")).await.status, 200);
    assert!(eventually(|| receiver.all().iter().any(|r| r.body.contains("request_limit.reached"))).await);
    gw.clock.set("2026-11-23T12:04:00Z");
    assert!(eventually(|| receiver.delivered("request_limit.reached").len() == 1).await, "{:?}", receiver.all());
    rounds().await;
    let events: Vec<String> =
        deliveries(&gw, &wallet_hook).await.iter().map(|d| d["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(events.iter().filter(|e| *e == "spend.threshold").count(), 2, "{events:?}");
    assert_eq!(events.iter().filter(|e| *e == "request_limit.reached").count(), 1, "{events:?}");
    assert_eq!(events.iter().filter(|e| *e == "spend_key.expired").count(), 1, "{events:?}");
    let body = &receiver.delivered("request_limit.reached")[0];
    assert_eq!(body["data"]["spend_key"]["current_requests"], 2);

    // Every attempt was signed with its webhook's secret, and carried its event's headers.
    let all = receiver.all();
    for r in &all {
        let hook = serde_json::from_str::<Value>(&r.body).unwrap();
        let secret = if deliveries(&gw, &key_hook_id).await.iter().any(|d| d["delivery_id"] == hook["id"]) {
            &key_hook_secret
        } else {
            &secret
        };
        assert!(signed_with(r, secret), "{:?}", r.headers);
        assert!(!signed_with(r, "whsec_wrong"));
        assert_eq!(r.headers["spendgate-event"].to_str().unwrap(), hook["type"].as_str().unwrap());
        assert_eq!(r.headers["content-type"], "application/json");
    }

    // A test event on request.
    let test = gw.admin("POST", &format!("/v1/webhooks/{key_hook_id}/test"), None).await;
    assert_eq!(test.status, 202, "{}", test.body);
    assert_eq!(test.body["event"], "webhook.test");
    assert!(eventually(|| receiver.all().iter().any(|r| r.body.contains("webhook.test"))).await);
    gw.clock.set("2026-11-23T12:06:00Z");
    assert!(eventually(|| receiver.delivered("webhook.test").len() == 1).await);

    // The webhooks are in the audit log.
    let audit = gw.admin("GET", &format!("/v1/audit_log?target_id={wallet_hook}"), None).await;
    assert_eq!(audit.body["data"][0]["action"], "webhook.created");
    assert!(!audit.body.to_string().contains(&secret), "no secret in the audit log");

    // Deleted: gone, and what was not delivered yet is not sent.
    let pending = gw.admin("POST", &format!("/v1/webhooks/{key_hook_id}/test"), None).await;
    assert_eq!(pending.status, 202);
    assert!(
        eventually(|| receiver.all().iter().any(|r| r.body.contains(pending.body["delivery_id"].as_str().unwrap())))
            .await
    );
    assert_eq!(gw.admin("DELETE", &format!("/v1/webhooks/{key_hook_id}"), None).await.status, 200);
    assert_eq!(gw.admin("DELETE", &format!("/v1/webhooks/{key_hook_id}"), None).await.status, 404);
    assert_eq!(gw.admin("GET", &format!("/v1/webhooks/{key_hook_id}/deliveries"), None).await.status, 404);
    let sent = receiver.all().len();
    gw.clock.set("2026-11-23T12:10:00Z");
    rounds().await;
    assert_eq!(receiver.all().len(), sent, "no retry to a deleted webhook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_receiver_is_given_up_after_the_last_attempt() {
    let gw = Gateway::start_with(
        MockConfig::default(),
        "[alerts]\ncheck_interval_ms = 20\nretry_base_ms = 1000\nmax_attempts = 3\n",
    )
    .await;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let hook = gw.admin("POST", "/v1/webhooks", Some(json!({"url": url}))).await.body["webhook_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(gw.admin("POST", &format!("/v1/webhooks/{hook}/test"), None).await.status, 202);
    let attempts = |log: &[Value]| log[0]["attempts"].as_u64().unwrap();
    // Attempt 1 now, 2 a second later, 3 two seconds after that: then failed.
    for (n, at) in [(1, "2026-11-23T12:00:00Z"), (2, "2026-11-23T12:00:01Z"), (3, "2026-11-23T12:00:03Z")] {
        gw.clock.set(at);
        let mut log = Vec::new();
        for _ in 0..100 {
            log = deliveries(&gw, &hook).await;
            if attempts(&log) == n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(attempts(&log), n, "{log:?}");
    }
    let log = deliveries(&gw, &hook).await;
    assert_eq!(log[0]["status"], "failed", "{log:?}");
    assert_eq!(log[0]["next_attempt_at"], Value::Null);
    assert_eq!(log[0]["last_status"], Value::Null);
    assert!(log[0]["last_error"].as_str().unwrap().contains("could not reach"), "{log:?}");
    let metrics = gw.http.get(format!("{}/metrics", gw.url)).send().await.unwrap().text().await.unwrap();
    for line in [
        "spendgate_alert_delivery_attempts_total{event=\"webhook.test\",outcome=\"retry\"} 2",
        "spendgate_alert_delivery_attempts_total{event=\"webhook.test\",outcome=\"failed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    gw.clock.set("2026-11-23T13:00:00Z");
    rounds().await;
    assert_eq!(attempts(&deliveries(&gw, &hook).await), 3, "no attempt after the last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_receivers_are_refused_when_the_operator_says_so() {
    let gw = Gateway::start_with(
        MockConfig::default(),
        "[alerts]\ncheck_interval_ms = 20\nmax_attempts = 1\nblock_private_addresses = true\n",
    )
    .await;
    let (receiver, url) = Receiver::start().await;
    let hook = gw.admin("POST", "/v1/webhooks", Some(json!({"url": url}))).await.body["webhook_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(gw.admin("POST", &format!("/v1/webhooks/{hook}/test"), None).await.status, 202);
    let mut log = Vec::new();
    for _ in 0..100 {
        log = deliveries(&gw, &hook).await;
        if log[0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(log[0]["status"], "failed", "{log:?}");
    assert!(log[0]["last_error"].as_str().unwrap().contains("private address"), "{log:?}");
    assert!(receiver.all().is_empty(), "nothing reached the receiver");
}
