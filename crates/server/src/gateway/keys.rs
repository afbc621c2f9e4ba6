//! The gateway's spend keys in memory: found by the hash of their secret, each with its
//! rules and its [`Meter`] under one lock, so that admission sees a consistent key.
//!
//! A key is read from the store the first time it is used (with its recent usage, so a
//! restart neither forgets spend nor double-counts it) and kept: start-up reads no key,
//! whatever their number, and memory holds the keys in use. The wallet API puts each
//! key it writes, so a change is in force for the very next request. A secret the store
//! does not know is remembered, so a wrong key costs one store read.

use spendgate_core::meter::{DayUsage, HISTORY_DAYS, Meter};
use spendgate_core::{KeyHash, KeyUsage, SpendKey, SpendKeyId, Timestamp};
use spendgate_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// A key's rules and meter.
pub struct Slot {
    pub key: Arc<SpendKey>,
    pub meter: Meter,
}

pub struct KeyEntry {
    slot: Mutex<Slot>,
    /// Held by a wallet-API change of this key from read to write, so that changes in
    /// this process queue up (fairly) instead of racing; the store's version check
    /// still guards against writers elsewhere.
    pub edit: tokio::sync::Mutex<()>,
}

impl KeyEntry {
    fn new(key: SpendKey, meter: Meter) -> Arc<KeyEntry> {
        Arc::new(KeyEntry { slot: Mutex::new(Slot { key: Arc::new(key), meter }), edit: tokio::sync::Mutex::new(()) })
    }

    /// Locks the slot. Held only for in-memory work, never across an `await`. A panic
    /// while holding it leaves plain data that is still consistent, so a poisoned lock
    /// is taken over.
    pub fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Unknown secrets remembered at most (the set is emptied when full).
const MISSES_KEPT: usize = 100_000;

/// A key's meter as its stored usage leaves it.
async fn meter(store: &dyn Store, id: &SpendKeyId, now: Timestamp) -> Result<Meter, StoreError> {
    let history = store.key_history(id, now.unix_day() - HISTORY_DAYS + 1).await?;
    let days = history.days.iter().map(|d| DayUsage { day: d.day, spend: d.spend, requests: d.requests }).collect();
    Ok(match history.total {
        Some(t) => Meter::from_history(days, t.spend, t.requests, t.last_used_at),
        None => Meter::default(),
    })
}

#[derive(Default)]
pub struct Keys {
    by_hash: RwLock<HashMap<KeyHash, Arc<KeyEntry>>>,
    by_id: RwLock<HashMap<SpendKeyId, Arc<KeyEntry>>>,
    /// Hashes that the store did not know either. Safe to remember for good: a key's
    /// secret is fresh randomness, so a hash presented before a key existed can never
    /// become that key's.
    misses: Mutex<std::collections::HashSet<KeyHash>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl Keys {
    /// The key whose secret hashes to `hash`: in memory, else read from the store with
    /// its usage of the last [`HISTORY_DAYS`] days and totals, else `None`.
    pub async fn lookup(
        &self,
        store: &dyn Store,
        hash: &KeyHash,
        now: Timestamp,
    ) -> Result<Option<Arc<KeyEntry>>, StoreError> {
        if let Some(entry) = self.find(hash) {
            return Ok(Some(entry));
        }
        if self.known_miss(hash) {
            return Ok(None);
        }
        let Some(key) = store.spend_key_by_hash(hash).await? else {
            self.remember_miss(*hash);
            return Ok(None);
        };
        let meter = meter(store, &key.id, now).await?;
        self.insert(key, meter);
        Ok(self.find(hash))
    }

    /// Puts a key the wallet API just wrote: its rules replace an older copy in memory;
    /// a key not in memory is read in with its usage, so that no load already under way
    /// can put an older copy in its place afterwards.
    pub async fn put(&self, store: &dyn Store, key: SpendKey, now: Timestamp) -> Result<(), StoreError> {
        if self.by_id(&key.id).is_some() {
            self.insert(key, Meter::default());
            return Ok(());
        }
        let meter = meter(store, &key.id, now).await?;
        self.insert(key, meter);
        Ok(())
    }

    /// Puts a key just created (it has no usage yet).
    pub fn put_new(&self, key: SpendKey) {
        self.insert(key, Meter::default());
    }

    pub fn len(&self) -> usize {
        read(&self.by_id).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the store was already asked for `hash` and did not have it.
    fn known_miss(&self, hash: &KeyHash) -> bool {
        self.misses.lock().unwrap_or_else(|p| p.into_inner()).contains(hash)
    }

    fn remember_miss(&self, hash: KeyHash) {
        let mut misses = self.misses.lock().unwrap_or_else(|p| p.into_inner());
        if misses.len() >= MISSES_KEPT {
            misses.clear();
        }
        misses.insert(hash);
    }

    /// The key whose secret hashes to `hash`.
    pub fn find(&self, hash: &KeyHash) -> Option<Arc<KeyEntry>> {
        read(&self.by_hash).get(hash).cloned()
    }

    /// A key with its meter, unless it is in memory already: then its rules replace the
    /// copy held if they are newer (writes and loads may finish in either order) and the
    /// meter held is kept.
    fn insert(&self, key: SpendKey, meter: Meter) {
        let mut by_id = write(&self.by_id);
        let mut by_hash = write(&self.by_hash);
        match by_id.get(&key.id) {
            Some(entry) => {
                let mut slot = entry.lock();
                if slot.key.version > key.version {
                    return;
                }
                if slot.key.key_hash != key.key_hash {
                    by_hash.remove(&slot.key.key_hash);
                    by_hash.insert(key.key_hash, entry.clone());
                }
                slot.key = Arc::new(key);
            }
            None => {
                let entry = KeyEntry::new(key.clone(), meter);
                by_hash.insert(key.key_hash, entry.clone());
                by_id.insert(key.id, entry);
            }
        }
    }

    /// Reloads a key in memory from the store (another instance changed it); a key not
    /// in memory is read when it is next used.
    pub async fn reload(&self, store: &dyn Store, id: &SpendKeyId) -> Result<(), StoreError> {
        if self.by_id(id).is_none() {
            return Ok(());
        }
        if let Some(key) = store.spend_key_by_id(id).await? {
            self.insert(key, Meter::default());
        }
        Ok(())
    }

    /// The wallet API's usage figures for a key (settled requests, current cycles):
    /// from its meter, or from the store for a key not in memory (this process has
    /// served no request with it, so the store has all of its usage).
    pub async fn usage(&self, store: &dyn Store, key: &SpendKey, now: Timestamp) -> Result<KeyUsage, StoreError> {
        if let Some(entry) = self.by_id(&key.id) {
            return Ok(entry.lock().meter.usage(key, now));
        }
        let (spend, requests) = (key.spend_cycle().window(now).start, key.request_cycle().window(now).start);
        store.key_usage(&key.id, spend, requests).await
    }

    /// What this instance holds for requests in flight, per key: (id, reserved, count).
    pub fn held(&self) -> Vec<(SpendKeyId, spendgate_core::Usd, u64)> {
        read(&self.by_id)
            .iter()
            .filter_map(|(id, entry)| {
                let slot = entry.lock();
                let (reserved, in_flight) = (slot.meter.reserved(), slot.meter.in_flight());
                (in_flight > 0).then(|| (id.clone(), reserved, in_flight))
            })
            .collect()
    }

    /// The entry of a key by id.
    pub fn by_id(&self, id: &SpendKeyId) -> Option<Arc<KeyEntry>> {
        read(&self.by_id).get(id).cloned()
    }
}
