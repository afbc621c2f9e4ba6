//! The Redis scripts follow the same rules as spendgate-core's `Meter`: one random
//! sequence of admissions, settlements, releases and clock jumps (across days, weeks,
//! months; with rate, request and spend limits of every cycle) gives the same decisions,
//! headroom and usage on both. Needs PostgreSQL and Redis (skipped without them, failed
//! under CI=true).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spendgate_core::meter::{Admission, CostBound, Meter, ReservationPolicy};
use spendgate_core::{
    Action, Catalog, Cycle, KeyStatus, RateLimit, RequestLimit, SpendKey, SpendKeyId, SpendLimit, Timestamp, Usd,
    Wallet, WalletId, WalletKey, WalletKeyId, WireFormat,
};
use spendgate_server::counters::shared::{Settled, Shared, SharedConfig};
use spendgate_server::counters::{AdmitError, Hold};
use spendgate_server::gateway::keys::Keys;
use spendgate_server::state::Clock;
use spendgate_store::testing::{TestDatabase, services_required};
use std::sync::Arc;

struct Fixed(Timestamp);

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// xorshift64*: a fixed sequence, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn key(n: u8, spend: Option<SpendLimit>, requests: Option<RequestLimit>, rate: Option<RateLimit>) -> SpendKey {
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    SpendKey {
        id: SpendKeyId::new(format!("key_eq{n}")),
        wallet_id: WalletId::new("wal_eq"),
        name: format!("k{n}"),
        status: KeyStatus::Active,
        request_shape: WireFormat::OpenAi,
        allowed_models: None,
        allowed_providers: None,
        spend_limit: spend,
        request_limit: requests,
        rate_limit: rate,
        expires_at: None,
        key_hash: spendgate_core::KeyHash([n; 32]),
        key_preview: "lava_sk_x****".into(),
        created_at: now,
        updated_at: now,
        revoked_at: None,
        version: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_scripts_decide_as_the_meter_does() {
    let Some(db) = TestDatabase::create().await else { return };
    let redis_url = std::env::var("SPENDGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis =
        match redis::Client::open(format!("{redis_url}/15").as_str()).unwrap().get_multiplexed_async_connection().await
        {
            Ok(c) => c,
            Err(e) if services_required() => panic!("CI=true but Redis at {redis_url} is not reachable: {e}"),
            Err(_) => return,
        };
    let _: () = redis::cmd("FLUSHDB").query_async(&mut redis.clone()).await.unwrap();
    let namespace = format!("sgeq{}", std::process::id());
    let store = spendgate_store::open(&db.url).await.unwrap();
    let start = Timestamp::parse("2026-01-28T22:00:00Z").unwrap();
    let wallet = Wallet { id: WalletId::new("wal_eq"), name: "eq".into(), created_at: start };
    let wk = WalletKey {
        id: WalletKeyId::new("wk_eq"),
        wallet_id: wallet.id.clone(),
        name: "k".into(),
        key_hash: spendgate_core::KeyHash([0; 32]),
        key_preview: "p".into(),
        created_at: start,
        revoked_at: None,
    };
    let operator = spendgate_server::auth::Principal::operator(wallet.id.clone());
    let audit = |action, target: &str| operator.audit(action, target, serde_json::json!({}), start).unwrap();
    store.create_wallet(&wallet, &wk, &audit(Action::WalletCreated, wallet.id.as_str())).await.unwrap();
    let usd = |s: &str| Usd::parse(s).unwrap();
    let keys = [
        key(1, Some(SpendLimit { amount: usd("0.05"), cycle: Cycle::Daily }), None, None),
        key(
            2,
            Some(SpendLimit { amount: usd("0.2"), cycle: Cycle::Weekly }),
            Some(RequestLimit { count: 40, cycle: Cycle::Monthly }),
            None,
        ),
        key(
            3,
            Some(SpendLimit { amount: usd("0.3"), cycle: Cycle::Monthly }),
            None,
            Some(RateLimit { rpm: 30, burst: Some(5) }),
        ),
        key(
            4,
            Some(SpendLimit { amount: usd("0.1"), cycle: Cycle::Total }),
            Some(RequestLimit { count: 25, cycle: Cycle::Daily }),
            Some(RateLimit { rpm: 120, burst: None }),
        ),
        key(
            5,
            None,
            Some(RequestLimit { count: 30, cycle: Cycle::Weekly }),
            Some(RateLimit { rpm: 600, burst: Some(3) }),
        ),
    ];
    let memory = Arc::new(Keys::default());
    for k in &keys {
        store.insert_spend_key(k, &audit(Action::SpendKeyCreated, k.id.as_str())).await.unwrap();
        memory.put_new(k.clone());
    }
    let config = SharedConfig { url: format!("{redis_url}/15"), namespace: namespace.clone(), fail_open: false };
    let shared = Shared::start(&config, store.clone(), memory.clone(), Arc::new(Fixed(start))).await.unwrap();
    let epoch: String =
        redis::cmd("GET").arg(format!("{namespace}:1:epoch")).query_async(&mut redis.clone()).await.unwrap();

    let prices = Catalog::builtin().model("gpt-4o-mini").unwrap().prices;
    let mut meters: Vec<Meter> = keys.iter().map(|_| Meter::default()).collect();
    // Admissions open on both sides: (key index, meter's admission, Redis's admission).
    let mut open: Vec<(usize, Admission, Admission)> = Vec::new();
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let mut now = start;
    let (mut admitted, mut refused, mut lowered) = (0, 0, 0);
    for step in 0..1500 {
        match rng.below(10) {
            // Time passes: a little, or across a day, week or month boundary.
            0 => {
                let jump = [250, 1_000, 2_100, 60_000, 3_600_000, 86_400_000, 7 * 86_400_000][rng.below(7) as usize];
                now = now.plus_millis(jump);
            }
            // Settle or release an open request on both sides.
            1..=3 if !open.is_empty() => {
                let (i, a, b) = open.swap_remove(rng.below(open.len() as u64) as usize);
                assert_eq!(a.reserved, b.reserved);
                let release = rng.below(5) == 0;
                let cost = Usd::from_nanos(a.reserved.nanos() * rng.below(101) as i64 / 100);
                let charge = (!release).then_some((cost, b.at));
                if release {
                    meters[i].release(&a);
                } else {
                    meters[i].settle(a, cost);
                }
                let hold = Hold::Shared { in_redis: true, generation: 1 };
                let item = Settled { entry: None, key_id: keys[i].id.clone(), release: Some((b, hold)), charge };
                shared.settle(vec![item], &epoch).await;
            }
            // A request arrives.
            _ => {
                let i = rng.below(keys.len() as u64) as usize;
                let k = Arc::new(keys[i].clone());
                let bound = CostBound {
                    input_tokens: rng.below(4000),
                    max_output_tokens: [0, 16, 500, 4000, 16_000][rng.below(5) as usize],
                    choices: 1 + rng.below(2),
                    prices,
                };
                let local = meters[i].admit(&k, &bound, ReservationPolicy::Strict, now);
                let entry = memory.by_id(&k.id).unwrap();
                let remote = shared.admit(&entry, &k, &bound, ReservationPolicy::Strict, now).await;
                match (local, remote) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(
                            (a.reserved, a.lowered_max_tokens),
                            (b.admission.reserved, b.admission.lowered_max_tokens),
                            "step {step}"
                        );
                        assert_eq!(meters[i].headroom(&k, now), b.headroom, "headroom, step {step}");
                        admitted += 1;
                        lowered += usize::from(a.lowered_max_tokens.is_some());
                        open.push((i, a, b.admission));
                    }
                    (Err(a), Err(AdmitError::Refused(b))) => {
                        assert_eq!(a, b, "step {step}");
                        refused += 1;
                    }
                    (a, b) => panic!("step {step}, key {}: meter {a:?}, redis {b:?}", i + 1),
                }
            }
        }
    }
    // The wallet API's figures agree too.
    for (i, k) in keys.iter().enumerate() {
        let from_redis = shared.usage(&[k], now).await.pop().unwrap();
        assert_eq!(meters[i].usage(k, now), from_redis, "usage of key {}", i + 1);
    }
    println!(
        "meter and Redis agreed on {admitted} admissions ({lowered} with max tokens lowered) and {refused} refusals"
    );
    assert!(admitted > 300 && refused > 100 && lowered > 0, "the sequence exercised every path");
}

/// A settlement whose answer was lost (Redis ran the script, the connection was cut
/// before the reply) is sent again with the same token: it is applied once.
#[tokio::test]
async fn a_settlement_sent_twice_is_applied_once() {
    let redis_url = std::env::var("SPENDGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut conn =
        match redis::Client::open(format!("{redis_url}/14").as_str()).unwrap().get_multiplexed_async_connection().await
        {
            Ok(c) => c,
            Err(e) if services_required() => panic!("CI=true but Redis at {redis_url} is not reachable: {e}"),
            Err(_) => return,
        };
    let ns = format!("sgonce{}", std::process::id());
    let (epoch, held, key) = (format!("{ns}:epoch"), format!("{ns}:held"), format!("{ns}:k:key_once"));
    let _: () = redis::cmd("SET").arg(&epoch).arg("e1").query_async(&mut conn).await.unwrap();
    let script = redis::Script::new(include_str!("../src/counters/scripts/settle.lua"));
    let settle = async |conn: &mut redis::aio::MultiplexedConnection, token: &str| -> i64 {
        script
            .key(&epoch)
            .key(&held)
            .key(format!("{ns}:settled:{token}"))
            .key(&key)
            .arg("e1")
            .arg(40)
            .arg("key_once")
            .arg(0)
            .arg(0)
            .arg(20_000)
            .arg(1_500)
            .arg(1)
            .arg(1_700_000_000_000i64)
            .invoke_async(conn)
            .await
            .unwrap()
    };
    let totals = async |conn: &mut redis::aio::MultiplexedConnection| -> (i64, i64) {
        let v: Vec<Option<i64>> = redis::cmd("HMGET").arg(&key).arg("ts").arg("tr").query_async(conn).await.unwrap();
        (v[0].unwrap_or(0), v[1].unwrap_or(0))
    };
    assert_eq!(settle(&mut conn, "t1").await, 1);
    assert_eq!(totals(&mut conn).await, (1_500, 1));
    assert_eq!(settle(&mut conn, "t1").await, 1, "the retry is answered as done");
    assert_eq!(totals(&mut conn).await, (1_500, 1), "and changes nothing");
    assert_eq!(settle(&mut conn, "t2").await, 1);
    assert_eq!(totals(&mut conn).await, (3_000, 2), "another chunk counts");
    let ttl: i64 = redis::cmd("TTL").arg(format!("{ns}:settled:t1")).query_async(&mut conn).await.unwrap();
    assert!((1..=86_400).contains(&ttl), "tokens expire: {ttl}");
    let _: () = redis::cmd("DEL")
        .arg(&epoch)
        .arg(&key)
        .arg(format!("{ns}:settled:t1"))
        .arg(format!("{ns}:settled:t2"))
        .query_async(&mut conn)
        .await
        .unwrap();
}
