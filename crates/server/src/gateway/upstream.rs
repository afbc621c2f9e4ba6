//! The providers as the gateway reaches them: one pooled HTTP client per provider
//! (keep-alive; HTTP/2 where the provider offers it through ALPN), its base URL and the
//! operator's credential. The client's spend key is never sent upstream.
//!
//! The client is hyper's own (`hyper-util`, TLS by rustls with the webpki roots), with
//! each request's URI and credential header prepared once: no redirects, retries or URL
//! re-parsing on the request path.

use crate::error::{ApiError, ErrorKind};
use axum::body::Bytes;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use spendgate_core::{Catalog, WireFormat};
use std::collections::HashMap;
use std::time::Duration;

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

pub struct Upstream {
    pub name: String,
    pub format: WireFormat,
    pub base_url: String,
    /// The operator's credential as a ready header (marked sensitive); `None` when the
    /// provider has no key.
    credential: Option<(HeaderName, HeaderValue)>,
    organization: Option<HeaderValue>,
    /// The URI of each of [`PATHS`], parsed once.
    uris: Vec<(&'static str, Uri)>,
    client: HttpClient,
}

pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;
/// A provider's answer: status, headers, and a body that streams.
pub type UpstreamResponse = axum::http::Response<hyper::body::Incoming>;
pub type UpstreamError = hyper_util::client::legacy::Error;

impl Upstream {
    pub fn is_configured(&self) -> bool {
        self.credential.is_some()
    }

    /// Sends `body` to `path` (appended to the base URL) with the operator's credential
    /// and the client's forwardable headers; the answer's body streams.
    pub async fn post(
        &self,
        path: &str,
        query: Option<&str>,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Result<UpstreamResponse, UpstreamError>, ApiError> {
        let (name, value) = self.credential.clone().ok_or_else(|| self.not_configured())?;
        let base = self.uris.iter().find(|(p, _)| *p == path).map(|(_, u)| u.clone());
        let uri = match (base, query.filter(|q| !q.is_empty())) {
            (Some(uri), None) => uri,
            (_, q) => {
                let text = format!(
                    "{}{path}{}{}",
                    self.base_url.trim_end_matches('/'),
                    if q.is_some() { "?" } else { "" },
                    q.unwrap_or("")
                );
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
        let req = req.body(Full::new(body)).map_err(ApiError::internal)?;
        Ok(self.client.request(req).await)
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

pub struct Upstreams {
    map: HashMap<String, Upstream>,
}

impl Upstreams {
    pub fn new(catalog: &Catalog) -> Upstreams {
        let mut map = HashMap::new();
        for p in catalog.providers() {
            let mut http = HttpConnector::new();
            http.set_connect_timeout(Some(Duration::from_secs(10)));
            http.set_nodelay(true);
            http.enforce_http(false);
            let tls = hyper_rustls::HttpsConnectorBuilder::new()
                .with_webpki_roots()
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            let client = Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(tls);
            let base = p.base_url.trim_end_matches('/');
            let uris = PATHS.iter().filter_map(|path| Some((*path, format!("{base}{path}").parse::<Uri>().ok()?)));
            let credential = p.api_key.as_ref().and_then(|key| {
                let (name, text) = match p.format {
                    WireFormat::Anthropic => (HeaderName::from_static("x-api-key"), key.expose().to_string()),
                    WireFormat::OpenAi => (AUTHORIZATION, format!("Bearer {}", key.expose())),
                };
                let mut value = HeaderValue::from_str(&text).ok()?;
                value.set_sensitive(true);
                Some((name, value))
            });
            map.insert(
                p.name.clone(),
                Upstream {
                    name: p.name.clone(),
                    format: p.format,
                    base_url: p.base_url.clone(),
                    credential,
                    organization: p.organization.as_deref().and_then(|o| HeaderValue::from_str(o).ok()),
                    uris: uris.collect(),
                    client,
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
