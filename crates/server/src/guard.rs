//! Brute-force protection for wallet-key sign-in: an address that fails to
//! authenticate `server.failed_signins_allowed` (default [`FAILURES_ALLOWED`]) times within [`WINDOW`] is refused (429, with
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

/// An address or a network (`10.0.0.0/8`, `fd00::/8`): the reverse proxies whose
/// `X-Forwarded-For` is believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// `ADDR` or `ADDR/PREFIX`.
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip, bits) = match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let host_bits = bits - u32::from(self.prefix);
        host_bits >= 128 || (net >> host_bits) == (ip >> host_bits)
    }
}

/// The client of a request from `peer`: the peer itself, or, when the peer is a trusted
/// proxy, the nearest address in `X-Forwarded-For` that is not one (read from the right:
/// what is further left was written by the client and may be anything).
pub fn client_of(peer: IpAddr, forwarded_for: Option<&[u8]>, trusted: &[Network]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if trusted.is_empty() || !is_trusted(peer) {
        return peer;
    }
    let Some(list) = forwarded_for.and_then(|v| std::str::from_utf8(v).ok()) else { return peer };
    let mut client = peer;
    for hop in list.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => client = ip,
            Ok(ip) => return ip,
            // A hop that is not an address: nothing further left can be believed.
            Err(_) => return client,
        }
    }
    client
}

pub struct AuthGuard {
    allowed: u32,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Default for AuthGuard {
    fn default() -> AuthGuard {
        AuthGuard::new(FAILURES_ALLOWED)
    }
}

impl AuthGuard {
    /// A guard that lets an address fail `allowed` times per window.
    pub fn new(allowed: u32) -> AuthGuard {
        AuthGuard { allowed, failures: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses an address that used up its failures in the current window.
    pub fn check(&self, addr: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(addr) = addr else { return Ok(()) };
        let now = Instant::now();
        match self.lock().get(&addr) {
            Some((start, n)) if *n >= self.allowed && now < *start + WINDOW => {
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

#[cfg(test)]
mod proxy_tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn networks_match_their_addresses() {
        let n = Network::parse("10.0.0.0/8").unwrap_or(Network { addr: ip("0.0.0.0"), prefix: 32 });
        assert!(n.contains(ip("10.1.2.3")) && !n.contains(ip("11.0.0.1")) && !n.contains(ip("::1")));
        assert!(n.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped IPv6");
        let one = Network::parse("127.0.0.1").unwrap_or(n);
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(Network::parse("0.0.0.0/0").is_some_and(|all| all.contains(ip("8.8.8.8"))));
        assert!(Network::parse("fd00::/8").is_some_and(|v6| v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1"))));
        for bad in ["10.0.0.0/33", "::/129", "nonsense", "10.0.0.0/x", ""] {
            assert_eq!(Network::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let trusted = [Network::parse("10.0.0.0/8").unwrap_or(Network { addr: ip("10.0.0.0"), prefix: 8 })];
        let proxy = ip("10.0.0.5");
        let xff = |s: &'static str| Some(s.as_bytes());
        assert_eq!(client_of(proxy, xff("203.0.113.7"), &trusted), ip("203.0.113.7"));
        // Whatever the client wrote further left is not believed.
        assert_eq!(client_of(proxy, xff("1.2.3.4, 203.0.113.7"), &trusted), ip("203.0.113.7"));
        assert_eq!(client_of(proxy, xff("203.0.113.7, 10.0.0.9"), &trusted), ip("203.0.113.7"), "two proxies");
        assert_eq!(client_of(proxy, xff("garbage, 10.0.0.9"), &trusted), ip("10.0.0.9"));
        assert_eq!(client_of(proxy, None, &trusted), proxy);
        // Not from a trusted proxy, or none configured: the header is ignored.
        assert_eq!(client_of(ip("198.51.100.1"), xff("203.0.113.7"), &trusted), ip("198.51.100.1"));
        assert_eq!(client_of(proxy, xff("203.0.113.7"), &[]), proxy);
    }
}
