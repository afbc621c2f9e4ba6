//! `spendgate wallets ...`: the operator's bootstrap, directly on the store.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use spendgate_core::{Timestamp, WalletId, WalletKeyId};
use spendgate_server::admin;
use spendgate_server::config::{Config, Overrides, redacted};
use spendgate_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct StoreArgs {
    /// Database URL: sqlite://PATH [default: a spendgate.db in the data directory].
    #[arg(long, env = "SPENDGATE_DATABASE_URL")]
    database: Option<String>,
    /// TOML config file (for the database URL and key prefixes).
    #[arg(long, env = "SPENDGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum WalletsCommand {
    /// Create a wallet and print its first API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List wallets.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Wallet API keys: more keys for one wallet, or revoke one.
    #[command(subcommand)]
    Keys(WalletKeysCommand),
}

#[derive(Subcommand)]
pub enum WalletKeysCommand {
    /// Create another API key for a wallet (shown once).
    Create {
        /// The wallet's id (wal_...).
        wallet_id: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List a wallet's API keys (previews only).
    List {
        wallet_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a wallet API key.
    Revoke {
        wallet_id: String,
        /// The key's id (wk_...).
        key_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

async fn open(args: &StoreArgs) -> anyhow::Result<(Arc<dyn Store>, Config)> {
    let config = Config::load(&Overrides {
        database: args.database.clone(),
        config: args.config.clone(),
        ..Overrides::default()
    })?;
    let store = spendgate_store::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redacted(&config.database_url)))?;
    Ok((store, config))
}

fn now() -> Timestamp {
    Timestamp::from_datetime(time::OffsetDateTime::now_utc())
}

pub async fn run(cmd: WalletsCommand) -> anyhow::Result<()> {
    match cmd {
        WalletsCommand::Create { name, store: args } => {
            let (store, config) = open(&args).await?;
            let (wallet, _, secret) = admin::create_wallet(&*store, &name, &config.wallet_key_prefix, now()).await?;
            if args.json {
                say!("{}", json!({ "wallet_id": wallet.id.as_str(), "key": secret.expose() }));
            } else {
                say!("Created wallet {} ({})", wallet.name, wallet.id);
                say!("Wallet API key (shown once, store it now):\n\n  {}\n", secret.expose());
                say!("Use it with:  export SPENDGATE_WALLET_KEY={}", secret.expose());
            }
        }
        WalletsCommand::List { store: args } => {
            let (store, _) = open(&args).await?;
            let wallets = store.list_wallets().await?;
            if args.json {
                let items: Vec<_> = wallets
                    .iter()
                    .map(|w| json!({ "wallet_id": w.id.as_str(), "name": w.name, "created_at": w.created_at.to_string() }))
                    .collect();
                say!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                let rows = wallets.iter().map(|w| vec![w.id.to_string(), w.name.clone(), w.created_at.to_string()]);
                crate::table::print(&["WALLET", "NAME", "CREATED"], rows);
            }
        }
        WalletsCommand::Keys(WalletKeysCommand::Create { wallet_id, name, store: args }) => {
            let (store, config) = open(&args).await?;
            let wallet = WalletId::new(wallet_id);
            let (key, secret) =
                admin::create_wallet_key(&*store, &wallet, &name, &config.wallet_key_prefix, now()).await?;
            if args.json {
                say!("{}", json!({ "wallet_id": wallet.as_str(), "key_id": key.id.as_str(), "key": secret.expose() }));
            } else {
                say!("Created wallet API key {} for {wallet} (shown once):\n\n  {}\n", key.id, secret.expose());
            }
        }
        WalletsCommand::Keys(WalletKeysCommand::List { wallet_id, store: args }) => {
            let (store, _) = open(&args).await?;
            let keys = store.list_wallet_keys(&WalletId::new(wallet_id)).await?;
            if args.json {
                let items: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({ "key_id": k.id.as_str(), "name": k.name, "key_preview": k.key_preview,
                            "created_at": k.created_at.to_string(), "revoked_at": k.revoked_at.map(|t| t.to_string()) })
                    })
                    .collect();
                say!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                let rows = keys.iter().map(|k| {
                    let state = k.revoked_at.map_or("active".to_string(), |t| format!("revoked {t}"));
                    vec![k.id.to_string(), k.name.clone(), k.key_preview.clone(), k.created_at.to_string(), state]
                });
                crate::table::print(&["KEY", "NAME", "PREVIEW", "CREATED", "STATUS"], rows);
            }
        }
        WalletsCommand::Keys(WalletKeysCommand::Revoke { wallet_id, key_id, store: args }) => {
            let (store, _) = open(&args).await?;
            if !admin::revoke_wallet_key(&*store, &WalletId::new(&wallet_id), &WalletKeyId::new(&key_id), now()).await?
            {
                bail!("no active wallet API key {key_id} in wallet {wallet_id}");
            }
            if args.json {
                say!("{}", json!({ "success": true }));
            } else {
                say!("Revoked wallet API key {key_id}");
            }
        }
    }
    Ok(())
}
