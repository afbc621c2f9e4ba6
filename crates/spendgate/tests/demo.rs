//! `spendgate serve --demo`: real requests with no provider account.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BIN, TempDir};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts the demo; returns the child, the URL and the printed keys by label.
fn start_demo(dir: &TempDir) -> (Child, String, Vec<(String, String)>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env("SPENDGATE_DATA_DIR", &dir.0)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap().strip_prefix("spendgate listening on ").unwrap().to_string();
    let mut keys = Vec::new();
    for line in lines.map_while(Result::ok) {
        let line = line.trim().to_string();
        if let Some((label, key)) = line.rsplit_once(' ')
            && key.starts_with("lava_")
        {
            keys.push((label.trim().to_string(), key.to_string()));
        }
        if line.starts_with("SPENDGATE_URL=") {
            break;
        }
    }
    (child, url, keys)
}

fn key<'a>(keys: &'a [(String, String)], label: &str) -> &'a str {
    &keys.iter().find(|(l, _)| l == label).unwrap_or_else(|| panic!("{label} not printed: {keys:?}")).1
}

#[tokio::test]
async fn demo_mode_serves_real_requests_without_provider_keys() {
    let dir = TempDir::new("demo");
    let (mut child, url, keys) = start_demo(&dir);
    assert!(dir.0.join("demo.db").exists(), "the demo has its own database");
    let http = reqwest::Client::new();
    let oa = key(&keys, "OpenAI-format key").to_string();
    let r: Value = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(&oa)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["choices"][0]["message"]["content"].as_str().unwrap().starts_with("lorem ipsum"));
    let an = key(&keys, "Anthropic-format key").to_string();
    let resp = http
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", &an)
        .json(&json!({"model": "claude-sonnet-4-20250514", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let wallet = key(&keys, "wallet API key").to_string();
    let listed: Value =
        http.get(format!("{url}/v1/spend_keys")).bearer_auth(&wallet).send().await.unwrap().json().await.unwrap();
    let spend_of = |listed: &Value, name: &str| {
        listed["data"].as_array().unwrap().iter().find(|k| k["name"] == name).unwrap()["total_requests"].clone()
    };
    assert_eq!(spend_of(&listed, "demo-openai"), 1);
    // A clean stop (SIGTERM) writes every queued request record.
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();

    // A second start: new secrets, the old ones dead, the history kept.
    let (mut child, url, keys) = start_demo(&dir);
    let old = http.get(format!("{url}/v1/spend_keys")).bearer_auth(&wallet).send().await.unwrap();
    assert_eq!(old.status(), 401, "the previous wallet key was revoked");
    let wallet = key(&keys, "wallet API key");
    let listed: Value =
        http.get(format!("{url}/v1/spend_keys")).bearer_auth(wallet).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "the demo keys were rotated, not duplicated");
    assert_eq!(spend_of(&listed, "demo-openai"), 1);
    let stale = http.get(format!("{url}/v1/models")).bearer_auth(&oa).send().await.unwrap();
    assert_eq!(stale.status(), 401);
    child.kill().unwrap();
    child.wait().unwrap();
}
