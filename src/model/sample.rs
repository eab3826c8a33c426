//! What a sample is besides its labels: a time and a value, with one NaN reserved to end a series.

use std::time::{SystemTime, UNIX_EPOCH};

/// A sample's time: Unix milliseconds, as Prometheus stores and exchanges it.
pub type Timestamp = i64;

/// Prometheus's staleness marker: a NaN with this exact bit pattern. Scraping writes it when a
/// series disappears; queries stop the series there instead of looking back five minutes.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Only the marker's bits count: every other NaN is an ordinary value.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The wall clock as a sample time; a clock before 1970 reads as 0 rather than failing.
pub fn now_ms() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_marker_is_stale() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(0.0));
    }
}
