//! The gateway's spend keys in memory: found by the hash of their secret, each with its
//! rules and its [`Meter`] under one lock, so that admission sees a consistent key.
//! Loaded from the store at start (with recent usage, so a restart neither forgets
//! spend nor double-counts it) and updated by the wallet API right after each write,
//! so a change is in force for the very next request.

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

#[derive(Default)]
pub struct Keys {
    by_hash: RwLock<HashMap<KeyHash, Arc<KeyEntry>>>,
    by_id: RwLock<HashMap<SpendKeyId, Arc<KeyEntry>>>,
    /// Hashes that the store did not know either (cluster mode looks unknown secrets up
    /// in the store). Safe to remember for good: a key's secret is fresh randomness, so
    /// a hash presented before a key existed can never become that key's.
    misses: Mutex<std::collections::HashSet<KeyHash>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl Keys {
    /// Every key of the store, with usage of the last [`HISTORY_DAYS`] days and totals.
    pub async fn load(store: &dyn Store, now: Timestamp) -> Result<Keys, StoreError> {
        let keys = store.all_spend_keys().await?;
        let mut days: HashMap<SpendKeyId, Vec<DayUsage>> = HashMap::new();
        for d in store.usage_days(now.unix_day() - HISTORY_DAYS + 1).await? {
            days.entry(d.key_id).or_default().push(DayUsage { day: d.day, spend: d.spend, requests: d.requests });
        }
        let mut totals: HashMap<SpendKeyId, _> =
            store.usage_totals().await?.into_iter().map(|t| (t.key_id.clone(), t)).collect();
        let map = Keys::default();
        {
            let (mut by_hash, mut by_id) = (write(&map.by_hash), write(&map.by_id));
            for key in keys {
                let meter = match totals.remove(&key.id) {
                    Some(t) => Meter::from_history(
                        days.remove(&key.id).unwrap_or_default(),
                        t.spend,
                        t.requests,
                        t.last_used_at,
                    ),
                    None => Meter::default(),
                };
                let entry = KeyEntry::new(key.clone(), meter);
                by_hash.insert(key.key_hash, entry.clone());
                by_id.insert(key.id, entry);
            }
        }
        Ok(map)
    }

    pub fn len(&self) -> usize {
        read(&self.by_id).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the store was already asked for `hash` and did not have it.
    pub fn known_miss(&self, hash: &KeyHash) -> bool {
        self.misses.lock().unwrap_or_else(|p| p.into_inner()).contains(hash)
    }

    pub fn remember_miss(&self, hash: KeyHash) {
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

    /// Puts a key as just written to the store. An older version than the one held is
    /// ignored (two wallet-API writes may finish in either order).
    pub fn upsert(&self, key: SpendKey) {
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
                let entry = KeyEntry::new(key.clone(), Meter::default());
                by_hash.insert(key.key_hash, entry.clone());
                by_id.insert(key.id, entry);
            }
        }
    }

    /// Reloads a key from the store (another instance changed it, or created it).
    pub async fn reload(&self, store: &dyn Store, id: &SpendKeyId) -> Result<(), StoreError> {
        if let Some(key) = store.spend_key_by_id(id).await? {
            self.upsert(key);
        }
        Ok(())
    }

    /// The wallet API's usage figures for a key (settled requests, current cycles).
    pub fn usage(&self, key: &SpendKey, now: Timestamp) -> KeyUsage {
        match read(&self.by_id).get(&key.id) {
            Some(entry) => entry.lock().meter.usage(key, now),
            None => KeyUsage::default(),
        }
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
