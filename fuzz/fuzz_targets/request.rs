//! The gateway's request reader (what a request asks for, its input bound) on arbitrary
//! bytes, for every endpoint: no panic; when it accepts a body, the tree reader agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spendgate_wire::RequestKind;
use spendgate_wire::request::{read, read_value};

fuzz_target!(|data: &[u8]| {
    for kind in [
        RequestKind::Chat,
        RequestKind::Responses,
        RequestKind::Embeddings,
        RequestKind::Messages,
        RequestKind::CountTokens,
    ] {
        let bytes = read(kind, data);
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
            let tree = read_value(kind, &value);
            if let (Ok(b), Ok(t)) = (&bytes, &tree) {
                assert_eq!(
                    (&b.model, b.stream, b.max_output_tokens, b.choices),
                    (&t.model, t.stream, t.max_output_tokens, t.choices)
                );
            }
        }
    }
    if let Some(spliced) = spendgate_wire::openai::with_stream_usage(data) {
        // Splicing into a valid object keeps it valid JSON.
        if serde_json::from_slice::<serde_json::Value>(data).is_ok_and(|v| v.is_object()) {
            assert!(serde_json::from_slice::<serde_json::Value>(&spliced).is_ok());
        }
    }
});
