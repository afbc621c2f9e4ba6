//! Row decoding and the spend-key column binding, shared by the SQLite and PostgreSQL
//! backends: both use the same column names and types (BIGINT instants in unix
//! milliseconds, nano-dollar integers, SHA-256 hashes as bytes, JSON name lists).

use crate::{DayTotal, Listed, ModelTotal, RequestRecord, Session, StoreError, UsageDay, UsageTotal};
use spendgate_core::alert::{AlertEvent, Delivery, DeliveryId, DeliveryStatus, Webhook, WebhookId};
use spendgate_core::{
    Action, Actor, AuditEntry, AuditId, Cycle, KeyHash, KeyStatus, KeyUsage, RateLimit, RequestLimit, SpendKey,
    SpendKeyId, SpendLimit, Timestamp, TokenUsage, Usd, Wallet, WalletId, WalletKey, WalletKeyId, WireFormat,
};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};
use std::str::FromStr;

/// The spend-key columns in table order; `seq` first, then what [`bind_spend_key`] binds.
pub(crate) const SPEND_KEY_COLUMNS: &str = "seq, id, wallet_id, name, status, request_shape, allowed_models, \
    allowed_providers, spend_limit_nanos, spend_limit_cycle, request_limit_count, request_limit_cycle, \
    rate_limit_rpm, rate_limit_burst, expires_at, key_hash, key_preview, created_at, updated_at, revoked_at, version";

/// The columns of a request record but `seq`, in [`RecordRow`] order.
pub(crate) const RECORD_COLUMNS: &str = "id, key_id, wallet_id, model, provider, endpoint, status, input_tokens, \
    cached_input_tokens, cache_write_tokens, output_tokens, cost_nanos, latency_ms, created_at";

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

/// What a backend's rows must decode for these helpers.
pub(crate) trait Decodes<'r>: Row
where
    &'r str: ColumnIndex<Self>,
{
    fn i64(&'r self, col: &'r str) -> Result<i64, StoreError>;
    fn opt_i64(&'r self, col: &'r str) -> Result<Option<i64>, StoreError>;
    fn text(&'r self, col: &'r str) -> Result<String, StoreError>;
    fn opt_text(&'r self, col: &'r str) -> Result<Option<String>, StoreError>;
    fn bytes(&'r self, col: &'r str) -> Result<Vec<u8>, StoreError>;
}

impl<'r, R: Row> Decodes<'r> for R
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn i64(&'r self, col: &'r str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_i64(&'r self, col: &'r str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn text(&'r self, col: &'r str) -> Result<String, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&'r self, col: &'r str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn bytes(&'r self, col: &'r str) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get(col)?)
    }
}

fn hash(bytes: Vec<u8>, what: &str) -> Result<KeyHash, StoreError> {
    KeyHash::from_slice(&bytes).ok_or_else(|| corrupt(format!("{what} is not 32 bytes")))
}

pub(crate) fn names_to_json(names: &Option<Vec<String>>) -> Option<String> {
    names.as_ref().map(|n| serde_json::Value::from(n.clone()).to_string())
}

fn names_from_json(text: Option<String>) -> Result<Option<Vec<String>>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(format!("name list: {e}")))).transpose()
}

fn cycle(text: Option<String>) -> Result<Option<Cycle>, StoreError> {
    text.map(|c| Cycle::from_str(&c).map_err(corrupt)).transpose()
}

fn request_shape(text: &str) -> Result<WireFormat, StoreError> {
    match text {
        "anthropic" => Ok(WireFormat::Anthropic),
        "openai" => Ok(WireFormat::OpenAi),
        other => Err(corrupt(format!("request_shape {other:?}"))),
    }
}

fn count(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| corrupt(format!("{what} is negative")))
}

pub(crate) fn spend_key<'r, R: Decodes<'r>>(row: &'r R) -> Result<Listed, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let status = row.text("status")?;
    let shape = row.text("request_shape")?;
    let spend_limit = match (row.opt_i64("spend_limit_nanos")?, cycle(row.opt_text("spend_limit_cycle")?)?) {
        (Some(nanos), Some(cycle)) => Some(SpendLimit { amount: Usd::from_nanos(nanos), cycle }),
        _ => None,
    };
    let request_limit = match (row.opt_i64("request_limit_count")?, cycle(row.opt_text("request_limit_cycle")?)?) {
        (Some(n), Some(cycle)) => Some(RequestLimit { count: count(n, "request_limit_count")?, cycle }),
        _ => None,
    };
    let rate_limit = match row.opt_i64("rate_limit_rpm")? {
        Some(rpm) => Some(RateLimit {
            rpm: u32::try_from(rpm).map_err(|_| corrupt("rate_limit_rpm is out of range"))?,
            burst: row
                .opt_i64("rate_limit_burst")?
                .map(|b| u32::try_from(b).map_err(|_| corrupt("rate_limit_burst is out of range")))
                .transpose()?,
        }),
        None => None,
    };
    let key = SpendKey {
        id: SpendKeyId::new(row.text("id")?),
        wallet_id: WalletId::new(row.text("wallet_id")?),
        name: row.text("name")?,
        status: KeyStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?,
        request_shape: request_shape(&shape)?,
        allowed_models: names_from_json(row.opt_text("allowed_models")?)?,
        allowed_providers: names_from_json(row.opt_text("allowed_providers")?)?,
        spend_limit,
        request_limit,
        rate_limit,
        expires_at: row.opt_i64("expires_at")?.map(ts),
        key_hash: hash(row.bytes("key_hash")?, "key_hash")?,
        key_preview: row.text("key_preview")?,
        created_at: ts(row.i64("created_at")?),
        updated_at: ts(row.i64("updated_at")?),
        revoked_at: row.opt_i64("revoked_at")?.map(ts),
        version: row.i64("version")?,
    };
    Ok(Listed { seq: row.i64("seq")?, key })
}

pub(crate) fn wallet_key<'r, R: Decodes<'r>>(row: &'r R) -> Result<WalletKey, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(WalletKey {
        id: WalletKeyId::new(row.text("id")?),
        wallet_id: WalletId::new(row.text("wallet_id")?),
        name: row.text("name")?,
        key_hash: hash(row.bytes("key_hash")?, "key_hash")?,
        key_preview: row.text("key_preview")?,
        created_at: ts(row.i64("created_at")?),
        revoked_at: row.opt_i64("revoked_at")?.map(ts),
    })
}

pub(crate) fn wallet<'r, R: Decodes<'r>>(row: &'r R) -> Result<Wallet, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(Wallet { id: WalletId::new(row.text("id")?), name: row.text("name")?, created_at: ts(row.i64("created_at")?) })
}

pub(crate) fn record<'r, R: Decodes<'r>>(r: &'r R) -> Result<(i64, RequestRecord), StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let record = RequestRecord {
        id: r.text("id")?,
        key_id: SpendKeyId::new(r.text("key_id")?),
        wallet_id: WalletId::new(r.text("wallet_id")?),
        model: r.text("model")?,
        provider: r.text("provider")?,
        endpoint: r.text("endpoint")?,
        status: u16::try_from(r.i64("status")?).map_err(|_| corrupt("status is out of range"))?,
        usage: TokenUsage {
            input: count(r.i64("input_tokens")?, "input_tokens")?,
            cached_input: count(r.i64("cached_input_tokens")?, "cached_input_tokens")?,
            cache_write: count(r.i64("cache_write_tokens")?, "cache_write_tokens")?,
            output: count(r.i64("output_tokens")?, "output_tokens")?,
        },
        cost: Usd::from_nanos(r.i64("cost_nanos")?),
        latency_ms: count(r.i64("latency_ms")?, "latency_ms")?,
        created_at: ts(r.i64("created_at")?),
    };
    Ok((r.i64("seq")?, record))
}

pub(crate) fn session<'r, R: Decodes<'r>>(r: &'r R) -> Result<Session, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(Session {
        token_hash: hash(r.bytes("token_hash")?, "session token_hash")?,
        wallet_id: WalletId::new(r.text("wallet_id")?),
        wallet_key_id: WalletKeyId::new(r.text("wallet_key_id")?),
        csrf_token: r.text("csrf_token")?,
        created_at: ts(r.i64("created_at")?),
        expires_at: ts(r.i64("expires_at")?),
    })
}

/// The insert of one audit entry (any backend's placeholders).
pub(crate) fn insert_audit<'a, DB: Database>(e: &'a AuditEntry) -> QueryBuilder<'a, DB>
where
    &'a str: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(
        "INSERT INTO audit_log (id, wallet_id, actor_kind, actor_id, action, target_id, changes, ip, user_agent, \
         created_at) ",
    );
    let (kind, actor_id) = e.actor.parts();
    q.push_values([e], |mut b, e| {
        b.push_bind(e.id.as_str())
            .push_bind(e.wallet_id.as_str())
            .push_bind(kind)
            .push_bind(actor_id)
            .push_bind(e.action.as_str())
            .push_bind(e.target_id.as_str())
            .push_bind(e.changes.to_string())
            .push_bind(e.ip.as_deref())
            .push_bind(e.user_agent.as_deref())
            .push_bind(e.created_at.unix_millis());
    });
    q
}

pub(crate) fn audit_entry<'r, R: Decodes<'r>>(r: &'r R) -> Result<(i64, AuditEntry), StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let kind = r.text("actor_kind")?;
    let actor_id = r.opt_text("actor_id")?;
    let action = r.text("action")?;
    let changes = r.text("changes")?;
    let entry = AuditEntry {
        id: AuditId::new(r.text("id")?),
        wallet_id: WalletId::new(r.text("wallet_id")?),
        actor: Actor::from_parts(&kind, actor_id.as_deref())
            .ok_or_else(|| corrupt(format!("audit actor {kind:?} {actor_id:?}")))?,
        action: Action::parse(&action).ok_or_else(|| corrupt(format!("audit action {action:?}")))?,
        target_id: r.text("target_id")?,
        changes: serde_json::from_str(&changes).map_err(|e| corrupt(format!("audit changes: {e}")))?,
        ip: r.opt_text("ip")?,
        user_agent: r.opt_text("user_agent")?,
        created_at: ts(r.i64("created_at")?),
    };
    Ok((r.i64("seq")?, entry))
}

pub(crate) fn webhook<'r, R: Decodes<'r>>(r: &'r R) -> Result<Webhook, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let events: Vec<String> =
        serde_json::from_str(&r.text("events")?).map_err(|e| corrupt(format!("webhook events: {e}")))?;
    Ok(Webhook {
        id: WebhookId::new(r.text("id")?),
        wallet_id: WalletId::new(r.text("wallet_id")?),
        spend_key_id: r.opt_text("spend_key_id")?.map(SpendKeyId::new),
        url: r.text("url")?,
        secret: r.text("secret")?,
        events: events
            .iter()
            .map(|e| AlertEvent::parse(e).ok_or_else(|| corrupt(format!("webhook event {e:?}"))))
            .collect::<Result<_, _>>()?,
        thresholds: serde_json::from_str(&r.text("thresholds")?)
            .map_err(|e| corrupt(format!("webhook thresholds: {e}")))?,
        created_at: ts(r.i64("created_at")?),
    })
}

/// The insert of a webhook (any backend's placeholders).
pub(crate) fn insert_webhook<'a, DB: Database>(w: &'a Webhook) -> QueryBuilder<'a, DB>
where
    &'a str: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(
        "INSERT INTO webhooks (id, wallet_id, spend_key_id, url, secret, events, thresholds, created_at) ",
    );
    q.push_values([w], |mut b, w| {
        b.push_bind(w.id.as_str())
            .push_bind(w.wallet_id.as_str())
            .push_bind(w.spend_key_id.as_ref().map(SpendKeyId::as_str))
            .push_bind(w.url.as_str())
            .push_bind(w.secret.as_str())
            .push_bind(events_json(w))
            .push_bind(serde_json::Value::from(w.thresholds.clone()).to_string())
            .push_bind(w.created_at.unix_millis());
    });
    q
}

/// The insert of a delivery, skipped if its webhook has one with its `dedup`.
pub(crate) fn enqueue_delivery<'a, DB: Database>(d: &'a Delivery) -> QueryBuilder<'a, DB>
where
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(
        "INSERT INTO webhook_deliveries (id, webhook_id, wallet_id, dedup, event, payload, status, attempts, \
         next_attempt_at, last_status, last_error, created_at, delivered_at) ",
    );
    q.push_values([d], |mut b, d| {
        b.push_bind(d.id.as_str())
            .push_bind(d.webhook_id.as_str())
            .push_bind(d.wallet_id.as_str())
            .push_bind(d.dedup.as_str())
            .push_bind(d.event.as_str())
            .push_bind(d.payload.as_str())
            .push_bind(d.status.as_str())
            .push_bind(i64::from(d.attempts))
            .push_bind(d.next_attempt_at.map(Timestamp::unix_millis))
            .push_bind(d.last_status.map(i64::from))
            .push_bind(d.last_error.as_deref())
            .push_bind(d.created_at.unix_millis())
            .push_bind(d.delivered_at.map(Timestamp::unix_millis));
    });
    q.push(" ON CONFLICT (webhook_id, dedup) DO NOTHING");
    q
}

/// The update of a delivery after an attempt.
pub(crate) fn update_delivery<'a, DB: Database>(d: &'a Delivery) -> QueryBuilder<'a, DB>
where
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new("UPDATE webhook_deliveries SET status = ");
    q.push_bind(d.status.as_str())
        .push(", attempts = ")
        .push_bind(i64::from(d.attempts))
        .push(", next_attempt_at = ")
        .push_bind(d.next_attempt_at.map(Timestamp::unix_millis))
        .push(", last_status = ")
        .push_bind(d.last_status.map(i64::from))
        .push(", last_error = ")
        .push_bind(d.last_error.as_deref())
        .push(", delivered_at = ")
        .push_bind(d.delivered_at.map(Timestamp::unix_millis))
        .push(" WHERE id = ")
        .push_bind(d.id.as_str());
    q
}

pub(crate) fn events_json(w: &Webhook) -> String {
    serde_json::Value::from(w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>()).to_string()
}

pub(crate) fn delivery<'r, R: Decodes<'r>>(r: &'r R) -> Result<(i64, Delivery), StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let event = r.text("event")?;
    let status = r.text("status")?;
    let d = Delivery {
        id: DeliveryId::new(r.text("id")?),
        webhook_id: WebhookId::new(r.text("webhook_id")?),
        wallet_id: WalletId::new(r.text("wallet_id")?),
        dedup: r.text("dedup")?,
        event: AlertEvent::parse(&event).ok_or_else(|| corrupt(format!("delivery event {event:?}")))?,
        payload: r.text("payload")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt(format!("delivery status {status:?}")))?,
        attempts: u32::try_from(r.i64("attempts")?).map_err(corrupt)?,
        next_attempt_at: r.opt_i64("next_attempt_at")?.map(ts),
        last_status: r.opt_i64("last_status")?.and_then(|s| u16::try_from(s).ok()),
        last_error: r.opt_text("last_error")?,
        created_at: ts(r.i64("created_at")?),
        delivered_at: r.opt_i64("delivered_at")?.map(ts),
    };
    Ok((r.i64("seq")?, d))
}

/// `key_id, day, spend_nanos, requests`.
pub(crate) fn usage_day<'r, R: Decodes<'r>>(r: &'r R) -> Result<UsageDay, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(UsageDay {
        key_id: SpendKeyId::new(r.text("key_id")?),
        day: r.i64("day")?,
        spend: Usd::from_nanos(r.i64("spend_nanos")?),
        requests: count(r.i64("requests")?, "requests")?,
    })
}

/// `key_id, spend, requests, last_used_at`.
pub(crate) fn usage_total<'r, R: Decodes<'r>>(r: &'r R) -> Result<UsageTotal, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(UsageTotal {
        key_id: SpendKeyId::new(r.text("key_id")?),
        spend: Usd::from_nanos(r.i64("spend")?),
        requests: count(r.i64("requests")?, "requests")?,
        last_used_at: r.opt_i64("last_used_at")?.map(ts),
    })
}

/// `day, requests, tokens, spend`.
pub(crate) fn day_total<'r, R: Decodes<'r>>(r: &'r R) -> Result<DayTotal, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(DayTotal {
        day: r.i64("day")?,
        requests: count(r.i64("requests")?, "requests")?,
        tokens: count(r.i64("tokens")?, "tokens")?,
        spend: Usd::from_nanos(r.i64("spend")?),
    })
}

/// `model, provider, requests, tokens, spend`.
pub(crate) fn model_total<'r, R: Decodes<'r>>(r: &'r R) -> Result<ModelTotal, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(ModelTotal {
        model: r.text("model")?,
        provider: r.text("provider")?,
        requests: count(r.i64("requests")?, "requests")?,
        tokens: count(r.i64("tokens")?, "tokens")?,
        spend: Usd::from_nanos(r.i64("spend")?),
    })
}

/// `current_spend, total_spend, current_requests, total_requests, last_used_at`.
pub(crate) fn key_usage<'r, R: Decodes<'r>>(r: &'r R) -> Result<KeyUsage, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(KeyUsage {
        current_spend: Usd::from_nanos(r.i64("current_spend")?),
        total_spend: Usd::from_nanos(r.i64("total_spend")?),
        current_requests: count(r.i64("current_requests")?, "current_requests")?,
        total_requests: count(r.i64("total_requests")?, "total_requests")?,
        last_used_at: r.opt_i64("last_used_at")?.map(ts),
    })
}

/// Rows per multi-row statement: a batch is written as a few statements of these sizes
/// (largest first), each prepared once per connection and cached, rather than as one
/// statement of the batch's own size, which would be prepared anew for every batch
/// (preparing a statement costs more than running it).
const CHUNK_SIZES: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

/// `items` in chunks of [`CHUNK_SIZES`]: at most 8 below 256 items.
pub(crate) fn chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        let size = CHUNK_SIZES.into_iter().find(|s| *s <= rest.len())?;
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// Appends `VALUES (...), ...` of `records` in [`RECORD_COLUMNS`] order.
pub(crate) fn push_records<'a, DB: Database>(q: &mut QueryBuilder<'a, DB>, records: &'a [RequestRecord])
where
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    q.push_values(records, |mut b, r| {
        b.push_bind(r.id.as_str())
            .push_bind(r.key_id.as_str())
            .push_bind(r.wallet_id.as_str())
            .push_bind(r.model.as_str())
            .push_bind(r.provider.as_str())
            .push_bind(r.endpoint.as_str())
            .push_bind(i64::from(r.status))
            .push_bind(big(r.usage.input))
            .push_bind(big(r.usage.cached_input))
            .push_bind(big(r.usage.cache_write))
            .push_bind(big(r.usage.output))
            .push_bind(r.cost.nanos())
            .push_bind(big(r.latency_ms))
            .push_bind(r.created_at.unix_millis());
    });
}

/// Appends `VALUES (...), ...` of `deltas` for `key_usage_daily`.
pub(crate) fn push_deltas<'a, DB: Database>(q: &mut QueryBuilder<'a, DB>, deltas: &'a [DailyDelta<'a>])
where
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    q.push_values(deltas, |mut b, d| {
        b.push_bind(d.key_id)
            .push_bind(d.day)
            .push_bind(d.requests)
            .push_bind(d.spend_nanos)
            .push_bind(d.tokens)
            .push_bind(d.last_used_at);
    });
}

/// An unsigned figure as the database's signed BIGINT (saturating: figures this large
/// do not occur).
pub(crate) fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Binds every column of a spend key but `seq`, in [`SPEND_KEY_COLUMNS`] order.
pub(crate) fn bind_spend_key<'q, DB: Database>(
    q: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    k: &'q SpendKey,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
{
    q.bind(k.id.as_str())
        .bind(k.wallet_id.as_str())
        .bind(k.name.as_str())
        .bind(k.status.as_str())
        .bind(k.request_shape.as_str())
        .bind(names_to_json(&k.allowed_models))
        .bind(names_to_json(&k.allowed_providers))
        .bind(k.spend_limit.map(|l| l.amount.nanos()))
        .bind(k.spend_limit.map(|l| l.cycle.as_str()))
        .bind(k.request_limit.map(|l| big(l.count)))
        .bind(k.request_limit.map(|l| l.cycle.as_str()))
        .bind(k.rate_limit.map(|l| i64::from(l.rpm)))
        .bind(k.rate_limit.and_then(|l| l.burst).map(i64::from))
        .bind(k.expires_at.map(Timestamp::unix_millis))
        .bind(&k.key_hash.0[..])
        .bind(k.key_preview.as_str())
        .bind(k.created_at.unix_millis())
        .bind(k.updated_at.unix_millis())
        .bind(k.revoked_at.map(Timestamp::unix_millis))
        .bind(k.version)
}

/// The columns of [`bind_spend_key`] as `col = placeholder` pairs for an UPDATE, the
/// placeholders made by `mark(n)` for n = 1.. (`?` for SQLite, `$n` for PostgreSQL).
pub(crate) fn spend_key_assignments(mark: impl Fn(usize) -> String) -> String {
    SPEND_KEY_COLUMNS
        .split(", ")
        .skip(1)
        .enumerate()
        .map(|(i, col)| format!("{col} = {}", mark(i + 1)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `key_usage_daily` increment: a key's records of one UTC day, summed.
pub(crate) struct DailyDelta<'a> {
    pub key_id: &'a str,
    pub day: i64,
    pub requests: i64,
    pub spend_nanos: i64,
    pub tokens: i64,
    pub last_used_at: i64,
}

/// The daily increments of `records` (each listed once per key and day, so that one
/// multi-row upsert applies them).
pub(crate) fn daily_deltas<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> Vec<DailyDelta<'a>> {
    let mut out: Vec<DailyDelta<'a>> = Vec::new();
    let mut at: std::collections::HashMap<(&'a str, i64), usize> = std::collections::HashMap::new();
    for r in records {
        let day = r.created_at.unix_day();
        let i = *at.entry((r.key_id.as_str(), day)).or_insert_with(|| {
            out.push(DailyDelta {
                key_id: r.key_id.as_str(),
                day,
                requests: 0,
                spend_nanos: 0,
                tokens: 0,
                last_used_at: i64::MIN,
            });
            out.len() - 1
        });
        let d = &mut out[i];
        d.requests += 1;
        d.spend_nanos = d.spend_nanos.saturating_add(r.cost.nanos());
        d.tokens = d.tokens.saturating_add(big(r.usage.total()));
        d.last_used_at = d.last_used_at.max(r.created_at.unix_millis());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_cover_the_items_in_order_with_few_cached_sizes() {
        for n in 0..700usize {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = super::chunks(&items).collect();
            assert_eq!(chunks.concat(), items);
            assert!(chunks.iter().all(|c| super::CHUNK_SIZES.contains(&c.len())));
            assert!(chunks.iter().filter(|c| c.len() < 256).count() <= 8, "{n}");
        }
    }
}
