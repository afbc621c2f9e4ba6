//! `spendgate serve`.

use anyhow::Context;
use clap::Args;
use spendgate_core::ApiKey;
use spendgate_mock::{Mock, MockConfig};
use spendgate_server::config::{Config, Overrides, redacted};
use spendgate_server::serve::{Listener, Surface};
use spendgate_server::state::{AppState, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the configuration comes from: the flags (or their environment variables) over
/// the config file. Shared by `serve` and `config check`, which must read alike.
#[derive(Args)]
pub struct ConfigArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free one).
    #[arg(long, env = "SPENDGATE_LISTEN")]
    listen: Option<String>,
    /// Serve the wallet API and the dashboard on this address only (HOST:PORT); the
    /// main address then serves only the gateway.
    #[arg(long, env = "SPENDGATE_ADMIN_LISTEN")]
    admin_listen: Option<String>,
    /// TLS: the certificate chain (PEM). Needs --tls-key.
    #[arg(long, env = "SPENDGATE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS: the certificate's private key (PEM).
    #[arg(long, env = "SPENDGATE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Database URL: sqlite://PATH [default: a spendgate.db in the data directory], or
    /// postgres://USER@HOST/DB to share it with other instances.
    #[arg(long, env = "SPENDGATE_DATABASE_URL")]
    database: Option<String>,
    /// Cluster mode: share counters with the other instances through this Redis,
    /// redis://HOST:PORT[/DB] (needs a postgres:// database).
    #[arg(long, env = "SPENDGATE_REDIS_URL")]
    redis: Option<String>,
    /// TOML config file.
    #[arg(long, env = "SPENDGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: pretty, or the config file's log.format].
    #[arg(long, env = "SPENDGATE_LOG_FORMAT", value_parser = ["pretty", "json"])]
    log_format: Option<String>,
}

impl ConfigArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            log_format: self.log_format.clone(),
            admin_listen: self.admin_listen.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            database: self.database.clone(),
            redis: self.redis.clone(),
            config: self.config.clone(),
        }
    }
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Try it without provider accounts: a built-in mock stands in for OpenAI and
    /// Anthropic, and a demo wallet with ready-to-use keys is printed. Uses
    /// `demo.db` in the data directory unless --database is given.
    #[arg(long)]
    demo: bool,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut overrides = args.config.overrides();
    if args.demo && overrides.database.is_none() {
        overrides.database = Some(spendgate_server::config::default_database_url().replace("spendgate.db", "demo.db"));
    }
    let mut config = Config::load(&overrides)?;
    crate::logging::init(&config.log)?;
    let tls = config.server.tls.as_ref().map(spendgate_server::tls::acceptor).transpose()?;
    if args.demo {
        let mock_url = start_demo_mock().await?;
        for (name, base) in [("openai", format!("{mock_url}/v1")), ("anthropic", mock_url.clone())] {
            if let Some(p) = config.catalog.provider_mut(name) {
                p.base_url = base;
                p.api_key = Some(ApiKey::new("demo"));
            }
        }
    }
    let store = spendgate_store::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redacted(&config.database_url)))?;
    tracing::info!(database = %redacted(&config.database_url), models = config.catalog.models().len(), "store ready");
    if store.list_wallets().await?.is_empty() {
        tracing::info!(
            "no wallets yet: create one with `spendgate wallets create --name NAME --database {}`",
            redacted(&config.database_url)
        );
    }
    let bind =
        async |addr| tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr()?;
    // On stdout, for people and for scripts that start us on port 0.
    say!("spendgate listening on {scheme}://{addr}");
    let gateway_url = format!("{scheme}://{addr}");
    let mut management_url = gateway_url.clone();
    let mut listeners = Vec::new();
    match config.server.admin_listen {
        None => listeners.push(Listener { tcp: listener, surface: Surface::All, tls: tls.clone() }),
        Some(admin) => {
            let admin = bind(admin).await?;
            management_url = format!("{scheme}://{}", admin.local_addr()?);
            say!("wallet API and dashboard on {management_url}");
            listeners.push(Listener { tcp: listener, surface: Surface::Gateway, tls: tls.clone() });
            listeners.push(Listener { tcp: admin, surface: Surface::Management, tls });
        }
    }
    say!("database: {}", redacted(&config.database_url));
    if let Some(shared) = &config.shared {
        say!("shared counters: {} (prefix {})", redacted(&shared.url), shared.namespace);
    }
    let state = AppState::build(store, config, Arc::new(SystemClock)).await?;
    tracing::info!(
        providers = ?state.upstreams.configured(),
        reservation = ?state.config.reservation,
        cluster = state.config.shared.is_some(),
        "gateway ready"
    );
    if state.upstreams.configured().is_empty() {
        tracing::warn!("no provider has an API key: set OPENAI_API_KEY, ANTHROPIC_API_KEY, ... (see the README)");
    }
    if args.demo {
        let keys = spendgate_server::admin::demo_bootstrap(&state).await?;
        print_demo(&gateway_url, &management_url, &keys);
    }
    spendgate_server::run(state, listeners).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The mock provider on a loopback port, streaming at a readable pace.
async fn start_demo_mock() -> anyhow::Result<String> {
    let mock = Mock::new(MockConfig { chunk_delay_ms: 30, output_tokens: 24, ..MockConfig::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(spendgate_mock::serve(mock, listener));
    Ok(url)
}

fn print_demo(gateway: &str, management: &str, keys: &spendgate_server::admin::DemoKeys) {
    let (wallet, oa, an) = (keys.wallet_key.expose(), keys.openai_key.expose(), keys.anthropic_key.expose());
    say!(
        "
Demo mode: a built-in mock stands in for OpenAI and Anthropic (no provider account needed).
Fresh keys for this run (each spend key is capped at $1.00 a day):

  wallet API key         {wallet}
  OpenAI-format key      {oa}
  Anthropic-format key   {an}

Try it:

  curl {gateway}/v1/chat/completions -H 'Authorization: Bearer {oa}' \\
    -d '{{\"model\": \"gpt-4o-mini\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'

  curl -N {gateway}/v1/messages -H 'x-api-key: {an}' -H 'anthropic-version: 2023-06-01' \\
    -d '{{\"model\": \"claude-sonnet-4-20250514\", \"max_tokens\": 256, \"stream\": true, \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'

  SPENDGATE_URL={management} SPENDGATE_WALLET_KEY={wallet} spendgate keys list
"
    );
}
