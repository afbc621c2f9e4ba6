//! Nothing acknowledged is lost: restarts, `kill -9` right after an answer, and no
//! secret ever stored or logged in clear.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Server, TempDir, cli, contains_bytes, create_wallet, database_bytes, start_mock};
use serde_json::{Value, json};

fn without_key(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("key");
    v
}

async fn snapshot(api: &Api) -> Value {
    let r = api.call("GET", "/v1/spend_keys?limit=100", None).await;
    assert_eq!(r.status, 200);
    r.body
}

#[tokio::test]
async fn every_change_survives_a_restart_and_kill_9() {
    let dir = TempDir::new("durable");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let mut server = Server::start(&dir);
    let api = Api::new(&server, &wallet_key);

    let full = api
        .create_key(json!({
            "name": "full", "request_shape": "anthropic", "status": "paused",
            "allowed_models": ["claude-sonnet-4-20250514"], "allowed_providers": ["anthropic"],
            "spend_limit": {"amount": "50.00", "cycle": "monthly"},
            "request_limit": {"count": 1000, "cycle": "daily"},
            "rate_limit": {"rpm": 60, "burst": 10}, "expires_at": "2030-01-01T00:00:00Z"
        }))
        .await;
    let updated = api.minimal_key("to update").await;
    let rotated = api.minimal_key("to rotate").await;
    let revoked = api.minimal_key("to revoke").await;
    let path = |k: &Value| format!("/v1/spend_keys/{}", k["spend_key_id"].as_str().unwrap());
    assert_eq!(
        api.call("PUT", &path(&updated), Some(json!({"spend_limit": {"amount": "3", "cycle": "weekly"}}))).await.status,
        200
    );
    let new_secret =
        api.call("POST", &format!("{}/rotate", path(&rotated)), None).await.body["key"].as_str().unwrap().to_string();
    assert_eq!(api.call("DELETE", &path(&revoked), None).await.status, 200);
    let before = snapshot(&api).await;
    assert_eq!(before["data"].as_array().unwrap().len(), 3);

    // A clean restart.
    server.stop();
    let mut server = Server::start(&dir);
    let api = Api::new(&server, &wallet_key);
    assert_eq!(snapshot(&api).await, before, "a restart changed the keys");
    assert_eq!(api.call("GET", &path(&full), None).await.body, without_key(full.clone()));
    assert_eq!(api.call("GET", &path(&revoked), None).await.status, 404, "revoked stays revoked");
    let old = Api::new(&server, rotated["key"].as_str().unwrap()).call("GET", "/v1/models", None).await;
    assert_eq!(old.status, 401, "the rotated-away secret stays dead");
    assert_eq!(Api::new(&server, &new_secret).call("GET", "/v1/models", None).await.status, 200);

    // kill -9 right after each acknowledgement.
    let created = api.minimal_key("acknowledged then killed").await;
    server.kill_9();
    let mut server = Server::start(&dir);
    let api = Api::new(&server, &wallet_key);
    assert_eq!(api.call("GET", &path(&created), None).await.body, without_key(created.clone()));

    let r = api.call("PATCH", &path(&created), Some(json!({"name": "renamed", "rate_limit": {"rpm": 5}}))).await;
    assert_eq!(r.status, 200);
    server.kill_9();
    let mut server = Server::start(&dir);
    let api = Api::new(&server, &wallet_key);
    assert_eq!(api.call("GET", &path(&created), None).await.body, r.body);

    let rotated_again = api.call("POST", &format!("{}/rotate", path(&created)), None).await.body;
    server.kill_9();
    let server = Server::start(&dir);
    let spender = Api::new(&server, rotated_again["key"].as_str().unwrap());
    assert_eq!(spender.call("GET", "/v1/models", None).await.status, 200, "the rotation survived kill -9");
    // Each acknowledged change kept its audit entry, the three before a kill -9 too.
    let log = Api::new(&server, &wallet_key).call("GET", "/v1/audit_log?limit=100", None).await.body;
    let actions: Vec<&str> = log["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    let mut expected = vec!["spend_key.rotated", "spend_key.updated", "spend_key.created"];
    expected.extend(["spend_key.revoked", "spend_key.rotated", "spend_key.updated"]);
    expected.extend(["spend_key.created"; 4]);
    expected.push("wallet.created");
    assert_eq!(actions, expected);
    assert!(!server.logs().contains("panicked"));
}

/// The check every test's server log gets when its server stops (`common::Server`).
#[test]
fn the_log_check_finds_keys_but_not_previews() {
    let key = format!("lava_sk_{}", "a1B2".repeat(11));
    assert_eq!(common::secrets_in(&format!("key={key} ok")).len(), 1);
    assert_eq!(common::secrets_in(&format!("wallet {}", key.replace("_sk_", "_wk_"))).len(), 1);
    assert_eq!(common::secrets_in("sgs_0123456789abcdef0123").len(), 1);
    assert_eq!(common::secrets_in("upstream key sk-test-openai").len(), 1);
    assert!(common::secrets_in("preview lava_sk_a1B2**** and lava_wk_ and key_a1B2c3d4e5f6g7h8").is_empty());
}

#[tokio::test]
async fn secrets_appear_once_and_never_in_logs_or_the_database() {
    let dir = TempDir::new("secrets");
    let (wallet_id, wallet_key) = create_wallet(&dir, "acme");
    let (ok, out, _) = cli(&["wallets", "keys", "create", &wallet_id, "--database", &dir.db_url(), "--json"], &[]);
    assert!(ok);
    let second_wallet_key = serde_json::from_str::<Value>(&out).unwrap()["key"].as_str().unwrap().to_string();
    // Provider keys too: the mock for OpenAI and Anthropic, and a provider that cannot
    // be reached (its failures and retries are logged).
    let (mock_url, _mock) = start_mock().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (openai_secret, anthropic_secret, groq_secret) =
        ("sk-proj-SECRETopenai0123456789", "sk-ant-SECRETanthropic0123456789", "gsk_SECRETgroq0123456789");
    let groq_base = format!("http://{closed}/v1");
    let (openai_base, anthropic_base) = (format!("{mock_url}/v1"), mock_url.clone());
    let env = [
        ("OPENAI_API_KEY", openai_secret),
        ("OPENAI_BASE_URL", openai_base.as_str()),
        ("ANTHROPIC_API_KEY", anthropic_secret),
        ("ANTHROPIC_BASE_URL", anthropic_base.as_str()),
        ("GROQ_API_KEY", groq_secret),
        ("GROQ_BASE_URL", groq_base.as_str()),
    ];
    let mut server = Server::start_env(&dir, &env);
    let api = Api::new(&server, &wallet_key);
    let mut secrets = vec![wallet_key.clone(), second_wallet_key.clone()];
    // Model requests of every outcome: answered, streamed, provider errors (retried),
    // cross-format, an unreachable provider; every answer is free of secrets.
    let model_key = api.minimal_key("model calls").await["key"].as_str().unwrap().to_string();
    let caller = Api::new(&server, &model_key);
    let user = |text: &str| json!([{"role": "user", "content": text}]);
    let bodies = [
        json!({"model": "gpt-4o-mini", "messages": user("hi")}),
        json!({"model": "gpt-4o-mini", "stream": true, "messages": user("hi")}),
        json!({"model": "gpt-4o-mini", "messages": user("[[mock:error:503]]")}),
        json!({"model": "gpt-4o-mini", "messages": user("[[mock:error:401]]")}),
        json!({"model": "claude-sonnet-4-20250514", "messages": user("[[mock:error:529]]")}),
        json!({"model": "openai/gpt-oss-20b", "messages": user("hi")}),
        json!({"model": 5, "messages": user("hi")}),
    ];
    for body in bodies {
        let r = caller.post("/v1/chat/completions", body.clone()).await;
        let text = r.body.to_string();
        for s in [openai_secret, anthropic_secret, groq_secret, model_key.as_str()] {
            assert!(!text.contains(s), "{body}: a secret in the answer: {text}");
        }
    }
    secrets.push(model_key.clone());
    for s in [openai_secret, anthropic_secret, groq_secret] {
        secrets.push(s.to_string());
    }
    let mut previews = Vec::new();
    for i in 0..5 {
        let k = api.minimal_key(&format!("k{i}")).await;
        secrets.push(k["key"].as_str().unwrap().to_string());
        // Use the key, so that it passes through authentication and its logging.
        assert_eq!(Api::new(&server, k["key"].as_str().unwrap()).call("GET", "/v1/models", None).await.status, 200);
        let rotated =
            api.call("POST", &format!("/v1/spend_keys/{}/rotate", k["spend_key_id"].as_str().unwrap()), None).await;
        secrets.push(rotated.body["key"].as_str().unwrap().to_string());
        // The rotation replaced the preview: the current one is what the database holds.
        previews.push(rotated.body["key_preview"].as_str().unwrap().to_string());
        // Failed attempts with the old secret are logged too.
        assert_eq!(Api::new(&server, k["key"].as_str().unwrap()).call("GET", "/v1/models", None).await.status, 401);
    }
    // Every read shows previews only.
    let listed = api.call("GET", "/v1/spend_keys?limit=100", None).await.body.to_string();
    for s in &secrets {
        assert!(!listed.contains(s.as_str()), "a list showed a full secret");
    }
    assert_eq!(Api::new(&server, &second_wallet_key).call("GET", "/v1/spend_keys", None).await.status, 200);
    server.stop();

    let logs = server.logs();
    let db = database_bytes(&dir.0);
    assert!(logs.contains("spend key rotated"), "the log is being written (debug level)");
    assert!(logs.contains("retrying the provider request"), "the fault paths were logged");
    assert!(logs.contains("could not reach") || logs.contains("provider request failed"), "{logs}");
    for p in &previews {
        assert!(contains_bytes(&db, p), "sanity: the database holds the previews");
    }
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "secret {}… in the server log", &s[..12]);
        assert!(!contains_bytes(&db, s), "secret {}… in the database files", &s[..12]);
        // Nor the random part alone.
        assert!(!contains_bytes(&db, &s[8..]), "secret body {}… in the database files", &s[8..14]);
    }
}

/// `kill -9` in the middle of a load of model requests, then a restart: every request
/// answered before the documented crash window has its record, no record is invented,
/// and the key's figures are rebuilt equal to the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_record_older_than_the_crash_window() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let dir = TempDir::new("crash-load");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let (mock_url, _mock) = start_mock().await;
    let env = common::provider_env(&mock_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Server::start_env(&dir, &env);
    let created = Api::new(&server, &wallet_key).create_key(json!({"name": "load"})).await;
    let (id, key) =
        (created["spend_key_id"].as_str().unwrap().to_string(), created["key"].as_str().unwrap().to_string());

    // 16 clients send requests as fast as they are answered; each notes when its
    // answers came.
    let answered: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..16 {
        let (url, key, answered, sent) = (server.url.clone(), key.clone(), answered.clone(), sent.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let mut body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
                if c % 4 == 0 {
                    body["stream"] = json!(true);
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Ok(resp) =
                    http.post(format!("{url}/v1/chat/completions")).bearer_auth(&key).json(&body).send().await
                else {
                    return;
                };
                if resp.status() != 200 || resp.bytes().await.is_err() {
                    return;
                }
                answered.lock().unwrap().push(Instant::now());
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    server.kill_9();
    for c in clients {
        let _ = c.await;
    }
    // The documented crash window is the last 10 ms plus the batch being written; the
    // bound here allows 200 ms more for the answer to travel to this client and be noted.
    let window = Duration::from_millis(210);
    let answered = answered.lock().unwrap().clone();
    let must_have = answered.iter().filter(|t| **t + window < killed_at).count() as u64;
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);

    let server = Server::start_env(&dir, &env);
    let admin = Api::new(&server, &wallet_key);
    let (mut records, mut cost, mut cursor) = (0u64, spendgate_core::Usd::ZERO, String::new());
    loop {
        let page = admin.call("GET", &format!("/v1/requests?spend_key_id={id}&limit=100&cursor={cursor}"), None).await;
        for r in page.body["data"].as_array().unwrap() {
            records += 1;
            cost = cost.checked_add(spendgate_core::Usd::parse(r["cost"].as_str().unwrap()).unwrap()).unwrap();
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    println!(
        "kill -9 under load: {sent} sent, {} answered, {must_have} answered before the window, {records} records",
        answered.len()
    );
    assert!(must_have > 100, "the load ran: {must_have} answers");
    assert!(records >= must_have, "{records} records, but {must_have} requests were answered before the crash window");
    assert!(records <= sent, "{records} records for {sent} requests sent");
    let k = admin.call("GET", &format!("/v1/spend_keys/{id}"), None).await.body;
    assert_eq!(k["total_requests"], records, "the key's figures are the ledger's: {k}");
    assert_eq!(k["total_spend"], cost.to_string());
}
