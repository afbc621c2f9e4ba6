//! `spendgate config check`: validates a config (file, environment and flags, as `serve`
//! would read them) and prints what it resolved. Never prints a secret: provider keys
//! show only whether they are set, URLs their host, not their password.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use spendgate_server::config::{Config, redacted};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print what it resolves to: listeners, where data
    /// lives, providers (with or without a key), models, limits and timeouts.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: crate::serve::ConfigArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Check(args) = cmd;
    let config = Config::load(&args.config.overrides())?;
    // The certificate and key are read as `serve` would: a file that does not fit fails here.
    if let Some(files) = &config.server.tls {
        spendgate_server::tls::acceptor(files).context("TLS")?;
    }
    let report = resolved(&config, args.config.config.as_deref());
    if args.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn resolved(c: &Config, file: Option<&std::path::Path>) -> Value {
    let providers: Vec<Value> = c
        .catalog
        .providers()
        .iter()
        .map(|p| {
            let targets = p.resolved_targets();
            let models: Vec<&str> =
                c.catalog.models().iter().filter(|m| m.provider == p.name).map(|m| m.id.as_str()).collect();
            json!({
                "name": p.name,
                "format": p.format.as_str(),
                "targets": targets.iter().map(|(url, key)| json!({"base_url": redacted(url), "key": key.is_some()})).collect::<Vec<_>>(),
                "configured": targets.iter().any(|(_, key)| key.is_some()),
                "models": models,
            })
        })
        .collect();
    let u = &c.upstream;
    json!({
        "config_file": file.map(|f| f.display().to_string()),
        "listen": c.listen.to_string(),
        "admin_listen": c.server.admin_listen.map(|a| a.to_string()),
        "tls": c.server.tls.as_ref().map(|t| json!({"cert": t.cert.display().to_string(), "key": t.key.display().to_string()})),
        "metrics": c.server.metrics,
        "metrics_token": c.server.metrics_token.is_some(),
        "database": redacted(&c.database_url),
        "spool_dir": c.spool_dir.display().to_string(),
        "cluster": c.shared.as_ref().map(|s| json!({"redis": redacted(&s.url), "prefix": s.namespace, "on_redis_failure": if s.fail_open { "open" } else { "closed" }})),
        "log": {"level": c.log.level, "format": c.log.format},
        "otel": c.otel.as_ref().map(|o| json!({"endpoint": redacted(&o.endpoint), "service_name": o.service_name})),
        "alerts": {
            "check_interval_ms": c.alerts.check_interval.as_millis() as u64,
            "timeout_ms": c.alerts.timeout.as_millis() as u64,
            "max_attempts": c.alerts.max_attempts,
            "retry_base_ms": c.alerts.retry_base.as_millis() as u64,
            "block_private_addresses": c.alerts.block_private_addresses,
        },
        "reservation": format!("{:?}", c.reservation).to_lowercase(),
        "keys": {"spend_key_prefix": c.spend_key_prefix, "wallet_key_prefix": c.wallet_key_prefix},
        "upstream": {
            "connect_timeout_ms": u.connect_timeout.as_millis() as u64,
            "first_byte_timeout_ms": u.first_byte_timeout.as_millis() as u64,
            "idle_timeout_ms": u.idle_timeout.as_millis() as u64,
            "retries": u.retries,
            "balance": format!("{:?}", u.balance),
            "breaker_failures": u.breaker_failures,
        },
        "server": {
            "header_timeout_ms": c.server.header_timeout.as_millis() as u64,
            "body_timeout_ms": c.server.body_timeout.as_millis() as u64,
            "shutdown_grace_ms": c.server.shutdown_grace.as_millis() as u64,
        },
        "providers": providers,
        "models": c.catalog.models().len(),
    })
}

fn print_text(r: &Value) {
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    say!("config ok ({})", r["config_file"].as_str().unwrap_or("no config file: defaults and environment"));
    say!("  listen        {}", text(&r["listen"]));
    say!("  admin listen  {}", r["admin_listen"].as_str().unwrap_or("(the main address)"));
    say!("  TLS           {}", r["tls"]["cert"].as_str().map_or("off".to_string(), |c| format!("on ({c})")));
    let metrics = match (r["metrics"] == true, r["metrics_token"] == true) {
        (false, _) => "off",
        (true, false) => "GET /metrics (open)",
        (true, true) => "GET /metrics (bearer token)",
    };
    say!("  metrics       {metrics}");
    say!("  database      {}", text(&r["database"]));
    say!("  spool dir     {}", text(&r["spool_dir"]));
    say!(
        "  cluster       {}",
        r["cluster"]["redis"].as_str().map_or("off (one instance)".to_string(), |u| format!("Redis {u}"))
    );
    say!("  log           {} as {}", text(&r["log"]["level"]), text(&r["log"]["format"]));
    say!(
        "  traces        {}",
        r["otel"]["endpoint"]
            .as_str()
            .map_or("off".to_string(), |e| format!("OTLP/HTTP to {e} as {}", text(&r["otel"]["service_name"])))
    );
    say!("  reservation   {}", text(&r["reservation"]));
    say!("\nproviders ({} models in the catalog):", r["models"]);
    let rows = r["providers"].as_array().into_iter().flatten().map(|p| {
        let targets = p["targets"].as_array().map_or(0, Vec::len);
        let base = p["targets"][0]["base_url"].as_str().unwrap_or("").to_string();
        vec![
            text(&p["name"]),
            text(&p["format"]),
            if p["configured"] == true { "yes".into() } else { "no key".into() },
            if targets > 1 { format!("{base} (+{} more)", targets - 1) } else { base },
            p["models"].as_array().map_or(0, Vec::len).to_string(),
        ]
    });
    crate::table::print(&["PROVIDER", "FORMAT", "KEY", "BASE URL", "MODELS"], rows);
}
