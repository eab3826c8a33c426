//! Alertmanager 0.25's `time_intervals` / `mute_time_intervals`: parsing with its exact messages
//! and evaluation with its exact results, time zones included.
//!
//! Ported from Alertmanager 0.25 `timeinterval/timeinterval.go` and `config/config.go`, and for
//! time zones from Go 1.19's `time` package (the toolchain Debian built Alertmanager 0.25 with):
//! `LoadLocation`, the TZif reader, `Location.lookup` with its POSIX TZ footer rules, and
//! `time.Date`. Go's quirks are kept on purpose, because a mute interval that differs from
//! Alertmanager's by an hour or a day silences the wrong alerts:
//! - `days_of_month` counts a month's days as whole 24-hour periods, so a month that loses an hour
//!   to DST in `location` has one day fewer: in Europe/Berlin `-1` is the 30th of March, and the
//!   31st matches no day at all, not even `'1:31'` or `'31'`;
//! - an empty list (`weekdays: []`) matches nothing, while an absent or null one matches anything;
//! - a null list element is the zero range without validation (`weekdays: [null]` is Sunday);
//! - weekday ranges do not wrap (`saturday:sunday` is refused, "start day cannot be before end
//!   day"), and months and years are not range-checked (`months: ['13']` parses, never matches).
//!
//! In obsd's config, declare the lists with [`deserialize_time_intervals`] and
//! [`deserialize_mute_time_intervals`]: Go accepts a null list, and words a nameless entry of the
//! older list differently.

use crate::gotemplate::go_quote;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};

/// Why a time interval, or its time zone, was rejected; the texts are Alertmanager's (Go's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeIntervalError {
    #[error("both start and end times must be provided")]
    MissingTime,
    #[error("couldn't parse timestamp {0}, invalid format")]
    TimestampFormat(String),
    #[error("start time cannot be equal or greater than end time")]
    TimeOrder,
    #[error("couldn't parse range {0}, invalid format")]
    RangeFormat(String),
    #[error("{0} is not a valid weekday")]
    Weekday(String),
    #[error("{0} is not a valid day of the week: out of range")]
    WeekdayOutOfRange(String),
    #[error("start day cannot be before end day")]
    WeekdayOrder,
    #[error("{0} is not a valid day of the month: out of range")]
    DayOutOfRange(i64),
    #[error("end day must be negative if start day is negative")]
    DaySign,
    #[error("end day {end} is always before start day {begin}")]
    DayOrder { begin: i64, end: i64 },
    #[error("{0} is not a valid month")]
    Month(String),
    #[error("end month {end} is before start month {begin}")]
    MonthOrder { begin: &'static str, end: &'static str },
    #[error("end year {end} is before start year {begin}")]
    YearOrder { begin: i64, end: i64 },
    /// Go's `strconv.Atoi` error, which Alertmanager passes through for day and year numbers.
    #[error("strconv.Atoi: parsing {}: {}", go_quote(.0), .1)]
    Atoi(String, AtoiError),
    #[error("missing name in time interval")]
    MissingName,
    #[error("missing name in mute time interval")]
    MissingMuteName,
    #[error("mute time interval {} is not unique", go_quote(.0))]
    MuteNotUnique(String),
    #[error("time interval {} is not unique", go_quote(.0))]
    NotUnique(String),
    /// For the route check, which lives with the routes.
    #[error("undefined time interval {} used in route", go_quote(.0))]
    Undefined(String),
    #[error("time: invalid location name")]
    InvalidLocationName,
    #[error("unknown time zone {0}")]
    UnknownTimeZone(String),
    #[error("malformed time zone information")]
    MalformedTimeZone,
    #[error("time: file {0} is too large")]
    TimeZoneFileTooLarge(String),
    /// An OS error reading a zone file, worded as Go's `syscall.Errno` ("is a directory").
    #[error("{0}")]
    TimeZoneRead(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtoiError {
    Syntax,
    Range,
}

impl fmt::Display for AtoiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AtoiError::Syntax => "invalid syntax",
            AtoiError::Range => "value out of range",
        })
    }
}

/// One named set, as under `time_intervals:` (and the older `mute_time_intervals:`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamedTimeInterval {
    pub name: String,
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Whether any of the set's intervals contains `at`; an empty set contains nothing.
    pub fn contains(&self, at: SystemTime) -> bool {
        self.time_intervals.iter().any(|interval| interval.contains(at))
    }
}

/// One entry of a named set's `time_intervals`. `None` is an absent or null field, which matches
/// any time; `Some(vec![])` is an empty list, which matches none (Go tests `!= nil`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeInterval {
    pub times: Option<Vec<TimeRange>>,
    pub weekdays: Option<Vec<WeekdayRange>>,
    pub days_of_month: Option<Vec<DayOfMonthRange>>,
    pub months: Option<Vec<MonthRange>>,
    pub years: Option<Vec<YearRange>>,
    /// `None` evaluates in UTC, as Alertmanager hands `ContainsTime` the time in UTC.
    pub location: Option<Location>,
}

impl TimeInterval {
    /// Alertmanager's `ContainsTime`: every present field must match `at` as seen in `location`.
    pub fn contains(&self, at: SystemTime) -> bool {
        let zone = self.location.as_ref().map_or(&UTC, |location| &*location.zone);
        let t = zone.civil(unix_seconds(at));
        if let Some(times) = &self.times {
            let minute = t.hour * 60 + t.minute;
            if !times.iter().any(|r| minute >= r.start_minute && minute < r.end_minute) {
                return false;
            }
        }
        if let Some(days) = &self.days_of_month {
            let days_in_month = days_in_month(zone, &t);
            let matched = days.iter().any(|r| {
                let from_end = |day: i64| if day < 0 { days_in_month.saturating_add(day) + 1 } else { day };
                let (begin, end) = (from_end(r.begin), from_end(r.end));
                // A range starting past this month's end (30:31 in February) must not be clamped
                // onto the month's last day.
                if begin > days_in_month {
                    return false;
                }
                let begin = clamp(begin, -days_in_month, days_in_month);
                let end = clamp(end, -days_in_month, days_in_month);
                t.day >= begin && t.day <= end
            });
            if !matched {
                return false;
            }
        }
        in_ranges(&self.months, t.month, |r| (r.begin, r.end))
            && in_ranges(&self.weekdays, t.weekday, |r| (r.begin, r.end))
            && in_ranges(&self.years, t.year, |r| (r.begin, r.end))
    }
}

/// An absent list allows any value; an empty one allows none.
fn in_ranges<R>(ranges: &Option<Vec<R>>, value: i64, bounds: fn(&R) -> (i64, i64)) -> bool {
    ranges.as_ref().is_none_or(|ranges| {
        ranges.iter().any(|r| {
            let (begin, end) = bounds(r);
            value >= begin && value <= end
        })
    })
}

/// Minutes of the day, `start_minute` inclusive, `end_minute` exclusive (`24:00` is 1440).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: i64,
    pub end_minute: i64,
}

impl TimeRange {
    /// Parses `start_time`/`end_time` as Alertmanager does ("HH:MM", end exclusive).
    pub fn parse(start_time: &str, end_time: &str) -> Result<Self, TimeIntervalError> {
        if start_time.is_empty() || end_time.is_empty() {
            return Err(TimeIntervalError::MissingTime);
        }
        let start_minute = parse_clock(start_time)?;
        let end_minute = parse_clock(end_time)?;
        if start_minute >= end_minute {
            return Err(TimeIntervalError::TimeOrder);
        }
        Ok(Self { start_minute, end_minute })
    }
}

/// Inclusive, 0 = Sunday.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeekdayRange {
    pub begin: i64,
    pub end: i64,
}

/// Inclusive; negative values count back from the month's end (-1 is its last day).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayOfMonthRange {
    pub begin: i64,
    pub end: i64,
}

/// Inclusive, 1 = January.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthRange {
    pub begin: i64,
    pub end: i64,
}

/// Inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct YearRange {
    pub begin: i64,
    pub end: i64,
}

const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

impl std::str::FromStr for WeekdayRange {
    type Err = TimeIntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (begin, end) = parse_range(s, |member| {
            position(&WEEKDAYS, member).ok_or_else(|| TimeIntervalError::Weekday(member.to_owned()))
        })?;
        if begin > end {
            return Err(TimeIntervalError::WeekdayOrder);
        }
        // Unreachable with names only, kept so that the checks stay Alertmanager's.
        if !(0..=6).contains(&begin) || !(0..=6).contains(&end) {
            return Err(TimeIntervalError::WeekdayOutOfRange(s.to_owned()));
        }
        Ok(Self { begin, end })
    }
}

impl std::str::FromStr for DayOfMonthRange {
    type Err = TimeIntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (begin, end) = parse_range(s, go_atoi)?;
        for day in [begin, end] {
            if day == 0 || !(-31..=31).contains(&day) {
                return Err(TimeIntervalError::DayOutOfRange(day));
            }
        }
        if begin < 0 && end > 0 {
            return Err(TimeIntervalError::DaySign);
        }
        // Alertmanager rejects only ranges that are empty in every month: negative days are
        // placed in a 28-day month, the shortest.
        let place = |day: i64| if day < 0 { 28 + day } else { day };
        if place(begin) > place(end) {
            return Err(TimeIntervalError::DayOrder { begin, end });
        }
        Ok(Self { begin, end })
    }
}

impl std::str::FromStr for MonthRange {
    type Err = TimeIntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (begin, end) = parse_range(s, |member| match position(&MONTHS, member) {
            Some(index) => Ok(index + 1),
            None => go_atoi(member).map_err(|_| TimeIntervalError::Month(member.to_owned())),
        })?;
        if begin > end {
            // Go looks numbers outside 1..=12 up in a map, which yields "".
            let name = |month: i64| {
                usize::try_from(month - 1).ok().and_then(|i| MONTHS.get(i)).copied().unwrap_or("")
            };
            return Err(TimeIntervalError::MonthOrder { begin: name(begin), end: name(end) });
        }
        Ok(Self { begin, end })
    }
}

impl std::str::FromStr for YearRange {
    type Err = TimeIntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (begin, end) = parse_range(s, go_atoi)?;
        if begin > end {
            return Err(TimeIntervalError::YearOrder { begin, end });
        }
        Ok(Self { begin, end })
    }
}

fn position(names: &[&str], member: &str) -> Option<i64> {
    names.iter().position(|name| *name == member).and_then(|i| i64::try_from(i).ok())
}

/// Alertmanager's `stringableRangeFromString`: lower-cased, one member or `begin:end`. Member
/// errors name the lower-cased member, as Go's do.
fn parse_range(
    input: &str,
    member: impl Fn(&str) -> Result<i64, TimeIntervalError>,
) -> Result<(i64, i64), TimeIntervalError> {
    let lower = go_to_lower(input);
    if lower.contains(':') {
        let parts: Vec<&str> = lower.split(':').collect();
        let [begin, end] = parts[..] else {
            return Err(TimeIntervalError::RangeFormat(lower.clone()));
        };
        return Ok((member(begin)?, member(end)?));
    }
    let value = member(&lower)?;
    Ok((value, value))
}

/// Go's `strings.ToLower`, which maps each rune on its own (no context-dependent lower-casing).
fn go_to_lower(s: &str) -> String {
    s.chars().map(|c| c.to_lowercase().next().unwrap_or(c)).collect()
}

/// "HH:MM" with Alertmanager's pattern `^((([01][0-9])|(2[0-3])):[0-5][0-9])$|(^24:00$)`.
fn parse_clock(s: &str) -> Result<i64, TimeIntervalError> {
    if s == "24:00" {
        return Ok(24 * 60);
    }
    let valid = match s.as_bytes() {
        &[h1, h2, b':', m1, m2] => {
            let hour_ok =
                matches!(h1, b'0' | b'1') && h2.is_ascii_digit() || h1 == b'2' && (b'0'..=b'3').contains(&h2);
            hour_ok && (b'0'..=b'5').contains(&m1) && m2.is_ascii_digit()
        }
        _ => false,
    };
    if !valid {
        return Err(TimeIntervalError::TimestampFormat(s.to_owned()));
    }
    let digit = |i: usize| i64::from(s.as_bytes()[i] - b'0');
    Ok((digit(0) * 10 + digit(1)) * 60 + digit(3) * 10 + digit(4))
}

/// Go's `strconv.Atoi` on a 64-bit platform: optional sign, ASCII digits only, and its error order
/// (an overflow is reported even if a bad character follows it).
fn go_atoi(s: &str) -> Result<i64, TimeIntervalError> {
    let fail = |kind| Err(TimeIntervalError::Atoi(s.to_owned(), kind));
    let (negative, digits) = match s.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    if digits.is_empty() {
        return fail(AtoiError::Syntax);
    }
    let mut magnitude: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return fail(AtoiError::Syntax);
        }
        match magnitude.checked_mul(10).and_then(|m| m.checked_add(u64::from(c - b'0'))) {
            Some(m) => magnitude = m,
            None => return fail(AtoiError::Range),
        }
    }
    let limit = if negative { 1u64 << 63 } else { (1u64 << 63) - 1 };
    if magnitude > limit {
        return fail(AtoiError::Range);
    }
    // Two's complement: 1 << 63 negated is i64::MIN.
    let value = magnitude as i64;
    Ok(if negative { value.wrapping_neg() } else { value })
}

// ---------------------------------------------------------------------------------------------
// Deserialization. Scalars are read as their source text (yaml.v2 hands UnmarshalYAML the raw
// text, so `days_of_month: [0x10]` is a syntax error there too); fields are strict, as
// Alertmanager loads its configuration with `yaml.UnmarshalStrict`.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedTimeInterval {
    name: Option<String>,
    time_intervals: Option<Vec<TimeInterval>>,
}

fn named(
    raw: RawNamedTimeInterval,
    missing: TimeIntervalError,
) -> Result<NamedTimeInterval, TimeIntervalError> {
    let name = raw.name.unwrap_or_default();
    if name.is_empty() {
        return Err(missing);
    }
    Ok(NamedTimeInterval { name, time_intervals: raw.time_intervals.unwrap_or_default() })
}

impl<'de> Deserialize<'de> for NamedTimeInterval {
    /// A null entry becomes a set with an empty name, without the name check.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(NullOr(Mapping(|raw| named(raw, TimeIntervalError::MissingName))))
    }
}

/// The older `mute_time_intervals:` entries, which differ only in their missing-name message.
#[derive(Default)]
struct MuteTimeInterval(NamedTimeInterval);

impl<'de> Deserialize<'de> for MuteTimeInterval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let check = |raw| named(raw, TimeIntervalError::MissingMuteName).map(MuteTimeInterval);
        d.deserialize_option(NullOr(Mapping(check)))
    }
}

/// For a config's `time_intervals:` (`#[serde(default, deserialize_with = ...)]`): a null list is
/// an empty one, as in Go.
pub fn deserialize_time_intervals<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<NamedTimeInterval>, D::Error> {
    Ok(Option::<Vec<NamedTimeInterval>>::deserialize(d)?.unwrap_or_default())
}

/// For a config's `mute_time_intervals:`, whose missing-name message differs.
pub fn deserialize_mute_time_intervals<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<NamedTimeInterval>, D::Error> {
    let list = Option::<Vec<MuteTimeInterval>>::deserialize(d)?.unwrap_or_default();
    Ok(list.into_iter().map(|mute| mute.0).collect())
}

/// Alertmanager's check of a config's two lists: names are unique across both (the older list is
/// read first). Returns the names, against which routes' `mute_time_intervals` and
/// `active_time_intervals` are then checked ([`TimeIntervalError::Undefined`]).
pub fn interval_names<'a>(
    mute_time_intervals: &'a [NamedTimeInterval],
    time_intervals: &'a [NamedTimeInterval],
) -> Result<HashSet<&'a str>, TimeIntervalError> {
    let mut names = HashSet::new();
    for named in mute_time_intervals {
        if !names.insert(named.name.as_str()) {
            return Err(TimeIntervalError::MuteNotUnique(named.name.clone()));
        }
    }
    for named in time_intervals {
        if !names.insert(named.name.as_str()) {
            return Err(TimeIntervalError::NotUnique(named.name.clone()));
        }
    }
    Ok(names)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeInterval {
    times: Option<Vec<TimeRange>>,
    weekdays: Option<Vec<WeekdayRange>>,
    days_of_month: Option<Vec<DayOfMonthRange>>,
    months: Option<Vec<MonthRange>>,
    years: Option<Vec<YearRange>>,
    location: Option<Location>,
}

impl<'de> Deserialize<'de> for TimeInterval {
    /// A null entry is Go's zero `TimeInterval`, which contains every time.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(NullOr(Mapping(|raw: RawTimeInterval| {
            Ok(TimeInterval {
                times: raw.times,
                weekdays: raw.weekdays,
                days_of_month: raw.days_of_month,
                months: raw.months,
                years: raw.years,
                location: raw.location,
            })
        })))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    start_time: Option<String>,
    end_time: Option<String>,
}

impl<'de> Deserialize<'de> for TimeRange {
    /// A null element is the zero range, which never matches.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(NullOr(Mapping(|raw: RawTimeRange| {
            TimeRange::parse(&raw.start_time.unwrap_or_default(), &raw.end_time.unwrap_or_default())
        })))
    }
}

impl<'de> Deserialize<'de> for WeekdayRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(NullOr(Scalar(str::parse)))
    }
}

impl<'de> Deserialize<'de> for DayOfMonthRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(NullOr(Scalar(str::parse)))
    }
}

impl<'de> Deserialize<'de> for MonthRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(NullOr(Scalar(str::parse)))
    }
}

impl<'de> Deserialize<'de> for YearRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(NullOr(Scalar(str::parse)))
    }
}

impl<'de> Deserialize<'de> for Location {
    /// A null `location` never gets here: the field is then `None`, as in Go.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Scalar(Location::load))
    }
}

// Validation errors are raised inside `visit_str` / `visit_map`, while serde_norway still knows
// which scalar or mapping it is reading, so they carry that node's path and line.

/// A scalar's text (any scalar: yaml.v2 hands UnmarshalYAML the source text, so `0x10` is text).
struct Scalar<T>(fn(&str) -> Result<T, TimeIntervalError>);

impl<'de, T> Visitor<'de> for Scalar<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        (self.0)(text).map_err(E::custom)
    }
}

/// A mapping read strictly as `R`, then checked into `T`.
struct Mapping<R, T>(fn(R) -> Result<T, TimeIntervalError>);

impl<'de, R: Deserialize<'de>, T> Visitor<'de> for Mapping<R, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let raw = R::deserialize(MapAccessDeserializer::new(map))?;
        (self.0)(raw).map_err(A::Error::custom)
    }
}

/// How the value inside a [`NullOr`] is read.
trait Inner<'de>: Visitor<'de> {
    fn read<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error>;
}

impl<'de, T> Inner<'de> for Scalar<T> {
    fn read<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, R: Deserialize<'de>, T> Inner<'de> for Mapping<R, T> {
    fn read<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

/// yaml.v2 does not call UnmarshalYAML for a null: the element keeps Go's zero value, unchecked.
/// (yaml.v2 skips it only for `null`, `~` and empty; for `Null`/`NULL` it calls UnmarshalYAML with
/// "", which fails validation. serde_norway reports all of them as null, so those two spellings
/// are taken as the zero value here.)
struct NullOr<V>(V);

impl<'de, V: Inner<'de>> Visitor<'de> for NullOr<V>
where
    V::Value: Default,
{
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Self::Value::default())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Self::Value::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.read(d)
    }
}

// ---------------------------------------------------------------------------------------------
// Time zones: Go 1.19's `time.LoadLocation` over the system's TZif files.

/// A time zone as Go's `time.LoadLocation` finds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Location {
    name: String,
    zone: Arc<Zone>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({:?})", self.name)
    }
}

/// Go's zone directories on Unix, in its order.
const ZONE_SOURCES: [&str; 3] = ["/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/", "/usr/lib/locale/TZ/"];
/// Go's `maxFileSize` for zone files.
const MAX_ZONE_FILE: u64 = 10 << 20;

impl Location {
    pub fn utc() -> Self {
        Self { name: "UTC".to_owned(), zone: Arc::new(UTC.clone()) }
    }

    /// The name as written in the configuration (`Local` for the host's zone).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Go's `time.LoadLocation`: "" and "UTC" are UTC; "Local" is the host's zone (`TZ`, else
    /// /etc/localtime, else UTC); anything else is a TZif file under `ZONEINFO` (a directory;
    /// Go's zip form is not supported) or the system zone directories, matched case-sensitively.
    /// The file is read on every call, as Go does, so a tzdata update applies at the next reload.
    pub fn load(name: &str) -> Result<Self, TimeIntervalError> {
        if name.is_empty() || name == "UTC" {
            return Ok(Self::utc());
        }
        if name == "Local" {
            return Ok(Self { name: name.to_owned(), zone: local_zone() });
        }
        if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
            return Err(TimeIntervalError::InvalidLocationName);
        }
        let mut first_err = None;
        if let Some(dir) = std::env::var_os("ZONEINFO").filter(|dir| !dir.is_empty()) {
            let dir = dir.to_string_lossy();
            if !dir.ends_with(".zip") {
                match read_zone_file(&format!("{dir}/{name}")) {
                    Ok(data) => match Zone::parse(&data) {
                        Ok(zone) => return Ok(Self { name: name.to_owned(), zone: Arc::new(zone) }),
                        Err(err) => first_err = Some(err),
                    },
                    Err(ReadError::NotFound) => {}
                    Err(ReadError::Failed(err)) => first_err = Some(err),
                }
            }
        }
        match load_from(name, &ZONE_SOURCES) {
            Ok(zone) => Ok(Self { name: name.to_owned(), zone: Arc::new(zone) }),
            Err(err) => Err(first_err.unwrap_or(err)),
        }
    }
}

/// Go loads `Local` once per process, on first use.
fn local_zone() -> Arc<Zone> {
    static LOCAL: OnceLock<Arc<Zone>> = OnceLock::new();
    LOCAL.get_or_init(|| Arc::new(init_local())).clone()
}

/// Go's `initLocal`: `TZ` unset is /etc/localtime, `TZ=""` is UTC, `TZ=[:]/path` is that file,
/// `TZ=[:]Name` is a zone name; whatever fails to load falls back to UTC.
fn init_local() -> Zone {
    let loaded = match std::env::var_os("TZ") {
        None => load_from("localtime", &["/etc"]).ok(),
        Some(tz) => {
            let tz = tz.to_string_lossy();
            let tz = tz.strip_prefix(':').unwrap_or(&tz);
            if tz.starts_with('/') {
                load_from(tz, &[""]).ok()
            } else if !tz.is_empty() && tz != "UTC" {
                load_from(tz, &ZONE_SOURCES).ok()
            } else {
                None
            }
        }
    };
    loaded.unwrap_or_else(|| UTC.clone())
}

enum ReadError {
    NotFound,
    Failed(TimeIntervalError),
}

/// Go's `loadLocation`: the first source that has a valid file wins; otherwise the first error
/// other than "not found", else "unknown time zone".
fn load_from(name: &str, sources: &[&str]) -> Result<Zone, TimeIntervalError> {
    let mut first_err = None;
    for source in sources {
        let path = if source.is_empty() { name.to_owned() } else { format!("{source}/{name}") };
        let err = match read_zone_file(&path) {
            Ok(data) => match Zone::parse(&data) {
                Ok(zone) => return Ok(zone),
                Err(err) => err,
            },
            Err(ReadError::NotFound) => continue,
            Err(ReadError::Failed(err)) => err,
        };
        first_err.get_or_insert(err);
    }
    Err(first_err.unwrap_or_else(|| TimeIntervalError::UnknownTimeZone(name.to_owned())))
}

fn read_zone_file(path: &str) -> Result<Vec<u8>, ReadError> {
    let os_error = |err: io::Error| match err.kind() {
        io::ErrorKind::NotFound => ReadError::NotFound,
        _ => ReadError::Failed(TimeIntervalError::TimeZoneRead(go_errno_text(&err))),
    };
    if path.contains('\0') {
        // Go's syscall layer refuses such a path with EINVAL.
        return Err(ReadError::Failed(TimeIntervalError::TimeZoneRead("invalid argument".to_owned())));
    }
    let file = std::fs::File::open(path).map_err(os_error)?;
    let mut data = Vec::new();
    file.take(MAX_ZONE_FILE + 1).read_to_end(&mut data).map_err(os_error)?;
    if data.len() as u64 > MAX_ZONE_FILE {
        return Err(ReadError::Failed(TimeIntervalError::TimeZoneFileTooLarge(path.to_owned())));
    }
    Ok(data)
}

/// Go words an errno as the C library's `strerror` with a lower-case first letter.
fn go_errno_text(err: &io::Error) -> String {
    let text = match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => err.to_string(),
    };
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Go's `time.Location`, without its names (nothing here prints them) and without its cache
/// (which returns what the lookup would).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    types: Vec<ZoneType>,
    transitions: Vec<Transition>,
    /// The TZif footer, a POSIX TZ rule for times after the last transition.
    extend: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ZoneType {
    offset: i64,
    is_dst: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transition {
    when: i64,
    index: usize,
}

/// The offset in force and the span `[start, end)` over which the lookup knows it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    offset: i64,
    start: i64,
    end: i64,
    is_dst: bool,
}

const ALPHA: i64 = i64::MIN;
const OMEGA: i64 = i64::MAX;
const SECONDS_PER_DAY: i64 = 86_400;

/// Go's reader over TZif data: a short read empties it and marks it failed.
struct TzData<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> TzData<'a> {
    fn read(&mut self, n: usize) -> &'a [u8] {
        if self.rest.len() < n {
            self.rest = &[];
            self.failed = true;
            return &[];
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    fn big4(&mut self) -> Option<u32> {
        match *self.read(4) {
            [a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        }
    }

    fn big8(&mut self) -> Option<u64> {
        let high = self.big4();
        let low = self.big4();
        Some(u64::from(high?) << 32 | u64::from(low?))
    }

    fn byte(&mut self) -> Option<u8> {
        self.read(1).first().copied()
    }
}

/// Go's UTC location: no zone types at all.
static UTC: Zone = Zone { types: Vec::new(), transitions: Vec::new(), extend: String::new() };

impl Zone {
    /// Go 1.19's `LoadLocationFromTZData`: version 1 data, or for versions 2 and 3 the 64-bit data
    /// after it, then the footer between two newlines. Leap seconds are skipped, as Go does.
    fn parse(data: &[u8]) -> Result<Self, TimeIntervalError> {
        let bad = || TimeIntervalError::MalformedTimeZone;
        let mut d = TzData { rest: data, failed: false };
        if d.read(4) != b"TZif" {
            return Err(bad());
        }
        let is64 = match d.read(16).first() {
            Some(0) => false,
            Some(b'2' | b'3') => true,
            _ => return Err(bad()),
        };
        // UTC/local indicators, standard/wall indicators, leap seconds, transitions, types, chars.
        let read_counts = |d: &mut TzData| -> Result<[usize; 6], TimeIntervalError> {
            let mut counts = [0usize; 6];
            for count in &mut counts {
                *count = usize::try_from(d.big4().ok_or_else(bad)?).map_err(|_| bad())?;
            }
            Ok(counts)
        };
        let mut counts = read_counts(&mut d)?;
        if is64 {
            let [utc_local, std_wall, leap, times, types, chars] = counts;
            // Saturating, so that hostile counts cannot overflow on 32-bit targets.
            let skip = [times * 5, types * 6, chars, leap * 8, std_wall, utc_local, 4 + 16]
                .into_iter()
                .fold(0usize, usize::saturating_add);
            d.read(skip);
            counts = read_counts(&mut d)?;
        }
        let [utc_local, std_wall, leap, times, types, chars] = counts;
        let size = if is64 { 8 } else { 4 };
        let mut tx_times = TzData { rest: d.read(times.saturating_mul(size)), failed: false };
        let tx_types = d.read(times);
        let mut type_data = TzData { rest: d.read(types.saturating_mul(6)), failed: false };
        let abbrev = d.read(chars);
        d.read(leap.saturating_mul(size + 4));
        d.read(std_wall);
        d.read(utc_local);
        if d.failed {
            return Err(bad());
        }
        let rest = d.rest;
        let extend = match rest {
            [b'\n', footer @ .., b'\n'] if rest.len() > 2 => String::from_utf8_lossy(footer).into_owned(),
            _ => String::new(),
        };
        if types == 0 {
            return Err(bad());
        }
        let mut zone_types = Vec::with_capacity(types);
        for _ in 0..types {
            let offset = type_data.big4().ok_or_else(bad)? as i32;
            let is_dst = type_data.byte().ok_or_else(bad)? != 0;
            let abbrev_index = type_data.byte().ok_or_else(bad)?;
            if usize::from(abbrev_index) >= abbrev.len() {
                return Err(bad());
            }
            zone_types.push(ZoneType { offset: i64::from(offset), is_dst });
        }
        let mut transitions = Vec::with_capacity(times.max(1));
        for &index in tx_types {
            let when = if is64 {
                tx_times.big8().ok_or_else(bad)? as i64
            } else {
                i64::from(tx_times.big4().ok_or_else(bad)? as i32)
            };
            let index = usize::from(index);
            if index >= zone_types.len() {
                return Err(bad());
            }
            transitions.push(Transition { when, index });
        }
        if transitions.is_empty() {
            transitions.push(Transition { when: ALPHA, index: 0 });
        }
        Ok(Self { types: zone_types, transitions, extend })
    }

    /// Go's `Location.lookup`.
    fn lookup(&self, sec: i64) -> Period {
        let utc = Period { offset: 0, start: ALPHA, end: OMEGA, is_dst: false };
        let Some(first) = self.transitions.first() else {
            let Some(zone) = self.types.first() else { return utc };
            return Period { offset: zone.offset, start: ALPHA, end: OMEGA, is_dst: zone.is_dst };
        };
        if sec < first.when {
            let zone = self.types[self.first_zone()];
            return Period { offset: zone.offset, start: ALPHA, end: first.when, is_dst: zone.is_dst };
        }
        let (mut lo, mut hi, mut end) = (0, self.transitions.len(), OMEGA);
        while hi - lo > 1 {
            let m = lo + (hi - lo) / 2;
            let limit = self.transitions[m].when;
            if sec < limit {
                end = limit;
                hi = m;
            } else {
                lo = m;
            }
        }
        let tx = self.transitions[lo];
        let zone = self.types[tx.index];
        if lo == self.transitions.len() - 1
            && !self.extend.is_empty()
            && let Some(period) = tzset(&self.extend, tx.when, sec)
        {
            return period;
        }
        Period { offset: zone.offset, start: tx.when, end, is_dst: zone.is_dst }
    }

    /// Go's `lookupFirstZone`: the type for times before the first transition.
    fn first_zone(&self) -> usize {
        if !self.transitions.iter().any(|tx| tx.index == 0) {
            return 0;
        }
        if let Some(first) = self.transitions.first()
            && self.types[first.index].is_dst
            && let Some(zi) = (0..first.index).rev().find(|&zi| !self.types[zi].is_dst)
        {
            return zi;
        }
        self.types.iter().position(|zone| !zone.is_dst).unwrap_or(0)
    }

    /// Wall-clock fields of the instant `sec` in this zone, as Go's `Time` accessors compute them.
    fn civil(&self, sec: i64) -> Civil {
        Civil::from_local_seconds(sec.saturating_add(self.lookup(sec).offset))
    }

    /// Go's `time.Date` (fields already normalised except the month) for this zone: the wall time
    /// is resolved with the offset found for it read as UTC, corrected once if that offset does
    /// not hold at the result, so times in DST gaps and overlaps land where Go puts them.
    fn date(&self, year: i64, month: i64, day: i64, seconds_of_day: i64) -> i64 {
        let (year, month) = (year + (month - 1).div_euclid(12), (month - 1).rem_euclid(12) + 1);
        let days = days_from_civil(year, month, 1) + day - 1;
        let unix = days.saturating_mul(SECONDS_PER_DAY).saturating_add(seconds_of_day);
        let period = self.lookup(unix);
        let mut offset = period.offset;
        if offset != 0 {
            let utc = unix.saturating_sub(offset);
            if utc < period.start || utc >= period.end {
                offset = self.lookup(utc).offset;
            }
        }
        unix.saturating_sub(offset)
    }
}

/// Alertmanager's `daysInMonth`: the span from this month's first midnight to the next month's
/// (Go's `AddDate(0, 1, 0)`), in whole 24-hour days, so DST makes months shorter or longer.
fn days_in_month(zone: &Zone, t: &Civil) -> i64 {
    let month_start = zone.date(t.year, t.month, 1, 0);
    let s = zone.civil(month_start);
    let seconds_of_day = (s.hour * 60 + s.minute) * 60 + s.second;
    let month_end = zone.date(s.year, s.month + 1, s.day, seconds_of_day);
    let diff = month_end.saturating_sub(month_start);
    // Go's Duration.Hours(): whole hours plus the fraction, then truncated toward zero.
    let hours = (diff / 3600) as f64 + (diff % 3600) as f64 / 3600.0;
    (hours / 24.0) as i64
}

fn clamp(n: i64, min: i64, max: i64) -> i64 {
    if n <= min {
        min
    } else if n >= max {
        max
    } else {
        n
    }
}

/// Go's `tzset`: the period of a POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`) holding at `sec`,
/// or `None` if the rule does not parse (the caller then keeps the last transition's type).
fn tzset(rule: &str, last_tx: i64, sec: i64) -> Option<Period> {
    let (_, s) = tzset_name(rule)?;
    let (std_offset, s) = tzset_offset(s)?;
    let std_offset = -std_offset;
    if s.is_empty() || s.starts_with(',') {
        return Some(Period { offset: std_offset, start: last_tx, end: OMEGA, is_dst: false });
    }
    let (_, s) = tzset_name(s)?;
    let (dst_offset, s) = if s.is_empty() || s.starts_with(',') {
        (std_offset + 3600, s)
    } else {
        let (offset, s) = tzset_offset(s)?;
        (-offset, s)
    };
    // POSIX's default rule is the US one.
    let s = if s.is_empty() { ",M3.2.0,M11.1.0" } else { s };
    let s = s.strip_prefix(',').or_else(|| s.strip_prefix(';'))?;
    let (start_rule, s) = tzset_rule(s)?;
    let s = s.strip_prefix(',')?;
    let (end_rule, s) = tzset_rule(s)?;
    if !s.is_empty() {
        return None;
    }

    // Go takes the year from the UTC date of `sec` and keeps its truncating remainder.
    let days = sec.div_euclid(SECONDS_PER_DAY);
    let (year, _, _) = civil_from_days(days);
    let year_start_days = days_from_civil(year, 1, 1);
    let ysec = (days - year_start_days) * SECONDS_PER_DAY + sec % SECONDS_PER_DAY;
    let abs = year_start_days.saturating_mul(SECONDS_PER_DAY);

    let mut start_sec = tzrule_time(year, start_rule, std_offset);
    let mut end_sec = tzrule_time(year, end_rule, dst_offset);
    let (mut std_offset, mut dst_offset) = (std_offset, dst_offset);
    let (mut dst_is_dst, mut std_is_dst) = (true, false);
    // Southern-hemisphere rules end DST before they start it.
    if end_sec < start_sec {
        std::mem::swap(&mut start_sec, &mut end_sec);
        std::mem::swap(&mut std_offset, &mut dst_offset);
        std::mem::swap(&mut std_is_dst, &mut dst_is_dst);
    }
    let at = |year_seconds: i64| abs.saturating_add(year_seconds);
    Some(if ysec < start_sec {
        Period { offset: std_offset, start: abs, end: at(start_sec), is_dst: std_is_dst }
    } else if ysec >= end_sec {
        Period { offset: std_offset, start: at(end_sec), end: at(365 * SECONDS_PER_DAY), is_dst: std_is_dst }
    } else {
        Period { offset: dst_offset, start: at(start_sec), end: at(end_sec), is_dst: dst_is_dst }
    })
}

fn tzset_name(s: &str) -> Option<(&str, &str)> {
    if let Some(quoted) = s.strip_prefix('<') {
        let close = quoted.find('>')?;
        return Some((&quoted[..close], &quoted[close + 1..]));
    }
    match s.find(|c: char| c.is_ascii_digit() || matches!(c, ',' | '-' | '+')) {
        Some(i) if i < 3 => None,
        Some(i) => Some((&s[..i], &s[i..])),
        None if s.len() < 3 => None,
        None => Some((s, "")),
    }
}

/// `[+-]hh[:mm[:ss]]`, hours up to 24*7 as Go allows.
fn tzset_offset(s: &str) -> Option<(i64, &str)> {
    let (negative, s) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let (hours, mut s) = tzset_num(s, 0, 24 * 7)?;
    let mut offset = hours * 3600;
    if let Some(rest) = s.strip_prefix(':') {
        let (minutes, rest) = tzset_num(rest, 0, 59)?;
        offset += minutes * 60;
        s = rest;
        if let Some(rest) = s.strip_prefix(':') {
            let (seconds, rest) = tzset_num(rest, 0, 59)?;
            offset += seconds;
            s = rest;
        }
    }
    Some((if negative { -offset } else { offset }, s))
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    kind: RuleKind,
    /// Local time of day of the transition, in seconds.
    time: i64,
}

#[derive(Debug, Clone, Copy)]
enum RuleKind {
    /// `Jn`: day 1..=365, February 29th never counted.
    Julian(i64),
    /// `n`: day 0..=365, February 29th counted.
    DayOfYear(i64),
    /// `Mm.w.d`: weekday `d` of week `w` (5 = last) of month `m`.
    MonthWeekDay { month: i64, week: i64, weekday: i64 },
}

fn tzset_rule(s: &str) -> Option<(Rule, &str)> {
    let (kind, s) = if let Some(s) = s.strip_prefix('J') {
        let (day, s) = tzset_num(s, 1, 365)?;
        (RuleKind::Julian(day), s)
    } else if let Some(s) = s.strip_prefix('M') {
        let (month, s) = tzset_num(s, 1, 12)?;
        let (week, s) = tzset_num(s.strip_prefix('.')?, 1, 5)?;
        let (weekday, s) = tzset_num(s.strip_prefix('.')?, 0, 6)?;
        (RuleKind::MonthWeekDay { month, week, weekday }, s)
    } else {
        let (day, s) = tzset_num(s, 0, 365)?;
        (RuleKind::DayOfYear(day), s)
    };
    // POSIX's default transition time is 02:00.
    let (time, s) = match s.strip_prefix('/') {
        Some(rest) => tzset_offset(rest)?,
        None => (2 * 3600, s),
    };
    Some((Rule { kind, time }, s))
}

/// Go's `tzsetNum`: decimal digits, failing as soon as the value exceeds `max`.
fn tzset_num(s: &str, min: i64, max: i64) -> Option<(i64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if s.is_empty() {
        return None;
    }
    let mut num = 0;
    for c in s[..digits].bytes() {
        num = num * 10 + i64::from(c - b'0');
        if num > max {
            return None;
        }
    }
    if digits == 0 || num < min {
        return None;
    }
    Some((num, &s[digits..]))
}

/// Go's `tzruleTime`: seconds from the start of `year` (UTC) to the rule's transition.
fn tzrule_time(year: i64, rule: Rule, offset: i64) -> i64 {
    let days = match rule.kind {
        RuleKind::Julian(day) => day - 1 + i64::from(is_leap(year) && day >= 60),
        RuleKind::DayOfYear(day) => day,
        RuleKind::MonthWeekDay { month, week, weekday } => {
            // Zeller's congruence for the weekday of the month's first day.
            let m1 = (month + 9) % 12 + 1;
            let yy0 = if month <= 2 { year - 1 } else { year };
            let (yy1, yy2) = (yy0 / 100, yy0 % 100);
            let mut dow = ((26 * m1 - 2) / 10 + 1 + yy2 + yy2 / 4 + yy1 / 4 - 2 * yy1) % 7;
            if dow < 0 {
                dow += 7;
            }
            let mut d = weekday - dow;
            if d < 0 {
                d += 7;
            }
            for _ in 1..week {
                if d + 7 >= days_in(month, year) {
                    break;
                }
                d += 7;
            }
            d + days_from_civil(year, month, 1) - days_from_civil(year, 1, 1)
        }
    };
    days * SECONDS_PER_DAY + rule.time - offset
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// ---------------------------------------------------------------------------------------------
// Proleptic Gregorian calendar arithmetic (Go's, total over i64 seconds).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    /// 0 = Sunday, as Go's `time.Weekday`.
    weekday: i64,
}

impl Civil {
    fn from_local_seconds(local: i64) -> Self {
        let days = local.div_euclid(SECONDS_PER_DAY);
        let secs = local.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs % 3600 / 60,
            second: secs % 60,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7),
        }
    }
}

use crate::model::units::{civil_from_days, days_from_civil};

/// Whole seconds since the epoch, rounded down as Go's `Unix()` is for times before it.
fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            -secs - i64::from(before.subsec_nanos() > 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `time.RFC822Z` layout, "02 Jan 06 15:04 -0700". The Go tests ignore parse errors and
    /// so use the zero time (year 1) for a string that does not fit the layout.
    fn at(s: &str) -> SystemTime {
        match chrono::DateTime::parse_from_str(s, "%d %b %y %H:%M %z") {
            Ok(t) if s.as_bytes().get(2) == Some(&b' ') => t.into(),
            _ => UNIX_EPOCH - std::time::Duration::from_secs(62_135_596_800),
        }
    }

    fn location(name: &str) -> Option<Location> {
        Some(Location::load(name).expect("test zone is installed"))
    }

    fn weekdays(ranges: &[(i64, i64)]) -> Option<Vec<WeekdayRange>> {
        Some(ranges.iter().map(|&(begin, end)| WeekdayRange { begin, end }).collect())
    }

    fn days(ranges: &[(i64, i64)]) -> Option<Vec<DayOfMonthRange>> {
        Some(ranges.iter().map(|&(begin, end)| DayOfMonthRange { begin, end }).collect())
    }

    fn months(ranges: &[(i64, i64)]) -> Option<Vec<MonthRange>> {
        Some(ranges.iter().map(|&(begin, end)| MonthRange { begin, end }).collect())
    }

    fn years(ranges: &[(i64, i64)]) -> Option<Vec<YearRange>> {
        Some(ranges.iter().map(|&(begin, end)| YearRange { begin, end }).collect())
    }

    fn times(ranges: &[(i64, i64)]) -> Option<Vec<TimeRange>> {
        Some(
            ranges.iter().map(|&(start_minute, end_minute)| TimeRange { start_minute, end_minute }).collect(),
        )
    }

    fn parse(yaml: &str) -> Result<Vec<TimeInterval>, String> {
        serde_norway::from_str(yaml).map_err(|err| err.to_string())
    }

    fn contains_any(intervals: &[TimeInterval], s: &str) -> bool {
        intervals.iter().any(|interval| interval.contains(at(s)))
    }

    // timeIntervalTestCases / TestContainsTime.
    #[test]
    fn contains_time() {
        let cases: Vec<(TimeInterval, &[&str], &[&str])> = vec![
            (
                TimeInterval::default(),
                &["02 Jan 06 15:04 +0000", "03 Jan 07 10:04 +0000", "04 Jan 06 09:04 +0000"],
                &[],
            ),
            (
                // 9am to 5pm, monday to friday
                TimeInterval {
                    times: times(&[(540, 1020)]),
                    weekdays: weekdays(&[(1, 5)]),
                    ..Default::default()
                },
                &["04 May 20 15:04 +0000", "05 May 20 10:04 +0000", "09 Jun 20 09:04 +0000"],
                &["03 May 20 15:04 +0000", "04 May 20 08:59 +0000", "05 May 20 05:00 +0000"],
            ),
            (
                // Easter 2020
                TimeInterval {
                    days_of_month: days(&[(4, 6)]),
                    months: months(&[(4, 4)]),
                    years: years(&[(2020, 2020)]),
                    ..Default::default()
                },
                &["04 Apr 20 15:04 +0000", "05 Apr 20 00:00 +0000", "06 Apr 20 23:05 +0000"],
                &[
                    "03 May 18 15:04 +0000",
                    "03 Apr 20 23:59 +0000",
                    "04 Jun 20 23:59 +0000",
                    "06 Apr 19 23:59 +0000",
                    "07 Apr 20 00:00 +0000",
                ],
            ),
            (
                // Check negative days of month, last 3 days of each month
                TimeInterval { days_of_month: days(&[(-3, -1)]), ..Default::default() },
                &[
                    "31 Jan 20 15:04 +0000",
                    "30 Jan 20 15:04 +0000",
                    "29 Jan 20 15:04 +0000",
                    "30 Jun 20 00:00 +0000",
                    "29 Feb 20 23:05 +0000",
                ],
                &[
                    "03 May 18 15:04 +0000",
                    "27 Jan 20 15:04 +0000",
                    "03 Apr 20 23:59 +0000",
                    "04 Jun 20 23:59 +0000",
                    "06 Apr 19 23:59 +0000",
                    "07 Apr 20 00:00 +0000",
                    "01 Mar 20 00:00 +0000",
                ],
            ),
            (
                // Check out of bound days are clamped to month boundaries
                TimeInterval {
                    months: months(&[(6, 6)]),
                    days_of_month: days(&[(-31, 31)]),
                    ..Default::default()
                },
                &["30 Jun 20 00:00 +0000", "01 Jun 20 00:00 +0000"],
                &["31 May 20 00:00 +0000", "1 Jul 20 00:00 +0000"],
            ),
            (
                // Check alternative timezones can be used to compare times.
                // AEST 9AM to 5PM, Monday to Friday.
                TimeInterval {
                    times: times(&[(540, 1020)]),
                    weekdays: weekdays(&[(1, 5)]),
                    location: location("Australia/Sydney"),
                    ..Default::default()
                },
                &["06 Apr 21 13:00 +1000"],
                &["06 Apr 21 13:00 +0000"],
            ),
            (
                // Check an alternative timezone during daylight savings time.
                TimeInterval {
                    times: times(&[(540, 1020)]),
                    weekdays: weekdays(&[(1, 5)]),
                    months: months(&[(11, 11)]),
                    location: location("Australia/Sydney"),
                    ..Default::default()
                },
                &["01 Nov 21 09:00 +1100", "31 Oct 21 22:00 +0000"],
                &["31 Oct 21 21:00 +0000"],
            ),
        ];
        for (interval, valid, invalid) in cases {
            for s in valid {
                assert!(interval.contains(at(s)), "{interval:?} should contain {s}");
            }
            for s in invalid {
                assert!(!interval.contains(at(s)), "{interval:?} should not contain {s}");
            }
        }
    }

    // timeStringTestCases / TestParseTimeString.
    #[test]
    fn parse_time_string() {
        let cases: [(&str, Option<(i64, i64)>); 8] = [
            ("{'start_time': '00:00', 'end_time': '24:00'}", Some((0, 1440))),
            ("{'start_time': '01:35', 'end_time': '17:39'}", Some((95, 1059))),
            ("{'start_time': '09:35', 'end_time': '09:39'}", Some((575, 579))),
            // Begin and End times are the same
            ("{'start_time': '17:31', 'end_time': '17:31'}", None),
            // End time out of range
            ("{'start_time': '12:30', 'end_time': '24:01'}", None),
            // Start time greater than End time
            ("{'start_time': '09:30', 'end_time': '07:41'}", None),
            // Start time out of range and greater than End time
            ("{'start_time': '24:00', 'end_time': '17:41'}", None),
            // No range specified
            ("{'start_time': '14:03'}", None),
        ];
        for (yaml, want) in cases {
            let got: Result<TimeRange, _> = serde_norway::from_str(yaml);
            match (got, want) {
                (Ok(range), Some((start_minute, end_minute))) => {
                    assert_eq!(range, TimeRange { start_minute, end_minute }, "{yaml}")
                }
                (Err(_), None) => {}
                (got, _) => panic!("{yaml}: unexpected {got:?}"),
            }
        }
    }

    struct UnmarshalCase {
        yaml: &'static str,
        want: Result<Vec<TimeInterval>, &'static str>,
        contains: &'static [&'static str],
        excludes: &'static [&'static str],
    }

    fn ok(yaml: &'static str, want: Vec<TimeInterval>) -> UnmarshalCase {
        UnmarshalCase { yaml, want: Ok(want), contains: &[], excludes: &[] }
    }

    fn err(yaml: &'static str, message: &'static str) -> UnmarshalCase {
        UnmarshalCase { yaml, want: Err(message), contains: &[], excludes: &[] }
    }

    // yamlUnmarshalTestCases / TestYamlUnmarshal. The Go test compares whole messages; ours carry
    // serde_norway's path and position around Alertmanager's message.
    #[test]
    fn yaml_unmarshal() {
        let business_hours = TimeInterval {
            weekdays: weekdays(&[(1, 5)]),
            times: times(&[(540, 1020)]),
            ..Default::default()
        };
        let cases = vec![
            UnmarshalCase {
                contains: &["08 Jul 20 09:00 +0000", "08 Jul 20 16:59 +0000"],
                excludes: &["08 Jul 20 05:00 +0000", "08 Jul 20 08:59 +0000"],
                ..ok(
                    "---\n- weekdays: ['monday:friday']\n  times:\n    - start_time: '09:00'\n      end_time: '17:00'\n",
                    vec![business_hours.clone()],
                )
            },
            UnmarshalCase {
                contains: &[
                    "27 Jan 21 09:00 +0000",
                    "28 Jan 21 16:59 +0000",
                    "29 Jan 21 13:00 +0000",
                    "31 Mar 25 13:00 +0000",
                    "31 Mar 25 13:00 +0000",
                    "31 Jan 35 13:00 +0000",
                ],
                excludes: &[
                    "30 Jan 21 13:00 +0000", // Saturday
                    "01 Apr 21 13:00 +0000", // 4th month
                    "30 Jan 26 13:00 +0000", // 2026
                    "31 Jan 35 17:01 +0000", // After 5pm
                ],
                ..ok(
                    "---\n  # Last week, excluding Saturday, of the first quarter of the year during business \
                     hours from 2020 to 2025 and 2030-2035\n- weekdays: ['monday:friday', 'sunday']\n  \
                     months: ['january:march']\n  days_of_month: ['-7:-1']\n  years: ['2020:2025', \
                     '2030:2035']\n  times:\n    - start_time: '09:00'\n      end_time: '17:00'\n",
                    vec![TimeInterval {
                        weekdays: weekdays(&[(1, 5), (0, 0)]),
                        times: times(&[(540, 1020)]),
                        months: months(&[(1, 3)]),
                        days_of_month: days(&[(-7, -1)]),
                        years: years(&[(2020, 2025), (2030, 2035)]),
                        location: None,
                    }],
                )
            },
            UnmarshalCase {
                contains: &["01 Apr 21 13:00 +0000"],
                ..ok(
                    "---\n- weekdays: ['monday:friday']\n  times:\n    - start_time: '09:00'\n      end_time: '17:00'",
                    vec![business_hours],
                )
            },
            // Invalid start time.
            err(
                "---\n- times:\n    - start_time: '01:99'\n      end_time: '23:59'",
                "couldn't parse timestamp 01:99, invalid format",
            ),
            // Invalid end time.
            err(
                "---\n- times:\n    - start_time: '00:00'\n      end_time: '99:99'",
                "couldn't parse timestamp 99:99, invalid format",
            ),
            // Start day before end day.
            err("---\n- weekdays: ['friday:monday']", "start day cannot be before end day"),
            // Invalid weekdays.
            err("---\n- weekdays: ['blurgsday:flurgsday']\n", "blurgsday is not a valid weekday"),
            // Numeric weekdays aren't allowed.
            err("---\n- weekdays: ['1:3']\n", "1 is not a valid weekday"),
            // Negative numeric weekdays aren't allowed.
            err("---\n- weekdays: ['-2:-1']\n", "-2 is not a valid weekday"),
            // 0 day of month.
            err("---\n- days_of_month: ['0']\n", "0 is not a valid day of the month: out of range"),
            // Start day of month < 0.
            err("---\n- days_of_month: ['-50:-20']\n", "-50 is not a valid day of the month: out of range"),
            // End day of month > 31.
            err("---\n- days_of_month: ['1:50']\n", "50 is not a valid day of the month: out of range"),
            // Negative indices should work.
            ok(
                "---\n- days_of_month: ['1:-1']\n",
                vec![TimeInterval { days_of_month: days(&[(1, -1)]), ..Default::default() }],
            ),
            // End day must be negative if begin day is negative.
            err("---\n- days_of_month: ['-15:5']\n", "end day must be negative if start day is negative"),
            // Negative end date before positive positive start date.
            err("---\n- days_of_month: ['10:-25']\n", "end day -25 is always before start day 10"),
            // Months should work regardless of case
            ok(
                "---\n- months: ['January:december']\n",
                vec![TimeInterval { months: months(&[(1, 12)]), ..Default::default() }],
            ),
            // Time zones may be specified by location.
            ok(
                "---\n- years: ['2020:2022']\n  location: 'Australia/Sydney'\n",
                vec![TimeInterval {
                    years: years(&[(2020, 2022)]),
                    location: location("Australia/Sydney"),
                    ..Default::default()
                }],
            ),
            // Invalid start month.
            err("---\n- months: ['martius:june']\n", "martius is not a valid month"),
            // Invalid end month.
            err("---\n- months: ['march:junius']\n", "junius is not a valid month"),
            // Start month after end month.
            err("---\n- months: ['december:january']\n", "end month january is before start month december"),
            // Start year after end year.
            err("---\n- years: ['2022:2020']\n", "end year 2020 is before start year 2022"),
        ];
        for case in cases {
            let got = parse(case.yaml);
            match (&got, &case.want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{}", case.yaml),
                (Err(got), Err(want)) => {
                    assert!(
                        got.contains(&format!(": {want} at line ")),
                        "{}: want {want:?}, got {got:?}",
                        case.yaml
                    )
                }
                _ => panic!("{}: want {:?}, got {got:?}", case.yaml, case.want),
            }
            let intervals = got.unwrap_or_default();
            for s in case.contains {
                assert!(contains_any(&intervals, s), "{} should contain {s}", case.yaml);
            }
            for s in case.excludes {
                assert!(!contains_any(&intervals, s), "{} should exclude {s}", case.yaml);
            }
        }
    }

    // completeTestCases / TestTimeIntervalComplete.
    #[test]
    fn time_interval_complete() {
        let cases: [(&str, &[&str], &[&str]); 2] = [
            (
                "---\nweekdays: ['monday:wednesday', 'saturday', 'sunday']\ntimes:\n  - start_time: '13:00'\n    \
                 end_time: '15:00'\ndays_of_month: ['1', '10', '20:-1']\nyears: ['2020:2023']\nmonths: \
                 ['january:march']\n",
                &["10 Jan 21 13:00 +0000", "30 Jan 21 14:24 +0000"],
                &["09 Jan 21 13:00 +0000", "20 Jan 21 12:59 +0000", "02 Feb 21 13:00 +0000"],
            ),
            (
                // Check for broken clamping (clamping begin date after end of month to the end of the month)
                "---\ndays_of_month: ['30:31']\nyears: ['2020:2023']\nmonths: ['february']\n",
                &[],
                &["28 Feb 21 13:00 +0000"],
            ),
        ];
        for (yaml, contains, excludes) in cases {
            let interval: TimeInterval = serde_norway::from_str(yaml).expect("test case parses");
            for s in contains {
                assert!(interval.contains(at(s)), "{yaml} should contain {s}");
            }
            for s in excludes {
                assert!(!interval.contains(at(s)), "{yaml} should exclude {s}");
            }
        }
    }

    // Behaviour beyond the Go tests, each checked against Alertmanager 0.25 (amtool or its package).

    #[test]
    fn empty_list_matches_nothing_but_null_matches_everything() {
        let t = at("08 Jul 20 09:00 +0000");
        for field in ["times", "weekdays", "days_of_month", "months", "years"] {
            let empty = parse(&format!("- {field}: []")).expect("parses");
            assert!(!contains_any(&empty, "08 Jul 20 09:00 +0000"), "{field}: []");
            let null: Vec<TimeInterval> = parse(&format!("- {field}: ~")).expect("parses");
            assert!(null[0].contains(t), "{field}: ~");
        }
        assert!(parse("- ~").expect("parses")[0].contains(t));
    }

    #[test]
    fn null_elements_are_unvalidated_zero_ranges() {
        let sunday = at("05 Jul 20 12:00 +0000");
        let got = parse("- weekdays: [null]").expect("parses");
        assert_eq!(got[0].weekdays, weekdays(&[(0, 0)]));
        assert!(got[0].contains(sunday));
        // Day 0 and the 00:00-00:00 time range can never match.
        assert!(!parse("- days_of_month: [~]").expect("parses")[0].contains(sunday));
        assert!(!parse("- times: [~]").expect("parses")[0].contains(sunday));
        // A quoted 'null' is text, and an invalid weekday.
        assert!(parse("- weekdays: ['null']").is_err());
    }

    #[test]
    fn months_and_years_are_not_range_checked() {
        let got = parse("- months: ['13', '0:2']\n  years: ['-5:0']").expect("parses");
        assert_eq!(got[0].months, months(&[(13, 13), (0, 2)]));
        assert_eq!(got[0].years, years(&[(-5, 0)]));
        let message = "14:13".parse::<MonthRange>().expect_err("reversed").to_string();
        assert_eq!(message, "end month  is before start month ");
        let message = "december:1".parse::<MonthRange>().expect_err("reversed").to_string();
        assert_eq!(message, "end month january is before start month december");
    }

    #[test]
    fn raw_scalar_text_is_parsed() {
        // yaml.v2 hands over the scalar's text, so YAML number forms are not numbers here.
        assert_eq!(
            parse("- days_of_month: [1, '+2', 03]").expect("parses")[0].days_of_month,
            days(&[(1, 1), (2, 2), (3, 3)])
        );
        let message = parse("- days_of_month: [0x10]").expect_err("hex");
        assert!(message.contains("strconv.Atoi: parsing \"0x10\": invalid syntax"), "{message}");
        let message = parse("- years: ['99999999999999999999']").expect_err("overflow");
        assert!(
            message.contains("strconv.Atoi: parsing \"99999999999999999999\": value out of range"),
            "{message}"
        );
        let message = parse("- days_of_month: ['1:']").expect_err("empty member");
        assert!(message.contains("strconv.Atoi: parsing \"\": invalid syntax"), "{message}");
    }

    #[test]
    fn range_errors() {
        let cases = [
            ("monday:tuesday:friday", "couldn't parse range monday:tuesday:friday, invalid format"),
            ("Monday:", " is not a valid weekday"),
            ("FUNDAY", "funday is not a valid weekday"),
            ("SATURDAY:sunday", "start day cannot be before end day"),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<WeekdayRange>().expect_err(input).to_string(), want);
        }
        assert_eq!("-31:-1".parse::<DayOfMonthRange>(), Ok(DayOfMonthRange { begin: -31, end: -1 }));
        // -23 is the 5th in a 28-day month, -24 the 4th.
        assert_eq!("5:-23".parse::<DayOfMonthRange>(), Ok(DayOfMonthRange { begin: 5, end: -23 }));
        assert_eq!(
            "5:-24".parse::<DayOfMonthRange>().map_err(|e| e.to_string()),
            Err("end day -24 is always before start day 5".to_owned())
        );
        assert_eq!(
            "-1:-2".parse::<DayOfMonthRange>().map_err(|e| e.to_string()),
            Err("end day -2 is always before start day -1".to_owned())
        );
    }

    #[test]
    fn clock_format() {
        for good in ["00:00", "09:59", "19:00", "23:59", "24:00"] {
            assert!(parse_clock(good).is_ok(), "{good}");
        }
        for bad in ["9:00", "24:01", "25:00", "12:60", "12:5", "12-30", "", "12:30 ", "١٢:٣٠", "12:30\n"]
        {
            assert_eq!(parse_clock(bad), Err(TimeIntervalError::TimestampFormat(bad.to_owned())), "{bad}");
        }
        assert_eq!(TimeRange::parse("", "10:00"), Err(TimeIntervalError::MissingTime));
        assert_eq!(TimeRange::parse("10:00", "10:00"), Err(TimeIntervalError::TimeOrder));
    }

    #[test]
    fn atoi_matches_go() {
        assert_eq!(go_atoi("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(go_atoi("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(go_atoi("+007"), Ok(7));
        for (input, kind) in [
            ("9223372036854775808", AtoiError::Range),
            ("99999999999999999999x", AtoiError::Range),
            ("9999x99999999999999999", AtoiError::Syntax),
            ("1_000", AtoiError::Syntax),
            (" 1", AtoiError::Syntax),
            ("-", AtoiError::Syntax),
            ("", AtoiError::Syntax),
        ] {
            assert_eq!(go_atoi(input), Err(TimeIntervalError::Atoi(input.to_owned(), kind)), "{input:?}");
        }
        assert_eq!(go_quote("a\"b\\c\td\u{7f}é\u{a0}"), "\"a\\\"b\\\\c\\td\\x7fé\\u00a0\"");
    }

    #[test]
    fn named_intervals() {
        let yaml = "- name: office\n  time_intervals:\n  - weekdays: [saturday]\n  - weekdays: [monday]\n- name: never\n  time_intervals: []\n- name: nil\n- ~";
        let named: Vec<NamedTimeInterval> = serde_norway::from_str(yaml).expect("parses");
        assert_eq!(named.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["office", "never", "nil", ""]);
        assert!(named[0].contains(at("06 Jul 20 12:00 +0000")));
        assert!(!named[0].contains(at("07 Jul 20 12:00 +0000")));
        assert!(!named[1].contains(at("07 Jul 20 12:00 +0000")));
        assert!(!named[2].contains(at("07 Jul 20 12:00 +0000")));

        let missing: Result<Vec<NamedTimeInterval>, _> = serde_norway::from_str("- time_intervals: []");
        assert!(missing.expect_err("no name").to_string().contains("missing name in time interval"));

        #[derive(Debug, Deserialize)]
        struct Config {
            #[serde(default, deserialize_with = "deserialize_mute_time_intervals")]
            mute_time_intervals: Vec<NamedTimeInterval>,
            #[serde(default, deserialize_with = "deserialize_time_intervals")]
            time_intervals: Vec<NamedTimeInterval>,
        }
        let config: Config =
            serde_norway::from_str("mute_time_intervals: [{name: a}]\ntime_intervals: ~").expect("parses");
        assert_eq!((config.mute_time_intervals.len(), config.time_intervals.len()), (1, 0));
        let missing =
            serde_norway::from_str::<Config>("mute_time_intervals: [{name: ''}]").expect_err("empty name");
        assert!(missing.to_string().contains("missing name in mute time interval"), "{missing}");
    }

    #[test]
    fn strict_fields() {
        assert!(parse("- weekday: [monday]").is_err());
        assert!(parse("- times: [{start_time: '01:00', end_time: '02:00', extra: 1}]").is_err());
        assert!(serde_norway::from_str::<Vec<NamedTimeInterval>>("- {name: a, extra: 1}").is_err());
        assert!(parse("- weekdays: monday").is_err());
    }

    #[test]
    fn locations() {
        assert_eq!(Location::load("").map(|l| l.name().to_owned()), Ok("UTC".to_owned()));
        for (name, want) in [
            ("../etc/passwd", TimeIntervalError::InvalidLocationName),
            ("/etc/localtime", TimeIntervalError::InvalidLocationName),
            ("\\x", TimeIntervalError::InvalidLocationName),
            ("Mars/Olympus_Mons", TimeIntervalError::UnknownTimeZone("Mars/Olympus_Mons".to_owned())),
            ("europe/berlin", TimeIntervalError::UnknownTimeZone("europe/berlin".to_owned())),
            ("Europe", TimeIntervalError::TimeZoneRead("is a directory".to_owned())),
            ("UTC/x", TimeIntervalError::TimeZoneRead("not a directory".to_owned())),
            ("zone.tab", TimeIntervalError::MalformedTimeZone),
        ] {
            assert_eq!(Location::load(name), Err(want), "{name}");
        }
        assert!(Location::load("Local").is_ok());
        assert!(Location::load("./Europe/Berlin").is_ok());
        let message = parse("- location: Mars/Olympus_Mons").expect_err("unknown");
        assert!(message.contains("unknown time zone Mars/Olympus_Mons"), "{message}");
    }

    #[test]
    fn dst_shortens_days_of_month() {
        // March 2024 in Berlin is 31 days less an hour, which Alertmanager counts as 30 days.
        let last_day = parse("- days_of_month: ['-1']\n  location: Europe/Berlin").expect("parses");
        assert!(contains_any(&last_day, "30 Mar 24 12:00 +0000"));
        assert!(!contains_any(&last_day, "31 Mar 24 12:00 +0000"));
        // October gains the hour back and keeps its 31 days.
        assert!(contains_any(&last_day, "31 Oct 24 12:00 +0000"));
        let utc = parse("- days_of_month: ['-1']").expect("parses");
        assert!(contains_any(&utc, "31 Mar 24 12:00 +0000"));
    }

    #[test]
    fn posix_footer_rules_apply_after_the_last_transition() {
        let berlin = Location::load("Europe/Berlin").expect("installed");
        let summer = days_from_civil(2300, 7, 1) * SECONDS_PER_DAY;
        let winter = days_from_civil(2300, 1, 1) * SECONDS_PER_DAY;
        assert_eq!(berlin.zone.lookup(summer).offset, 7200);
        assert_eq!(berlin.zone.lookup(winter).offset, 3600);
        let sydney = Location::load("Australia/Sydney").expect("installed");
        assert_eq!(sydney.zone.lookup(summer).offset, 10 * 3600);
        assert_eq!(sydney.zone.lookup(winter).offset, 11 * 3600);
        let rule = tzset("<+0330>-3:30", 0, summer).expect("parses");
        assert_eq!((rule.offset, rule.end), (12_600, OMEGA));
        assert!(tzset("X1", 0, summer).is_none());
    }

    #[test]
    fn extreme_instants_do_not_overflow() {
        let yaml = "- days_of_month: ['-1']\n  location: Europe/Berlin\n- days_of_month: ['1:-1']\n  location: Local";
        let intervals = parse(yaml).expect("parses");
        let latest = UNIX_EPOCH + std::time::Duration::from_secs(i64::MAX.unsigned_abs());
        let earliest = UNIX_EPOCH - std::time::Duration::from_secs(i64::MAX.unsigned_abs());
        for at in [latest, earliest] {
            for interval in &intervals {
                let _ = interval.contains(at);
            }
        }
    }

    #[test]
    fn calendar_round_trips() {
        for days in (-1_000_000..1_000_000).step_by(7919) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(Civil::from_local_seconds(-1).weekday, 3);
        assert_eq!(unix_seconds(UNIX_EPOCH - std::time::Duration::from_millis(1)), -1);
    }
}
