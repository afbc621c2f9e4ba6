//! The gateway's meters survive restarts: they are rebuilt from the stored request
//! records, so a restart neither forgets spend nor counts it twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Server, TempDir, create_wallet, provider_env, start_mock};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_spend_is_the_same_after_a_restart_and_after_kill_9() {
    let dir = TempDir::new("restart");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let (mock_url, mock) = start_mock().await;
    let env = provider_env(&mock_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut server = Server::start_env(&dir, &env);
    let admin = Api::new(&server, &wallet_key);
    let created = admin
        .create_key(json!({"name": "r", "spend_limit": {"amount": "1", "cycle": "monthly"},
            "request_limit": {"count": 100, "cycle": "daily"}}))
        .await;
    let (id, secret) = (created["spend_key_id"].as_str().unwrap(), created["key"].as_str().unwrap().to_string());
    let spender = Api::new(&server, &secret);
    for i in 0..5 {
        let mut body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("[[mock:tokens:{}]] hi", 10 + i)}]});
        if i % 2 == 0 {
            body["stream"] = json!(true);
        }
        assert_eq!(spender.post("/v1/chat/completions", body).await.status, 200);
    }
    let usage = |k: &Value| {
        (
            k["current_spend"].clone(),
            k["total_spend"].clone(),
            k["current_requests"].clone(),
            k["total_requests"].clone(),
        )
    };
    let before = usage(&admin.call("GET", &format!("/v1/spend_keys/{id}"), None).await.body);
    assert_eq!(before.3, 5);
    assert_ne!(before.0, "0.00");

    server.stop();
    let mut server = Server::start_env(&dir, &env);
    let admin = Api::new(&server, &wallet_key);
    let after = usage(&admin.call("GET", &format!("/v1/spend_keys/{id}"), None).await.body);
    assert_eq!(after, before, "a clean restart keeps every figure");

    // One more request, then kill -9 once it has been answered and written.
    let spender = Api::new(&server, &secret);
    let r = spender
        .post("/v1/chat/completions", json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status, 200);
    let before = usage(&admin.call("GET", &format!("/v1/spend_keys/{id}"), None).await.body);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    server.kill_9();
    let server = Server::start_env(&dir, &env);
    let admin = Api::new(&server, &wallet_key);
    let after = usage(&admin.call("GET", &format!("/v1/spend_keys/{id}"), None).await.body);
    assert_eq!(after, before);
    assert_eq!(after.3, 6);
    assert_eq!(mock.recorded().len(), 6, "each request reached the provider once");
}
