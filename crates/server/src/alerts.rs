//! Budget alerts: a background task that, every `alerts.check_interval_ms`, checks the
//! keys used since its last round (and keys that just expired) against the wallets'
//! webhooks, stores each event due as a delivery (once per webhook and event: see
//! `spendgate_core::alert::due`), and sends the deliveries that are due, signed, retrying
//! failures with backoff. Deliveries live in the store: none is lost on a restart, and
//! in cluster mode each is claimed by one instance at a time.

use crate::gateway::upstream::{HttpClient, http_client};
use crate::state::AppState;
use crate::wallet_api::views::SpendKeyView;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use serde_json::json;
use spendgate_core::alert::{self, AlertEvent, Delivery, DeliveryId, DeliveryStatus, Due, Webhook};
use spendgate_core::{KeyUsage, SpendKey, SpendKeyId, Timestamp};
use spendgate_store::StoreError;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// Deliveries sent per round at most (the rest wait for the next).
const BATCH: u32 = 64;

/// The keys used since the last round (their records written), to check.
#[derive(Default)]
pub struct Touched(Mutex<HashSet<SpendKeyId>>);

impl Touched {
    pub fn add<'a>(&self, ids: impl IntoIterator<Item = &'a SpendKeyId>) {
        let mut set = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        set.extend(ids.into_iter().cloned());
    }

    fn take(&self) -> HashSet<SpendKeyId> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Starts the alert task on the current runtime.
pub fn start(state: AppState) {
    tokio::spawn(async move {
        let client = http_client(state.config.alerts.timeout);
        // The first round looks at every key of the wallets with webhooks (an event
        // whose check a stop interrupted is found then); later ones at keys used since.
        let mut first = true;
        let mut expired_after = Timestamp::EPOCH;
        loop {
            match round(&state, &client, first, expired_after).await {
                Ok(now) => {
                    first = false;
                    expired_after = now;
                }
                Err(e) => tracing::warn!(error = %e, "budget alerts: the store failed; retrying next round"),
            }
            tokio::time::sleep(state.config.alerts.check_interval).await;
        }
    });
}

/// One round: find the events due, then send what is due. Returns the time it checked at.
async fn round(
    state: &AppState,
    client: &HttpClient,
    all: bool,
    expired_after: Timestamp,
) -> Result<Timestamp, StoreError> {
    let now = state.now();
    let touched = state.alerts.take();
    let webhooks = match state.store.webhooks(None).await {
        Ok(w) => w,
        Err(e) => {
            state.alerts.add(&touched);
            return Err(e);
        }
    };
    if webhooks.is_empty() {
        // Nothing to tell anyone (and no delivery of a deleted webhook is sent).
        return Ok(now);
    }
    if let Err(e) = find_due(state, &webhooks, &touched, all, expired_after, now).await {
        // Looked at again next round.
        state.alerts.add(&touched);
        return Err(e);
    }
    send_due(state, client, now).await?;
    Ok(now)
}

/// Stores the deliveries due for the keys used (`touched`), those that expired since
/// `expired_after`, and with `all` every key of the wallets with webhooks.
async fn find_due(
    state: &AppState,
    webhooks: &[Webhook],
    touched: &HashSet<SpendKeyId>,
    all: bool,
    expired_after: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut keys: HashMap<SpendKeyId, SpendKey> = HashMap::new();
    if all {
        let wallets: HashSet<_> = webhooks.iter().map(|w| w.wallet_id.clone()).collect();
        for wallet in wallets {
            let mut before = None;
            loop {
                let page = state.store.list_spend_keys(&wallet, before, 500).await?;
                before = page.last().map(|l| l.seq);
                let done = page.len() < 500;
                keys.extend(page.into_iter().map(|l| (l.key.id.clone(), l.key)));
                if done {
                    break;
                }
            }
        }
    }
    for id in touched {
        if !keys.contains_key(id)
            && let Some(key) = state.store.spend_key_by_id(id).await?
        {
            keys.insert(id.clone(), key);
        }
    }
    for key in state.store.keys_expired_between(expired_after, now).await? {
        keys.insert(key.id.clone(), key);
    }
    let keys: Vec<SpendKey> = keys.into_values().filter(|k| webhooks.iter().any(|w| w.covers(k))).collect();
    let refs: Vec<&SpendKey> = keys.iter().collect();
    let usages = crate::counters::usage(state, &refs).await;
    for (key, usage) in keys.iter().zip(&usages) {
        for webhook in webhooks.iter().filter(|w| w.covers(key)) {
            for due in alert::due(webhook, key, usage, now) {
                let delivery = new_delivery(webhook, due.event, &due.dedup, now, |id| {
                    key_event_payload(id, &due, key, usage, now)
                })?;
                if state.store.enqueue_delivery(&delivery).await? {
                    tracing::info!(webhook = %webhook.id, key = %key.id, event = due.event.as_str(),
                        threshold = due.threshold, "budget alert due");
                }
            }
        }
    }
    Ok(())
}

/// A pending delivery of `event` to `webhook`, its body made by `payload` from its id.
pub fn new_delivery(
    webhook: &Webhook,
    event: AlertEvent,
    dedup: &str,
    now: Timestamp,
    payload: impl FnOnce(&DeliveryId) -> serde_json::Value,
) -> Result<Delivery, StoreError> {
    let entropy = crate::random::bytes().map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    let id = DeliveryId::generate(entropy);
    let payload = payload(&id).to_string();
    Ok(Delivery {
        id,
        webhook_id: webhook.id.clone(),
        wallet_id: webhook.wallet_id.clone(),
        dedup: dedup.to_string(),
        event,
        payload,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: Some(now),
        last_status: None,
        last_error: None,
        created_at: now,
        delivered_at: None,
    })
}

/// `{id, type, created_at, data: {spend_key, threshold_percent?, cycle_start?}}`: the key
/// as the wallet API shows it (no secret), with its figures at the time.
fn key_event_payload(
    id: &DeliveryId,
    due: &Due,
    key: &SpendKey,
    usage: &KeyUsage,
    now: Timestamp,
) -> serde_json::Value {
    let mut data = json!({ "spend_key": SpendKeyView::new(key, usage, None) });
    if let Some(t) = due.threshold {
        data["threshold_percent"] = t.into();
    }
    if let Some(start) = due.cycle_start {
        data["cycle_start"] = start.to_string().into();
    }
    json!({ "id": id.as_str(), "type": due.event.as_str(), "created_at": now.to_string(), "data": data })
}

/// Sends the deliveries due (claimed first, so no other instance sends them too) and
/// writes how each went.
async fn send_due(state: &AppState, client: &HttpClient, now: Timestamp) -> Result<(), StoreError> {
    let policy = &state.config.alerts;
    let lease = now.plus_millis(i64::try_from(policy.timeout.as_millis()).unwrap_or(i64::MAX).saturating_add(5_000));
    let due = state.store.claim_deliveries(now, lease, BATCH).await?;
    if due.is_empty() {
        return Ok(());
    }
    // Read after the claim: a webhook created since the round began is among them.
    let webhooks = state.store.webhooks(None).await?;
    let by_id: HashMap<_, _> = webhooks.iter().map(|w| (&w.id, w)).collect();
    let attempts =
        due.into_iter().filter_map(|d| Some((by_id.get(&d.webhook_id).copied()?, d))).map(|(w, d)| async move {
            let allowed = if policy.block_private_addresses { refuse_private(&w.url).await } else { Ok(()) };
            let outcome = match allowed {
                Ok(()) => send(client, w, &d, state.now(), policy.timeout).await,
                Err(e) => Err(e),
            };
            (w, d, outcome)
        });
    for (webhook, mut d, outcome) in futures_util::future::join_all(attempts).await {
        let at = state.now();
        d.attempts += 1;
        match outcome {
            Ok(status) if (200..300).contains(&status) => {
                d.status = DeliveryStatus::Delivered;
                d.last_status = Some(status);
                d.last_error = None;
                d.next_attempt_at = None;
                d.delivered_at = Some(at);
            }
            failed => {
                let (status, error) = match failed {
                    Ok(status) => (Some(status), format!("the receiver answered {status}")),
                    Err(e) => (None, e),
                };
                d.last_status = status;
                d.last_error = Some(error);
                if d.attempts >= policy.max_attempts {
                    d.status = DeliveryStatus::Failed;
                    d.next_attempt_at = None;
                } else {
                    let wait =
                        alert::backoff_ms(u64::try_from(policy.retry_base.as_millis()).unwrap_or(u64::MAX), d.attempts);
                    d.next_attempt_at = Some(at.plus_millis(i64::try_from(wait).unwrap_or(i64::MAX)));
                }
                tracing::warn!(webhook = %webhook.id, delivery = %d.id, attempts = d.attempts,
                    error = d.last_error.as_deref().unwrap_or(""), "alert delivery failed");
            }
        }
        let outcome = match d.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "retry",
            DeliveryStatus::Failed => "failed",
        };
        state.metrics.alert_attempt(d.event.as_str(), outcome);
        state.store.update_delivery(&d).await?;
    }
    Ok(())
}

/// With `alerts.block_private_addresses`: refuses a receiver whose host is, or resolves
/// to, an address of a private network (loopback, RFC 1918, CGNAT, link-local, unique
/// local), so that a wallet owner cannot make the gateway call into the operator's network.
async fn refuse_private(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| format!("could not resolve {host}: {e}"))?;
    for addr in addrs {
        if is_private(addr.ip()) {
            return Err(format!(
                "refused: {host} is a private address ({}) and alerts.block_private_addresses is on",
                addr.ip()
            ));
        }
    }
    Ok(())
}

fn is_private(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// One attempt: the receiver's status, or why there was none.
async fn send(
    client: &HttpClient,
    webhook: &Webhook,
    d: &Delivery,
    now: Timestamp,
    timeout: Duration,
) -> Result<u16, String> {
    let body = Bytes::from(d.payload.clone());
    let request = Request::post(webhook.url.as_str())
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("spendgate/", env!("CARGO_PKG_VERSION")))
        .header("spendgate-event", d.event.as_str())
        .header("spendgate-delivery", d.id.as_str())
        .header("spendgate-signature", alert::signature(&webhook.secret, now, &body))
        .body(Full::new(body))
        .map_err(|e| format!("bad request: {e}"))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| format!("could not reach the receiver: {e}"))?;
        let status = response.status().as_u16();
        // Read (a little of) the answer, so that the connection can be reused.
        let _ = Limited::new(response.into_body(), 64 * 1024).collect().await;
        Ok(status)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("the receiver did not answer within {} ms", timeout.as_millis())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_known() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "100.128.0.1", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_private_receiver_is_refused_by_name_and_by_address() {
        assert!(refuse_private("http://127.0.0.1:9/hook").await.unwrap_err().contains("private address"));
        assert!(refuse_private("http://localhost:9/hook").await.unwrap_err().contains("private address"));
        assert!(refuse_private("http://[::1]:9/hook").await.unwrap_err().contains("private address"));
    }
}
