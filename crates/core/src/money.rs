//! Money: US dollars as integer nano-dollars. Never binary floating point.
//!
//! Parsed from and rendered to decimal strings exactly: `"50.00"`, `"0.000125"`.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

/// Nano-dollars in one dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;
/// Decimal places a USD amount may carry (nano-dollar precision).
pub const MAX_DECIMALS: usize = 9;
/// Largest amount accepted from a user: one million dollars. (Cluster mode compares
/// amounts in Redis scripts, whose numbers are exact to 2^53 nano-dollars, $9.0M.)
pub const MAX_AMOUNT: Usd = Usd(1_000_000 * NANOS_PER_USD);

/// An amount of US dollars in nano-dollars (1e-9 USD).
///
/// Signed so that arithmetic on differences is natural; user input is never negative
/// (see [`Usd::parse`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("is empty; expected a decimal string like \"50.00\"")]
    Empty,
    #[error("must not be negative")]
    Negative,
    #[error("\"{0}\" is not a decimal number; expected a string like \"50.00\"")]
    NotDecimal(String),
    #[error("has more than {MAX_DECIMALS} decimal places")]
    TooPrecise,
    #[error("is larger than the maximum of $1000000.00")]
    TooLarge,
}

impl Usd {
    pub const ZERO: Usd = Usd(0);

    pub const fn from_nanos(nanos: i64) -> Self {
        Usd(nanos)
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Parses a non-negative decimal string: digits, an optional `.` and up to nine
    /// decimals. No sign, exponent, spaces, `NaN` or `Infinity`; at most [`MAX_AMOUNT`].
    pub fn parse(s: &str) -> Result<Usd, MoneyError> {
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        if s.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let not_decimal = || MoneyError::NotDecimal(s.chars().take(40).collect());
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
            return Err(not_decimal());
        }
        if s.ends_with('.') {
            return Err(not_decimal());
        }
        if frac.len() > MAX_DECIMALS {
            return Err(MoneyError::TooPrecise);
        }
        let int = int.trim_start_matches('0');
        // 10 integer digits far exceed the maximum; checking the length first
        // keeps the arithmetic below from overflowing.
        if int.len() > 10 {
            return Err(MoneyError::TooLarge);
        }
        let whole: i64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| not_decimal())? };
        let mut nanos_frac: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            nanos_frac += i64::from(b - b'0') * 10i64.pow((MAX_DECIMALS - 1 - i) as u32);
        }
        let total =
            whole.checked_mul(NANOS_PER_USD).and_then(|w| w.checked_add(nanos_frac)).ok_or(MoneyError::TooLarge)?;
        if total > MAX_AMOUNT.0 {
            return Err(MoneyError::TooLarge);
        }
        Ok(Usd(total))
    }

    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        self.0.checked_add(other.0).map(Usd)
    }

    pub fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
}

/// Renders with at least two decimals and at most nine, without trailing zeros past
/// the second: `50.00`, `0.000125`, `-1.50`. (Digits written by hand: amounts are
/// rendered into headers of every answer.)
impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sign, up to 20 digits, the point and 9 decimals fit in 32 bytes.
        let mut buf = [0u8; 32];
        let mut at = buf.len();
        let abs = self.0.unsigned_abs();
        let mut frac = abs % NANOS_PER_USD as u64;
        // Nine decimals less trailing zeros, but at least two ("0.50", "0.0194").
        let mut decimals = 9;
        while decimals > 2 && frac.is_multiple_of(10) {
            frac /= 10;
            decimals -= 1;
        }
        for _ in 0..decimals {
            at -= 1;
            buf[at] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        at -= 1;
        buf[at] = b'.';
        let mut whole = abs / NANOS_PER_USD as u64;
        loop {
            at -= 1;
            buf[at] = b'0' + (whole % 10) as u8;
            whole /= 10;
            if whole == 0 {
                break;
            }
        }
        if self.0 < 0 {
            at -= 1;
            buf[at] = b'-';
        }
        // Only ASCII digits, '.' and '-' were written.
        f.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?)
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        *self = *self + rhs;
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_sub(rhs.0))
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_renders_exactly() {
        let cases = [
            ("50.00", 50 * NANOS_PER_USD, "50.00"),
            ("50", 50 * NANOS_PER_USD, "50.00"),
            ("0.000125", 125_000, "0.000125"),
            ("0.000000001", 1, "0.000000001"),
            (".5", 500_000_000, "0.50"),
            ("007.10", 7_100_000_000, "7.10"),
            ("1000000", MAX_AMOUNT.0, "1000000.00"),
            ("0", 0, "0.00"),
        ];
        for (input, nanos, shown) in cases {
            let usd = Usd::parse(input).unwrap();
            assert_eq!(usd.nanos(), nanos, "{input}");
            assert_eq!(usd.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn rejects_bad_amounts_with_reasons() {
        use MoneyError::*;
        let cases: [(&str, MoneyError); 15] = [
            ("", Empty),
            ("-5", Negative),
            ("-0.01", Negative),
            ("NaN", NotDecimal("NaN".into())),
            ("inf", NotDecimal("inf".into())),
            ("1e3", NotDecimal("1e3".into())),
            ("+5", NotDecimal("+5".into())),
            (" 5", NotDecimal(" 5".into())),
            ("5.", NotDecimal("5.".into())),
            (".", NotDecimal(".".into())),
            ("1.2.3", NotDecimal("1.2.3".into())),
            ("0.0000000001", TooPrecise),
            ("1000000.01", TooLarge),
            ("1000000000", TooLarge),
            ("99999999999999999999999", TooLarge),
        ];
        for (input, err) in cases {
            assert_eq!(Usd::parse(input), Err(err), "{input:?}");
        }
    }

    #[test]
    fn negative_renders_with_sign() {
        assert_eq!(Usd::from_nanos(-1_500_000_000).to_string(), "-1.50");
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(nanos in 0..=MAX_AMOUNT.0) {
            let usd = Usd::from_nanos(nanos);
            prop_assert_eq!(Usd::parse(&usd.to_string()), Ok(usd));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Usd::parse(&s);
        }

        #[test]
        fn parse_matches_integer_arithmetic(whole in 0i64..1_000_000, frac in 0i64..1_000_000_000) {
            let s = format!("{whole}.{frac:09}");
            prop_assert_eq!(Usd::parse(&s).map(Usd::nanos), Ok(whole * NANOS_PER_USD + frac));
        }
    }
}
