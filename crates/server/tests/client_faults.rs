//! Client faults over real HTTP: slow heads (slowloris), slow bodies, oversized heads,
//! and bad input of every shape. Each gets a clear 4xx in the client's format (or, for
//! a head that never completes, a closed connection), never a 5xx and never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Gateway;
use serde_json::{Value, json};
use spendgate_mock::MockConfig;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MINI: &str = "gpt-4o-mini";
const SONNET: &str = "claude-sonnet-4-20250514";

fn addr(gw: &Gateway) -> String {
    gw.url.trim_start_matches("http://").to_string()
}

/// Reads what the server sends until it closes the connection (or 5 s pass).
async fn read_to_close(tcp: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_is_cut_off() {
    let gw = Gateway::start_with(MockConfig::default(), "[server]\nheader_timeout_ms = 300").await;
    let mut tcp = TcpStream::connect(addr(&gw)).await.unwrap();
    tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let (_, took) = read_to_close(&mut tcp).await;
    assert!(took < Duration::from_secs(3), "the connection was closed after {took:?}");
    // The server still serves everyone else.
    assert_eq!(gw.http.get(format!("{}/healthz", gw.url)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_a_408_in_the_clients_format() {
    let gw = Gateway::start_with(MockConfig::default(), "[server]\nbody_timeout_ms = 300").await;
    let (id, key) = gw.key(json!({"name": "slow", "request_shape": "anthropic"})).await;
    let mut tcp = TcpStream::connect(addr(&gw)).await.unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{{\"model\":"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (answer, took) = read_to_close(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"type\":\"error\"") && answer.contains("body_timeout_ms"), "{answer}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(gw.mock.recorded().len(), 0);
    assert_eq!(gw.meter(&id).1, 0);
}

#[tokio::test]
async fn an_oversized_head_is_a_431() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (_, key) = gw.key(json!({"name": "h"})).await;
    // On a new connection, and on one kept alive after a request.
    for client in [reqwest::Client::new(), gw.http.clone()] {
        let r = client
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(&key)
            .header("x-padding", "a".repeat(100 << 10))
            .json(&Gateway::chat(MINI, "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 431);
    }
    assert_eq!(gw.mock.recorded().len(), 0);
}

/// Every body here is wrong in one field; the answer is a 400 naming it.
#[tokio::test]
async fn bad_input_is_a_400_that_names_the_field_never_a_5xx() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (oa_id, oa) = gw.key(json!({"name": "oa", "spend_limit": {"amount": "1", "cycle": "daily"}})).await;
    let (an_id, an) = gw.key(json!({"name": "an", "request_shape": "anthropic"})).await;
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let chat_cases: Vec<(Value, &str)> = vec![
        (json!({"model": 42, "messages": msgs}), "model"),
        (json!({"model": null, "messages": msgs}), "model"),
        (json!({"model": ["gpt-4o-mini"], "messages": msgs}), "model"),
        (json!({"model": MINI, "messages": msgs, "max_tokens": -1}), "max_tokens"),
        (json!({"model": MINI, "messages": msgs, "max_tokens": 1e30}), "max_tokens"),
        (json!({"model": MINI, "messages": msgs, "max_tokens": "100"}), "max_tokens"),
        (json!({"model": MINI, "messages": msgs, "max_completion_tokens": 1.5}), "max_completion_tokens"),
        (json!({"model": MINI, "messages": msgs, "n": -3}), "n"),
        (json!({"model": MINI, "messages": msgs, "n": 0}), "n"),
        (json!({"model": MINI, "messages": msgs, "stream": "yes"}), "stream"),
        (json!({"model": MINI}), "messages"),
        (json!({"model": MINI, "messages": "hi"}), "messages"),
        (json!({"model": MINI, "messages": {"role": "user", "content": "hi"}}), "messages"),
        (json!({"model": MINI, "messages": 7}), "messages"),
    ];
    let mut chat_cases = chat_cases;
    // A number past u64, as a client may write it (not representable in a `Value`).
    let huge = format!("{{\"model\":\"{MINI}\",\"messages\":[],\"max_tokens\":18446744073709551616}}");
    chat_cases.push((Value::String(huge), "max_tokens"));
    for (body, param) in &chat_cases {
        let body = match body {
            Value::String(raw) => {
                let req = gw.http.post(format!("{}/v1/chat/completions", gw.url)).bearer_auth(&oa);
                let r = gw.send_raw(req.header("content-type", "application/json").body(raw.clone())).await;
                assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(*param)), "{raw}: {}", r.body);
                continue;
            }
            body => body,
        };
        let r = gw.call("/v1/chat/completions", &oa, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["param"].as_str(), Some(*param), "{body}: {}", r.body);
        assert_eq!(r.body["error"]["type"], "invalid_request_error");
    }
    for (path, body) in [
        ("/v1/embeddings", json!({"model": "text-embedding-3-small"})),
        ("/v1/embeddings", json!({"model": "text-embedding-3-small", "input": 5})),
        ("/v1/responses", json!({"model": MINI, "input": {"text": "hi"}})),
    ] {
        let r = gw.call(path, &oa, body.clone()).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("input")), "{path} {body}: {}", r.body);
    }
    let message_cases: Vec<(Value, &str)> = vec![
        (json!({"model": SONNET, "messages": msgs}), "max_tokens"),
        (json!({"model": SONNET, "messages": msgs, "max_tokens": -5}), "max_tokens"),
        (json!({"model": SONNET, "messages": msgs, "max_tokens": 1e300}), "max_tokens"),
        (json!({"model": {"id": SONNET}, "messages": msgs, "max_tokens": 5}), "model"),
        (json!({"model": SONNET, "max_tokens": 5}), "messages"),
        (json!({"model": SONNET, "messages": "hi", "max_tokens": 5}), "messages"),
    ];
    for (body, param) in &message_cases {
        let r = gw.call("/v1/messages", &an, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["type"], "error");
        assert_eq!(r.body["error"]["type"], "invalid_request_error");
        assert!(r.body["error"]["message"].as_str().unwrap().contains(param), "{body}: {}", r.body);
    }
    // Not JSON, not an object, empty, nested past any sane depth, invalid UTF-8.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let raw: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"[1,2,3]".to_vec(),
        b"".to_vec(),
        b"{\"model\": \"gpt-4o-mini\", \"messages\": [".to_vec(),
        format!("{{\"model\": \"{MINI}\", \"messages\": {deep}}}").into_bytes(),
        b"{\"model\": \"\xff\xfe\", \"messages\": []}".to_vec(),
    ];
    for body in raw {
        let r = gw
            .send_raw(
                gw.http
                    .post(format!("{}/v1/chat/completions", gw.url))
                    .bearer_auth(&oa)
                    .header("content-type", "application/json")
                    .body(body.clone()),
            )
            .await;
        assert_eq!(r.status, 400, "{:?}: {}", String::from_utf8_lossy(&body[..body.len().min(60)]), r.body);
        assert!(r.body["error"]["param"].is_string(), "{}", r.body);
    }
    // Nothing reached the provider, nothing is held, nothing was charged.
    assert_eq!(gw.mock.recorded().len(), 0);
    for id in [&oa_id, &an_id] {
        assert_eq!(gw.meter(id), (0, 0));
        assert_eq!(gw.get_key(id).await["total_requests"], 0);
    }
}

#[tokio::test]
async fn guessing_wallet_keys_is_cut_off_after_20_failures_per_address() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (_, spend_key) = gw.key(json!({"name": "s"})).await;
    for i in 0..20 {
        let r = gw
            .send_raw(gw.http.get(format!("{}/v1/spend_keys", gw.url)).bearer_auth(format!("lava_wk_guess{i:030}")))
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // Now even the right key is refused from this address, on the API and the dashboard.
    let r = gw.admin("GET", "/v1/spend_keys", None).await;
    assert_eq!(r.status, 429, "{}", r.body);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("too many failed sign-in attempts"));
    let r =
        gw.send_raw(gw.http.post(format!("{}/api/session", gw.url)).json(&json!({"wallet_key": gw.wallet_key}))).await;
    assert_eq!(r.status, 429, "{}", r.body);
    // Spend keys on the gateway are not wallet sign-ins: unaffected.
    assert_eq!(gw.call("/v1/chat/completions", &spend_key, Gateway::chat(MINI, "hi")).await.status, 200);
}

/// Behind a trusted reverse proxy the client is the one its `X-Forwarded-For` names:
/// the brute-force guard locks out that client, not everyone behind the proxy, and the
/// audit log records it. From anyone else the header is ignored.
#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_counts() {
    let gw = Gateway::start_with(MockConfig::default(), "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n").await;
    let as_client = |req: reqwest::RequestBuilder, ip: &str| req.header("x-forwarded-for", format!("1.2.3.4, {ip}"));
    for i in 0..20 {
        let req = gw.http.get(format!("{}/v1/spend_keys", gw.url)).bearer_auth(format!("lava_wk_guess{i:030}"));
        assert_eq!(gw.send_raw(as_client(req, "203.0.113.66")).await.status, 401);
    }
    let list = |ip: &str| as_client(gw.http.get(format!("{}/v1/spend_keys", gw.url)).bearer_auth(&gw.wallet_key), ip);
    assert_eq!(gw.send_raw(list("203.0.113.66")).await.status, 429, "the guessing client is cut off");
    assert_eq!(gw.send_raw(list("203.0.113.67")).await.status, 200, "another client behind the proxy is not");

    let create =
        as_client(gw.http.post(format!("{}/v1/spend_keys", gw.url)).bearer_auth(&gw.wallet_key), "203.0.113.9");
    assert_eq!(gw.send_raw(create.json(&json!({"name": "proxied"}))).await.status, 201);
    let log = gw.admin("GET", "/v1/audit_log?limit=1", None).await;
    assert_eq!(log.body["data"][0]["ip"], "203.0.113.9", "{}", log.body);

    // Without trusted proxies the header is the client's own word, and ignored.
    let plain = Gateway::start(MockConfig::default()).await;
    let req = plain.http.post(format!("{}/v1/spend_keys", plain.url)).bearer_auth(&plain.wallet_key);
    let req = req.header("x-forwarded-for", "203.0.113.9").json(&json!({"name": "direct"}));
    assert_eq!(plain.send_raw(req).await.status, 201);
    assert_eq!(plain.admin("GET", "/v1/audit_log?limit=1", None).await.body["data"][0]["ip"], "127.0.0.1");
    let bad = spendgate_server::config::Config::from_toml(
        "[server]\ntrusted_proxies = [\"10.0.0.0/40\"]\n",
        &spendgate_server::config::Overrides::default(),
    )
    .unwrap_err();
    assert!(bad.to_string().contains("server.trusted_proxies: \"10.0.0.0/40\""), "{bad}");
}
