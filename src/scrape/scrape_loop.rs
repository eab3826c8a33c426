//! One target's scrape: fetch with Prometheus's headers and limits, parse text or
//! OpenMetrics, attach target labels (`honor_labels`), apply `metric_relabel_configs` and the
//! label/sample limits, then hand the samples, staleness markers and the synthetic series
//! (`up`, `scrape_duration_seconds`, …) to the `SampleSink` in one batch.

use super::config::Job;
use super::relabel::{self, LabelSet};
use super::target::Target;
use crate::exposition::{self, Exemplar, Format, MetricType};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Prometheus's staleness marker, defined once by the store.
pub use crate::store::{STALE_NAN_BITS, is_stale_nan, stale_nan};

pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedSample {
    /// Sorted by name, `__name__` included.
    pub labels: LabelSet,
    pub t_ms: i64,
    pub value: f64,
    pub exemplar: Option<Exemplar>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendOutcome {
    pub appended: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
}

/// Where scraped samples go (the store, in a replica). One call per scrape.
pub trait SampleSink: Send + Sync {
    fn append(&self, samples: Vec<ScrapedSample>) -> Result<AppendOutcome, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Http(String),
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded")]
    BodyTooLarge,
    #[error("{0}")]
    Parse(String),
    #[error("sample limit exceeded")]
    SampleLimit,
    #[error("{0}")]
    LabelLimit(String),
    #[error("context deadline exceeded")]
    Timeout,
}

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

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Builds the HTTP client for a job: timeout, TLS settings, redirects as Prometheus follows them.
pub fn client_for(job: &Job) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(job.timeout)
        .connect_timeout(job.timeout)
        .user_agent(concat!("obsd/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(1)
        .danger_accept_invalid_certs(job.tls_config.insecure_skip_verify);
    if let Some(ca) = &job.tls_config.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("ca_file {ca}: {e}"))?;
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(&pem).map_err(|e| format!("ca_file {ca}: {e}"))?,
        );
    }
    if let (Some(cert), Some(key)) = (&job.tls_config.cert_file, &job.tls_config.key_file) {
        let mut pem = std::fs::read(cert).map_err(|e| format!("cert_file {cert}: {e}"))?;
        pem.extend(std::fs::read(key).map_err(|e| format!("key_file {key}: {e}"))?);
        builder = builder
            .identity(reqwest::Identity::from_pem(&pem).map_err(|e| format!("client certificate: {e}"))?);
    }
    builder.build().map_err(|e| e.to_string())
}

async fn fetch(
    client: &reqwest::Client,
    job: &Job,
    target: &Target,
) -> Result<(Vec<u8>, Format), ScrapeError> {
    let mut request = client
        .get(&target.url)
        .header("Accept", ACCEPT_HEADER)
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", job.timeout.as_secs_f64()));
    if let Some((user, password)) = &job.basic_auth {
        request = request.basic_auth(user, Some(password));
    }
    if let Some(token) = &job.bearer_token {
        request = request.header("Authorization", format!("{} {token}", job.authorization_type));
    }
    let mut response = request.send().await.map_err(|e| {
        if e.is_timeout() { ScrapeError::Timeout } else { ScrapeError::Http(error_chain(&e)) }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(ScrapeError::Status(status.to_string()));
    }
    let format = match response.headers().get("content-type").and_then(|v| v.to_str().ok()) {
        Some(ct) if ct.starts_with("application/openmetrics-text") => Format::OpenMetrics,
        _ => Format::Text,
    };
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| if e.is_timeout() { ScrapeError::Timeout } else { ScrapeError::Http(error_chain(&e)) })?
    {
        body.extend_from_slice(&chunk);
        if job.body_size_limit > 0 && body.len() as u64 > job.body_size_limit {
            return Err(ScrapeError::BodyTooLarge);
        }
    }
    Ok((body, format))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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
    let short: String = metric.chars().take(50).collect();
    if job.label_limit > 0 && labels.len() as u64 > job.label_limit {
        return Err(ScrapeError::LabelLimit(format!(
            "label_limit exceeded (metric: {short}, number of labels: {}, limit: {})",
            labels.len(),
            job.label_limit
        )));
    }
    for (name, value) in labels {
        if job.label_name_length_limit > 0 && name.chars().count() as u64 > job.label_name_length_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "label_name_length_limit exceeded (metric: {short}, label name: {name}, limit: {})",
                job.label_name_length_limit
            )));
        }
        if job.label_value_length_limit > 0 && value.chars().count() as u64 > job.label_value_length_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "label_value_length_limit exceeded (metric: {short}, label name: {name}, value: {value:?}, limit: {})",
                job.label_value_length_limit
            )));
        }
    }
    Ok(())
}

/// The samples one scrape yields after labels, relabelling and limits.
pub struct Processed {
    pub samples: Vec<ScrapedSample>,
    /// Samples in the response before metric relabelling.
    pub scraped: usize,
    pub metadata: Vec<MetricMetadata>,
}

pub fn process(
    job: &Job,
    target: &Target,
    body: &[u8],
    format: Format,
    scrape_ms: i64,
) -> Result<Processed, ScrapeError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ScrapeError::Parse("response is not valid UTF-8".into()))?;
    let families =
        exposition::parse_exposition(text, format).map_err(|e| ScrapeError::Parse(e.to_string()))?;
    let mut samples = Vec::new();
    let mut scraped = 0;
    let mut metadata = Vec::new();
    for family in families {
        metadata.push(MetricMetadata {
            metric: family.name.clone(),
            kind: family.kind,
            help: family.help.clone().unwrap_or_default(),
            unit: family.unit.clone().unwrap_or_default(),
        });
        for s in family.samples {
            scraped += 1;
            let mut labels = s.labels;
            labels.push(("__name__".into(), s.name));
            let labels = attach_target_labels(labels, target, job.honor_labels);
            let Some(labels) = relabel::process(labels, &job.metric_relabel_configs) else { continue };
            if !labels.iter().any(|(n, v)| n == "__name__" && !v.is_empty()) {
                continue;
            }
            check_label_limits(job, &labels)?;
            let t_ms = match s.timestamp_ms {
                Some(ts) if job.honor_timestamps => ts,
                _ => scrape_ms,
            };
            samples.push(ScrapedSample { labels, t_ms, value: s.value, exemplar: s.exemplar });
        }
    }
    if job.sample_limit > 0 && samples.len() as u64 > job.sample_limit {
        return Err(ScrapeError::SampleLimit);
    }
    Ok(Processed { samples, scraped, metadata })
}

fn synthetic(target: &Target, t_ms: i64, name: &str, value: f64) -> ScrapedSample {
    let mut labels = target.labels.clone();
    labels.push(("__name__".into(), name.into()));
    labels.sort();
    ScrapedSample { labels, t_ms, value, exemplar: None }
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

/// Keeps the last scrape's series so vanished ones get staleness markers.
#[derive(Default)]
pub struct ScrapeCache {
    series: HashSet<LabelSet>,
}

impl ScrapeCache {
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
        let result = match tokio::time::timeout(job.timeout, fetch(client, job, target)).await {
            Ok(Ok((body, format))) => process(job, target, &body, format, t_ms),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ScrapeError::Timeout),
        };
        let duration = started.elapsed();
        let mut batch = Vec::new();
        let mut state =
            TargetState { last_scrape: Some(wall), last_duration: duration, ..Default::default() };
        let (up, scraped, post_relabel, added) = match result {
            Ok(processed) => {
                let mut current = HashSet::new();
                let mut added = 0u64;
                for s in &processed.samples {
                    // Series with explicit timestamps are not tracked for staleness (Prometheus).
                    if s.t_ms == t_ms {
                        if !self.series.contains(&s.labels) {
                            added += 1;
                        }
                        current.insert(s.labels.clone());
                    }
                }
                for gone in self.series.difference(&current) {
                    batch.push(ScrapedSample {
                        labels: gone.clone(),
                        t_ms,
                        value: stale_nan(),
                        exemplar: None,
                    });
                }
                self.series = current;
                let post = processed.samples.len();
                batch.extend(processed.samples);
                state.health = Health::Up;
                state.metadata = processed.metadata;
                (1.0, processed.scraped, post, added)
            }
            Err(err) => {
                for gone in self.series.drain() {
                    batch.push(ScrapedSample { labels: gone, t_ms, value: stale_nan(), exemplar: None });
                }
                state.health = Health::Down;
                state.last_error = err.to_string();
                (0.0, 0, 0, 0)
            }
        };
        for (name, value) in SYNTHETIC.iter().zip([
            up,
            duration.as_secs_f64(),
            scraped as f64,
            post_relabel as f64,
            added as f64,
        ]) {
            batch.push(synthetic(target, t_ms, name, value));
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
            .series
            .drain()
            .map(|labels| ScrapedSample { labels, t_ms, value: stale_nan(), exemplar: None })
            .collect();
        batch.extend(SYNTHETIC.iter().map(|name| synthetic(target, t_ms, name, stale_nan())));
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
        let new_state = cache.scrape_once(&client, &job, &target, sink.as_ref()).await;
        if let Ok(mut s) = state.lock() {
            *s = new_state;
        }
    }
    cache.end_of_run(&target, sink.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::config::{PrometheusFile, resolve};

    fn job(extra: &str) -> Job {
        let yaml = format!("scrape_configs:\n  - job_name: app\n{extra}");
        let file: PrometheusFile = serde_norway::from_str(&yaml).unwrap();
        resolve(&file, String::new()).unwrap().jobs.remove(0)
    }

    fn target() -> Target {
        Target {
            job: "app".into(),
            labels: vec![("instance".into(), "h:1".into()), ("job".into(), "app".into())],
            discovered_labels: vec![],
            url: "http://h:1/metrics".into(),
        }
    }

    fn get<'a>(l: &'a LabelSet, n: &str) -> Option<&'a str> {
        l.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str())
    }

    #[test]
    fn conflicting_labels_are_exported_unless_honored() {
        let body = b"m{job=\"inner\",instance=\"\"} 1 1000\n";
        let p = process(&job(""), &target(), body, Format::Text, 5000).unwrap();
        let l = &p.samples[0].labels;
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
        let l = &p.samples[0].labels;
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

    struct Collect(Mutex<Vec<ScrapedSample>>);
    impl SampleSink for Collect {
        fn append(&self, samples: Vec<ScrapedSample>) -> Result<AppendOutcome, String> {
            self.0.lock().unwrap().extend(samples);
            Ok(AppendOutcome::default())
        }
    }

    #[test]
    fn end_of_run_marks_everything_stale() {
        let sink = Collect(Mutex::new(Vec::new()));
        let mut cache = ScrapeCache::default();
        cache.series.insert(vec![("__name__".into(), "m".into())]);
        cache.end_of_run(&target(), &sink);
        let got = sink.0.lock().unwrap();
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|s| is_stale_nan(s.value)));
    }

    #[test]
    fn first_delay_is_within_interval() {
        for h in [0u64, 1, u64::MAX, 12345678901234] {
            assert!(first_delay(h, Duration::from_secs(15)) <= Duration::from_secs(15));
        }
    }
}
