//! Limit cycles: calendar periods in UTC. A day starts at 00:00, a week on Monday
//! 00:00, a month on the 1st at 00:00; `total` never resets.

use crate::timestamp::{DAY_MS, Timestamp};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cycle {
    Daily,
    Weekly,
    Monthly,
    Total,
}

/// The cycle in force at some instant: `start <= now < end`. `end` is `None` for
/// [`Cycle::Total`], which started at the epoch and never ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a cycle; expected one of daily, weekly, monthly, total")]
pub struct CycleError(String);

impl Cycle {
    pub const ALL: [Cycle; 4] = [Cycle::Daily, Cycle::Weekly, Cycle::Monthly, Cycle::Total];

    pub fn as_str(self) -> &'static str {
        match self {
            Cycle::Daily => "daily",
            Cycle::Weekly => "weekly",
            Cycle::Monthly => "monthly",
            Cycle::Total => "total",
        }
    }

    /// Words for messages: "per day", "in total".
    pub fn per(self) -> &'static str {
        match self {
            Cycle::Daily => "per day",
            Cycle::Weekly => "per week",
            Cycle::Monthly => "per month",
            Cycle::Total => "in total",
        }
    }

    /// The window of this cycle that contains `now`. Whole UTC days, by integer
    /// calendar arithmetic: it runs several times a request.
    pub fn window(self, now: Timestamp) -> Window {
        let day = now.unix_day();
        let (start, end) = match self {
            Cycle::Total => return Window { start: Timestamp::EPOCH, end: None },
            Cycle::Daily => (day, day + 1),
            Cycle::Weekly => {
                // 1970-01-01 was a Thursday: three days after a Monday.
                let monday = day - (day + 3).rem_euclid(7);
                (monday, monday + 7)
            }
            Cycle::Monthly => {
                let (year, month, day_of_month) = civil_from_days(day);
                let next = if month == 12 { days_from_civil(year + 1, 1) } else { days_from_civil(year, month + 1) };
                (day - (day_of_month - 1), next)
            }
        };
        Window { start: midnight(start), end: Some(midnight(end)) }
    }
}

fn midnight(day: i64) -> Timestamp {
    Timestamp::from_unix_millis(day.saturating_mul(DAY_MS))
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The day (from 1970-01-01) of the first of `month` in `year`.
fn days_from_civil(year: i64, month: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

impl FromStr for Cycle {
    type Err = CycleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cycle::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| CycleError(s.chars().take(40).collect()))
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::{Date, Duration, Month, PrimitiveDateTime, Time};

    /// The windows by the `time` crate's calendar: the oracle for the day arithmetic.
    fn oracle(c: Cycle, now: Timestamp) -> Window {
        let midnight = |d: Date| Timestamp::from_datetime(PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc());
        let date = now.to_datetime().date();
        let (start, end) = match c {
            Cycle::Total => return Window { start: Timestamp::EPOCH, end: None },
            Cycle::Daily => (date, date.next_day()),
            Cycle::Weekly => {
                let monday = date - Duration::days(i64::from(date.weekday().number_days_from_monday()));
                (monday, Some(monday + Duration::days(7)))
            }
            Cycle::Monthly => {
                let first = date.replace_day(1).unwrap();
                let (y, m) = match first.month() {
                    Month::December => (first.year() + 1, Month::January),
                    m => (first.year(), m.next()),
                };
                (first, Date::from_calendar_date(y, m, 1).ok())
            }
        };
        Window { start: midnight(start), end: end.map(midnight) }
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn window(c: Cycle, now: &str) -> (String, Option<String>) {
        let w = c.window(ts(now));
        (w.start.to_string(), w.end.map(|e| e.to_string()))
    }

    #[test]
    fn calendar_windows() {
        let some = |s: &str| Some(s.to_string());
        // 2026-11-23 is a Monday.
        assert_eq!(
            window(Cycle::Daily, "2026-11-23T23:59:59.999Z"),
            ("2026-11-23T00:00:00Z".into(), some("2026-11-24T00:00:00Z"))
        );
        assert_eq!(
            window(Cycle::Weekly, "2026-11-23T00:00:00Z"),
            ("2026-11-23T00:00:00Z".into(), some("2026-11-30T00:00:00Z"))
        );
        assert_eq!(
            window(Cycle::Weekly, "2026-11-29T23:59:59Z"),
            ("2026-11-23T00:00:00Z".into(), some("2026-11-30T00:00:00Z"))
        );
        // A week across a year end.
        assert_eq!(
            window(Cycle::Weekly, "2027-01-01T12:00:00Z"),
            ("2026-12-28T00:00:00Z".into(), some("2027-01-04T00:00:00Z"))
        );
        assert_eq!(
            window(Cycle::Monthly, "2026-12-31T23:59:59Z"),
            ("2026-12-01T00:00:00Z".into(), some("2027-01-01T00:00:00Z"))
        );
        // Leap year February.
        assert_eq!(
            window(Cycle::Monthly, "2028-02-29T10:00:00Z"),
            ("2028-02-01T00:00:00Z".into(), some("2028-03-01T00:00:00Z"))
        );
        assert_eq!(
            window(Cycle::Daily, "2028-02-28T10:00:00Z"),
            ("2028-02-28T00:00:00Z".into(), some("2028-02-29T00:00:00Z"))
        );
        assert_eq!(window(Cycle::Total, "2026-11-23T00:00:00Z"), ("1970-01-01T00:00:00Z".into(), None));
    }

    #[test]
    fn parses_names() {
        for c in Cycle::ALL {
            assert_eq!(c.as_str().parse::<Cycle>(), Ok(c));
        }
        assert!("yearly".parse::<Cycle>().is_err());
        assert!("Daily".parse::<Cycle>().is_err());
    }

    // Instants between 1971 and 2200.
    fn instant() -> impl Strategy<Value = Timestamp> {
        (365 * DAY_MS..84_000 * DAY_MS).prop_map(Timestamp::from_unix_millis)
    }

    proptest! {
        #[test]
        fn day_arithmetic_agrees_with_the_calendar(
            ms in -2_000_000 * DAY_MS..2_000_000 * DAY_MS,
            c in prop::sample::select(&Cycle::ALL[..]),
        ) {
            let now = Timestamp::from_unix_millis(ms);
            prop_assert_eq!(c.window(now), oracle(c, now));
        }

        #[test]
        fn window_contains_now_and_starts_at_midnight(now in instant(), c in prop::sample::select(&Cycle::ALL[..3])) {
            let w = c.window(now);
            let end = w.end.unwrap();
            prop_assert!(w.start <= now && now < end);
            prop_assert_eq!(w.start.unix_millis() % DAY_MS, 0);
            prop_assert_eq!(end.unix_millis() % DAY_MS, 0);
        }

        #[test]
        fn windows_tile_time(now in instant(), c in prop::sample::select(&Cycle::ALL[..3])) {
            // The next window starts exactly where this one ends; the one before ends at our start.
            let w = c.window(now);
            let end = w.end.unwrap();
            prop_assert_eq!(c.window(end).start, end);
            let before = c.window(w.start.plus_millis(-1));
            prop_assert_eq!(before.end, Some(w.start));
        }

        #[test]
        fn window_lengths(now in instant()) {
            let len = |c: Cycle| { let w = c.window(now); (w.end.unwrap().unix_millis() - w.start.unix_millis()) / DAY_MS };
            prop_assert_eq!(len(Cycle::Daily), 1);
            prop_assert_eq!(len(Cycle::Weekly), 7);
            prop_assert!((28..=31).contains(&len(Cycle::Monthly)));
            let dt = Cycle::Weekly.window(now).start.to_datetime();
            prop_assert_eq!(dt.weekday(), time::Weekday::Monday);
            prop_assert_eq!(Cycle::Monthly.window(now).start.to_datetime().day(), 1);
        }
    }
}
