//! The SSE parser and the stream usage watchers on arbitrary bytes, cut at arbitrary
//! places: no panic, and with every event kept the bytes come out as they went in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spendgate_wire::StreamUsage;
use spendgate_wire::anthropic::MessagesStream;
use spendgate_wire::openai::{ChatStream, ResponsesStream};
use spendgate_wire::sse::Parser;

fuzz_target!(|data: &[u8]| {
    // The first byte sets the chunk size, the rest is the stream.
    let Some((&step, stream)) = data.split_first() else { return };
    let step = usize::from(step.max(1));
    let mut parser = Parser::new();
    let mut watchers: [Box<dyn StreamUsage>; 3] =
        [Box::new(ChatStream::default()), Box::new(MessagesStream::default()), Box::new(ResponsesStream::default())];
    let mut out = Vec::new();
    let mut keep = |e: &spendgate_wire::sse::Event<'_>| {
        if let Some(data) = e.data.as_deref() {
            for w in &mut watchers {
                w.observe(e.event.as_deref(), data);
            }
        }
        true
    };
    for chunk in stream.chunks(step) {
        parser.push(chunk);
        out.extend_from_slice(&parser.take(&mut keep));
    }
    out.extend_from_slice(&parser.finish(&mut keep));
    assert_eq!(out, stream, "every event kept: the bytes pass through unchanged");
    for w in &watchers {
        let _ = (w.reported(), w.output_chars(), w.partial());
    }
});
