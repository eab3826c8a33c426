//! Helpers for obsd exporter plugins speaking interface 1 (plugins/README.md): the header
//! line, Prometheus text with correct escaping and number spelling, and the exit status.
//!
//! ```no_run
//! obsd_plugin::run(|out| {
//!     out.family("backup_age_seconds", "Seconds since the last backup.", obsd_plugin::Kind::Gauge)
//!         .sample(&[("job", "db")], 42.0);
//!     Ok(())
//! });
//! ```

use std::fmt::Write as _;
use std::io::Write as _;

/// The interface version these helpers write; obsd rejects output of a version it lacks.
pub const INTERFACE: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }
}

/// A plugin's output being built; `run` prints it in one write when the plugin succeeds.
pub struct Exposition {
    text: String,
}

impl Default for Exposition {
    fn default() -> Self {
        Self::new()
    }
}

impl Exposition {
    pub fn new() -> Self {
        Exposition { text: format!("# obsd-plugin-interface {INTERFACE}\n") }
    }

    /// Starts a family: its HELP and TYPE lines. Add samples with `sample`.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> Family<'_> {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
        Family { out: self, name: name.to_string() }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

pub struct Family<'a> {
    out: &'a mut Exposition,
    name: String,
}

impl Family<'_> {
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let text = &mut self.out.text;
        text.push_str(&self.name);
        if !labels.is_empty() {
            text.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let _ = write!(text, "{name}=\"{}\"", escape_label_value(value));
            }
            text.push('}');
        }
        text.push(' ');
        text.push_str(&format_value(value));
        text.push('\n');
        self
    }
}

pub fn escape_label_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"")
}

/// Prometheus spells the special values NaN, +Inf and -Inf.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

/// The plugin's arguments after argv[0] (which obsd sets to the plugin's name).
pub fn args() -> Vec<String> {
    std::env::args().skip(1).collect()
}

/// Runs `collect` and prints its output; on `Err` prints the message to stderr and exits 1,
/// which obsd reports as `obsd_plugin_up 0` with reason `exit`.
pub fn run(collect: impl FnOnce(&mut Exposition) -> Result<(), String>) {
    let mut out = Exposition::new();
    match collect(&mut out) {
        Ok(()) => {
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(out.text.as_bytes()).and_then(|_| stdout.flush()).is_err() {
                std::process::exit(2);
            }
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_header_help_type_and_escaped_samples() {
        let mut out = Exposition::new();
        out.family("a_total", "A \\ b\nc.", Kind::Counter)
            .sample(&[("x", "q\"\n\\")], 1.5)
            .sample(&[], f64::INFINITY);
        assert_eq!(
            out.as_str(),
            "# obsd-plugin-interface 1\n# HELP a_total A \\\\ b\\nc.\n# TYPE a_total counter\n\
             a_total{x=\"q\\\"\\n\\\\\"} 1.5\na_total +Inf\n"
        );
    }
}
