//! `spendgate serve`.

use anyhow::Context;
use clap::Args;
use spendgate_server::config::{Config, Overrides};
use spendgate_server::state::{AppState, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free one).
    #[arg(long, env = "SPENDGATE_LISTEN")]
    listen: Option<String>,
    /// Database URL: sqlite://PATH [default: a spendgate.db in the data directory].
    #[arg(long, env = "SPENDGATE_DATABASE_URL")]
    database: Option<String>,
    /// TOML config file.
    #[arg(long, env = "SPENDGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "SPENDGATE_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"])]
    log_format: String,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log_format);
    let config = Config::load(&Overrides { listen: args.listen, database: args.database, config: args.config })?;
    let store = spendgate_store::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    tracing::info!(database = %config.database_url, models = config.catalog.models().len(), "store ready");
    if store.list_wallets().await?.is_empty() {
        tracing::info!(
            "no wallets yet: create one with `spendgate wallets create --name NAME --database {}`",
            config.database_url
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // On stdout, for people and for scripts that start us on port 0.
    say!("spendgate listening on http://{addr}");
    say!("database: {}", config.database_url);
    let state = AppState::build(store, config, Arc::new(SystemClock)).await?;
    tracing::info!(
        spend_keys = state.keys.len(),
        providers = ?state.upstreams.configured(),
        reservation = ?state.config.reservation,
        "gateway ready"
    );
    if state.upstreams.configured().is_empty() {
        tracing::warn!("no provider has an API key: set OPENAI_API_KEY, ANTHROPIC_API_KEY, ... (see the README)");
    }
    spendgate_server::run(state, listener).await?;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_env("SPENDGATE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
