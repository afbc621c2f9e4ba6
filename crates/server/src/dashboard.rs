//! The web dashboard: its embedded assets (no CDN, works offline) at `/`, and sign-in
//! sessions. Signing in with a wallet API key gives an HttpOnly, SameSite=Strict cookie
//! (Secure behind TLS) and a CSRF token that the page keeps in memory and sends as
//! `x-csrf-token` on every change; the key itself never reaches the browser's storage.
//! Everything else the dashboard shows comes from the wallet API.

use crate::auth::{Principal, SESSION_COOKIE, check_csrf, session};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::random;
use crate::serve::OverTls;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use spendgate_core::secret::base62;
use spendgate_core::{Action, Actor, Secret};
use spendgate_store::Session;

/// How long a dashboard session lasts.
pub const SESSION_HOURS: i64 = 12;

const INDEX: &str = include_str!("../dashboard/index.html");
const APP_JS: &str = include_str!("../dashboard/app.js");
const APP_CSS: &str = include_str!("../dashboard/app.css");
const FAVICON: &str = include_str!("../dashboard/favicon.svg");

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(|| async { asset(INDEX, "text/html; charset=utf-8") }))
        .route("/assets/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/assets/app.css", get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }))
        .route("/assets/favicon.svg", get(|| async { asset(FAVICON, "image/svg+xml") }))
        .route("/api/session", get(current).post(sign_in).delete(sign_out))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The cookie, `Secure` when the request came over TLS (ours, or a proxy's that says so
/// with X-Forwarded-Proto).
fn cookie(headers: &HeaderMap, tls: Option<Extension<OverTls>>, value: &str, max_age: i64) -> HeaderValue {
    let secure = tls.is_some() || headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes() == b"https");
    let c = format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("sg_session=; Max-Age=0; Path=/"))
}

async fn view(state: &AppState, s: &Session) -> Result<serde_json::Value, ApiError> {
    let name = state.store.wallet(&s.wallet_id).await?.map(|w| w.name).unwrap_or_default();
    Ok(json!({
        "wallet_id": s.wallet_id.as_str(),
        "wallet_name": name,
        "csrf_token": s.csrf_token,
        "expires_at": s.expires_at.to_string(),
    }))
}

fn signed_out() -> ApiError {
    ApiError::unauthorized("not signed in, or the session expired; sign in with a wallet API key")
}

async fn current(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    let s = session(&state, &headers).await?.ok_or_else(signed_out)?;
    Ok(Json(view(&state, &s).await?))
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    addr: Option<Extension<crate::guard::ClientAddr>>,
    tls: Option<Extension<OverTls>>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let key = body["wallet_key"]
        .as_str()
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("wallet_key", "wallet_key: is required (your wallet API key, lava_wk_...)"))?;
    let addr = addr.map(|Extension(a)| a.0);
    state.auth_guard.check(addr)?;
    let wallet_key = state.store.wallet_key_by_hash(&Secret::presented(key.trim()).hash()).await?.ok_or_else(|| {
        state.auth_guard.failed(addr);
        ApiError::unauthorized("that wallet API key is not valid (unknown or revoked)").with_code("invalid_api_key")
    })?;
    let token = Secret::generate("sgs_", random::bytes()?);
    let now = state.now();
    let session = Session {
        token_hash: token.hash(),
        wallet_id: wallet_key.wallet_id,
        wallet_key_id: wallet_key.id,
        csrf_token: base62(&random::bytes::<24>()?),
        created_at: now,
        expires_at: now.plus_millis(SESSION_HOURS * 3_600_000),
    };
    let by = Principal::new(session.wallet_id.clone(), Actor::WalletKey(session.wallet_key_id.clone()), addr, &headers);
    let audit = by.audit(Action::SessionCreated, session.wallet_key_id.as_str(), json!({}), now)?;
    state.store.create_session(&session, &audit).await?;
    tracing::info!(wallet = %session.wallet_id, "dashboard sign-in");
    let mut r = Json(view(&state, &session).await?).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie(&headers, tls, token.expose(), SESSION_HOURS * 3600));
    Ok(r)
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    addr: Option<Extension<crate::guard::ClientAddr>>,
    tls: Option<Extension<OverTls>>,
) -> Result<Response, ApiError> {
    let s = session(&state, &headers).await?.ok_or_else(signed_out)?;
    check_csrf(&s, &Method::DELETE, &headers)?;
    let by = Principal::new(
        s.wallet_id.clone(),
        Actor::Session(s.wallet_key_id.clone()),
        addr.map(|Extension(a)| a.0),
        &headers,
    );
    let now = state.now();
    let audit = by.audit(Action::SessionRevoked, s.wallet_key_id.as_str(), json!({}), now)?;
    state.store.revoke_session(&s.token_hash, now, &audit).await?;
    let mut r = Json(json!({ "success": true })).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie(&headers, tls, "", 0));
    Ok(r)
}
