//! The numbers behind HAProxy's `show stat` columns, kept per frontend, backend and server.
//! Plain atomics: the request path only adds, readers (stats page, /metrics) only load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Counters {
    pub qcur: AtomicU64,
    pub qmax: AtomicU64,
    pub scur: AtomicU64,
    pub smax: AtomicU64,
    pub stot: AtomicU64,
    pub bin: AtomicU64,
    pub bout: AtomicU64,
    pub dreq: AtomicU64,
    pub ereq: AtomicU64,
    pub econ: AtomicU64,
    pub eresp: AtomicU64,
    pub wretr: AtomicU64,
    pub wredis: AtomicU64,
    pub lbtot: AtomicU64,
    pub req_tot: AtomicU64,
    pub conn_tot: AtomicU64,
    /// hrsp_1xx..hrsp_5xx, hrsp_other.
    pub hrsp: [AtomicU64; 6],
    pub cli_abrt: AtomicU64,
    pub srv_abrt: AtomicU64,
    pub session_rate: Rate,
    pub req_rate: Rate,
    pub conn_rate: Rate,
    pub times: Mutex<Times>,
    /// Milliseconds since `EPOCH` of the last session, 0 = never.
    pub last_session_ms: AtomicU64,
}

/// HAProxy averages its q/c/r/t times over the last 1024 requests; an exponential moving
/// average with the same window reads the same on a steady load.
#[derive(Default, Clone, Copy)]
pub struct Times {
    pub qtime_ms: f64,
    pub ctime_ms: f64,
    pub rtime_ms: f64,
    pub ttime_ms: f64,
    pub qtime_max_ms: f64,
    pub ctime_max_ms: f64,
    pub rtime_max_ms: f64,
    pub ttime_max_ms: f64,
    samples: u64,
}

impl Times {
    pub fn record(&mut self, queue: Duration, connect: Duration, response: Duration, total: Duration) {
        let window = (self.samples + 1).min(1024) as f64;
        self.samples += 1;
        let upd = |avg: &mut f64, max: &mut f64, d: Duration| {
            let ms = d.as_secs_f64() * 1000.0;
            *avg += (ms - *avg) / window;
            if ms > *max {
                *max = ms;
            }
        };
        upd(&mut self.qtime_ms, &mut self.qtime_max_ms, queue);
        upd(&mut self.ctime_ms, &mut self.ctime_max_ms, connect);
        upd(&mut self.rtime_ms, &mut self.rtime_max_ms, response);
        upd(&mut self.ttime_ms, &mut self.ttime_max_ms, total);
    }
}

/// Events in the current second, the previous second's count, and the highest seen: what the
/// `rate`, `rate_max` columns show. Lock-free: every request hits several of these.
#[derive(Default)]
pub struct Rate {
    /// second << 32 | count in that second.
    current: AtomicU64,
    previous: AtomicU64,
    max: AtomicU64,
}

/// Whole seconds since the counters' epoch: rates only compare seconds with each other.
fn second_of(now: Instant) -> u64 {
    now.saturating_duration_since(epoch()).as_secs() & 0xFFFF_FFFF
}

impl Rate {
    pub fn hit(&self) {
        self.hit_at(Instant::now());
    }

    /// A hit at `now`, a time the caller already read (a request reads the clock once).
    pub fn hit_at(&self, now: Instant) {
        let sec = second_of(now);
        let mut cur = self.current.load(Ordering::Relaxed);
        loop {
            let (s, n) = (cur >> 32, cur & 0xFFFF_FFFF);
            // A hit stamped before a second another thread already opened (its clock was
            // read earlier) counts in that newer second rather than turning the rate back.
            let next = if s >= sec { (s << 32) | (n + 1) } else { (sec << 32) | 1 };
            match self.current.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if s < sec {
                        // The second rolled over: keep the finished second's count if adjacent.
                        self.previous.store(if s + 1 == sec { cur } else { 0 }, Ordering::Relaxed);
                    }
                    raise(&self.max, next & 0xFFFF_FFFF);
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// (current per-second rate, max).
    pub fn read(&self) -> (u64, u64) {
        self.read_at(Instant::now())
    }

    fn read_at(&self, now: Instant) -> (u64, u64) {
        let sec = second_of(now);
        let cur = self.current.load(Ordering::Relaxed);
        let max = self.max.load(Ordering::Relaxed);
        let (s, n) = (cur >> 32, cur & 0xFFFF_FFFF);
        if s == sec {
            let prev = self.previous.load(Ordering::Relaxed);
            let p = if prev >> 32 == sec.wrapping_sub(1) { prev & 0xFFFF_FFFF } else { 0 };
            (n.max(p), max)
        } else if s + 1 == sec {
            (n, max)
        } else {
            (0, max)
        }
    }
}

/// A process-wide reference instant, so timestamps fit in an atomic.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Raises a maximum. A plain read first: a maximum rarely moves, and reading a shared cache
/// line is cheap where a read-modify-write takes it from the other threads.
pub fn raise(max: &AtomicU64, value: u64) {
    if value > max.load(Ordering::Relaxed) {
        max.fetch_max(value, Ordering::Relaxed);
    }
}

pub fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

pub fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// One more current session; returns nothing, keeps `smax`.
    pub fn enter(&self) {
        let now = self.scur.fetch_add(1, Ordering::Relaxed) + 1;
        raise(&self.smax, now);
        self.session();
    }

    /// A session counted in `stot` and the session rate, without touching `scur`.
    pub fn session(&self) {
        self.session_at(Instant::now());
    }

    pub fn session_at(&self, now: Instant) {
        inc(&self.stot);
        self.session_rate.hit_at(now);
        let ms = now.saturating_duration_since(epoch()).as_millis() as u64;
        self.last_session_ms.store(ms.max(1), Ordering::Relaxed);
    }

    pub fn leave(&self) {
        // Saturating: a reload that swaps counters must never wrap a gauge below zero.
        let _ = self.scur.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v.saturating_sub(1)));
    }

    pub fn queue_enter(&self) {
        let now = self.qcur.fetch_add(1, Ordering::SeqCst) + 1;
        raise(&self.qmax, now);
    }

    pub fn queue_leave(&self) {
        let _ = self.qcur.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(1)));
    }

    pub fn response(&self, status: u16) {
        let slot = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        inc(&self.hrsp[slot]);
    }

    pub fn times(&self) -> Times {
        self.times.lock().map(|t| *t).unwrap_or_default()
    }

    pub fn record_times(&self, queue: Duration, connect: Duration, response: Duration, total: Duration) {
        if let Ok(mut t) = self.times.lock() {
            t.record(queue, connect, response, total);
        }
    }

    pub fn last_session_age(&self) -> Option<Duration> {
        match self.last_session_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(epoch().elapsed().saturating_sub(Duration::from_millis(ms))),
        }
    }
}

/// Request durations per backend, beyond what HAProxy exposes.
pub struct Histogram {
    pub bounds: &'static [f64],
    pub buckets: Vec<AtomicU64>,
    pub count: AtomicU64,
    /// Sum in microseconds, so it stays an integer atomic.
    pub sum_micros: AtomicU64,
}

pub const DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bounds: DURATION_BUCKETS,
            buckets: DURATION_BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b)
            && let Some(bucket) = self.buckets.get(i)
        {
            inc(bucket);
        }
        inc(&self.count);
        add(&self.sum_micros, u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_counts_per_second_and_never_turns_back() {
        let rate = Rate::default();
        let at = |s: u64, ms: u64| epoch() + Duration::from_secs(s) + Duration::from_millis(ms);
        for _ in 0..5 {
            rate.hit_at(at(100, 10));
        }
        assert_eq!(rate.read_at(at(100, 500)), (5, 5));
        // The next second: the finished one's count shows until this one passes it.
        rate.hit_at(at(101, 0));
        assert_eq!(rate.read_at(at(101, 1)), (5, 5));
        // A request stamped in second 100 that reports late counts in 101.
        rate.hit_at(at(100, 900));
        assert_eq!(rate.read_at(at(101, 2)), (5, 5));
        for _ in 0..5 {
            rate.hit_at(at(101, 3));
        }
        assert_eq!(rate.read_at(at(101, 4)), (7, 7));
        assert_eq!(rate.read_at(at(102, 0)), (7, 7));
        assert_eq!(rate.read_at(at(104, 0)), (0, 7));
    }
}
