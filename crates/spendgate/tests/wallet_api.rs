//! The wallet API over real HTTP against a running `spendgate serve`: validation,
//! wallet isolation, concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Server, TempDir, create_wallet};
use serde_json::{Value, json};

/// Asserts the error shape `{"error": {"type", "message", "param"?}}` and returns it.
fn error_of(body: &Value) -> (&str, &str, Option<&str>) {
    let e = &body["error"];
    let kind = e["type"].as_str().unwrap_or_else(|| panic!("no error.type in {body}"));
    let message = e["message"].as_str().unwrap_or_else(|| panic!("no error.message in {body}"));
    (kind, message, e["param"].as_str())
}

#[tokio::test]
async fn invalid_requests_get_a_4xx_that_names_the_problem() {
    let dir = TempDir::new("invalid");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let server = Server::start(&dir);
    let api = Api::new(&server, &wallet_key);
    let existing = api.minimal_key("existing").await;
    let id = existing["spend_key_id"].as_str().unwrap();
    let key_path = format!("/v1/spend_keys/{id}");
    let spend_secret = existing["key"].as_str().unwrap();

    let long_name = "n".repeat(300);
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    let nested_unknown = json!({"name": "a", "spend_limit": {"amount": "5", "cycle": "daily", "currency": "EUR"}});
    // (method, path, body, status, param or message fragment)
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        ("POST", "/v1/spend_keys".into(), Some("{".into()), 400, "not valid JSON"),
        ("POST", "/v1/spend_keys".into(), Some("{\"name\": }".into()), 400, "not valid JSON"),
        ("POST", "/v1/spend_keys".into(), Some("{\"name\": \"a\"} trailing".into()), 400, "not valid JSON"),
        ("POST", "/v1/spend_keys".into(), Some("".into()), 400, "is empty"),
        ("POST", "/v1/spend_keys".into(), Some("[]".into()), 400, "JSON object"),
        ("POST", "/v1/spend_keys".into(), Some("\"name\"".into()), 400, "JSON object"),
        ("POST", "/v1/spend_keys".into(), Some("null".into()), 400, "JSON object"),
        ("POST", "/v1/spend_keys".into(), Some("{}".into()), 400, "name"),
        ("POST", "/v1/spend_keys".into(), Some(json!({"name": 5}).to_string()), 400, "name"),
        ("POST", "/v1/spend_keys".into(), Some(json!({"name": ""}).to_string()), 400, "name"),
        ("POST", "/v1/spend_keys".into(), Some(json!({"name": long_name}).to_string()), 400, "name"),
        ("POST", "/v1/spend_keys".into(), Some(json!({"name": "a", "colour": "red"}).to_string()), 400, "colour"),
        ("POST", "/v1/spend_keys".into(), Some(nested_unknown.to_string()), 400, "spend_limit.currency"),
        ("POST", "/v1/spend_keys".into(), Some(json!({"name": "a", "status": "revoked"}).to_string()), 400, "status"),
        ("POST", "/v1/spend_keys".into(), Some(json!({"name": "a", "status": 1}).to_string()), 400, "status"),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "request_shape": "gemini"}).to_string()),
            400,
            "request_shape",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "allowed_models": "gpt-4o-mini"}).to_string()),
            400,
            "allowed_models",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "allowed_models": []}).to_string()),
            400,
            "allowed_models",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "allowed_models": ["gpt-nope"]}).to_string()),
            400,
            "allowed_models[0]",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "allowed_providers": ["acme"]}).to_string()),
            400,
            "allowed_providers[0]",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "spend_limit": {"amount": "-5", "cycle": "daily"}}).to_string()),
            400,
            "spend_limit.amount",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "spend_limit": {"amount": "fifty", "cycle": "daily"}}).to_string()),
            400,
            "spend_limit.amount",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "spend_limit": {"amount": "NaN", "cycle": "daily"}}).to_string()),
            400,
            "spend_limit.amount",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "spend_limit": {"amount": 50, "cycle": "daily"}}).to_string()),
            400,
            "spend_limit.amount",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "spend_limit": {"amount": "1e400", "cycle": "daily"}}).to_string()),
            400,
            "spend_limit.amount",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "spend_limit": {"amount": "10000000000", "cycle": "daily"}}).to_string()),
            400,
            "spend_limit.amount",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "spend_limit": {"amount": "5", "cycle": "fortnightly"}}).to_string()),
            400,
            "spend_limit.cycle",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "spend_limit": {"amount": "5"}}).to_string()),
            400,
            "spend_limit.cycle",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "request_limit": {"count": 0, "cycle": "daily"}}).to_string()),
            400,
            "request_limit.count",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "request_limit": {"count": 1.5, "cycle": "daily"}}).to_string()),
            400,
            "request_limit.count",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "rate_limit": {"rpm": 0}}).to_string()),
            400,
            "rate_limit.rpm",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "rate_limit": {"rpm": -60}}).to_string()),
            400,
            "rate_limit.rpm",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "rate_limit": {"burst": 10}}).to_string()),
            400,
            "rate_limit.rpm",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "rate_limit": {"rpm": 60, "burst": "ten"}}).to_string()),
            400,
            "rate_limit.burst",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "expires_at": "2001-01-01T00:00:00Z"}).to_string()),
            400,
            "expires_at",
        ),
        (
            "POST",
            "/v1/spend_keys".into(),
            Some(json!({"name": "a", "expires_at": "soon"}).to_string()),
            400,
            "expires_at",
        ),
        ("POST", "/v1/spend_keys".into(), Some(huge), 413, "larger than the limit"),
        (
            "PUT",
            key_path.clone(),
            Some(json!({"spend_limit": {"amount": "-1", "cycle": "daily"}}).to_string()),
            400,
            "spend_limit.amount",
        ),
        ("PATCH", key_path.clone(), Some(json!({"name": null}).to_string()), 400, "name"),
        ("PUT", key_path.clone(), Some("not json".into()), 400, "not valid JSON"),
        ("GET", "/v1/spend_keys?limit=0".into(), None, 400, "limit"),
        ("GET", "/v1/spend_keys?limit=101".into(), None, 400, "limit"),
        ("GET", "/v1/spend_keys?limit=ten".into(), None, 400, "limit"),
        ("GET", "/v1/spend_keys?cursor=bogus".into(), None, 400, "cursor"),
        ("GET", "/v1/spend_keys/key_doesnotexist".into(), None, 404, "no spend key"),
        ("POST", key_path.clone(), Some("{}".into()), 405, "not allowed"),
        ("GET", "/v1/nothing_here".into(), None, 404, "no route"),
    ];
    assert!(cases.len() >= 30);
    for (method, path, body, status, fragment) in &cases {
        let r = api.raw(method, path, body.clone().map(String::into_bytes)).await;
        let shown: String = body.as_deref().unwrap_or("").chars().take(80).collect();
        assert_eq!(r.status, *status, "{method} {path} {shown}: {}", r.body);
        let (_, message, param) = error_of(&r.body);
        let named = param.is_some_and(|p| p == *fragment) || message.contains(fragment);
        assert!(named, "{method} {path} {shown}: expected {fragment:?} in {}", r.body);
        if r.status == 400 && path.contains("spend_keys") && body.is_some() && !fragment.contains(' ') {
            assert_eq!(param, Some(*fragment), "{method} {path} {shown}: param");
        }
    }

    // Authentication failures.
    for (key, fragment) in [
        ("", "missing API key"),
        ("lava_wk_not_a_real_key", "invalid wallet API key"),
        (&wallet_key[..12], "invalid wallet API key"),
        (&format!("{}****", &wallet_key[..12]), "preview"),
        (spend_secret, "spend key"),
    ] {
        let r = Api::new(&server, key).call("GET", "/v1/spend_keys", None).await;
        assert_eq!(r.status, 401, "{key:?}: {}", r.body);
        let (kind, message, _) = error_of(&r.body);
        assert_eq!(kind, "authentication_error");
        assert!(message.contains(fragment), "{key:?}: {message}");
    }

    // Nothing invalid was stored, and the existing key is unchanged.
    let list = api.call("GET", "/v1/spend_keys?limit=100", None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let now = api.call("GET", &key_path, None).await;
    let mut expected = existing.clone();
    expected.as_object_mut().unwrap().remove("key");
    assert_eq!(now.body, expected);
    assert!(!server.logs().contains("panicked"), "the server panicked");
}

#[tokio::test]
async fn wallets_are_isolated_on_every_route() {
    let dir = TempDir::new("isolation");
    let (_, key_a) = create_wallet(&dir, "a");
    let (_, key_b) = create_wallet(&dir, "b");
    let (mock_url, _mock) = common::start_mock().await;
    let env = common::provider_env(&mock_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_env(&dir, &env);
    let (a, b) = (Api::new(&server, &key_a), Api::new(&server, &key_b));
    let b_key = b.create_key(json!({"name": "b's", "spend_limit": {"amount": "5", "cycle": "daily"}})).await;
    let b_id = b_key["spend_key_id"].as_str().unwrap();
    let spend_secret = b_key["key"].as_str().unwrap();
    // b's key has usage and request records.
    let used = Api::new(&server, spend_secret)
        .post("/v1/chat/completions", json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(used.status, 200, "{}", used.body);
    let b_key = b.call("GET", &format!("/v1/spend_keys/{b_id}"), None).await.body;

    // Wallet-wide reads from a show nothing of b's.
    for path in [format!("/v1/requests?spend_key_id={b_id}"), "/v1/requests".to_string()] {
        let r = a.call("GET", &path, None).await;
        assert_eq!((r.status, &r.body["data"]), (200, &json!([])), "{path}: {}", r.body);
    }
    let export = a.raw("GET", &format!("/v1/requests/export?spend_key_id={b_id}"), None).await;
    assert_eq!(export.status, 200);
    assert!(!export.body.to_string().contains(b_id), "the export names none of b's requests");
    let usage = a.call("GET", "/v1/usage", None).await.body.to_string();
    assert!(!usage.contains(b_id) && !usage.contains("gpt-4o-mini"), "a's usage has none of b's: {usage}");

    let routes = |id: &str| -> Vec<(&'static str, String, Option<Value>)> {
        vec![
            ("GET", format!("/v1/spend_keys/{id}"), None),
            ("GET", format!("/v1/spend_keys/{id}/usage"), None),
            ("PUT", format!("/v1/spend_keys/{id}"), Some(json!({"name": "stolen"}))),
            ("PATCH", format!("/v1/spend_keys/{id}"), Some(json!({"status": "paused"}))),
            ("POST", format!("/v1/spend_keys/{id}/rotate"), None),
            ("DELETE", format!("/v1/spend_keys/{id}"), None),
        ]
    };
    for ((method, path, body), (_, missing_path, _)) in routes(b_id).into_iter().zip(routes("key_missing")) {
        let r = a.call(method, &path, body.clone()).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        // The same answer as for an id that does not exist, but for the id itself.
        let missing = a.call(method, &missing_path, body).await;
        assert_eq!(missing.status, 404);
        assert_eq!(r.body.to_string().replace(b_id, "ID"), missing.body.to_string().replace("key_missing", "ID"));
    }
    let listed = a.call("GET", "/v1/spend_keys", None).await;
    assert_eq!(listed.body["data"], json!([]), "a sees none of b's keys");

    // The same through a dashboard session signed in with a's key.
    let http = reqwest::Client::new();
    let signed_in =
        http.post(format!("{}/api/session", server.url)).json(&json!({"wallet_key": key_a})).send().await.unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let csrf = signed_in.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    for (method, path, body) in routes(b_id) {
        let mut req = http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", server.url))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf);
        if let Some(body) = body {
            req = req.json(&body);
        }
        assert_eq!(req.send().await.unwrap().status(), 404, "session: {method} {path}");
    }

    // b's key is untouched, and its secret still works.
    let after = b.call("GET", &format!("/v1/spend_keys/{b_id}"), None).await;
    let mut expected = b_key.clone();
    expected.as_object_mut().unwrap().remove("key");
    assert_eq!(after.body, expected);
    let models = Api::new(&server, spend_secret).call("GET", "/v1/models", None).await;
    assert_eq!(models.status, 200);

    // A spend key is no management credential, on any route.
    let spender = Api::new(&server, spend_secret);
    let mut all = routes(b_id);
    all.push(("GET", "/v1/spend_keys".into(), None));
    all.push(("POST", "/v1/spend_keys".into(), Some(json!({"name": "x"}))));
    for (method, path, body) in all {
        let r = spender.call(method, &path, body).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        assert!(error_of(&r.body).1.contains("spend key"));
    }
}

#[tokio::test]
async fn concurrent_updates_of_different_fields_are_all_kept() {
    let dir = TempDir::new("concurrent");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let server = Server::start(&dir);
    let api = std::sync::Arc::new(Api::new(&server, &wallet_key));
    let key = api.minimal_key("racy").await;
    let path = format!("/v1/spend_keys/{}", key["spend_key_id"].as_str().unwrap());
    let changes = [
        json!({"name": "renamed"}),
        json!({"status": "paused"}),
        json!({"request_shape": "anthropic"}),
        json!({"allowed_models": ["gpt-4o-mini"]}),
        json!({"allowed_providers": ["openai"]}),
        json!({"spend_limit": {"amount": "12.50", "cycle": "weekly"}}),
        json!({"request_limit": {"count": 77, "cycle": "total"}}),
        json!({"rate_limit": {"rpm": 30, "burst": 3}}),
        json!({"expires_at": "2099-01-01T00:00:00Z"}),
    ];
    let tasks: Vec<_> = changes
        .iter()
        .cloned()
        .map(|change| {
            let (api, path) = (api.clone(), path.clone());
            tokio::spawn(async move { api.call("PATCH", &path, Some(change)).await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let now = api.call("GET", &path, None).await.body;
    for change in changes {
        let (field, value) = change.as_object().unwrap().iter().next().unwrap();
        assert_eq!(&now[field], value, "{field} was lost to a concurrent update");
    }
}

#[tokio::test]
async fn health_readiness_and_wrong_base_urls() {
    let dir = TempDir::new("health");
    let server = Server::start(&dir);
    let api = Api::new(&server, "");
    assert_eq!(api.call("GET", "/healthz", None).await.body, json!({"status": "ok"}));
    assert_eq!(api.call("GET", "/readyz", None).await.body, json!({"status": "ready"}));
    for (path, hint) in [
        ("/v1/v1/chat/completions", "ends in /v1 twice"),
        ("/chat/completions", "with /v1"),
        ("/messages", "without /v1"),
    ] {
        let r = api.call("POST", path, Some(json!({}))).await;
        assert_eq!(r.status, 404);
        assert!(error_of(&r.body).1.contains(hint), "{path}: {}", r.body);
    }
}

/// Every management action (CLI, wallet API, dashboard) leaves one audit entry: who,
/// what, when, from where, and what changed, never a secret; each wallet sees its own.
#[tokio::test]
async fn every_management_action_is_in_the_audit_log() {
    let dir = TempDir::new("audit");
    let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let (wallet_id, key_a) = create_wallet(&dir, "acme");
    let url = dir.db_url();
    let (ok, out, err) = common::cli(&["wallets", "keys", "create", &wallet_id, "--database", &url, "--json"], &[]);
    assert!(ok, "{err}");
    let extra: Value = serde_json::from_str(out.trim()).unwrap();
    let extra_id = extra["key_id"].as_str().unwrap();
    let (ok, _, err) = common::cli(&["wallets", "keys", "revoke", &wallet_id, extra_id, "--database", &url], &[]);
    assert!(ok, "{err}");
    let (_, key_b) = create_wallet(&dir, "other");
    let server = Server::start(&dir);

    // Through the wallet API, as a named client.
    let http = reqwest::Client::builder().user_agent("audit-test/1.0").build().unwrap();
    let call = async |method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]| {
        let mut req =
            http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", server.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let cookie = resp.headers().get("set-cookie").map(|c| c.to_str().unwrap().to_string());
        (status, resp.json::<Value>().await.unwrap_or(Value::Null), cookie)
    };
    let bearer = format!("Bearer {key_a}");
    let auth = [("authorization", bearer.as_str())];
    let (status, created, _) = call(
        "POST",
        "/v1/spend_keys",
        Some(json!({"name": "ci", "spend_limit": {"amount": "5", "cycle": "daily"}})),
        &auth,
    )
    .await;
    assert_eq!(status, 201);
    let id = created["spend_key_id"].as_str().unwrap().to_string();
    let path = format!("/v1/spend_keys/{id}");
    let change = json!({"name": "ci-2", "spend_limit": {"amount": "7.5", "cycle": "weekly"}});
    assert_eq!(call("PATCH", &path, Some(change), &auth).await.0, 200);
    let (status, rotated, _) = call("POST", &format!("{path}/rotate"), None, &auth).await;
    assert_eq!(status, 200);
    // A change that fails leaves no entry.
    assert_eq!(call("PATCH", &path, Some(json!({"status": "gone"})), &auth).await.0, 400);

    // Through the dashboard, in a session.
    let (status, session, cookie) = call("POST", "/api/session", Some(json!({"wallet_key": key_a})), &[]).await;
    assert_eq!(status, 200);
    let cookie = cookie.unwrap().split(';').next().unwrap().to_string();
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    let in_session = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    assert_eq!(call("PATCH", &path, Some(json!({"status": "paused"})), &in_session).await.0, 200);
    assert_eq!(call("DELETE", &path, None, &in_session).await.0, 200);
    assert_eq!(call("DELETE", "/api/session", None, &in_session).await.0, 200);

    let a = Api::new(&server, &key_a);
    let log = a.call("GET", "/v1/audit_log?limit=100", None).await;
    assert_eq!(log.status, 200, "{}", log.body);
    let entries = log.body["data"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "dashboard_session.revoked",
            "spend_key.revoked",
            "spend_key.updated",
            "dashboard_session.created",
            "spend_key.rotated",
            "spend_key.updated",
            "spend_key.created",
            "wallet_key.revoked",
            "wallet_key.created",
            "wallet.created",
        ]
    );
    let by_action = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap();

    // Who and from where.
    let api_key_actor = by_action("spend_key.created")["actor"].clone();
    assert_eq!(api_key_actor["type"], "wallet_key");
    let wallet_key_id = api_key_actor["id"].as_str().unwrap();
    assert!(wallet_key_id.starts_with("wk_"));
    for action in ["spend_key.revoked", "dashboard_session.revoked"] {
        assert_eq!(by_action(action)["actor"], json!({"type": "dashboard_session", "id": wallet_key_id}), "{action}");
    }
    assert_eq!(by_action("dashboard_session.created")["actor"], api_key_actor, "signed in with that key");
    for e in &entries[..7] {
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
        assert_eq!(e["user_agent"], "audit-test/1.0", "{e}");
    }
    for e in &entries[7..] {
        assert_eq!(e["actor"], json!({"type": "operator", "id": null}), "{e}");
        assert_eq!((&e["ip"], &e["user_agent"]), (&Value::Null, &Value::Null), "{e}");
    }
    // What, and when.
    assert_eq!(by_action("wallet_key.revoked")["target_id"], extra_id);
    assert_eq!(by_action("wallet.created")["target_id"], wallet_id.as_str());
    assert_eq!(by_action("spend_key.created")["changes"]["spend_limit"], json!({"amount": "5.00", "cycle": "daily"}));
    assert_eq!(
        entries[5]["changes"],
        json!({
            "name": {"from": "ci", "to": "ci-2"},
            "spend_limit": {"from": {"amount": "5.00", "cycle": "daily"}, "to": {"amount": "7.50", "cycle": "weekly"}},
        })
    );
    assert_eq!(entries[2]["changes"], json!({"status": {"from": "active", "to": "paused"}}));
    let preview = &by_action("spend_key.rotated")["changes"]["key_preview"];
    assert_eq!((&preview["from"], &preview["to"]), (&created["key_preview"], &rotated["key_preview"]));
    let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    for e in entries {
        let at = time::OffsetDateTime::parse(
            e["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(started <= at && at <= now, "{e}");
        assert!(e["audit_id"].as_str().unwrap().starts_with("aud_"));
    }
    // Never a secret.
    let text = log.body.to_string();
    for secret in
        [created["key"].as_str().unwrap(), rotated["key"].as_str().unwrap(), &key_a, extra["key"].as_str().unwrap()]
    {
        assert!(!text.contains(secret), "a secret is in the audit log");
    }

    // One target's entries; pages with a cursor; a bad cursor is named.
    let of_key = a.call("GET", &format!("/v1/audit_log?target_id={id}"), None).await.body;
    assert_eq!(of_key["data"].as_array().unwrap().len(), 5, "{of_key}");
    let mut paged = Vec::new();
    let mut next = "/v1/audit_log?limit=3".to_string();
    loop {
        let page = a.call("GET", &next, None).await.body;
        paged.extend(page["data"].as_array().unwrap().iter().map(|e| e["audit_id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => next = format!("/v1/audit_log?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, entries.iter().map(|e| e["audit_id"].clone()).collect::<Vec<_>>());
    let bad = a.call("GET", "/v1/audit_log?cursor=nope", None).await;
    assert_eq!((bad.status, error_of(&bad.body).2), (400, Some("cursor")));

    // Each wallet sees only its own; a spend key sees nothing.
    let of_b = Api::new(&server, &key_b).call("GET", "/v1/audit_log", None).await.body;
    let b_actions: Vec<&str> = of_b["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(b_actions, ["wallet.created"]);
    let spender = Api::new(&server, rotated["key"].as_str().unwrap());
    assert_eq!(spender.call("GET", "/v1/audit_log", None).await.status, 401);
}

/// The Rust client (`spendgate-client`, which the CLI uses) against the real server:
/// every call, typed answers equal to the API's JSON, errors with their field.
#[tokio::test]
async fn the_rust_client_covers_the_wallet_api() {
    use spendgate_client::{Client, Error, NewSpendKey, RateLimit, RequestLimit, SpendKeyChanges, SpendLimit};
    let dir = TempDir::new("rust-client");
    let (_, wallet_key) = create_wallet(&dir, "acme");
    let server = Server::start(&dir);
    let client = Client::new(&format!("{}/", server.url), &wallet_key).unwrap();

    let created = client
        .create_spend_key(&NewSpendKey {
            name: "typed".into(),
            status: Some("paused".into()),
            request_shape: Some("anthropic".into()),
            allowed_models: Some(vec!["claude-sonnet-4-20250514".into()]),
            allowed_providers: Some(vec!["anthropic".into()]),
            spend_limit: Some(SpendLimit { amount: "50".into(), cycle: "monthly".into() }),
            request_limit: Some(RequestLimit { count: 1000, cycle: "daily".into() }),
            rate_limit: Some(RateLimit { rpm: 60, burst: Some(10) }),
            expires_at: Some("2030-01-01T00:00:00Z".into()),
        })
        .await
        .unwrap();
    assert!(created.key.as_deref().unwrap().starts_with("lava_sk_"));
    assert_eq!(created.spend_limit, Some(SpendLimit { amount: "50.00".into(), cycle: "monthly".into() }));
    let id = created.spend_key_id.clone();
    // The typed key is the API's JSON, field for field.
    let raw = Api::new(&server, &wallet_key).call("GET", &format!("/v1/spend_keys/{id}"), None).await.body;
    let fetched = client.spend_key(&id).await.unwrap();
    assert_eq!(serde_json::to_value(&fetched).unwrap(), raw);
    assert_eq!(fetched.key, None, "the secret is shown once");

    let changed = client
        .update_spend_key(
            &id,
            &SpendKeyChanges {
                name: Some("renamed".into()),
                status: Some("active".into()),
                spend_limit: Some(None),
                allowed_models: Some(None),
                ..SpendKeyChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((changed.name.as_str(), changed.status.as_str()), ("renamed", "active"));
    assert_eq!((changed.spend_limit, changed.allowed_models), (None, None));
    assert_eq!(changed.request_limit, created.request_limit, "fields not given stay");
    let rotated = client.rotate_spend_key(&id).await.unwrap();
    assert_ne!(rotated.key, created.key);

    for i in 0..3 {
        client.create_spend_key(&NewSpendKey { name: format!("k{i}"), ..NewSpendKey::default() }).await.unwrap();
    }
    let page = client.list_spend_keys(2, None).await.unwrap();
    assert_eq!((page.data.len(), page.has_more), (2, true));
    let rest = client.list_spend_keys(2, page.next_cursor.as_deref()).await.unwrap();
    assert_eq!((rest.data.len(), rest.has_more), (2, false));
    assert_eq!(client.all_spend_keys().await.unwrap().len(), 4);

    client.revoke_spend_key(&id).await.unwrap();
    let log = client.audit_log(Some(&id), 10, None).await.unwrap();
    let actions: Vec<&str> = log.data.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["spend_key.revoked", "spend_key.rotated", "spend_key.updated", "spend_key.created"]);
    assert_eq!(log.data[0].actor.kind, "wallet_key");
    assert!(log.data[0].user_agent.as_deref().unwrap().starts_with("spendgate-client/"));

    // Errors: the API's, with the field; a missing key; no server.
    match client.create_spend_key(&NewSpendKey { name: String::new(), ..NewSpendKey::default() }).await {
        Err(Error::Api { status: 400, param: Some(param), .. }) => assert_eq!(param, "name"),
        other => panic!("{other:?}"),
    }
    match client.spend_key(&id).await {
        Err(e @ Error::Api { status: 404, .. }) => assert!(e.to_string().starts_with("404 no spend key"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(client.spend_key("../healthz").await, Err(Error::Api { status: 400, .. })));
    let wrong = Client::new(&server.url, "lava_wk_wrong").unwrap();
    assert!(matches!(wrong.all_spend_keys().await, Err(Error::Api { status: 401, .. })));
    let nowhere = Client::new("http://127.0.0.1:1", &wallet_key).unwrap();
    assert!(matches!(nowhere.all_spend_keys().await, Err(Error::Unreachable { .. })));
}
