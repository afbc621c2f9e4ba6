//! Recording, the control routes, auth, malformed bodies, models, the CLI arguments.

use crate::common::{ok_json, start, start_with};
use clap::Parser;
use serde_json::{Value, json};
use spendgate_mock::{MockArgs, MockConfig};

#[tokio::test]
async fn records_every_request_in_order() {
    let s = start().await;
    s.openai("/v1/chat/completions", &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "one"}]}))
        .await;
    s.http
        .post(format!("{}/v1/messages?beta=true", s.base))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-beta", "a,b")
        .json(&json!({"model": "claude", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    // A failed request is recorded too, with a Null body when it is not JSON.
    let failed = s.http.post(format!("{}/v1/embeddings", s.base)).body("not json").send().await.unwrap();
    assert_eq!(failed.status(), 401);

    let recorded = s.mock.recorded();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/v1/chat/completions");
    assert_eq!(recorded[0].query, None);
    assert_eq!(recorded[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(recorded[0].body["messages"][0]["content"], "one");
    assert_eq!(recorded[1].path, "/v1/messages");
    assert_eq!(recorded[1].query.as_deref(), Some("beta=true"));
    assert_eq!(recorded[1].header("anthropic-beta"), Some("a,b"));
    assert_eq!(recorded[2].body, Value::Null);

    // Over HTTP: the same list, control requests not recorded.
    let listed: Value = s.http.get(format!("{}/_mock/requests", s.base)).send().await.unwrap().json().await.unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1]["query"], "beta=true");
    assert_eq!(listed[0]["headers"][0].as_array().unwrap().len(), 2);

    let cleared = s.http.delete(format!("{}/_mock/requests", s.base)).send().await.unwrap();
    assert!(cleared.status().is_success());
    assert!(s.mock.recorded().is_empty());
    s.mock.clear();
}

#[tokio::test]
async fn missing_key_is_a_401_in_each_format() {
    let s = start().await;
    let response = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&json!({"model": "gpt-4o", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_api_key");

    // x-api-key does not authenticate OpenAI routes.
    let response = s.http.get(format!("{}/v1/models", s.base)).header("x-api-key", "k").send().await.unwrap();
    assert_eq!(response.status(), 401);

    let response = s
        .http
        .post(format!("{}/v1/messages", s.base))
        .json(&json!({"model": "claude", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    // Anthropic routes accept a Bearer token too (current Anthropic SDKs send one).
    let response = s
        .http
        .post(format!("{}/v1/messages", s.base))
        .bearer_auth("token")
        .json(&json!({"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn require_key() {
    let s = start_with(MockConfig { require_key: Some("sk-right".into()), ..MockConfig::default() }).await;
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});
    // The harness sends sk-test: wrong.
    let response = s.openai("/v1/chat/completions", &chat).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let response = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth("sk-right")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let messages = json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
    let response = s.anthropic("/v1/messages", &messages).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let response = s
        .http
        .post(format!("{}/v1/messages", s.base))
        .header("x-api-key", "sk-right")
        .json(&messages)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Failed requests are recorded as well.
    assert_eq!(s.mock.recorded().len(), 4);
}

#[tokio::test]
async fn malformed_json_is_a_400_in_each_format() {
    let s = start().await;
    let response = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth("k")
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"].as_object().unwrap().contains_key("code"));

    let response =
        s.http.post(format!("{}/v1/messages", s.base)).header("x-api-key", "k").body("[1, 2").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // Valid JSON that is not an object.
    let response = s.openai("/v1/responses", &json!([1, 2])).await;
    assert_eq!(response.status(), 400);
    assert_eq!(s.mock.recorded().len(), 3);
}

#[tokio::test]
async fn models_in_both_shapes() {
    let s = start().await;
    let response = s.http.get(format!("{}/v1/models", s.base)).bearer_auth("k").send().await.unwrap();
    let body = ok_json(response).await;
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            assert!(m["created"].is_u64());
            assert!(m["owned_by"].is_string());
            m["id"].as_str().unwrap()
        })
        .collect();
    for id in ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-20250514"] {
        assert!(ids.contains(&id), "{id}");
    }

    let response = s
        .http
        .get(format!("{}/v1/models", s.base))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let body = ok_json(response).await;
    assert_eq!(body["has_more"], false);
    assert_eq!(body["data"][0]["type"], "model");
    assert_eq!(body["first_id"], body["data"][0]["id"]);
}

#[tokio::test]
async fn unknown_routes_are_recorded_404s() {
    let s = start().await;
    let response = s.openai("/v1/completions", &json!({"model": "x", "prompt": "y"})).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/completions"));
    assert_eq!(s.mock.recorded()[0].path, "/v1/completions");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: MockArgs,
}

#[test]
fn cli_arguments() {
    let cli = Cli::try_parse_from(["mock"]).unwrap();
    assert_eq!(cli.args.listen, "127.0.0.1:0");
    assert_eq!(cli.args.config(), MockConfig::default());
    let cli = Cli::try_parse_from([
        "mock",
        "--listen",
        "127.0.0.1:9999",
        "--latency-ms",
        "5",
        "--chunk-delay-ms",
        "6",
        "--output-tokens",
        "7",
        "--require-key",
        "sk",
    ])
    .unwrap();
    assert_eq!(
        cli.args.config(),
        MockConfig { latency_ms: 5, chunk_delay_ms: 6, output_tokens: 7, require_key: Some("sk".into()) }
    );
}
