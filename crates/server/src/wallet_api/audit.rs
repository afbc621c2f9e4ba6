//! `GET /v1/audit_log`: the wallet's management actions, newest first.

use crate::auth::WalletAuth;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use spendgate_core::AuditEntry;
use std::collections::HashMap;

const CURSOR_PREFIX: &str = "aud_cur_";

fn entry_view(e: &AuditEntry) -> Value {
    let (kind, id) = e.actor.parts();
    json!({
        "audit_id": e.id.as_str(),
        "action": e.action.as_str(),
        "actor": { "type": kind, "id": id },
        "target_id": e.target_id,
        "changes": e.changes,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "created_at": e.created_at.to_string(),
    })
}

/// One page (`limit`, `cursor`), optionally of one target's entries (`target_id`).
pub async fn list(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (before, limit) = super::parse_page(&p, CURSOR_PREFIX)?;
    let target = p.get("target_id").map(String::as_str).filter(|t| !t.is_empty());
    let rows = state.store.audit_log(&auth.wallet_id, target, before, limit + 1).await?;
    Ok(Json(super::page_of(rows, limit, CURSOR_PREFIX, entry_view)))
}
