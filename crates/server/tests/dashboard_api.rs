//! The dashboard's backend over real HTTP: sign-in sessions with CSRF, usage over time,
//! the request log and its CSV export, and the asset headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Gateway;
use serde_json::{Value, json};
use spendgate_mock::MockConfig;

#[tokio::test]
async fn sessions_csrf_usage_and_the_request_log() {
    let gw = Gateway::start(MockConfig::default()).await;
    let http = &gw.http;
    let url = |p: &str| format!("{}{p}", gw.url);

    // Assets: served offline with a strict CSP.
    let page = http.get(url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(
        http.get(url("/assets/app.js")).send().await.unwrap().headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    // Sign-in: a wrong key is refused; a right one gives an HttpOnly, SameSite=Strict cookie.
    let bad = http.post(url("/api/session")).json(&json!({"wallet_key": "lava_wk_wrong"})).send().await.unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(http.get(url("/api/session")).send().await.unwrap().status(), 401);
    let ok = http.post(url("/api/session")).json(&json!({"wallet_key": gw.wallet_key})).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let set_cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let session: Value = ok.json().await.unwrap();
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(session["wallet_name"], "test");
    assert!(
        !set_cookie.contains(&gw.wallet_key) && !session.to_string().contains(&gw.wallet_key),
        "the key is not handed back"
    );

    // Reads need only the cookie; changes need the CSRF token too.
    let listed = http.get(url("/v1/spend_keys")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let forged = http
        .post(url("/v1/spend_keys"))
        .header("cookie", &cookie)
        .json(&json!({"name": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let wrong = http
        .post(url("/v1/spend_keys"))
        .header("cookie", &cookie)
        .header("x-csrf-token", "nope")
        .json(&json!({"name": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let created: Value = http
        .post(url("/v1/spend_keys"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "dash", "spend_limit": {"amount": "5", "cycle": "monthly"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, secret) =
        (created["spend_key_id"].as_str().unwrap().to_string(), created["key"].as_str().unwrap().to_string());
    assert_eq!(
        gw.admin("GET", "/v1/spend_keys?limit=100", None).await.body["data"].as_array().unwrap().len(),
        1,
        "nothing forged was created"
    );

    // Usage and the request log after real requests.
    for text in ["[[mock:tokens:3]] a", "[[mock:tokens:4]] b"] {
        assert_eq!(gw.call("/v1/chat/completions", &secret, Gateway::chat("gpt-4o-mini", text)).await.status, 200);
    }
    assert_eq!(
        gw.call("/v1/messages", &secret, Gateway::message("claude-sonnet-4-20250514", "x", 5)).await.status,
        400
    );
    let usage: Value = http
        .get(url(&format!("/v1/spend_keys/{id}/usage?start=2026-11-20&end=2026-11-24")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = usage["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "one item per day, zero days included");
    assert_eq!(items[3]["date"], "2026-11-23");
    assert_eq!(items[3]["total_requests"], 2);
    assert_eq!(items[0]["total_requests"], 0);
    assert_eq!(usage["totals"]["total_requests"], 2);
    assert_eq!(usage["totals"]["total_cost"], gw.get_key(&id).await["total_spend"]);
    assert_eq!(usage["by_model"][0]["model"], "gpt-4o-mini");
    let wallet: Value = gw.admin("GET", "/v1/usage?start=2026-11-23T00:00:00Z", None).await.body;
    assert_eq!(wallet["totals"]["total_requests"], 2);
    let r = gw.admin("GET", "/v1/usage", None).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("start")));

    let page1 = gw.admin("GET", &format!("/v1/requests?spend_key_id={id}&limit=1"), None).await.body;
    assert_eq!(page1["has_more"], true);
    let first = &page1["data"][0];
    assert_eq!((first["status"].as_str(), first["http_status"].as_u64()), (Some("completed"), Some(200)));
    assert_eq!(first["model_usage"]["output_tokens"], 4, "newest first");
    let page2 = gw
        .admin("GET", &format!("/v1/requests?limit=1&cursor={}", page1["next_cursor"].as_str().unwrap()), None)
        .await
        .body;
    assert_eq!(page2["data"][0]["model_usage"]["output_tokens"], 3);
    assert_eq!(page2["has_more"], false);

    let csv = http
        .get(url(&format!("/v1/requests/export?spend_key_id={id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("created_at,request_id,spend_key_id,model"));
    assert!(lines[1].contains(",gpt-4o-mini,openai,/v1/chat/completions,completed,200,"));

    // Sign-out ends the session.
    let out =
        http.delete(url("/api/session")).header("cookie", &cookie).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(out.status(), 200);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let after = http.get(url("/v1/spend_keys")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), 401);
    let body: Value = after.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("sign in again"));
}
