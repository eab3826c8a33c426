//! Server selection, one function per HAProxy `balance` algorithm. Callers pass a snapshot of
//! the eligible servers (already filtered for health, admin state and backup rules), so each
//! algorithm is a pure choice plus a little state (round-robin weights, a rotating tie-break).

use crate::config::Balance;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Position of the server in its backend (stable across requests).
    pub index: usize,
    /// Effective weight (slowstart applied); 0 never reaches here.
    pub weight: u32,
    pub active: u64,
    /// At `maxconn`: not selectable now, but the request may queue for it.
    pub full: bool,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub enum Pick {
    Server(usize),
    /// Every eligible server is at maxconn: queue.
    AllFull,
    /// No eligible server at all: 503 at once.
    None,
}

pub struct Selector {
    balance: Balance,
    /// Smooth weighted round-robin (nginx's): current weight per server index.
    rr: Mutex<Vec<i64>>,
    tick: AtomicUsize,
}

impl Selector {
    pub fn new(balance: Balance, servers: usize) -> Self {
        Selector { balance, rr: Mutex::new(vec![0; servers]), tick: AtomicUsize::new(0) }
    }

    pub fn pick(&self, candidates: &[Candidate], client: Option<IpAddr>) -> Pick {
        if candidates.is_empty() {
            return Pick::None;
        }
        // Servers are rarely full: skip the filtered copy unless one is.
        let filtered: Vec<Candidate>;
        let open = if candidates.iter().any(|c| c.full) {
            filtered = candidates.iter().copied().filter(|c| !c.full).collect();
            filtered.as_slice()
        } else {
            candidates
        };
        if open.is_empty() {
            return Pick::AllFull;
        }
        let index = match self.balance {
            Balance::RoundRobin => self.round_robin(open),
            Balance::LeastConn => self.least_conn(open),
            Balance::First => open.iter().min_by_key(|c| c.index).map(|c| c.index),
            Balance::Source => source(open, client),
            Balance::Random => random_two(open),
        };
        index.map(Pick::Server).unwrap_or(Pick::None)
    }

    fn round_robin(&self, open: &[Candidate]) -> Option<usize> {
        let mut current = match self.rr.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let top = open.iter().map(|c| c.index).max().unwrap_or(0);
        if current.len() <= top {
            current.resize(top + 1, 0);
        }
        let total: i64 = open.iter().map(|c| i64::from(c.weight)).sum();
        let mut best: Option<usize> = None;
        for c in open {
            current[c.index] += i64::from(c.weight);
            if best.is_none_or(|b| current[c.index] > current[b]) {
                best = Some(c.index);
            }
        }
        if let Some(b) = best {
            current[b] -= total;
        }
        best
    }

    /// Fewest active requests per unit of weight; ties rotate so equal servers share load.
    fn least_conn(&self, open: &[Candidate]) -> Option<usize> {
        let start = self.tick.fetch_add(1, Ordering::Relaxed);
        let n = open.len();
        let mut best: Option<&Candidate> = None;
        for i in 0..n {
            let c = &open[(start + i) % n];
            let better = match best {
                None => true,
                // a.active / a.weight < b.active / b.weight, without division.
                Some(b) => {
                    u128::from(c.active) * u128::from(b.weight) < u128::from(b.active) * u128::from(c.weight)
                }
            };
            if better {
                best = Some(c);
            }
        }
        best.map(|c| c.index)
    }
}

/// HAProxy's map-based source hash: the client address picks a slot in the weight table.
fn source(open: &[Candidate], client: Option<IpAddr>) -> Option<usize> {
    let total: u64 = open.iter().map(|c| u64::from(c.weight)).sum();
    if total == 0 {
        return None;
    }
    let key = match client {
        Some(IpAddr::V4(v4)) => u64::from(u32::from(v4)),
        Some(IpAddr::V6(v6)) => {
            let b = u128::from(v6);
            (b as u64) ^ ((b >> 64) as u64)
        }
        None => 0,
    };
    // A full-avalanche mix so neighbouring addresses spread (splitmix64's finaliser).
    let mut h = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    let mut slot = h % total;
    for c in open {
        let w = u64::from(c.weight);
        if slot < w {
            return Some(c.index);
        }
        slot -= w;
    }
    None
}

fn weighted_draw(open: &[Candidate]) -> Option<&Candidate> {
    let total: u64 = open.iter().map(|c| u64::from(c.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut slot = fastrand::u64(0..total);
    for c in open {
        let w = u64::from(c.weight);
        if slot < w {
            return Some(c);
        }
        slot -= w;
    }
    None
}

/// `balance random(2)`: two weighted draws, the less loaded wins ("power of two choices").
fn random_two(open: &[Candidate]) -> Option<usize> {
    let a = weighted_draw(open)?;
    let b = weighted_draw(open)?;
    let a_load = u128::from(a.active) * u128::from(b.weight);
    let b_load = u128::from(b.active) * u128::from(a.weight);
    Some(if b_load < a_load { b.index } else { a.index })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(index: usize, weight: u32, active: u64) -> Candidate {
        Candidate { index, weight, active, full: false }
    }

    #[test]
    fn smooth_weighted_round_robin() {
        let s = Selector::new(Balance::RoundRobin, 3);
        let c = [cand(0, 5, 0), cand(1, 1, 0), cand(2, 1, 0)];
        let picks: Vec<_> = (0..7).map(|_| s.pick(&c, None)).collect();
        let count = |i| picks.iter().filter(|p| **p == Pick::Server(i)).count();
        assert_eq!((count(0), count(1), count(2)), (5, 1, 1));
        // Smooth: the heavy server is never picked 5 times in a row.
        assert_ne!(
            picks[0..5],
            [Pick::Server(0), Pick::Server(0), Pick::Server(0), Pick::Server(0), Pick::Server(0)]
        );
    }

    #[test]
    fn leastconn_respects_weight_and_rotates_ties() {
        let s = Selector::new(Balance::LeastConn, 2);
        assert_eq!(s.pick(&[cand(0, 1, 3), cand(1, 1, 1)], None), Pick::Server(1));
        assert_eq!(s.pick(&[cand(0, 4, 3), cand(1, 1, 1)], None), Pick::Server(0));
        let a = s.pick(&[cand(0, 1, 0), cand(1, 1, 0)], None);
        let b = s.pick(&[cand(0, 1, 0), cand(1, 1, 0)], None);
        assert_ne!(a, b);
    }

    #[test]
    fn first_source_random_full_and_empty() {
        let s = Selector::new(Balance::First, 3);
        assert_eq!(s.pick(&[cand(2, 1, 0), cand(1, 1, 9)], None), Pick::Server(1));
        let full = Candidate { full: true, ..cand(0, 1, 1) };
        assert_eq!(s.pick(&[full], None), Pick::AllFull);
        assert_eq!(s.pick(&[], None), Pick::None);

        let s = Selector::new(Balance::Source, 2);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let first = s.pick(&[cand(0, 1, 0), cand(1, 1, 0)], Some(ip));
        for _ in 0..10 {
            assert_eq!(s.pick(&[cand(0, 1, 0), cand(1, 1, 0)], Some(ip)), first);
        }
        let spread: std::collections::HashSet<_> = (0..64u8)
            .map(|i| s.pick(&[cand(0, 1, 0), cand(1, 1, 0)], Some(IpAddr::from([10, 0, 0, i]))))
            .collect();
        assert_eq!(spread.len(), 2);

        let s = Selector::new(Balance::Random, 2);
        let mut hits = [0; 2];
        for _ in 0..1000 {
            if let Pick::Server(i) = s.pick(&[cand(0, 1, 0), cand(1, 1, 0)], None) {
                hits[i] += 1;
            }
        }
        assert!(hits[0] > 300 && hits[1] > 300, "{hits:?}");
        // With two choices, the idle server wins whenever it is drawn.
        let mut idle = 0;
        for _ in 0..1000 {
            if s.pick(&[cand(0, 1, 100), cand(1, 1, 0)], None) == Pick::Server(1) {
                idle += 1;
            }
        }
        assert!(idle > 700, "{idle}");
    }
}
