//! Harness for end-to-end tests: the real `spendgate` binary, a real SQLite file,
//! real HTTP on a loopback port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub mod cluster;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_spendgate");

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spendgate-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.0.join("spendgate.db").display())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SPENDGATE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs the CLI and returns (exit success, stdout, stderr).
pub fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("SPENDGATE_WALLET_KEY")
        .env_remove("SPENDGATE_URL")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates a wallet through the CLI: (wallet id, wallet API key).
pub fn create_wallet(dir: &TempDir, name: &str) -> (String, String) {
    create_wallet_in(&dir.db_url(), name)
}

/// Creates a wallet in the database at `url` through the CLI: (wallet id, wallet API key).
pub fn create_wallet_in(url: &str, name: &str) -> (String, String) {
    let (ok, out, err) = cli(&["wallets", "create", "--name", name, "--database", url, "--json"], &[]);
    assert!(ok, "wallets create failed: {err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    (v["wallet_id"].as_str().unwrap().to_string(), v["key"].as_str().unwrap().to_string())
}

/// A running `spendgate serve`, its log going to `dir/server-N.log`.
pub struct Server {
    pub url: String,
    /// The wallet API's and dashboard's own listener, when started with `--admin-listen`.
    pub admin_url: Option<String>,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Server {
    pub fn start(dir: &TempDir) -> Server {
        Server::start_env(dir, &[])
    }

    /// Starts with extra environment variables (provider keys and base URLs).
    pub fn start_env(dir: &TempDir, env: &[(&str, &str)]) -> Server {
        Server::launch(dir, &["--database", &dir.db_url()], env)
    }

    /// `spendgate serve --listen 127.0.0.1:0 ARGS...` with `env`, logging to a file in `dir`.
    pub fn launch(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Server {
        static N: AtomicU32 = AtomicU32::new(0);
        let log = dir.path(&format!("server-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("SPENDGATE_LOG", "debug")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                for prefix in ["spendgate listening on ", "wallet API and dashboard on "] {
                    if let Some(url) = line.strip_prefix(prefix) {
                        let _ = tx.send(url.to_string());
                    }
                }
            }
        });
        let started = || {
            rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
                panic!("server did not start: {}", std::fs::read_to_string(&log).unwrap_or_default())
            })
        };
        let url = started();
        let admin_url = args.contains(&"--admin-listen").then(started);
        Server { url, admin_url, log, child: Some(child) }
    }

    /// SIGTERM and wait: a clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("server did not stop within 10 s of SIGTERM");
        }
    }

    /// Sends SIGTERM and returns at once.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
    }

    /// Waits up to `limit` for the process to exit: its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running server");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    /// Stops the server and checks that its whole log holds no secret: every end-to-end
    /// test's server log is read this way.
    fn drop(&mut self) {
        self.kill_9();
        if !std::thread::panicking() {
            let leaked = secrets_in(&self.logs());
            assert!(leaked.is_empty(), "secrets in the server log {}: {leaked:?}", self.log.display());
        }
    }
}

/// The secrets in `text`: full spend or wallet keys (a preview has 4 characters and
/// `****`), dashboard session tokens, and the provider keys these tests configure.
pub fn secrets_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in ["lava_sk_", "lava_wk_", "sgs_"] {
        for (at, _) in text.match_indices(prefix) {
            let rest = &text[at + prefix.len()..];
            let n = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
            if n > 8 {
                found.push(format!("{prefix}{}...", &rest[..4]));
            }
        }
    }
    for provider_key in ["sk-test-openai", "sk-test-anthropic"] {
        if text.contains(provider_key) {
            found.push(provider_key.to_string());
        }
    }
    found
}

/// A wallet-API client for one key.
pub struct Api {
    pub base: String,
    pub key: String,
    http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Api {
    pub fn new(server: &Server, key: &str) -> Api {
        Api { base: server.url.clone(), key: key.to_string(), http: reqwest::Client::new() }
    }

    pub async fn raw(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !self.key.is_empty() {
            req = req.bearer_auth(&self.key);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    /// A POST with this client's key as a Bearer token (gateway calls with a spend key).
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(body)).await
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.raw(method, path, body.map(|b| b.to_string().into_bytes())).await
    }

    /// Creates a key and returns the answer (with its `key`), asserting success.
    pub async fn create_key(&self, body: Value) -> Value {
        let r = self.call("POST", "/v1/spend_keys", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }

    pub async fn minimal_key(&self, name: &str) -> Value {
        self.create_key(json!({ "name": name })).await
    }
}

/// The mock provider, in this process, on a loopback port: (its URL, the mock).
pub async fn start_mock() -> (String, spendgate_mock::Mock) {
    start_mock_with(spendgate_mock::MockConfig::default()).await
}

pub async fn start_mock_with(config: spendgate_mock::MockConfig) -> (String, spendgate_mock::Mock) {
    let mock = spendgate_mock::Mock::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(spendgate_mock::serve(mock.clone(), listener));
    (url, mock)
}

/// Environment pointing a server at the mock for OpenAI and Anthropic.
pub fn provider_env(mock_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", "sk-test-openai".to_string()),
        ("OPENAI_BASE_URL", format!("{mock_url}/v1")),
        ("ANTHROPIC_API_KEY", "sk-test-anthropic".to_string()),
        ("ANTHROPIC_BASE_URL", mock_url.to_string()),
    ]
}

/// A TCP proxy on a loopback port that a test can take down (every connection cut,
/// new ones refused) and bring back: a database or cache "unreachable" without stopping
/// the machine's shared server.
pub struct TcpProxy {
    pub addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl TcpProxy {
    pub async fn start(target: &str) -> TcpProxy {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(AtomicBool::new(true));
        let generation = std::sync::Arc::new(AtomicU64::new(0));
        let (target, up2, gen2) = (target.to_string(), up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let (target, up, generation) = (target.clone(), up2.clone(), gen2.clone());
                tokio::spawn(async move {
                    let born = generation.load(Ordering::SeqCst);
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                    let cut = async {
                        while up.load(Ordering::SeqCst) && generation.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        TcpProxy { addr, up, generation }
    }

    /// Cuts every connection and refuses new ones (in effect when this returns).
    pub async fn down(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.up.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Does `haystack` contain `needle` anywhere (bytes)?
pub fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file of the database (main file, WAL, shared memory), concatenated.
pub fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(b) = std::fs::read(dir.join(format!("spendgate.db{suffix}"))) {
            all.extend(b);
        }
    }
    all
}

impl Api {
    /// The status of a blocking GET (for tests that are not async).
    pub fn status_of(&self, path: &str) -> u16 {
        let (base, key, path) = (self.base.clone(), self.key.clone(), path.to_string());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(
                async move { Api { base, key, http: reqwest::Client::new() }.call("GET", &path, None).await.status },
            )
        })
        .join()
        .unwrap()
    }
}

/// Polls `done` every 20 ms for up to 5 s; whether it came true.
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}
