//! TLS on the listeners and the wallet API's own listener, over real HTTPS: the
//! gateway on one port (HTTP/2 by ALPN and HTTP/1.1), the wallet API and dashboard on
//! another, each refusing the other's routes; plain HTTP, untrusted certificates and
//! stalled handshakes are turned away; bad TLS settings are named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, TempDir, cli, create_wallet, provider_env, start_mock};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate for 127.0.0.1 and localhost: (cert PEM, key PEM).
fn certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn client(cert_pem: &str, http1_only: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .user_agent("tls-test");
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_and_a_separate_management_listener() {
    let dir = TempDir::new("tls");
    let (cert, key) = certificate();
    // Relative file names in the config file are taken from the file's directory.
    std::fs::write(dir.path("cert.pem"), &cert).unwrap();
    std::fs::write(dir.path("key.pem"), &key).unwrap();
    let config = dir.path("spendgate.toml");
    std::fs::write(
        &config,
        "[server]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\nheader_timeout_ms = 500\nadmin_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let (mock_url, _mock) = start_mock().await;
    let env = provider_env(&mock_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = config.to_str().unwrap();
    let db = dir.db_url();
    // `--admin-listen` again on the command line: the harness waits for both addresses.
    let server = Server::launch(&dir, &["--database", &db, "--config", config, "--admin-listen", "127.0.0.1:0"], &env);
    let (gateway, admin) = (server.url.clone(), server.admin_url.clone().unwrap());
    assert!(gateway.starts_with("https://") && admin.starts_with("https://"), "{gateway} {admin}");
    assert_ne!(gateway, admin);

    // The wallet API, on its own listener.
    let h2 = client(&cert, false);
    let created = h2
        .post(format!("{admin}/v1/spend_keys"))
        .bearer_auth(&wallet_key)
        .json(&json!({"name": "tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.version(), reqwest::Version::HTTP_2, "h2 by ALPN");
    let created: Value = created.json().await.unwrap();
    let secret = created["key"].as_str().unwrap();

    // The gateway: HTTP/2 and HTTP/1.1, answers and streams.
    let chat = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    for (http1, stream) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut body = chat.clone();
        body["stream"] = json!(stream);
        let r = client(&cert, http1)
            .post(format!("{gateway}/v1/chat/completions"))
            .bearer_auth(secret)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "http1={http1} stream={stream}");
        let version = if http1 { reqwest::Version::HTTP_11 } else { reqwest::Version::HTTP_2 };
        assert_eq!(r.version(), version);
        let text = r.text().await.unwrap();
        if stream {
            assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        } else {
            assert!(serde_json::from_str::<Value>(&text).unwrap()["usage"]["total_tokens"].as_u64().unwrap() > 0);
        }
    }
    let models = h2.get(format!("{gateway}/v1/models")).bearer_auth(secret).send().await.unwrap();
    assert_eq!(models.status(), 200, "a spend key lists its models on the gateway's listener");

    // Each listener refuses the other's routes.
    for (method, path) in
        [("GET", "/v1/spend_keys"), ("POST", "/v1/spend_keys"), ("GET", "/v1/audit_log"), ("GET", "/")]
    {
        let r = h2
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{gateway}{path}"))
            .bearer_auth(&wallet_key)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "gateway listener: {method} {path}");
    }
    let r = h2.post(format!("{admin}/v1/chat/completions")).bearer_auth(secret).json(&chat).send().await.unwrap();
    assert_eq!(r.status(), 404, "no model requests on the management listener");
    for base in [&gateway, &admin] {
        assert_eq!(h2.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    }
    // Metrics are the operator's: on the management listener only.
    assert_eq!(h2.get(format!("{gateway}/metrics")).send().await.unwrap().status(), 404);
    let metrics = h2.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            "spendgate_requests_total{format=\"openai\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"200\"} 4"
        ),
        "{metrics}"
    );

    // The dashboard's session cookie is Secure over TLS.
    let signed_in =
        h2.post(format!("{admin}/api/session")).json(&json!({"wallet_key": wallet_key})).send().await.unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Plain HTTP, and a client that does not trust the certificate, get nothing.
    let plain = reqwest::Client::new();
    assert!(plain.get(gateway.replace("https://", "http://") + "/healthz").send().await.is_err());
    let untrusting = reqwest::Client::builder().build().unwrap();
    let err = untrusting.get(format!("{gateway}/healthz")).send().await.unwrap_err();
    assert!(format!("{err:?}").to_lowercase().contains("certificate"), "{err:?}");

    // A connection that never finishes its handshake is cut at the head's deadline.
    let addr = gateway.trim_start_matches("https://");
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the stalled handshake was not cut: {closed:?}");
    assert!(start.elapsed() >= Duration::from_millis(300), "cut too early: {:?}", start.elapsed());
    // Meanwhile the server still serves.
    assert_eq!(h2.get(format!("{gateway}/healthz")).send().await.unwrap().status(), 200);
    assert!(!server.logs().contains("panicked"));
}

#[test]
fn bad_tls_settings_are_named() {
    let dir = TempDir::new("tls-bad");
    let (cert, key) = certificate();
    let (other_cert, _) = certificate();
    let path = |name: &str, text: &str| {
        let p = dir.path(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (cert, key, other_cert) = (path("cert.pem", &cert), path("key.pem", &key), path("other.pem", &other_cert));
    let not_pem = path("junk.pem", "hello");
    let missing = dir.path("missing.pem").to_str().unwrap().to_string();
    let db = dir.db_url();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--tls-cert", &cert], "server.tls_key: is required"),
        (vec!["--tls-key", &key], "server.tls_cert: is required"),
        (vec!["--tls-cert", &missing, "--tls-key", &key], "server.tls_cert"),
        (vec!["--tls-cert", &not_pem, "--tls-key", &key], "holds no PEM certificate"),
        (vec!["--tls-cert", &cert, "--tls-key", &not_pem], "server.tls_key"),
        (vec!["--tls-cert", &other_cert, "--tls-key", &key], "does not fit the certificate"),
        (vec!["--admin-listen", "localhost:1"], "server.admin_listen"),
        (vec!["--listen", "127.0.0.1:9", "--admin-listen", "127.0.0.1:9"], "also the main listen address"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["serve", "--database", &db];
        all.extend(&args);
        let (ok, _, err) = cli(&all, &[]);
        assert!(!ok, "{args:?} started");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
