//! Limit cycles: calendar periods in UTC. A day starts at 00:00, a week on Monday
//! 00:00, a month on the 1st at 00:00; `total` never resets.

use crate::timestamp::Timestamp;
use std::fmt;
use std::str::FromStr;
use time::{Date, Duration, Month, PrimitiveDateTime, Time};

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

    /// The window of this cycle that contains `now`.
    pub fn window(self, now: Timestamp) -> Window {
        let date = now.to_datetime().date();
        let (start, end) = match self {
            Cycle::Total => {
                return Window { start: Timestamp::EPOCH, end: None };
            }
            Cycle::Daily => (date, date.next_day()),
            Cycle::Weekly => {
                let monday = date - Duration::days(i64::from(date.weekday().number_days_from_monday()));
                (monday, Some(monday + Duration::days(7)))
            }
            Cycle::Monthly => {
                let first = date.replace_day(1).unwrap_or(date);
                (first, first_of_next_month(first))
            }
        };
        Window { start: midnight(start), end: end.map(midnight) }
    }
}

fn midnight(date: Date) -> Timestamp {
    Timestamp::from_datetime(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc())
}

fn first_of_next_month(first: Date) -> Option<Date> {
    let (year, month) = match first.month() {
        Month::December => (first.year() + 1, Month::January),
        m => (first.year(), m.next()),
    };
    Date::from_calendar_date(year, month, 1).ok()
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
    use crate::timestamp::DAY_MS;
    use proptest::prelude::*;

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
