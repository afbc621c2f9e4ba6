//! The `spendgate` binary: `serve` runs the gateway, `wallets` bootstraps wallets on
//! the store directly, `keys` manages spend keys through the wallet API.
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
mod keys;
mod logging;
mod serve;
mod table;
mod wallets;

use clap::{Parser, Subcommand};

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
