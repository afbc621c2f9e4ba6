//! The hot path's pure parts, timed: finding a key by the hash of its secret among 10k,
//! 100k and 1M keys, admission and settlement, reading usage from an answer and from a
//! stream, SSE framing, and translating a request. `cargo bench -p spendgate-bench`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use spendgate_core::meter::{CostBound, Meter, ReservationPolicy};
use spendgate_core::{
    Catalog, Cycle, KeyHash, KeyStatus, RateLimit, RequestLimit, Secret, SpendKey, SpendKeyId, SpendLimit, Timestamp,
    Usd, WalletId, WireFormat,
};
use spendgate_server::gateway::keys::Keys;
use spendgate_wire::StreamUsage;
use std::hint::black_box;

fn key(i: u64) -> SpendKey {
    let now = Timestamp::parse("2026-12-01T00:00:00Z").unwrap();
    let mut entropy = [0u8; 32];
    entropy[..8].copy_from_slice(&i.to_le_bytes());
    let secret = Secret::generate("lava_sk_", entropy);
    SpendKey {
        id: SpendKeyId::new(format!("key_{i:012}")),
        wallet_id: WalletId::new("wal_bench"),
        name: format!("key {i}"),
        status: KeyStatus::Active,
        request_shape: WireFormat::OpenAi,
        allowed_models: None,
        allowed_providers: None,
        spend_limit: Some(SpendLimit { amount: Usd::parse("50").unwrap(), cycle: Cycle::Monthly }),
        request_limit: Some(RequestLimit { count: 1_000_000, cycle: Cycle::Daily }),
        rate_limit: Some(RateLimit { rpm: 6000, burst: Some(100) }),
        expires_at: None,
        key_hash: secret.hash(),
        key_preview: secret.preview("lava_sk_"),
        created_at: now,
        updated_at: now,
        revoked_at: None,
        version: 1,
    }
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("key lookup by hash");
    for n in [10_000u64, 100_000, 1_000_000] {
        let keys = Keys::default();
        for i in 0..n {
            keys.put_new(key(i));
        }
        let wanted: Vec<KeyHash> = (0..1024).map(|i| key(i * (n / 1024)).key_hash).collect();
        let mut i = 0;
        group.bench_function(format!("{n} keys"), |b| {
            b.iter(|| {
                i = (i + 1) % wanted.len();
                black_box(keys.find(&wanted[i]).is_some())
            })
        });
    }
    group.finish();
}

fn admission(c: &mut Criterion) {
    let k = key(1);
    let prices = Catalog::builtin().model("gpt-4o-mini").unwrap().prices;
    let bound = CostBound { input_tokens: 2_000, max_output_tokens: 1_000, choices: 1, prices };
    let mut now = Timestamp::parse("2026-12-02T10:00:00Z").unwrap();
    let mut meter = Meter::default();
    c.bench_function("admit and settle (rate, request and spend limits)", |b| {
        b.iter(|| {
            // 100 ms apart: under the rate limit, and a new day (request cycle) before
            // the request limit; settled at no cost, so the spend limit never binds.
            now = now.plus_millis(100);
            let a = meter.admit(&k, &bound, ReservationPolicy::Strict, now).unwrap();
            meter.settle(a, Usd::ZERO);
        })
    });
}

fn metering(c: &mut Criterion) {
    let answer = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "lorem ipsum dolor sit amet ".repeat(20)}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 120, "total_tokens": 132, "prompt_tokens_details": {"cached_tokens": 0}}
    })
    .to_string()
    .into_bytes();
    c.bench_function("usage of a chat answer (passed on as it is)", |b| {
        b.iter(|| spendgate_wire::answer_usage(spendgate_wire::UsageFormat::Chat, black_box(&answer)).unwrap())
    });
    let request = serde_json::json!({
        "model": "gpt-4o-mini", "max_tokens": 256, "temperature": 0.7, "stream": true,
        "messages": [
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user", "content": "What is the weather in Paris? ".repeat(10)}
        ]
    })
    .to_string()
    .into_bytes();
    c.bench_function("read a chat request (model, limits, input bound)", |b| {
        b.iter(|| spendgate_wire::request::read(spendgate_wire::RequestKind::Chat, black_box(&request)).unwrap())
    });

    let mut stream = String::new();
    for i in 0..64 {
        stream.push_str(&format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    stream.push_str("data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":64}}\n\ndata: [DONE]\n\n");
    let bytes = stream.into_bytes();
    c.bench_function("SSE framing and usage watch, 66-event chat stream", |b| {
        b.iter_batched(
            spendgate_wire::openai::ChatStream::default,
            |mut watch| {
                let mut parser = spendgate_wire::sse::Parser::new();
                for chunk in bytes.chunks(512) {
                    parser.push(chunk);
                    black_box(parser.take(|e| match e.data.as_deref() {
                        Some(d) => !watch.observe(e.event.as_deref(), d).usage_only,
                        None => true,
                    }));
                }
                black_box(watch.reported())
            },
            BatchSize::SmallInput,
        )
    });
}

fn translation(c: &mut Criterion) {
    let chat = serde_json::json!({
        "model": "claude-sonnet-4-20250514", "max_tokens": 1024, "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user", "content": "What is the weather in Paris? ".repeat(10)},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C, clear"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    });
    c.bench_function("translate a chat request with tools to messages", |b| {
        b.iter(|| spendgate_wire::translate::chat_to_messages::request(black_box(&chat), 4096).unwrap())
    });
}

criterion_group!(benches, lookup, admission, metering, translation);
criterion_main!(benches);
