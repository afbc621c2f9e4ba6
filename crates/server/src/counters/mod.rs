//! A key's counters (usage per day, reservations and requests in flight, rate-limit
//! state) and admission against its limits. One instance keeps them in memory, in each
//! key's [`Meter`](spendgate_core::meter::Meter) ([`Counters::Local`]); the instances of
//! a cluster share them in Redis ([`Counters::Shared`], see [`shared`]), where each
//! admission is one atomic script and settlements follow the ledger in batches.

pub mod shared;

use crate::gateway::keys::KeyEntry;
use shared::Shared;
use spendgate_core::meter::{Admission, CostBound, Headroom, Refusal, ReservationPolicy};
use spendgate_core::{KeyUsage, SpendKey, Timestamp};
use std::sync::Arc;

#[derive(Clone)]
pub enum Counters {
    /// In this process's memory (one instance, the default).
    Local,
    /// In Redis, shared by every instance (cluster mode).
    Shared(Arc<Shared>),
}

/// A request let through.
#[derive(Debug)]
pub struct Admitted {
    pub admission: Admission,
    /// What is left under the key's caps, counting this request.
    pub headroom: Headroom,
    /// The key's rules the admission applied.
    pub rules: Arc<SpendKey>,
    pub hold: Hold,
}

/// Where a request's reservation is held, for its settlement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// In the key's meter in memory.
    Local,
    /// In the shared counters (`in_redis`), or only in memory when Redis could not be
    /// reached and the gateway fails open; `generation` counts this instance's
    /// recoveries from a rebuild of the shared counters (which put back everything held
    /// in memory).
    Shared { in_redis: bool, generation: u64 },
}

#[derive(Debug)]
pub enum AdmitError {
    /// A limit refuses the request (rate, requests, spend).
    Refused(Refusal),
    /// Another instance changed the key since this one loaded it: reload and retry.
    Stale,
    /// The shared counters cannot be reached (and the gateway fails closed).
    Unavailable(String),
}

impl Counters {
    /// Checks 6 to 8 (rate, request and spend limits) and, when they pass, reserves the
    /// request's worst-case cost. `key` is the copy the earlier checks used.
    pub async fn admit(
        &self,
        entry: &KeyEntry,
        key: &Arc<SpendKey>,
        bound: &CostBound,
        policy: ReservationPolicy,
        now: Timestamp,
    ) -> Result<Admitted, AdmitError> {
        match self {
            Counters::Local => {
                let rules = entry.lock().key.clone();
                admit_locally(entry, rules, bound, policy, now, Hold::Local)
            }
            Counters::Shared(shared) => shared.admit(entry, key, bound, policy, now).await,
        }
    }

    /// Whether `key` is the newest version (for endpoints that do not admit, such as
    /// token counting). Always true on one instance, where changes are made in memory.
    pub async fn is_current(&self, key: &SpendKey) -> bool {
        match self {
            Counters::Local => true,
            Counters::Shared(shared) => shared.is_current(key).await,
        }
    }

    /// A key was just written to the store: make every instance use this version.
    pub async fn changed(&self, key: &SpendKey) {
        if let Counters::Shared(shared) = self {
            shared.changed(key).await;
        }
    }
}

/// Admission by the key's meter in memory (one instance; or, failing open, an instance
/// of a cluster that cannot reach Redis).
fn admit_locally(
    entry: &KeyEntry,
    rules: Arc<SpendKey>,
    bound: &CostBound,
    policy: ReservationPolicy,
    now: Timestamp,
    hold: Hold,
) -> Result<Admitted, AdmitError> {
    let mut slot = entry.lock();
    let admission = slot.meter.admit(&rules, bound, policy, now).map_err(AdmitError::Refused)?;
    let headroom = slot.meter.headroom(&rules, now);
    Ok(Admitted { admission, headroom, rules, hold })
}

/// Usage figures of keys for the wallet API (settled requests; current cycles, totals).
pub async fn usage(state: &crate::state::AppState, keys: &[&SpendKey]) -> Vec<KeyUsage> {
    let now = state.now();
    match &state.counters {
        Counters::Local => {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push(state.keys.usage(&*state.store, k, now).await.unwrap_or_else(|e| {
                    tracing::warn!(key = %k.id, error = %e, "usage figures unavailable");
                    KeyUsage::default()
                }));
            }
            out
        }
        Counters::Shared(shared) => shared.usage(keys, now).await,
    }
}
