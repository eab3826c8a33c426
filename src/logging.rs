//! Log output: the level from `--log-level` or `global.log_level`, per-module filters from
//! `RUST_LOG`, and a line format that suits where stderr goes.
//!
//! Under systemd (stderr is the stream `JOURNAL_STREAM` names) each line starts with the
//! sd-daemon priority prefix and carries no timestamp, so the journal stores WARN and ERROR at
//! their own priority and shows one time per line. `log_format = "json"` writes one JSON
//! object per line for log shippers.

use std::fmt::Write as _;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The levels `--log-level` and `global.log_level` accept, quietest first.
pub const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Libraries whose debug output drowns obsd's own; `RUST_LOG=h2=debug` still brings it back.
const QUIET_DEPENDENCIES: &str = "hyper=warn,h2=warn";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("RUST_LOG={value:?} is not a valid filter: {reason}")]
    RustLog { value: String, reason: String },
    #[error("log level {0:?} is not one of error, warn, info, debug, trace")]
    Level(String),
}

use crate::config::LogFormat;

/// The filter for `level` extended by `rust_log`: a bare level there replaces `level`, a
/// `module=level` directive adds to it, as tracing users expect of `RUST_LOG`.
pub fn filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, LogError> {
    if !LEVELS.contains(&level) {
        return Err(LogError::Level(level.to_string()));
    }
    let mut directives = format!("{level},{QUIET_DEPENDENCIES}");
    if let Some(extra) = rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        // Directives later in the list replace earlier ones for the same target.
        directives.push(',');
        directives.push_str(extra);
    }
    EnvFilter::builder().parse(&directives).map_err(|e| LogError::RustLog {
        value: rust_log.unwrap_or_default().to_string(),
        reason: e.to_string(),
    })
}

/// `RUST_LOG` when it is set and not empty.
pub fn rust_log_from_env() -> Option<String> {
    std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty())
}

/// True when stderr is the journal stream systemd connected (sd-daemon(3), systemd.exec(5)):
/// `JOURNAL_STREAM` alone is inherited by children whose stderr goes elsewhere, so the device
/// and inode it names must be stderr's.
pub fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else { return false };
    journal_stream_matches(&value, std::path::Path::new("/proc/self/fd/2"))
}

fn journal_stream_matches(value: &str, stderr: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = value.split_once(':') else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    std::fs::metadata(stderr).is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// sd-daemon(3)'s priority prefix for a tracing level.
fn priority(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        _ => "<7>",
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Style {
    journal: bool,
    format: LogFormat,
}

/// The style the global logger writes, for the fatal error `main` prints last.
static STYLE: OnceLock<Style> = OnceLock::new();

struct ObsdFormat {
    style: Style,
    timed: format::Format<format::Full>,
    // The journal stamps every line itself; a second time in the text is noise.
    untimed: format::Format<format::Full, ()>,
}

impl ObsdFormat {
    fn new(style: Style) -> Self {
        let ansi = !style.journal && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let timed = format::Format::default().with_ansi(ansi);
        let untimed = format::Format::default().with_ansi(false).without_time();
        ObsdFormat { style, timed, untimed }
    }
}

impl<S, N> FormatEvent<S, N> for ObsdFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        match self.style.format {
            LogFormat::Json => json_line(&mut line, ctx, event)?,
            LogFormat::Text if self.style.journal => {
                self.untimed.format_event(ctx, Writer::new(&mut line), event)?
            }
            LogFormat::Text => self.timed.format_event(ctx, Writer::new(&mut line), event)?,
        }
        if !self.style.journal {
            return writer.write_str(&line);
        }
        // A continuation line without its own prefix would be stored at priority 6.
        let prefix = priority(event.metadata().level());
        for part in line.lines() {
            writeln!(writer, "{prefix}{}", part.trim_start())?;
        }
        Ok(())
    }
}

/// Fields of one event: `message` apart, the rest as JSON values.
#[derive(Default)]
struct JsonFields {
    message: String,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.insert(field.name().to_string(), format!("{value:?}").into());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.insert(field.name().to_string(), value.into());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
}

fn json_line<S, N>(out: &mut String, ctx: &FmtContext<'_, S, N>, event: &Event<'_>) -> std::fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let mut visitor = JsonFields::default();
    event.record(&mut visitor);
    let meta = event.metadata();
    let mut object = serde_json::Map::new();
    object.insert(
        "timestamp".into(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into(),
    );
    object.insert("level".into(), meta.level().as_str().into());
    object.insert("target".into(), meta.target().into());
    object.insert("message".into(), visitor.message.into());
    object.insert("fields".into(), visitor.fields.into());
    if let Some(scope) = ctx.event_scope() {
        let spans: Vec<serde_json::Value> = scope
            .from_root()
            .map(|span| {
                let fields = span.extensions().get::<FormattedFields<N>>().map(|f| f.to_string());
                serde_json::json!({ "name": span.name(), "fields": fields.unwrap_or_default() })
            })
            .collect();
        object.insert("spans".into(), spans.into());
    }
    let text = serde_json::to_string(&serde_json::Value::Object(object)).map_err(|_| std::fmt::Error)?;
    writeln!(out, "{text}")
}

fn subscriber(filter: EnvFilter, style: Style) -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!style.journal && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .event_format(ObsdFormat::new(style))
        .finish()
}

/// The logger for the time before the config is read: the level from the command line (or
/// `default_level`) and `RUST_LOG`, text format. Dropping the guard ends it.
pub fn early(
    cli_level: Option<&str>,
    default_level: &str,
) -> Result<tracing::dispatcher::DefaultGuard, LogError> {
    let filter = filter(cli_level.unwrap_or(default_level), rust_log_from_env().as_deref())?;
    let style = Style { journal: stderr_is_journal(), format: LogFormat::Text };
    Ok(tracing::subscriber::set_default(subscriber(filter, style)))
}

/// Installs the process-wide logger; a second call keeps the first.
pub fn init(level: &str, format: LogFormat) -> Result<(), LogError> {
    let filter = filter(level, rust_log_from_env().as_deref())?;
    let style = Style { journal: stderr_is_journal(), format };
    if tracing::subscriber::set_global_default(subscriber(filter, style)).is_ok() {
        let _ = STYLE.set(style);
    }
    Ok(())
}

/// The fatal error `main` ends with, in the style of the log before it: with the error
/// priority in the journal, as a JSON object for shippers, else `obsd: error: …`.
pub fn fatal_error_text(message: &str) -> String {
    let style =
        STYLE.get().copied().unwrap_or(Style { journal: stderr_is_journal(), format: LogFormat::Text });
    fatal_in_style(message, style)
}

fn fatal_in_style(message: &str, style: Style) -> String {
    let body = match style.format {
        LogFormat::Text => format!("obsd: error: {message}\n"),
        LogFormat::Json => {
            let object = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "ERROR",
                "target": "obsd",
                "message": message,
                "fields": {},
            });
            format!("{object}\n")
        }
    };
    if !style.journal {
        return body;
    }
    body.lines().map(|l| format!("<3>{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_levels_are_refused() {
        assert!(matches!(filter("verbose", None), Err(LogError::Level(_))));
        for level in LEVELS {
            assert!(filter(level, None).is_ok(), "{level}");
        }
    }

    #[test]
    fn rust_log_overrides_and_extends_the_level() {
        let f = filter("warn", Some("obsd::scrape=debug")).expect("valid");
        let shown = f.to_string();
        assert!(shown.contains("obsd::scrape=debug") && shown.contains("warn"), "{shown}");
        let f = filter("warn", Some("debug")).expect("valid");
        assert_eq!(f.max_level_hint(), Some(tracing::level_filters::LevelFilter::DEBUG));
        assert!(matches!(filter("info", Some("obsd=loud")), Err(LogError::RustLog { .. })));
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        use std::os::unix::fs::MetadataExt;
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let meta = std::fs::metadata(file.path()).expect("stat");
        let value = format!("{}:{}", meta.dev(), meta.ino());
        assert!(journal_stream_matches(&value, file.path()));
        assert!(!journal_stream_matches(&format!("{}:{}", meta.dev(), meta.ino() + 1), file.path()));
        assert!(!journal_stream_matches("garbage", file.path()));
    }

    #[test]
    fn fatal_error_carries_the_error_priority_on_every_line() {
        let text = fatal_in_style("a\nb", Style { journal: true, format: LogFormat::Text });
        assert_eq!(text, "<3>obsd: error: a\n<3>b\n");
        let json = fatal_in_style("x", Style { journal: false, format: LogFormat::Json });
        let value: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
        assert_eq!(value["level"], "ERROR");
        assert_eq!(value["message"], "x");
    }
}
