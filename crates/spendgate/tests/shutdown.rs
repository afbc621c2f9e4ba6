//! SIGTERM: the server stops accepting, lets the requests in flight finish (streams
//! included) up to `server.shutdown_grace_ms`, writes every request record and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Server, TempDir, create_wallet, provider_env, start_mock_with};
use serde_json::{Value, json};
use spendgate_mock::MockConfig;
use std::time::{Duration, Instant};

/// Starts a stream and returns it once its first bytes came.
async fn open_stream(server: &Server, key: &str, tokens: u32) -> (String, reqwest::Response) {
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": format!("[[mock:tokens:{tokens}]] hi")}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    (server.url.clone(), resp)
}

/// Reads a stream to its end: the text, and whether it ended cleanly.
async fn read_stream(mut resp: reqwest::Response) -> (String, bool) {
    let mut text = String::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => text.push_str(&String::from_utf8_lossy(&c)),
            Ok(None) => return (text, true),
            Err(_) => return (text, false),
        }
    }
}

async fn key_usage(server: &Server, wallet_key: &str, id: &str) -> Value {
    Api::new(server, wallet_key).call("GET", &format!("/v1/spend_keys/{id}"), None).await.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_streams_finish_writes_their_records_and_exits_0() {
    let dir = TempDir::new("sigterm");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let (mock_url, _mock) = start_mock_with(MockConfig { chunk_delay_ms: 20, ..MockConfig::default() }).await;
    let env = provider_env(&mock_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Server::start_env(&dir, &env);
    let created = Api::new(&server, &wallet_key).create_key(json!({"name": "t"})).await;
    let (id, key) =
        (created["spend_key_id"].as_str().unwrap().to_string(), created["key"].as_str().unwrap().to_string());

    let (url, resp) = open_stream(&server, &key, 30).await; // ~0.6 s of events
    let reading = tokio::spawn(read_stream(resp));
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = reqwest::Client::new().get(format!("{url}/healthz")).send().await;
    assert!(refused.is_err(), "no new connection is accepted after SIGTERM");
    let (text, clean) = reading.await.unwrap();
    assert!(clean && text.contains("[DONE]"), "the stream in flight finished: {text}");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");

    let server = Server::start_env(&dir, &env);
    let k = key_usage(&server, &wallet_key, &id).await;
    assert_eq!(k["total_requests"], 1, "its record was written before exit: {k}");
    assert_ne!(k["total_spend"], "0.00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_grace_period_are_cut_and_charged_for_what_came() {
    let dir = TempDir::new("grace");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let (mock_url, mock) = start_mock_with(MockConfig { chunk_delay_ms: 20, ..MockConfig::default() }).await;
    let env = provider_env(&mock_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = dir.path("spendgate.toml");
    std::fs::write(&config, "[server]\nshutdown_grace_ms = 300\n").unwrap();
    let args = ["--database", &dir.db_url(), "--config", config.to_str().unwrap()];
    let mut server = Server::launch(&dir, &args, &env);
    let created = Api::new(&server, &wallet_key).create_key(json!({"name": "g"})).await;
    let (id, key) =
        (created["spend_key_id"].as_str().unwrap().to_string(), created["key"].as_str().unwrap().to_string());

    let (_, resp) = open_stream(&server, &key, 500).await; // ~10 s of events
    let reading = tokio::spawn(read_stream(resp));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
    assert!(asked.elapsed() < Duration::from_secs(3), "exited {:?} after SIGTERM", asked.elapsed());
    let (text, clean) = reading.await.unwrap();
    assert!(!clean || !text.contains("[DONE]"), "the stream was cut, not finished");
    assert!(common::eventually(|| mock.streams_cancelled() == 1).await, "the provider's request was cancelled");

    let server = Server::launch(&dir, &args, &env);
    let k = key_usage(&server, &wallet_key, &id).await;
    assert_eq!(k["total_requests"], 1, "the cut stream's record was written: {k}");
    assert_ne!(k["total_spend"], "0.00", "charged for what was produced");
}
