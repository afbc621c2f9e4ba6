//! `spendgate keys ...` and `spendgate audit`: the wallet API through `spendgate-client`.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use spendgate_client::{Client, NewSpendKey, RateLimit, RequestLimit, SpendKey, SpendKeyChanges, SpendLimit};

#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(long, env = "SPENDGATE_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// Options shared by create and update, mirroring the API's fields.
#[derive(Args, Default)]
pub struct KeyOptions {
    /// Allow this model (repeat or comma-separate; default: all models).
    #[arg(long = "model", value_name = "MODEL", value_delimiter = ',')]
    models: Vec<String>,
    /// Allow this provider (repeat or comma-separate; default: all providers).
    #[arg(long = "provider", value_name = "PROVIDER", value_delimiter = ',')]
    providers: Vec<String>,
    /// Spend limit in USD per cycle, e.g. 50/monthly (cycles: daily, weekly, monthly, total).
    #[arg(long, value_name = "AMOUNT/CYCLE", allow_hyphen_values = true)]
    spend_limit: Option<String>,
    /// Request limit per cycle, e.g. 1000/daily.
    #[arg(long, value_name = "COUNT/CYCLE", allow_hyphen_values = true)]
    request_limit: Option<String>,
    /// Rate limit: requests per minute.
    #[arg(long, allow_hyphen_values = true)]
    rpm: Option<i64>,
    /// Rate limit: burst allowance (needs --rpm).
    #[arg(long, requires = "rpm", allow_hyphen_values = true)]
    burst: Option<i64>,
    /// Expiry, ISO 8601, e.g. 2027-01-01T00:00:00Z.
    #[arg(long, value_name = "TIMESTAMP")]
    expires: Option<String>,
    /// API format the key's tools speak.
    #[arg(long, value_parser = ["openai", "anthropic"])]
    shape: Option<String>,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a spend key; prints the full key once.
    Create {
        #[arg(long)]
        name: String,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        options: KeyOptions,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List spend keys, newest first.
    List {
        /// Keys per page (1-100).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start after this cursor (from a previous --json page).
        #[arg(long)]
        cursor: Option<String>,
        /// Fetch every page.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one spend key.
    Get {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a spend key (only the options given).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        options: KeyOptions,
        /// Allow all models again.
        #[arg(long, conflicts_with = "models")]
        all_models: bool,
        /// Allow all providers again.
        #[arg(long, conflicts_with = "providers")]
        all_providers: bool,
        /// Remove the spend limit.
        #[arg(long, conflicts_with = "spend_limit")]
        no_spend_limit: bool,
        /// Remove the request limit.
        #[arg(long, conflicts_with = "request_limit")]
        no_request_limit: bool,
        /// Remove the rate limit.
        #[arg(long, conflicts_with_all = ["rpm", "burst"])]
        no_rate_limit: bool,
        /// Remove the expiry.
        #[arg(long, conflicts_with = "expires")]
        no_expiry: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Pause a spend key (requests get 401 until resumed).
    Pause {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Resume a paused spend key.
    Resume {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// New secret for the same key (limits and usage stay); prints it once.
    Rotate {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a spend key for good.
    Revoke {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Spend and requests of a key: current cycle and total.
    Usage {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The wallet API client for these arguments (the wallet key from the environment).
pub(crate) fn client(args: &ClientArgs) -> anyhow::Result<Client> {
    let wallet_key = std::env::var("SPENDGATE_WALLET_KEY").ok().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
        anyhow!("set SPENDGATE_WALLET_KEY to a wallet API key (create one with `spendgate wallets create`)")
    })?;
    let http = reqwest::Client::builder().user_agent(concat!("spendgate-cli/", env!("CARGO_PKG_VERSION"))).build()?;
    Ok(Client::with_http(http, &args.url, wallet_key.trim()))
}

/// `--no-...` / `--all-...`: the field is cleared (sent as null).
fn cleared<T>(flag: bool, field: &mut Option<Option<T>>) {
    if flag {
        *field = Some(None);
    }
}

/// A key as the API shows it, for printing.
fn shown(key: SpendKey) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(key)?)
}

fn split_limit<'a>(flag: &str, value: &'a str, example: &str) -> anyhow::Result<(&'a str, &'a str)> {
    value.split_once('/').ok_or_else(|| anyhow!("--{flag} {value:?}: expected {example}"))
}

impl KeyOptions {
    /// The options as changes to a key (a new key takes the same settings).
    fn into_changes(self) -> anyhow::Result<SpendKeyChanges> {
        let mut c = SpendKeyChanges::default();
        if !self.models.is_empty() {
            c.allowed_models = Some(Some(self.models));
        }
        if !self.providers.is_empty() {
            c.allowed_providers = Some(Some(self.providers));
        }
        if let Some(limit) = &self.spend_limit {
            let (amount, cycle) = split_limit("spend-limit", limit, "AMOUNT/CYCLE like 50/monthly")?;
            c.spend_limit =
                Some(Some(SpendLimit { amount: amount.trim_start_matches('$').to_string(), cycle: cycle.to_string() }));
        }
        if let Some(limit) = &self.request_limit {
            let (count, cycle) = split_limit("request-limit", limit, "COUNT/CYCLE like 1000/daily")?;
            let count: i64 = count.parse().map_err(|_| anyhow!("--request-limit: {count:?} is not a whole number"))?;
            c.request_limit = Some(Some(RequestLimit { count, cycle: cycle.to_string() }));
        }
        if let Some(rpm) = self.rpm {
            c.rate_limit = Some(Some(RateLimit { rpm, burst: self.burst }));
        }
        if let Some(expires) = self.expires {
            c.expires_at = Some(Some(expires));
        }
        c.request_shape = self.shape;
        Ok(c)
    }
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create { name, paused, options, client: args } => {
            let c = options.into_changes()?;
            let new = NewSpendKey {
                name,
                status: paused.then(|| "paused".to_string()),
                request_shape: c.request_shape,
                allowed_models: c.allowed_models.flatten(),
                allowed_providers: c.allowed_providers.flatten(),
                spend_limit: c.spend_limit.flatten(),
                request_limit: c.request_limit.flatten(),
                rate_limit: c.rate_limit.flatten(),
                expires_at: c.expires_at.flatten(),
            };
            let key = shown(client(&args)?.create_spend_key(&new).await?)?;
            show_key(&key, args.json, "Created")
        }
        KeysCommand::List { limit, cursor, all, client } => {
            let api = crate::keys::client(&client)?;
            let mut keys = Vec::new();
            let mut cursor = cursor;
            loop {
                let page = serde_json::to_value(api.list_spend_keys(limit, cursor.as_deref()).await?)?;
                if client.json && !all {
                    say!("{}", serde_json::to_string_pretty(&page)?);
                    return Ok(());
                }
                keys.extend(page["data"].as_array().cloned().unwrap_or_default());
                cursor = page["next_cursor"].as_str().map(str::to_string);
                if !all || cursor.is_none() {
                    if !all && cursor.is_some() {
                        eprintln!("(more keys: --all, or --cursor {})", cursor.unwrap_or_default());
                    }
                    break;
                }
            }
            if client.json {
                say!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                let rows = keys.iter().map(|k| {
                    vec![
                        text(&k["spend_key_id"]),
                        text(&k["name"]),
                        status(k),
                        text(&k["request_shape"]),
                        spend(k),
                        requests(k),
                        text_or(&k["last_used_at"], "never"),
                    ]
                });
                crate::table::print(&["ID", "NAME", "STATUS", "FORMAT", "SPEND", "REQUESTS", "LAST USED"], rows);
            }
            Ok(())
        }
        KeysCommand::Get { id, client } => {
            let key = shown(crate::keys::client(&client)?.spend_key(&id).await?)?;
            show_key(&key, client.json, "Spend key")
        }
        KeysCommand::Update {
            id,
            name,
            options,
            all_models,
            all_providers,
            no_spend_limit,
            no_request_limit,
            no_rate_limit,
            no_expiry,
            client,
        } => {
            let mut changes = options.into_changes()?;
            changes.name = name;
            cleared(all_models, &mut changes.allowed_models);
            cleared(all_providers, &mut changes.allowed_providers);
            cleared(no_spend_limit, &mut changes.spend_limit);
            cleared(no_request_limit, &mut changes.request_limit);
            cleared(no_rate_limit, &mut changes.rate_limit);
            cleared(no_expiry, &mut changes.expires_at);
            if changes.is_empty() {
                bail!("nothing to change: give at least one option (see `spendgate keys update --help`)");
            }
            let key = shown(crate::keys::client(&client)?.update_spend_key(&id, &changes).await?)?;
            show_key(&key, client.json, "Updated")
        }
        KeysCommand::Pause { id, client } => set_status(&id, &client, "paused").await,
        KeysCommand::Resume { id, client } => set_status(&id, &client, "active").await,
        KeysCommand::Rotate { id, client } => {
            let key = shown(crate::keys::client(&client)?.rotate_spend_key(&id).await?)?;
            show_key(&key, client.json, "Rotated")
        }
        KeysCommand::Revoke { id, client } => {
            crate::keys::client(&client)?.revoke_spend_key(&id).await?;
            if client.json {
                say!("{}", json!({ "success": true }));
            } else {
                say!("Revoked spend key {id}");
            }
            Ok(())
        }
        KeysCommand::Usage { id, client } => {
            let key = shown(crate::keys::client(&client)?.spend_key(&id).await?)?;
            if client.json {
                let fields = [
                    "spend_key_id",
                    "current_spend",
                    "total_spend",
                    "current_requests",
                    "total_requests",
                    "last_used_at",
                ];
                let usage: Map<String, Value> = fields.iter().map(|f| (f.to_string(), key[*f].clone())).collect();
                say!("{}", serde_json::to_string_pretty(&usage)?);
            } else {
                say!("{} ({})", text(&key["name"]), text(&key["spend_key_id"]));
                say!("  spend     {}  (total ${})", spend(&key), text(&key["total_spend"]));
                say!("  requests  {}  (total {})", requests(&key), key["total_requests"]);
                say!("  last used {}", text_or(&key["last_used_at"], "never"));
            }
            Ok(())
        }
    }
}

/// `spendgate audit`: the wallet's audit log.
#[derive(Args)]
pub struct AuditArgs {
    /// Only the entries about this spend key, wallet key or wallet id.
    #[arg(long, value_name = "ID")]
    target: Option<String>,
    /// Entries to show (1-100), newest first.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let page = client(&args.client)?.audit_log(args.target.as_deref(), args.limit, None).await?;
    let page = serde_json::to_value(page)?;
    if args.client.json {
        say!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    let entries = page["data"].as_array().cloned().unwrap_or_default();
    let rows = entries.iter().map(|e| {
        let actor = match e["actor"]["id"].as_str() {
            Some(id) => format!("{} {id}", text(&e["actor"]["type"])),
            None => text(&e["actor"]["type"]),
        };
        let changes = e["changes"].as_object().map(|c| c.keys().cloned().collect::<Vec<_>>().join(", "));
        vec![
            text(&e["created_at"]),
            text(&e["action"]),
            text(&e["target_id"]),
            actor,
            text_or(&e["ip"], "-"),
            changes.filter(|c| !c.is_empty()).unwrap_or_else(|| "-".into()),
        ]
    });
    crate::table::print(&["WHEN", "ACTION", "TARGET", "BY", "FROM", "CHANGED"], rows);
    Ok(())
}

async fn set_status(id: &str, client: &ClientArgs, status: &str) -> anyhow::Result<()> {
    let changes = SpendKeyChanges { status: Some(status.to_string()), ..SpendKeyChanges::default() };
    let key = shown(crate::keys::client(client)?.update_spend_key(id, &changes).await?)?;
    let verb = if status == "paused" { "Paused" } else { "Resumed" };
    show_key(&key, client.json, verb)
}

pub(crate) fn text(v: &Value) -> String {
    text_or(v, "")
}

pub(crate) fn text_or(v: &Value, default: &str) -> String {
    match v {
        Value::Null => default.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn status(k: &Value) -> String {
    text(&k["status"])
}

fn spend(k: &Value) -> String {
    match k["spend_limit"].as_object() {
        Some(l) => format!("${} / ${} {}", text(&k["current_spend"]), text(&l["amount"]), text(&l["cycle"])),
        None => format!("${} this month", text(&k["current_spend"])),
    }
}

fn requests(k: &Value) -> String {
    match k["request_limit"].as_object() {
        Some(l) => format!("{} / {} {}", k["current_requests"], l["count"], text(&l["cycle"])),
        None => format!("{} this month", k["current_requests"]),
    }
}

fn show_key(k: &Value, as_json: bool, verb: &str) -> anyhow::Result<()> {
    if as_json {
        say!("{}", serde_json::to_string_pretty(k)?);
        return Ok(());
    }
    say!("{verb} spend key {} ({})", text(&k["name"]), text(&k["spend_key_id"]));
    if let Some(secret) = k["key"].as_str() {
        say!("\n  {secret}\n\nThis is the only time the full key is shown: store it now.\n");
    }
    let list = |v: &Value, all: &str| match v.as_array() {
        Some(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        None => all.to_string(),
    };
    let rate = match k["rate_limit"].as_object() {
        Some(r) => format!("{} rpm, burst {}", r["rpm"], text_or(&r["burst"], "default")),
        None => "none".to_string(),
    };
    let rows = [
        ("preview", text(&k["key_preview"])),
        ("status", status(k)),
        ("format", text(&k["request_shape"])),
        ("models", list(&k["allowed_models"], "all")),
        ("providers", list(&k["allowed_providers"], "all")),
        ("spend", spend(k)),
        ("requests", requests(k)),
        ("rate limit", rate),
        ("expires", text_or(&k["expires_at"], "never")),
        ("last used", text_or(&k["last_used_at"], "never")),
        ("created", text(&k["created_at"])),
    ];
    for (label, value) in rows {
        say!("  {label:<11} {value}");
    }
    Ok(())
}
