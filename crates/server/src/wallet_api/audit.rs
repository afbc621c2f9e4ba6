//! `GET /v1/audit_log`: the wallet's management actions, newest first.

use super::openapi::ErrorView;
use super::views::{AuditEntryView, ListView};
use crate::auth::WalletAuth;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use std::collections::HashMap;

const CURSOR_PREFIX: &str = "aud_cur_";

/// One page (`limit`, `cursor`), optionally of one target's entries (`target_id`).
#[utoipa::path(get, path = "/v1/audit_log", tag = "audit", operation_id = "listAuditLog",
    summary = "The wallet's management actions, newest first",
    params(
        super::openapi::Page,
        ("target_id" = Option<String>, Query, description = "Only the entries about this id"),
    ),
    responses(
        (status = 200, description = "One page", body = ListView<AuditEntryView>),
        (status = 400, description = "`limit` or `cursor` is invalid", body = ErrorView),
    ))]
pub async fn list(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Json<ListView<AuditEntryView>>, ApiError> {
    let (before, limit) = super::parse_page(&p, CURSOR_PREFIX)?;
    let target = p.get("target_id").map(String::as_str).filter(|t| !t.is_empty());
    let rows = state.store.audit_log(&auth.wallet_id, target, before, limit + 1).await?;
    Ok(Json(super::page_of(rows, limit, CURSOR_PREFIX, AuditEntryView::new)))
}
