//! Instants in UTC with millisecond precision, rendered as RFC 3339.

use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not an ISO 8601 / RFC 3339 timestamp like \"2027-01-01T00:00:00Z\"")]
pub struct TimestampError(String);

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);

    pub const fn from_unix_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Days since the epoch (floor), the key of daily aggregates.
    pub const fn unix_day(self) -> i64 {
        self.0.div_euclid(DAY_MS)
    }

    pub fn from_datetime(dt: OffsetDateTime) -> Self {
        let ms = dt.unix_timestamp_nanos() / 1_000_000;
        // Every OffsetDateTime `time` can represent (years -9999..=9999) fits in i64 ms.
        Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Parses an RFC 3339 timestamp with any offset (`Z`, `+02:00`); sub-millisecond
    /// digits are dropped.
    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(Timestamp::from_datetime)
            .map_err(|_| TimestampError(s.chars().take(60).collect()))
    }

    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

/// RFC 3339 in UTC with a `Z`: `2026-12-01T00:00:00Z`, `2026-11-23T09:00:15.123Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime().format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "{}ms", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339() {
        let t = Timestamp::parse("2026-11-23T09:00:15.123Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-23T09:00:15.123Z");
        assert_eq!(Timestamp::parse("2027-01-01T00:00:00Z").unwrap().to_string(), "2027-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::parse("2027-01-01T02:00:00+02:00").unwrap(),
            Timestamp::parse("2027-01-01T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn rejects_non_timestamps() {
        for bad in ["", "2027-01-01", "tomorrow", "2027-13-01T00:00:00Z", "1700000000"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unix_day_floors_before_epoch() {
        assert_eq!(Timestamp::from_unix_millis(-1).unix_day(), -1);
        assert_eq!(Timestamp::from_unix_millis(DAY_MS).unix_day(), 1);
    }
}
