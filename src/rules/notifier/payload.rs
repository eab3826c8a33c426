//! The body of `POST /api/v2/alerts`, byte for byte as Prometheus 2.42 marshals its
//! `models.PostableAlerts` with Go's encoding/json: fields in the order the go-openapi models
//! write them (`annotations`, `endsAt`, `startsAt`, `generatorURL`, `labels`), maps with sorted
//! keys, empty `annotations` and `generatorURL` left out, times in UTC as RFC 3339 with
//! milliseconds (`strfmt.DateTime`), and Go's HTML-safe string escaping (`<`, `>`, `&`,
//! U+2028 and U+2029 as `\uXXXX`).

use super::Alert;
use crate::model::Labels;
use std::fmt::Write;

/// The JSON array of `alerts`.
pub(super) fn encode(alerts: &[Alert]) -> Vec<u8> {
    let mut out = String::with_capacity(256 * alerts.len() + 2);
    out.push('[');
    for (i, alert) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        let mut first = true;
        let mut field = |out: &mut String, name: &str| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
        };
        if !alert.annotations.is_empty() {
            field(&mut out, "annotations");
            write_labels(&mut out, &alert.annotations);
        }
        if let Some(ends_at) = alert.ends_at_ms {
            field(&mut out, "endsAt");
            write_time(&mut out, ends_at);
        }
        field(&mut out, "startsAt");
        write_time(&mut out, alert.starts_at_ms);
        if !alert.generator_url.is_empty() {
            field(&mut out, "generatorURL");
            write_string(&mut out, &alert.generator_url);
        }
        field(&mut out, "labels");
        write_labels(&mut out, &alert.labels);
        out.push('}');
    }
    out.push(']');
    out.into_bytes()
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, name);
        out.push(':');
        write_string(out, value);
    }
    out.push('}');
}

/// `"2006-01-02T15:04:05.000Z"` (strfmt's RFC3339Millis, in UTC).
fn write_time(out: &mut String, ms: i64) {
    out.push('"');
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => {
            let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
        }
        // Out of chrono's range (±262,000 years): Go's zero time, which Alertmanager treats
        // as unset.
        None => out.push_str("0001-01-01T00:00:00.000Z"),
    }
    out.push('"');
}

/// A JSON string as Go's encoding/json writes it (Go 1.19/1.20, which built Prometheus 2.42).
fn write_string(out: &mut String, s: &str) {
    out.push_str(&crate::model::gojson::string(s));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alert_byte_exact_as_prometheus_2_42_sends_it() {
        // Captured from Prometheus 2.42.0 (Debian 2.42.0+ds) posting to a listener, TZ=Europe/Paris.
        let alert = Alert {
            labels: Labels::from_pairs([
                ("alertname", "AlwaysFiring"),
                ("replica", "r1"),
                ("sev_copy", "page"),
                ("severity", "page"),
            ]),
            annotations: Labels::from_pairs([("summary", "it fires é \"q\" <b>")]),
            starts_at_ms: 1_796_670_275_632,
            ends_at_ms: Some(1_796_670_576_632),
            generator_url: "http://vm:22990/graph?g0.expr=vector%281%29+%3E+0&g0.tab=1".into(),
        };
        let want = r#"[{"annotations":{"summary":"it fires é \"q\" \u003cb\u003e"},"endsAt":"2026-12-07T19:09:36.632Z","startsAt":"2026-12-07T19:04:35.632Z","generatorURL":"http://vm:22990/graph?g0.expr=vector%281%29+%3E+0\u0026g0.tab=1","labels":{"alertname":"AlwaysFiring","replica":"r1","sev_copy":"page","severity":"page"}}]"#;
        assert_eq!(String::from_utf8(encode(std::slice::from_ref(&alert))).unwrap(), want);
        // No annotations: the key is left out, as Go's omitempty does.
        let bare = Alert { annotations: Labels::new(), ..alert };
        let text = String::from_utf8(encode(&[bare])).unwrap();
        assert!(text.starts_with(r#"[{"endsAt":"2026-12-07T19:09:36.632Z","startsAt":"#), "{text}");
    }

    #[test]
    fn optional_fields_control_characters_and_empty() {
        let alert = Alert {
            labels: Labels::from_pairs([("alertname", "A\u{1}\u{8}\u{2028}")]),
            annotations: Labels::new(),
            starts_at_ms: 0,
            ends_at_ms: None,
            generator_url: String::new(),
        };
        assert_eq!(
            String::from_utf8(encode(&[alert])).unwrap(),
            r#"[{"startsAt":"1970-01-01T00:00:00.000Z","labels":{"alertname":"A\u0001\u0008\u2028"}}]"#
        );
        assert_eq!(encode(&[]), b"[]");
        // Round-trips through a JSON parser.
        let parsed: serde_json::Value = serde_json::from_slice(&encode(&[Alert {
            labels: Labels::from_pairs([("a", "x&y\\z\t")]),
            annotations: Labels::from_pairs([("d", "\"")]),
            starts_at_ms: -1,
            ends_at_ms: Some(i64::MAX),
            generator_url: "u".into(),
        }]))
        .unwrap();
        assert_eq!(parsed[0]["labels"]["a"], "x&y\\z\t");
        assert_eq!(parsed[0]["startsAt"], "1969-12-31T23:59:59.999Z");
    }
}
