//! The providers as the gateway reaches them: one pooled HTTP client per provider
//! (keep-alive; HTTP/2 where the provider offers it through ALPN), its base URL and the
//! operator's credential. The client's spend key is never sent upstream.

use crate::error::{ApiError, ErrorKind};
use axum::http::HeaderMap;
use spendgate_core::{ApiKey, Catalog, WireFormat};
use std::collections::HashMap;
use std::time::Duration;

/// Client headers passed upstream as they are: the ones that change what the provider
/// does. Everything else (the client's key first of all) stays here.
const FORWARDED_HEADERS: &[&str] = &["anthropic-version", "anthropic-beta", "openai-beta"];
/// The `anthropic-version` sent when the client gave none.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

pub struct Upstream {
    pub name: String,
    pub format: WireFormat,
    pub base_url: String,
    api_key: Option<ApiKey>,
    organization: Option<String>,
    client: reqwest::Client,
}

impl Upstream {
    pub fn is_configured(&self) -> bool {
        self.api_key.is_some()
    }

    /// A request to `path` (appended to the base URL) with the operator's credential
    /// and the client's forwardable headers.
    pub fn post(
        &self,
        path: &str,
        query: Option<&str>,
        client_headers: &HeaderMap,
    ) -> Result<reqwest::RequestBuilder, ApiError> {
        let key = self.api_key.as_ref().ok_or_else(|| self.not_configured())?;
        let mut url = format!("{}{path}", self.base_url.trim_end_matches('/'));
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(q);
        }
        let mut req = self.client.post(url).header("content-type", "application/json");
        for name in FORWARDED_HEADERS {
            if let Some(v) = client_headers.get(*name) {
                req = req.header(*name, v);
            }
        }
        req = match self.format {
            WireFormat::Anthropic => {
                if !client_headers.contains_key("anthropic-version") {
                    req = req.header("anthropic-version", DEFAULT_ANTHROPIC_VERSION);
                }
                req.header("x-api-key", key.expose())
            }
            WireFormat::OpenAi => req.bearer_auth(key.expose()),
        };
        if let Some(org) = &self.organization {
            req = req.header("openai-organization", org);
        }
        Ok(req)
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
    pub fn new(catalog: &Catalog) -> Result<Upstreams, reqwest::Error> {
        let mut map = HashMap::new();
        for p in catalog.providers() {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_nodelay(true)
                .user_agent(concat!("spendgate/", env!("CARGO_PKG_VERSION")))
                .build()?;
            map.insert(
                p.name.clone(),
                Upstream {
                    name: p.name.clone(),
                    format: p.format,
                    base_url: p.base_url.clone(),
                    api_key: p.api_key.clone(),
                    organization: p.organization.clone(),
                    client,
                },
            );
        }
        Ok(Upstreams { map })
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
