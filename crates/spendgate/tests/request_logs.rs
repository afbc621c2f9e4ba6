//! Request ids and the per-request log line, against the real binary: `x-request-id` is
//! taken from the client (or made) and echoed, the provider's own id moves to
//! `x-provider-request-id`, and each model request gets one log line with its id, key,
//! model, tokens, cost, status and time, in text and in JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Server, TempDir, cli, create_wallet, provider_env, start_mock};
use serde_json::{Value, json};
use std::time::Duration;

async fn chat(server: &Server, key: &str, request_id: Option<&str>, stream: bool) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "[[mock:tokens:7]] hi"}]}));
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    req.send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The log lines (written in batches every 100 ms) that contain `needle`, waiting for them.
async fn lines_with(server: &Server, needle: &str) -> Vec<String> {
    for _ in 0..50 {
        let found: Vec<String> = server.logs().lines().filter(|l| l.contains(needle)).map(str::to_string).collect();
        if !found.is_empty() {
            tokio::time::sleep(Duration::from_millis(150)).await;
            return server.logs().lines().filter(|l| l.contains(needle)).map(str::to_string).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no log line with {needle}:\n{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_and_each_request_has_one_log_line() {
    let dir = TempDir::new("request-logs");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let (mock_url, _mock) = start_mock().await;
    let env = provider_env(&mock_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_env(&dir, &env);
    let admin = Api::new(&server, &wallet_key);
    let created = admin.create_key(json!({"name": "logged", "allowed_models": ["gpt-4o-mini"]})).await;
    let (key_id, key) = (created["spend_key_id"].as_str().unwrap(), created["key"].as_str().unwrap());

    // The client's id is echoed; the provider's own id is kept under another name.
    let r = chat(&server, key, Some("trace-abc-123"), false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-request-id"), "trace-abc-123");
    assert!(header(&r, "x-provider-request-id").starts_with("req_"), "{:?}", r.headers());
    let cost = header(&r, "x-spendgate-cost");
    // Without one, the gateway's id, which is also the request's record id.
    let r = chat(&server, key, None, false).await;
    let generated = header(&r, "x-request-id");
    assert!(generated.starts_with("req_") && generated.len() == 32, "{generated}");
    // An id that could not be logged as it is (spaces, too long) is replaced.
    for bad in ["has spaces", &"x".repeat(200)] {
        let r = chat(&server, key, Some(bad), false).await;
        assert!(header(&r, "x-request-id").starts_with("req_"), "{bad}");
    }
    // Streamed, and refused.
    let r = chat(&server, key, Some("stream-1"), true).await;
    assert_eq!(header(&r, "x-request-id"), "stream-1");
    assert!(r.text().await.unwrap().contains("[DONE]"));
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(key)
        .header("x-request-id", "refused-1")
        .json(&json!({"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!((refused.status().as_u16(), header(&refused, "x-request-id")), (403, "refused-1".to_string()));

    // One line per request, with what an operator looks for.
    let line = lines_with(&server, "request_id=trace-abc-123").await;
    assert_eq!(line.len(), 1, "{line:?}");
    let line = &line[0];
    for part in [
        &format!("key={key_id}"),
        "endpoint=/v1/chat/completions",
        "model=gpt-4o-mini",
        "status=200",
        "output_tokens=7",
        &format!("cost={cost}"),
        "record_id=req_",
        " ms=",
    ] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
    assert!(line.contains("input_tokens="), "{line}");
    let own = lines_with(&server, &format!("request_id={generated}")).await;
    assert_eq!(own.len(), 1);
    assert!(!own[0].contains("record_id="), "the id is the record's: {}", own[0]);
    let streamed = lines_with(&server, "request_id=stream-1").await;
    assert_eq!(streamed.len(), 1);
    assert!(streamed[0].contains("output_tokens=7") && streamed[0].contains("status=200"), "{}", streamed[0]);
    let refused = lines_with(&server, "request_id=refused-1").await;
    assert_eq!(refused.len(), 1);
    assert!(refused[0].contains("status=403") && refused[0].contains(&format!("key={key_id}")), "{}", refused[0]);
    assert!(!refused[0].contains("cost="), "nothing was charged: {}", refused[0]);

    // The record of the request without a client id carries the echoed id.
    let log = admin.call("GET", &format!("/v1/requests?spend_key_id={key_id}&limit=100"), None).await;
    let ids: Vec<&str> =
        log.body["data"].as_array().unwrap().iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&generated.as_str()), "{ids:?}");
    // Wallet API calls keep their access line.
    assert!(server.logs().contains("path=/v1/spend_keys status=201"), "{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_same_fields() {
    let dir = TempDir::new("request-logs-json");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let (mock_url, _mock) = start_mock().await;
    let env = provider_env(&mock_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let db = dir.db_url();
    // The format from the config file (`--log-format` would override it).
    let config = dir.path("spendgate.toml");
    std::fs::write(&config, "[log]\nformat = \"json\"\nlevel = \"info\"\n").unwrap();
    let server = Server::launch(&dir, &["--database", &db, "--config", config.to_str().unwrap()], &env);
    let created = Api::new(&server, &wallet_key).create_key(json!({"name": "json"})).await;
    let (key_id, key) = (created["spend_key_id"].as_str().unwrap(), created["key"].as_str().unwrap());
    assert_eq!(chat(&server, key, Some("json-1"), false).await.status(), 200);

    let line = lines_with(&server, "\"json-1\"").await;
    assert_eq!(line.len(), 1);
    let v: Value = serde_json::from_str(&line[0]).unwrap_or_else(|e| panic!("{e}: {}", line[0]));
    let f = &v["fields"];
    assert_eq!(f["message"], "request");
    assert_eq!(f["request_id"], "json-1");
    assert_eq!(f["key"], key_id);
    assert_eq!(f["model"], "gpt-4o-mini");
    assert_eq!(f["status"], 200);
    assert_eq!(f["output_tokens"], 7);
    assert!(f["cost"].as_str().unwrap().parse::<f64>().unwrap() > 0.0, "{f}");
    assert!(f["ms"].is_u64() && f["input_tokens"].is_u64(), "{f}");
    // Every line is JSON.
    for l in server.logs().lines() {
        assert!(serde_json::from_str::<Value>(l).is_ok(), "not JSON: {l}");
    }
}

#[test]
fn bad_log_settings_are_named() {
    let dir = TempDir::new("request-logs-bad");
    let db = dir.db_url();
    for (toml, expected) in [
        ("[log]\nformat = \"xml\"\n", "log.format: \"xml\" must be"),
        ("[log]\nlevel = \"spendgate=loud\"\n", "log.level \"spendgate=loud\" is not a log filter"),
        ("[log]\ncolour = true\n", "colour"),
    ] {
        let config = dir.path("bad.toml");
        std::fs::write(&config, toml).unwrap();
        let args = ["serve", "--listen", "127.0.0.1:0", "--database", &db, "--config", config.to_str().unwrap()];
        let (ok, _, err) = cli(&args, &[("SPENDGATE_LOG", "")]);
        assert!(!ok, "{toml} started");
        assert!(err.contains(expected), "{toml}: {err}");
    }
}
