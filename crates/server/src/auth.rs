//! Who is calling: the credential from `Authorization: Bearer` or `x-api-key`, or the
//! dashboard's session cookie.

use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use spendgate_core::{Action, Actor, AuditEntry, AuditId, Secret, SpendKey, Timestamp, WalletId, WalletKey};
use spendgate_store::Session;
use subtle::ConstantTimeEq;

/// A shared secret an operator configures (the metrics token): compared with requests
/// in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: &str) -> Token {
        Token(token.to_string())
    }

    /// Whether the request's `Authorization: Bearer` is this token.
    pub fn presented_in(&self, headers: &HeaderMap) -> bool {
        presented_key(headers).is_some_and(|p| p.expose().as_bytes().ct_eq(self.0.as_bytes()).into())
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(****)")
    }
}

/// The key a request presented, if any: `Authorization: Bearer <key>` or `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<Secret> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let api_key = || headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer.or_else(api_key).map(str::trim).filter(|k| !k.is_empty()).map(Secret::presented)
}

fn require_key(parts: &Parts) -> Result<Secret, ApiError> {
    let secret = presented_key(&parts.headers).ok_or_else(|| {
        ApiError::unauthorized("missing API key: send it as Authorization: Bearer <key> (or x-api-key)")
    })?;
    if secret.looks_like_preview() {
        return Err(ApiError::unauthorized(
            "that is a key preview (it ends in ****), not the full key; use the full key, or rotate the key to get a new one",
        ));
    }
    Ok(secret)
}

fn is_spend_key(state: &AppState, secret: &Secret) -> bool {
    secret.expose().starts_with(&state.config.spend_key_prefix)
}

async fn wallet_key(state: &AppState, secret: &Secret) -> Result<WalletKey, ApiError> {
    state
        .store
        .wallet_key_by_hash(&secret.hash())
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid wallet API key (unknown or revoked)"))
}

/// The client's address, when the server put it on the request.
pub fn client_addr(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions.get::<crate::guard::ClientAddr>().map(|a| a.0)
}

/// Who is managing a wallet, and from where: a wallet API key, a dashboard session
/// signed in with one, or the operator's command.
#[derive(Clone, Debug)]
pub struct Principal {
    pub wallet_id: WalletId,
    pub actor: Actor,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// The longest user agent the audit log keeps (in characters).
const USER_AGENT_MAX: usize = 256;

impl Principal {
    /// `actor` of `wallet_id`, calling from `ip` with these request headers.
    pub fn new(wallet_id: WalletId, actor: Actor, ip: Option<std::net::IpAddr>, headers: &HeaderMap) -> Principal {
        Principal { wallet_id, actor, ip, user_agent: user_agent(headers) }
    }

    fn of_request(wallet_id: WalletId, actor: Actor, parts: &Parts) -> Principal {
        Principal::new(wallet_id, actor, client_addr(&parts.extensions), &parts.headers)
    }

    /// The operator, acting on the store directly (`spendgate wallets ...`, the demo).
    pub fn operator(wallet_id: WalletId) -> Principal {
        Principal { wallet_id, actor: Actor::Operator, ip: None, user_agent: None }
    }

    /// The audit entry for an action of this principal's.
    pub fn audit(
        &self,
        action: Action,
        target_id: &str,
        changes: serde_json::Value,
        now: Timestamp,
    ) -> Result<AuditEntry, ApiError> {
        Ok(AuditEntry {
            id: AuditId::generate(crate::random::bytes()?),
            wallet_id: self.wallet_id.clone(),
            actor: self.actor.clone(),
            action,
            target_id: target_id.to_string(),
            changes,
            ip: self.ip.map(|ip| ip.to_string()),
            user_agent: self.user_agent.clone(),
            created_at: now,
        })
    }
}

/// The request's `User-Agent`, cut to [`USER_AGENT_MAX`] characters.
fn user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(axum::http::header::USER_AGENT)?;
    let ua = String::from_utf8_lossy(ua.as_bytes());
    Some(ua.chars().take(USER_AGENT_MAX).collect())
}

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "sg_session";

/// The value of cookie `name`, if the request has one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The live dashboard session of a request, if its cookie names one.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else { return Ok(None) };
    Ok(state.store.session(&Secret::presented(token).hash(), state.now()).await?)
}

/// A session's CSRF check for requests that change something: the `x-csrf-token`
/// header must carry the session's token.
pub fn check_csrf(session: &Session, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = headers.get("x-csrf-token").map(|v| v.as_bytes()).unwrap_or_default();
    if sent.ct_eq(session.csrf_token.as_bytes()).into() {
        return Ok(());
    }
    Err(ApiError::new(ErrorKind::PermissionDenied, "missing or wrong x-csrf-token header for this dashboard session"))
}

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    if presented_key(&parts.headers).is_none()
        && let Some(session) = session(state, &parts.headers).await?
    {
        check_csrf(&session, &parts.method, &parts.headers)?;
        return Ok(Principal::of_request(session.wallet_id, Actor::Session(session.wallet_key_id), parts));
    }
    if presented_key(&parts.headers).is_none() && cookie(&parts.headers, SESSION_COOKIE).is_some() {
        return Err(ApiError::unauthorized("your dashboard session has expired or was signed out; sign in again"));
    }
    let secret = require_key(parts)?;
    if is_spend_key(state, &secret) {
        return Err(ApiError::unauthorized(format!(
            "a spend key ({}...) cannot manage keys; use a wallet API key ({}...)",
            state.config.spend_key_prefix, state.config.wallet_key_prefix
        )));
    }
    let addr = client_addr(&parts.extensions);
    state.auth_guard.check(addr)?;
    let key = wallet_key(state, &secret).await.inspect_err(|_| state.auth_guard.failed(addr))?;
    Ok(Principal::of_request(key.wallet_id, Actor::WalletKey(key.id), parts))
}

/// An authenticated wallet manager: a wallet API key, or a dashboard session (with its
/// CSRF token on changes). The only credentials of the management routes.
pub struct WalletAuth(pub Principal);

impl FromRequestParts<AppState> for WalletAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(WalletAuth(principal(parts, state).await?))
    }
}

/// A caller of a route that both kinds of key may use (`GET /v1/models`).
pub enum Caller {
    Wallet(Principal),
    /// A spend key that is usable now (active, not revoked, not expired).
    Spend(Box<SpendKey>),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(secret) = presented_key(&parts.headers)
            && is_spend_key(state, &secret)
        {
            let (_, key) = crate::gateway::authenticate_current(state, &parts.headers).await?;
            return Ok(Caller::Spend(Box::new((*key).clone())));
        }
        Ok(Caller::Wallet(principal(parts, state).await?))
    }
}
