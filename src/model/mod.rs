//! The vocabulary every engine shares, as Prometheus's `model/` package: a series' labels, the
//! matchers that select series, sample times and the staleness marker, and the units configs
//! and APIs write (durations, byte sizes). A leaf: it imports no role and no engine, so the
//! store, PromQL, scraping and the APIs all speak of series in the same types.

pub mod gojson;
pub mod labels;
pub mod matcher;
pub mod sample;
pub mod units;

pub use labels::{Labels, METRIC_NAME};
pub use matcher::{BadMatcher, MatchOp, Matcher};
pub use sample::{STALE_NAN_BITS, Timestamp, is_stale_nan, now_ms, stale_nan};
