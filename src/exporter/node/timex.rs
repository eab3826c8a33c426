//! Kernel clock discipline from adjtimex(2) (node_exporter collector/timex.go).

use super::CollectError;
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

const STA_NANO: i32 = 0x2000;
const TIME_ERROR: i32 = 5;
/// Frequencies are in parts per million with a 16-bit fractional part.
const PPM16FRAC: f64 = 1_000_000.0 * 65536.0;

pub fn collect(_config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    // SAFETY: modes = 0 makes adjtimex read-only; it fills the zeroed struct we own.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(CollectError::Io { path: "adjtimex(2)".into(), source: std::io::Error::last_os_error() });
    }
    let divisor = if tx.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    let g = |name: &str, help: &str, v: f64| MetricFamily::gauge(name, help).with_value(v);
    let c = |name: &str, help: &str, v: f64| MetricFamily::counter(name, help).with_value(v);
    Ok(vec![
        g(
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            if state == TIME_ERROR { 0.0 } else { 1.0 },
        ),
        g(
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            tx.offset as f64 / divisor,
        ),
        g(
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + tx.freq as f64 / PPM16FRAC,
        ),
        g("node_timex_maxerror_seconds", "Maximum error in seconds.", tx.maxerror as f64 / 1e6),
        g("node_timex_estimated_error_seconds", "Estimated error in seconds.", tx.esterror as f64 / 1e6),
        g("node_timex_status", "Value of the status array bits.", f64::from(tx.status)),
        g("node_timex_loop_time_constant", "Phase-locked loop time constant.", tx.constant as f64),
        g("node_timex_tick_seconds", "Seconds between clock ticks.", tx.tick as f64 / 1e6),
        g("node_timex_pps_frequency_hertz", "Pulse per second frequency.", tx.ppsfreq as f64 / PPM16FRAC),
        g("node_timex_pps_jitter_seconds", "Pulse per second jitter.", tx.jitter as f64 / divisor),
        g("node_timex_pps_shift_seconds", "Pulse per second interval duration.", f64::from(tx.shift)),
        g(
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            tx.stabil as f64 / PPM16FRAC,
        ),
        c(
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            tx.jitcnt as f64,
        ),
        c(
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            tx.calcnt as f64,
        ),
        c("node_timex_pps_error_total", "Pulse per second count of calibration errors.", tx.errcnt as f64),
        c(
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            tx.stbcnt as f64,
        ),
        g("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", f64::from(tx.tai)),
    ])
}
