//! The gateway: the provider endpoints a spend key is used on. A request is checked in
//! the order of `shared/spec/gateway.md` (key known, key usable, format, model known,
//! model allowed, rate limit, request limit, spend limit), admitted with a reservation of
//! its worst-case cost, forwarded with the operator's credential, and settled to its real
//! cost from the provider's usage (streams included).

pub mod keys;
pub mod recorder;
pub mod settle;
pub mod spool;
pub mod stream;
pub mod upstream;

use crate::auth::presented_key;
use crate::counters::{AdmitError, Admitted};
use crate::error::{ApiError, ErrorFormat, ErrorKind};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::BytesMut;
use keys::KeyEntry;
use serde_json::Value;
use settle::{Estimate, Identity, Settlement, Trace};
use spendgate_core::meter::{CostBound, Headroom, Refusal};
use spendgate_core::{Model, SpendKey, SpendKeyId, Timestamp, TokenUsage, Unusable, WireFormat};
use spendgate_wire::{ReadError, RequestFacts, RequestKind, StreamUsage, anthropic, openai, translate};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stream::{MeteredStream, Output};
use upstream::{SendError, Sent, UpstreamResponse};

/// Request bodies up to the providers' own limit (Anthropic's is 32 MB).
pub const GATEWAY_BODY_LIMIT: usize = 32 << 20;
/// Output tokens assumed for a model whose catalog entry gives no maximum.
const FALLBACK_MAX_OUTPUT: u64 = 32_768;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Responses,
    Embeddings,
    Messages,
    CountTokens,
}

impl Endpoint {
    pub fn format(self) -> WireFormat {
        match self {
            Endpoint::Chat | Endpoint::Responses | Endpoint::Embeddings => WireFormat::OpenAi,
            Endpoint::Messages | Endpoint::CountTokens => WireFormat::Anthropic,
        }
    }

    pub fn error_format(self) -> ErrorFormat {
        match self.format() {
            WireFormat::OpenAi => ErrorFormat::OpenAi,
            WireFormat::Anthropic => ErrorFormat::Anthropic,
        }
    }

    /// The path clients use.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
        }
    }

    /// The path after the provider's base URL (OpenAI bases include `/v1`, Anthropic's not).
    fn upstream_path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Responses => "/responses",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
        }
    }

    fn usage_format(self) -> spendgate_wire::UsageFormat {
        match self.openai() {
            Some(ep) => ep.usage_format(),
            None => spendgate_wire::UsageFormat::Messages,
        }
    }

    fn openai(self) -> Option<openai::Endpoint> {
        match self {
            Endpoint::Chat => Some(openai::Endpoint::Chat),
            Endpoint::Responses => Some(openai::Endpoint::Responses),
            Endpoint::Embeddings => Some(openai::Endpoint::Embeddings),
            _ => None,
        }
    }
}

impl Endpoint {
    /// The endpoint a path names.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/v1/chat/completions" => Endpoint::Chat,
            "/v1/responses" => Endpoint::Responses,
            "/v1/embeddings" => Endpoint::Embeddings,
            "/v1/messages" => Endpoint::Messages,
            "/v1/messages/count_tokens" => Endpoint::CountTokens,
            _ => return None,
        })
    }

    fn request_kind(self) -> RequestKind {
        match self {
            Endpoint::Chat => RequestKind::Chat,
            Endpoint::Responses => RequestKind::Responses,
            Endpoint::Embeddings => RequestKind::Embeddings,
            Endpoint::Messages => RequestKind::Messages,
            Endpoint::CountTokens => RequestKind::CountTokens,
        }
    }
}

/// The gateway's endpoints in the router, for what the server does not send to
/// [`handle`] directly (another method than POST gets the router's 405).
pub fn routes() -> axum::Router<AppState> {
    let mut router = axum::Router::new();
    for endpoint in
        [Endpoint::Chat, Endpoint::Responses, Endpoint::Embeddings, Endpoint::Messages, Endpoint::CountTokens]
    {
        router = router.route(
            endpoint.path(),
            post(move |State(state): State<AppState>, req: axum::extract::Request| async move {
                handle(&state, endpoint, req).await
            }),
        );
    }
    router
}

/// What a request's metrics and log line need, filled in by [`proxy`] as it learns it.
#[derive(Default)]
struct Observed {
    /// The gateway's id for the request (its record's), and the client's
    /// `x-request-id` when it sent a usable one.
    id: String,
    client_id: Option<HeaderValue>,
    /// The key, once it is known.
    key: Option<SpendKeyId>,
    /// The provider's and model's label values (empty until the model is known).
    provider: &'static str,
    model: &'static str,
    /// Time spent waiting for the provider (its answer's head; a whole answer's body).
    upstream: Duration,
    /// A stream was started: its duration is observed when it ends.
    streaming: bool,
    /// The request was settled, or will be when its stream ends: the settlement writes
    /// its log line.
    logged: bool,
}

/// The client's `x-request-id`, if it is one we can echo and log as it is: 1 to 128
/// characters of letters, digits and `-_.:`.
fn client_request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let v = headers.get(&X_REQUEST_ID)?;
    let ok =
        (1..=128).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
    ok.then(|| v.clone())
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Serves one request to a gateway endpoint.
pub async fn handle<B>(state: &AppState, endpoint: Endpoint, req: Request<B>) -> Response
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let mut seen = Observed {
        id: crate::random::request_id(),
        client_id: client_request_id(&parts.headers),
        ..Observed::default()
    };
    let mut response = match proxy(state, endpoint, &parts.headers, &parts.uri, body, &mut seen).await {
        Ok(response) => response,
        Err(e) => e.render(endpoint.error_format()),
    };
    let status = response.status().as_u16();
    let (m, format) = (&state.metrics, endpoint.format().as_str());
    m.request(format, seen.provider, seen.model, status);
    let elapsed = arrived.elapsed();
    m.overhead(elapsed.saturating_sub(seen.upstream));
    if !seen.streaming {
        m.duration(format, elapsed);
    }
    if !seen.logged {
        // Refused, or nothing reached the provider: nothing charged.
        tracing::info!(
            request_id = seen.client_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(&seen.id),
            key = seen.key.as_ref().map(SpendKeyId::as_str),
            endpoint = endpoint.path(),
            model = seen.model,
            status,
            ms = elapsed.as_millis() as u64,
            "request"
        );
    }
    // The provider's own request id stays available under another name.
    let headers = response.headers_mut();
    if let Some(theirs) = headers.remove(&X_REQUEST_ID) {
        headers.insert(HeaderName::from_static("x-provider-request-id"), theirs);
    }
    let ours = seen.client_id.unwrap_or_else(|| HeaderValue::try_from(seen.id).unwrap_or(HeaderValue::from_static("")));
    headers.insert(X_REQUEST_ID, ours);
    response.extensions_mut().insert(crate::serve::Logged);
    response
}

/// Checks 1 and 2: the key is known and usable. Returns its entry and current rules.
/// In cluster mode a key this instance has not seen (created through another instance)
/// is looked up in the store, and a key is refused as paused, revoked or expired only
/// once its copy is confirmed current: another instance may have resumed it a moment
/// ago, before the change notice arrived. (A usable key is confirmed by admission.)
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<(Arc<KeyEntry>, Arc<SpendKey>), ApiError> {
    let (entry, key) = known_key(state, headers).await?;
    if key.check_usable(state.now()).is_ok() {
        return Ok((entry, key));
    }
    let (entry, key) = if state.counters.is_current(&key).await {
        (entry, key)
    } else {
        state.reload_key(&key.id).await?;
        known_key(state, headers).await?
    };
    usable(state, entry, key)
}

/// Check 2 on a key's copy.
fn usable(
    state: &AppState,
    entry: Arc<KeyEntry>,
    key: Arc<SpendKey>,
) -> Result<(Arc<KeyEntry>, Arc<SpendKey>), ApiError> {
    key.check_usable(state.now()).map_err(|why| {
        state.metrics.rejected(match why {
            Unusable::Paused => "key_paused",
            Unusable::Revoked(_) => "key_revoked",
            Unusable::Expired(_) => "key_expired",
        });
        ApiError::unauthorized(why.to_string())
    })?;
    Ok((entry, key))
}

/// Check 1: the presented secret is a known spend key.
async fn known_key(state: &AppState, headers: &HeaderMap) -> Result<(Arc<KeyEntry>, Arc<SpendKey>), ApiError> {
    let secret = presented_key(headers).ok_or_else(|| {
        ApiError::unauthorized("missing API key: send your spend key as Authorization: Bearer lava_sk_... or x-api-key")
    })?;
    if secret.looks_like_preview() {
        return Err(ApiError::unauthorized(
            "that is a key preview (it ends in ****), not the full key; use the full spend key, or rotate the key to get a new one",
        ));
    }
    let hash = secret.hash();
    // In memory, else in the store (a key not used since start, or created through
    // another instance); only secrets shaped like spend keys are looked up there.
    let found = match state.keys.find(&hash) {
        Some(entry) => Some(entry),
        None if secret.expose().starts_with(&state.config.spend_key_prefix) => {
            state.keys.lookup(&*state.store, &hash, state.now()).await.map_err(ApiError::from)?
        }
        None => None,
    };
    let Some(entry) = found else {
        let message = if secret.expose().starts_with(&state.config.wallet_key_prefix) {
            format!(
                "a wallet API key cannot make model requests; use a spend key ({}...)",
                state.config.spend_key_prefix
            )
        } else {
            "invalid API key: no spend key has this secret (if it was rotated, use the new key)".to_string()
        };
        return Err(ApiError::unauthorized(message));
    };
    let key = entry.lock().key.clone();
    Ok((entry, key))
}

/// Checks 1 and 2 with a key that another instance may have changed: in cluster mode
/// the copy in memory is confirmed current (reloaded if not) before it is used.
pub async fn authenticate_current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<KeyEntry>, Arc<SpendKey>), ApiError> {
    let (entry, key) = authenticate(state, headers).await?;
    if state.counters.is_current(&key).await {
        return Ok((entry, key));
    }
    state.reload_key(&key.id).await?;
    authenticate(state, headers).await
}

fn base_url_hint(headers: &HeaderMap, format: WireFormat) -> String {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("HOST:PORT");
    match format {
        WireFormat::OpenAi => format!("http://{host}/v1"),
        WireFormat::Anthropic => format!("http://{host}"),
    }
}

fn format_name(f: WireFormat) -> &'static str {
    match f {
        WireFormat::OpenAi => "OpenAI",
        WireFormat::Anthropic => "Anthropic",
    }
}

/// Check 3: the key's format is the endpoint's.
fn check_format(key: &SpendKey, endpoint: Endpoint, headers: &HeaderMap) -> Result<(), ApiError> {
    if key.request_shape == endpoint.format() {
        return Ok(());
    }
    let (shape, used) = (format_name(key.request_shape), format_name(endpoint.format()));
    let hint = match key.request_shape {
        WireFormat::OpenAi => "OpenAI-format tools append /chat/completions to it",
        WireFormat::Anthropic => "Anthropic-format tools append /v1/messages to it",
    };
    Err(ApiError::invalid(
        "request_shape",
        format!(
            "wrong API format: this spend key is for the {shape} format (request_shape {}), but {} is an {used}-format endpoint. \
             Use the base URL {} ({hint}), or change the key's request_shape",
            key.request_shape,
            endpoint.path(),
            base_url_hint(headers, key.request_shape)
        ),
    ))
}

/// The request body, up to [`GATEWAY_BODY_LIMIT`] (refused at once when its declared
/// length is over).
async fn read_body<B>(headers: &HeaderMap, body: B) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    use http_body_util::BodyExt;
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body is larger than the limit of {GATEWAY_BODY_LIMIT} bytes"),
        )
    };
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > GATEWAY_BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let mut bytes = BytesMut::new();
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::invalid("body", format!("could not read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > GATEWAY_BODY_LIMIT {
                return Err(too_large());
            }
            if bytes.is_empty() && body.is_end_stream() {
                return Ok(data); // the whole body in one piece: no copy
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes.freeze())
}

/// What the request asks for, read from its bytes.
fn read_facts(endpoint: Endpoint, bytes: &[u8]) -> Result<RequestFacts, ApiError> {
    spendgate_wire::request::read(endpoint.request_kind(), bytes).map_err(|e| match e {
        ReadError::Json(_) => ApiError::invalid("body", e.to_string()),
        ReadError::Field(e) => ApiError::invalid(e.param.clone(), e.to_string()),
    })
}

/// The request as a tree, parsed at the first edit that needs one.
fn tree<'a>(json: &'a mut Option<Value>, bytes: &[u8]) -> Result<&'a mut Value, ApiError> {
    match json {
        Some(v) => Ok(v),
        None => {
            let v = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::invalid("body", format!("the request body is not valid JSON ({e})")))?;
            Ok(json.insert(v))
        }
    }
}

/// Checks 4 and 5: the model is in the catalog and the key may use it.
fn resolve_model<'a>(state: &'a AppState, key: &SpendKey, name: &str) -> Result<&'a Model, ApiError> {
    let model = state.config.catalog.model(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "model {name:?} is not in this gateway's catalog; GET /v1/models lists the models it routes"
        ))
        .with_code("model_not_found")
    })?;
    if !key.allows(model) {
        state.metrics.rejected("model_not_allowed");
        let models = key.allowed_models.as_ref().map_or("all models".to_string(), |m| m.join(", "));
        let providers = key.allowed_providers.as_ref().map_or("all providers".to_string(), |p| p.join(", "));
        return Err(ApiError::new(
            ErrorKind::PermissionDenied,
            format!(
                "Model not allowed: this spend key may not use {} (provider {}). Allowed models: {models}; allowed providers: {providers}",
                model.id, model.provider
            ),
        )
        .with_code("model_not_allowed"));
    }
    Ok(model)
}

fn refusal_error(state: &AppState, refusal: Refusal) -> ApiError {
    state.metrics.rejected(match refusal {
        Refusal::RateLimited { .. } => "rate_limit",
        Refusal::RequestLimit { .. } => "request_limit",
        Refusal::SpendLimit { .. } => "spend_limit",
    });
    let message = refusal.to_string();
    match refusal {
        Refusal::RateLimited { retry_after_ms, .. } => ApiError::new(ErrorKind::RateLimited, message)
            .with_code("rate_limit_exceeded")
            .with_header("retry-after", retry_after_ms.div_ceil(1000).max(1))
            .with_header("retry-after-ms", retry_after_ms)
            .with_header("x-should-retry", "true"),
        Refusal::RequestLimit { .. } | Refusal::SpendLimit { .. } => ApiError::new(ErrorKind::QuotaExceeded, message)
            .with_code("insufficient_quota")
            .with_header("x-should-retry", "false"),
    }
}

fn put(headers: &mut HeaderMap, name: HeaderName, value: impl ToString) {
    if let Ok(v) = HeaderValue::try_from(value.to_string()) {
        headers.insert(name, v);
    }
}

const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const LIMIT_USD: HeaderName = HeaderName::from_static("x-ratelimit-limit-usd");
const REMAINING_USD: HeaderName = HeaderName::from_static("x-ratelimit-remaining-usd");
const RESET_USD: HeaderName = HeaderName::from_static("x-ratelimit-reset-usd");

/// What is left of the key's caps, in `x-ratelimit-*` style.
fn limit_headers(headers: &mut HeaderMap, key: &SpendKey, headroom: Headroom, now: Timestamp) {
    if let (Some(limit), Some(left)) = (key.request_limit, headroom.requests_remaining) {
        headers.insert(LIMIT_REQUESTS, HeaderValue::from(limit.count));
        headers.insert(REMAINING_REQUESTS, HeaderValue::from(left));
        if let Some(end) = limit.cycle.window(now).end {
            headers.insert(RESET_REQUESTS, instant_value(end));
        }
    }
    if let (Some(limit), Some(left)) = (key.spend_limit, headroom.spend_remaining) {
        put(headers, LIMIT_USD, limit.amount);
        put(headers, REMAINING_USD, left);
        if let Some(end) = limit.cycle.window(now).end {
            headers.insert(RESET_USD, instant_value(end));
        }
    }
}

/// An instant as a header value (RFC 3339). The few instants in use (the ends of the
/// current day, week and month) are rendered once per thread, not per answer.
fn instant_value(at: Timestamp) -> HeaderValue {
    use std::cell::RefCell;
    thread_local! {
        static RENDERED: RefCell<Vec<(Timestamp, HeaderValue)>> = const { RefCell::new(Vec::new()) };
    }
    RENDERED.with_borrow_mut(|rendered| {
        if let Some((_, v)) = rendered.iter().find(|(t, _)| *t == at) {
            return v.clone();
        }
        let v = HeaderValue::try_from(at.to_string()).unwrap_or(HeaderValue::from_static(""));
        if rendered.len() >= 8 {
            rendered.remove(0);
        }
        rendered.push((at, v.clone()));
        v
    })
}

/// Response headers of the provider that the client may see.
const PASSED_BACK: [HeaderName; 4] = [
    axum::http::header::CONTENT_TYPE,
    HeaderName::from_static("request-id"),
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("openai-processing-ms"),
];

/// The provider's response headers that the client may see (and room for ours).
fn passed_back(resp: &UpstreamResponse) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(16);
    for name in PASSED_BACK {
        if let Some(v) = resp.headers().get(&name) {
            out.insert(name, v.clone());
        }
    }
    out
}

/// How a request reaches its provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The client's format is the provider's.
    Direct,
    /// An OpenAI chat client on an Anthropic model.
    ChatToMessages,
    /// An Anthropic messages client on an OpenAI-format model.
    MessagesToChat,
}

impl Route {
    fn choose(endpoint: Endpoint, provider: WireFormat, model: &Model) -> Result<Route, ApiError> {
        match (endpoint, provider) {
            (e, p) if e.format() == p => Ok(Route::Direct),
            (Endpoint::Chat, WireFormat::Anthropic) => Ok(Route::ChatToMessages),
            (Endpoint::Messages, WireFormat::OpenAi) => Ok(Route::MessagesToChat),
            (e, _) => Err(ApiError::invalid(
                "model",
                format!(
                    "{} cannot serve model {} (provider {}): use POST /v1/chat/completions for it",
                    e.path(),
                    model.id,
                    model.provider
                ),
            )),
        }
    }

    /// The endpoint the provider is called on.
    fn upstream(self, endpoint: Endpoint) -> Endpoint {
        match self {
            Route::Direct => endpoint,
            Route::ChatToMessages => Endpoint::Messages,
            Route::MessagesToChat => Endpoint::Chat,
        }
    }
}

fn unix_seconds(t: spendgate_core::Timestamp) -> i64 {
    t.unix_millis().div_euclid(1000)
}

async fn proxy<B>(
    state: &AppState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    uri: &Uri,
    body: B,
    seen: &mut Observed,
) -> Result<Response, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let started = Instant::now();
    let (mut entry, mut key) = if endpoint == Endpoint::CountTokens {
        authenticate_current(state, headers).await?
    } else {
        authenticate(state, headers).await?
    };
    seen.key = Some(key.id.clone());
    check_format(&key, endpoint, headers)?;
    let bytes = match tokio::time::timeout(state.config.server.body_timeout, read_body(headers, body)).await {
        Ok(read) => read?,
        Err(_) => {
            return Err(ApiError::new(
                ErrorKind::RequestTimeout,
                format!(
                    "the request body did not arrive within {} ms (server.body_timeout_ms)",
                    state.config.server.body_timeout.as_millis()
                ),
            ));
        }
    };
    let facts = read_facts(endpoint, &bytes)?;
    let model = resolve_model(state, &key, &facts.model)?;
    (seen.provider, seen.model) = (state.metrics.name(&model.provider), state.metrics.name(&model.id));
    let provider_format =
        state.config.catalog.provider(&model.provider).map(|p| p.format).ok_or_else(|| {
            ApiError::internal(format!("model {} names unknown provider {}", model.id, model.provider))
        })?;
    if endpoint == Endpoint::CountTokens && provider_format == WireFormat::OpenAi {
        // OpenAI has no token-counting endpoint: an estimate (4 characters a token).
        let estimate = facts.input_bound.div_ceil(4);
        let mut out = HeaderMap::new();
        put(&mut out, HeaderName::from_static("x-spendgate-estimated"), "true");
        return Ok((out, axum::Json(serde_json::json!({ "input_tokens": estimate }))).into_response());
    }
    let route = Route::choose(endpoint, provider_format, model)?;
    let upstream = state
        .upstreams
        .get(&model.provider)
        .ok_or_else(|| ApiError::internal(format!("no upstream for provider {}", model.provider)))?;
    if !upstream.is_configured() {
        return Err(upstream.not_configured());
    }
    let target = route.upstream(endpoint);
    if endpoint == Endpoint::CountTokens {
        // Not billed and not limited; it only needs a valid key.
        let waiting = Instant::now();
        let sent = upstream.send(target.upstream_path(), uri.query(), headers, bytes).await?;
        let sent = sent.map_err(|e| send_error(&model.provider, e))?;
        let answer = pass_back(sent, upstream.policy().idle_timeout).await;
        seen.upstream = waiting.elapsed();
        return answer.map_err(|e| broken_answer(&model.provider, &e));
    }

    // Checks 6 to 8, and the reservation.
    let model_max = model.max_output_tokens.map_or(FALLBACK_MAX_OUTPUT, u64::from);
    let max_output = match endpoint {
        Endpoint::Embeddings => 0,
        _ => facts.max_output_tokens.unwrap_or(model_max).min(model_max),
    };
    let bound = CostBound {
        input_tokens: facts.input_bound,
        max_output_tokens: max_output,
        choices: facts.choices,
        prices: model.prices,
    };
    let now = state.now();
    let openai_itself = model.provider == "openai";

    // The request in the provider's format (checked before anything is reserved). The
    // body is parsed into a tree only for an edit that needs one.
    let mut json: Option<Value> = None;
    let translated = match route {
        Route::Direct => None,
        Route::ChatToMessages => Some(translate::chat_to_messages::request(tree(&mut json, &bytes)?, max_output)),
        Route::MessagesToChat => Some(translate::messages_to_chat::request(tree(&mut json, &bytes)?, openai_itself)),
    };
    let mut translated = translated.transpose().map_err(|e| ApiError::invalid(e.param.clone(), e.to_string()))?;
    if let Some(t) = &mut translated {
        json = Some(std::mem::take(&mut t.body));
    }

    let mut reloads = 0;
    let Admitted { admission, headroom, rules, hold } = loop {
        match state.counters.admit(&entry, &key, &bound, state.config.reservation, now).await {
            Ok(admitted) => break admitted,
            Err(AdmitError::Refused(refusal)) => return Err(refusal_error(state, refusal)),
            Err(AdmitError::Unavailable(message)) => return Err(ApiError::new(ErrorKind::Unavailable, message)),
            // Another instance changed the key: checks 1 to 5 again with the new version.
            Err(AdmitError::Stale) if reloads < 3 => {
                reloads += 1;
                state.reload_key(&key.id).await?;
                (entry, key) = authenticate(state, headers).await?;
                check_format(&key, endpoint, headers)?;
                resolve_model(state, &key, &facts.model)?;
            }
            Err(AdmitError::Stale) => {
                return Err(ApiError::new(ErrorKind::Unavailable, "the key is being changed; retry in a moment"));
            }
        }
    };
    let lowered = admission.lowered_max_tokens;
    let estimate = Estimate {
        input: facts.input_bound.div_ceil(4),
        max_input: facts.input_bound,
        max_output: lowered.unwrap_or(max_output).saturating_mul(facts.choices),
    };
    let mut settlement = Settlement::new(
        entry,
        admission,
        hold,
        state.recorder.clone(),
        &rules,
        model,
        endpoint,
        estimate,
        started,
        state.metrics.clone(),
        Identity {
            record: seen.id.clone(),
            client: seen.client_id.clone(),
            trace: state.otel.as_ref().map(|otel| Trace {
                otel: otel.clone(),
                parent: headers.get("traceparent").cloned(),
                state: headers.get("tracestate").cloned(),
            }),
        },
    );

    // The budget may lower max tokens; a translated request is also held to the target
    // model's maximum (Claude Code asks for 128000, which GPT models refuse).
    let asked_over_model = route != Route::Direct && facts.max_output_tokens.is_some_and(|m| m > model_max);
    let max_tokens = lowered.or(asked_over_model.then_some(model_max));
    // `provider/model`, or a translated request: the provider's own id.
    let sent_model = json.as_ref().map_or(Some(facts.model.as_str()), |j| j["model"].as_str());
    let rename =
        sent_model != Some(model.id.as_str()) && (route != Route::Direct || !model.aliases.contains(&facts.model));
    // The gateway asks OpenAI for the usage chunk of a chat stream (and strips it again
    // when the client did not ask for it).
    let strip_usage_chunk = route == Route::Direct && endpoint == Endpoint::Chat && facts.stream && !facts.stream_usage;
    let body = if max_tokens.is_some() || rename || json.is_some() || (strip_usage_chunk && facts.stream_options) {
        let json = tree(&mut json, &bytes)?;
        if let Some(tokens) = max_tokens {
            match target.openai() {
                Some(ep) => openai::set_max_tokens(ep, json, tokens, openai_itself),
                None => anthropic::set_max_tokens(json, tokens),
            }
        }
        if strip_usage_chunk {
            openai::request_stream_usage(json);
        }
        if rename {
            json["model"] = Value::String(model.id.clone());
        }
        json_bytes(json)?
    } else if strip_usage_chunk {
        match openai::with_stream_usage(&bytes) {
            Some(spliced) => Bytes::from(spliced),
            None => {
                let json = tree(&mut json, &bytes)?;
                openai::request_stream_usage(json);
                json_bytes(json)?
            }
        }
    } else {
        bytes
    };

    let idle = upstream.policy().idle_timeout;
    let waiting = Instant::now();
    let sent = upstream.send(target.upstream_path(), uri.query(), headers, body).await;
    seen.upstream = waiting.elapsed();
    let Sent { response: resp, lease } = match sent? {
        Ok(sent) => sent,
        Err(e) => {
            // No answer: nothing to charge (a failed attempt costs nothing).
            settlement.release();
            return Err(send_error(&model.provider, e));
        }
    };
    let status = resp.status();
    let mut out = passed_back(&resp);
    limit_headers(&mut out, &rules, headroom, now);
    if let Some(tokens) = lowered {
        put(&mut out, HeaderName::from_static("x-spendgate-max-tokens-lowered"), tokens);
    }
    if let Some(t) = translated.as_ref().filter(|t| !t.dropped.is_empty()) {
        put(&mut out, HeaderName::from_static("x-spendgate-dropped"), t.dropped.join(", "));
    }
    let ctx = translate::Context {
        model: facts.model.clone(),
        created: unix_seconds(now),
        include_usage: facts.stream_usage,
        input_estimate: facts.input_bound.div_ceil(4),
        tool_names: translated.map(|t| t.tool_names).unwrap_or_default(),
    };

    if !status.is_success() {
        // A provider error: no generation, no cost; the request still counts.
        let body = read_all(resp, idle).await.unwrap_or_default();
        seen.upstream = waiting.elapsed();
        drop(lease);
        settlement.settle(TokenUsage::default(), status.as_u16());
        seen.logged = true;
        let body = match route {
            Route::Direct => body,
            _ => {
                let native: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let translated = match route {
                    Route::ChatToMessages => translate::openai_error(status.as_u16(), &native),
                    _ => translate::anthropic_error(status.as_u16(), &native),
                };
                out.insert("content-type", HeaderValue::from_static("application/json"));
                Bytes::from(translated.to_string())
            }
        };
        return Ok(respond(status, out, Body::from(body)));
    }
    let is_stream = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if is_stream {
        // Usage is watched on the provider's own events.
        let usage: Box<dyn StreamUsage> = match target {
            Endpoint::Messages => Box::new(anthropic::MessagesStream::default()),
            Endpoint::Responses => Box::new(openai::ResponsesStream::default()),
            _ => Box::new(openai::ChatStream::default()),
        };
        let output = match route {
            Route::Direct => Output::PassThrough { strip_usage_chunk },
            Route::ChatToMessages => Output::Translate(translate::chat_to_messages::stream(ctx)),
            Route::MessagesToChat => Output::Translate(translate::messages_to_chat::stream(ctx)),
        };
        let body = http_body_util::BodyDataStream::new(resp.into_body());
        let stream = MeteredStream::new(Box::pin(body), usage, output, settlement, idle, lease);
        (seen.streaming, seen.logged) = (true, true);
        return Ok(respond(status, out, Body::from_stream(stream)));
    }
    let body = read_all(resp, idle).await;
    seen.upstream = waiting.elapsed();
    drop(lease);
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            settlement.settle_estimated(TokenUsage::default(), 0, status.as_u16());
            seen.logged = true;
            return Err(broken_answer(&model.provider, &e));
        }
    };
    // Passed on as it is: only its usage is read. Translated: read whole.
    let format = target.usage_format();
    let (usage, answer) = match route {
        Route::Direct => (spendgate_wire::answer_usage(format, &body), None),
        _ => {
            let answer: Option<Value> = serde_json::from_slice(&body).ok();
            (answer.as_ref().and_then(|a| spendgate_wire::usage_in(format, a)), answer)
        }
    };
    let cost = match usage {
        Some(u) => settlement.settle(u, status.as_u16()),
        None => settlement.settle_estimated(TokenUsage::default(), body.len() as u64, status.as_u16()),
    };
    seen.logged = true;
    put(&mut out, HeaderName::from_static("x-spendgate-cost"), cost);
    let body = match (route, &answer) {
        (Route::ChatToMessages, Some(a)) => json_bytes(&translate::chat_to_messages::response(a, &ctx))?,
        (Route::MessagesToChat, Some(a)) => json_bytes(&translate::messages_to_chat::response(a, &ctx))?,
        _ => body,
    };
    Ok(respond(status, out, Body::from(body)))
}

fn json_bytes(v: &Value) -> Result<Bytes, ApiError> {
    serde_json::to_vec(v).map(Bytes::from).map_err(ApiError::internal)
}

/// A response with these headers (no merging of header maps).
fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The error a client gets when its provider gave no answer.
fn send_error(provider: &str, e: SendError) -> ApiError {
    match e {
        SendError::Unreachable(cause) => {
            tracing::warn!(provider, error = %cause, "provider request failed");
            ApiError::new(ErrorKind::BadGateway, format!("could not reach provider {provider}: {cause}"))
        }
        SendError::Timeout(after) => {
            tracing::warn!(provider, timeout_ms = after.as_millis() as u64, "provider did not answer in time");
            ApiError::new(
                ErrorKind::GatewayTimeout,
                format!("provider {provider} did not answer within {} ms", after.as_millis()),
            )
        }
        SendError::Open { retry_after } => ApiError::new(
            ErrorKind::Unavailable,
            format!(
                "provider {provider} is unavailable: its upstreams failed repeatedly and are left out for now; retry in {} ms",
                retry_after.as_millis()
            ),
        )
        .with_header("retry-after", retry_after.as_millis().div_ceil(1000).max(1))
        .with_header("retry-after-ms", retry_after.as_millis()),
    }
}

fn broken_answer(provider: &str, e: &AnswerError) -> ApiError {
    tracing::warn!(provider, error = %e, "provider answer broke off");
    ApiError::new(ErrorKind::BadGateway, format!("provider {provider}'s answer broke off: {e}"))
}

/// Why an answer's body could not be read whole.
#[derive(Debug, thiserror::Error)]
enum AnswerError {
    #[error("{0}")]
    Broken(#[from] hyper::Error),
    #[error("nothing came for {} ms", .0.as_millis())]
    Idle(std::time::Duration),
}

/// The whole body of an answer; no piece may take longer than `idle` to come. An answer
/// in one piece (the common case) is passed on without a copy.
async fn read_all(resp: UpstreamResponse, idle: std::time::Duration) -> Result<Bytes, AnswerError> {
    use http_body_util::BodyExt;
    let mut body = resp.into_body();
    let mut pieces: Vec<Bytes> = Vec::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(AnswerError::Idle(idle)),
            Ok(None) => break,
            Ok(Some(frame)) => pieces.extend(frame?.into_data().ok()),
        }
    }
    Ok(match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.swap_remove(0),
        _ => Bytes::from(pieces.concat()),
    })
}

/// The provider's answer as it is (status, body, passable headers).
async fn pass_back(sent: Sent, idle: std::time::Duration) -> Result<Response, AnswerError> {
    let Sent { response, lease } = sent;
    let (status, out) = (response.status(), passed_back(&response));
    let body = read_all(response, idle).await?;
    drop(lease);
    Ok(respond(status, out, Body::from(body)))
}
