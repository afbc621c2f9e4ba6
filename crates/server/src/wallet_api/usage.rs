//! Usage over time and the request log: `GET /v1/usage`, `GET /v1/spend_keys/{id}/usage`
//! (Lava's usage shape: an item per UTC day, zero days included, and totals; plus
//! `by_model`), `GET /v1/requests` (newest first, cursor pages) and
//! `GET /v1/requests/export` (CSV).

use crate::auth::WalletAuth;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use spendgate_core::timestamp::DAY_MS;
use spendgate_core::{SpendKeyId, Timestamp, Usd, WalletId};
use spendgate_store::{DayTotal, RequestRecord};
use std::collections::HashMap;

/// The longest range one usage call covers.
const MAX_DAYS: i64 = 366;
/// The most rows one CSV export holds.
const MAX_EXPORT: usize = 100_000;
const CURSOR_PREFIX: &str = "req_cur_";

type Params = Query<HashMap<String, String>>;

/// `start`/`end` as RFC 3339 or a plain `YYYY-MM-DD` (midnight UTC).
fn instant(params: &HashMap<String, String>, name: &str) -> Result<Option<Timestamp>, ApiError> {
    let Some(v) = params.get(name).filter(|v| !v.is_empty()) else { return Ok(None) };
    let text = if v.len() == 10 { format!("{v}T00:00:00Z") } else { v.clone() };
    Timestamp::parse(&text).map(Some).map_err(|e| ApiError::invalid(name, format!("{name}: {e}")))
}

fn range(params: &HashMap<String, String>, now: Timestamp) -> Result<(Timestamp, Timestamp), ApiError> {
    let start =
        instant(params, "start")?.ok_or_else(|| ApiError::invalid("start", "start: is required, like 2026-11-01"))?;
    let end = instant(params, "end")?.unwrap_or(now);
    if end <= start {
        return Err(ApiError::invalid("end", "end: must be after start"));
    }
    if end.unix_millis() - start.unix_millis() > MAX_DAYS * DAY_MS {
        return Err(ApiError::invalid("end", format!("end: a range covers at most {MAX_DAYS} days")));
    }
    Ok((start, end))
}

fn totals(requests: u64, tokens: u64, cost: Usd) -> Value {
    json!({ "total_requests": requests, "total_usage_tokens": tokens, "total_cost": cost.to_string(),
        "total_charge": cost.to_string() })
}

async fn usage_of(
    state: &AppState,
    wallet: &WalletId,
    key: Option<&SpendKeyId>,
    params: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let (start, end) = range(params, state.now())?;
    // Read your writes: requests already answered are in the figures.
    state.recorder.flush().await;
    let (first, last) = (start.unix_day(), end.plus_millis(-1).unix_day());
    let days: HashMap<i64, DayTotal> =
        state.store.usage_by_day(wallet, key, first, last).await?.into_iter().map(|d| (d.day, d)).collect();
    let items: Vec<Value> = (first..=last)
        .map(|day| {
            let d = days.get(&day).cloned().unwrap_or_default();
            let from = Timestamp::from_unix_millis(day * DAY_MS);
            let mut item = totals(d.requests, d.tokens, d.spend);
            item["date"] = json!(from.to_string()[..10]);
            item["start"] = json!(from.to_string());
            item["end"] = json!(from.plus_millis(DAY_MS).to_string());
            item
        })
        .collect();
    let sum = days.values().fold((0, 0, Usd::ZERO), |(r, t, c), d| (r + d.requests, t + d.tokens, c + d.spend));
    let by_model: Vec<Value> = state
        .store
        .usage_by_model(wallet, key, start, end)
        .await?
        .into_iter()
        .map(|m| {
            let mut v = totals(m.requests, m.tokens, m.spend);
            v["model"] = json!(m.model);
            v["provider"] = json!(m.provider);
            v
        })
        .collect();
    Ok(json!({ "items": items, "totals": totals(sum.0, sum.1, sum.2), "by_model": by_model }))
}

pub async fn wallet_usage(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Query(p): Params,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(usage_of(&state, &auth.wallet_id, None, &p).await?))
}

pub async fn key_usage(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
    Query(p): Params,
) -> Result<Json<Value>, ApiError> {
    let key = super::keys::get(&state, &auth.wallet_id, &SpendKeyId::new(id)).await?;
    Ok(Json(usage_of(&state, &auth.wallet_id, Some(&key.id), &p).await?))
}

fn status_word(status: u16) -> &'static str {
    match status {
        200..=299 => "completed",
        499 => "cancelled",
        _ => "error",
    }
}

pub fn record_view(r: &RequestRecord) -> Value {
    let u = &r.usage;
    json!({
        "request_id": r.id,
        "spend_key_id": r.key_id.as_str(),
        "model": r.model,
        "provider": r.provider,
        "endpoint": r.endpoint,
        "status": status_word(r.status),
        "http_status": r.status,
        "model_usage": {
            "input_tokens": u.input,
            "cached_input_tokens": u.cached_input,
            "cache_write_tokens": u.cache_write,
            "output_tokens": u.output,
            "total_tokens": u.total(),
        },
        "cost": r.cost.to_string(),
        "latency_ms": r.latency_ms,
        "created_at": r.created_at.to_string(),
    })
}

fn key_filter(p: &HashMap<String, String>) -> Option<SpendKeyId> {
    p.get("spend_key_id").filter(|k| !k.is_empty()).map(SpendKeyId::new)
}

pub async fn list_requests(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Query(p): Params,
) -> Result<Json<Value>, ApiError> {
    let (before, limit) = super::parse_page(&p, CURSOR_PREFIX)?;
    state.recorder.flush().await;
    let key = key_filter(&p);
    let rows = state.store.list_requests(&auth.wallet_id, key.as_ref(), before, limit + 1).await?;
    Ok(Json(super::page_of(rows, limit, CURSOR_PREFIX, record_view)))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

pub async fn export_requests(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Query(p): Params,
) -> Result<Response, ApiError> {
    let start = instant(&p, "start")?.unwrap_or(Timestamp::EPOCH);
    let end = instant(&p, "end")?.unwrap_or(Timestamp::from_unix_millis(i64::MAX));
    state.recorder.flush().await;
    let key = key_filter(&p);
    let mut csv = String::from(
        "created_at,request_id,spend_key_id,model,provider,endpoint,status,http_status,input_tokens,\
         cached_input_tokens,cache_write_tokens,output_tokens,total_tokens,cost_usd,latency_ms\n",
    );
    let (mut before, mut rows) = (None, 0usize);
    'pages: loop {
        let page = state.store.list_requests(&auth.wallet_id, key.as_ref(), before, 1000).await?;
        let Some((last, _)) = page.last() else { break };
        before = Some(*last);
        for (_, r) in &page {
            if r.created_at >= end {
                continue;
            }
            if r.created_at < start || rows >= MAX_EXPORT {
                break 'pages;
            }
            let u = &r.usage;
            let fields = [
                r.created_at.to_string(),
                r.id.clone(),
                r.key_id.to_string(),
                r.model.clone(),
                r.provider.clone(),
                r.endpoint.clone(),
                status_word(r.status).to_string(),
                r.status.to_string(),
                u.input.to_string(),
                u.cached_input.to_string(),
                u.cache_write.to_string(),
                u.output.to_string(),
                u.total().to_string(),
                r.cost.to_string(),
                r.latency_ms.to_string(),
            ];
            csv.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            csv.push('\n');
            rows += 1;
        }
    }
    let mut resp = csv.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"spendgate-requests.csv\""),
    );
    Ok(resp)
}
