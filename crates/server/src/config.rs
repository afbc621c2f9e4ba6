//! Configuration: a TOML file (every key optional, unknown keys are errors), then
//! environment variables and command-line flags on top, validated once into [`Config`].

use crate::counters::shared::SharedConfig;
use crate::gateway::upstream::{Balance, UpstreamPolicy};
use serde::Deserialize;
use spendgate_core::catalog::{ModelEntry, ProviderEntry};
use spendgate_core::meter::ReservationPolicy;
use spendgate_core::secret::{SPEND_KEY_PREFIX, WALLET_KEY_PREFIX};
use spendgate_core::{ApiKey, Catalog};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub database: Option<String>,
    /// Where request records wait when the database cannot take them.
    pub spool_dir: Option<PathBuf>,
    #[serde(default)]
    pub cluster: ClusterSection,
    #[serde(default)]
    pub keys: KeysSection,
    #[serde(default)]
    pub gateway: GatewaySection,
    #[serde(default)]
    pub upstream: UpstreamSection,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub alerts: AlertsSection,
    #[serde(default)]
    pub otel: OtelSection,
    /// Providers to add, or fields of built-in ones to override.
    #[serde(default)]
    pub provider: Vec<ProviderEntry>,
    /// Models to add, or prices of built-in ones to override.
    #[serde(default)]
    pub model: Vec<ModelEntry>,
}

/// Logging: the level filter (`SPENDGATE_LOG` overrides it) and the line format
/// (`--log-format` overrides it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub level: Option<String>,
    pub format: Option<String>,
}

/// Logging, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPolicy {
    /// A `tracing` filter: `info`, `warn`, `spendgate_server=debug,info`, ...
    pub level: String,
    /// `pretty` or `json`.
    pub format: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    pub spend_key_prefix: Option<String>,
    pub wallet_key_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// `strict` (default: spend limits are hard caps) or `lenient`.
    pub reservation: Option<String>,
}

/// How the server treats its clients.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub header_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub shutdown_grace_ms: Option<u64>,
    /// A second listener for the wallet API and the dashboard; the main one then serves
    /// only the gateway.
    pub admin_listen: Option<String>,
    /// PEM files: with both, the listeners speak TLS only.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at `/metrics` (on the management listener when there is one).
    pub metrics: Option<bool>,
    /// If set, `/metrics` wants `Authorization: Bearer <this>` (the environment's
    /// `SPENDGATE_METRICS_TOKEN` overrides it).
    pub metrics_token: Option<String>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Option<Vec<String>>,
    /// Also metrics per spend key id (a series per key in use).
    pub metrics_per_key: Option<bool>,
    /// Failed wallet-key sign-ins an address may make per minute before it is refused.
    pub failed_signins_allowed: Option<u32>,
}

/// The server's limits on clients, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPolicy {
    /// To send a request's head (line and headers); a slower client is cut off.
    pub header_timeout: Duration,
    /// To send a gateway request's body; a slower one gets a 408.
    pub body_timeout: Duration,
    /// On SIGTERM, how long requests in flight (streams included) may take to finish.
    pub shutdown_grace: Duration,
    /// Where the wallet API and the dashboard are served, when not on the main listener.
    pub admin_listen: Option<SocketAddr>,
    pub tls: Option<crate::tls::TlsFiles>,
    /// `GET /metrics` is served.
    pub metrics: bool,
    /// The bearer token `/metrics` wants, if any.
    pub metrics_token: Option<crate::auth::Token>,
    /// Requests and spend per spend key id in `/metrics`.
    pub metrics_per_key: bool,
    /// Peers whose `X-Forwarded-For` is believed (the audit log's and the brute-force
    /// guard's client address).
    pub trusted_proxies: std::sync::Arc<[crate::guard::Network]>,
    /// Failed wallet-key sign-ins an address may make per minute.
    pub failed_signins_allowed: u32,
}

impl Default for ServerPolicy {
    fn default() -> ServerPolicy {
        ServerPolicy {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            admin_listen: None,
            tls: None,
            metrics: true,
            metrics_token: None,
            metrics_per_key: false,
            trusted_proxies: std::sync::Arc::new([]),
            failed_signins_allowed: crate::guard::FAILURES_ALLOWED,
        }
    }
}

/// A duration in milliseconds from the config: at least 1.
fn millis(
    section: &'static str,
    field: &'static str,
    v: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(0) => Err(ConfigError::Field { section, field, reason: "must be at least 1 (milliseconds)".into() }),
        Some(v) => Ok(Duration::from_millis(v)),
    }
}

impl ServerSection {
    /// `base`: the config file's directory, which relative file names are taken from.
    fn resolve(
        self,
        o: &Overrides,
        listen: SocketAddr,
        base: &Path,
        metrics_token: Option<String>,
    ) -> Result<ServerPolicy, ConfigError> {
        let d = ServerPolicy::default();
        let field = |field, reason: &str| ConfigError::Field { section: "server", field, reason: reason.into() };
        let admin_listen = match o.admin_listen.clone().or(self.admin_listen) {
            None => None,
            Some(text) => {
                let addr: SocketAddr = text
                    .parse()
                    .map_err(|_| field("admin_listen", &format!("{text:?} is not HOST:PORT with an IP host")))?;
                if addr == listen && addr.port() != 0 {
                    return Err(field("admin_listen", &format!("{addr} is also the main listen address")));
                }
                Some(addr)
            }
        };
        // Flags and the environment are taken from the working directory, the file's
        // settings from the file's.
        let cert = o.tls_cert.clone().or_else(|| self.tls_cert.map(|p| base.join(p)));
        let key = o.tls_key.clone().or_else(|| self.tls_key.map(|p| base.join(p)));
        let tls = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles { cert, key }),
            (Some(_), None) => {
                return Err(field("tls_key", "is required with tls_cert (the certificate's private key)"));
            }
            (None, Some(_)) => return Err(field("tls_cert", "is required with tls_key (the certificate chain)")),
        };
        let trusted_proxies = self
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|t| {
                crate::guard::Network::parse(t).ok_or_else(|| {
                    field("trusted_proxies", &format!("{t:?} is not an IP address or network like 10.0.0.0/8"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ServerPolicy {
            trusted_proxies: trusted_proxies.into(),
            header_timeout: millis("server", "header_timeout_ms", self.header_timeout_ms, d.header_timeout)?,
            body_timeout: millis("server", "body_timeout_ms", self.body_timeout_ms, d.body_timeout)?,
            shutdown_grace: millis("server", "shutdown_grace_ms", self.shutdown_grace_ms, d.shutdown_grace)?,
            admin_listen,
            tls,
            metrics: self.metrics.unwrap_or(d.metrics),
            metrics_per_key: self.metrics_per_key.unwrap_or(d.metrics_per_key),
            failed_signins_allowed: match self.failed_signins_allowed {
                None => d.failed_signins_allowed,
                Some(0) => return Err(field("failed_signins_allowed", "must be at least 1")),
                Some(n) => n,
            },
            metrics_token: match metrics_token.or(self.metrics_token) {
                Some(t) if t.trim().len() < 16 => {
                    return Err(field("metrics_token", "must be at least 16 characters (it guards /metrics)"));
                }
                t => t.map(|t| crate::auth::Token::new(t.trim())),
            },
        })
    }
}

/// OpenTelemetry export of request spans.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelSection {
    pub endpoint: Option<String>,
    pub service_name: Option<String>,
}

impl OtelSection {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME` beat the file.
    fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<crate::otel::OtelPolicy>, ConfigError> {
        let Some(endpoint) = env("OTEL_EXPORTER_OTLP_ENDPOINT").or(self.endpoint) else { return Ok(None) };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ConfigError::Field {
                section: "otel",
                field: "endpoint",
                reason: format!(
                    "{endpoint:?} must be an http:// or https:// URL (OTLP/HTTP, like http://127.0.0.1:4318)"
                ),
            });
        }
        let service_name = env("OTEL_SERVICE_NAME").or(self.service_name).unwrap_or_else(|| "spendgate".into());
        Ok(Some(crate::otel::OtelPolicy { endpoint, service_name }))
    }
}

/// Budget alerts: how often they are checked for and how their webhooks are sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    pub check_interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub block_private_addresses: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsPolicy {
    /// How often keys that were used are checked against the webhooks' thresholds, and
    /// due deliveries sent.
    pub check_interval: Duration,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// Attempts before a delivery is given up (marked failed).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each one, at most an hour.
    pub retry_base: Duration,
    /// Refuse to send to receivers whose host resolves to a loopback, private or
    /// link-local address (wallet owners who should not reach the operator's network).
    pub block_private_addresses: bool,
}

impl Default for AlertsPolicy {
    fn default() -> AlertsPolicy {
        AlertsPolicy {
            check_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            retry_base: Duration::from_secs(10),
            block_private_addresses: false,
        }
    }
}

impl AlertsSection {
    fn resolve(self) -> Result<AlertsPolicy, ConfigError> {
        let d = AlertsPolicy::default();
        let max_attempts = match self.max_attempts {
            None => d.max_attempts,
            Some(n @ 1..=100) => n,
            Some(_) => {
                return Err(ConfigError::Field {
                    section: "alerts",
                    field: "max_attempts",
                    reason: "must be from 1 to 100".into(),
                });
            }
        };
        Ok(AlertsPolicy {
            check_interval: millis("alerts", "check_interval_ms", self.check_interval_ms, d.check_interval)?,
            timeout: millis("alerts", "timeout_ms", self.timeout_ms, d.timeout)?,
            max_attempts,
            retry_base: millis("alerts", "retry_base_ms", self.retry_base_ms, d.retry_base)?,
            block_private_addresses: self.block_private_addresses.unwrap_or(d.block_private_addresses),
        })
    }
}

/// How the gateway treats the providers: timeouts, retries, failover, circuit breaker.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub connect_timeout_ms: Option<u64>,
    pub first_byte_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub retries: Option<u32>,
    pub retry_backoff_ms: Option<u64>,
    /// `round_robin` (default) or `least_loaded`.
    pub balance: Option<String>,
    pub breaker_failures: Option<u32>,
    pub breaker_cooldown_ms: Option<u64>,
}

impl UpstreamSection {
    fn resolve(self) -> Result<UpstreamPolicy, ConfigError> {
        let d = UpstreamPolicy::default();
        let ms = |field, v, default| millis("upstream", field, v, default);
        let balance = match self.balance.as_deref() {
            None | Some("round_robin") => Balance::RoundRobin,
            Some("least_loaded") => Balance::LeastLoaded,
            Some(other) => {
                return Err(ConfigError::Field {
                    section: "upstream",
                    field: "balance",
                    reason: format!("{other:?} must be \"round_robin\" or \"least_loaded\""),
                });
            }
        };
        let retries = self.retries.unwrap_or(d.retries);
        if retries > 10 {
            return Err(ConfigError::Field {
                section: "upstream",
                field: "retries",
                reason: format!("{retries} is more than 10"),
            });
        }
        let breaker_failures = self.breaker_failures.unwrap_or(d.breaker_failures);
        if breaker_failures == 0 {
            return Err(ConfigError::Field {
                section: "upstream",
                field: "breaker_failures",
                reason: "must be at least 1".into(),
            });
        }
        Ok(UpstreamPolicy {
            connect_timeout: ms("connect_timeout_ms", self.connect_timeout_ms, d.connect_timeout)?,
            first_byte_timeout: ms("first_byte_timeout_ms", self.first_byte_timeout_ms, d.first_byte_timeout)?,
            idle_timeout: ms("idle_timeout_ms", self.idle_timeout_ms, d.idle_timeout)?,
            retries,
            retry_backoff: ms("retry_backoff_ms", self.retry_backoff_ms, d.retry_backoff)?,
            balance,
            breaker_failures,
            breaker_cooldown: ms("breaker_cooldown_ms", self.breaker_cooldown_ms, d.breaker_cooldown)?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// `redis://HOST:PORT[/DB]`: share counters with the other instances.
    pub redis: Option<String>,
    /// Prefix of spendgate's Redis keys (default `spendgate`).
    pub redis_prefix: Option<String>,
    /// `closed` (default: answer 503) or `open` (admit on this instance's own counters)
    /// when Redis cannot be reached.
    pub on_redis_failure: Option<String>,
}

/// What the command line and environment said (each `None` when not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub log_format: Option<String>,
    pub admin_listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub database: Option<String>,
    pub redis: Option<String>,
    pub config: Option<PathBuf>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub spend_key_prefix: String,
    pub wallet_key_prefix: String,
    pub catalog: Catalog,
    pub reservation: ReservationPolicy,
    pub upstream: UpstreamPolicy,
    pub server: ServerPolicy,
    pub log: LogPolicy,
    pub alerts: AlertsPolicy,
    /// Request spans to an OpenTelemetry collector (none: not exported).
    pub otel: Option<crate::otel::OtelPolicy>,
    pub spool_dir: PathBuf,
    /// Cluster mode: the shared counters (none: one instance, counters in memory).
    pub shared: Option<SharedConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("listen address {0:?} is not HOST:PORT with an IP host, like 127.0.0.1:8080")]
    Listen(String),
    #[error("keys.{field} {value:?} must be 3 to 32 characters of letters, digits and _")]
    Prefix { field: &'static str, value: String },
    #[error("keys.spend_key_prefix and keys.wallet_key_prefix must differ")]
    SamePrefix,
    #[error("gateway.reservation {0:?} must be \"strict\" or \"lenient\"")]
    Reservation(String),
    #[error("config file {path}: {source}")]
    Catalog { path: PathBuf, source: spendgate_core::catalog::CatalogError },
    #[error("cluster.redis {0:?} must be a redis:// or rediss:// URL, like redis://127.0.0.1:6379")]
    RedisUrl(String),
    #[error("cluster.redis needs a PostgreSQL database (the instances share it); got {0:?}")]
    RedisNeedsPostgres(String),
    #[error("cluster.redis_prefix {0:?} must be 1 to 64 characters of letters, digits, _ - . and :")]
    RedisPrefix(String),
    #[error("cluster.on_redis_failure {0:?} must be \"closed\" or \"open\"")]
    RedisFailure(String),
    #[error("{section}.{field}: {reason}")]
    Field { section: &'static str, field: &'static str, reason: String },
}

impl Config {
    /// Reads the config file named by `o.config` (if any) and applies `o` on top.
    pub fn load(o: &Overrides) -> Result<Config, ConfigError> {
        let (file, path) = match &o.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                let file: ConfigFile = toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
                (file, path.clone())
            }
            None => (ConfigFile::default(), PathBuf::from("(none)")),
        };
        Config::resolve(file, &path, o, &|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// A config from TOML text and overrides alone, ignoring the environment (tests,
    /// and tools that must not pick up a shell's provider keys).
    pub fn from_toml(text: &str, o: &Overrides) -> Result<Config, ConfigError> {
        let path = PathBuf::from("(inline)");
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
        Config::resolve(file, &path, o, &|_| None)
    }

    fn resolve(
        file: ConfigFile,
        path: &Path,
        o: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let listen_text = o.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text.parse().map_err(|_| ConfigError::Listen(listen_text.clone()))?;
        let database_url = o.database.clone().or(file.database).unwrap_or_else(default_database_url);
        let prefix = |field, value: Option<String>, default: &str| {
            let value = value.unwrap_or_else(|| default.to_string());
            let ok = (3..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if ok { Ok(value) } else { Err(ConfigError::Prefix { field, value }) }
        };
        let spend_key_prefix = prefix("spend_key_prefix", file.keys.spend_key_prefix, SPEND_KEY_PREFIX)?;
        let wallet_key_prefix = prefix("wallet_key_prefix", file.keys.wallet_key_prefix, WALLET_KEY_PREFIX)?;
        if spend_key_prefix == wallet_key_prefix {
            return Err(ConfigError::SamePrefix);
        }
        let mut catalog = Catalog::builtin()
            .with_file(spendgate_core::catalog::CatalogFile { provider: file.provider, model: file.model })
            .map_err(|source| ConfigError::Catalog { path: path.to_path_buf(), source })?;
        apply_provider_env(&mut catalog, env);
        let reservation = match file.gateway.reservation.as_deref() {
            None | Some("strict") => ReservationPolicy::Strict,
            Some("lenient") => ReservationPolicy::Lenient,
            Some(other) => return Err(ConfigError::Reservation(other.to_string())),
        };
        let shared = match o.redis.clone().or(file.cluster.redis) {
            None => None,
            Some(url) => {
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    return Err(ConfigError::RedisUrl(url));
                }
                if !database_url.starts_with("postgres") {
                    return Err(ConfigError::RedisNeedsPostgres(database_url));
                }
                let namespace = file.cluster.redis_prefix.unwrap_or_else(|| "spendgate".into());
                let ok = (1..=64).contains(&namespace.len())
                    && namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
                if !ok {
                    return Err(ConfigError::RedisPrefix(namespace));
                }
                let fail_open = match file.cluster.on_redis_failure.as_deref() {
                    None | Some("closed") => false,
                    Some("open") => true,
                    Some(other) => return Err(ConfigError::RedisFailure(other.to_string())),
                };
                Some(SharedConfig { url, namespace, fail_open })
            }
        };
        let upstream = file.upstream.resolve()?;
        let format = o.log_format.clone().or(file.log.format).unwrap_or_else(|| "pretty".into());
        if format != "pretty" && format != "json" {
            return Err(ConfigError::Field {
                section: "log",
                field: "format",
                reason: format!("{format:?} must be \"pretty\" or \"json\""),
            });
        }
        let log = LogPolicy { level: file.log.level.unwrap_or_else(|| "info".into()), format };
        let base = path.parent().unwrap_or(Path::new(""));
        let server = file.server.resolve(o, listen, base, env("SPENDGATE_METRICS_TOKEN"))?;
        let spool_dir = file.spool_dir.unwrap_or_else(|| default_spool_dir(&database_url));
        let alerts = file.alerts.resolve()?;
        let otel = file.otel.resolve(env)?;
        Ok(Config {
            listen,
            database_url,
            spend_key_prefix,
            wallet_key_prefix,
            catalog,
            reservation,
            upstream,
            server,
            log,
            alerts,
            otel,
            spool_dir,
            shared,
        })
    }
}

/// The environment overrides the file for provider credentials and base URLs: each
/// provider's `api_key_env` (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GROQ_API_KEY`, ...)
/// and `<NAME>_BASE_URL` (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`, ...), the names the
/// providers' own SDKs read.
fn apply_provider_env(catalog: &mut Catalog, env: &dyn Fn(&str) -> Option<String>) {
    let names: Vec<String> = catalog.providers().iter().map(|p| p.name.clone()).collect();
    for name in names {
        let Some(p) = catalog.provider_mut(&name) else { continue };
        if let Some(key) = env(&p.api_key_env) {
            p.api_key = Some(ApiKey::new(key));
        }
        for t in &mut p.targets {
            if let Some(key) = t.api_key_env.as_deref().and_then(env) {
                t.api_key = Some(ApiKey::new(key));
            }
        }
        let base_env = format!("{}_BASE_URL", name.to_uppercase().replace('-', "_"));
        if let Some(url) = env(&base_env) {
            p.base_url = url.trim_end_matches('/').to_string();
        }
    }
}

/// Beside an SQLite database file; in the data directory for a server database.
fn default_spool_dir(database_url: &str) -> PathBuf {
    let file = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"));
    match file.and_then(|f| Path::new(f).parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("spool"),
        _ => data_dir().join("spool"),
    }
}

/// A URL fit for logs: a password in it is replaced by `****`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:****@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    match path {
        Some(p) => format!("{scheme}://{authority}/{p}"),
        None => format!("{scheme}://{authority}"),
    }
}

/// `sqlite://<data dir>/spendgate.db` (see [`data_dir`]).
pub fn default_database_url() -> String {
    format!("sqlite://{}", data_dir().join("spendgate.db").display())
}

/// `$SPENDGATE_DATA_DIR`, else `$XDG_DATA_HOME/spendgate`, else `~/.local/share/spendgate`,
/// else `./spendgate-data`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("SPENDGATE_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("spendgate")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/spendgate")))
        .unwrap_or_else(|| PathBuf::from("spendgate-data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml_text: &str, o: Overrides) -> Result<Config, ConfigError> {
        let file: ConfigFile =
            toml::from_str(toml_text).map_err(|e| ConfigError::Parse { path: "t".into(), message: e.to_string() })?;
        Config::resolve(file, Path::new("t.toml"), &o, &|_| None)
    }

    #[test]
    fn flags_beat_file_beat_defaults() {
        let c = resolve("listen = \"0.0.0.0:9000\"\ndatabase = \"sqlite://a.db\"", Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.database_url, "sqlite://a.db");
        let o = Overrides {
            listen: Some("127.0.0.1:1".into()),
            database: Some("sqlite://b.db".into()),
            ..Overrides::default()
        };
        let c = resolve("listen = \"0.0.0.0:9000\"", o).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:1");
        assert_eq!(c.database_url, "sqlite://b.db");
        let c = resolve("", Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.spend_key_prefix, "lava_sk_");
        assert!(c.database_url.ends_with("spendgate.db"));
    }

    #[test]
    fn bad_config_is_named() {
        let err = |t: &str| resolve(t, Overrides::default()).unwrap_err().to_string();
        assert!(err("lisen = \"x\"").contains("unknown field `lisen`"));
        assert!(err("listen = \"localhost\"").contains("\"localhost\""));
        assert!(err("[keys]\nspend_key_prefix = \"a b\"").contains("keys.spend_key_prefix"));
        assert!(err("[keys]\nspend_key_prefix = \"lava_wk_\"").contains("must differ"));
        assert!(err("[[model]]\nid = \"new\"\nprovider = \"openai\"").contains("`input` is required"));
        assert!(err("[cluster]\nredis = \"redis://x\"").contains("needs a PostgreSQL database"));
        let pg = "database = \"postgres://db/x\"\n[cluster]\n";
        assert!(err(&format!("{pg}redis = \"http://x\"")).contains("redis:// or rediss://"));
        assert!(
            err(&format!("{pg}redis = \"redis://x\"\non_redis_failure = \"maybe\"")).contains("\"closed\" or \"open\"")
        );
        assert!(err(&format!("{pg}redis = \"redis://x\"\nredis_prefix = \"a b\"")).contains("redis_prefix"));
    }

    #[test]
    fn bad_upstream_and_server_settings_are_named() {
        let err = |t: &str| resolve(t, Overrides::default()).unwrap_err().to_string();
        assert!(err("[upstream]\nbalance = \"random\"").contains("upstream.balance: \"random\""));
        assert!(err("[upstream]\nidle_timeout_ms = 0").contains("upstream.idle_timeout_ms"));
        assert!(err("[upstream]\nretries = 99").contains("upstream.retries"));
        assert!(err("[upstream]\nbreaker_failures = 0").contains("upstream.breaker_failures"));
        assert!(err("[upstream]\nretry = 1").contains("unknown field `retry`"));
        assert!(err("[server]\nheader_timeout_ms = 0").contains("server.header_timeout_ms"));
        assert!(
            err("[[provider]]\nname = \"openai\"\n[[provider.target]]\nurl = \"x\"").contains("unknown field `url`")
        );
        let c =
            resolve("[upstream]\nbalance = \"least_loaded\"\n[server]\nshutdown_grace_ms = 5", Overrides::default())
                .unwrap();
        assert_eq!(c.upstream.balance, Balance::LeastLoaded);
        assert_eq!(c.server.shutdown_grace, Duration::from_millis(5));
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(redacted("postgres://sg:s3cret@db:5432/spendgate"), "postgres://sg:****@db:5432/spendgate");
        assert_eq!(redacted("redis://:pw@cache:6379/2"), "redis://:****@cache:6379/2");
        assert_eq!(redacted("postgres://sg@db/x"), "postgres://sg@db/x");
        assert_eq!(redacted("sqlite:///var/lib/spendgate.db"), "sqlite:///var/lib/spendgate.db");
    }

    #[test]
    fn cluster_mode_from_file_or_flag() {
        let c = resolve("", Overrides::default()).unwrap();
        assert!(c.shared.is_none());
        let text = "database = \"postgres://db/x\"\n[cluster]\nredis = \"redis://r:6379\"\non_redis_failure = \"open\"";
        let c = resolve(text, Overrides::default()).unwrap();
        let shared = c.shared.unwrap();
        assert_eq!(
            (shared.url.as_str(), shared.namespace.as_str(), shared.fail_open),
            ("redis://r:6379", "spendgate", true)
        );
        let o = Overrides { redis: Some("redis://flag/2".into()), ..Overrides::default() };
        let c = resolve("database = \"postgres://db/x\"", o).unwrap();
        assert_eq!(c.shared.unwrap().url, "redis://flag/2");
    }

    #[test]
    fn provider_credentials_come_from_the_environment_over_the_file() {
        let file: ConfigFile = toml::from_str(
            "[[provider]]\nname = \"openai\"\napi_key = \"from-file\"\n[[provider]]\nname = \"groq\"\napi_key = \"groq-file\"\n[gateway]\nreservation = \"lenient\"",
        )
        .unwrap();
        let env = |name: &str| match name {
            "OPENAI_API_KEY" => Some("from-env".to_string()),
            "ANTHROPIC_BASE_URL" => Some("http://127.0.0.1:9/".to_string()),
            _ => None,
        };
        let c = Config::resolve(file, Path::new("t"), &Overrides::default(), &env).unwrap();
        let key = |p: &str| c.catalog.provider(p).unwrap().api_key.as_ref().map(|k| k.expose().to_string());
        assert_eq!(key("openai").as_deref(), Some("from-env"));
        assert_eq!(key("groq").as_deref(), Some("groq-file"));
        assert_eq!(key("anthropic"), None);
        assert_eq!(c.catalog.provider("anthropic").unwrap().base_url, "http://127.0.0.1:9");
        assert_eq!(c.reservation, ReservationPolicy::Lenient);
    }

    #[test]
    fn catalog_overrides_apply() {
        let c = resolve("[[model]]\nid = \"gpt-4o-mini\"\noutput = \"9\"", Overrides::default()).unwrap();
        assert_eq!(c.catalog.model("gpt-4o-mini").unwrap().prices.output.to_string(), "9.00");
    }
}
