//! The providers as the gateway reaches them: one pooled HTTP client per provider
//! (keep-alive; HTTP/2 where the provider offers it through ALPN) and one or more
//! targets (base URL + the operator's credential). The client's spend key is never sent
//! upstream.
//!
//! The client is hyper's own (`hyper-util`, TLS by rustls with the webpki roots), with
//! each target's URIs and credential header prepared once. [`Upstream::send`] is where
//! faults are handled: a connect timeout and a first-byte timeout; retries with
//! jittered exponential backoff, only before anything reached the client and only on
//! connection failures (the request never left), 429 and 5xx; failover and balancing
//! over the targets (round robin or least loaded); and a circuit breaker per target,
//! which takes a target out after consecutive failures (connections, timeouts, 502,
//! 503, 504, 529) and lets one trial request through per cool-down.

use crate::error::{ApiError, ErrorKind};
use crate::metrics::{Metrics, UpstreamError};
use axum::body::Bytes;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use spendgate_core::{Catalog, WireFormat};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Client headers passed upstream as they are: the ones that change what the provider
/// does. Everything else (the client's key first of all) stays here.
const FORWARDED_HEADERS: [HeaderName; 3] =
    [ANTHROPIC_VERSION, HeaderName::from_static("anthropic-beta"), HeaderName::from_static("openai-beta")];
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const OPENAI_ORGANIZATION: HeaderName = HeaderName::from_static("openai-organization");
/// The `anthropic-version` sent when the client gave none.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// The paths the gateway calls after a provider's base URL (see `Endpoint::upstream_path`).
const PATHS: &[&str] = &["/chat/completions", "/responses", "/embeddings", "/v1/messages", "/v1/messages/count_tokens"];

/// How the gateway treats the providers (`[upstream]` in the config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamPolicy {
    /// To open a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// From sending the request to the answer's status and headers (a non-streamed
    /// answer comes whole, so this bounds its generation too).
    pub first_byte_timeout: Duration,
    /// Between two pieces of an answer's body (a stream that stalls this long is broken off).
    pub idle_timeout: Duration,
    /// Attempts after the first, on connection failures, 429 and 5xx.
    pub retries: u32,
    /// The first backoff; it doubles with each retry (up to 32 times), with jitter.
    pub retry_backoff: Duration,
    pub balance: Balance,
    /// Consecutive failures that open a target's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit keeps its target out before one trial request.
    pub breaker_cooldown: Duration,
}

impl Default for UpstreamPolicy {
    fn default() -> UpstreamPolicy {
        UpstreamPolicy {
            connect_timeout: Duration::from_secs(10),
            // The OpenAI and Anthropic SDKs wait 10 minutes for an answer.
            first_byte_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(300),
            retries: 2,
            retry_backoff: Duration::from_millis(250),
            balance: Balance::RoundRobin,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// How requests are spread over a provider's targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    /// The target with the fewest requests in flight (streams included).
    LeastLoaded,
}

/// A retry waits at most this long, whatever the provider's `retry-after` says (a
/// longer wait is the client's to make: it gets the provider's answer).
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// A circuit breaker: closed (counting consecutive failures), open until an instant,
/// then half-open (one trial request per cool-down; its success closes it).
#[derive(Default)]
struct Breaker {
    failures: AtomicU32,
    /// Milliseconds since the `Upstreams` epoch until which the circuit is open; 0: closed.
    open_until: AtomicU64,
}

impl Breaker {
    fn is_closed(&self) -> bool {
        self.open_until.load(Ordering::Relaxed) == 0
    }

    /// Whether a request may go now: closed, or open and due for its trial.
    fn may_try(&self, now: u64) -> bool {
        let until = self.open_until.load(Ordering::Relaxed);
        until == 0 || until <= now
    }

    /// Takes the right to send one request: always when closed; when due, the one
    /// trial of this cool-down (the circuit stays open for everyone else).
    fn take(&self, now: u64, cooldown: u64) -> bool {
        let until = self.open_until.load(Ordering::Relaxed);
        until == 0
            || (until <= now
                && self.open_until.compare_exchange(until, now + cooldown, Ordering::AcqRel, Ordering::Relaxed).is_ok())
    }

    fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure; returns true when it opened the circuit.
    fn failure(&self, now: u64, policy: &UpstreamPolicy) -> bool {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n < policy.breaker_failures {
            return false;
        }
        let was_closed = self.is_closed();
        self.open_until.store(now + policy.breaker_cooldown.as_millis() as u64, Ordering::Relaxed);
        was_closed
    }
}

/// One way to reach the provider.
struct Target {
    base_url: String,
    /// The operator's credential as a ready header (marked sensitive).
    credential: Option<(HeaderName, HeaderValue)>,
    /// The URI of each of [`PATHS`], parsed once.
    uris: Vec<(&'static str, Uri)>,
    breaker: Breaker,
    in_flight: Arc<AtomicUsize>,
}

/// A request in flight on a target, until its answer is read or its stream ends (what
/// least-loaded balancing counts).
pub struct Lease(Arc<AtomicUsize>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The provider's answer, with the request's place on its target.
pub struct Sent {
    pub response: UpstreamResponse,
    pub lease: Lease,
}

/// Why no answer came.
#[derive(Debug)]
pub enum SendError {
    /// The provider could not be reached, or the exchange broke (the cause chain).
    Unreachable(String),
    /// No answer within the first-byte timeout.
    Timeout(Duration),
    /// Every target's circuit is open.
    Open { retry_after: Duration },
}

pub struct Upstream {
    pub name: String,
    pub format: WireFormat,
    organization: Option<HeaderValue>,
    targets: Vec<Target>,
    /// Round-robin position.
    next: AtomicUsize,
    client: HttpClient,
    policy: Arc<UpstreamPolicy>,
    epoch: Instant,
    metrics: Arc<Metrics>,
    /// `name` as a metrics label value.
    label: &'static str,
}

pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;
/// A provider's answer: status, headers, and a body that streams.
pub type UpstreamResponse = axum::http::Response<hyper::body::Incoming>;

impl Upstream {
    pub fn is_configured(&self) -> bool {
        self.targets.iter().any(|t| t.credential.is_some())
    }

    pub fn policy(&self) -> &UpstreamPolicy {
        &self.policy
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Sends `body` to `path` (appended to the base URL) with the operator's credential
    /// and the client's forwardable headers, retrying and failing over as the policy
    /// says; the answer's body streams. A 429 or 5xx left after the retries is returned
    /// as the answer (the client sees the provider's own error).
    pub async fn send(
        &self,
        path: &str,
        query: Option<&str>,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Result<Sent, SendError>, ApiError> {
        let mut attempt = 0u32;
        let mut last_failed = None;
        loop {
            let Some(i) = self.pick(last_failed) else {
                self.metrics.upstream_error(self.label, UpstreamError::CircuitOpen);
                return Ok(Err(SendError::Open { retry_after: self.retry_after() }));
            };
            let target = &self.targets[i];
            let req = self.request(target, path, query, client_headers, body.clone())?;
            target.in_flight.fetch_add(1, Ordering::Relaxed);
            let lease = Lease(target.in_flight.clone());
            let outcome = tokio::time::timeout(self.policy.first_byte_timeout, self.client.request(req)).await;
            let retry_left = attempt < self.policy.retries;
            let wait = match outcome {
                Ok(Ok(response)) if is_retryable(response.status()) => {
                    let kind = if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        UpstreamError::RateLimited
                    } else {
                        UpstreamError::ServerError
                    };
                    self.metrics.upstream_error(self.label, kind);
                    if is_target_failure(response.status()) {
                        self.failed(i, &format!("status {}", response.status().as_u16()));
                    }
                    match retry_wait(&response, attempt, self.policy.retry_backoff) {
                        Some(wait) if retry_left => wait,
                        _ => return Ok(Ok(Sent { response, lease })),
                    }
                }
                Ok(Ok(response)) => {
                    target.breaker.success();
                    return Ok(Ok(Sent { response, lease }));
                }
                Ok(Err(e)) => {
                    self.metrics.upstream_error(self.label, UpstreamError::Unreachable);
                    let cause = cause_chain(&e);
                    self.failed(i, &cause);
                    // Only a connection that was never made is retried: a request that
                    // was sent may be running at the provider.
                    if !(e.is_connect() && retry_left) {
                        return Ok(Err(SendError::Unreachable(cause)));
                    }
                    backoff(attempt, self.policy.retry_backoff)
                }
                Err(_) => {
                    self.metrics.upstream_error(self.label, UpstreamError::Timeout);
                    self.failed(i, "first-byte timeout");
                    return Ok(Err(SendError::Timeout(self.policy.first_byte_timeout)));
                }
            };
            drop(lease);
            self.metrics.retried(self.label);
            tracing::info!(provider = %self.name, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, "retrying the provider request");
            tokio::time::sleep(wait).await;
            attempt += 1;
            last_failed = Some(i);
        }
    }

    /// The target for the next attempt: among those with a credential whose circuit
    /// lets a request through, by the balance policy, avoiding the one that just failed
    /// when there is another.
    fn pick(&self, avoid: Option<usize>) -> Option<usize> {
        let now = self.now_ms();
        let cooldown = self.policy.breaker_cooldown.as_millis() as u64;
        let n = self.targets.len();
        if n == 1 {
            let t = &self.targets[0];
            return (t.credential.is_some() && t.breaker.take(now, cooldown)).then_some(0);
        }
        let usable = |i: usize| self.targets[i].credential.is_some() && self.targets[i].breaker.may_try(now);
        let others = (0..n).any(|i| Some(i) != avoid && usable(i));
        let eligible = |i: usize| usable(i) && (!others || Some(i) != avoid);
        for _ in 0..n {
            let i = match self.policy.balance {
                Balance::RoundRobin => {
                    let start = self.next.fetch_add(1, Ordering::Relaxed);
                    (0..n).map(|k| (start + k) % n).find(|&i| eligible(i))?
                }
                Balance::LeastLoaded => (0..n)
                    .filter(|&i| eligible(i))
                    .min_by_key(|&i| self.targets[i].in_flight.load(Ordering::Relaxed))?,
            };
            if self.targets[i].breaker.take(now, cooldown) {
                return Some(i);
            }
        }
        None
    }

    fn failed(&self, i: usize, cause: &str) {
        let target = &self.targets[i];
        if target.breaker.failure(self.now_ms(), &self.policy) {
            tracing::warn!(
                provider = %self.name,
                target = %target.base_url,
                failures = self.policy.breaker_failures,
                cooldown_ms = self.policy.breaker_cooldown.as_millis() as u64,
                last = cause,
                "circuit opened: the target is left out until its cool-down ends"
            );
        }
    }

    /// How long until the first open circuit lets a trial through.
    fn retry_after(&self) -> Duration {
        let now = self.now_ms();
        let soonest =
            self.targets.iter().map(|t| t.breaker.open_until.load(Ordering::Relaxed)).filter(|&u| u > 0).min();
        Duration::from_millis(soonest.map_or(0, |u| u.saturating_sub(now)).max(1))
    }

    fn request(
        &self,
        target: &Target,
        path: &str,
        query: Option<&str>,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ApiError> {
        let (name, value) = target.credential.clone().ok_or_else(|| self.not_configured())?;
        let base = target.uris.iter().find(|(p, _)| *p == path).map(|(_, u)| u.clone());
        let uri = match (base, query.filter(|q| !q.is_empty())) {
            (Some(uri), None) => uri,
            (_, q) => {
                let text =
                    format!("{}{path}{}{}", target.base_url, if q.is_some() { "?" } else { "" }, q.unwrap_or(""));
                text.parse::<Uri>().map_err(|e| ApiError::internal(format!("provider {} URL: {e}", self.name)))?
            }
        };
        let mut req = Request::builder().method(Method::POST).uri(uri);
        let headers = req.headers_mut().ok_or_else(|| ApiError::internal("request builder failed"))?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("spendgate/", env!("CARGO_PKG_VERSION"))));
        for h in FORWARDED_HEADERS {
            if let Some(v) = client_headers.get(&h) {
                headers.insert(h, v.clone());
            }
        }
        if self.format == WireFormat::Anthropic && !client_headers.contains_key(ANTHROPIC_VERSION) {
            headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION));
        }
        headers.insert(name, value);
        if let Some(org) = &self.organization {
            headers.insert(OPENAI_ORGANIZATION, org.clone());
        }
        req.body(Full::new(body)).map_err(ApiError::internal)
    }

    pub fn not_configured(&self) -> ApiError {
        ApiError::new(
            ErrorKind::Unavailable,
            format!(
                "provider {} is not configured on this gateway (its operator must set an API key for it)",
                self.name
            ),
        )
    }
}

/// Statuses that say the target itself is failing (unavailable, overloaded, a gateway
/// in front of it failing): they count towards its circuit breaker. A 500 or a 429 is
/// retried but not counted: it may be about this one request or this one credential,
/// and a client must not be able to take a provider out for everyone by sending
/// requests that fail.
fn is_target_failure(status: axum::http::StatusCode) -> bool {
    matches!(status.as_u16(), 502 | 503 | 504 | 529)
}

/// Statuses worth another attempt: the provider is overloaded or failing.
fn is_retryable(status: axum::http::StatusCode) -> bool {
    status.as_u16() == 429 || status.is_server_error()
}

/// The wait before retry number `attempt + 1` after a 429 or 5xx: the provider's
/// `retry-after-ms` or `retry-after` (seconds) when it gives one, else the backoff;
/// `None` when the provider asks for longer than [`MAX_RETRY_WAIT`].
fn retry_wait(response: &UpstreamResponse, attempt: u32, base: Duration) -> Option<Duration> {
    let header = |name: &str| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok())
    };
    let asked = header("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| header("retry-after"))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    match asked {
        Some(wait) if wait > MAX_RETRY_WAIT => None,
        Some(wait) => Some(wait),
        None => Some(backoff(attempt, base)),
    }
}

/// `base * 2^attempt`, capped at [`MAX_RETRY_WAIT`], with "equal jitter" (between half
/// and all of it) so that retries of many clients spread out.
fn backoff(attempt: u32, base: Duration) -> Duration {
    let full = base.saturating_mul(1 << attempt.min(31)).min(MAX_RETRY_WAIT);
    let half = full / 2;
    let jitter = crate::random::bytes::<2>().map(u16::from_le_bytes).unwrap_or(0);
    half + half.mul_f64(f64::from(jitter) / f64::from(u16::MAX))
}

/// An error and its causes (connect, TLS, ...), one line; no credential is in it.
fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause.push_str(": ");
        cause.push_str(&s.to_string());
        source = s.source();
    }
    cause
}

/// A pooled HTTP/1.1 and HTTP/2 client for `http://` and `https://` (rustls, the web's
/// roots): the providers' and the alert webhooks'.
pub fn http_client(connect_timeout: Duration) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(tls)
}

pub struct Upstreams {
    map: HashMap<String, Upstream>,
}

impl Upstreams {
    pub fn new(catalog: &Catalog, policy: &UpstreamPolicy, metrics: &Arc<Metrics>) -> Upstreams {
        let mut map = HashMap::new();
        let policy = Arc::new(policy.clone());
        let epoch = Instant::now();
        for p in catalog.providers() {
            let client = http_client(policy.connect_timeout);
            let targets = p
                .resolved_targets()
                .into_iter()
                .map(|(base, key)| {
                    let base = base.trim_end_matches('/').to_string();
                    let uris = PATHS
                        .iter()
                        .filter_map(|path| Some((*path, format!("{base}{path}").parse::<Uri>().ok()?)))
                        .collect();
                    let credential = key.as_ref().and_then(|key| {
                        let (name, text) = match p.format {
                            WireFormat::Anthropic => (HeaderName::from_static("x-api-key"), key.expose().to_string()),
                            WireFormat::OpenAi => (AUTHORIZATION, format!("Bearer {}", key.expose())),
                        };
                        let mut value = HeaderValue::from_str(&text).ok()?;
                        value.set_sensitive(true);
                        Some((name, value))
                    });
                    Target { base_url: base, credential, uris, breaker: Breaker::default(), in_flight: Arc::default() }
                })
                .collect();
            map.insert(
                p.name.clone(),
                Upstream {
                    name: p.name.clone(),
                    format: p.format,
                    organization: p.organization.as_deref().and_then(|o| HeaderValue::from_str(o).ok()),
                    targets,
                    next: AtomicUsize::new(0),
                    client,
                    policy: policy.clone(),
                    epoch,
                    metrics: metrics.clone(),
                    label: metrics.name(&p.name),
                },
            );
        }
        Upstreams { map }
    }

    pub fn get(&self, provider: &str) -> Option<&Upstream> {
        self.map.get(provider)
    }

    /// Names of the providers with a credential, for the start-up log.
    pub fn configured(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.map.values().filter(|u| u.is_configured()).map(|u| u.name.as_str()).collect();
        names.sort_unstable();
        names
    }
}
