//! The units configs and APIs write: Prometheus duration strings (`30s`, `1m30s`, `2h`,
//! `500ms`) both ways, and byte sizes (`512MB`, `1GiB`) as Prometheus's `body_size_limit`.

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("not a valid duration string: {0:?} (expected e.g. 15s, 1m30s, 500ms, 2h)")]
pub struct DurationError(pub String);

pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_string());
    if text.is_empty() {
        return Err(err());
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = text.as_bytes();
    let mut total_ms: u128 = 0;
    let mut i = 0;
    // Units must appear in decreasing order, each at most once, as Prometheus enforces.
    let mut last_rank = usize::MAX;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(err());
        }
        let number: u128 = text[start..i].parse().map_err(|_| err())?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let (rank, unit_ms): (usize, u128) = match &text[unit_start..i] {
            "y" => (6, 365 * 24 * 3600 * 1000),
            "w" => (5, 7 * 24 * 3600 * 1000),
            "d" => (4, 24 * 3600 * 1000),
            "h" => (3, 3600 * 1000),
            "m" => (2, 60 * 1000),
            "s" => (1, 1000),
            "ms" => (0, 1),
            _ => return Err(err()),
        };
        if rank >= last_rank {
            return Err(err());
        }
        last_rank = rank;
        total_ms = total_ms.checked_add(number.checked_mul(unit_ms).ok_or_else(err)?).ok_or_else(err)?;
    }
    let ms = u64::try_from(total_ms).map_err(|_| err())?;
    Ok(Duration::from_millis(ms))
}

/// Formats a duration the way Prometheus prints one (`1m`, `15s`, `1h30m`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let number: u64 = text[..split].parse().ok()?;
    let unit: u64 = match text[split..].trim() {
        "" | "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        "TB" | "TiB" => 1 << 40,
        "PB" | "PiB" => 1 << 50,
        "EB" | "EiB" => 1 << 60,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1s1m").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("10MB"), Some(10 << 20));
        assert_eq!(parse_byte_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_byte_size("0"), Some(0));
        assert_eq!(parse_byte_size("ten"), None);
    }

    #[test]
    fn formats_as_prometheus_prints() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(15 * 86400)), "2w1d");
    }
}
