//! The request-record writer's store side: batches of records written to SQLite (on
//! disk, WAL, `synchronous = FULL`) as the recorder writes them, per record. The
//! gateway writes a batch every 10 ms, so at 10,000 requests/s a batch is ~100 records.
//! `cargo bench -p spendgate-bench --bench record_writer`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spendgate_core::{SpendKeyId, Timestamp, TokenUsage, Usd, WalletId};
use spendgate_store::RequestRecord;

fn records(start: u64, n: u64) -> Vec<RequestRecord> {
    let at = Timestamp::parse("2026-12-01T12:00:00Z").unwrap();
    (start..start + n)
        .map(|i| RequestRecord {
            id: format!("req_{:016x}{i:012x}", 0x5eed_u64),
            key_id: SpendKeyId::new(format!("key_{:012}", i % 50)),
            wallet_id: WalletId::new("wal_bench"),
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            endpoint: "/v1/chat/completions".into(),
            status: 200,
            usage: TokenUsage { input: 8, cached_input: 0, cache_write: 0, output: 16 },
            cost: Usd::from_nanos(10_800),
            latency_ms: 1,
            created_at: at,
        })
        .collect()
}

fn write_batches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("spendgate-bench-records-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = rt.block_on(spendgate_store::open(&format!("sqlite://{}", dir.join("db").display()))).unwrap();
    let mut group = c.benchmark_group("record batch to SQLite");
    let mut next = 0;
    for n in [1u64, 16, 128, 256] {
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("{n} records"), |b| {
            b.iter(|| {
                let batch = records(next, n);
                next += n;
                rt.block_on(store.record_requests(&batch)).unwrap()
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, write_batches);
criterion_main!(benches);
