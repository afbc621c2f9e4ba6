//! The `spendgate` CLI against a running server: the README's walkthrough, every
//! `keys` subcommand and `audit` in text and JSON, and errors that exit non-zero.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Server, TempDir, cli, create_wallet};
use serde_json::Value;

struct Cli<'a> {
    env: Vec<(&'a str, &'a str)>,
}

impl Cli<'_> {
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = cli(args, &self.env);
        assert!(ok, "spendgate {args:?} failed: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, _, err) = cli(args, &self.env);
        assert!(!ok, "spendgate {args:?} should have failed");
        err
    }
}

#[test]
fn walkthrough_and_every_keys_command() {
    let dir = TempDir::new("cli");
    let db = dir.db_url();
    // Human output of wallets create shows the key once, with how to use it.
    let (ok, out, _) = cli(&["wallets", "create", "--name", "Acme", "--database", &db], &[]);
    assert!(ok);
    assert!(out.contains("Created wallet Acme (wal_"), "{out}");
    let human_key = out.lines().map(str::trim).find(|l| l.starts_with("lava_wk_")).unwrap().to_string();
    let (wallet_id, wallet_key) = create_wallet(&dir, "Second");

    let server = Server::start(&dir);
    let c = Cli { env: vec![("SPENDGATE_URL", server.url.as_str()), ("SPENDGATE_WALLET_KEY", wallet_key.as_str())] };
    let both = Cli { env: vec![("SPENDGATE_URL", server.url.as_str()), ("SPENDGATE_WALLET_KEY", human_key.as_str())] };
    assert_eq!(both.json(&["keys", "list"])["data"], Value::Array(vec![]), "the human-printed key works");

    let wallets = c.json(&["wallets", "list", "--database", &db]);
    assert_eq!(wallets.as_array().unwrap().len(), 2);
    assert!(c.ok(&["wallets", "list", "--database", &db]).contains("Second"));

    // keys create with every flag.
    let k = c.json(&[
        "keys",
        "create",
        "--name",
        "Claude Code",
        "--shape",
        "anthropic",
        "--model",
        "claude-sonnet-4-20250514",
        "--provider",
        "anthropic",
        "--spend-limit",
        "50/monthly",
        "--request-limit",
        "1000/daily",
        "--rpm",
        "60",
        "--burst",
        "10",
        "--expires",
        "2030-01-01T00:00:00Z",
        "--paused",
    ]);
    let id = k["spend_key_id"].as_str().unwrap().to_string();
    assert!(k["key"].as_str().unwrap().starts_with("lava_sk_"));
    assert_eq!(k["request_shape"], "anthropic");
    assert_eq!(k["status"], "paused");
    assert_eq!(k["allowed_models"], serde_json::json!(["claude-sonnet-4-20250514"]));
    assert_eq!(k["allowed_providers"], serde_json::json!(["anthropic"]));
    assert_eq!(k["spend_limit"], serde_json::json!({"amount": "50.00", "cycle": "monthly"}));
    assert_eq!(k["request_limit"], serde_json::json!({"count": 1000, "cycle": "daily"}));
    assert_eq!(k["rate_limit"], serde_json::json!({"rpm": 60, "burst": 10}));
    assert_eq!(k["expires_at"], "2030-01-01T00:00:00Z");

    // Human create shows the secret once and the settings.
    let out = c.ok(&["keys", "create", "--name", "plain", "--model", "gpt-4o-mini,gpt-4o"]);
    assert!(out.contains("Created spend key plain"), "{out}");
    assert!(out.contains("only time the full key is shown"));
    assert!(out.lines().any(|l| l.trim().starts_with("lava_sk_") && !l.contains('*')));
    assert!(out.contains("gpt-4o-mini, gpt-4o"), "{out}");

    // list: table and JSON.
    let table = c.ok(&["keys", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("Claude Code") && table.contains("$0.00 / $50.00 monthly") && table.contains("0 / 1000 daily"),
        "{table}"
    );
    assert!(!table.contains("lava_sk_"), "no secrets in lists");
    let page = c.json(&["keys", "list", "--limit", "1"]);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_more"], true);
    let all = c.json(&["keys", "list", "--limit", "1", "--all"]);
    assert_eq!(all.as_array().unwrap().len(), 2);

    // get, update, pause, resume, usage.
    assert_eq!(c.json(&["keys", "get", &id])["name"], "Claude Code");
    assert!(c.ok(&["keys", "get", &id]).contains("rate limit  60 rpm, burst 10"));
    let u = c.json(&["keys", "update", &id, "--name", "CC", "--no-spend-limit", "--all-models", "--rpm", "5"]);
    assert_eq!(u["name"], "CC");
    assert_eq!(u["spend_limit"], Value::Null);
    assert_eq!(u["allowed_models"], Value::Null);
    assert_eq!(u["rate_limit"], serde_json::json!({"rpm": 5, "burst": null}));
    assert_eq!(u["request_limit"], serde_json::json!({"count": 1000, "cycle": "daily"}), "untouched fields stay");
    let u = c.json(&[
        "keys",
        "update",
        &id,
        "--no-expiry",
        "--no-rate-limit",
        "--no-request-limit",
        "--all-providers",
        "--shape",
        "openai",
    ]);
    for field in ["expires_at", "rate_limit", "request_limit", "allowed_providers"] {
        assert_eq!(u[field], Value::Null, "{field}");
    }
    assert_eq!(u["request_shape"], "openai");
    assert_eq!(c.json(&["keys", "resume", &id])["status"], "active");
    assert_eq!(c.json(&["keys", "pause", &id])["status"], "paused");
    assert!(c.ok(&["keys", "resume", &id]).starts_with("Resumed spend key CC"));
    let usage = c.json(&["keys", "usage", &id]);
    assert_eq!(
        usage,
        serde_json::json!({"spend_key_id": id, "current_spend": "0.00", "total_spend": "0.00",
        "current_requests": 0, "total_requests": 0, "last_used_at": null})
    );
    assert!(c.ok(&["keys", "usage", &id]).contains("last used never"));

    // rotate: a new secret that works, the old one does not.
    let rotated = c.json(&["keys", "rotate", &id]);
    assert_ne!(rotated["key"], k["key"]);
    assert_eq!(rotated["spend_key_id"].as_str(), Some(id.as_str()));
    assert_eq!(Api::new(&server, rotated["key"].as_str().unwrap()).status_of("/v1/models"), 200);
    assert_eq!(Api::new(&server, k["key"].as_str().unwrap()).status_of("/v1/models"), 401);

    // revoke, then everything about it is 404 and the CLI says so.
    assert_eq!(c.json(&["keys", "revoke", &id]), serde_json::json!({"success": true}));
    let err = c.fails(&["keys", "get", &id]);
    assert!(err.contains("404") && err.contains("no spend key"), "{err}");

    // Wallet API keys: add one, revoke it, and it stops working.
    let extra = c.json(&["wallets", "keys", "create", &wallet_id, "--database", &db]);
    let extra_key = extra["key"].as_str().unwrap();
    let listed = c.json(&["wallets", "keys", "list", &wallet_id, "--database", &db]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(extra_key), "wallet key list shows previews only");
    assert_eq!(Api::new(&server, extra_key).status_of("/v1/spend_keys"), 200);
    c.ok(&["wallets", "keys", "revoke", &wallet_id, extra["key_id"].as_str().unwrap(), "--database", &db]);
    assert_eq!(Api::new(&server, extra_key).status_of("/v1/spend_keys"), 401);

    // The audit log: every change above, newest first, by whom and from where.
    let log = c.json(&["audit", "--limit", "100"]);
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.first().unwrap()["action"], "wallet_key.revoked");
    assert_eq!(entries.last().unwrap()["action"], "wallet.created");
    let of_key = c.json(&["audit", "--target", &id]);
    let actions: Vec<&str> = of_key["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.first(), Some(&"spend_key.revoked"));
    assert_eq!(actions.last(), Some(&"spend_key.created"));
    assert!(actions.contains(&"spend_key.rotated") && actions.contains(&"spend_key.updated"), "{actions:?}");
    let text = c.ok(&["audit", "--target", &id]);
    assert!(text.starts_with("WHEN") && text.contains("spend_key.rotated") && text.contains("127.0.0.1"), "{text}");
    assert!(text.contains("wallet_key wk_"), "who: {text}");
    assert!(c.fails(&["audit", "--target", "../x"]).contains("is not a target id"));
}

#[test]
fn errors_print_the_reason_and_exit_non_zero() {
    let dir = TempDir::new("cli-errors");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let server = Server::start(&dir);
    let c = Cli { env: vec![("SPENDGATE_URL", server.url.as_str()), ("SPENDGATE_WALLET_KEY", wallet_key.as_str())] };

    let err = c.fails(&["keys", "create", "--name", "x", "--spend-limit", "-5/monthly"]);
    assert!(err.contains("400") && err.contains("spend_limit.amount: must not be negative"), "{err}");
    let err = c.fails(&["keys", "create", "--name", "x", "--spend-limit", "50"]);
    assert!(err.contains("expected AMOUNT/CYCLE"), "{err}");
    let err = c.fails(&["keys", "create", "--name", "x", "--rpm", "0"]);
    assert!(err.contains("rate_limit.rpm"), "{err}");
    let err = c.fails(&["keys", "create", "--name", "x", "--burst", "3"]);
    assert!(err.contains("--rpm"), "clap says burst needs rpm: {err}");
    let err = c.fails(&["keys", "update", "key_x"]);
    assert!(err.contains("nothing to change"), "{err}");
    let err = c.fails(&["keys", "get", "../../healthz"]);
    assert!(err.contains("is not a spend key id"), "{err}");

    let no_key = Cli { env: vec![("SPENDGATE_URL", server.url.as_str())] };
    assert!(no_key.fails(&["keys", "list"]).contains("set SPENDGATE_WALLET_KEY"));
    let bad_key = Cli { env: vec![("SPENDGATE_URL", server.url.as_str()), ("SPENDGATE_WALLET_KEY", "lava_wk_nope")] };
    assert!(bad_key.fails(&["keys", "list"]).contains("401 invalid wallet API key"));
    let nowhere = Cli { env: vec![("SPENDGATE_URL", "http://127.0.0.1:1"), ("SPENDGATE_WALLET_KEY", "lava_wk_x")] };
    assert!(nowhere.fails(&["keys", "list"]).contains("cannot reach spendgate at http://127.0.0.1:1"));
    let (ok, _, err) = cli(&["wallets", "create", "--name", " ", "--database", &dir.db_url()], &[]);
    assert!(!ok && err.contains("name"), "{err}");
    let (ok, _, err) = cli(&["serve", "--listen", "nonsense"], &[]);
    assert!(!ok && err.contains("\"nonsense\""), "{err}");
    let (ok, _, err) = cli(&["serve", "--database", "mysql://x"], &[("SPENDGATE_LISTEN", "127.0.0.1:0")]);
    assert!(!ok && err.contains("mysql://x"), "{err}");
}

#[test]
fn config_check_prints_what_it_resolved_without_secrets() {
    let dir = TempDir::new("config-check");
    let config = dir.path("spendgate.toml");
    std::fs::write(
        &config,
        "listen = \"0.0.0.0:9000\"\n\
         [server]\nadmin_listen = \"127.0.0.1:9090\"\n\
         [log]\nformat = \"json\"\n\
         [[provider]]\nname = \"openai\"\n\
         [[provider.target]]\napi_key_env = \"SG_TEST_OPENAI_A\"\n\
         [[provider.target]]\nbase_url = \"https://proxy.internal/v1\"\napi_key_env = \"SG_TEST_OPENAI_B\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [
        ("SG_TEST_OPENAI_A", "sk-very-secret-a"),
        ("ANTHROPIC_API_KEY", "sk-ant-very-secret"),
        ("SPENDGATE_METRICS_TOKEN", "metrics-secret-0123456789"),
    ];
    let database = "postgres://spendgate:hunter2@db.internal/spendgate";
    let (ok, out, err) = cli(&["config", "check", "--config", config, "--database", database], &env);
    assert!(ok, "{err}");
    for part in [
        "config ok",
        "listen        0.0.0.0:9000",
        "admin listen  127.0.0.1:9090",
        "postgres://spendgate:****@db.internal/spendgate",
        "as json",
        "anthropic",
        "(+1 more)",
        "GET /metrics (bearer token)",
    ] {
        assert!(out.contains(part), "{part} missing:\n{out}");
    }
    for secret in ["sk-very-secret-a", "sk-ant-very-secret", "hunter2", "metrics-secret"] {
        assert!(!out.contains(secret) && !err.contains(secret), "{secret} printed");
    }

    let (ok, out, _) = cli(&["config", "check", "--config", config, "--json"], &env);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    let provider = |name: &str| v["providers"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    let openai = provider("openai");
    assert_eq!(openai["targets"].as_array().unwrap().len(), 2);
    assert_eq!(openai["targets"][0]["key"], true, "target A's key is set");
    assert_eq!(openai["targets"][1]["key"], false, "target B's is not");
    assert_eq!(openai["targets"][1]["base_url"], "https://proxy.internal/v1");
    assert!(openai["models"].as_array().unwrap().iter().any(|m| m == "gpt-4o-mini"));
    assert_eq!(provider("anthropic")["configured"], true);
    assert_eq!(provider("groq")["configured"], false);
    assert_eq!(v["admin_listen"], "127.0.0.1:9090");
    assert!(v["models"].as_u64().unwrap() > 10);
    assert!(v["spool_dir"].as_str().unwrap().len() > 1);

    // A bad setting is named, and nothing is printed as resolved.
    std::fs::write(dir.path("bad.toml"), "[server]\nheader_timeout_ms = 0\n").unwrap();
    let (ok, out, err) = cli(&["config", "check", "--config", dir.path("bad.toml").to_str().unwrap()], &[]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("server.header_timeout_ms"), "{err}");
}

#[test]
fn shell_completions_cover_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, out, err) = cli(&["completions", shell], &[]);
        assert!(ok, "{shell}: {err}");
        for word in ["serve", "wallets", "keys", "audit", "config", "spend-limit"] {
            assert!(out.contains(word), "{shell}: {word} missing");
        }
    }
    let (ok, _, err) = cli(&["completions", "tcsh"], &[]);
    assert!(!ok && err.contains("tcsh"), "{err}");
}

/// A receiver of webhooks on a thread: answers 204 and keeps the bodies.
fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let bodies = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            bodies.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

#[test]
fn webhooks_are_managed_from_the_command_line() {
    let dir = TempDir::new("cli-webhooks");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let server = Server::start(&dir);
    let c = Cli { env: vec![("SPENDGATE_URL", server.url.as_str()), ("SPENDGATE_WALLET_KEY", wallet_key.as_str())] };
    let (url, got) = receiver();

    let out = c.ok(&["webhooks", "create", "--endpoint", &url, "--thresholds", "25,75", "--event", "spend.threshold"]);
    assert!(out.contains("signing secret (shown once") && out.contains("whsec_"), "{out}");
    assert!(out.contains("25, 75") && out.contains("spend.threshold"), "{out}");
    let hooks = c.json(&["webhooks", "list"]);
    let id = hooks[0]["webhook_id"].as_str().unwrap().to_string();
    assert_eq!(hooks[0]["thresholds"], serde_json::json!([25, 75]));
    assert!(hooks[0].get("secret").is_none(), "listed without its secret: {hooks}");
    assert!(c.ok(&["webhooks", "list"]).contains(&url));

    assert!(c.ok(&["webhooks", "test", &id]).contains("queued test event evt_"));
    let mut log = Value::Null;
    for _ in 0..100 {
        log = c.json(&["webhooks", "deliveries", &id]);
        if log["data"][0]["status"] == "delivered" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(log["data"][0]["status"], "delivered", "{log}");
    assert_eq!(log["data"][0]["last_status"], 204);
    assert!(got.lock().unwrap()[0].contains("\"type\":\"webhook.test\""));
    let table = c.ok(&["webhooks", "deliveries", &id]);
    assert!(table.contains("webhook.test") && table.contains("delivered") && table.contains("204"), "{table}");

    let err = c.fails(&["webhooks", "create", "--endpoint", "ftp://x"]);
    assert!(err.contains("400") && err.contains("url"), "{err}");
    let err = c.fails(&["webhooks", "create", "--endpoint", &url, "--event", "nope"]);
    assert!(err.contains("events[0]"), "{err}");
    assert!(c.ok(&["webhooks", "delete", &id]).contains("deleted webhook"));
    assert!(c.fails(&["webhooks", "delete", &id]).contains("404"));
    assert_eq!(c.json(&["webhooks", "list"]), serde_json::json!([]));
}
