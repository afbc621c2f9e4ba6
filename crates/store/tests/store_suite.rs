#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store contract, written against the `Store` trait so that every backend runs
//! the same suite.

use spendgate_core::alert::{self, AlertEvent, Delivery, DeliveryId, DeliveryStatus, Webhook, WebhookId};
use spendgate_core::secret::{SPEND_KEY_PREFIX, WALLET_KEY_PREFIX};
use spendgate_core::{
    Action, Actor, AuditEntry, AuditId, Cycle, KeyStatus, RateLimit, RequestLimit, Secret, SpendKey, SpendKeyId,
    SpendLimit, Timestamp, TokenUsage, Usd, Wallet, WalletId, WalletKey, WalletKeyId, WireFormat,
};
use spendgate_store::testing::TestDatabase;
use spendgate_store::{RequestRecord, Session, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

static SEED: AtomicU8 = AtomicU8::new(1);

fn entropy<const N: usize>() -> [u8; N] {
    let s = SEED.fetch_add(1, Ordering::Relaxed);
    let mut b = [s; N];
    b[0] = b[0].wrapping_mul(31);
    b[N - 1] = (N as u8).wrapping_add(s);
    b
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn wallet(now: Timestamp) -> (Wallet, WalletKey, Secret) {
    let w = Wallet { id: WalletId::generate(entropy()), name: "team".into(), created_at: now };
    let secret = Secret::generate(WALLET_KEY_PREFIX, entropy());
    let k = WalletKey {
        id: WalletKeyId::generate(entropy()),
        wallet_id: w.id.clone(),
        name: "default".into(),
        key_hash: secret.hash(),
        key_preview: secret.preview(WALLET_KEY_PREFIX),
        created_at: now,
        revoked_at: None,
    };
    (w, k, secret)
}

fn spend_key(wallet: &WalletId, name: &str, now: Timestamp) -> SpendKey {
    let secret = Secret::generate(SPEND_KEY_PREFIX, entropy());
    SpendKey {
        id: SpendKeyId::generate(entropy()),
        wallet_id: wallet.clone(),
        name: name.into(),
        status: KeyStatus::Paused,
        request_shape: WireFormat::Anthropic,
        allowed_models: Some(vec!["gpt-4o-mini".into()]),
        allowed_providers: Some(vec!["openai".into(), "anthropic".into()]),
        spend_limit: Some(SpendLimit { amount: Usd::parse("50.00").unwrap(), cycle: Cycle::Monthly }),
        request_limit: Some(RequestLimit { count: 1000, cycle: Cycle::Daily }),
        rate_limit: Some(RateLimit { rpm: 60, burst: Some(10) }),
        expires_at: Some(t("2027-06-01T00:00:00Z")),
        key_hash: secret.hash(),
        key_preview: secret.preview(SPEND_KEY_PREFIX),
        created_at: now,
        updated_at: now,
        revoked_at: None,
        version: 1,
    }
}

fn audit(wallet: &WalletId, action: Action, target: &str) -> AuditEntry {
    AuditEntry {
        id: AuditId::generate(entropy()),
        wallet_id: wallet.clone(),
        actor: Actor::WalletKey(WalletKeyId::new("wk_auditor")),
        action,
        target_id: target.into(),
        changes: serde_json::json!({"name": {"from": "a", "to": "b"}}),
        ip: Some("192.0.2.7".into()),
        user_agent: Some("suite/1".into()),
        created_at: t("2026-11-23T10:00:00Z"),
    }
}

fn record(key: &SpendKey, at: &str, cost: &str) -> RequestRecord {
    RequestRecord {
        id: format!("req_{}", SEED.fetch_add(1, Ordering::Relaxed)),
        key_id: key.id.clone(),
        wallet_id: key.wallet_id.clone(),
        model: "gpt-4o-mini".into(),
        provider: "openai".into(),
        endpoint: "/v1/chat/completions".into(),
        status: 200,
        usage: TokenUsage { input: 10, cached_input: 5, cache_write: 0, output: 20 },
        cost: Usd::parse(cost).unwrap(),
        latency_ms: 12,
        created_at: t(at),
    }
}

async fn suite(store: Arc<dyn Store>) {
    let now = t("2026-11-23T10:00:00Z");
    store.ping().await.unwrap();

    // Wallets and their keys.
    let (wa, ka, secret_a) = wallet(now);
    let (wb, kb, _) = wallet(now);
    store.create_wallet(&wa, &ka, &audit(&wa.id, Action::WalletCreated, wa.id.as_str())).await.unwrap();
    store.create_wallet(&wb, &kb, &audit(&wb.id, Action::WalletCreated, wb.id.as_str())).await.unwrap();
    assert!(
        store.create_wallet(&wa, &ka, &audit(&wa.id, Action::WalletCreated, wa.id.as_str())).await.is_err(),
        "duplicate wallet refused"
    );
    let wallets = store.list_wallets().await.unwrap();
    assert!(wallets.contains(&wa) && wallets.contains(&wb));
    assert_eq!(store.wallet(&wa.id).await.unwrap(), Some(wa.clone()));
    assert_eq!(store.wallet_key_by_hash(&secret_a.hash()).await.unwrap(), Some(ka.clone()));
    assert_eq!(store.wallet_key_by_hash(&Secret::presented("lava_wk_nope").hash()).await.unwrap(), None);

    let (_, mut ka2, secret_a2) = wallet(now);
    ka2.wallet_id = wa.id.clone();
    store.insert_wallet_key(&ka2, &audit(&ka2.wallet_id, Action::WalletKeyCreated, ka2.id.as_str())).await.unwrap();
    assert_eq!(store.list_wallet_keys(&wa.id).await.unwrap().len(), 2);
    assert!(
        !store
            .revoke_wallet_key(&wb.id, &ka2.id, now, &audit(&wb.id, Action::WalletKeyRevoked, ka2.id.as_str()))
            .await
            .unwrap(),
        "other wallet cannot revoke"
    );
    assert!(
        store
            .revoke_wallet_key(&wa.id, &ka2.id, now, &audit(&wa.id, Action::WalletKeyRevoked, ka2.id.as_str()))
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_wallet_key(&wa.id, &ka2.id, now, &audit(&wa.id, Action::WalletKeyRevoked, ka2.id.as_str()))
            .await
            .unwrap(),
        "revoking twice is a no-op"
    );
    assert_eq!(store.wallet_key_by_hash(&secret_a2.hash()).await.unwrap(), None, "revoked key no longer authenticates");

    // Spend keys round-trip every field.
    let k1 = spend_key(&wa.id, "first", now);
    store.insert_spend_key(&k1, &audit(&k1.wallet_id, Action::SpendKeyCreated, k1.id.as_str())).await.unwrap();
    assert_eq!(store.spend_key(&wa.id, &k1.id).await.unwrap(), Some(k1.clone()));
    assert_eq!(store.spend_key(&wb.id, &k1.id).await.unwrap(), None, "wallet isolation");
    let mut bare = spend_key(&wa.id, "bare", now);
    bare.allowed_models = None;
    bare.allowed_providers = None;
    bare.spend_limit = None;
    bare.request_limit = None;
    bare.rate_limit = Some(RateLimit { rpm: 5, burst: None });
    bare.expires_at = None;
    bare.status = KeyStatus::Active;
    bare.request_shape = WireFormat::OpenAi;
    store.insert_spend_key(&bare, &audit(&bare.wallet_id, Action::SpendKeyCreated, bare.id.as_str())).await.unwrap();
    assert_eq!(store.spend_key(&wa.id, &bare.id).await.unwrap(), Some(bare.clone()));

    // Newest first with a cursor.
    for i in 0..5 {
        store
            .insert_spend_key(&spend_key(&wa.id, &format!("k{i}"), now), &audit(&wa.id, Action::SpendKeyCreated, "k"))
            .await
            .unwrap();
    }
    let page1 = store.list_spend_keys(&wa.id, None, 3).await.unwrap();
    let names: Vec<_> = page1.iter().map(|l| l.key.name.as_str()).collect();
    assert_eq!(names, ["k4", "k3", "k2"]);
    let page2 = store.list_spend_keys(&wa.id, Some(page1[2].seq), 3).await.unwrap();
    let names: Vec<_> = page2.iter().map(|l| l.key.name.as_str()).collect();
    assert_eq!(names, ["k1", "k0", "bare"]);
    assert!(store.list_spend_keys(&wb.id, None, 10).await.unwrap().is_empty());

    // Optimistic update; revoked keys disappear.
    let mut changed = k1.clone();
    changed.name = "renamed".into();
    changed.spend_limit = None;
    changed.version += 1;
    assert!(
        store
            .update_spend_key(
                &changed,
                k1.version,
                &audit(&changed.wallet_id, Action::SpendKeyUpdated, changed.id.as_str())
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_spend_key(
                &changed,
                k1.version,
                &audit(&changed.wallet_id, Action::SpendKeyUpdated, changed.id.as_str())
            )
            .await
            .unwrap(),
        "stale version refused"
    );
    assert_eq!(store.spend_key(&wa.id, &k1.id).await.unwrap(), Some(changed.clone()));
    let mut foreign = changed.clone();
    foreign.wallet_id = wb.id.clone();
    foreign.version += 1;
    assert!(
        !store
            .update_spend_key(
                &foreign,
                changed.version,
                &audit(&foreign.wallet_id, Action::SpendKeyUpdated, foreign.id.as_str())
            )
            .await
            .unwrap(),
        "other wallet cannot update"
    );
    let mut revoked = changed.clone();
    revoked.revoked_at = Some(now);
    revoked.version += 1;
    assert!(
        store
            .update_spend_key(
                &revoked,
                changed.version,
                &audit(&revoked.wallet_id, Action::SpendKeyUpdated, revoked.id.as_str())
            )
            .await
            .unwrap()
    );
    assert_eq!(store.spend_key(&wa.id, &k1.id).await.unwrap(), None);
    assert!(store.list_spend_keys(&wa.id, None, 100).await.unwrap().iter().all(|l| l.key.id != k1.id));
    let mut again = revoked.clone();
    again.version += 1;
    assert!(
        !store
            .update_spend_key(
                &again,
                revoked.version,
                &audit(&again.wallet_id, Action::SpendKeyUpdated, again.id.as_str())
            )
            .await
            .unwrap(),
        "revoked keys are final"
    );
    // A gateway's lookups find any key, revoked too, whatever its wallet.
    assert_eq!(store.spend_key_by_id(&k1.id).await.unwrap(), Some(revoked.clone()));
    assert_eq!(store.spend_key_by_hash(&revoked.key_hash).await.unwrap(), Some(revoked.clone()));
    assert_eq!(store.spend_key_by_hash(&bare.key_hash).await.unwrap(), Some(bare.clone()));
    assert_eq!(store.spend_key_by_id(&SpendKeyId::new("key_none")).await.unwrap(), None);
    assert_eq!(store.spend_key_by_hash(&Secret::presented("lava_sk_none").hash()).await.unwrap(), None);

    // Usage: totals and current-cycle figures from the records.
    let usage = store.key_usage(&bare.id, now, now).await.unwrap();
    assert_eq!(usage, Default::default());
    store
        .record_requests(&[
            record(&bare, "2026-10-31T23:59:59Z", "1.00"),
            record(&bare, "2026-11-01T00:00:00Z", "0.25"),
            record(&bare, "2026-11-23T09:00:00Z", "0.000125"),
        ])
        .await
        .unwrap();
    let month = Cycle::Monthly.window(now).start;
    let day = Cycle::Daily.window(now).start;
    let usage = store.key_usage(&bare.id, month, day).await.unwrap();
    assert_eq!(usage.total_spend, Usd::parse("1.250125").unwrap());
    assert_eq!(usage.current_spend, Usd::parse("0.250125").unwrap());
    assert_eq!(usage.total_requests, 3);
    assert_eq!(usage.current_requests, 1);
    assert_eq!(usage.last_used_at, Some(t("2026-11-23T09:00:00Z")));
    // What the gateway's meter starts from when it first meets the key: recent days
    // (oldest first) and lifetime totals.
    let history = store.key_history(&bare.id, t("2026-11-01T00:00:00Z").unix_day()).await.unwrap();
    let mine: Vec<_> = history.days.iter().map(|d| (d.key_id.clone(), d.day, d.spend, d.requests)).collect();
    assert_eq!(
        mine,
        vec![
            (bare.id.clone(), t("2026-11-01T00:00:00Z").unix_day(), Usd::parse("0.25").unwrap(), 1),
            (bare.id.clone(), t("2026-11-23T00:00:00Z").unix_day(), Usd::parse("0.000125").unwrap(), 1)
        ]
    );
    let total = history.total.unwrap();
    assert_eq!((total.spend, total.requests, total.last_used_at), (usage.total_spend, 3, usage.last_used_at));
    let recent = store.key_history(&bare.id, t("2026-11-02T00:00:00Z").unix_day()).await.unwrap();
    assert_eq!((recent.days.len(), recent.total.map(|t| t.requests)), (1, Some(3)), "totals are lifelong");
    let unused = store.key_history(&k1.id, 0).await.unwrap();
    assert_eq!(unused, spendgate_store::KeyHistory::default());

    let listed = store.list_requests(&wa.id, Some(&bare.id), None, 2).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].1.created_at, t("2026-11-23T09:00:00Z"), "newest first");
    assert_eq!(listed[0].1.usage, TokenUsage { input: 10, cached_input: 5, cache_write: 0, output: 20 });
    let rest = store.list_requests(&wa.id, None, Some(listed[1].0), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.cost, Usd::parse("1.00").unwrap());
    assert!(store.list_requests(&wb.id, None, None, 10).await.unwrap().is_empty(), "wallet isolation");

    // Usage by day and by model, for one key and for the wallet.
    let days = store
        .usage_by_day(
            &wa.id,
            Some(&bare.id),
            t("2026-10-01T00:00:00Z").unix_day(),
            t("2026-11-30T00:00:00Z").unix_day(),
        )
        .await
        .unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(
        (days[0].day, days[0].requests, days[0].tokens, days[0].spend),
        (t("2026-10-31T00:00:00Z").unix_day(), 1, 35, Usd::parse("1").unwrap())
    );
    let nov = store
        .usage_by_day(&wa.id, None, t("2026-11-01T00:00:00Z").unix_day(), t("2026-11-30T00:00:00Z").unix_day())
        .await
        .unwrap();
    assert_eq!(nov.iter().map(|d| d.requests).sum::<u64>(), 2);
    assert!(store.usage_by_day(&wb.id, None, 0, 100_000).await.unwrap().is_empty(), "wallet isolation");
    let models =
        store.usage_by_model(&wa.id, None, t("2026-11-01T00:00:00Z"), t("2026-12-01T00:00:00Z")).await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!((models[0].model.as_str(), models[0].requests, models[0].tokens), ("gpt-4o-mini", 2, 70));
    assert_eq!(models[0].spend, Usd::parse("0.250125").unwrap());

    // Dashboard sessions: live until expiry, revocation, or their wallet key's revocation.
    let session = Session {
        token_hash: Secret::presented("session-token").hash(),
        wallet_id: wa.id.clone(),
        wallet_key_id: ka.id.clone(),
        csrf_token: "csrf".into(),
        created_at: now,
        expires_at: now.plus_millis(60_000),
    };
    store
        .create_session(&session, &audit(&session.wallet_id, Action::SessionCreated, session.wallet_key_id.as_str()))
        .await
        .unwrap();
    assert_eq!(store.session(&session.token_hash, now).await.unwrap(), Some(session.clone()));
    assert_eq!(store.session(&session.token_hash, now.plus_millis(60_000)).await.unwrap(), None, "expired");
    assert_eq!(store.session(&Secret::presented("other").hash(), now).await.unwrap(), None);
    store
        .revoke_session(
            &session.token_hash,
            now,
            &audit(&session.wallet_id, Action::SessionRevoked, session.wallet_key_id.as_str()),
        )
        .await
        .unwrap();
    assert_eq!(store.session(&session.token_hash, now).await.unwrap(), None, "revoked");
    let second =
        Session { token_hash: Secret::presented("second").hash(), wallet_key_id: ka2.id.clone(), ..session.clone() };
    store
        .create_session(&second, &audit(&second.wallet_id, Action::SessionCreated, second.wallet_key_id.as_str()))
        .await
        .unwrap();
    assert_eq!(store.session(&second.token_hash, now).await.unwrap(), None, "its wallet key was revoked");
    store.revoke_session(&session.token_hash, now, &audit(&wa.id, Action::SessionRevoked, "again")).await.unwrap();

    // The audit log holds an entry for each change that was made, none for a change
    // refused (duplicate, stale, foreign, already done), newest first, per wallet.
    let log = store.audit_log(&wa.id, None, None, 100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|(_, e)| e.action.as_str()).collect();
    let mut expected = vec![
        "dashboard_session.created",
        "dashboard_session.revoked",
        "dashboard_session.created",
        "spend_key.updated",
        "spend_key.updated",
    ];
    expected.extend(["spend_key.created"; 7]);
    expected.extend(["wallet_key.revoked", "wallet_key.created", "wallet.created"]);
    assert_eq!(actions, expected);
    assert!(log.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    let (_, first) = log.last().unwrap();
    assert_eq!(first.changes, serde_json::json!({"name": {"from": "a", "to": "b"}}));
    assert_eq!((first.ip.as_deref(), first.user_agent.as_deref()), (Some("192.0.2.7"), Some("suite/1")));
    assert_eq!(first.actor, Actor::WalletKey(WalletKeyId::new("wk_auditor")));
    let of_wb = store.audit_log(&wb.id, None, None, 100).await.unwrap();
    assert_eq!(of_wb.iter().map(|(_, e)| e.action).collect::<Vec<_>>(), [Action::WalletCreated]);
    let of_k1 = store.audit_log(&wa.id, Some(k1.id.as_str()), None, 100).await.unwrap();
    assert_eq!(of_k1.len(), 3, "k1: created, updated, revoked");
    let page = store.audit_log(&wa.id, None, Some(log[2].0), 2).await.unwrap();
    assert_eq!(page, log[3..5].to_vec());

    // A retried batch (or a record listed twice) counts once.
    let first = record(&bare, "2026-11-23T09:00:00Z", "1");
    let fresh = record(&bare, "2026-11-23T09:30:00Z", "2");
    assert_eq!(store.record_requests(std::slice::from_ref(&first)).await.unwrap().fresh, [true]);
    let again = store.record_requests(&[fresh.clone(), first.clone(), fresh]).await.unwrap();
    assert_eq!(again.fresh, [true, false, false]);
    let after = store.key_usage(&bare.id, month, day).await.unwrap();
    assert_eq!(after.total_requests, usage.total_requests + 2);
    assert_eq!(after.total_spend, usage.total_spend + Usd::parse("3").unwrap());
    assert_eq!(store.list_requests(&wa.id, Some(&bare.id), None, 100).await.unwrap().len(), 5);

    webhooks(&*store, &wa.id, &wb.id).await;
}

/// Webhooks and their deliveries: one per webhook and event, claimed by one sender at a
/// time, none for a deleted webhook.
async fn webhooks(store: &dyn Store, wa: &WalletId, wb: &WalletId) {
    let now = t("2026-11-23T12:00:00Z");
    let hook = |wallet: &WalletId, key: Option<&SpendKeyId>| Webhook {
        id: WebhookId::generate(entropy()),
        wallet_id: wallet.clone(),
        spend_key_id: key.cloned(),
        url: "https://hooks.example.com/spendgate".into(),
        secret: alert::signing_secret(entropy()),
        events: vec![AlertEvent::SpendThreshold, AlertEvent::KeyExpired],
        thresholds: vec![50, 100],
        created_at: now,
    };
    let a = hook(wa, None);
    let a_key = hook(wa, Some(&SpendKeyId::new("key_x")));
    let b = hook(wb, None);
    for w in [&a, &a_key, &b] {
        store.insert_webhook(w, &audit(&w.wallet_id, Action::WebhookCreated, w.id.as_str())).await.unwrap();
    }
    assert_eq!(store.webhooks(Some(wa)).await.unwrap(), [a.clone(), a_key.clone()]);
    assert_eq!(store.webhooks(None).await.unwrap().len(), 3);
    assert_eq!(store.audit_log(wa, Some(a.id.as_str()), None, 10).await.unwrap().len(), 1);

    let delivery = |w: &Webhook, dedup: &str| Delivery {
        id: DeliveryId::generate(entropy()),
        webhook_id: w.id.clone(),
        wallet_id: w.wallet_id.clone(),
        dedup: dedup.into(),
        event: AlertEvent::SpendThreshold,
        payload: r#"{"type":"spend.threshold"}"#.into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: Some(now),
        last_status: None,
        last_error: None,
        created_at: now,
        delivered_at: None,
    };
    let first = delivery(&a, "spend:key_1:50");
    assert!(store.enqueue_delivery(&first).await.unwrap());
    // The same event again (another check, another instance): not stored twice.
    assert!(!store.enqueue_delivery(&delivery(&a, "spend:key_1:50")).await.unwrap());
    // The same event for another webhook is that webhook's own.
    let other = delivery(&a_key, "spend:key_1:50");
    assert!(store.enqueue_delivery(&other).await.unwrap());
    let later = Delivery { next_attempt_at: Some(now.plus_millis(60_000)), ..delivery(&b, "spend:key_2:50") };
    assert!(store.enqueue_delivery(&later).await.unwrap());

    // Due ones are claimed, oldest first, once: a second claim meanwhile gets none.
    let lease = now.plus_millis(30_000);
    let claimed = store.claim_deliveries(now, lease, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|d| &d.id).collect::<Vec<_>>(), [&first.id, &other.id]);
    assert!(claimed.iter().all(|d| d.next_attempt_at == Some(lease)));
    assert!(store.claim_deliveries(now.plus_millis(1), lease, 10).await.unwrap().is_empty());

    // An attempt that failed, retried later; one that went through.
    let failed = Delivery {
        attempts: 1,
        next_attempt_at: Some(now.plus_millis(2_000)),
        last_status: Some(503),
        last_error: Some("503 Service Unavailable".into()),
        ..claimed[0].clone()
    };
    store.update_delivery(&failed).await.unwrap();
    let done = Delivery {
        status: DeliveryStatus::Delivered,
        attempts: 1,
        next_attempt_at: None,
        last_status: Some(200),
        delivered_at: Some(now.plus_millis(5)),
        ..claimed[1].clone()
    };
    store.update_delivery(&done).await.unwrap();
    let log = store.list_deliveries(wa, &a.id, None, 10).await.unwrap();
    assert_eq!(log.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), std::slice::from_ref(&failed));
    assert_eq!(store.list_deliveries(wa, &a_key.id, None, 10).await.unwrap()[0].1, done);
    // Another wallet's webhook shows nothing.
    assert!(store.list_deliveries(wb, &a.id, None, 10).await.unwrap().is_empty());
    // At its time the failed one is due again (the lease has passed), the later one too.
    let due = store.claim_deliveries(now.plus_millis(60_000), now.plus_millis(90_000), 10).await.unwrap();
    assert_eq!(due.iter().map(|d| &d.id).collect::<Vec<_>>(), [&failed.id, &later.id]);

    // A deleted webhook: gone from the lists, its pending deliveries not sent, its log kept.
    let gone = audit(wa, Action::WebhookDeleted, a.id.as_str());
    assert!(store.delete_webhook(wa, &a.id, now, &gone).await.unwrap());
    assert!(!store.delete_webhook(wa, &a.id, now, &gone).await.unwrap(), "twice");
    assert!(!store.delete_webhook(wb, &a_key.id, now, &gone).await.unwrap(), "another wallet's");
    assert_eq!(store.webhooks(Some(wa)).await.unwrap(), std::slice::from_ref(&a_key));
    assert!(
        store
            .claim_deliveries(now.plus_millis(100_000), now.plus_millis(130_000), 10)
            .await
            .unwrap()
            .iter()
            .all(|d| d.webhook_id != a.id)
    );
    assert_eq!(store.list_deliveries(wa, &a.id, None, 10).await.unwrap().len(), 1);

    // Keys that expired in a window, of wallets with webhooks.
    let mut expiring = spend_key(wa, "expiring", now);
    expiring.expires_at = Some(now.plus_millis(10));
    store.insert_spend_key(&expiring, &audit(wa, Action::SpendKeyCreated, expiring.id.as_str())).await.unwrap();
    let found = store.keys_expired_between(now, now.plus_millis(10)).await.unwrap();
    assert_eq!(found.iter().map(|k| &k.id).collect::<Vec<_>>(), [&expiring.id]);
    assert!(store.keys_expired_between(now.plus_millis(10), now.plus_millis(20)).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_store_meets_the_contract() {
    let dir = std::env::temp_dir().join(format!("spendgate-store-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("nested").join("spendgate.db");
    let store = spendgate_store::open(&format!("sqlite://{}", path.display())).await.unwrap();
    suite(store).await;
    // Reopening migrates nothing and keeps everything.
    let reopened = spendgate_store::open(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(reopened.list_wallets().await.unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_store_meets_the_contract() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = spendgate_store::open(&db.url).await.unwrap();
    suite(store).await;
    // Reopening (another instance starting) migrates nothing and keeps everything.
    let reopened = spendgate_store::open(&db.url).await.unwrap();
    assert_eq!(reopened.list_wallets().await.unwrap().len(), 2);
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let Some(db) = TestDatabase::create().await else { return };
    let opens = (0..4).map(|_| spendgate_store::open(&db.url));
    for store in futures_util::future::join_all(opens).await {
        store.unwrap().ping().await.unwrap();
    }
}

/// The ledger and the shared counters' epoch: a rebuild excludes record writers, and a
/// batch reports the epoch it committed in.
#[tokio::test]
async fn counter_rebuilds_exclude_record_writers() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = spendgate_store::open(&db.url).await.unwrap();
    let now = t("2026-11-23T10:00:00Z");
    let (w, k, _) = wallet(now);
    store.create_wallet(&w, &k, &audit(&w.id, Action::WalletCreated, w.id.as_str())).await.unwrap();
    let key = spend_key(&w.id, "k", now);
    store.insert_spend_key(&key, &audit(&key.wallet_id, Action::SpendKeyCreated, key.id.as_str())).await.unwrap();
    let before = record(&key, "2026-11-23T09:00:00Z", "1");
    assert_eq!(store.record_requests(std::slice::from_ref(&before)).await.unwrap().epoch, "");
    assert_eq!(store.counter_epoch().await.unwrap(), "");

    let mut rebuild = store.begin_rebuild().await.unwrap();
    // A writer waits for the rebuild to end...
    let during = record(&key, "2026-11-23T09:30:00Z", "2");
    let writer = {
        let (store, during) = (store.clone(), during.clone());
        tokio::spawn(async move { store.record_requests(&[during]).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "a batch must not commit during a rebuild");
    assert_eq!(rebuild.epoch().await.unwrap(), "", "the first rebuild");
    assert_eq!(rebuild.key_versions().await.unwrap(), vec![(key.id.clone(), key.version)]);
    let totals = rebuild.usage_totals().await.unwrap();
    assert_eq!(
        (totals[0].spend, totals[0].requests),
        (Usd::parse("1").unwrap(), 1),
        "the rebuild sees the first batch only"
    );
    assert_eq!(rebuild.usage_days(0).await.unwrap().len(), 1);
    rebuild.commit("epoch-2").await.unwrap();
    // ...and then commits in the new epoch.
    assert_eq!(writer.await.unwrap().unwrap().epoch, "epoch-2");
    assert_eq!(store.counter_epoch().await.unwrap(), "epoch-2");
    assert_eq!(store.key_history(&key.id, 0).await.unwrap().total.unwrap().requests, 2);

    // Written again (a writer that never learnt its commit went through): each record
    // says the epoch it was committed in; a new one, and a repeat within the batch, none.
    let new = record(&key, "2026-11-23T09:45:00Z", "3");
    let again = store.record_requests(&[before, during, new.clone(), new]).await.unwrap();
    assert_eq!(again.fresh, [false, false, true, false]);
    assert_eq!(again.epoch, "epoch-2");
    assert_eq!(again.earlier, [Some(String::new()), Some("epoch-2".to_string()), None, None]);
    assert_eq!(store.key_history(&key.id, 0).await.unwrap().total.unwrap().requests, 3);
}

#[tokio::test]
async fn sqlite_has_no_counter_rebuilds() {
    let dir = std::env::temp_dir().join(format!("spendgate-store-rebuild-{}", std::process::id()));
    let store = spendgate_store::open(&format!("sqlite://{}", dir.join("s.db").display())).await.unwrap();
    let err = store.begin_rebuild().await.err().unwrap();
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    assert!(store.counter_epoch().await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unsupported_urls_are_named() {
    let err = spendgate_store::open("mysql://localhost/x").await.err().unwrap();
    assert!(err.to_string().contains("mysql://localhost/x"));
}
