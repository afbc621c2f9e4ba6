//! An in-process gateway for tests: the real router on a loopback port, a real SQLite
//! file, the mock provider on another loopback port, and a clock the test can set.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use spendgate_core::{SpendKeyId, Timestamp};
use spendgate_mock::{Mock, MockConfig};
use spendgate_server::config::{Config, Overrides};
use spendgate_server::state::{AppState, Clock};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

pub const OPENAI_PROVIDER_KEY: &str = "sk-provider-openai-test";
pub const ANTHROPIC_PROVIDER_KEY: &str = "sk-ant-provider-test";

/// A clock the test moves by hand.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn set(&self, t: &str) {
        *self.0.lock().unwrap() = Timestamp::parse(t).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

pub struct Gateway {
    pub url: String,
    pub state: AppState,
    pub mock: Mock,
    pub clock: Arc<ManualClock>,
    pub wallet_key: String,
    pub http: reqwest::Client,
    dir: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Gateway {
    pub async fn start(mock_config: MockConfig) -> Gateway {
        Gateway::start_with(mock_config, "").await
    }

    /// `extra_toml` is appended to the config (e.g. `[gateway]` settings).
    pub async fn start_with(mock_config: MockConfig, extra_toml: &str) -> Gateway {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spendgate-gw-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();

        let (mock, mock_url) = spawn_mock(mock_config).await;

        let toml = format!(
            "[[provider]]\nname = \"openai\"\nbase_url = \"{mock_url}/v1\"\napi_key = \"{OPENAI_PROVIDER_KEY}\"\n\
             [[provider]]\nname = \"anthropic\"\nbase_url = \"{mock_url}\"\napi_key = \"{ANTHROPIC_PROVIDER_KEY}\"\n{extra_toml}"
        );
        let db = format!("sqlite://{}", dir.join("spendgate.db").display());
        let config =
            Config::from_toml(&toml, &Overrides { database: Some(db.clone()), ..Overrides::default() }).unwrap();
        let store = spendgate_store::open(&db).await.unwrap();
        let clock = Arc::new(ManualClock(Mutex::new(Timestamp::parse("2026-11-23T12:00:00Z").unwrap())));
        let (_, _, secret) =
            spendgate_server::admin::create_wallet(&*store, "test", "lava_wk_", clock.now()).await.unwrap();
        let state = AppState::build(store, config, clock.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(spendgate_server::serve::serve(state.clone(), listener, std::future::pending()));
        Gateway { url, state, mock, clock, wallet_key: secret.expose().to_string(), http: reqwest::Client::new(), dir }
    }

    pub async fn send_raw(&self, req: reqwest::RequestBuilder) -> Reply {
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, headers, body }
    }

    /// A wallet API call with the wallet key.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.wallet_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// Creates a spend key: (id, secret).
    pub async fn key(&self, body: Value) -> (String, String) {
        let r = self.admin("POST", "/v1/spend_keys", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        (r.body["spend_key_id"].as_str().unwrap().to_string(), r.body["key"].as_str().unwrap().to_string())
    }

    pub async fn get_key(&self, id: &str) -> Value {
        self.admin("GET", &format!("/v1/spend_keys/{id}"), None).await.body
    }

    /// A gateway call with a spend key (as `Authorization: Bearer`).
    pub async fn call(&self, path: &str, key: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.url)).bearer_auth(key).json(&body)).await
    }

    pub fn chat(model: &str, text: &str) -> Value {
        json!({"model": model, "messages": [{"role": "user", "content": text}]})
    }

    pub fn message(model: &str, text: &str, max_tokens: u64) -> Value {
        json!({"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]})
    }

    /// (reserved nano-dollars, requests in flight) of a key's meter.
    pub fn meter(&self, id: &str) -> (i64, u64) {
        let entry = self.state.keys.by_id(&SpendKeyId::new(id)).unwrap();
        let slot = entry.lock();
        (slot.meter.reserved().nanos(), slot.meter.in_flight())
    }

    /// The key's request records, once everything queued is written.
    pub async fn records(&self, id: &str) -> Vec<spendgate_store::RequestRecord> {
        self.state.recorder.flush().await;
        let key = SpendKeyId::new(id);
        let entry = self.state.keys.by_id(&key).unwrap();
        let wallet = entry.lock().key.wallet_id.clone();
        let rows = self.state.store.list_requests(&wallet, Some(&key), None, 100_000).await.unwrap();
        rows.into_iter().map(|(_, r)| r).collect()
    }

    /// Requests the mock received on `path`.
    pub fn upstream_count(&self, path: &str) -> usize {
        self.mock.recorded().iter().filter(|r| r.path == path).count()
    }
}

/// A mock provider on a loopback port: the mock and its base URL (`http://IP:PORT`).
pub async fn spawn_mock(config: MockConfig) -> (Mock, String) {
    let mock = Mock::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(spendgate_mock::serve(mock.clone(), listener));
    (mock, url)
}

/// Polls `done` every 20 ms for up to 5 s; whether it came true.
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if done() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    done()
}

/// Dollars (decimal string) to nano-dollars.
pub fn nanos(usd: &Value) -> i64 {
    spendgate_core::Usd::parse(usd.as_str().unwrap()).unwrap().nanos()
}
