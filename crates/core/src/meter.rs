//! A key's meter: what it has used (per UTC day, for the last weeks), what is in flight
//! (reserved spend, requests), and its rate-limit state; and admission against the
//! key's limits, as hard caps.
//!
//! Admission reserves the request's worst-case cost before it is sent; settlement
//! replaces the reservation with the real cost; release drops it when nothing reached
//! the provider. Because reservations count against the limit, concurrent requests
//! cannot carry a key past it. Pure: the caller holds the meter under a lock and passes
//! `now`.

use crate::catalog::Prices;
use crate::cycle::{Cycle, Window};
use crate::money::Usd;
use crate::spend_key::{KeyUsage, RateLimit, SpendKey};
use crate::timestamp::Timestamp;
use std::collections::VecDeque;

/// Days of history a meter keeps: enough for the longest calendar cycle (a month).
pub const HISTORY_DAYS: i64 = 32;

/// Usage on one UTC day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayUsage {
    pub day: i64,
    pub spend: Usd,
    pub requests: u64,
}

/// How admission reserves spend (a documented setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReservationPolicy {
    /// Reserve the worst case (input bounded by the request's size, output by its max
    /// tokens or the model's maximum) and lower max tokens to what the budget affords:
    /// a spend limit is never exceeded, even under concurrency.
    #[default]
    Strict,
    /// Reserve nothing: admit while settled spend is below the limit. Concurrent or
    /// long requests can overrun the limit (as most gateways do).
    Lenient,
}

/// What a request may cost at most, as the admission sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostBound {
    /// Upper bound on input tokens.
    pub input_tokens: u64,
    /// The output tokens the request may produce (its max tokens, or the model's).
    pub max_output_tokens: u64,
    /// How many completions the output bound is multiplied by (OpenAI's `n`).
    pub choices: u64,
    pub prices: Prices,
}

impl CostBound {
    /// The most an input token can cost: uncached, cached and cache-write prices alike.
    fn input_price(&self) -> Usd {
        let p = &self.prices;
        p.input.max(p.cached_input.unwrap_or(p.input)).max(p.cache_write.unwrap_or(p.input))
    }

    fn input_cost(&self) -> Usd {
        per_million(self.input_tokens, self.input_price())
    }

    fn output_cost(&self, max_output_tokens: u64) -> Usd {
        per_million(max_output_tokens.saturating_mul(self.choices.max(1)), self.prices.output)
    }

    pub fn worst_case(&self) -> Usd {
        self.input_cost() + self.output_cost(self.max_output_tokens)
    }

    /// The least budget that admits the request under the strict policy: its input and
    /// one output token (what [`CostBound::reservation`] needs to say yes).
    pub fn minimum(&self) -> Usd {
        self.input_cost() + self.output_cost(1.min(self.max_output_tokens))
    }

    /// What the strict policy reserves out of `budget`: the worst case when it fits;
    /// else the rest of the budget, with max tokens lowered to the most output it
    /// affords; `None` when not even one output token fits. (Reserving the rest, not
    /// the lowered request's exact worst case, differs by less than one token's price
    /// and lets the shared counters decide with the same rule in one script.)
    pub fn reservation(&self, budget: Usd) -> Option<(Usd, Option<u64>)> {
        let worst = self.worst_case();
        if worst <= budget {
            return Some((worst, None));
        }
        let tokens = self.affordable_output(budget)?;
        Some((budget, Some(tokens)))
    }

    /// The largest max-tokens whose worst case fits in `budget`, if at least one does.
    fn affordable_output(&self, budget: Usd) -> Option<u64> {
        let left = budget.nanos() - self.input_cost().nanos();
        let per_million_nanos = i128::from(self.prices.output.nanos()) * i128::from(self.choices.max(1));
        if left < 0 {
            return None;
        }
        if per_million_nanos == 0 {
            return Some(self.max_output_tokens);
        }
        let tokens = (i128::from(left) * 1_000_000) / per_million_nanos;
        let tokens = u64::try_from(tokens).unwrap_or(u64::MAX).min(self.max_output_tokens);
        (tokens >= 1).then_some(tokens)
    }
}

/// `tokens` at `price` per million, rounded up to the nano-dollar.
fn per_million(tokens: u64, price: Usd) -> Usd {
    let nanos = (i128::from(tokens) * i128::from(price.nanos()) + 999_999) / 1_000_000;
    Usd::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
}

/// A request let through. Hand it back to [`Meter::settle`] or [`Meter::release`]
/// exactly once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an admission must be settled or released"]
pub struct Admission {
    pub reserved: Usd,
    /// Set when the budget could not cover the request's max tokens: the request must
    /// be sent with this lower max.
    pub lowered_max_tokens: Option<u64>,
    /// When the request started: its usage counts on this day.
    pub at: Timestamp,
}

/// Why a request is refused (gateway checks 6 to 8, in that order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    RateLimited { retry_after_ms: u64, rpm: u32, burst: u32 },
    RequestLimit { count: u64, cycle: Cycle, resets_at: Option<Timestamp> },
    SpendLimit { amount: Usd, cycle: Cycle, resets_at: Option<Timestamp> },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resets = |at: &Option<Timestamp>| match at {
            Some(t) => format!("it resets at {t}"),
            None => "it never resets (a total limit); the key's owner can raise it".to_string(),
        };
        match self {
            Refusal::RateLimited { retry_after_ms, rpm, burst } => write!(
                f,
                "rate limit of {rpm} requests per minute (burst {burst}) reached; retry in {:.1} s",
                *retry_after_ms as f64 / 1000.0
            ),
            Refusal::RequestLimit { count, cycle, resets_at } => {
                write!(f, "request limit reached: {count} requests {}; {}", cycle.per(), resets(resets_at))
            }
            Refusal::SpendLimit { amount, cycle, resets_at } => {
                write!(f, "spend limit reached: ${amount} {}; {}", cycle.per(), resets(resets_at))
            }
        }
    }
}

/// GCRA: the burst allowed when a key's rate limit does not say (its whole minute).
pub fn effective_burst(limit: &RateLimit) -> u32 {
    limit.burst.unwrap_or(limit.rpm).max(1)
}

/// Headroom figures for response headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    pub requests_remaining: Option<u64>,
    pub spend_remaining: Option<Usd>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meter {
    /// Days with usage, oldest first, the last [`HISTORY_DAYS`] only.
    days: VecDeque<DayUsage>,
    total_spend: Usd,
    total_requests: u64,
    last_used_at: Option<Timestamp>,
    /// Outstanding reservations and requests in flight.
    reserved: Usd,
    in_flight: u64,
    /// GCRA theoretical arrival time, microseconds since the epoch.
    tat_us: i64,
}

impl Meter {
    /// A meter from stored history: recent days and lifetime totals.
    pub fn from_history(
        mut days: Vec<DayUsage>,
        total_spend: Usd,
        total_requests: u64,
        last_used_at: Option<Timestamp>,
    ) -> Meter {
        days.sort_by_key(|d| d.day);
        Meter { days: days.into(), total_spend, total_requests, last_used_at, ..Meter::default() }
    }

    fn since(&self, window: Window) -> (Usd, u64) {
        if window.start == Timestamp::EPOCH {
            return (self.total_spend, self.total_requests);
        }
        let first = window.start.unix_day();
        self.days.iter().filter(|d| d.day >= first).fold((Usd::ZERO, 0), |(s, r), d| (s + d.spend, r + d.requests))
    }

    /// The wallet API's figures: current cycles (settled only) and totals.
    pub fn usage(&self, key: &SpendKey, now: Timestamp) -> KeyUsage {
        KeyUsage {
            current_spend: self.since(key.spend_cycle().window(now)).0,
            total_spend: self.total_spend,
            current_requests: self.since(key.request_cycle().window(now)).1,
            total_requests: self.total_requests,
            last_used_at: self.last_used_at,
        }
    }

    pub fn reserved(&self) -> Usd {
        self.reserved
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// What is left under the key's limits, counting what is in flight.
    pub fn headroom(&self, key: &SpendKey, now: Timestamp) -> Headroom {
        Headroom {
            requests_remaining: key.request_limit.map(|l| {
                let used = self.since(l.cycle.window(now)).1 + self.in_flight;
                l.count.saturating_sub(used)
            }),
            spend_remaining: key.spend_limit.map(|l| {
                let used = self.since(l.cycle.window(now)).0 + self.reserved;
                l.amount.saturating_sub(used).max(Usd::ZERO)
            }),
        }
    }

    /// Checks the rate, request and spend limits in that order; if all pass, takes a
    /// rate-limit slot, counts the request in flight and reserves its cost.
    pub fn admit(
        &mut self,
        key: &SpendKey,
        bound: &CostBound,
        policy: ReservationPolicy,
        now: Timestamp,
    ) -> Result<Admission, Refusal> {
        let now_us = now.unix_millis().saturating_mul(1000);
        let mut new_tat = None;
        if let Some(limit) = key.rate_limit {
            let interval = 60_000_000 / i64::from(limit.rpm.max(1));
            let burst = effective_burst(&limit);
            let tolerance = interval * i64::from(burst - 1);
            let tat = self.tat_us.max(now_us);
            if tat - now_us > tolerance {
                let wait_us = tat - now_us - tolerance;
                return Err(Refusal::RateLimited {
                    retry_after_ms: (wait_us as u64).div_ceil(1000),
                    rpm: limit.rpm,
                    burst,
                });
            }
            new_tat = Some(tat + interval);
        }
        if let Some(limit) = key.request_limit {
            let window = limit.cycle.window(now);
            if self.since(window).1 + self.in_flight >= limit.count {
                return Err(Refusal::RequestLimit { count: limit.count, cycle: limit.cycle, resets_at: window.end });
            }
        }
        let mut admission = Admission { reserved: Usd::ZERO, lowered_max_tokens: None, at: now };
        if let Some(limit) = key.spend_limit {
            let window = limit.cycle.window(now);
            let spent = self.since(window).0;
            let refusal = Refusal::SpendLimit { amount: limit.amount, cycle: limit.cycle, resets_at: window.end };
            match policy {
                ReservationPolicy::Lenient if spent >= limit.amount => return Err(refusal),
                ReservationPolicy::Lenient => {}
                ReservationPolicy::Strict => {
                    let budget = limit.amount.saturating_sub(spent + self.reserved);
                    let (reserved, lowered) = bound.reservation(budget).ok_or(refusal)?;
                    admission.reserved = reserved;
                    admission.lowered_max_tokens = lowered;
                }
            }
        }
        if let Some(tat) = new_tat {
            self.tat_us = tat;
        }
        self.in_flight += 1;
        self.reserved += admission.reserved;
        Ok(admission)
    }

    /// The request reached the provider and cost `cost`: it is counted on the day it
    /// started, and its reservation is dropped.
    pub fn settle(&mut self, admission: Admission, cost: Usd) {
        self.release(&admission);
        self.count(admission.at, cost);
    }

    /// Counts a request that started at `at` and cost `cost` (its reservation is
    /// released separately).
    pub fn count(&mut self, at: Timestamp, cost: Usd) {
        let day = at.unix_day();
        match self.days.iter_mut().rev().find(|d| d.day == day) {
            Some(d) => {
                d.spend += cost;
                d.requests += 1;
            }
            None => {
                let at = self.days.iter().rposition(|d| d.day < day).map_or(0, |i| i + 1);
                self.days.insert(at, DayUsage { day, spend: cost, requests: 1 });
            }
        }
        while self.days.front().is_some_and(|d| d.day <= day - HISTORY_DAYS) {
            self.days.pop_front();
        }
        self.total_spend += cost;
        self.total_requests += 1;
        self.last_used_at = self.last_used_at.max(Some(at));
    }

    /// Counts a request admitted elsewhere (by the shared counters of cluster mode) as
    /// in flight here too, so this meter knows what this instance holds.
    pub fn hold(&mut self, admission: &Admission) {
        self.in_flight += 1;
        self.reserved += admission.reserved;
    }

    /// Nothing reached the provider: drop the reservation, count nothing.
    pub fn release(&mut self, admission: &Admission) {
        self.reserved = self.reserved.saturating_sub(admission.reserved);
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::WireFormat;
    use crate::secret::{KeyHash, SpendKeyId, WalletId};
    use crate::spend_key::{KeyStatus, RequestLimit, SpendLimit};
    use proptest::prelude::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn usd(s: &str) -> Usd {
        Usd::parse(s).unwrap()
    }

    /// An active key without limits (`key_1` of `wal_1`), for the crate's tests.
    pub(crate) fn key() -> SpendKey {
        SpendKey {
            id: SpendKeyId::new("key_1"),
            wallet_id: WalletId::new("wal_1"),
            name: "k".into(),
            status: KeyStatus::Active,
            request_shape: WireFormat::OpenAi,
            allowed_models: None,
            allowed_providers: None,
            spend_limit: None,
            request_limit: None,
            rate_limit: None,
            expires_at: None,
            key_hash: KeyHash([0; 32]),
            key_preview: "p".into(),
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            revoked_at: None,
            version: 1,
        }
    }

    /// $1 per million in, $2 per million out: 1000 in + 1000 out worst case = $0.003.
    fn bound(input: u64, output: u64) -> CostBound {
        CostBound {
            input_tokens: input,
            max_output_tokens: output,
            choices: 1,
            prices: Prices { input: usd("1"), output: usd("2"), cached_input: None, cache_write: None },
        }
    }

    #[test]
    fn spend_cap_reserves_worst_case_and_lowers_max_tokens() {
        let mut k = key();
        k.spend_limit = Some(SpendLimit { amount: usd("0.01"), cycle: Cycle::Daily });
        let mut m = Meter::default();
        let now = t("2026-11-23T12:00:00Z");
        let a1 = m.admit(&k, &bound(1000, 1000), ReservationPolicy::Strict, now).unwrap();
        assert_eq!(a1.reserved, usd("0.003"));
        let a2 = m.admit(&k, &bound(1000, 1000), ReservationPolicy::Strict, now).unwrap();
        let a3 = m.admit(&k, &bound(1000, 1000), ReservationPolicy::Strict, now).unwrap();
        assert_eq!(m.reserved(), usd("0.009"));
        // $0.001 left: input costs $0.001, no output affordable -> refused.
        let refused = m.admit(&k, &bound(1000, 1000), ReservationPolicy::Strict, now).unwrap_err();
        assert!(matches!(refused, Refusal::SpendLimit { .. }));
        // A smaller input leaves room for some output: max tokens lowered.
        let a4 = m.admit(&k, &bound(500, 1000), ReservationPolicy::Strict, now).unwrap();
        assert_eq!(a4.lowered_max_tokens, Some(250));
        assert_eq!(a4.reserved, usd("0.001"));
        // Settling for less frees budget again.
        m.settle(a1, usd("0.002"));
        assert_eq!(m.reserved(), usd("0.007"));
        assert_eq!(m.headroom(&k, now).spend_remaining, Some(usd("0.001")));
        m.release(&a2);
        m.settle(a3, usd("0.003"));
        m.settle(a4, usd("0.0005"));
        assert_eq!(m.reserved(), Usd::ZERO);
        assert_eq!(m.in_flight(), 0);
        let u = m.usage(&k, now);
        assert_eq!(u.current_spend, usd("0.0055"));
        assert_eq!(u.current_requests, 3);
        assert_eq!(u.last_used_at, Some(now));
    }

    #[test]
    fn request_limit_counts_in_flight_and_resets_with_the_cycle() {
        let mut k = key();
        k.request_limit = Some(RequestLimit { count: 2, cycle: Cycle::Daily });
        let mut m = Meter::default();
        let now = t("2026-11-23T23:59:59Z");
        let a = m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now).unwrap();
        let b = m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now).unwrap();
        let refused = m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now).unwrap_err();
        assert_eq!(
            refused,
            Refusal::RequestLimit { count: 2, cycle: Cycle::Daily, resets_at: Some(t("2026-11-24T00:00:00Z")) }
        );
        assert!(refused.to_string().contains("2 requests per day; it resets at 2026-11-24T00:00:00Z"));
        m.settle(a, Usd::ZERO);
        m.release(&b);
        // b released: one slot free again today.
        let c = m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now).unwrap();
        m.settle(c, Usd::ZERO);
        assert!(m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now).is_err());
        // Midnight UTC: a new day, admitted again with no action by anyone.
        let tomorrow = t("2026-11-24T00:00:00Z");
        assert!(m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, tomorrow).is_ok());
        assert_eq!(m.usage(&k, tomorrow).current_requests, 0);
        assert_eq!(m.usage(&k, tomorrow).total_requests, 2);
    }

    #[test]
    fn usage_follows_the_cycle_kind_and_total() {
        let mut k = key();
        let mut m = Meter::from_history(
            vec![
                DayUsage { day: t("2026-11-01T00:00:00Z").unix_day(), spend: usd("1"), requests: 1 },
                DayUsage { day: t("2026-11-23T00:00:00Z").unix_day(), spend: usd("2"), requests: 2 },
                DayUsage { day: t("2026-10-31T00:00:00Z").unix_day(), spend: usd("4"), requests: 4 },
            ],
            usd("100"),
            50,
            None,
        );
        let now = t("2026-11-24T10:00:00Z");
        assert_eq!(m.usage(&k, now).current_spend, usd("3"), "no limit: the calendar month");
        k.spend_limit = Some(SpendLimit { amount: usd("10"), cycle: Cycle::Weekly });
        assert_eq!(m.usage(&k, now).current_spend, usd("2"), "week from Monday the 23rd");
        k.spend_limit = Some(SpendLimit { amount: usd("10"), cycle: Cycle::Total });
        assert_eq!(m.usage(&k, now).current_spend, usd("100"));
        // Settling a request that started yesterday counts on yesterday.
        k.spend_limit = Some(SpendLimit { amount: usd("10"), cycle: Cycle::Daily });
        let a = m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, t("2026-11-23T23:59:59Z")).unwrap();
        m.settle(a, usd("0.5"));
        assert_eq!(m.usage(&k, now).current_spend, Usd::ZERO);
        assert_eq!(m.usage(&k, t("2026-11-23T12:00:00Z")).current_spend, usd("2.5"));
    }

    #[test]
    fn gcra_admits_burst_then_the_rate() {
        let mut k = key();
        k.rate_limit = Some(RateLimit { rpm: 60, burst: Some(10) });
        let mut m = Meter::default();
        let now = t("2026-11-23T12:00:00Z");
        for _ in 0..10 {
            let a = m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now).unwrap();
            m.settle(a, Usd::ZERO);
        }
        let Err(Refusal::RateLimited { retry_after_ms, .. }) =
            m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now)
        else {
            panic!("11th request in the same instant must be rate limited")
        };
        assert_eq!(retry_after_ms, 1000);
        assert!(m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now.plus_millis(999)).is_err());
        let a = m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now.plus_millis(1000)).unwrap();
        m.release(&a);
        assert_eq!(effective_burst(&RateLimit { rpm: 30, burst: None }), 30);
    }

    #[test]
    fn a_refused_check_consumes_no_rate_slot() {
        let mut k = key();
        k.rate_limit = Some(RateLimit { rpm: 60, burst: Some(1) });
        k.request_limit = Some(RequestLimit { count: 1, cycle: Cycle::Total });
        let mut m = Meter::default();
        let now = t("2026-11-23T12:00:00Z");
        let a = m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, now).unwrap();
        m.settle(a, Usd::ZERO);
        let later = now.plus_millis(5000);
        assert!(matches!(
            m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, later),
            Err(Refusal::RequestLimit { .. })
        ));
        k.request_limit = None;
        assert!(m.admit(&k, &bound(1, 1), ReservationPolicy::Strict, later).is_ok(), "rate slot was not taken");
    }

    #[test]
    fn lenient_policy_reserves_nothing() {
        let mut k = key();
        k.spend_limit = Some(SpendLimit { amount: usd("0.001"), cycle: Cycle::Total });
        let mut m = Meter::default();
        let now = t("2026-11-23T12:00:00Z");
        let a = m.admit(&k, &bound(1000, 1000), ReservationPolicy::Lenient, now).unwrap();
        assert_eq!((a.reserved, a.lowered_max_tokens), (Usd::ZERO, None));
        m.settle(a, usd("0.003"));
        assert!(m.admit(&k, &bound(1, 1), ReservationPolicy::Lenient, now).is_err());
    }

    #[test]
    fn worst_case_uses_the_dearest_input_price_and_choices() {
        let b = CostBound {
            input_tokens: 1_000_000,
            max_output_tokens: 1_000_000,
            choices: 3,
            prices: Prices {
                input: usd("3"),
                output: usd("15"),
                cached_input: Some(usd("0.3")),
                cache_write: Some(usd("3.75")),
            },
        };
        assert_eq!(b.worst_case(), usd("48.75"));
        let free_output = CostBound { prices: Prices { output: Usd::ZERO, ..b.prices }, ..b };
        assert_eq!(free_output.affordable_output(usd("3.75")), Some(1_000_000));
        assert_eq!(free_output.affordable_output(usd("3.74")), None, "the input alone is over budget");
    }

    proptest! {
        /// `minimum` is exactly the least budget `reservation` admits, and what it
        /// reserves never exceeds the budget.
        #[test]
        fn minimum_is_the_least_admitted_budget(
            input in 0u64..200_000, output in 0u64..200_000, choices in 1u64..4,
            price_in in 0i64..20_000, price_out in 0i64..80_000, budget in 0i64..5_000_000,
        ) {
            let b = CostBound {
                input_tokens: input,
                max_output_tokens: output,
                choices,
                prices: Prices { input: Usd::from_nanos(price_in * 1000), output: Usd::from_nanos(price_out * 1000), cached_input: None, cache_write: None },
            };
            let min = b.minimum();
            prop_assert_eq!(b.reservation(min).is_some(), output > 0 || min == b.worst_case());
            if min.nanos() > 0 {
                prop_assert!(b.reservation(Usd::from_nanos(min.nanos() - 1)).is_none());
            }
            if let Some((reserved, lowered)) = b.reservation(Usd::from_nanos(budget)) {
                prop_assert!(reserved.nanos() <= budget);
                prop_assert_eq!(lowered.is_none(), reserved == b.worst_case());
            }
        }

        /// Any interleaving of admissions and settlements at or below the reservation
        /// keeps settled spend within the limit.
        #[test]
        fn strict_cap_holds(ops in prop::collection::vec((0u64..5000, 0u64..5000, 0u8..=100, any::<bool>()), 1..200)) {
            let mut k = key();
            let limit = usd("0.05");
            k.spend_limit = Some(SpendLimit { amount: limit, cycle: Cycle::Total });
            let mut m = Meter::default();
            let now = t("2026-11-23T12:00:00Z");
            let mut open = Vec::new();
            for (input, output, fraction, settle_now) in ops {
                if let Ok(a) = m.admit(&k, &bound(input, output), ReservationPolicy::Strict, now) {
                    open.push(a);
                }
                if settle_now && let Some(a) = open.pop() {
                    let cost = Usd::from_nanos(a.reserved.nanos() * i64::from(fraction) / 100);
                    m.settle(a, cost);
                }
                prop_assert!(m.usage(&k, now).total_spend + m.reserved() <= limit);
            }
            for a in open {
                let cost = a.reserved;
                m.settle(a, cost);
            }
            prop_assert!(m.usage(&k, now).total_spend <= limit);
            prop_assert_eq!(m.reserved(), Usd::ZERO);
        }
    }
}
