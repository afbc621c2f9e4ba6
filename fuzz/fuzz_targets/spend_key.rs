//! The wallet API's spend-key body validator (create and update) on arbitrary JSON: no
//! panic; an error always names a field and a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spendgate_core::{Catalog, Mode, SpendKeyChanges, Timestamp};
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    let catalog = CATALOG.get_or_init(Catalog::builtin);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let now = Timestamp::from_unix_millis(1_796_000_000_000);
    for mode in [Mode::Create, Mode::Update] {
        if let Err(e) = SpendKeyChanges::parse(&value, mode, catalog, now) {
            // The param is the offending field's path ("" only for a member named "").
            let empty_member = value.as_object().is_some_and(|o| o.contains_key(""));
            assert!(!e.param.is_empty() || empty_member, "{e}");
            assert!(!e.reason.is_empty());
        }
    }
});
