//! `spendgate webhooks ...`: budget-alert webhooks through the wallet API.

use crate::keys::{ClientArgs, client, text, text_or};
use clap::Subcommand;
use serde_json::Value;
use spendgate_client::NewWebhook;

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Register a webhook for budget alerts; prints its signing secret once.
    Create {
        /// Where to POST the alerts (http:// or https://). (`--url` is the server's.)
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// Only this spend key's alerts (default: every key of the wallet).
        #[arg(long, value_name = "SPEND_KEY_ID")]
        key: Option<String>,
        /// Send only these events (repeat or comma-separate): spend.threshold,
        /// request_limit.reached, spend_key.expired (default: all).
        #[arg(long = "event", value_name = "EVENT", value_delimiter = ',')]
        events: Vec<String>,
        /// Percents of a key's spend limit that send spend.threshold (default: 50,80,100).
        #[arg(long, value_name = "PERCENTS", value_delimiter = ',')]
        thresholds: Vec<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the wallet's webhooks.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a webhook.
    Delete {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A webhook's deliveries, newest first: event, status, attempts, last answer.
    Deliveries {
        id: String,
        /// Deliveries to show (1-100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Send a webhook a test event.
    Test {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(cmd: WebhooksCommand) -> anyhow::Result<()> {
    match cmd {
        WebhooksCommand::Create { endpoint, key, events, thresholds, client: args } => {
            let new = NewWebhook {
                url: endpoint,
                spend_key_id: key,
                events: (!events.is_empty()).then_some(events),
                thresholds: (!thresholds.is_empty()).then_some(thresholds),
            };
            let hook = serde_json::to_value(client(&args)?.create_webhook(&new).await?)?;
            if args.json {
                say!("{}", serde_json::to_string_pretty(&hook)?);
                return Ok(());
            }
            say!("created webhook {}", text(&hook["webhook_id"]));
            say!("  url         {}", text(&hook["url"]));
            say!("  keys        {}", text_or(&hook["spend_key_id"], "all"));
            say!("  events      {}", list(&hook["events"]));
            say!("  thresholds  {}", list(&hook["thresholds"]));
            say!(
                "\nsigning secret (shown once; check each delivery's spendgate-signature with it):\n  {}",
                text(&hook["secret"])
            );
        }
        WebhooksCommand::List { client: args } => {
            let hooks = serde_json::to_value(client(&args)?.webhooks().await?)?;
            if args.json {
                say!("{}", serde_json::to_string_pretty(&hooks)?);
                return Ok(());
            }
            let rows = hooks.as_array().into_iter().flatten().map(|h| {
                vec![
                    text(&h["webhook_id"]),
                    text(&h["url"]),
                    text_or(&h["spend_key_id"], "all"),
                    list(&h["events"]),
                    list(&h["thresholds"]),
                ]
            });
            crate::table::print(&["ID", "URL", "KEYS", "EVENTS", "THRESHOLDS"], rows);
        }
        WebhooksCommand::Delete { id, client: args } => {
            client(&args)?.delete_webhook(&id).await?;
            say!("deleted webhook {id}");
        }
        WebhooksCommand::Deliveries { id, limit, client: args } => {
            let page = serde_json::to_value(client(&args)?.webhook_deliveries(&id, limit, None).await?)?;
            if args.json {
                say!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            let rows = page["data"].as_array().into_iter().flatten().map(|d| {
                let answer = match (&d["last_status"], &d["last_error"]) {
                    (Value::Number(n), _) => n.to_string(),
                    (_, Value::String(e)) => e.clone(),
                    _ => "-".into(),
                };
                vec![
                    text(&d["created_at"]),
                    text(&d["event"]),
                    text(&d["status"]),
                    d["attempts"].to_string(),
                    answer,
                    text_or(&d["next_attempt_at"], "-"),
                ]
            });
            crate::table::print(&["WHEN", "EVENT", "STATUS", "ATTEMPTS", "LAST ANSWER", "NEXT TRY"], rows);
        }
        WebhooksCommand::Test { id, client: args } => {
            let d = client(&args)?.test_webhook(&id).await?;
            say!(
                "queued test event {} for webhook {id}; `spendgate webhooks deliveries {id}` shows how it went",
                d.delivery_id
            );
        }
    }
    Ok(())
}

/// `a, b, c` from a JSON array.
fn list(v: &Value) -> String {
    v.as_array().map_or_else(String::new, |items| items.iter().map(text).collect::<Vec<_>>().join(", "))
}
