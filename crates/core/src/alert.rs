//! Budget alerts: webhooks a wallet registers (for all its keys or one), the events
//! they are sent (a spend threshold crossed, the request limit reached, a key expired),
//! when an event is due, and how its delivery is signed. Which event fires for which key
//! and cycle is decided here, as a `dedup` string: the store keeps one delivery per
//! webhook and `dedup`, so an event is sent once however often, and on however many
//! instances, the check runs.

pub use crate::secret::{DeliveryId, WebhookId};

use crate::secret::base62;
use crate::spend_key::{FieldError, KeyUsage, SpendKey};
use crate::{SpendKeyId, Timestamp, WalletId};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The most webhooks a wallet may have.
pub const MAX_WEBHOOKS_PER_WALLET: usize = 20;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_THRESHOLDS: usize = 10;
pub const DEFAULT_THRESHOLDS: [u32; 3] = [50, 80, 100];
/// The prefix of a webhook's signing secret.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident = $name:literal),* $(,)?) => {
        /// What a webhook is told about.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AlertEvent {
            $($(#[$doc])* $variant),*
        }

        impl AlertEvent {
            pub const ALL: &'static [AlertEvent] = &[$(AlertEvent::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(AlertEvent::$variant => $name),*
                }
            }

            pub fn parse(s: &str) -> Option<AlertEvent> {
                match s {
                    $($name => Some(AlertEvent::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

events! {
    /// A key's spend in its spend-limit cycle reached one of the webhook's thresholds
    /// (percent of the limit).
    SpendThreshold = "spend.threshold",
    /// A key's requests in its request-limit cycle reached the limit.
    RequestLimitReached = "request_limit.reached",
    /// A key passed its `expires_at`.
    KeyExpired = "spend_key.expired",
    /// Sent on request (`POST /v1/webhooks/{id}/test`), to try a receiver.
    Test = "webhook.test",
}

/// The events a webhook may subscribe to (all but [`AlertEvent::Test`], which every
/// webhook is sent on request).
pub fn subscribable() -> impl Iterator<Item = AlertEvent> {
    AlertEvent::ALL.iter().copied().filter(|e| *e != AlertEvent::Test)
}

/// A receiver of a wallet's alerts. (`Debug` leaves the secret out.)
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub wallet_id: WalletId,
    /// Only this key's events; `None`: every key of the wallet.
    pub spend_key_id: Option<SpendKeyId>,
    pub url: String,
    /// The HMAC key of the signatures (`whsec_...`). Kept, not hashed: the server signs
    /// with it. Shown to the owner once, at creation.
    pub secret: String,
    pub events: Vec<AlertEvent>,
    /// Percent of the spend limit, ascending, each 1..=100.
    pub thresholds: Vec<u32>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("wallet_id", &self.wallet_id)
            .field("spend_key_id", &self.spend_key_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("thresholds", &self.thresholds)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    pub fn covers(&self, key: &SpendKey) -> bool {
        key.wallet_id == self.wallet_id && self.spend_key_id.as_ref().is_none_or(|id| *id == key.id)
    }

    pub fn wants(&self, event: AlertEvent) -> bool {
        event == AlertEvent::Test || self.events.contains(&event)
    }
}

pub fn signing_secret(entropy: [u8; 32]) -> String {
    format!("{SIGNING_SECRET_PREFIX}{}", base62(&entropy))
}

/// A webhook's settings as its owner sends them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSpec {
    pub url: String,
    pub spend_key_id: Option<SpendKeyId>,
    pub events: Vec<AlertEvent>,
    pub thresholds: Vec<u32>,
}

const SPEC_FIELDS: [&str; 4] = ["url", "spend_key_id", "events", "thresholds"];

impl WebhookSpec {
    /// Parses `{url, spend_key_id?, events?, thresholds?}` (defaults: every event; 50,
    /// 80 and 100 percent).
    pub fn parse(body: &Value) -> Result<WebhookSpec, FieldError> {
        let obj = body.as_object().ok_or_else(|| FieldError::new("body", "must be a JSON object"))?;
        if let Some(unknown) = obj.keys().find(|k| !SPEC_FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                unknown.as_str(),
                format!("unknown field; the fields are {}", SPEC_FIELDS.join(", ")),
            ));
        }
        let url = match obj.get("url") {
            None => return Err(FieldError::new("url", "is required: where to POST the alerts (http:// or https://)")),
            Some(Value::String(u)) => parse_url(u)?,
            Some(_) => return Err(FieldError::new("url", "must be a string")),
        };
        let spend_key_id = match obj.get("spend_key_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.is_empty() => Some(SpendKeyId::new(id.as_str())),
            Some(_) => return Err(FieldError::new("spend_key_id", "must be a spend key's id, or null for every key")),
        };
        let events = match obj.get("events") {
            None | Some(Value::Null) => subscribable().collect(),
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let event = item.as_str().and_then(AlertEvent::parse).filter(|e| *e != AlertEvent::Test);
                    let event = event.ok_or_else(|| {
                        let names: Vec<&str> = subscribable().map(AlertEvent::as_str).collect();
                        FieldError::new(format!("events[{i}]"), format!("must be one of {}", names.join(", ")))
                    })?;
                    if !out.contains(&event) {
                        out.push(event);
                    }
                }
                out
            }
            Some(_) => return Err(FieldError::new("events", "must be a non-empty array of event names, or null")),
        };
        let thresholds = match obj.get("thresholds") {
            None | Some(Value::Null) => DEFAULT_THRESHOLDS.to_vec(),
            Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_THRESHOLDS => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let t = item.as_u64().filter(|t| (1..=100).contains(t)).ok_or_else(|| {
                        FieldError::new(format!("thresholds[{i}]"), "must be a whole percent from 1 to 100")
                    })?;
                    out.push(t as u32);
                }
                out.sort_unstable();
                out.dedup();
                out
            }
            Some(_) => {
                return Err(FieldError::new(
                    "thresholds",
                    format!("must be 1 to {MAX_THRESHOLDS} percents of the spend limit, like [50, 80, 100]"),
                ));
            }
        };
        Ok(WebhookSpec { url, spend_key_id, events, thresholds })
    }
}

fn parse_url(u: &str) -> Result<String, FieldError> {
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(FieldError::new("url", "must start with http:// or https://"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(FieldError::new("url", "must name a host (and no user or password)"));
    }
    if u.len() > MAX_URL_LEN {
        return Err(FieldError::new("url", format!("is {} characters; at most {MAX_URL_LEN}", u.len())));
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new("url", "must not contain spaces or control characters"));
    }
    Ok(u.to_string())
}

/// An event due for a key: what the delivery is keyed by (`dedup`), and its facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub event: AlertEvent,
    pub dedup: String,
    /// The threshold reached (spend events).
    pub threshold: Option<u32>,
    /// When the cycle the event belongs to started (spend and request events).
    pub cycle_start: Option<Timestamp>,
}

/// The events `webhook` is due for `key`, given its usage at `now`: each threshold its
/// spend reached in the current spend-limit cycle, the request limit if reached in the
/// current request-limit cycle, the expiry if passed since the webhook was made. A change of the limit counts as a
/// new limit (its thresholds fire anew).
pub fn due(webhook: &Webhook, key: &SpendKey, usage: &KeyUsage, now: Timestamp) -> Vec<Due> {
    let mut out = Vec::new();
    if !webhook.covers(key) || key.revoked_at.is_some() {
        return out;
    }
    if let Some(limit) = key.spend_limit
        && webhook.wants(AlertEvent::SpendThreshold)
        && limit.amount.nanos() > 0
    {
        let start = limit.cycle.window(now).start;
        let spent = i128::from(usage.current_spend.nanos()) * 100;
        for &t in &webhook.thresholds {
            if spent >= i128::from(limit.amount.nanos()) * i128::from(t) {
                out.push(Due {
                    event: AlertEvent::SpendThreshold,
                    dedup: format!("spend:{}:{t}:{}:{}", key.id, start.unix_millis(), limit.amount.nanos()),
                    threshold: Some(t),
                    cycle_start: Some(start),
                });
            }
        }
    }
    if let Some(limit) = key.request_limit
        && webhook.wants(AlertEvent::RequestLimitReached)
        && usage.current_requests >= limit.count
    {
        let start = limit.cycle.window(now).start;
        out.push(Due {
            event: AlertEvent::RequestLimitReached,
            dedup: format!("requests:{}:{}:{}", key.id, start.unix_millis(), limit.count),
            threshold: None,
            cycle_start: Some(start),
        });
    }
    // Expiries from the webhook's creation on (not every key that ever expired).
    if let Some(at) = key.expires_at
        && webhook.wants(AlertEvent::KeyExpired)
        && at <= now
        && at >= webhook.created_at
    {
        out.push(Due {
            event: AlertEvent::KeyExpired,
            dedup: format!("expired:{}:{}", key.id, at.unix_millis()),
            threshold: None,
            cycle_start: None,
        });
    }
    out
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet answered with a 2xx; tried again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One event for one webhook, and how sending it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub wallet_id: WalletId,
    pub dedup: String,
    pub event: AlertEvent,
    /// The JSON body sent, as sent.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    /// The receiver's HTTP status on the last attempt (none: no answer).
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// The `spendgate-signature` header of a delivery sent at `at`:
/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>`. A receiver
/// recomputes it, compares in constant time, and refuses an old `t` (replays).
pub fn signature(secret: &str, at: Timestamp, body: &[u8]) -> String {
    let t = at.unix_millis().div_euclid(1000);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// The wait before attempt `attempts + 1`: `base` doubled per attempt made, at most an hour.
pub fn backoff_ms(base_ms: u64, attempts: u32) -> u64 {
    base_ms.saturating_mul(1u64 << attempts.saturating_sub(1).min(20)).min(3_600_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spend_key::{RequestLimit, SpendLimit};
    use crate::{Cycle, Usd};
    use serde_json::json;

    fn key(limit: &str) -> SpendKey {
        SpendKey {
            spend_limit: Some(SpendLimit { amount: Usd::parse(limit).unwrap(), cycle: Cycle::Daily }),
            request_limit: Some(RequestLimit { count: 10, cycle: Cycle::Monthly }),
            ..crate::meter::tests::key()
        }
    }

    fn hook(key: Option<&str>) -> Webhook {
        Webhook {
            id: WebhookId::new("whk_1"),
            wallet_id: WalletId::new("wal_1"),
            spend_key_id: key.map(SpendKeyId::new),
            url: "http://127.0.0.1:9/".into(),
            secret: "whsec_x".into(),
            events: subscribable().collect(),
            thresholds: vec![50, 80, 100],
            created_at: Timestamp::EPOCH,
        }
    }

    fn spent(s: &str, requests: u64) -> KeyUsage {
        KeyUsage { current_spend: Usd::parse(s).unwrap(), current_requests: requests, ..KeyUsage::default() }
    }

    const NOW: Timestamp = Timestamp::from_unix_millis(1_780_000_000_000);

    #[test]
    fn thresholds_fire_at_their_percent_exactly_once_per_cycle_and_limit() {
        let (k, w) = (key("10.00"), hook(None));
        let thresholds =
            |s: &str| -> Vec<Option<u32>> { due(&w, &k, &spent(s, 0), NOW).into_iter().map(|d| d.threshold).collect() };
        assert!(thresholds("4.999999999").is_empty());
        assert_eq!(thresholds("5.00"), [Some(50)]);
        assert_eq!(thresholds("7.999999999"), [Some(50)]);
        assert_eq!(thresholds("8.00"), [Some(50), Some(80)]);
        assert_eq!(thresholds("10.00"), [Some(50), Some(80), Some(100)]);
        // The same threshold in the same cycle is the same event; the next day's is new.
        let today = due(&w, &k, &spent("5", 0), NOW);
        let again = due(&w, &k, &spent("6", 0), NOW.plus_millis(1000));
        let tomorrow = due(&w, &k, &spent("5", 0), NOW.plus_millis(86_400_000));
        assert_eq!(today[0].dedup, again[0].dedup);
        assert_ne!(today[0].dedup, tomorrow[0].dedup);
        // A new limit is a new event.
        assert_ne!(today[0].dedup, due(&w, &key("9.00"), &spent("5", 0), NOW)[0].dedup);
    }

    #[test]
    fn request_limit_and_expiry() {
        let (mut k, w) = (key("10"), hook(Some("key_1")));
        let events = |k: &SpendKey, requests| -> Vec<AlertEvent> {
            due(&w, k, &spent("0", requests), NOW).into_iter().map(|d| d.event).collect()
        };
        assert!(events(&k, 9).is_empty());
        assert_eq!(events(&k, 10), [AlertEvent::RequestLimitReached]);
        k.expires_at = Some(NOW.plus_millis(1));
        assert!(events(&k, 0).is_empty());
        k.expires_at = Some(NOW);
        assert_eq!(events(&k, 0), [AlertEvent::KeyExpired]);
        // A key that expired before the webhook was made is not news to it.
        let newer = Webhook { created_at: NOW.plus_millis(1), ..hook(None) };
        assert!(due(&newer, &k, &spent("0", 0), NOW.plus_millis(2)).is_empty());
        // Another key's webhook, an unsubscribed event, a revoked key: nothing.
        assert!(due(&hook(Some("key_2")), &k, &spent("10", 10), NOW).is_empty());
        let only_spend = Webhook { events: vec![AlertEvent::SpendThreshold], ..hook(None) };
        assert!(due(&only_spend, &k, &spent("0", 10), NOW).is_empty());
        k.revoked_at = Some(NOW);
        assert!(due(&w, &k, &spent("10", 10), NOW).is_empty());
    }

    #[test]
    fn specs_parse_with_defaults_and_name_bad_fields() {
        let s = WebhookSpec::parse(&json!({"url": "https://hooks.example.com/x"})).unwrap();
        assert_eq!(s.thresholds, [50, 80, 100]);
        assert_eq!(s.events.len(), 3);
        let s = WebhookSpec::parse(
            &json!({"url": "http://10.0.0.1:8080/a", "thresholds": [100, 25, 25], "events": ["spend.threshold"], "spend_key_id": "key_9"}),
        )
        .unwrap();
        assert_eq!(
            (s.thresholds, s.events, s.spend_key_id),
            (vec![25, 100], vec![AlertEvent::SpendThreshold], Some(SpendKeyId::new("key_9")))
        );
        for (body, param) in [
            (json!({}), "url"),
            (json!({"url": "ftp://x"}), "url"),
            (json!({"url": "http://"}), "url"),
            (json!({"url": "http://u:p@host/"}), "url"),
            (json!({"url": "http://h/", "thresholds": [0]}), "thresholds[0]"),
            (json!({"url": "http://h/", "thresholds": [101]}), "thresholds[0]"),
            (json!({"url": "http://h/", "thresholds": []}), "thresholds"),
            (json!({"url": "http://h/", "events": ["webhook.test"]}), "events[0]"),
            (json!({"url": "http://h/", "events": []}), "events"),
            (json!({"url": "http://h/", "spend_key_id": 5}), "spend_key_id"),
            (json!({"url": "http://h/", "extra": 1}), "extra"),
        ] {
            assert_eq!(WebhookSpec::parse(&body).unwrap_err().param, param, "{body}");
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_and_body() {
        // Computed independently: python3 -c 'import hmac, hashlib;
        // print(hmac.new(b"whsec_test", b"1700000000.{}", hashlib.sha256).hexdigest())'.
        let sig = signature("whsec_test", Timestamp::from_unix_millis(1_700_000_000_999), b"{}");
        assert_eq!(sig, "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!([1, 2, 3, 4].map(|a| backoff_ms(1000, a)), [1000, 2000, 4000, 8000]);
        assert_eq!(backoff_ms(1000, 40), 3_600_000);
    }
}
