//! Logging for `serve`: `tracing` events on stderr, as text or JSON.
//!
//! The gateway logs a line per request, so both the formatting and the writing are on
//! the hot path. Text lines are formatted by [`Text`] (the timestamp rendered once a
//! second, fields written without the styling machinery of the default format), and
//! lines go to stderr through [`Buffered`]: one `write` for the lines of the last
//! [`FLUSH_EVERY`], not one per line. Warnings and errors are written at once, and
//! [`flush`] writes what is left at exit.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// How long a log line may wait in memory before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Lines kept in memory at most before they are written at once.
const BUFFER_LIMIT: usize = 64 << 10;

static BUFFER: OnceLock<Buffered> = OnceLock::new();

/// Installs the subscriber: filter from `SPENDGATE_LOG` (or `RUST_LOG`, else the
/// config's `log.level`; a filter that does not parse is an error), lines as JSON or
/// text (`log.format`).
pub fn init(policy: &spendgate_server::config::LogPolicy) -> anyhow::Result<()> {
    let from_env =
        ["SPENDGATE_LOG", "RUST_LOG"].iter().find_map(|v| std::env::var(v).ok().filter(|f| !f.trim().is_empty()));
    let (filter, setting) = match &from_env {
        Some(f) => (f.as_str(), "SPENDGATE_LOG (or RUST_LOG)"),
        None => (policy.level.as_str(), "log.level"),
    };
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("{setting} {filter:?} is not a log filter like \"info\" or \"warn\": {e}"))?;
    let format = policy.format.as_str();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = BUFFER.get_or_init(Buffered::start).clone();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    if format == "json" {
        builder.json().init();
    } else {
        builder.event_format(Text).init();
    }
    Ok(())
}

/// Writes the lines still in memory.
pub fn flush() {
    if let Some(b) = BUFFER.get() {
        b.flush();
    }
}

/// Log lines on their way to stderr.
#[derive(Clone)]
pub struct Buffered {
    lines: Arc<Mutex<Vec<u8>>>,
}

impl Buffered {
    /// A buffer and the thread that writes it out every [`FLUSH_EVERY`].
    fn start() -> Buffered {
        let buffered = Buffered { lines: Arc::new(Mutex::new(Vec::with_capacity(BUFFER_LIMIT))) };
        let flusher = buffered.clone();
        let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flusher.flush();
            }
        });
        if spawned.is_err() {
            eprintln!("warning: no log-writer thread; log lines are written when the buffer fills or at exit");
        }
        buffered
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A panic while holding it leaves bytes that are still lines (or a part of one).
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flush(&self) {
        let mut lines = self.lock();
        if !lines.is_empty() {
            // Under the lock, so that lines keep their order. Nowhere to report a
            // failure to write to stderr.
            let _ = std::io::stderr().write_all(&lines);
            lines.clear();
        }
    }
}

/// One event's line: appended to the buffer; written out at once when it is urgent
/// (a warning or an error) or the buffer is full.
pub struct Line<'a> {
    to: &'a Buffered,
    urgent: bool,
}

impl std::io::Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut lines = self.to.lock();
            lines.extend_from_slice(bytes);
            lines.len() >= BUFFER_LIMIT
        };
        if full {
            self.to.flush();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.urgent {
            self.to.flush();
        }
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line { to: self, urgent: false }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line<'a> {
        Line { to: self, urgent: *meta.level() <= Level::WARN }
    }
}

/// The text format: `2026-12-02T17:48:00.123Z  INFO target: message key=value ...`.
/// (spendgate uses no spans, so none are printed.)
pub struct Text;

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        write_second(&mut w, now.as_secs())?;
        let millis = now.subsec_millis();
        let meta = event.metadata();
        let level = match (*meta.level(), w.has_ansi_escapes()) {
            (Level::ERROR, true) => "\x1b[31mERROR\x1b[0m",
            (Level::WARN, true) => "\x1b[33m WARN\x1b[0m",
            (Level::INFO, true) => "\x1b[32m INFO\x1b[0m",
            (Level::DEBUG, true) => "\x1b[34mDEBUG\x1b[0m",
            (Level::TRACE, true) => "\x1b[35mTRACE\x1b[0m",
            (Level::ERROR, false) => "ERROR",
            (Level::WARN, false) => " WARN",
            (Level::INFO, false) => " INFO",
            (Level::DEBUG, false) => "DEBUG",
            (Level::TRACE, false) => "TRACE",
        };
        let millis = [b'.', b'0' + (millis / 100) as u8, b'0' + (millis / 10 % 10) as u8, b'0' + (millis % 10) as u8];
        w.write_str(std::str::from_utf8(&millis).map_err(|_| fmt::Error)?)?;
        w.write_str("Z ")?;
        w.write_str(level)?;
        w.write_char(' ')?;
        w.write_str(meta.target())?;
        w.write_char(':')?;
        // The message first, then the fields in their order.
        let mut fields = Fields { w: &mut w, message: true, result: Ok(()) };
        event.record(&mut fields);
        fields.message = false;
        event.record(&mut fields);
        fields.result?;
        w.write_char('\n')
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a second since the epoch, rendered once a second per thread.
fn write_second(w: &mut Writer<'_>, secs: u64) -> fmt::Result {
    use std::cell::RefCell;
    thread_local! {
        static RENDERED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    RENDERED.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            text.clear();
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )?;
            *at = secs;
        }
        w.write_str(text)
    })
}

/// Writes an event's message (`message: true`) or its other fields as ` name=value`.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    message: bool,
    result: fmt::Result,
}

/// Whether a string value can be written without quotes and still read back.
fn bare(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.:-+@".contains(&b))
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        let is_message = field.name() == "message";
        if self.result.is_err() || is_message != self.message {
            return;
        }
        self.result = if is_message {
            self.w.write_char(' ').and_then(|()| value(self.w))
        } else {
            (self.w.write_char(' '))
                .and_then(|()| self.w.write_str(field.name()))
                .and_then(|()| self.w.write_char('='))
                .and_then(|()| value(self.w))
        };
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = self.message;
        self.field(field, |w| if message || bare(value) { w.write_str(value) } else { write!(w, "{value:?}") });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| write!(w, "{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = CapturedLine;
        fn make_writer(&'a self) -> CapturedLine {
            CapturedLine(self.0.clone())
        }
    }

    struct CapturedLine(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for CapturedLine {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_lines_have_time_level_target_message_and_fields() {
        let out = Captured::default();
        let subscriber =
            tracing_subscriber::fmt().with_writer(out.clone()).with_ansi(false).event_format(Text).finish();
        tracing::subscriber::with_default(subscriber, || {
            let method = "POST";
            tracing::info!(%method, path = "/v1/chat/completions", status = 200u16, us = 41u64, "request");
            tracing::warn!(error = "could not reach it: connection refused", ok = false, "provider failed");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (time, rest) = lines[0].split_once(' ').unwrap();
        assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        assert_eq!(
            rest,
            " INFO spendgate::logging::tests: request method=POST path=/v1/chat/completions status=200 us=41"
        );
        assert!(
            lines[1].ends_with(" WARN spendgate::logging::tests: provider failed error=\"could not reach it: connection refused\" ok=false"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn buffered_lines_wait_unless_urgent() {
        let b = Buffered { lines: Arc::new(Mutex::new(Vec::new())) };
        let info = tracing::Metadata::new(
            "i",
            "t",
            Level::INFO,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CALLSITE)),
            tracing::metadata::Kind::EVENT,
        );
        {
            let mut line = b.make_writer_for(&info);
            line.write_all(b"a line\n").unwrap();
        }
        assert_eq!(&*b.lock(), b"a line\n", "kept until the next flush");
    }

    struct Callsite;
    static CALLSITE: Callsite = Callsite;
    impl tracing::callsite::Callsite for Callsite {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unreachable!()
        }
    }
}
