//! One alert as Alertmanager keeps it (types.Alert): labels, annotations, the active range and
//! when it was last updated; its fingerprint; the merge of two reports of the same alert; and
//! the RFC 3339 forms Alertmanager writes (nanoseconds in webhooks, milliseconds in the API).

use crate::model::Labels;
use chrono::{DateTime, TimeZone, Utc};

/// Nanoseconds since the epoch; 0 is Go's zero time (unset).
pub type Nanos = i64;

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: Nanos,
    pub ends_at: Nanos,
    pub generator_url: String,
    pub updated_at: Nanos,
    /// `endsAt` was set by Alertmanager (`now + resolve_timeout`), not by the sender.
    pub timeout: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Resolved at `now`: an end time that has passed.
    pub fn resolved_at(&self, now: Nanos) -> bool {
        self.ends_at != 0 && self.ends_at <= now
    }

    /// `Alert.Merge`: the younger report wins, keeping the earliest start; a resolve time the
    /// sender set outlasts one Alertmanager guessed.
    pub fn merge(&self, younger: &Alert, now: Nanos) -> Alert {
        if younger.updated_at < self.updated_at {
            return younger.merge(self, now);
        }
        let (a, o) = (self, younger);
        let mut res = o.clone();
        if a.starts_at < o.starts_at {
            res.starts_at = a.starts_at;
        }
        if o.resolved_at(now) {
            if a.resolved_at(now) && a.ends_at > o.ends_at {
                res.ends_at = a.ends_at;
            }
        } else if a.ends_at > o.ends_at && !a.timeout {
            res.ends_at = a.ends_at;
        }
        res
    }
}

/// Prometheus's `LabelSet.Fingerprint`: FNV-1a over the sorted names and values, each followed
/// by the 0xff separator.
pub fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 14695981039346656037;
    const PRIME: u64 = 1099511628211;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    let mut pairs: Vec<(&str, &str)> = labels.iter().collect();
    pairs.sort_unstable();
    for (n, v) in pairs {
        add(n.as_bytes());
        add(&[0xff]);
        add(v.as_bytes());
        add(&[0xff]);
    }
    hash
}

pub fn fingerprint_string(fp: u64) -> String {
    format!("{fp:016x}")
}

/// `LabelSet.String()`: `{a="1", b="2"}`, names sorted, values Go-quoted.
pub fn labels_string(labels: &Labels) -> String {
    let mut pairs: Vec<(&str, &str)> = labels.iter().collect();
    pairs.sort_unstable();
    let inner: Vec<String> =
        pairs.iter().map(|(n, v)| format!("{n}={}", crate::gotemplate::go_quote(v))).collect();
    format!("{{{}}}", inner.join(", "))
}

/// The order Alertmanager sends a group's alerts in (`AlertSlice.Less`): by `job`, then by
/// `instance` (an alert with the label before one without), then by the whole label set.
pub fn alert_order(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    label_set_order(a, b)
}

/// `LabelSet.Before`: fewer labels first; else over the sorted union of names, the first name
/// one set lacks puts that set first, else the first differing value decides.
pub fn label_set_order(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&str> = a.iter().chain(b.iter()).map(|(n, _)| n).collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

pub fn now_nanos() -> Nanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Go's zero time in RFC 3339.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn utc(n: Nanos) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000) as u32).single()
}

/// `time.RFC3339Nano` as Go's JSON writes it: trailing zeros of the fraction dropped.
pub fn rfc3339_nano(n: Nanos) -> String {
    if n == 0 {
        return ZERO_TIME.to_string();
    }
    let Some(t) = utc(n) else { return ZERO_TIME.to_string() };
    let frac = n.rem_euclid(1_000_000_000);
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// go-openapi's `strfmt.DateTime`: always three fraction digits.
pub fn rfc3339_millis(n: Nanos) -> String {
    if n == 0 {
        return "0001-01-01T00:00:00.000Z".to_string();
    }
    match utc(n) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => "0001-01-01T00:00:00.000Z".to_string(),
    }
}

/// An RFC 3339 time as senders write it; Go's zero time is 0.
pub fn parse_time(s: &str) -> Result<Nanos, String> {
    let t = DateTime::parse_from_rfc3339(s).map_err(|e| format!("parsing time {s:?}: {e}"))?;
    if t.timestamp() <= -62135596800 {
        return Ok(0);
    }
    t.timestamp_nanos_opt().ok_or_else(|| format!("parsing time {s:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_prometheus_model_fingerprints() {
        // model.LabelSet{}.Fingerprint() is FNV-1a's offset; values from client_golang's tests.
        assert_eq!(fingerprint(&Labels::new()), 14695981039346656037);
        let l = Labels::from_pairs([("foo", "bar")]);
        let mut h: u64 = 14695981039346656037;
        for b in b"foo\xffbar\xff" {
            h ^= u64::from(*b);
            h = h.wrapping_mul(1099511628211);
        }
        assert_eq!(fingerprint(&l), h);
        assert_eq!(fingerprint_string(0xab), "00000000000000ab");
    }

    #[test]
    fn merge_keeps_the_earliest_start_and_a_real_end() {
        let base = Alert {
            labels: Labels::from_pairs([("a", "1")]),
            annotations: Labels::new(),
            starts_at: 100,
            ends_at: 1_000,
            generator_url: String::new(),
            updated_at: 10,
            timeout: false,
        };
        let younger = Alert { starts_at: 200, ends_at: 500, updated_at: 20, timeout: true, ..base.clone() };
        let m = base.merge(&younger, 50);
        assert_eq!((m.starts_at, m.ends_at), (100, 1_000), "the sender's later end outlasts a guessed one");
        let m = younger.merge(&base, 50);
        assert_eq!(m.updated_at, 20, "the younger report wins whichever side it is on");
    }

    #[test]
    fn times_print_as_go_prints_them() {
        let t = parse_time("2026-12-07T10:00:00.120Z").unwrap();
        assert_eq!(rfc3339_nano(t), "2026-12-07T10:00:00.12Z");
        assert_eq!(rfc3339_millis(t), "2026-12-07T10:00:00.120Z");
        assert_eq!(rfc3339_nano(0), ZERO_TIME);
        assert_eq!(parse_time(ZERO_TIME).unwrap(), 0);
        let t = parse_time("2026-12-07T11:00:00+01:00").unwrap();
        assert_eq!(rfc3339_nano(t), "2026-12-07T10:00:00Z");
    }

    #[test]
    fn groups_are_ordered_by_job_then_instance_then_labels() {
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        let mut v = [
            l(&[("x", "1")]),
            l(&[("job", "b")]),
            l(&[("job", "a"), ("instance", "2")]),
            l(&[("job", "a"), ("instance", "1")]),
        ];
        v.sort_by(alert_order);
        assert_eq!(v[0].get("instance"), Some("1"));
        assert_eq!(v[2].get("job"), Some("b"));
        assert_eq!(v[3].get("x"), Some("1"));
    }
}
