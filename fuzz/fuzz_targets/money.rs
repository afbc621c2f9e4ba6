//! Money parsing on arbitrary text: no panic, and what parses renders back to an amount
//! that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spendgate_core::Usd;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(amount) = Usd::parse(text) {
        let rendered = amount.to_string();
        assert_eq!(Usd::parse(&rendered).ok(), Some(amount), "{text:?} -> {rendered:?}");
    }
});
