//! Brute-force protection for wallet-key sign-in: an address that fails to
//! authenticate [`FAILURES_ALLOWED`] times within [`WINDOW`] is refused (429, with
//! `retry-after`) until the window ends, even with a right key, so that guessing costs
//! a window per batch of attempts. Successes do not count. Per process: in cluster
//! mode each instance counts its own.

use crate::error::{ApiError, ErrorKind};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts an address may make per window.
pub const FAILURES_ALLOWED: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; past it, windows that ended are dropped (and if none
/// has, the oldest half), so a flood of addresses cannot grow memory without bound.
const TRACKED: usize = 100_000;

/// The client's address, put on each request by the server.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

#[derive(Default)]
pub struct AuthGuard {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses an address that used up its failures in the current window.
    pub fn check(&self, addr: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(addr) = addr else { return Ok(()) };
        let now = Instant::now();
        match self.lock().get(&addr) {
            Some((start, n)) if *n >= FAILURES_ALLOWED && now < *start + WINDOW => {
                let wait = (*start + WINDOW).saturating_duration_since(now);
                tracing::warn!(client = %addr, "wallet sign-in refused: too many failed attempts");
                Err(ApiError::new(
                    ErrorKind::RateLimited,
                    format!("too many failed sign-in attempts from your address; retry in {} s", wait.as_secs().max(1)),
                )
                .with_header("retry-after", wait.as_secs().max(1)))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&self, addr: Option<IpAddr>) {
        let Some(addr) = addr else { return };
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() >= TRACKED {
            failures.retain(|_, (start, _)| now < *start + WINDOW);
            if failures.len() >= TRACKED {
                let mut starts: Vec<Instant> = failures.values().map(|(s, _)| *s).collect();
                starts.sort_unstable();
                let cut = starts[starts.len() / 2];
                failures.retain(|_, (start, _)| *start > cut);
            }
        }
        let entry = failures.entry(addr).or_insert((now, 0));
        if now >= entry.0 + WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_and_others_are_not() {
        let guard = AuthGuard::default();
        let (a, b) = (Some(IpAddr::from([10, 0, 0, 1])), Some(IpAddr::from([10, 0, 0, 2])));
        for _ in 0..FAILURES_ALLOWED {
            assert!(guard.check(a).is_ok());
            guard.failed(a);
        }
        let refused = guard.check(a).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::RateLimited);
        assert!(refused.message.contains("retry in"), "{}", refused.message);
        assert!(guard.check(b).is_ok(), "another address is not affected");
        assert!(guard.check(None).is_ok(), "no address (in-process callers): no limit");
    }
}
