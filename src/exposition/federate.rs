//! The body of Prometheus's `/federate` (web/federate.go in 2.42): every family untyped with
//! no HELP, the newest sample of each series with its own timestamp, external labels added
//! only where a series lacks them, and `instance=""` where a series has no instance.

use super::{escape_label_value, format_go_float};
use std::fmt::Write;

/// One series' newest sample, labels sorted by name and including `__name__`.
pub struct FederatedSample<'a> {
    pub labels: &'a [(String, String)],
    pub t_ms: i64,
    pub value: f64,
}

/// Writes samples one at a time (so an answer can be streamed in chunks); samples must come
/// sorted by metric name.
pub struct FederationWriter {
    external: Vec<(String, String)>,
    last_name: Option<String>,
}

impl FederationWriter {
    pub fn new(external_labels: &[(String, String)]) -> Self {
        let mut external: Vec<(String, String)> = external_labels.to_vec();
        if !external.iter().any(|(n, _)| n == "instance") {
            external.push(("instance".into(), String::new()));
        }
        external.sort();
        FederationWriter { external, last_name: None }
    }

    pub fn write(&mut self, out: &mut String, s: &FederatedSample) {
        let Some(name) = s.labels.iter().find(|(n, _)| n == "__name__").map(|(_, v)| v.as_str()) else {
            return;
        };
        if self.last_name.as_deref() != Some(name) {
            let _ = writeln!(out, "# TYPE {name} untyped");
            self.last_name = Some(name.to_string());
        }
        out.push_str(name);
        let mut first = true;
        let mut push = |out: &mut String, n: &str, v: &str| {
            out.push(if first { '{' } else { ',' });
            first = false;
            let _ = write!(out, "{n}=\"{}\"", escape_label_value(v));
        };
        for (n, v) in s.labels {
            if n == "__name__" || v.is_empty() {
                continue;
            }
            push(out, n, v);
        }
        for (n, v) in &self.external {
            if !s.labels.iter().any(|(sn, sv)| sn == n && !sv.is_empty()) {
                push(out, n, v);
            }
        }
        if !first {
            out.push('}');
        }
        let _ = writeln!(out, " {} {}", format_go_float(s.value), s.t_ms);
    }
}

/// Writes samples, which must be sorted by metric name, as text format 0.0.4.
pub fn write_federation(out: &mut String, samples: &[FederatedSample], external_labels: &[(String, String)]) {
    let mut writer = FederationWriter::new(external_labels);
    for s in samples {
        writer.write(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn matches_prometheus_federate_output() {
        let a = l(&[("__name__", "up"), ("instance", "n1:9100"), ("job", "node")]);
        let b = l(&[("__name__", "up"), ("job", "app"), ("prometheus_instance", "own")]);
        let c = l(&[("__name__", "x_total")]);
        let samples = [
            FederatedSample { labels: &a, t_ms: 1000, value: 1.0 },
            FederatedSample { labels: &b, t_ms: 2000, value: 1e6 },
            FederatedSample { labels: &c, t_ms: 3000, value: 0.5 },
        ];
        let mut out = String::new();
        write_federation(&mut out, &samples, &l(&[("prometheus_instance", "replica-1")]));
        assert_eq!(
            out,
            "# TYPE up untyped\n\
             up{instance=\"n1:9100\",job=\"node\",prometheus_instance=\"replica-1\"} 1 1000\n\
             up{job=\"app\",prometheus_instance=\"own\",instance=\"\"} 1e+06 2000\n\
             # TYPE x_total untyped\n\
             x_total{instance=\"\",prometheus_instance=\"replica-1\"} 0.5 3000\n"
        );
    }
}
