//! The `spendgate` binary: `serve` runs the gateway, `wallets` bootstraps wallets on
//! the store directly, `keys` and `audit` use the wallet API, `config check` validates
//! a configuration, `completions` prints shell completions.
// One unsafe call: the allocator's options (`allocator.rs`).
#![deny(unsafe_code)]

/// `println!` that ignores a closed stdout (`spendgate keys list | head`) instead of
/// panicking on the broken pipe.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod allocator;
mod config_cmd;
mod keys;
mod logging;
mod serve;
mod table;
mod wallets;
mod webhooks;

use clap::{CommandFactory, Parser, Subcommand};

use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "spendgate",
    version,
    about = "A self-hosted AI gateway with spend keys: scoped, metered, capped API keys for OpenAI and Anthropic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (wallet API; embedded SQLite by default).
    Serve(serve::ServeArgs),
    /// Create and list wallets and their API keys (works on the store directly).
    #[command(subcommand)]
    Wallets(wallets::WalletsCommand),
    /// Manage spend keys through the wallet API (needs SPENDGATE_WALLET_KEY).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The wallet's audit log: who changed what, when, from where (needs SPENDGATE_WALLET_KEY).
    Audit(keys::AuditArgs),
    /// Budget-alert webhooks and their deliveries (needs SPENDGATE_WALLET_KEY).
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Check a configuration and print what it resolves to.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Print shell completions: `spendgate completions bash > /etc/bash_completion.d/spendgate`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run a mock OpenAI + Anthropic provider (for tests, benchmarks and trying it out).
    MockProvider(spendgate_mock::MockArgs),
}

fn main() -> ExitCode {
    allocator::tune();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Wallets(cmd) => wallets::run(cmd).await,
            Command::Keys(cmd) => keys::run(cmd).await,
            Command::Audit(args) => keys::audit(args).await,
            Command::Webhooks(cmd) => webhooks::run(cmd).await,
            Command::Config(cmd) => config_cmd::run(cmd),
            Command::Completions { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "spendgate", &mut std::io::stdout());
                Ok(())
            }
            Command::MockProvider(args) => spendgate_mock::run(args).await,
        }
    });
    logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
