//! The record spool: where request records wait, on disk, while the store cannot take
//! them (PostgreSQL down), so that none is lost to a restart or a crash meanwhile and
//! memory stays bounded. One JSON line per batch, fsynced before the batch counts as
//! written. Each instance claims a file with an exclusive lock; files that no running
//! instance holds (one crashed) are adopted and drained by the next one to start. The
//! directory is per database, so records only ever go to the store they were meant for.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spendgate_core::{SpendKeyId, Timestamp, TokenUsage, Usd, WalletId};
use spendgate_store::RequestRecord;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};

pub struct Spool {
    file: File,
    path: PathBuf,
    /// Batches in the file.
    batches: usize,
}

impl Spool {
    /// Claims a spool file in `dir` for the database `database_url`, adopting the
    /// batches of files no running instance holds.
    pub fn open(dir: &Path, database_url: &str) -> std::io::Result<Spool> {
        let digest = Sha256::digest(database_url.as_bytes());
        let dir = dir.join(digest[..8].iter().map(|b| format!("{b:02x}")).collect::<String>());
        std::fs::create_dir_all(&dir)?;
        let mut mine = None;
        for n in 0.. {
            let path = dir.join(format!("spool-{n}.jsonl"));
            let file = OpenOptions::new().create(true).read(true).append(true).open(&path)?;
            if file.try_lock().is_ok() {
                mine = Some((file, path));
                break;
            }
        }
        let Some((file, path)) = mine else { return Err(std::io::Error::other("no spool file could be claimed")) };
        let mut spool = Spool { batches: count_lines(&path)?, file, path };
        // Files that no live instance holds: adopt their batches.
        for entry in std::fs::read_dir(&dir)? {
            let other = entry?.path();
            if other == spool.path || other.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let Ok(f) = OpenOptions::new().read(true).append(true).open(&other) else { continue };
            if f.try_lock().is_err() {
                continue;
            }
            let lines: Vec<String> = BufReader::new(&f).lines().collect::<Result<_, _>>()?;
            for line in lines.iter().filter(|l| !l.trim().is_empty()) {
                writeln!(spool.file, "{line}")?;
                spool.batches += 1;
            }
            spool.file.sync_all()?;
            std::fs::remove_file(&other)?;
            tracing::info!(file = %other.display(), batches = lines.len(), "adopted a spool left by an instance that stopped");
        }
        Ok(spool)
    }

    pub fn len(&self) -> usize {
        self.batches
    }

    pub fn is_empty(&self) -> bool {
        self.batches == 0
    }

    /// Appends a batch; when this returns, it survives a crash.
    pub fn append(&mut self, records: &[RequestRecord]) -> std::io::Result<()> {
        let line = Value::Array(records.iter().map(to_json).collect()).to_string();
        writeln!(self.file, "{line}")?;
        self.file.sync_data()?;
        self.batches += 1;
        Ok(())
    }

    /// Every batch, oldest first.
    pub fn read(&self) -> std::io::Result<Vec<Vec<RequestRecord>>> {
        let mut out = Vec::new();
        for line in BufReader::new(File::open(&self.path)?).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let batch: Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
            let records = batch.as_array().map(|a| a.iter().filter_map(from_json).collect()).unwrap_or_default();
            out.push(records);
        }
        Ok(out)
    }

    /// Empties the file (every batch is in the store).
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.sync_all()?;
        self.batches = 0;
        Ok(())
    }
}

fn count_lines(path: &Path) -> std::io::Result<usize> {
    Ok(BufReader::new(File::open(path)?).lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()).count())
}

fn to_json(r: &RequestRecord) -> Value {
    json!({
        "id": r.id, "key_id": r.key_id.as_str(), "wallet_id": r.wallet_id.as_str(), "model": r.model,
        "provider": r.provider, "endpoint": r.endpoint, "status": r.status,
        "input": r.usage.input, "cached_input": r.usage.cached_input, "cache_write": r.usage.cache_write,
        "output": r.usage.output, "cost_nanos": r.cost.nanos(), "latency_ms": r.latency_ms,
        "created_at_ms": r.created_at.unix_millis(),
    })
}

fn from_json(v: &Value) -> Option<RequestRecord> {
    let s = |k: &str| v[k].as_str().map(str::to_string);
    let n = |k: &str| v[k].as_u64();
    Some(RequestRecord {
        id: s("id")?,
        key_id: SpendKeyId::new(s("key_id")?),
        wallet_id: WalletId::new(s("wallet_id")?),
        model: s("model")?,
        provider: s("provider")?,
        endpoint: s("endpoint")?,
        status: u16::try_from(n("status")?).ok()?,
        usage: TokenUsage {
            input: n("input")?,
            cached_input: n("cached_input")?,
            cache_write: n("cache_write")?,
            output: n("output")?,
        },
        cost: Usd::from_nanos(v["cost_nanos"].as_i64()?),
        latency_ms: n("latency_ms")?,
        created_at: Timestamp::from_unix_millis(v["created_at_ms"].as_i64()?),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(id: &str) -> RequestRecord {
        RequestRecord {
            id: id.into(),
            key_id: SpendKeyId::new("key_1"),
            wallet_id: WalletId::new("wal_1"),
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            endpoint: "/v1/chat/completions".into(),
            status: 200,
            usage: TokenUsage { input: 1, cached_input: 2, cache_write: 3, output: 4 },
            cost: Usd::from_nanos(123_456_789),
            latency_ms: 7,
            created_at: Timestamp::from_unix_millis(1_764_000_000_123),
        }
    }

    #[test]
    fn batches_survive_and_orphans_are_adopted() {
        let dir = std::env::temp_dir().join(format!("spendgate-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut a = Spool::open(&dir, "postgres://x/db").unwrap();
        a.append(&[record("r1"), record("r2")]).unwrap();
        // A second instance gets its own file.
        let mut b = Spool::open(&dir, "postgres://x/db").unwrap();
        assert_ne!(a.path, b.path);
        b.append(&[record("r3")]).unwrap();
        assert_eq!(a.read().unwrap(), vec![vec![record("r1"), record("r2")]]);
        // `a` stops (its lock goes with it): the next instance adopts its batches.
        drop(a);
        let c = Spool::open(&dir, "postgres://x/db").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.read().unwrap(), vec![vec![record("r1"), record("r2")]]);
        let mut b = b;
        b.clear().unwrap();
        assert!(b.is_empty() && b.read().unwrap().is_empty());
        // Another database has its own directory.
        assert!(Spool::open(&dir, "postgres://x/other").unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
