//! One target's scrape: fetch with Prometheus's headers and limits, parse text or
//! OpenMetrics, attach target labels (`honor_labels`), apply `metric_relabel_configs` and the
//! label/sample limits, then hand the samples, staleness markers and the synthetic series
//! (`up`, `scrape_duration_seconds`, …) to the `SampleSink` in one batch.

use super::error::ScrapeError;
use super::fetch::fetch;
use super::relabel::{self, LabelSet};
use super::sink::{SampleSink, ScrapedSample, ScrapedSeries};
use super::target::Target;
use crate::config::prometheus::Job;
use crate::exposition::{self, ExpositionReader, Format, LabelCheck, LabelError, LabelLimits, MetricType};
use crate::model::labels::Labels;
use crate::model::{now_ms, stale_nan};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricMetadata {
    pub metric: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

/// What `/api/v1/targets` reports for a target.
#[derive(Debug, Clone)]
pub struct TargetState {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: Duration,
    pub metadata: Vec<MetricMetadata>,
}

impl Default for TargetState {
    fn default() -> Self {
        TargetState {
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_duration: Duration::ZERO,
            metadata: Vec::new(),
        }
    }
}

/// Attaches target labels to a scraped label set, as Prometheus's mutateSampleLabels does.
fn attach_target_labels(mut labels: LabelSet, target: &Target, honor_labels: bool) -> LabelSet {
    for (name, value) in &target.labels {
        let existing = labels.iter().position(|(n, _)| n == name);
        match (existing, honor_labels) {
            (Some(_), true) => {}
            (None, _) => labels.push((name.clone(), value.clone())),
            (Some(i), false) => {
                let scraped = labels.remove(i).1;
                let mut exported = format!("exported_{name}");
                while labels.iter().any(|(n, _)| *n == exported) {
                    exported = format!("exported_{exported}");
                }
                if !scraped.is_empty() {
                    labels.push((exported, scraped));
                }
                labels.push((name.clone(), value.clone()));
            }
        }
    }
    labels.retain(|(_, v)| !v.is_empty());
    labels.sort();
    labels
}

fn check_label_limits(job: &Job, labels: &LabelSet) -> Result<(), ScrapeError> {
    let metric = labels.iter().find(|(n, _)| n == "__name__").map(|(_, v)| v.as_str()).unwrap_or("");
    let limits = label_limits(job);
    if limits.count > 0 && labels.len() > limits.count {
        return Err(ScrapeError::LabelLimit(exposition::label_limit_error(
            metric,
            labels.len(),
            limits.count,
        )));
    }
    for (name, value) in labels {
        if limits.name_length > 0 && name.len() > limits.name_length {
            return Err(ScrapeError::LabelLimit(exposition::label_name_length_error(
                metric,
                name,
                limits.name_length,
            )));
        }
        if limits.value_length > 0 && value.len() > limits.value_length {
            return Err(ScrapeError::LabelLimit(exposition::label_value_length_error(
                metric,
                name,
                value,
                limits.value_length,
            )));
        }
    }
    Ok(())
}

fn label_limits(job: &Job) -> LabelLimits {
    let limit = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    LabelLimits {
        count: limit(job.label_limit),
        name_length: limit(job.label_name_length_limit),
        value_length: limit(job.label_value_length_limit),
    }
}

/// The limits a line's labels can be held to while they are parsed. Target labels only add
/// labels or lengthen names (`exported_`), so a scraped set over a limit stays over it; but
/// metric relabelling may drop the series or the offending label, and then Prometheus reports
/// nothing, so with relabel rules the limits wait for the relabelled set.
fn parse_time_limits(job: &Job) -> LabelLimits {
    if job.metric_relabel_configs.is_empty() { label_limits(job) } else { LabelLimits::default() }
}

/// The samples one scrape yields after labels, relabelling and limits.
pub struct Processed {
    pub samples: Vec<ScrapedSample>,
    /// Samples in the response before metric relabelling.
    pub scraped: usize,
    /// Series this loop had not seen before (Prometheus's `scrape_series_added`).
    pub added: usize,
    pub metadata: Vec<MetricMetadata>,
}

/// The labels a line's series text becomes, or `None` when relabelling drops it.
fn resolve_series(
    job: &Job,
    target: &Target,
    line: &exposition::SampleLine,
    deadline: Option<Instant>,
) -> Result<Option<Arc<ScrapedSeries>>, ScrapeError> {
    let check = LabelCheck { limits: parse_time_limits(job), metric: line.name, deadline };
    let mut labels = line.labels_checked(&check).map_err(|e| match e {
        LabelError::Parse(e) => ScrapeError::Parse(e.to_string()),
        LabelError::Limit(message) => ScrapeError::LabelLimit(message),
        LabelError::Deadline => ScrapeError::Timeout,
    })?;
    labels.push(("__name__".into(), line.name.to_string()));
    let labels = attach_target_labels(labels, target, job.honor_labels);
    let Some(labels) = relabel::process(labels, &job.metric_relabel_configs) else { return Ok(None) };
    if !labels.iter().any(|(n, v)| n == "__name__" && !v.is_empty()) {
        return Ok(None);
    }
    check_label_limits(job, &labels)?;
    Ok(Some(ScrapedSeries::new(Labels::from_pairs(labels))))
}

fn synthetic(target: &Target, name: &str) -> Arc<ScrapedSeries> {
    let mut labels = target.labels.clone();
    labels.push(("__name__".into(), name.into()));
    ScrapedSeries::new(Labels::from_pairs(labels))
}

const SYNTHETIC: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// When in each interval a target is scraped: a stable offset from its hash, so targets
/// spread over the interval and keep their phase across restarts (as Prometheus's offset()).
pub fn first_delay(hash: u64, interval: Duration) -> Duration {
    let interval_ns = interval.as_nanos().max(1) as u64;
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let base = interval_ns - now_ns % interval_ns;
    let mut next = base + hash % interval_ns;
    if next > interval_ns {
        next -= interval_ns;
    }
    Duration::from_nanos(next)
}

/// Hashes a u64 that already is a hash (label-set hashes) by taking it as is.
#[derive(Default)]
struct PrehashedU64(u64);

impl Hasher for PrehashedU64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ByLabelHash = HashMap<u64, Arc<ScrapedSeries>, BuildHasherDefault<PrehashedU64>>;

struct CacheEntry {
    /// `None`: metric relabelling drops this series.
    series: Option<Arc<ScrapedSeries>>,
    /// The iteration that last saw the line.
    seen: u64,
}

/// Sample lines parsed between two looks at the clock.
const SAMPLES_PER_DEADLINE_CHECK: usize = 256;

/// Scrapes after which a series text no target line has used is forgotten.
const CACHE_KEEP_ITERATIONS: u64 = 10;

/// One target's memory across scrapes: what each series text resolved to, and which series the
/// last scrape appended, so vanished ones get staleness markers.
#[derive(Default)]
pub struct ScrapeCache {
    /// Keyed by text the target sent; FxHash as Prometheus uses xxhash: fast, unkeyed.
    entries: rustc_hash::FxHashMap<Box<str>, CacheEntry>,
    iteration: u64,
    previous: ByLabelHash,
    synthetic: Vec<Arc<ScrapedSeries>>,
}

impl ScrapeCache {
    /// Parses a response into samples, resolving each line's series through the cache; past
    /// `deadline` (the scrape's timeout) it gives up with [`ScrapeError::Timeout`].
    pub fn process(
        &mut self,
        job: &Job,
        target: &Target,
        body: &[u8],
        format: Format,
        scrape_ms: i64,
        deadline: Option<Instant>,
    ) -> Result<Processed, ScrapeError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ScrapeError::Parse("response is not valid UTF-8".into()))?;
        self.iteration += 1;
        let iteration = self.iteration;
        let mut reader = ExpositionReader::new(text, format);
        let mut samples = Vec::with_capacity(self.previous.len());
        let mut scraped = 0;
        let mut added = 0;
        while let Some(line) = reader.next_sample().map_err(|e| ScrapeError::Parse(e.to_string()))? {
            scraped += 1;
            if scraped % SAMPLES_PER_DEADLINE_CHECK == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ScrapeError::Timeout);
            }
            let series = match self.entries.get_mut(line.series) {
                Some(entry) => {
                    entry.seen = iteration;
                    entry.series.clone()
                }
                None => {
                    let series = resolve_series(job, target, &line, deadline)?;
                    added += usize::from(series.is_some());
                    self.entries
                        .insert(line.series.into(), CacheEntry { series: series.clone(), seen: iteration });
                    series
                }
            };
            let Some(series) = series else { continue };
            let t_ms = match line.timestamp_ms {
                Some(ts) if job.honor_timestamps => ts,
                _ => scrape_ms,
            };
            samples.push(ScrapedSample { series, t_ms, value: line.value, exemplar: line.exemplar });
        }
        if job.sample_limit > 0 && samples.len() as u64 > job.sample_limit {
            return Err(ScrapeError::SampleLimit);
        }
        if iteration.is_multiple_of(CACHE_KEEP_ITERATIONS) {
            self.entries.retain(|_, e| iteration - e.seen < CACHE_KEEP_ITERATIONS);
        }
        let metadata = reader
            .into_families()
            .into_iter()
            .map(|f| MetricMetadata {
                metric: f.name,
                kind: f.kind,
                help: f.help.unwrap_or_default(),
                unit: f.unit.unwrap_or_default(),
            })
            .collect();
        Ok(Processed { samples, scraped, added, metadata })
    }

    /// Remembers the series this scrape appended at its own timestamp (explicit timestamps are
    /// not tracked, as in Prometheus) and returns markers for those of the last scrape that
    /// are gone.
    fn stale_markers(&mut self, samples: &[ScrapedSample], t_ms: i64) -> Vec<ScrapedSample> {
        let mut current = ByLabelHash::with_capacity_and_hasher(self.previous.len(), Default::default());
        for s in samples.iter().filter(|s| s.t_ms == t_ms) {
            current.insert(s.series.hash, s.series.clone());
        }
        let previous = std::mem::replace(&mut self.previous, current);
        previous
            .into_iter()
            .filter(|(hash, _)| !self.previous.contains_key(hash))
            .map(|(_, series)| ScrapedSample { series, t_ms, value: stale_nan(), exemplar: None })
            .collect()
    }

    fn synthetic_series(&mut self, target: &Target) -> Vec<Arc<ScrapedSeries>> {
        if self.synthetic.is_empty() {
            self.synthetic = SYNTHETIC.iter().map(|name| synthetic(target, name)).collect();
        }
        self.synthetic.clone()
    }

    /// Runs one scrape and appends its outcome; returns the new state for the target.
    pub async fn scrape_once(
        &mut self,
        client: &reqwest::Client,
        job: &Job,
        target: &Target,
        sink: &dyn SampleSink,
    ) -> TargetState {
        let started = Instant::now();
        let wall = SystemTime::now();
        let t_ms = now_ms();
        // One deadline for the fetch and the parse: a body that is slow to parse is as late as
        // one that is slow to arrive.
        let deadline = started + job.timeout;
        let result = match tokio::time::timeout(job.timeout, fetch(client, job, target)).await {
            Ok(Ok((body, format))) => self.process(job, target, &body, format, t_ms, Some(deadline)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ScrapeError::Timeout),
        };
        let duration = started.elapsed();
        let mut state =
            TargetState { last_scrape: Some(wall), last_duration: duration, ..Default::default() };
        let (mut batch, up, scraped, post_relabel, added) = match result {
            Ok(processed) => {
                let markers = self.stale_markers(&processed.samples, t_ms);
                let post = processed.samples.len();
                let mut batch = processed.samples;
                // Markers after the samples: a series that is back under another spelling
                // keeps its sample and the marker is the one refused.
                batch.extend(markers);
                state.health = Health::Up;
                state.metadata = processed.metadata;
                (batch, 1.0, processed.scraped, post, processed.added)
            }
            Err(err) => {
                let batch = self
                    .previous
                    .drain()
                    .map(|(_, gone)| ScrapedSample { series: gone, t_ms, value: stale_nan(), exemplar: None })
                    .collect();
                state.health = Health::Down;
                state.last_error = err.to_string();
                (batch, 0.0, 0, 0, 0)
            }
        };
        let values = [up, duration.as_secs_f64(), scraped as f64, post_relabel as f64, added as f64];
        for (series, value) in self.synthetic_series(target).into_iter().zip(values) {
            batch.push(ScrapedSample { series, t_ms, value, exemplar: None });
        }
        if let Err(e) = sink.append(batch) {
            tracing::warn!(job = %job.name, target = %target.url, error = %e, "append failed");
            if state.last_error.is_empty() {
                state.last_error = format!("append failed: {e}");
            }
        }
        state
    }

    /// After a target goes away: every series it had, and its synthetic series, go stale.
    pub fn end_of_run(&mut self, target: &Target, sink: &dyn SampleSink) {
        let t_ms = now_ms();
        let mut batch: Vec<ScrapedSample> = self
            .previous
            .drain()
            .map(|(_, series)| ScrapedSample { series, t_ms, value: stale_nan(), exemplar: None })
            .collect();
        batch.extend(self.synthetic_series(target).into_iter().map(|series| ScrapedSample {
            series,
            t_ms,
            value: stale_nan(),
            exemplar: None,
        }));
        if let Err(e) = sink.append(batch) {
            tracing::warn!(target = %target.url, error = %e, "appending end-of-run staleness markers failed");
        }
    }
}

/// Scrapes one target every interval until `stop` turns true.
pub async fn run(
    job: Arc<Job>,
    target: Target,
    client: reqwest::Client,
    sink: Arc<dyn SampleSink>,
    state: Arc<Mutex<TargetState>>,
    mut stop: watch::Receiver<bool>,
) {
    let delay = first_delay(target.hash(), job.interval);
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.changed() => return,
    }
    let mut ticker = tokio::time::interval(job.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cache = ScrapeCache::default();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        // A stop cancels the scrape in flight, as Prometheus cancels its context: shutdown then
        // waits for the staleness markers, not for a slow target's timeout.
        let new_state = tokio::select! {
            s = cache.scrape_once(&client, &job, &target, sink.as_ref()) => s,
            _ = stop.changed() => break,
        };
        if let Ok(mut s) = state.lock() {
            *s = new_state;
        }
    }
    cache.end_of_run(&target, sink.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::prometheus::{PrometheusFile, resolve};
    use crate::model::is_stale_nan;
    use crate::scrape::sink::AppendOutcome;
    use crate::store::StoreError;

    fn job(extra: &str) -> Job {
        let yaml = format!("scrape_configs:\n  - job_name: app\n{extra}");
        let file: PrometheusFile = serde_norway::from_str(&yaml).unwrap();
        resolve(&file).unwrap().jobs.remove(0)
    }

    fn target() -> Target {
        Target {
            job: "app".into(),
            labels: vec![("instance".into(), "h:1".into()), ("job".into(), "app".into())],
            discovered_labels: vec![],
            url: "http://h:1/metrics".into(),
        }
    }

    fn get<'a>(l: &'a Arc<ScrapedSeries>, n: &str) -> Option<&'a str> {
        l.labels().get(n)
    }

    fn process(
        job: &Job,
        target: &Target,
        body: &[u8],
        format: Format,
        t: i64,
    ) -> Result<Processed, ScrapeError> {
        ScrapeCache::default().process(job, target, body, format, t, None)
    }

    #[test]
    fn conflicting_labels_are_exported_unless_honored() {
        let body = b"m{job=\"inner\",instance=\"\"} 1 1000\n";
        let p = process(&job(""), &target(), body, Format::Text, 5000).unwrap();
        let l = &p.samples[0].series;
        assert_eq!(
            (get(l, "job"), get(l, "exported_job"), get(l, "instance")),
            (Some("app"), Some("inner"), Some("h:1"))
        );
        assert_eq!(p.samples[0].t_ms, 1000, "honor_timestamps defaults to true");
        let p = process(
            &job("    honor_labels: true\n    honor_timestamps: false\n"),
            &target(),
            body,
            Format::Text,
            5000,
        )
        .unwrap();
        let l = &p.samples[0].series;
        assert_eq!((get(l, "job"), get(l, "exported_job")), (Some("inner"), None));
        assert_eq!(get(l, "instance"), None, "an empty honored label is dropped");
        assert_eq!(p.samples[0].t_ms, 5000);
    }

    #[test]
    fn metric_relabel_and_limits() {
        let body = b"keep_me 1\ndrop_me 2\nwide{a=\"1\",b=\"2\",c=\"3\"} 3\n";
        let j = job(
            "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: drop_me\n        action: drop\n",
        );
        let p = process(&j, &target(), body, Format::Text, 0).unwrap();
        assert_eq!((p.scraped, p.samples.len()), (3, 2));
        let j = job("    sample_limit: 1\n");
        assert!(matches!(process(&j, &target(), body, Format::Text, 0), Err(ScrapeError::SampleLimit)));
        let j = job("    label_limit: 4\n");
        let e = process(&j, &target(), body, Format::Text, 0).err().unwrap();
        assert!(e.to_string().starts_with("label_limit exceeded (metric: wide"), "{e}");
        assert!(matches!(
            process(&job(""), &target(), b"garbage{", Format::Text, 0),
            Err(ScrapeError::Parse(_))
        ));
    }

    fn wide_body(labels: usize) -> Vec<u8> {
        let mut body = String::from("wide{");
        for i in 0..labels {
            body.push_str(&format!("l{i}=\"v\","));
        }
        body.push_str("} 1\n");
        body.into_bytes()
    }

    #[test]
    fn label_limits_apply_while_parsing_unless_relabelling_may_change_the_labels() {
        let body = wide_body(100_000);
        let e = process(&job("    label_limit: 64\n"), &target(), &body, Format::Text, 0).err().unwrap();
        assert_eq!(e.to_string(), "label_limit exceeded (metric: wide, number of labels: 65, limit: 64)");
        // labeldrop can bring the set under the limit, so the full set is checked after it.
        let j = job(
            "    label_limit: 64\n    metric_relabel_configs:\n      - regex: 'l[0-9]{2,}'\n        action: labeldrop\n",
        );
        let p = process(&j, &target(), &body, Format::Text, 0).unwrap();
        assert_eq!(p.samples[0].series.labels().len(), 13, "__name__, l0..l9, instance, job");
        let j = job(
            "    label_limit: 64\n    metric_relabel_configs:\n      - regex: '__name__|l.*'\n        action: labelkeep\n",
        );
        let e = process(&j, &target(), &body, Format::Text, 0).err().unwrap();
        assert!(
            e.to_string().starts_with("label_limit exceeded (metric: wide, number of labels: 100001,"),
            "{e}"
        );
    }

    #[test]
    fn the_scrape_deadline_covers_the_parse() {
        let past = Some(Instant::now());
        let mut cache = ScrapeCache::default();
        let wide = wide_body(100_000);
        let e = cache.process(&job(""), &target(), &wide, Format::Text, 0, past).err().unwrap();
        assert!(matches!(e, ScrapeError::Timeout), "{e}");
        let many: String = (0..10_000).map(|i| format!("m{i} 1\n")).collect();
        let e = cache.process(&job(""), &target(), many.as_bytes(), Format::Text, 0, past).err().unwrap();
        assert_eq!(e.to_string(), "context deadline exceeded");
        assert!(cache.entries.len() < 10_000, "the parse stopped early: {}", cache.entries.len());
    }

    struct Collect(Mutex<Vec<ScrapedSample>>);
    impl SampleSink for Collect {
        fn append(&self, samples: Vec<ScrapedSample>) -> Result<AppendOutcome, StoreError> {
            self.0.lock().unwrap().extend(samples);
            Ok(AppendOutcome::default())
        }
    }

    #[test]
    fn end_of_run_marks_everything_stale() {
        let sink = Collect(Mutex::new(Vec::new()));
        let mut cache = ScrapeCache::default();
        let m = ScrapedSeries::new(Labels::metric("m", &[]));
        cache.previous.insert(m.hash, m);
        cache.end_of_run(&target(), &sink);
        let got = sink.0.lock().unwrap();
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|s| is_stale_nan(s.value)));
    }

    #[test]
    fn cache_resolves_a_repeated_line_once_and_marks_vanished_series_stale() {
        let j = job(
            "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: dropped\n        action: drop\n",
        );
        let mut cache = ScrapeCache::default();
        let first = cache
            .process(&j, &target(), b"a{x=\"1\"} 1\nb 2\ndropped 3\n", Format::Text, 1000, None)
            .unwrap();
        assert_eq!((first.scraped, first.samples.len(), first.added), (3, 2, 2));
        let again =
            cache.process(&j, &target(), b"a{x=\"1\"} 5\ndropped 3\n", Format::Text, 2000, None).unwrap();
        assert_eq!((again.scraped, again.samples.len(), again.added), (2, 1, 0));
        assert!(
            Arc::ptr_eq(&first.samples[0].series, &again.samples[0].series),
            "the cached series is reused"
        );
        assert_eq!(again.samples[0].value, 5.0);
        // Another spelling of the same labels is a new cache entry with equal labels.
        let spelled = cache.process(&j, &target(), b"a { x=\"1\" } 6\n", Format::Text, 3000, None).unwrap();
        assert_eq!(spelled.samples[0].series.to_labels(), first.samples[0].series.to_labels());
        assert_eq!(spelled.added, 1);

        let mut c = ScrapeCache::default();
        let mut stale_after = |body: &[u8], t: i64| {
            let p = c.process(&j, &target(), body, Format::Text, t, None).unwrap();
            let markers = c.stale_markers(&p.samples, t);
            assert!(markers.iter().all(|m| is_stale_nan(m.value) && m.t_ms == t));
            markers.iter().map(|m| m.series.labels().name().unwrap_or("").to_string()).collect::<Vec<_>>()
        };
        assert!(stale_after(b"a 1\nb 1\nc 1 5\n", 1).is_empty());
        assert_eq!(stale_after(b"a 1\nc 1 6\n", 2), vec!["b"], "explicit timestamps are not tracked");
        assert_eq!(stale_after(b"a{} 1\n", 3), Vec::<String>::new(), "same labels, other spelling");
        assert_eq!(stale_after(b"", 4), vec!["a"]);
    }

    #[test]
    fn first_delay_is_within_interval() {
        for h in [0u64, 1, u64::MAX, 12345678901234] {
            assert!(first_delay(h, Duration::from_secs(15)) <= Duration::from_secs(15));
        }
    }
}
