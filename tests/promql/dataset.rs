//! The differential suite's data set: deterministic, two hours at a 15 s scrape interval with
//! scrape jitter, counters with resets, gauges, classic histograms (one without `+Inf`, one
//! with a non-monotonic bucket), several jobs and instances, a gap, series ending in a
//! StaleNaN, NaN/±Inf values, and the seed dashboard's metrics.
#![allow(dead_code)]

pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
pub const STEP_MS: i64 = 15_000;
pub const SPAN_MS: i64 = 2 * 3600 * 1000;

pub use obsd::model::Labels;

pub struct Dataset {
    pub start_ms: i64,
    pub end_ms: i64,
    pub series: Vec<(Labels, Vec<(i64, f64)>)>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

impl Dataset {
    /// `end_ms` must be a whole minute so query times line up with subquery steps.
    pub fn generate(end_ms: i64) -> Dataset {
        let start_ms = end_ms - SPAN_MS;
        let n = (SPAN_MS / STEP_MS) as usize + 1;
        let mut rng = Rng(42);
        let mut series = Vec::new();
        let ts_for = |rng: &mut Rng, i: usize, base_jitter: i64| -> i64 {
            start_ms + i as i64 * STEP_MS + base_jitter + rng.below(40) as i64
        };

        // Counters with resets.
        for (job, inst) in [("api", "a:9090"), ("api", "b:9090"), ("db", "c:9100")] {
            for method in ["get", "post"] {
                for code in ["200", "500"] {
                    if job == "db" && (method == "post" || code == "500") {
                        continue;
                    }
                    let jitter = rng.below(3000) as i64;
                    let mut v = rng.below(1000) as f64;
                    let mut s = Vec::with_capacity(n);
                    for i in 0..n {
                        let inc = if code == "500" { rng.below(3) } else { rng.below(20) };
                        v += inc as f64;
                        if inst == "b:9090" && method == "get" && i == 200 {
                            v = rng.below(5) as f64;
                        }
                        if inst == "a:9090" && method == "post" && code == "200" && (i == 100 || i == 380) {
                            v = 0.0;
                        }
                        s.push((ts_for(&mut rng, i, jitter), v));
                    }
                    series.push((
                        labels(&[
                            ("__name__", "http_requests_total"),
                            ("job", job),
                            ("instance", inst),
                            ("method", method),
                            ("code", code),
                        ]),
                        s,
                    ));
                }
            }
        }

        // Gauges, some negative.
        for (k, inst) in ["n1:9100", "n2:9100", "n3:9100"].iter().enumerate() {
            let jitter = rng.below(5000) as i64;
            let mut s = Vec::with_capacity(n);
            for i in 0..n {
                let v = 20.0 * ((i as f64) / 37.0 + k as f64).sin() - 5.0 + rng.unit() * 3.0;
                s.push((ts_for(&mut rng, i, jitter), (v * 1000.0).round() / 1000.0));
            }
            series.push((
                labels(&[("__name__", "node_temperature_celsius"), ("job", "node"), ("instance", inst)]),
                s,
            ));
        }

        // Classic histograms.
        let bounds = ["0.1", "0.5", "1", "5", "+Inf"];
        for (job, inst, missing_inf, non_monotonic) in
            [("api", "a:9090", false, false), ("api", "b:9090", false, true), ("broken", "x:1", true, false)]
        {
            let jitter = rng.below(2000) as i64;
            let mut counts = [0.0f64; 5];
            let mut sum = 0.0;
            let mut rows: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 5];
            let mut sums = Vec::new();
            let mut cnts = Vec::new();
            for i in 0..n {
                let t = ts_for(&mut rng, i, jitter);
                for _ in 0..rng.below(8) {
                    let obs = rng.unit() * rng.unit() * 8.0;
                    sum += obs;
                    for (b, ub) in [0.1, 0.5, 1.0, 5.0, f64::INFINITY].iter().enumerate() {
                        if obs <= *ub {
                            counts[b] += 1.0;
                        }
                    }
                }
                for b in 0..5 {
                    let mut c = counts[b];
                    if non_monotonic && b == 2 && i % 7 == 0 {
                        c = counts[3] + 2.0;
                    }
                    rows[b].push((t, c));
                }
                sums.push((t, (sum * 1000.0).round() / 1000.0));
                cnts.push((t, counts[4]));
            }
            for (b, row) in rows.into_iter().enumerate() {
                if missing_inf && b == 4 {
                    continue;
                }
                series.push((
                    labels(&[
                        ("__name__", "request_duration_seconds_bucket"),
                        ("job", job),
                        ("instance", inst),
                        ("le", bounds[b]),
                    ]),
                    row,
                ));
            }
            series.push((
                labels(&[("__name__", "request_duration_seconds_sum"), ("job", job), ("instance", inst)]),
                sums,
            ));
            series.push((
                labels(&[("__name__", "request_duration_seconds_count"), ("job", job), ("instance", inst)]),
                cnts,
            ));
        }

        // A gap from minute 40 to minute 70.
        {
            let mut s = Vec::new();
            for i in 0..n {
                let t = start_ms + i as i64 * STEP_MS;
                let minute = (t - start_ms) / 60_000;
                if (40..70).contains(&minute) {
                    continue;
                }
                s.push((t, i as f64 * 2.5));
            }
            series.push((labels(&[("__name__", "gap_metric"), ("job", "gap"), ("instance", "g:1")]), s));
        }

        // Staleness: x ends at minute 60 with a stale marker; y goes stale at 30 and resumes at 45.
        {
            let stale = f64::from_bits(STALE_NAN);
            let mut x = Vec::new();
            let mut y = Vec::new();
            for i in 0..n {
                let t = start_ms + i as i64 * STEP_MS + 7;
                let minute = (t - start_ms) / 60_000;
                if minute < 60 {
                    x.push((t, 100.0 + i as f64));
                } else if x.last().is_some_and(|(_, v): &(i64, f64)| v.to_bits() != STALE_NAN) {
                    x.push((t, stale));
                }
                if !(30..45).contains(&minute) {
                    y.push((t, i as f64));
                } else if y.last().is_some_and(|(_, v): &(i64, f64)| v.to_bits() != STALE_NAN) {
                    y.push((t, stale));
                }
            }
            series.push((labels(&[("__name__", "stale_metric"), ("job", "stale"), ("instance", "x")]), x));
            series.push((labels(&[("__name__", "stale_metric"), ("job", "stale"), ("instance", "y")]), y));
        }

        // Special values.
        for (kind, f) in [
            ("nan", (|_: usize| f64::NAN) as fn(usize) -> f64),
            ("inf", |_| f64::INFINITY),
            ("neginf", |_| f64::NEG_INFINITY),
            ("mixed", |i| [1.0, f64::NAN, 3.0, f64::INFINITY, -2.0][i % 5]),
            ("big", |i| 1e21 * (1.0 + i as f64)),
            ("tiny", |i| 1e-7 * (1.0 + (i % 3) as f64)),
            ("zero", |_| 0.0),
        ] {
            let s = (0..n).map(|i| (start_ms + i as i64 * STEP_MS + 3, f(i))).collect();
            series.push((labels(&[("__name__", "special_values"), ("kind", kind)]), s));
        }

        // up for every scrape job.
        for (job, inst) in
            [("api", "a:9090"), ("api", "b:9090"), ("db", "c:9100"), ("node", "n1:9100"), ("node", "n2:9100")]
        {
            let s = (0..n)
                .map(|i| {
                    (
                        start_ms + i as i64 * STEP_MS + 11,
                        if inst == "b:9090" && (150..170).contains(&i) { 0.0 } else { 1.0 },
                    )
                })
                .collect();
            series.push((labels(&[("__name__", "up"), ("job", job), ("instance", inst)]), s));
        }

        // Same labels under two names (duplicate label sets once the name is dropped).
        for name in ["dup_a", "dup_b"] {
            let s = (0..n).map(|i| (start_ms + i as i64 * STEP_MS + 5, i as f64)).collect();
            series.push((labels(&[("__name__", name), ("x", "1")]), s));
        }
        series.push((
            labels(&[
                ("__name__", "version_info"),
                ("version", "v1.2.3"),
                ("path", "/a b\"c\\d"),
                ("job", "api"),
            ]),
            (0..n).map(|i| (start_ms + i as i64 * STEP_MS + 13, 1.0)).collect(),
        ));

        // The seed dashboard's metrics.
        {
            let jitter = 900;
            let lat_bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
            let ubs = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, f64::INFINITY];
            for inst in ["app1:8000", "app2:8000"] {
                let mut counts = [0.0; 9];
                let mut rows: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 9];
                let mut reqs = Vec::new();
                let mut total = 0.0;
                for i in 0..n {
                    let t = ts_for(&mut rng, i, jitter);
                    let k = rng.below(30);
                    for _ in 0..k {
                        let obs = rng.unit() * rng.unit() * 0.8;
                        for (b, ub) in ubs.iter().enumerate() {
                            if obs <= *ub {
                                counts[b] += 1.0;
                            }
                        }
                    }
                    total += k as f64;
                    for b in 0..9 {
                        rows[b].push((t, counts[b]));
                    }
                    reqs.push((t, total));
                }
                for (b, row) in rows.into_iter().enumerate() {
                    series.push((
                        labels(&[
                            ("__name__", "python_app_request_latency_seconds_bucket"),
                            ("job", "python-app"),
                            ("instance", inst),
                            ("le", lat_bounds[b]),
                        ]),
                        row,
                    ));
                }
                series.push((
                    labels(&[
                        ("__name__", "python_app_requests_total"),
                        ("job", "python-app"),
                        ("instance", inst),
                        ("endpoint", "/"),
                    ]),
                    reqs,
                ));
            }
            for backend in ["prometheus_backends", "stats"] {
                let mut v = 0.0;
                let s = (0..n)
                    .map(|i| {
                        v += rng.below(10) as f64;
                        (ts_for(&mut rng, i, 100), v)
                    })
                    .collect();
                series.push((
                    labels(&[
                        ("__name__", "haproxy_backend_sessions_total"),
                        ("job", "haproxy"),
                        ("backend", backend),
                    ]),
                    s,
                ));
                for server in ["replica1", "replica2"] {
                    let mut v = 0.0;
                    let mut sess = Vec::new();
                    let mut up = Vec::new();
                    for i in 0..n {
                        let t = ts_for(&mut rng, i, 200);
                        v += rng.below(6) as f64;
                        sess.push((t, v));
                        up.push((t, if server == "replica2" && (300..330).contains(&i) { 0.0 } else { 1.0 }));
                    }
                    series.push((
                        labels(&[
                            ("__name__", "haproxy_server_sessions_total"),
                            ("job", "haproxy"),
                            ("backend", backend),
                            ("server", server),
                        ]),
                        sess,
                    ));
                    series.push((
                        labels(&[
                            ("__name__", "haproxy_server_up"),
                            ("job", "haproxy"),
                            ("backend", backend),
                            ("server", server),
                        ]),
                        up,
                    ));
                }
            }
        }
        Dataset { start_ms, end_ms, series }
    }
}
