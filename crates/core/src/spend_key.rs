//! Spend keys: what a key may do (models, providers, limits, expiry, status) and the
//! parsing of create/update parameters from the wallet API's JSON, field by field, so
//! that every rejection names the field and the reason.

use crate::catalog::{Catalog, Model, WireFormat};
use crate::cycle::Cycle;
use crate::money::Usd;
use crate::secret::{KeyHash, SpendKeyId, WalletId};
use crate::timestamp::Timestamp;
use serde_json::{Map, Value};

/// Bounds on user input.
pub const NAME_MAX_CHARS: usize = 200;
pub const LIST_MAX_ITEMS: usize = 1000;
pub const REQUEST_LIMIT_MAX: u64 = 1_000_000_000_000;
pub const RPM_MAX: u32 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Paused,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<KeyStatus> {
        match s {
            "active" => Some(KeyStatus::Active),
            "paused" => Some(KeyStatus::Paused),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendLimit {
    pub amount: Usd,
    pub cycle: Cycle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimit {
    pub count: u64,
    pub cycle: Cycle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub rpm: u32,
    pub burst: Option<u32>,
}

/// A spend key as stored: its rules and the hash of its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendKey {
    pub id: SpendKeyId,
    pub wallet_id: WalletId,
    pub name: String,
    pub status: KeyStatus,
    /// The client-facing format (`request_shape`).
    pub request_shape: WireFormat,
    pub allowed_models: Option<Vec<String>>,
    pub allowed_providers: Option<Vec<String>>,
    pub spend_limit: Option<SpendLimit>,
    pub request_limit: Option<RequestLimit>,
    pub rate_limit: Option<RateLimit>,
    pub expires_at: Option<Timestamp>,
    pub key_hash: KeyHash,
    pub key_preview: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// Bumped by every change; lets caches and concurrent writers detect staleness.
    pub version: i64,
}

/// Why a key cannot be used; the messages are what clients see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("key is paused; its owner can resume it")]
    Paused,
    #[error("key was revoked at {0}")]
    Revoked(Timestamp),
    #[error("key expired at {0}")]
    Expired(Timestamp),
}

/// What a key has used: totals over its life and figures for its current cycles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyUsage {
    pub current_spend: Usd,
    pub total_spend: Usd,
    pub current_requests: u64,
    pub total_requests: u64,
    pub last_used_at: Option<Timestamp>,
}

impl SpendKey {
    /// The cycle `current_spend` counts over: the spend limit's, else the calendar month.
    pub fn spend_cycle(&self) -> Cycle {
        self.spend_limit.map_or(Cycle::Monthly, |l| l.cycle)
    }

    /// The cycle `current_requests` counts over: the request limit's, else the month.
    pub fn request_cycle(&self) -> Cycle {
        self.request_limit.map_or(Cycle::Monthly, |l| l.cycle)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Whether the key may be used at all at `now` (gateway check 2).
    pub fn check_usable(&self, now: Timestamp) -> Result<(), Unusable> {
        if let Some(at) = self.revoked_at {
            return Err(Unusable::Revoked(at));
        }
        if let Some(at) = self.expires_at.filter(|&e| e <= now) {
            return Err(Unusable::Expired(at));
        }
        if self.status == KeyStatus::Paused {
            return Err(Unusable::Paused);
        }
        Ok(())
    }

    /// Whether the key may use `model`: both its model list (by id or any alias) and
    /// its provider list must allow it (gateway check 5).
    pub fn allows(&self, model: &Model) -> bool {
        let model_ok = self
            .allowed_models
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|a| *a == model.id || model.aliases.contains(a)));
        let provider_ok = self.allowed_providers.as_ref().is_none_or(|allowed| allowed.contains(&model.provider));
        model_ok && provider_ok
    }

    /// Applies validated changes. Never touches the secret or usage.
    pub fn apply(&mut self, c: SpendKeyChanges, now: Timestamp) {
        let SpendKeyChanges {
            name,
            status,
            request_shape,
            allowed_models,
            allowed_providers,
            spend_limit,
            request_limit,
            rate_limit,
            expires_at,
        } = c;
        set(&mut self.name, name);
        set(&mut self.status, status);
        set(&mut self.request_shape, request_shape);
        set(&mut self.allowed_models, allowed_models);
        set(&mut self.allowed_providers, allowed_providers);
        set(&mut self.spend_limit, spend_limit);
        set(&mut self.request_limit, request_limit);
        set(&mut self.rate_limit, rate_limit);
        set(&mut self.expires_at, expires_at);
        self.updated_at = now;
        self.version += 1;
    }
}

fn set<T>(field: &mut T, change: Option<T>) {
    if let Some(v) = change {
        *field = v;
    }
}

/// Parsed create/update parameters. `None` = not given; for nullable fields
/// `Some(None)` = given as `null` (clear it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpendKeyChanges {
    pub name: Option<String>,
    pub status: Option<KeyStatus>,
    pub request_shape: Option<WireFormat>,
    pub allowed_models: Option<Option<Vec<String>>>,
    pub allowed_providers: Option<Option<Vec<String>>>,
    pub spend_limit: Option<Option<SpendLimit>>,
    pub request_limit: Option<Option<RequestLimit>>,
    pub rate_limit: Option<Option<RateLimit>>,
    pub expires_at: Option<Option<Timestamp>>,
}

/// A rejected field: `param` is its JSON path (`spend_limit.amount`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct FieldError {
    pub param: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(param: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError { param: param.into(), reason: reason.into() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

const FIELDS: [&str; 9] = [
    "name",
    "status",
    "request_shape",
    "allowed_models",
    "allowed_providers",
    "spend_limit",
    "request_limit",
    "rate_limit",
    "expires_at",
];

impl SpendKeyChanges {
    /// Parses a create (`name` required) or update (every field optional) body.
    pub fn parse(body: &Value, mode: Mode, catalog: &Catalog, now: Timestamp) -> Result<Self, FieldError> {
        let obj = body
            .as_object()
            .ok_or_else(|| FieldError::new("body", format!("must be a JSON object, got {}", kind(body))))?;
        if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                unknown.as_str(),
                format!("unknown field; the fields are {}", FIELDS.join(", ")),
            ));
        }
        let mut c = SpendKeyChanges::default();
        if let Some(v) = obj.get("name") {
            c.name = Some(parse_name(v)?);
        } else if mode == Mode::Create {
            return Err(FieldError::new("name", "is required"));
        }
        if let Some(v) = obj.get("status") {
            c.status = Some(parse_status(v)?);
        }
        if let Some(v) = obj.get("request_shape") {
            c.request_shape = Some(parse_shape(v)?);
        }
        c.allowed_models = nullable(obj, "allowed_models", |v| {
            parse_names(v, "allowed_models", "model", |m| catalog.model(m).is_some())
        })?;
        c.allowed_providers = nullable(obj, "allowed_providers", |v| {
            parse_names(v, "allowed_providers", "provider", |p| catalog.provider(p).is_some())
        })?;
        c.spend_limit = nullable(obj, "spend_limit", parse_spend_limit)?;
        c.request_limit = nullable(obj, "request_limit", parse_request_limit)?;
        c.rate_limit = nullable(obj, "rate_limit", parse_rate_limit)?;
        c.expires_at = nullable(obj, "expires_at", |v| parse_expiry(v, now))?;
        Ok(c)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn nullable<T>(
    obj: &Map<String, Value>,
    field: &str,
    parse: impl FnOnce(&Value) -> Result<T, FieldError>,
) -> Result<Option<Option<T>>, FieldError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => parse(v).map(|t| Some(Some(t))),
    }
}

fn string<'a>(v: &'a Value, param: &str) -> Result<&'a str, FieldError> {
    v.as_str().ok_or_else(|| FieldError::new(param, format!("must be a string, got {}", kind(v))))
}

fn object<'a>(v: &'a Value, param: &str, fields: &[&str]) -> Result<&'a Map<String, Value>, FieldError> {
    let obj = v.as_object().ok_or_else(|| {
        FieldError::new(param, format!("must be an object like {{{}}} or null, got {}", fields.join(", "), kind(v)))
    })?;
    if let Some(k) = obj.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(FieldError::new(
            format!("{param}.{k}"),
            format!("unknown field; {param} has {}", fields.join(", ")),
        ));
    }
    Ok(obj)
}

fn parse_name(v: &Value) -> Result<String, FieldError> {
    let s = string(v, "name")?;
    let chars = s.chars().count();
    if s.trim().is_empty() {
        return Err(FieldError::new("name", "must not be empty"));
    }
    if chars > NAME_MAX_CHARS {
        return Err(FieldError::new("name", format!("is {chars} characters; at most {NAME_MAX_CHARS} are allowed")));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::new("name", "must not contain control characters"));
    }
    Ok(s.to_string())
}

fn parse_status(v: &Value) -> Result<KeyStatus, FieldError> {
    let s = string(v, "status")?;
    KeyStatus::parse(s).ok_or_else(|| {
        let hint = if s == "revoked" { " (revoke a key with DELETE /v1/spend_keys/{id})" } else { "" };
        FieldError::new("status", format!("must be \"active\" or \"paused\", got {s:?}{hint}"))
    })
}

fn parse_shape(v: &Value) -> Result<WireFormat, FieldError> {
    match string(v, "request_shape")? {
        "openai" => Ok(WireFormat::OpenAi),
        "anthropic" => Ok(WireFormat::Anthropic),
        other => Err(FieldError::new("request_shape", format!("must be \"openai\" or \"anthropic\", got {other:?}"))),
    }
}

fn parse_names(v: &Value, param: &str, what: &str, known: impl Fn(&str) -> bool) -> Result<Vec<String>, FieldError> {
    let items = v.as_array().ok_or_else(|| {
        FieldError::new(param, format!("must be an array of {what} names, or null for all; got {}", kind(v)))
    })?;
    if items.is_empty() {
        return Err(FieldError::new(param, format!("must name at least one {what}, or be null to allow all")));
    }
    if items.len() > LIST_MAX_ITEMS {
        return Err(FieldError::new(param, format!("has {} entries; at most {LIST_MAX_ITEMS}", items.len())));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = format!("{param}[{i}]");
        let name = string(item, &p)?;
        if !known(name) {
            let list = if what == "model" { "GET /v1/models lists them" } else { "see the catalog's providers" };
            return Err(FieldError::new(p, format!("unknown {what} {name:?} ({list})")));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn parse_cycle(v: Option<&Value>, param: &str) -> Result<Cycle, FieldError> {
    let v = v.ok_or_else(|| FieldError::new(param, "is required: daily, weekly, monthly or total"))?;
    string(v, param)?.parse().map_err(|e: crate::cycle::CycleError| FieldError::new(param, e.to_string()))
}

fn parse_spend_limit(v: &Value) -> Result<SpendLimit, FieldError> {
    let obj = object(v, "spend_limit", &["amount", "cycle"])?;
    let amount = match obj.get("amount") {
        None => {
            return Err(FieldError::new("spend_limit.amount", "is required, a decimal string like \"50.00\""));
        }
        Some(Value::String(s)) => Usd::parse(s).map_err(|e| FieldError::new("spend_limit.amount", e.to_string()))?,
        Some(other) => {
            return Err(FieldError::new(
                "spend_limit.amount",
                format!("must be a decimal string like \"50.00\", got {}", kind(other)),
            ));
        }
    };
    let cycle = parse_cycle(obj.get("cycle"), "spend_limit.cycle")?;
    Ok(SpendLimit { amount, cycle })
}

/// A positive integer within `max` (JSON floats like `10.5`, strings and negatives are refused).
fn positive_int(v: &Value, param: &str, max: u64) -> Result<u64, FieldError> {
    match v.as_u64() {
        Some(0) => Err(FieldError::new(param, "must be at least 1")),
        Some(n) if n <= max => Ok(n),
        Some(n) => Err(FieldError::new(param, format!("is {n}; at most {max}"))),
        None if v.as_i64().is_some_and(|n| n < 0) => Err(FieldError::new(param, "must be at least 1")),
        None => Err(FieldError::new(param, format!("must be a whole number, got {}", describe(v)))),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{n}"),
        other => kind(other).to_string(),
    }
}

fn parse_request_limit(v: &Value) -> Result<RequestLimit, FieldError> {
    let obj = object(v, "request_limit", &["count", "cycle"])?;
    let count =
        obj.get("count").ok_or_else(|| FieldError::new("request_limit.count", "is required, a whole number >= 1"))?;
    let count = positive_int(count, "request_limit.count", REQUEST_LIMIT_MAX)?;
    let cycle = parse_cycle(obj.get("cycle"), "request_limit.cycle")?;
    Ok(RequestLimit { count, cycle })
}

fn parse_rate_limit(v: &Value) -> Result<RateLimit, FieldError> {
    let obj = object(v, "rate_limit", &["rpm", "burst"])?;
    let rpm = obj
        .get("rpm")
        .ok_or_else(|| FieldError::new("rate_limit.rpm", "is required (requests per minute, >= 1); burst needs it"))?;
    let rpm = positive_int(rpm, "rate_limit.rpm", u64::from(RPM_MAX))? as u32;
    let burst = match obj.get("burst") {
        None | Some(Value::Null) => None,
        Some(b) => Some(positive_int(b, "rate_limit.burst", u64::from(RPM_MAX))? as u32),
    };
    Ok(RateLimit { rpm, burst })
}

fn parse_expiry(v: &Value, now: Timestamp) -> Result<Timestamp, FieldError> {
    let s = string(v, "expires_at")?;
    let t = Timestamp::parse(s).map_err(|e| FieldError::new("expires_at", e.to_string()))?;
    if t <= now {
        return Err(FieldError::new(
            "expires_at",
            format!("{t} is in the past; give a future time, or null for no expiry"),
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-23T12:00:00Z").unwrap()
    }

    fn parse(body: Value, mode: Mode) -> Result<SpendKeyChanges, FieldError> {
        SpendKeyChanges::parse(&body, mode, &Catalog::builtin(), now())
    }

    #[test]
    fn full_create_parses() {
        let c = parse(
            json!({
                "name": "Agent - Production",
                "status": "paused",
                "request_shape": "anthropic",
                "allowed_models": ["gpt-4o-mini", "claude-sonnet-4-20250514", "gpt-4o-mini"],
                "allowed_providers": ["openai", "anthropic"],
                "spend_limit": {"amount": "50.00", "cycle": "monthly"},
                "request_limit": {"count": 1000, "cycle": "daily"},
                "rate_limit": {"rpm": 60, "burst": 10},
                "expires_at": "2027-01-01T00:00:00Z"
            }),
            Mode::Create,
        )
        .unwrap();
        assert_eq!(c.name.as_deref(), Some("Agent - Production"));
        assert_eq!(c.status, Some(KeyStatus::Paused));
        assert_eq!(c.request_shape, Some(WireFormat::Anthropic));
        assert_eq!(c.allowed_models, Some(Some(vec!["gpt-4o-mini".into(), "claude-sonnet-4-20250514".into()])));
        assert_eq!(c.spend_limit, Some(Some(SpendLimit { amount: Usd::parse("50").unwrap(), cycle: Cycle::Monthly })));
        assert_eq!(c.request_limit, Some(Some(RequestLimit { count: 1000, cycle: Cycle::Daily })));
        assert_eq!(c.rate_limit, Some(Some(RateLimit { rpm: 60, burst: Some(10) })));
        assert_eq!(c.expires_at, Some(Some(Timestamp::parse("2027-01-01T00:00:00Z").unwrap())));
    }

    #[test]
    fn update_distinguishes_absent_and_null() {
        let c = parse(json!({"spend_limit": null, "rate_limit": {"rpm": 5}}), Mode::Update).unwrap();
        assert_eq!(c.name, None);
        assert_eq!(c.spend_limit, Some(None));
        assert_eq!(c.request_limit, None);
        assert_eq!(c.rate_limit, Some(Some(RateLimit { rpm: 5, burst: None })));
        assert_eq!(parse(json!({}), Mode::Update).unwrap(), SpendKeyChanges::default());
    }

    #[test]
    fn every_bad_field_is_named_with_a_reason() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!([]), "body", "JSON object"),
            (json!({}), "name", "required"),
            (json!({"name": ""}), "name", "empty"),
            (json!({"name": "   "}), "name", "empty"),
            (json!({"name": "x".repeat(201)}), "name", "201 characters"),
            (json!({"name": 5}), "name", "must be a string"),
            (json!({"name": "a\u{0}b"}), "name", "control"),
            (json!({"name": "a", "colour": "red"}), "colour", "unknown field"),
            (json!({"name": "a", "status": "revoked"}), "status", "DELETE"),
            (json!({"name": "a", "status": true}), "status", "string"),
            (json!({"name": "a", "request_shape": "google"}), "request_shape", "\"google\""),
            (json!({"name": "a", "allowed_models": "gpt-4o"}), "allowed_models", "array"),
            (json!({"name": "a", "allowed_models": []}), "allowed_models", "at least one"),
            (json!({"name": "a", "allowed_models": ["gpt-nope"]}), "allowed_models[0]", "unknown model"),
            (json!({"name": "a", "allowed_models": ["gpt-4o-mini", 3]}), "allowed_models[1]", "string"),
            (json!({"name": "a", "allowed_providers": ["acme"]}), "allowed_providers[0]", "unknown provider"),
            (json!({"name": "a", "spend_limit": "50"}), "spend_limit", "object"),
            (json!({"name": "a", "spend_limit": {"cycle": "daily"}}), "spend_limit.amount", "required"),
            (
                json!({"name": "a", "spend_limit": {"amount": 50, "cycle": "daily"}}),
                "spend_limit.amount",
                "decimal string",
            ),
            (json!({"name": "a", "spend_limit": {"amount": "-5", "cycle": "daily"}}), "spend_limit.amount", "negative"),
            (
                json!({"name": "a", "spend_limit": {"amount": "abc", "cycle": "daily"}}),
                "spend_limit.amount",
                "not a decimal",
            ),
            (
                json!({"name": "a", "spend_limit": {"amount": "NaN", "cycle": "daily"}}),
                "spend_limit.amount",
                "not a decimal",
            ),
            (json!({"name": "a", "spend_limit": {"amount": "", "cycle": "daily"}}), "spend_limit.amount", "empty"),
            (
                json!({"name": "a", "spend_limit": {"amount": "1e99", "cycle": "daily"}}),
                "spend_limit.amount",
                "not a decimal",
            ),
            (
                json!({"name": "a", "spend_limit": {"amount": "99999999999", "cycle": "daily"}}),
                "spend_limit.amount",
                "maximum",
            ),
            (json!({"name": "a", "spend_limit": {"amount": "5"}}), "spend_limit.cycle", "required"),
            (
                json!({"name": "a", "spend_limit": {"amount": "5", "cycle": "yearly"}}),
                "spend_limit.cycle",
                "\"yearly\"",
            ),
            (
                json!({"name": "a", "spend_limit": {"amount": "5", "cycle": "daily", "x": 1}}),
                "spend_limit.x",
                "unknown",
            ),
            (
                json!({"name": "a", "request_limit": {"count": 0, "cycle": "daily"}}),
                "request_limit.count",
                "at least 1",
            ),
            (
                json!({"name": "a", "request_limit": {"count": -3, "cycle": "daily"}}),
                "request_limit.count",
                "at least 1",
            ),
            (
                json!({"name": "a", "request_limit": {"count": 2.5, "cycle": "daily"}}),
                "request_limit.count",
                "whole number",
            ),
            (
                json!({"name": "a", "request_limit": {"count": "10", "cycle": "daily"}}),
                "request_limit.count",
                "whole number",
            ),
            (json!({"name": "a", "rate_limit": {"rpm": 0}}), "rate_limit.rpm", "at least 1"),
            (json!({"name": "a", "rate_limit": {"burst": 5}}), "rate_limit.rpm", "required"),
            (json!({"name": "a", "rate_limit": {"rpm": 5, "burst": 0}}), "rate_limit.burst", "at least 1"),
            (json!({"name": "a", "rate_limit": {"rpm": 99999999999u64}}), "rate_limit.rpm", "at most"),
            (json!({"name": "a", "expires_at": "2020-01-01T00:00:00Z"}), "expires_at", "in the past"),
            (json!({"name": "a", "expires_at": "next week"}), "expires_at", "RFC 3339"),
            (json!({"name": "a", "expires_at": 1700000000}), "expires_at", "string"),
        ];
        for (body, param, reason) in cases {
            let err = parse(body.clone(), Mode::Create).unwrap_err();
            assert_eq!(err.param, param, "{body}");
            assert!(err.to_string().contains(reason), "{body}: {err}");
        }
    }

    #[test]
    fn apply_changes_only_what_is_given_and_bumps_version() {
        let mut key = SpendKey {
            id: SpendKeyId::new("key_1"),
            wallet_id: WalletId::new("wal_1"),
            name: "a".into(),
            status: KeyStatus::Active,
            request_shape: WireFormat::OpenAi,
            allowed_models: None,
            allowed_providers: None,
            spend_limit: Some(SpendLimit { amount: Usd::parse("5").unwrap(), cycle: Cycle::Daily }),
            request_limit: None,
            rate_limit: None,
            expires_at: None,
            key_hash: KeyHash([0; 32]),
            key_preview: "lava_sk_abcd****".into(),
            created_at: now(),
            updated_at: now(),
            revoked_at: None,
            version: 1,
        };
        let before = key.clone();
        key.apply(parse(json!({"name": "b"}), Mode::Update).unwrap(), now().plus_millis(5));
        assert_eq!(key.name, "b");
        assert_eq!(key.spend_limit, before.spend_limit);
        assert_eq!(key.version, 2);
        assert_eq!(key.spend_cycle(), Cycle::Daily);
        key.apply(parse(json!({"spend_limit": null}), Mode::Update).unwrap(), now());
        assert_eq!(key.spend_limit, None);
        assert_eq!(key.spend_cycle(), Cycle::Monthly);
        assert_eq!(key.key_hash, before.key_hash);
    }

    #[test]
    fn usability_and_model_rules() {
        let catalog = Catalog::builtin();
        let mut key = SpendKey {
            id: SpendKeyId::new("key_1"),
            wallet_id: WalletId::new("wal_1"),
            name: "a".into(),
            status: KeyStatus::Active,
            request_shape: WireFormat::OpenAi,
            allowed_models: Some(vec!["claude-sonnet-4-0".into(), "gpt-4o-mini".into()]),
            allowed_providers: Some(vec!["anthropic".into()]),
            spend_limit: None,
            request_limit: None,
            rate_limit: None,
            expires_at: Some(now().plus_millis(1000)),
            key_hash: KeyHash([0; 32]),
            key_preview: "lava_sk_abcd****".into(),
            created_at: now(),
            updated_at: now(),
            revoked_at: None,
            version: 1,
        };
        assert_eq!(key.check_usable(now()), Ok(()));
        assert_eq!(key.check_usable(now().plus_millis(1000)), Err(Unusable::Expired(now().plus_millis(1000))));
        key.status = KeyStatus::Paused;
        assert_eq!(key.check_usable(now()).unwrap_err().to_string(), "key is paused; its owner can resume it");
        key.revoked_at = Some(now());
        assert!(key.check_usable(now()).unwrap_err().to_string().starts_with("key was revoked at 2026-11-23"));

        let sonnet = catalog.model("claude-sonnet-4-20250514").unwrap();
        let mini = catalog.model("gpt-4o-mini").unwrap();
        assert!(key.allows(sonnet), "allowed through its alias");
        assert!(!key.allows(mini), "model listed, provider not");
        key.allowed_providers = None;
        assert!(key.allows(mini));
        key.allowed_models = None;
        assert!(catalog.models().iter().all(|m| key.allows(m)));
    }
}
