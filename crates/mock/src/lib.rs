//! A mock OpenAI + Anthropic provider for spendgate's tests and benchmarks.
//!
//! One server speaks both wire formats, streaming included, exactly enough for the
//! official SDKs: OpenAI SDKs use the base `http://ADDR/v1`, Anthropic SDKs
//! `http://ADDR`. Answers are deterministic (see [`text`]): the reply is N tokens of
//! "lorem ipsum ...", usage is computed from the prompt's characters, and
//! `[[mock:NAME:VALUE]]` directives in the last user message ask for tool calls,
//! errors, cached tokens, broken streams and so on. Every request is recorded
//! (`GET /_mock/requests`) so tests can check what a gateway forwarded.
//!
//! Modules: `openai` (chat completions), `responses`, `embeddings`, `models`,
//! `anthropic` (messages, count_tokens), `text` (text, directives, usage), `sse`
//! (event encoding and stream playback), `errors` (error bodies per provider).
#![forbid(unsafe_code)]

mod anthropic;
mod embeddings;
mod errors;
mod models;
mod openai;
mod responses;
mod sse;
pub mod text;

use anyhow::Context as _;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use errors::{ApiError, Provider};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use text::Directives;

/// Request bodies above this are refused with a 413.
const BODY_LIMIT: usize = 64 << 20;

/// How the mock behaves; `Default` is no latency, no delay, 16 output tokens, any key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// Wait before the first byte of every answer (streamed or not).
    pub latency_ms: u64,
    /// Wait between stream events (the `slow:MS` directive overrides it).
    pub chunk_delay_ms: u64,
    /// Output tokens when the request has no `tokens:N` directive (before the cap).
    pub output_tokens: u32,
    /// If set, only this API key is accepted (401 otherwise).
    pub require_key: Option<String>,
}

impl Default for MockConfig {
    fn default() -> MockConfig {
        MockConfig { latency_ms: 0, chunk_delay_ms: 0, output_tokens: 16, require_key: None }
    }
}

/// One request the mock received, as it arrived.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names in lower case, in arrival order; a repeated header appears twice.
    pub headers: Vec<(String, String)>,
    /// The JSON body, or `Null` when there was none or it was not JSON.
    pub body: Value,
}

impl Recorded {
    /// The first value of header `name` (lower case), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

struct Shared {
    config: MockConfig,
    recorded: Mutex<Vec<Recorded>>,
    next_id: AtomicU64,
    /// What the next requests get instead of their answer, in order (`POST /_mock/faults`).
    faults: Mutex<std::collections::VecDeque<Fault>>,
    /// Streams dropped before their end: the client (a gateway) went away.
    streams_cancelled: Arc<AtomicU64>,
}

/// A fault for one request: an error status (with an optional `retry-after-ms`), or a
/// wait before the answer's first byte.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub status: Option<u16>,
    pub retry_after_ms: Option<u64>,
    pub wait_ms: Option<u64>,
}

/// The mock provider: configuration plus the recorded requests. Cloning is cheap and
/// clones share everything.
#[derive(Clone)]
pub struct Mock {
    shared: Arc<Shared>,
}

impl Mock {
    pub fn new(config: MockConfig) -> Mock {
        Mock {
            shared: Arc::new(Shared {
                config,
                recorded: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                faults: Mutex::default(),
                streams_cancelled: Arc::default(),
            }),
        }
    }

    /// Every route: OpenAI under `/v1/...`, Anthropic `/v1/messages...`, control
    /// `/_mock/requests`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/responses", post(responses))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/models", get(models))
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .route("/_mock/requests", get(list_recorded).delete(clear_recorded))
            .route("/_mock/faults", post(push_faults))
            .route("/_mock/stats", get(stats))
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// Every request received (control routes excepted), in arrival order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.lock_recorded().clone()
    }

    /// Queues faults: each of the next requests (to the model endpoints) takes one.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.faults).extend(faults);
    }

    /// Forgets the faults not yet used.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Streams that were dropped before their end (their client went away).
    pub fn streams_cancelled(&self) -> u64 {
        self.shared.streams_cancelled.load(Ordering::Relaxed)
    }

    /// A streamed answer of `events`, ending as `end` (a stall when asked for), with
    /// the request's delay between events.
    pub(crate) fn stream(&self, events: Vec<Bytes>, end: sse::End, directives: &Directives) -> Response {
        let end = if directives.stall && end == sse::End::Abort { sse::End::Stall } else { end };
        sse::response(events, end, self.chunk_delay(directives), self.shared.streams_cancelled.clone())
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        self.lock_recorded().clear();
    }

    pub(crate) fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// A fresh id: `prefix` + "mock" + a zero-padded counter (so `[a-zA-Z0-9_-]+`).
    pub(crate) fn id(&self, prefix: &str) -> String {
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}mock{n:020}")
    }

    /// The delay between stream events for a request.
    pub(crate) fn chunk_delay(&self, directives: &Directives) -> Duration {
        Duration::from_millis(directives.slow_ms.unwrap_or(self.shared.config.chunk_delay_ms))
    }

    /// Renders an error in `provider`'s format.
    pub(crate) fn error(&self, provider: Provider, error: &ApiError) -> Response {
        error.render(provider, &self.id("req_"))
    }

    fn lock_recorded(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        lock(&self.shared.recorded)
    }

    /// Reads the body (up to the limit), records the request, parses the JSON.
    async fn intake(&self, req: Request) -> (Parts, Result<Value, ApiError>) {
        let (parts, body) = req.into_parts();
        let parsed = match axum::body::to_bytes(body, BODY_LIMIT).await {
            Ok(bytes) => parse_json(&bytes),
            Err(e) => {
                Err(ApiError::new(413, format!("could not read the request body (limit {BODY_LIMIT} bytes): {e}")))
            }
        };
        let recorded = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect(),
            body: parsed.as_ref().cloned().unwrap_or(Value::Null),
        };
        self.lock_recorded().push(recorded);
        (parts, parsed)
    }

    /// The configured latency, then `response` with a request-id header.
    async fn answer(&self, provider: Provider, mut response: Response) -> Response {
        let name = match provider {
            Provider::OpenAi => "x-request-id",
            Provider::Anthropic => "request-id",
        };
        let headers = response.headers_mut();
        if !headers.contains_key(name)
            && let Ok(value) = HeaderValue::from_str(&self.id("req_"))
        {
            headers.insert(HeaderName::from_static(name), value);
        }
        let latency = self.shared.config.latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        response
    }

    /// The common path of the POST endpoints: record, authenticate, require a JSON
    /// object, run the endpoint, wait the latency.
    async fn call(&self, provider: Provider, req: Request, endpoint: Endpoint) -> Response {
        let (parts, parsed) = self.intake(req).await;
        let fault = lock(&self.shared.faults).pop_front().unwrap_or_default();
        if let Some(ms) = fault.wait_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(status) = fault.status {
            let error = ApiError::new(status, format!("mock: fault injected (status {status})"));
            let mut response = self.error(provider, &error);
            if let Some(ms) = fault.retry_after_ms {
                response.headers_mut().insert("retry-after-ms", HeaderValue::from(ms));
            }
            return self.answer(provider, response).await;
        }
        let response = match (self.authenticate(provider, &parts.headers), parsed) {
            (Err(e), _) | (Ok(()), Err(e)) => self.error(provider, &e),
            (Ok(()), Ok(body)) if !body.is_object() => {
                self.error(provider, &ApiError::invalid("body", "the request body must be a JSON object"))
            }
            (Ok(()), Ok(body)) => endpoint(self, &body),
        };
        self.answer(provider, response).await
    }

    /// Checks the presented key: OpenAI `Authorization: Bearer K`; Anthropic
    /// `x-api-key: K` or `Authorization: Bearer K`.
    fn authenticate(&self, provider: Provider, headers: &HeaderMap) -> Result<(), ApiError> {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let key = match provider {
            Provider::OpenAi => bearer,
            Provider::Anthropic => headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).or(bearer),
        }
        .filter(|k| !k.is_empty());
        let Some(key) = key else {
            return Err(ApiError::new(
                401,
                match provider {
                    Provider::OpenAi => {
                        "You didn't provide an API key. You need to provide your API key in an \
                         Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                    }
                    Provider::Anthropic => "x-api-key header is required",
                },
            ));
        };
        match &self.shared.config.require_key {
            Some(required) if required != key => Err(ApiError::new(
                401,
                match provider {
                    Provider::OpenAi => "Incorrect API key provided (mock: not the --require-key key).",
                    Provider::Anthropic => "invalid x-api-key",
                },
            )),
            _ => Ok(()),
        }
    }
}

/// A lock whose data stays consistent whatever panicked while it was held (each use
/// is one push, pop or clear), so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An endpoint's logic: the parsed body in, the full answer out.
type Endpoint = fn(&Mock, &Value) -> Response;

fn parse_json(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "the request body is empty; send a JSON object"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("We could not parse the JSON body of your request. ({e})")))
}

/// A 400 if one of `fields` is missing or null.
pub(crate) fn require(provider: Provider, body: &Value, fields: &[&str]) -> Result<(), ApiError> {
    match fields.iter().find(|f| body.get(**f).is_none_or(Value::is_null)) {
        Some(field) => Err(ApiError::missing(provider, field)),
        None => Ok(()),
    }
}

/// Whether the request asked for a stream.
pub(crate) fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool) == Some(true)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn chat_completions(State(mock): State<Mock>, req: Request) -> Response {
    mock.call(Provider::OpenAi, req, openai::chat).await
}

async fn responses(State(mock): State<Mock>, req: Request) -> Response {
    mock.call(Provider::OpenAi, req, responses::create).await
}

async fn embeddings(State(mock): State<Mock>, req: Request) -> Response {
    mock.call(Provider::OpenAi, req, embeddings::create).await
}

async fn messages(State(mock): State<Mock>, req: Request) -> Response {
    mock.call(Provider::Anthropic, req, anthropic::messages).await
}

async fn count_tokens(State(mock): State<Mock>, req: Request) -> Response {
    mock.call(Provider::Anthropic, req, anthropic::count_tokens).await
}

/// `GET /v1/models`: the OpenAI list, or Anthropic's when the request carries an
/// `anthropic-version` header (as the Anthropic SDKs' `models.list()` does).
async fn models(State(mock): State<Mock>, req: Request) -> Response {
    let (parts, _) = mock.intake(req).await;
    let provider = if parts.headers.contains_key("anthropic-version") { Provider::Anthropic } else { Provider::OpenAi };
    let response = match mock.authenticate(provider, &parts.headers) {
        Err(e) => mock.error(provider, &e),
        Ok(()) => match provider {
            Provider::OpenAi => Json(models::openai()).into_response(),
            Provider::Anthropic => Json(models::anthropic()).into_response(),
        },
    };
    mock.answer(provider, response).await
}

async fn list_recorded(State(mock): State<Mock>) -> Json<Vec<Recorded>> {
    Json(mock.recorded())
}

async fn push_faults(State(mock): State<Mock>, Json(faults): Json<Vec<Fault>>) -> StatusCode {
    mock.push_faults(faults);
    StatusCode::NO_CONTENT
}

async fn stats(State(mock): State<Mock>) -> Json<Value> {
    Json(serde_json::json!({ "streams_cancelled": mock.streams_cancelled() }))
}

async fn clear_recorded(State(mock): State<Mock>) -> StatusCode {
    mock.clear();
    StatusCode::NO_CONTENT
}

/// Unknown routes are recorded (a gateway posting to the wrong path shows up in the
/// log) and answered 404 in the OpenAI format.
async fn not_found(State(mock): State<Mock>, req: Request) -> Response {
    let (parts, _) = mock.intake(req).await;
    let error = ApiError::new(404, format!("mock provider: no route for {} {}", parts.method, parts.uri.path()));
    let error = ApiError { code: Some("unknown_url"), ..error };
    mock.answer(Provider::OpenAi, mock.error(Provider::OpenAi, &error)).await
}

/// Serves `mock` on an already-bound listener until the future is dropped.
pub async fn serve(mock: Mock, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, mock.router()).await
}

/// `spendgate mock-provider`: the mock as a process.
#[derive(clap::Args, Debug, Clone)]
pub struct MockArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Milliseconds to wait before the first byte of every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Milliseconds between stream events (a request's [[mock:slow:MS]] overrides it).
    #[arg(long, default_value_t = 0)]
    pub chunk_delay_ms: u64,
    /// Output tokens per answer when the request has no [[mock:tokens:N]] directive.
    #[arg(long, default_value_t = 16)]
    pub output_tokens: u32,
    /// Accept only this API key (any non-empty key otherwise).
    #[arg(long)]
    pub require_key: Option<String>,
}

impl MockArgs {
    pub fn config(&self) -> MockConfig {
        MockConfig {
            latency_ms: self.latency_ms,
            chunk_delay_ms: self.chunk_delay_ms,
            output_tokens: self.output_tokens,
            require_key: self.require_key.clone(),
        }
    }
}

/// Binds, prints exactly one line `mock provider listening on http://ADDR` to stdout,
/// serves until SIGINT/SIGTERM.
pub async fn run(args: MockArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the server.
        let _ = writeln!(out, "mock provider listening on http://{addr}");
        let _ = out.flush();
    }
    let mock = Mock::new(args.config());
    tokio::select! {
        served = serve(mock, listener) => served.context("mock provider server failed")?,
        () = shutdown_signal() => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
