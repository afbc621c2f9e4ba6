//! Cluster mode's shared counters, in Redis: a cache of the ledger (PostgreSQL's request
//! records) plus what is in flight, that every instance admits against in one atomic
//! script per request.
//!
//! **Layout** (prefix `<namespace>:1`, the layout version): `k:<key id>` a hash per key
//! (`v` version, `tat` GCRA state, `res` reserved nano-dollars, `fl` requests in flight,
//! `ts`/`tr` lifetime spend/requests, `lu` last used, `s<day>`/`r<day>` per UTC day);
//! `epoch`, the id of the rebuild the counters come from; `recovering`, set for a moment
//! after a rebuild; `instances`, `lease:<id>` and `held:<id>` (what each instance holds
//! for its requests in flight); and the pub/sub channel `changes`. Scripts are called
//! by their SHA-1, so instances of different versions run their own side by side; a
//! change of layout takes a new layout version.
//!
//! **Settlement follows the ledger.** A finished request keeps its reservation until its
//! record is committed to the ledger; then one script per batch releases the
//! reservations and adds the usage. So the counters' usage is the ledger's, exactly.
//!
//! **Rebuild.** When the counters are gone (Redis restarted or flushed), the first
//! instance to notice rebuilds them from the ledger, in a transaction that excludes
//! writers of records, and gives them a new epoch (in Redis, then in PostgreSQL). Each
//! batch of records learns at commit the epoch it committed in: a batch committed before
//! a rebuild is in its figures, one committed after adds itself. An epoch in Redis that
//! the ledger does not know (a rebuilder died before committing) is discarded. After a
//! rebuild, admissions wait for [`GRACE`] while every instance (heartbeat every
//! [`HEARTBEAT`]) puts back what it holds for requests in flight.
//!
//! **Changes** made through any instance raise the key's version in Redis before the
//! wallet API answers, and every admission checks it, so no instance admits with an older
//! copy; pub/sub tells the others to reload at once.

use super::{AdmitError, Admitted, Hold};
use crate::gateway::keys::{KeyEntry, Keys};
use crate::random;
use crate::state::Clock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, Value};
use spendgate_core::meter::{
    Admission, CostBound, HISTORY_DAYS, Headroom, Meter, Refusal, ReservationPolicy, effective_burst,
};
use spendgate_core::secret::base62;
use spendgate_core::{Cycle, KeyUsage, SpendKey, SpendKeyId, Timestamp, Usd};
use spendgate_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::RwLock;

/// How often an instance renews its lease, checks the epoch and retries what it owes.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// An instance silent this long is dead: what it held is reclaimed.
pub const LEASE: Duration = Duration::from_secs(3);
/// After a rebuild, admissions wait this long for every instance to put back what it holds.
pub const GRACE: Duration = Duration::from_millis(1000);
/// How long a call to Redis may take before the gateway treats Redis as unreachable.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// Keys written per pipeline during a rebuild.
const REBUILD_CHUNK: usize = 500;
/// Settlements per script.
const SETTLE_CHUNK: usize = 256;

/// How to reach the shared counters.
#[derive(Clone, Debug)]
pub struct SharedConfig {
    pub url: String,
    /// Prefix of every Redis key (several clusters can share one Redis).
    pub namespace: String,
    /// When Redis cannot be reached: refuse with 503 (false, the default), or admit with
    /// this instance's own view of the limits (true).
    pub fail_open: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
    #[error("the ledger: {0}")]
    Store(#[from] StoreError),
    #[error("Redis answered {0:?}, which this version of spendgate does not understand")]
    Reply(String),
}

struct Scripts {
    admit: Script,
    settle: Script,
    readd: Script,
    heartbeat: Script,
    touch: Script,
}

struct Names {
    prefix: String,
    epoch: String,
    recovering: String,
    instances: String,
    lease: String,
    held: String,
    channel: String,
}

impl Names {
    fn new(namespace: &str, instance: &str) -> Names {
        let prefix = format!("{namespace}:1");
        Names {
            epoch: format!("{prefix}:epoch"),
            recovering: format!("{prefix}:recovering"),
            instances: format!("{prefix}:instances"),
            lease: format!("{prefix}:lease:{instance}"),
            held: format!("{prefix}:held:{instance}"),
            channel: format!("{prefix}:changes"),
            prefix,
        }
    }

    fn key(&self, id: &SpendKeyId) -> String {
        format!("{}:k:{id}", self.prefix)
    }

    /// Marks a chunk of settlements applied (for a day): a retry after a lost reply
    /// applies nothing twice.
    fn settled(&self, token: &str) -> String {
        format!("{}:settled:{token}", self.prefix)
    }
}

/// The epoch this instance works in.
struct Epoch {
    id: String,
    /// Recoveries so far: a hold from an earlier generation was put back in this epoch.
    generation: u64,
}

/// A settled request, for [`Shared::settle`].
pub struct Settled {
    pub entry: Option<Arc<KeyEntry>>,
    pub key_id: SpendKeyId,
    /// The reservation to release, and where it is held (none for a record replayed
    /// from the spool after a restart: its hold died with the old process).
    pub release: Option<(Admission, Hold)>,
    /// The usage to add (cost, when the request started): none when nothing reached a
    /// provider, or the ledger already had the record.
    pub charge: Option<(Usd, Timestamp)>,
}

/// Settlements and version raises that Redis could not take yet.
#[derive(Default)]
struct Owed {
    /// Chunks of settlements, their commit epoch and their token (see [`Shared::settle`]).
    settles: Vec<(Vec<Settled>, String, String)>,
    touches: Vec<(SpendKeyId, i64)>,
}

pub struct Shared {
    client: redis::Client,
    conn: ConnectionManager,
    names: Names,
    instance: String,
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    clock: Arc<dyn Clock>,
    fail_open: bool,
    epoch: RwLock<Epoch>,
    owed: Mutex<Owed>,
    scripts: Scripts,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_id(prefix: &str) -> String {
    let bytes = random::bytes::<12>().unwrap_or_else(|_| {
        // Ids only need to differ between instances and rebuilds.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut b = [0u8; 12];
        b.copy_from_slice(&t.to_le_bytes()[..12]);
        b
    });
    format!("{prefix}{}", base62(&bytes))
}

/// The first day of a cycle window as the scripts want it (-1: the lifetime total).
fn first_day(cycle: Cycle, now: Timestamp) -> i64 {
    let start = cycle.window(now).start;
    if start == Timestamp::EPOCH { -1 } else { start.unix_day() }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(n)) => *n,
        Some(other) => text(other).and_then(|t| t.parse().ok()).unwrap_or(0),
        None => 0,
    }
}

impl Shared {
    /// Connects, joins the cluster (rebuilding the counters if Redis has none) and starts
    /// the heartbeat and the change listener.
    pub async fn start(
        config: &SharedConfig,
        store: Arc<dyn Store>,
        keys: Arc<Keys>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Shared>, SharedError> {
        let client = redis::Client::open(config.url.as_str())?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client.clone(), manager).await?;
        let instance = random_id("gw_");
        let shared = Arc::new(Shared {
            names: Names::new(&config.namespace, &instance),
            client,
            conn,
            instance,
            store,
            keys,
            clock,
            fail_open: config.fail_open,
            epoch: RwLock::new(Epoch { id: String::new(), generation: 0 }),
            owed: Mutex::new(Owed::default()),
            scripts: Scripts {
                admit: Script::new(include_str!("scripts/admit.lua")),
                settle: Script::new(include_str!("scripts/settle.lua")),
                readd: Script::new(include_str!("scripts/readd.lua")),
                heartbeat: Script::new(include_str!("scripts/heartbeat.lua")),
                touch: Script::new(include_str!("scripts/touch.lua")),
            },
        });
        shared.beat().await?;
        shared.recover().await?;
        tokio::spawn(heartbeat_loop(Arc::downgrade(&shared)));
        tokio::spawn(listen_loop(Arc::downgrade(&shared)));
        tracing::info!(instance = %shared.instance, epoch = %shared.epoch.read().await.id, "joined the cluster's shared counters");
        Ok(shared)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub async fn admit(
        &self,
        entry: &KeyEntry,
        key: &Arc<SpendKey>,
        bound: &CostBound,
        policy: ReservationPolicy,
        now: Timestamp,
    ) -> Result<Admitted, AdmitError> {
        let today = now.unix_day();
        let rate = key.rate_limit.map(|l| (l.rpm, effective_burst(&l)));
        let worst = bound.worst_case();
        for _ in 0..8 {
            let epoch = self.epoch.read().await;
            let mut call = self.scripts.admit.prepare_invoke();
            call.key(&self.names.epoch).key(&self.names.recovering).key(self.names.key(&key.id)).key(&self.names.held);
            call.arg(&epoch.id)
                .arg(key.version)
                .arg(now.unix_millis().saturating_mul(1000))
                .arg(rate.map_or(0, |r| r.0))
                .arg(rate.map_or(1, |r| r.1))
                .arg(key.request_limit.map_or(0, |l| l.count))
                .arg(key.request_limit.map_or(-1, |l| first_day(l.cycle, now)))
                .arg(key.spend_limit.map_or(-1, |l| l.amount.nanos()))
                .arg(key.spend_limit.map_or(-1, |l| first_day(l.cycle, now)))
                .arg(match policy {
                    ReservationPolicy::Strict => "strict",
                    ReservationPolicy::Lenient => "lenient",
                })
                .arg(worst.nanos())
                .arg(bound.minimum().nanos())
                .arg(key.id.as_str())
                .arg(today);
            let reply: Vec<Value> = match call.invoke_async(&mut self.conn()).await {
                Ok(r) => r,
                Err(e) => {
                    let generation = epoch.generation;
                    drop(epoch);
                    return self.unreachable(entry, key, bound, policy, now, generation, &e);
                }
            };
            let status = reply.first().and_then(text).unwrap_or_default();
            match status.as_str() {
                "ok" => {
                    let reserved = Usd::from_nanos(int(reply.get(1)));
                    let lowered =
                        if int(reply.get(2)) == 1 { bound.reservation(reserved).and_then(|r| r.1) } else { None };
                    let admission = Admission { reserved, lowered_max_tokens: lowered, at: now };
                    entry.lock().meter.hold(&admission);
                    let left = |v: i64| (v >= 0).then_some(v);
                    let headroom = Headroom {
                        requests_remaining: left(int(reply.get(3))).map(|n| n as u64),
                        spend_remaining: left(int(reply.get(4))).map(Usd::from_nanos),
                    };
                    let hold = Hold::Shared { in_redis: true, generation: epoch.generation };
                    return Ok(Admitted { admission, headroom, rules: key.clone(), hold });
                }
                "rate" => {
                    let (rpm, burst) = rate.unwrap_or((1, 1));
                    let retry_after_ms = int(reply.get(1)).max(1) as u64;
                    return Err(AdmitError::Refused(Refusal::RateLimited { retry_after_ms, rpm, burst }));
                }
                "requests" => {
                    let Some(l) = key.request_limit else { return Err(AdmitError::Stale) };
                    let resets_at = l.cycle.window(now).end;
                    return Err(AdmitError::Refused(Refusal::RequestLimit {
                        count: l.count,
                        cycle: l.cycle,
                        resets_at,
                    }));
                }
                "spend" => {
                    let Some(l) = key.spend_limit else { return Err(AdmitError::Stale) };
                    let resets_at = l.cycle.window(now).end;
                    return Err(AdmitError::Refused(Refusal::SpendLimit {
                        amount: l.amount,
                        cycle: l.cycle,
                        resets_at,
                    }));
                }
                "stale" => return Err(AdmitError::Stale),
                "epoch" => {
                    let generation = epoch.generation;
                    drop(epoch);
                    if let Err(e) = self.recover().await {
                        return self.unreachable(entry, key, bound, policy, now, generation, &e);
                    }
                }
                "wait" => {
                    drop(epoch);
                    let ms = int(reply.get(1)).clamp(1, GRACE.as_millis() as i64) as u64;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                other => {
                    let generation = epoch.generation;
                    drop(epoch);
                    let e = SharedError::Reply(other.to_string());
                    return self.unreachable(entry, key, bound, policy, now, generation, &e);
                }
            }
        }
        Err(AdmitError::Unavailable("the gateway's shared counters are being rebuilt; retry in a moment".into()))
    }

    /// Redis could not be reached: 503 (failing closed), or admission on this instance's
    /// own counters (failing open).
    #[allow(clippy::too_many_arguments)]
    fn unreachable(
        &self,
        entry: &KeyEntry,
        key: &Arc<SpendKey>,
        bound: &CostBound,
        policy: ReservationPolicy,
        now: Timestamp,
        generation: u64,
        error: &dyn std::fmt::Display,
    ) -> Result<Admitted, AdmitError> {
        if !self.fail_open {
            return Err(AdmitError::Unavailable(format!(
                "the gateway's shared counters (Redis) cannot be reached: {error}"
            )));
        }
        tracing::warn!(%error, "shared counters unreachable: admitting with this instance's own counters");
        super::admit_locally(entry, key.clone(), bound, policy, now, Hold::Shared { in_redis: false, generation })
    }

    /// Succeeds when Redis answers.
    pub async fn ping(&self) -> Result<(), RedisError> {
        redis::cmd("PING").query_async::<()>(&mut self.conn()).await
    }

    /// Whether `key` is the version Redis knows (true when Redis cannot say).
    pub async fn is_current(&self, key: &SpendKey) -> bool {
        let v: Result<Option<i64>, _> =
            redis::cmd("HGET").arg(self.names.key(&key.id)).arg("v").query_async(&mut self.conn()).await;
        v.map_or(true, |v| v.unwrap_or(0) <= key.version)
    }

    /// Raises the key's version in Redis and tells the other instances; if Redis cannot
    /// be reached, keeps trying from the heartbeat.
    pub async fn changed(&self, key: &SpendKey) {
        if let Err(e) = self.touch(&key.id, key.version).await {
            tracing::warn!(key = %key.id, error = %e, "could not announce a key change; retrying");
            lock(&self.owed).touches.push((key.id.clone(), key.version));
        }
    }

    async fn touch(&self, id: &SpendKeyId, version: i64) -> Result<(), RedisError> {
        let mut call = self.scripts.touch.prepare_invoke();
        call.key(self.names.key(id)).arg(version).arg(&self.names.channel).arg(id.as_str());
        call.invoke_async::<i64>(&mut self.conn()).await.map(|_| ())
    }

    /// The wallet API's usage figures, from the shared counters (from the ledger when
    /// Redis cannot be reached).
    pub async fn usage(&self, keys: &[&SpendKey], now: Timestamp) -> Vec<KeyUsage> {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("HGETALL").arg(self.names.key(&k.id));
        }
        let hashes: Result<Vec<HashMap<String, String>>, _> = pipe.query_async(&mut self.conn()).await;
        match hashes {
            Ok(hashes) => keys.iter().zip(hashes).map(|(k, h)| meter_of(&h).usage(k, now)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "shared counters unreachable: usage figures from the ledger");
                let mut out = Vec::with_capacity(keys.len());
                for k in keys {
                    let (spend, requests) = (k.spend_cycle().window(now).start, k.request_cycle().window(now).start);
                    out.push(self.store.key_usage(&k.id, spend, requests).await.unwrap_or_default());
                }
                out
            }
        }
    }

    /// Settles a batch whose records (if any) the ledger committed in `committed_epoch`:
    /// releases reservations and adds usage, exactly once. What Redis cannot take now is
    /// owed and retried by the heartbeat.
    pub async fn settle(&self, mut items: Vec<Settled>, committed_epoch: &str) {
        // In scripts of a few hundred items, so that none holds Redis up for long.
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(SETTLE_CHUNK));
            let chunk = std::mem::replace(&mut items, rest);
            // Each chunk is applied once: when Redis ran the script but its answer was
            // lost (the connection cut), the retry finds the chunk's token and skips it.
            let token = spendgate_core::secret::base62(&crate::random::bytes::<16>().unwrap_or_else(|_| {
                let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
                t.to_le_bytes()
            }));
            self.settle_chunk(chunk, committed_epoch.to_string(), token).await;
        }
    }

    async fn settle_chunk(&self, chunk: Vec<Settled>, committed_epoch: String, token: String) {
        if let Err(e) = self.try_settle(&chunk, &committed_epoch, &token).await {
            tracing::warn!(error = %e, items = chunk.len(), "shared counters unreachable: settlement owed");
            lock(&self.owed).settles.push((chunk, committed_epoch, token));
        }
    }

    async fn try_settle(&self, items: &[Settled], committed_epoch: &str, token: &str) -> Result<(), SharedError> {
        let charges = items.iter().any(|i| i.charge.is_some());
        let mut recovered = false;
        for _ in 0..8 {
            let epoch = self.epoch.read().await;
            if charges && committed_epoch != epoch.id && !recovered {
                // Committed in an epoch this instance has not seen: learn it first.
                drop(epoch);
                self.recover().await?;
                recovered = true;
                continue;
            }
            // A batch committed before the current epoch's rebuild is in its figures.
            let charge = committed_epoch == epoch.id;
            let mut call = self.scripts.settle.prepare_invoke();
            call.key(&self.names.epoch).key(&self.names.held).key(self.names.settled(token));
            call.arg(&epoch.id).arg(HISTORY_DAYS);
            for item in items {
                let (reserved, in_flight) = match item.release {
                    Some((ref a, Hold::Shared { in_redis, generation }))
                        if in_redis || generation < epoch.generation =>
                    {
                        (a.reserved.nanos(), 1)
                    }
                    _ => (0, 0),
                };
                let usage = item.charge.filter(|_| charge);
                call.key(self.names.key(&item.key_id));
                call.arg(item.key_id.as_str())
                    .arg(reserved)
                    .arg(in_flight)
                    .arg(usage.map_or(0, |(_, at)| at.unix_day()))
                    .arg(usage.map_or(0, |(cost, _)| cost.nanos()))
                    .arg(i64::from(usage.is_some()))
                    .arg(usage.map_or(0, |(_, at)| at.unix_millis()));
            }
            if call.invoke_async::<i64>(&mut self.conn()).await? == 0 {
                // The epoch changed under us.
                drop(epoch);
                self.recover().await?;
                continue;
            }
            // This instance no longer holds these requests.
            for item in items {
                let Some(entry) = &item.entry else { continue };
                let mut slot = entry.lock();
                if let Some((a, _)) = &item.release {
                    slot.meter.release(a);
                }
                if let Some((cost, at)) = item.charge {
                    slot.meter.count(at, cost);
                }
            }
            return Ok(());
        }
        Err(SharedError::Reply("the shared counters' epoch keeps changing".into()))
    }

    /// Brings this instance into the current epoch: rebuilds the counters when Redis has
    /// none (or one the ledger never committed), and puts back what this instance holds.
    async fn recover(&self) -> Result<(), SharedError> {
        let mut epoch = self.epoch.write().await;
        for _ in 0..10 {
            let current: Option<String> =
                redis::cmd("GET").arg(&self.names.epoch).query_async(&mut self.conn()).await?;
            match current {
                Some(e) if e == epoch.id => return Ok(()),
                Some(e) => {
                    // Waits for a rebuild in progress to commit.
                    if self.store.counter_epoch().await? == e {
                        self.put_back(&e).await?;
                        tracing::info!(epoch = %e, "now counting in a new epoch of the shared counters");
                        epoch.id = e;
                        epoch.generation += 1;
                        return Ok(());
                    }
                    tracing::warn!(epoch = %e, "the shared counters' epoch is not the ledger's: rebuilding");
                    let unset = Script::new(
                        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1",
                    );
                    unset.key(&self.names.epoch).arg(&e).invoke_async::<i64>(&mut self.conn()).await?;
                }
                None => self.rebuild().await?,
            }
        }
        Err(SharedError::Reply("the shared counters' epoch keeps changing".into()))
    }

    /// Rebuilds every key's counters from the ledger, unless another instance did.
    async fn rebuild(&self) -> Result<(), SharedError> {
        let mut rebuild = self.store.begin_rebuild().await?;
        let exists: bool = redis::cmd("EXISTS").arg(&self.names.epoch).query_async(&mut self.conn()).await?;
        if exists {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let now = self.clock.now();
        // The very first counters: no instance can hold anything yet, no need to wait.
        let first = rebuild.epoch().await?.is_empty();
        let versions = rebuild.key_versions().await?;
        let mut days: HashMap<SpendKeyId, Vec<(i64, Usd, u64)>> = HashMap::new();
        for d in rebuild.usage_days(now.unix_day() - HISTORY_DAYS + 1).await? {
            days.entry(d.key_id).or_default().push((d.day, d.spend, d.requests));
        }
        let totals: HashMap<SpendKeyId, _> =
            rebuild.usage_totals().await?.into_iter().map(|t| (t.key_id.clone(), t)).collect();
        // What held (dead or alive) instances held is put back by the live ones.
        let members: Vec<String> =
            redis::cmd("SMEMBERS").arg(&self.names.instances).query_async(&mut self.conn()).await?;
        if !members.is_empty() {
            let mut del = redis::cmd("DEL");
            for m in &members {
                del.arg(format!("{}:held:{m}", self.names.prefix));
            }
            del.query_async::<()>(&mut self.conn()).await?;
        }
        for chunk in versions.chunks(REBUILD_CHUNK) {
            let mut pipe = redis::pipe();
            for (id, version) in chunk {
                let k = self.names.key(id);
                pipe.cmd("DEL").arg(&k).ignore();
                let mut hset = redis::cmd("HSET");
                hset.arg(&k).arg("v").arg(*version);
                if let Some(t) = totals.get(id) {
                    hset.arg("ts").arg(t.spend.nanos()).arg("tr").arg(t.requests);
                    if let Some(lu) = t.last_used_at {
                        hset.arg("lu").arg(lu.unix_millis());
                    }
                }
                if let Some(ds) = days.get(id) {
                    if let Some(d0) = ds.iter().map(|d| d.0).min() {
                        hset.arg("d0").arg(d0);
                    }
                    for (day, spend, requests) in ds {
                        hset.arg(format!("s{day}")).arg(spend.nanos()).arg(format!("r{day}")).arg(*requests);
                    }
                }
                pipe.add_command(hset).ignore();
            }
            pipe.query_async::<()>(&mut self.conn()).await?;
        }
        let id = random_id("ep_");
        // The epoch and the pause for putting back holds, at once.
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("SET").arg(&self.names.epoch).arg(&id).ignore();
        if !first {
            pipe.cmd("SET")
                .arg(&self.names.recovering)
                .arg(&self.instance)
                .arg("PX")
                .arg(GRACE.as_millis() as u64)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        rebuild.commit(&id).await?;
        tracing::info!(epoch = %id, keys = versions.len(), ms = started.elapsed().as_millis() as u64, "rebuilt the shared counters from the ledger");
        Ok(())
    }

    /// Puts back, in `epoch`, what this instance holds for its requests in flight.
    async fn put_back(&self, epoch: &str) -> Result<(), SharedError> {
        let held = self.keys.held();
        for chunk in held.chunks(REBUILD_CHUNK) {
            let mut call = self.scripts.readd.prepare_invoke();
            call.key(&self.names.epoch).key(&self.names.held).arg(epoch);
            for (id, reserved, in_flight) in chunk {
                call.key(self.names.key(id)).arg(id.as_str()).arg(reserved.nanos()).arg(*in_flight);
            }
            if call.invoke_async::<i64>(&mut self.conn()).await? == 0 {
                return Err(SharedError::Reply("the epoch changed while putting back holds".into()));
            }
        }
        if !held.is_empty() {
            tracing::info!(keys = held.len(), "put back this instance's holds after a rebuild");
        }
        Ok(())
    }

    /// Renews the lease; returns the epoch Redis has.
    async fn beat(&self) -> Result<String, SharedError> {
        let mut call = self.scripts.heartbeat.prepare_invoke();
        call.key(&self.names.epoch)
            .key(&self.names.instances)
            .key(&self.names.lease)
            .arg(&self.instance)
            .arg(LEASE.as_millis() as u64)
            .arg(&self.names.prefix);
        let reply: Vec<Value> = call.invoke_async(&mut self.conn()).await?;
        let reclaimed = int(reply.get(1));
        if reclaimed > 0 {
            tracing::info!(holds = reclaimed, "reclaimed what dead instances held");
        }
        Ok(reply.first().and_then(text).unwrap_or_default())
    }

    async fn tick(&self) -> Result<(), SharedError> {
        let current = self.beat().await?;
        if current != self.epoch.read().await.id {
            self.recover().await?;
        }
        let (settles, touches) = {
            let mut owed = lock(&self.owed);
            (std::mem::take(&mut owed.settles), std::mem::take(&mut owed.touches))
        };
        for (id, version) in touches {
            if self.touch(&id, version).await.is_err() {
                lock(&self.owed).touches.push((id, version));
            }
        }
        for (items, epoch, token) in settles {
            self.settle_chunk(items, epoch, token).await;
        }
        Ok(())
    }
}

/// A meter from a key's counters hash (the wallet API's figures come from it).
fn meter_of(h: &HashMap<String, String>) -> Meter {
    let num = |k: &str| h.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let days = h
        .iter()
        .filter_map(|(f, v)| {
            let day: i64 = f.strip_prefix('s')?.parse().ok()?;
            let spend = Usd::from_nanos(v.parse().ok()?);
            Some(spendgate_core::meter::DayUsage { day, spend, requests: num(&format!("r{day}")).max(0) as u64 })
        })
        .collect();
    let last = h.get("lu").and_then(|v| v.parse().ok()).map(Timestamp::from_unix_millis);
    Meter::from_history(days, Usd::from_nanos(num("ts")), num("tr").max(0) as u64, last)
}

async fn heartbeat_loop(shared: Weak<Shared>) {
    let mut failing = false;
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let Some(shared) = shared.upgrade() else { return };
        match shared.tick().await {
            Ok(()) if failing => {
                tracing::info!("shared counters reachable again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "shared counters unreachable");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Reloads keys that other instances change, as they announce it. A missed message is
/// harmless: admissions check the version.
async fn listen_loop(shared: Weak<Shared>) {
    use futures_util::StreamExt;
    loop {
        let Some(s) = shared.upgrade() else { return };
        let (client, channel) = (s.client.clone(), s.names.channel.clone());
        drop(s);
        let mut pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(_) => {
                tokio::time::sleep(HEARTBEAT * 4).await;
                continue;
            }
        };
        if pubsub.subscribe(&channel).await.is_err() {
            tokio::time::sleep(HEARTBEAT * 4).await;
            continue;
        }
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Some(s) = shared.upgrade() else { return };
            let id = SpendKeyId::new(String::from_utf8_lossy(msg.get_payload_bytes()).into_owned());
            if let Err(e) = s.keys.reload(&*s.store, &id).await {
                tracing::warn!(key = %id, error = %e, "could not reload a changed key (admission will)");
            }
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}
