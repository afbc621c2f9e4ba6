//! Usage over time and the request log: `GET /v1/usage`, `GET /v1/spend_keys/{id}/usage`
//! (Lava's usage shape: an item per UTC day, zero days included, and totals; plus
//! `by_model`), `GET /v1/requests` (newest first, cursor pages) and
//! `GET /v1/requests/export` (CSV).

use super::openapi::ErrorView;
use super::views::{ListView, ModelUsageView, RequestView, TotalsView, UsageDayView, UsageView, status_word};
use crate::auth::WalletAuth;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use spendgate_core::timestamp::DAY_MS;
use spendgate_core::{SpendKeyId, Timestamp, Usd, WalletId};
use spendgate_store::DayTotal;
use std::collections::HashMap;

/// A usage call's range (see [`range`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Parameters only: `range` reads them.
pub struct UsageRange {
    /// From this instant (RFC 3339) or day (`YYYY-MM-DD`, midnight UTC).
    #[param(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}", example = "2026-11-01")]
    start: String,
    /// Until this instant or day, exclusive (default: now); at most 366 days after `start`.
    #[param(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}", example = "2026-11-08")]
    end: Option<String>,
}

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

async fn usage_of(
    state: &AppState,
    wallet: &WalletId,
    key: Option<&SpendKeyId>,
    params: &HashMap<String, String>,
) -> Result<UsageView, ApiError> {
    let (start, end) = range(params, state.now())?;
    // Read your writes: requests already answered are in the figures.
    state.recorder.flush().await;
    let (first, last) = (start.unix_day(), end.plus_millis(-1).unix_day());
    let days: HashMap<i64, DayTotal> =
        state.store.usage_by_day(wallet, key, first, last).await?.into_iter().map(|d| (d.day, d)).collect();
    let items = (first..=last)
        .map(|day| {
            let d = days.get(&day).cloned().unwrap_or_default();
            let from = Timestamp::from_unix_millis(day * DAY_MS);
            UsageDayView {
                date: from.to_string()[..10].to_string(),
                start: from.to_string(),
                end: from.plus_millis(DAY_MS).to_string(),
                totals: TotalsView::new(d.requests, d.tokens, d.spend),
            }
        })
        .collect();
    let sum = days.values().fold((0, 0, Usd::ZERO), |(r, t, c), d| (r + d.requests, t + d.tokens, c + d.spend));
    let by_model = state
        .store
        .usage_by_model(wallet, key, start, end)
        .await?
        .into_iter()
        .map(|m| ModelUsageView {
            totals: TotalsView::new(m.requests, m.tokens, m.spend),
            model: m.model,
            provider: m.provider,
        })
        .collect();
    Ok(UsageView { items, totals: TotalsView::new(sum.0, sum.1, sum.2), by_model })
}

#[utoipa::path(get, path = "/v1/usage", tag = "usage", operation_id = "walletUsage",
    summary = "The wallet's usage per UTC day and per model",
    params(
        UsageRange,
    ),
    responses(
        (status = 200, description = "Usage over the range", body = UsageView),
        (status = 400, description = "`start` or `end` is missing or invalid (`param` names it)", body = ErrorView),
    ))]
pub async fn wallet_usage(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Query(p): Params,
) -> Result<Json<UsageView>, ApiError> {
    Ok(Json(usage_of(&state, &auth.wallet_id, None, &p).await?))
}

#[utoipa::path(get, path = "/v1/spend_keys/{id}/usage", tag = "usage", operation_id = "spendKeyUsage",
    summary = "One spend key's usage per UTC day and per model",
    params(
        ("id" = String, Path, description = "The spend key's id"),
        UsageRange,
    ),
    responses(
        (status = 200, description = "Usage over the range", body = UsageView),
        (status = 400, description = "`start` or `end` is missing or invalid (`param` names it)", body = ErrorView),
        (status = 404, description = "No such key in this wallet (or it was revoked)", body = ErrorView),
    ))]
pub async fn key_usage(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
    Query(p): Params,
) -> Result<Json<UsageView>, ApiError> {
    let key = super::keys::get(&state, &auth.wallet_id, &SpendKeyId::new(id)).await?;
    Ok(Json(usage_of(&state, &auth.wallet_id, Some(&key.id), &p).await?))
}

fn key_filter(p: &HashMap<String, String>) -> Option<SpendKeyId> {
    p.get("spend_key_id").filter(|k| !k.is_empty()).map(SpendKeyId::new)
}

#[utoipa::path(get, path = "/v1/requests", tag = "usage", operation_id = "listRequests",
    summary = "The wallet's model requests, newest first",
    params(
        super::openapi::Page,
        ("spend_key_id" = Option<String>, Query, description = "Only this key's requests"),
    ),
    responses(
        (status = 200, description = "One page", body = ListView<RequestView>),
        (status = 400, description = "`limit` or `cursor` is invalid", body = ErrorView),
    ))]
pub async fn list_requests(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Query(p): Params,
) -> Result<Json<ListView<RequestView>>, ApiError> {
    let (before, limit) = super::parse_page(&p, CURSOR_PREFIX)?;
    state.recorder.flush().await;
    let key = key_filter(&p);
    let rows = state.store.list_requests(&auth.wallet_id, key.as_ref(), before, limit + 1).await?;
    Ok(Json(super::page_of(rows, limit, CURSOR_PREFIX, RequestView::new)))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

#[utoipa::path(get, path = "/v1/requests/export", tag = "usage", operation_id = "exportRequests",
    summary = "The wallet's model requests as CSV (newest first, at most 100,000 rows)",
    params(
        ("start" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}", example = "2026-11-01",
            description = "From this instant (RFC 3339) or day (`YYYY-MM-DD`)"),
        ("end" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}", example = "2026-11-08",
            description = "Until this instant or day, exclusive"),
        ("spend_key_id" = Option<String>, Query, description = "Only this key's requests"),
    ),
    responses(
        (status = 200, description = "A CSV file with a header row", content_type = "text/csv", body = String),
        (status = 400, description = "`start` or `end` is invalid", body = ErrorView),
    ))]
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
