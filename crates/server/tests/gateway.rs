//! The gateway over real HTTP: checks in order, hard caps under concurrency, metering,
//! dropped streams, cycle resets, changes in force on the next request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ANTHROPIC_PROVIDER_KEY, Gateway, OPENAI_PROVIDER_KEY, nanos};
use futures_util::StreamExt;
use serde_json::{Value, json};
use spendgate_core::meter::CostBound;
use spendgate_core::{Catalog, Usd};
use spendgate_mock::MockConfig;
use std::sync::Arc;
use std::time::Duration;

const MINI: &str = "gpt-4o-mini";
const SONNET: &str = "claude-sonnet-4-20250514";

/// Exact cost in nano-dollars of `tokens` at `usd_per_million`, rounded up only at the end.
fn exact_cost(parts: &[(u64, &str)]) -> i64 {
    let total: i128 =
        parts.iter().map(|(tokens, price)| i128::from(*tokens) * i128::from(Usd::parse(price).unwrap().nanos())).sum();
    ((total + 999_999) / 1_000_000) as i64
}

#[tokio::test]
async fn checks_run_in_order_with_their_own_status_and_format() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (_, oa) = gw.key(json!({"name": "oa", "allowed_models": [MINI]})).await;
    let (_, an) = gw.key(json!({"name": "an", "request_shape": "anthropic"})).await;
    let chat = Gateway::chat(MINI, "hi");

    // 1. Unknown, missing or preview keys: 401 in OpenAI's format.
    for (key, fragment) in [
        ("lava_sk_nope", "invalid API key"),
        (&format!("{}****", &oa[..12]), "key preview"),
        (&gw.wallet_key.clone(), "wallet API key"),
    ] {
        let r = gw.call("/v1/chat/completions", key, chat.clone()).await;
        assert_eq!(r.status, 401, "{key}");
        assert!(r.body["error"]["message"].as_str().unwrap().contains(fragment), "{}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_api_key");
        assert!(r.body["error"].as_object().unwrap().contains_key("param"), "OpenAI errors carry all four keys");
    }
    let r = gw.send_raw(gw.http.post(format!("{}/v1/messages", gw.url)).json(&Gateway::message(SONNET, "hi", 5))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["type"], "error", "Anthropic's format on an Anthropic endpoint");
    assert_eq!(r.body["error"]["type"], "authentication_error");

    // 3. Wrong format: 400 naming the key's format and the base URL.
    let r = gw.call("/v1/messages", &oa, Gateway::message(SONNET, "hi", 5)).await;
    assert_eq!(r.status, 400);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("wrong API format") && msg.contains("/v1") && msg.contains("OpenAI"), "{msg}");
    let r = gw.call("/v1/chat/completions", &an, chat.clone()).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("Anthropic format"));

    // Malformed bodies name the field.
    let r = gw.call("/v1/chat/completions", &oa, json!({"messages": []})).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("model")));
    let r = gw.call("/v1/chat/completions", &oa, json!({"model": MINI, "max_tokens": -5})).await;
    assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some("max_tokens")));
    let r = gw.call("/v1/messages", &an, json!({"model": SONNET, "messages": []})).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("max_tokens"));

    // 4. Unknown model: 404 model_not_found.
    let r = gw.call("/v1/chat/completions", &oa, Gateway::chat("gpt-nonexistent", "hi")).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (404, Some("model_not_found")));

    // 5. Not allowed: 403 with the allowed list.
    let r = gw.call("/v1/chat/completions", &oa, Gateway::chat("gpt-4o", "hi")).await;
    assert_eq!(r.status, 403);
    assert!(r.body["error"]["message"].as_str().unwrap().contains(&format!(
        "Model not allowed: this spend key may not use gpt-4o (provider openai). Allowed models: {MINI}"
    )));

    // Nothing of it reached the provider.
    assert_eq!(gw.mock.recorded().len(), 0);

    // A good request goes through with the provider's key, never the spend key.
    let r = gw.call("/v1/chat/completions", &oa, chat.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = gw.call("/v1/messages", &an, Gateway::message(SONNET, "hi", 5)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = gw.mock.recorded();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("authorization"), Some(format!("Bearer {OPENAI_PROVIDER_KEY}").as_str()));
    assert_eq!(seen[1].header("x-api-key"), Some(ANTHROPIC_PROVIDER_KEY));
    assert_eq!(seen[1].header("anthropic-version"), Some("2023-06-01"), "a default version when the client sent none");
    for r in &seen {
        let all = format!("{:?} {}", r.headers, r.body);
        assert!(!all.contains(&oa) && !all.contains(&an), "a spend key reached the provider");
    }
}

#[tokio::test]
async fn limits_refuse_with_retry_guidance() {
    let gw = Gateway::start(MockConfig::default()).await;
    // 6. Rate limit: burst 2, then 429 with retry-after, x-should-retry true.
    let (_, rated) = gw.key(json!({"name": "r", "rate_limit": {"rpm": 60, "burst": 2}})).await;
    for _ in 0..2 {
        assert_eq!(gw.call("/v1/chat/completions", &rated, Gateway::chat(MINI, "hi")).await.status, 200);
    }
    let r = gw.call("/v1/chat/completions", &rated, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("retry-after-ms"), Some("1000"));
    gw.clock.set("2026-11-23T12:00:01Z");
    assert_eq!(
        gw.call("/v1/chat/completions", &rated, Gateway::chat(MINI, "hi")).await.status,
        200,
        "the bucket refills"
    );

    // 7. Request limit: 429 "request limit reached", no retry.
    let (_, capped) = gw.key(json!({"name": "c", "request_limit": {"count": 1, "cycle": "daily"}})).await;
    let ok = gw.call("/v1/chat/completions", &capped, Gateway::chat(MINI, "hi")).await;
    assert_eq!(ok.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(ok.header("x-ratelimit-reset-requests"), Some("2026-11-24T00:00:00Z"));
    let r = gw.call("/v1/chat/completions", &capped, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("x-should-retry"), Some("false"));
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(r.body["error"]["code"], "insufficient_quota");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request limit reached: 1 requests per day; it resets at 2026-11-24T00:00:00Z")
    );

    // 8. Spend limit, Anthropic format.
    let (id, spent) = gw
        .key(json!({"name": "s", "request_shape": "anthropic", "spend_limit": {"amount": "0.001", "cycle": "monthly"}}))
        .await;
    let ok = gw.call("/v1/messages", &spent, Gateway::message(SONNET, "hi", 5)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let spend = nanos(&gw.get_key(&id).await["total_spend"]);
    assert!(spend > 0);
    // A request whose input alone could exceed what is left is refused: 600 bytes of
    // input may be 600 tokens at the dearest input price ($3.75 per million) = $0.00225.
    let big = "word ".repeat(120);
    let r = gw.call("/v1/messages", &spent, Gateway::message(SONNET, &big, 5)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
    assert_eq!(r.header("x-should-retry"), Some("false"));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("spend limit reached: $0.001 per month; it resets at 2026-12-01T00:00:00Z")
    );
}

#[tokio::test]
async fn the_budget_lowers_max_tokens_instead_of_refusing() {
    let gw = Gateway::start(MockConfig { output_tokens: 1000, ..MockConfig::default() }).await;
    // $0.60 per million output tokens: $0.0003 buys 500 tokens (minus the input).
    let (id, key) = gw.key(json!({"name": "l", "spend_limit": {"amount": "0.0003", "cycle": "total"}})).await;
    let mut body = Gateway::chat(MINI, "hi");
    body["max_tokens"] = json!(1000);
    let r = gw.call("/v1/chat/completions", &key, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lowered: u64 = r.header("x-spendgate-max-tokens-lowered").unwrap().parse().unwrap();
    assert!((400..500).contains(&lowered), "{lowered}");
    let sent = &gw.mock.recorded()[0].body;
    assert_eq!(sent["max_tokens"], json!(lowered), "the provider got the lowered max");
    assert_eq!(r.body["usage"]["completion_tokens"], json!(lowered));
    assert_eq!(r.body["choices"][0]["finish_reason"], "length");
    let spend = nanos(&gw.get_key(&id).await["total_spend"]);
    assert!(spend <= 300_000 && spend > 250_000, "{spend}");
}

#[tokio::test]
async fn cost_is_the_reported_usage_times_the_catalog_price() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (oa_id, oa) = gw.key(json!({"name": "oa"})).await;
    let r = gw
        .call("/v1/chat/completions", &oa, Gateway::chat(MINI, "[[mock:cached:40]] [[mock:tokens:7]] hello there"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let u = &r.body["usage"];
    let (prompt, cached, completion) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert_eq!((cached, completion), (40, 7));
    let expected = exact_cost(&[(prompt - cached, "0.15"), (cached, "0.075"), (completion, "0.60")]);
    assert_eq!(Usd::parse(r.header("x-spendgate-cost").unwrap()).unwrap().nanos(), expected);
    let records = gw.records(&oa_id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].cost.nanos(), expected);
    assert_eq!(
        (records[0].usage.input, records[0].usage.cached_input, records[0].usage.output),
        (prompt - cached, 40, 7)
    );
    assert_eq!(nanos(&gw.get_key(&oa_id).await["total_spend"]), expected);

    // Anthropic: input excludes the cache reads and writes, each priced apart; streamed.
    let (an_id, an) = gw.key(json!({"name": "an", "request_shape": "anthropic"})).await;
    let mut body = Gateway::message(SONNET, "[[mock:cached:1000]] [[mock:cache_write:300]] [[mock:tokens:9]] hi", 50);
    body["stream"] = json!(true);
    let resp =
        gw.http.post(format!("{}/v1/messages", gw.url)).header("x-api-key", &an).json(&body).send().await.unwrap();
    let text = resp.text().await.unwrap();
    let start: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|v| v["type"] == "message_start")
        .unwrap();
    let input = start["message"]["usage"]["input_tokens"].as_u64().unwrap();
    let expected = exact_cost(&[(input, "3"), (1000, "0.30"), (300, "3.75"), (9, "15")]);
    let records = gw.records(&an_id).await;
    assert_eq!(records[0].cost.nanos(), expected);
    assert_eq!((records[0].usage.cached_input, records[0].usage.cache_write, records[0].usage.output), (1000, 300, 9));
}

#[tokio::test]
async fn provider_errors_cost_nothing_and_unconfigured_providers_say_so() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (id, key) = gw.key(json!({"name": "e"})).await;
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "[[mock:error:500]]")).await;
    assert_eq!(r.status, 500);
    assert!(r.body["error"].is_object(), "the provider's error passes through: {}", r.body);
    let records = gw.records(&id).await;
    assert_eq!((records[0].status, records[0].cost), (500, Usd::ZERO));
    assert_eq!(gw.get_key(&id).await["total_requests"], 1, "it reached the provider: it counts");
    assert_eq!(gw.meter(&id), (0, 0));
    // groq has no key in this gateway's config.
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat("openai/gpt-oss-20b", "hi")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("provider groq is not configured"));
}

#[tokio::test]
async fn the_usage_chunk_is_asked_for_and_stripped_unless_the_client_wants_it() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (id, key) = gw.key(json!({"name": "s"})).await;
    let mut body = Gateway::chat(MINI, "[[mock:tokens:5]] hi");
    body["stream"] = json!(true);
    for include in [false, true] {
        let mut b = body.clone();
        if include {
            b["stream_options"] = json!({"include_usage": true});
        }
        let text = gw
            .http
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(&key)
            .json(&b)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let chunks: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let usage_chunks = chunks.iter().filter(|c| c["choices"].as_array().unwrap().is_empty()).count();
        assert_eq!(usage_chunks, usize::from(include), "include_usage {include}");
        assert!(text.trim_end().ends_with("data: [DONE]"));
        let sent = gw.mock.recorded().last().unwrap().body.clone();
        assert_eq!(sent["stream_options"]["include_usage"], true, "the gateway always asks upstream");
    }
    let records = gw.records(&id).await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.usage.output == 5 && r.cost > Usd::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_spend_cap_holds_under_200_concurrent_streams() {
    let gw = Arc::new(Gateway::start(MockConfig { chunk_delay_ms: 2, ..MockConfig::default() }).await);
    let (id, key) = gw.key(json!({"name": "cap", "spend_limit": {"amount": "0.02", "cycle": "daily"}})).await;
    let mut body = Gateway::chat(MINI, "[[mock:tokens:1000]] write a long story");
    body["max_tokens"] = json!(1000);
    body["stream"] = json!(true);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (gw, key, body) = (gw.clone(), key.clone(), body.clone());
            tokio::spawn(async move {
                let resp = gw
                    .http
                    .post(format!("{}/v1/chat/completions", gw.url))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let _ = resp.text().await.unwrap();
                status
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    let k = gw.get_key(&id).await;
    let spend = nanos(&k["total_spend"]);
    eprintln!("spend cap: {ok} of 200 admitted, total_spend {} of $0.02", k["total_spend"]);
    assert!(spend <= 20_000_000, "spend {spend} nano-dollars is over the $0.02 cap");
    assert!(spend >= 18_000_000, "spend {spend} is under 90% of the cap");
    let records = gw.records(&id).await;
    assert_eq!(records.len(), ok);
    assert_eq!(records.iter().map(|r| r.cost.nanos()).sum::<i64>(), spend, "records sum to total_spend exactly");
    assert_eq!(
        gw.upstream_count("/v1/chat/completions"),
        ok,
        "every admitted request, and only those, reached the provider"
    );
    assert_eq!(k["total_requests"], json!(ok));
    assert_eq!(gw.meter(&id), (0, 0), "no reservation left hanging");
    assert!(ok > 20 && ok < 200, "{ok} admitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_request_cap_admits_exactly_50_of_200_concurrent() {
    let gw = Arc::new(Gateway::start(MockConfig { latency_ms: 50, ..MockConfig::default() }).await);
    let (id, key) = gw.key(json!({"name": "cap", "request_limit": {"count": 50, "cycle": "total"}})).await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (gw, key) = (gw.clone(), key.clone());
            tokio::spawn(async move { gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 50);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 150);
    assert_eq!(gw.upstream_count("/v1/chat/completions"), 50);
    assert_eq!(gw.get_key(&id).await["total_requests"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_streams_are_charged_for_what_was_produced_and_release_their_reservation() {
    let gw = Arc::new(Gateway::start(MockConfig { chunk_delay_ms: 10, ..MockConfig::default() }).await);
    let (id, key) = gw.key(json!({"name": "drop", "spend_limit": {"amount": "5", "cycle": "daily"}})).await;
    let mut body = Gateway::chat(MINI, "[[mock:tokens:60]] tell me everything");
    body["max_tokens"] = json!(100);
    body["stream"] = json!(true);
    let reservation = CostBound {
        input_tokens: spendgate_wire::bound::input_tokens(&{
            let mut b = body.clone();
            b["stream_options"] = json!({"include_usage": true});
            b
        }),
        max_output_tokens: 100,
        choices: 1,
        prices: Catalog::builtin().model(MINI).unwrap().prices,
    }
    .worst_case();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (gw, key, body) = (gw.clone(), key.clone(), body.clone());
            tokio::spawn(async move {
                let resp = gw
                    .http
                    .post(format!("{}/v1/chat/completions", gw.url))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let mut stream = resp.bytes_stream();
                let mut seen = 0;
                while let Some(chunk) = stream.next().await {
                    seen += chunk.unwrap().len();
                    if seen > 2000 {
                        break; // halfway: hang up
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // The gateway notices the disconnects as the streams are dropped.
    let mut records = Vec::new();
    for _ in 0..100 {
        records = gw.records(&id).await;
        if records.len() == 50 && gw.meter(&id) == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(records.len(), 50);
    let outputs: Vec<u64> = records.iter().map(|r| r.usage.output).collect();
    eprintln!(
        "dropped streams: output tokens charged {}..{} of 60, cost {:?}..{:?}, reservation {reservation:?}",
        outputs.iter().min().unwrap(),
        outputs.iter().max().unwrap(),
        records.iter().map(|r| r.cost).min().unwrap(),
        records.iter().map(|r| r.cost).max().unwrap()
    );
    for r in &records {
        assert_eq!(r.status, 499, "recorded as closed by the client");
        assert!(r.cost > Usd::ZERO, "charged for what was produced");
        assert!(r.cost <= reservation, "{:?} over the reservation {reservation:?}", r.cost);
        assert!(r.usage.output > 0 && r.usage.output < 60, "{:?}", r.usage);
    }
    assert_eq!(gw.meter(&id), (0, 0), "available budget is back to limit - spend");
    let spend = nanos(&gw.get_key(&id).await["total_spend"]);
    assert_eq!(records.iter().map(|r| r.cost.nanos()).sum::<i64>(), spend);
    // Each hang-up cancelled the provider's request: the mock saw its 50 streams dropped.
    assert!(common::eventually(|| gw.mock.streams_cancelled() == 50).await, "{}", gw.mock.streams_cancelled());
}

#[tokio::test]
async fn a_capped_key_is_admitted_again_at_midnight_utc() {
    let gw = Gateway::start(MockConfig::default()).await;
    gw.clock.set("2026-11-23T23:59:58Z");
    let (id, key) = gw
        .key(json!({"name": "d", "request_limit": {"count": 1, "cycle": "daily"},
        "spend_limit": {"amount": "1", "cycle": "daily"}}))
        .await;
    assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await.status, 200);
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await;
    assert_eq!(r.status, 429);
    assert_eq!(gw.get_key(&id).await["current_requests"], 1);
    assert!(nanos(&gw.get_key(&id).await["current_spend"]) > 0);
    gw.clock.set("2026-11-23T23:59:59.999Z");
    assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await.status, 429);
    gw.clock.set("2026-11-24T00:00:00Z");
    let k = gw.get_key(&id).await;
    assert_eq!((k["current_requests"].as_u64(), k["current_spend"].as_str()), (Some(0), Some("0.00")));
    assert_eq!(k["total_requests"], 1);
    assert_eq!(gw.call("/v1/chat/completions", &key, Gateway::chat(MINI, "hi")).await.status, 200);
}

#[tokio::test]
async fn wallet_api_changes_are_in_force_on_the_very_next_request() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (id, key) = gw.key(json!({"name": "live"})).await;
    let path = format!("/v1/spend_keys/{id}");
    let chat = || Gateway::chat(MINI, "hi");
    assert_eq!(gw.call("/v1/chat/completions", &key, chat()).await.status, 200);

    gw.admin("PUT", &path, Some(json!({"status": "paused"}))).await;
    let r = gw.call("/v1/chat/completions", &key, chat()).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("key is paused"));
    gw.admin("PUT", &path, Some(json!({"status": "active"}))).await;
    assert_eq!(gw.call("/v1/chat/completions", &key, chat()).await.status, 200);

    gw.admin("PATCH", &path, Some(json!({"allowed_models": ["gpt-4o"]}))).await;
    assert_eq!(gw.call("/v1/chat/completions", &key, chat()).await.status, 403);
    gw.admin("PATCH", &path, Some(json!({"allowed_models": null}))).await;

    let rotated = gw.admin("POST", &format!("{path}/rotate"), None).await.body["key"].as_str().unwrap().to_string();
    assert_eq!(gw.call("/v1/chat/completions", &key, chat()).await.status, 401, "the old secret dies at once");
    assert_eq!(gw.call("/v1/chat/completions", &rotated, chat()).await.status, 200);
    assert_eq!(gw.get_key(&id).await["total_requests"], 3, "usage kept across the rotation");

    gw.admin("PATCH", &path, Some(json!({"expires_at": "2026-11-23T12:00:05Z"}))).await;
    assert_eq!(gw.call("/v1/chat/completions", &rotated, chat()).await.status, 200);
    gw.clock.set("2026-11-23T12:00:05Z");
    let r = gw.call("/v1/chat/completions", &rotated, chat()).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("key expired at 2026-11-23T12:00:05Z"));

    gw.admin("DELETE", &path, None).await;
    let r = gw.call("/v1/chat/completions", &rotated, chat()).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("key was revoked"));
}

#[tokio::test]
async fn unknown_fields_headers_and_large_bodies_pass_through() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (_, an) = gw.key(json!({"name": "cc", "request_shape": "anthropic"})).await;
    // What Claude Code sends: fields the gateway does not know, a beta header, a query string.
    let body = json!({
        "model": SONNET, "max_tokens": 128000, "stream": true,
        "thinking": {"type": "adaptive"}, "context_management": {"edits": []}, "output_config": {"effort": "high"},
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tools": [{"name": "Read", "description": "read a file", "input_schema": {"type": "object", "properties": {}}}]
    });
    let resp = gw
        .http
        .post(format!("{}/v1/messages?beta=true", gw.url))
        .header("x-api-key", &an)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("event: message_stop"));
    let seen = gw.mock.recorded().pop().unwrap();
    assert_eq!(seen.query.as_deref(), Some("beta=true"));
    assert_eq!(seen.header("anthropic-beta"), Some("claude-code-20250219,interleaved-thinking-2025-05-14"));
    for field in ["thinking", "context_management", "output_config", "system", "tools"] {
        assert_eq!(seen.body[field], body[field], "{field} reached the provider untouched");
    }

    // A 5 MB image is fine; 40 MB is over the limit, refused in the endpoint's format.
    let (_, oa) = gw.key(json!({"name": "img"})).await;
    let image = format!("data:image/png;base64,{}", "A".repeat(5 << 20));
    let with_image = json!({"model": MINI, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": image}}]}]});
    assert_eq!(gw.call("/v1/chat/completions", &oa, with_image).await.status, 200);
    let huge = json!({"model": MINI, "messages": [{"role": "user", "content": "A".repeat(40 << 20)}]});
    let r = gw.call("/v1/chat/completions", &oa, huge).await;
    assert_eq!(r.status, 413);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("larger than the limit"));
}

#[tokio::test]
async fn responses_and_embeddings_are_metered() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (id, key) = gw.key(json!({"name": "codex"})).await;
    // Codex CLI: a streamed Responses request without max_output_tokens.
    let body = json!({"model": MINI, "stream": true, "store": false, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[[mock:tokens:6]] fix the bug"}]}]});
    let text = gw
        .http
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("event: response.completed"));
    let r =
        gw.call("/v1/embeddings", &key, json!({"model": "text-embedding-3-small", "input": ["a b c d", "e f"]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let prompt = r.body["usage"]["prompt_tokens"].as_u64().unwrap();
    let records = gw.records(&id).await;
    assert_eq!(records.len(), 2);
    let embedding = records.iter().find(|r| r.endpoint == "/v1/embeddings").unwrap();
    assert_eq!(embedding.usage.input, prompt);
    assert_eq!(embedding.cost.nanos(), exact_cost(&[(prompt, "0.02")]));
    let responses = records.iter().find(|r| r.endpoint == "/v1/responses").unwrap();
    assert_eq!(responses.usage.output, 6);
    assert!(responses.cost > Usd::ZERO);
}

#[tokio::test]
async fn models_are_listed_in_the_clients_own_shape() {
    let gw = Gateway::start(MockConfig::default()).await;
    let (_, key) = gw.key(json!({"name": "m", "request_shape": "anthropic", "allowed_models": [SONNET, MINI]})).await;
    let openai: Value =
        gw.http.get(format!("{}/v1/models", gw.url)).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(openai["object"], "list");
    let ids: Vec<&str> = openai["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&SONNET) && ids.contains(&MINI));
    let anthropic: Value = gw
        .http
        .get(format!("{}/v1/models", gw.url))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anthropic["has_more"], false);
    let sonnet = anthropic["data"].as_array().unwrap().iter().find(|m| m["id"] == SONNET).unwrap();
    assert_eq!(sonnet["type"], "model");
    assert!(sonnet["created_at"].as_str().unwrap().starts_with("2025-05"), "{sonnet}");
}

/// A provider that cannot be reached: 502 in the client's format, naming the provider,
/// and nothing reserved or charged.
#[tokio::test]
async fn an_unreachable_provider_is_a_502_that_costs_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let extra = format!("[[provider]]\nname = \"groq\"\nbase_url = \"http://{closed}/v1\"\napi_key = \"gsk-test\"\n");
    let gw = Gateway::start_with(MockConfig::default(), &extra).await;
    let (id, key) = gw.key(json!({"name": "u", "spend_limit": {"amount": "1", "cycle": "daily"}})).await;
    let r = gw.call("/v1/chat/completions", &key, Gateway::chat("openai/gpt-oss-20b", "hi")).await;
    assert_eq!(r.status, 502, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("could not reach provider groq"), "{message}");
    assert!(!message.contains("gsk-test"), "no credential in errors");
    let entry = gw.state.keys.by_id(&spendgate_core::SpendKeyId::new(id.clone())).unwrap();
    let held = {
        let slot = entry.lock();
        (slot.meter.reserved(), slot.meter.in_flight())
    };
    assert_eq!(held, (spendgate_core::Usd::ZERO, 0), "the reservation was released");
    assert_eq!(gw.get_key(&id).await["total_requests"], 0, "nothing reached a provider");
}
