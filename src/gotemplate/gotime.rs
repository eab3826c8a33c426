//! Go's `time.Time` in UTC as templates see it: `String()`, `Format(layout)` with Go 1.19's
//! layout elements, and the calendar fields behind the methods `toTime` results offer.

use super::value::GoTime;

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
pub(super) const DAYS: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// The calendar fields of a UTC time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub nanos: u32,
    /// 0 = Sunday
    pub weekday: i64,
    /// 1..=366
    pub yday: i64,
}

/// `model.TimeFromUnixNano(ns).Time().UTC()`: Prometheus keeps millisecond precision, the
/// division truncating toward zero.
pub(super) fn from_unix_nanos_ms(ns: i64) -> GoTime {
    let ms = ns / 1_000_000;
    let secs = ms.div_euclid(1000);
    let nanos = (ms.rem_euclid(1000) * 1_000_000) as u32;
    GoTime { secs, nanos }
}

pub(super) fn civil(t: GoTime) -> Civil {
    let days = t.secs.div_euclid(86_400);
    let sod = t.secs.rem_euclid(86_400);
    let (year, month, day) = crate::model::units::civil_from_days(days);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(month - 1) as usize] + day + i64::from(leap && month > 2);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod % 3600 / 60,
        second: sod % 60,
        nanos: t.nanos,
        weekday: (days + 4).rem_euclid(7),
        yday,
    }
}

/// `time.Time.String()` for a UTC time.
pub(super) fn string(t: GoTime) -> String {
    format(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

#[derive(Debug, Clone, Copy)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    PmLower,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    /// Fractional seconds: digits, trailing zeros trimmed (`.999`), separator.
    Frac(usize, bool, char),
}

fn starts_lower(s: &str) -> bool {
    s.bytes().next().is_some_and(|c| c.is_ascii_lowercase())
}

/// Go's `nextStdChunk`: the text before the first layout element, the element, and the rest.
fn next_std(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|r| r.starts_with(s));
    for i in 0..b.len() {
        let found: Option<(Std, usize)> = match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    Some((Std::LongMonth, 7))
                } else if !starts_lower(&layout[i + 3..]) {
                    Some((Std::Month, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "Mon") => {
                if at(i, "Monday") {
                    Some((Std::LongWeekDay, 6))
                } else if !starts_lower(&layout[i + 3..]) {
                    Some((Std::WeekDay, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "MST") => Some((Std::Tz, 3)),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => {
                let std = [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][(b[i + 1] - b'1') as usize];
                Some((std, 2))
            }
            b'0' if at(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'1' if at(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if at(i, "_2") => {
                if at(i, "_2006") {
                    // A literal underscore, then the long year.
                    return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                }
                Some((Std::UnderDay, 2))
            }
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if at(i, "PM") => Some((Std::Pm, 2)),
            b'p' if at(i, "pm") => Some((Std::PmLower, 2)),
            b'-' => {
                if at(i, "-070000") {
                    Some((Std::NumSecondsTz, 7))
                } else if at(i, "-07:00:00") {
                    Some((Std::NumColonSecondsTz, 9))
                } else if at(i, "-0700") {
                    Some((Std::NumTz, 5))
                } else if at(i, "-07:00") {
                    Some((Std::NumColonTz, 6))
                } else if at(i, "-07") {
                    Some((Std::NumShortTz, 3))
                } else {
                    None
                }
            }
            b'Z' => {
                if at(i, "Z070000") {
                    Some((Std::Iso8601SecondsTz, 7))
                } else if at(i, "Z07:00:00") {
                    Some((Std::Iso8601ColonSecondsTz, 9))
                } else if at(i, "Z0700") {
                    Some((Std::Iso8601Tz, 5))
                } else if at(i, "Z07:00") {
                    Some((Std::Iso8601ColonTz, 6))
                } else if at(i, "Z07") {
                    Some((Std::Iso8601ShortTz, 3))
                } else {
                    None
                }
            }
            c @ (b'.' | b',') if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    return (&layout[..i], Some(Std::Frac(j - (i + 1), ch == b'9', c as char)), &layout[j..]);
                }
            }
            _ => None,
        };
        if let Some((std, len)) = found {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
    }
    (layout, None, "")
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
        out.push_str(&format!("{:0width$}", -v));
    } else {
        out.push_str(&format!("{v:0width$}"));
    }
}

/// `time.Time.Format(layout)` for a UTC time.
pub(super) fn format(t: GoTime, layout: &str) -> String {
    let c = civil(t);
    let mut out = String::new();
    let mut rest = layout;
    loop {
        let (prefix, std, suffix) = next_std(rest);
        out.push_str(prefix);
        let Some(std) = std else { break };
        rest = suffix;
        match std {
            Std::LongMonth => out.push_str(MONTHS[(c.month - 1) as usize]),
            Std::Month => out.push_str(&MONTHS[(c.month - 1) as usize][..3]),
            Std::NumMonth => pad(&mut out, c.month, 0),
            Std::ZeroMonth => pad(&mut out, c.month, 2),
            Std::LongWeekDay => out.push_str(DAYS[c.weekday as usize]),
            Std::WeekDay => out.push_str(&DAYS[c.weekday as usize][..3]),
            Std::Day => pad(&mut out, c.day, 0),
            Std::UnderDay => {
                if c.day < 10 {
                    out.push(' ');
                }
                pad(&mut out, c.day, 0);
            }
            Std::ZeroDay => pad(&mut out, c.day, 2),
            Std::UnderYearDay => {
                if c.yday < 100 {
                    out.push(' ');
                    if c.yday < 10 {
                        out.push(' ');
                    }
                }
                pad(&mut out, c.yday, 0);
            }
            Std::ZeroYearDay => pad(&mut out, c.yday, 3),
            Std::Hour => pad(&mut out, c.hour, 2),
            Std::Hour12 | Std::ZeroHour12 => {
                let mut h = c.hour % 12;
                if h == 0 {
                    h = 12;
                }
                pad(&mut out, h, if matches!(std, Std::Hour12) { 0 } else { 2 });
            }
            Std::Minute => pad(&mut out, c.minute, 0),
            Std::ZeroMinute => pad(&mut out, c.minute, 2),
            Std::Second => pad(&mut out, c.second, 0),
            Std::ZeroSecond => pad(&mut out, c.second, 2),
            Std::LongYear => pad(&mut out, c.year, 4),
            Std::Year => pad(&mut out, c.year.rem_euclid(100), 2),
            Std::Pm => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Std::PmLower => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            Std::Tz => out.push_str("UTC"),
            Std::Iso8601Tz
            | Std::Iso8601SecondsTz
            | Std::Iso8601ShortTz
            | Std::Iso8601ColonTz
            | Std::Iso8601ColonSecondsTz => out.push('Z'),
            Std::NumTz => out.push_str("+0000"),
            Std::NumSecondsTz => out.push_str("+000000"),
            Std::NumShortTz => out.push_str("+00"),
            Std::NumColonTz => out.push_str("+00:00"),
            Std::NumColonSecondsTz => out.push_str("+00:00:00"),
            Std::Frac(n, trim, sep) => {
                let digits = format!("{:09}", c.nanos);
                let mut d = &digits[..n.min(9)];
                if trim {
                    d = d.trim_end_matches('0');
                    if d.is_empty() {
                        continue;
                    }
                }
                out.push(sep);
                out.push_str(d);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let t = from_unix_nanos_ms(1_435_065_584_128_000_000);
        assert_eq!(string(t), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(format(t, "2006"), "2015");
        assert_eq!(
            format(
                t,
                ",000 .999 ,999 .000000 05.99 2006-01-02T15:04:05.999999999Z07:00 3PM 03pm Mon, 02 Jan"
            ),
            ",128 .128 ,128 .128000 44.12 2015-06-23T13:19:44.128Z 1PM 01pm Tue, 23 Jun"
        );
        let t = GoTime { secs: 1_000_000_000, nanos: 0 };
        assert_eq!(
            format(t, "002 __2 ,000 .999 Jan _2 3:4:5 06 -07 Z07 -07:00:00 January Monday"),
            "252 252 ,000  Sep  9 1:46:40 01 +00 Z +00:00:00 September Sunday"
        );
        assert_eq!(string(from_unix_nanos_ms(-1_500_000_000)), "1969-12-31 23:59:58.5 +0000 UTC");
        assert_eq!(string(from_unix_nanos_ms(-500_000)), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(string(from_unix_nanos_ms(9_223_372_036_000_000_000)), "2262-04-11 23:47:16 +0000 UTC");
    }
}
