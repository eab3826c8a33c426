//! Remote write 1.0 out, to an engine that clusters (Mimir, Thanos Receive,
//! VictoriaMetrics): a durable queue on disk, sharded senders, retries. The federation sends
//! through it today; any role that writes onward takes the same queue.
//!
//! Every sample the federation stores is appended to one of `shards` on-disk queues (a series
//! always to the same shard, so its samples leave in order). A shard is a directory of
//! segment files (`segment`) of records — `[len u32][crc32 u32][samples u32][0 u32][max_t i64]` then a
//! protobuf `WriteRequest` — and a `cursor` file naming the first unsent record. One sender
//! per shard reads records, posts them (snappy), and moves the cursor only after the receiver
//! answered 2xx, so a restart resends at most one batch and loses nothing. 5xx, 429 and
//! connection errors are retried with exponential backoff for as long as it takes; any other
//! 4xx means the receiver will never take the batch, so it is dropped and counted. While the
//! receiver is away the queue grows, bounded by `max_backlog` of sample time (default 2 h) and
//! `max_queue_size` on disk: beyond either, the oldest records are dropped and counted.
//!
//! Durability: records are written (not fsynced) as they come, so a process crash loses
//! nothing; segments are fsynced when they are closed and at shutdown, so a machine crash can
//! lose the unsynced tail of the open segment.

use crate::config::RemoteWriteConfig;
use crate::exposition::MetricFamily;
use crate::model::labels::Labels;
use crate::remote_write::segment::{
    ReadOutcome, for_each_record, put_record, read_cursor, read_record, resync, segment_path, segments,
    write_cursor,
};
use crate::remote_write::{self, proto};
use prost::Message;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

const SEGMENT_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("remote write queue {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("remote write {name}: cannot build HTTP client: {message}")]
    Client { name: String, message: String },
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped_http: AtomicU64,
    dropped_backlog: AtomicU64,
    /// Samples that could not be written to the queue (a full disk).
    dropped_queue_write: AtomicU64,
    /// Samples in queue records found damaged when read.
    dropped_corrupt: AtomicU64,
    pending: AtomicI64,
    highest_sent_ms: AtomicI64,
    /// Newest sample time appended, the reference for `max_backlog`.
    newest_ms: AtomicI64,
}

struct ShardWriter {
    id: u64,
    file: File,
    bytes: u64,
}

struct Shard {
    dir: PathBuf,
    writer: Mutex<Option<ShardWriter>>,
    /// The segment the writer appends to; the reader must not delete or skip past it.
    writing: AtomicU64,
    notify: Notify,
}

pub struct RemoteWriteQueue {
    config: RemoteWriteConfig,
    shards: Vec<Arc<Shard>>,
    counters: Arc<Counters>,
    client: reqwest::Client,
}

fn io_err(dir: &Path) -> impl Fn(std::io::Error) -> RemoteWriteError + '_ {
    move |source| RemoteWriteError::Io { dir: dir.display().to_string(), source }
}

/// A stable shard for a series (not Rust's randomly seeded hasher: the mapping must survive
/// restarts so a series' queued samples and new ones leave through the same shard).
fn shard_of(labels: &Labels, shards: usize) -> usize {
    let mut h = crc32fast::Hasher::new();
    for (n, v) in labels.as_slice() {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xfe]);
    }
    h.finalize() as usize % shards.max(1)
}

fn build_client(config: &RemoteWriteConfig) -> Result<reqwest::Client, RemoteWriteError> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &config.headers {
        let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v.expose()),
        ) else {
            return Err(RemoteWriteError::Client {
                name: config.name.clone(),
                message: format!("invalid header {k:?}"),
            });
        };
        headers.insert(name, value);
    }
    reqwest::Client::builder()
        .timeout(config.remote_timeout)
        .connect_timeout(config.remote_timeout.min(Duration::from_secs(10)))
        .default_headers(headers)
        .user_agent(format!("obsd/{}", crate::self_metrics::VERSION))
        .build()
        .map_err(|e| RemoteWriteError::Client { name: config.name.clone(), message: e.to_string() })
}

impl RemoteWriteQueue {
    /// Opens (or creates) the queue under `dir`, counting what earlier runs left unsent.
    pub fn open(config: RemoteWriteConfig, dir: &Path) -> Result<Arc<RemoteWriteQueue>, RemoteWriteError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let counters = Arc::new(Counters { newest_ms: AtomicI64::new(i64::MIN), ..Default::default() });
        // Shards left by a run with more shards are drained too, never abandoned.
        let existing = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("shard-")?.parse::<usize>().ok())
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        let mut shards = Vec::new();
        for i in 0..config.shards.max(existing) {
            let shard_dir = dir.join(format!("shard-{i}"));
            fs::create_dir_all(&shard_dir).map_err(io_err(&shard_dir))?;
            let ids = segments(&shard_dir);
            let (cursor_seg, cursor_off) = read_cursor(&shard_dir);
            for &id in ids.iter().filter(|id| **id >= cursor_seg) {
                let Ok(mut f) = File::open(segment_path(&shard_dir, id)) else { continue };
                let off = if id == cursor_seg { cursor_off } else { 0 };
                // Every segment of an earlier run is closed: this run writes a fresh one.
                for_each_record(&mut f, off, |samples, max_t| {
                    counters.pending.fetch_add(samples as i64, Ordering::Relaxed);
                    counters.newest_ms.fetch_max(max_t.unwrap_or(i64::MIN), Ordering::Relaxed);
                });
            }
            // Always a fresh segment: a torn tail of the last one is then simply skipped.
            let id = ids.last().map(|l| l + 1).unwrap_or(1).max(cursor_seg + 1);
            let shard = Arc::new(Shard {
                dir: shard_dir,
                writer: Mutex::new(None),
                writing: AtomicU64::new(id),
                notify: Notify::new(),
            });
            if i < config.shards {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(segment_path(&shard.dir, id))
                    .map_err(io_err(&shard.dir))?;
                *shard.writer.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(ShardWriter { id, file, bytes: 0 });
            }
            shards.push(shard);
        }
        let pending = counters.pending.load(Ordering::Relaxed);
        if pending > 0 {
            tracing::info!(remote = %config.name, pending, "remote write queue has unsent samples from an earlier run");
        }
        let client = build_client(&config)?;
        Ok(Arc::new(RemoteWriteQueue { config, shards, counters, client }))
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Queues samples the federation stored. Splits them by series into the shards and into
    /// records of at most `max_samples_per_send` samples.
    pub fn append(&self, samples: &[(Labels, i64, f64)]) -> Result<(), RemoteWriteError> {
        if samples.is_empty() {
            return Ok(());
        }
        let writers = self.config.shards.max(1);
        let mut per_shard: Vec<Vec<&(Labels, i64, f64)>> = vec![Vec::new(); writers];
        for s in samples {
            per_shard[shard_of(&s.0, writers)].push(s);
        }
        for (i, list) in per_shard.into_iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let shard = &self.shards[i];
            let mut buf = Vec::new();
            let mut count = 0i64;
            for chunk in list.chunks(self.config.max_samples_per_send.max(1)) {
                let mut max_t = i64::MIN;
                let request = proto::WriteRequest {
                    timeseries: chunk
                        .iter()
                        .map(|(l, t, v)| {
                            max_t = max_t.max(*t);
                            proto::TimeSeries {
                                labels: l
                                    .as_slice()
                                    .iter()
                                    .map(|(n, v)| proto::Label { name: n.clone(), value: v.clone() })
                                    .collect(),
                                samples: vec![proto::Sample { value: *v, timestamp: *t }],
                                exemplars: Vec::new(),
                            }
                        })
                        .collect(),
                    metadata: Vec::new(),
                };
                let payload = request.encode_to_vec();
                put_record(&mut buf, &payload, chunk.len() as u32, max_t);
                count += chunk.len() as i64;
                self.counters.newest_ms.fetch_max(max_t, Ordering::Relaxed);
            }
            let mut guard = shard.writer.lock().unwrap_or_else(|p| p.into_inner());
            let Some(w) = guard.as_mut() else { continue };
            if let Err(e) = w.file.write_all(&buf) {
                // A full disk: these samples cannot be queued. They are counted as dropped,
                // and the segment is cut back so no torn record sits before later ones.
                self.counters.dropped_queue_write.fetch_add(count as u64, Ordering::Relaxed);
                if let Err(cut) = w.file.set_len(w.bytes) {
                    // Left torn, the segment is closed: readers step over damage in closed
                    // segments only.
                    tracing::error!(remote = %self.config.name, error = %cut, "cannot cut a queue segment back; starting a new one");
                    w.bytes = SEGMENT_BYTES;
                }
                self.rotate_if_full(shard, w)?;
                return Err(io_err(&shard.dir)(e));
            }
            w.bytes += buf.len() as u64;
            self.rotate_if_full(shard, w)?;
            drop(guard);
            self.counters.pending.fetch_add(count, Ordering::Relaxed);
            shard.notify.notify_one();
        }
        Ok(())
    }

    /// Starts the shard's next segment once this one is full.
    fn rotate_if_full(&self, shard: &Shard, w: &mut ShardWriter) -> Result<(), RemoteWriteError> {
        {
            if w.bytes >= SEGMENT_BYTES {
                let _ = w.file.sync_data();
                let id = w.id + 1;
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(segment_path(&shard.dir, id))
                    .map_err(io_err(&shard.dir))?;
                *w = ShardWriter { id, file, bytes: 0 };
                shard.writing.store(id, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Flushes the open segments to disk (at shutdown).
    pub fn sync(&self) {
        for shard in &self.shards {
            if let Some(w) = shard.writer.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                let _ = w.file.sync_data();
            }
        }
    }

    pub fn spawn_senders(self: &Arc<Self>, shutdown: watch::Receiver<bool>) {
        for (i, shard) in self.shards.iter().enumerate() {
            tokio::spawn(self.clone().send_loop(i, shard.clone(), shutdown.clone()));
        }
    }

    /// Reads up to `max_samples_per_send` samples of whole records from the cursor on,
    /// dropping records past the backlog bounds; returns the batch and the cursor after it.
    fn next_batch(
        &self,
        shard: &Shard,
        mut cursor: (u64, u64),
    ) -> (proto::WriteRequest, u64, i64, (u64, u64)) {
        let mut batch = proto::WriteRequest::default();
        let mut samples = 0u64;
        let mut max_t = i64::MIN;
        let writing = shard.writing.load(Ordering::Acquire);
        let newest = self.counters.newest_ms.load(Ordering::Relaxed);
        let horizon = newest.saturating_sub(self.config.max_backlog.as_millis() as i64);
        self.enforce_size_cap(shard, &mut cursor, writing);
        loop {
            let ids = segments(&shard.dir);
            let Some(&id) = ids.iter().find(|id| **id >= cursor.0) else { break };
            if id != cursor.0 {
                cursor = (id, 0);
            }
            let mut file = match File::open(segment_path(&shard.dir, id)) {
                Ok(f) => f,
                Err(_) => break,
            };
            let segment_done = loop {
                match read_record(&mut file, cursor.1) {
                    Ok(ReadOutcome::Record(r)) => {
                        if samples > 0 && samples + r.samples as u64 > self.config.max_samples_per_send as u64
                        {
                            return (batch, samples, max_t, cursor);
                        }
                        cursor.1 += r.len;
                        if r.max_t < horizon {
                            self.counters.dropped_backlog.fetch_add(r.samples as u64, Ordering::Relaxed);
                            self.counters.pending.fetch_sub(r.samples as i64, Ordering::Relaxed);
                            continue;
                        }
                        match proto::WriteRequest::decode(r.payload.as_slice()) {
                            Ok(req) => {
                                samples += r.samples as u64;
                                max_t = max_t.max(r.max_t);
                                batch.timeseries.extend(req.timeseries);
                            }
                            Err(e) => {
                                tracing::warn!(remote = %self.config.name, error = %e, "undecodable queue record skipped");
                                self.counters.dropped_corrupt.fetch_add(r.samples as u64, Ordering::Relaxed);
                                self.counters.pending.fetch_sub(r.samples as i64, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(ReadOutcome::Corrupt { samples }) if id < writing => {
                        // A record in bounds that fails its crc was counted pending when it
                        // was queued; one whose header is damaged cannot be counted.
                        let samples = samples.unwrap_or(0);
                        self.counters.dropped_corrupt.fetch_add(samples as u64, Ordering::Relaxed);
                        self.counters.pending.fetch_sub(samples as i64, Ordering::Relaxed);
                        let next = resync(&mut file, cursor.1);
                        tracing::warn!(
                            remote = %self.config.name, segment = id, offset = cursor.1, samples,
                            resumes_at = ?next, "damaged remote write queue record skipped"
                        );
                        match next {
                            Some(next) => cursor.1 = next,
                            None => break true,
                        }
                    }
                    Ok(ReadOutcome::End | ReadOutcome::Corrupt { .. }) | Err(_) => break id < writing,
                }
            };
            if !segment_done {
                break;
            }
            // A closed segment read to its end (or to a torn tail): go on with the next one.
            cursor = (id + 1, 0);
        }
        (batch, samples, max_t, cursor)
    }

    /// Beyond `max_queue_size` of segments per shard, skips the oldest closed segments.
    fn enforce_size_cap(&self, shard: &Shard, cursor: &mut (u64, u64), writing: u64) {
        let cap = self.config.max_queue_bytes / self.shards.len().max(1) as u64;
        let ids: Vec<u64> = segments(&shard.dir).into_iter().filter(|id| *id >= cursor.0).collect();
        let sizes: Vec<u64> = ids
            .iter()
            .map(|id| fs::metadata(segment_path(&shard.dir, *id)).map(|m| m.len()).unwrap_or(0))
            .collect();
        let mut total: u64 = sizes.iter().sum();
        for (id, size) in ids.iter().zip(sizes) {
            if total <= cap || *id >= writing {
                break;
            }
            let mut dropped = 0u64;
            if let Ok(mut f) = File::open(segment_path(&shard.dir, *id)) {
                let off = if *id == cursor.0 { cursor.1 } else { 0 };
                for_each_record(&mut f, off, |samples, _| dropped += samples as u64);
            }
            self.counters.dropped_backlog.fetch_add(dropped, Ordering::Relaxed);
            self.counters.pending.fetch_sub(dropped as i64, Ordering::Relaxed);
            tracing::warn!(remote = %self.config.name, segment = id, dropped, "remote write queue over max_queue_size; oldest data dropped");
            total -= size;
            *cursor = (id + 1, 0);
        }
    }

    /// Deletes segments wholly before the cursor and records the cursor.
    fn commit(&self, shard: &Shard, cursor: (u64, u64)) {
        for id in segments(&shard.dir) {
            if id < cursor.0 {
                let _ = fs::remove_file(segment_path(&shard.dir, id));
            }
        }
        if let Err(e) = write_cursor(&shard.dir, cursor) {
            tracing::warn!(remote = %self.config.name, error = %e, "cannot record the queue cursor; a restart resends");
        }
    }

    async fn send_loop(
        self: Arc<Self>,
        index: usize,
        shard: Arc<Shard>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut cursor = read_cursor(&shard.dir);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let (queue, shard2, from) = (self.clone(), shard.clone(), cursor);
            let Ok((batch, samples, max_t, next)) =
                tokio::task::spawn_blocking(move || queue.next_batch(&shard2, from)).await
            else {
                return;
            };
            if samples == 0 {
                if next != cursor {
                    cursor = next;
                    self.commit(&shard, cursor);
                }
                tokio::select! {
                    _ = shard.notify.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            let body = remote_write::encode(&batch);
            let mut backoff = self.config.min_backoff;
            loop {
                match self.post(&body).await {
                    Ok(()) => {
                        self.counters.sent.fetch_add(samples, Ordering::Relaxed);
                        self.counters.highest_sent_ms.fetch_max(max_t, Ordering::Relaxed);
                        break;
                    }
                    Err(Failure::Permanent(message)) => {
                        tracing::warn!(remote = %self.config.name, shard = index, samples, error = %message, "remote write refused the batch; dropped");
                        self.counters.dropped_http.fetch_add(samples, Ordering::Relaxed);
                        break;
                    }
                    Err(Failure::Retry(message)) => {
                        self.counters.failed.fetch_add(samples, Ordering::Relaxed);
                        tracing::debug!(remote = %self.config.name, shard = index, error = %message, ?backoff, "remote write failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => return,
                        }
                        backoff = (backoff * 2).min(self.config.max_backoff);
                    }
                }
            }
            self.counters.pending.fetch_sub(samples as i64, Ordering::Relaxed);
            cursor = next;
            let (queue, shard2) = (self.clone(), shard.clone());
            let _ = tokio::task::spawn_blocking(move || queue.commit(&shard2, next)).await;
        }
    }

    async fn post(&self, body: &[u8]) -> Result<(), Failure> {
        let mut request = self
            .client
            .post(&self.config.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.to_vec());
        if let Some((user, password)) = &self.config.basic_auth {
            request = request.basic_auth(user, Some(password.expose()));
        }
        if let Some(token) = &self.config.bearer_token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|e| Failure::Retry(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = tokio::time::timeout(Duration::from_secs(5), response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let message = format!("HTTP {status}: {}", text.chars().take(256).collect::<String>());
        if status.is_server_error() || status.as_u16() == 429 {
            Err(Failure::Retry(message))
        } else {
            Err(Failure::Permanent(message))
        }
    }

    pub fn metric_families(&self) -> Vec<MetricFamily> {
        let c = &self.counters;
        let url = crate::config::redacted_url(&self.config.url);
        let labels = [("remote_name", self.config.name.as_str()), ("url", url.as_str())];
        let mut out = Vec::new();
        let mut f = MetricFamily::counter(
            "obsd_remote_write_samples_sent_total",
            "Samples the receiver accepted (2xx).",
        );
        f.add(&labels, c.sent.load(Ordering::Relaxed) as f64);
        out.push(f);
        let mut f = MetricFamily::counter(
            "obsd_remote_write_samples_failed_total",
            "Samples in sends that failed with a retryable error (5xx, 429, connection); they are retried.",
        );
        f.add(&labels, c.failed.load(Ordering::Relaxed) as f64);
        out.push(f);
        let mut f = MetricFamily::counter(
            "obsd_remote_write_samples_dropped_total",
            "Samples given up on: refused by the receiver (http_4xx), past the backlog bounds (backlog), not writable to the on-disk queue (queue_write), or in a damaged queue record (corrupt).",
        );
        let with_reason = |reason: &'static str| {
            [labels[0], labels[1], ("reason", reason)].map(|(k, v)| (k, v.to_string()))
        };
        f.add(&with_reason("http_4xx"), c.dropped_http.load(Ordering::Relaxed) as f64);
        f.add(&with_reason("backlog"), c.dropped_backlog.load(Ordering::Relaxed) as f64);
        f.add(&with_reason("queue_write"), c.dropped_queue_write.load(Ordering::Relaxed) as f64);
        f.add(&with_reason("corrupt"), c.dropped_corrupt.load(Ordering::Relaxed) as f64);
        out.push(f);
        let mut f = MetricFamily::gauge(
            "obsd_remote_write_pending_samples",
            "Samples queued on disk and not yet sent.",
        );
        f.add(&labels, c.pending.load(Ordering::Relaxed).max(0) as f64);
        out.push(f);
        let mut f = MetricFamily::gauge(
            "obsd_remote_write_highest_sent_timestamp_seconds",
            "Newest sample timestamp the receiver accepted.",
        );
        let highest = c.highest_sent_ms.load(Ordering::Relaxed);
        f.add(&labels, if highest > 0 { highest as f64 / 1000.0 } else { 0.0 });
        out.push(f);
        out
    }
}

enum Failure {
    Retry(String),
    Permanent(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::segment::HEADER;

    fn config(shards: usize) -> RemoteWriteConfig {
        RemoteWriteConfig {
            name: "t".into(),
            url: "http://127.0.0.1:9/api/v1/write".into(),
            basic_auth: None,
            bearer_token: None,
            headers: Vec::new(),
            remote_timeout: Duration::from_secs(1),
            shards,
            max_samples_per_send: 3,
            max_backlog: Duration::from_secs(3600),
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            max_queue_bytes: 1 << 30,
        }
    }

    fn samples(n: usize, t: i64) -> Vec<(Labels, i64, f64)> {
        (0..n).map(|i| (Labels::from_pairs(vec![("__name__", format!("m{i}"))]), t, i as f64)).collect()
    }

    fn drain(q: &RemoteWriteQueue) -> usize {
        let mut total = 0;
        for shard in &q.shards {
            let mut cursor = read_cursor(&shard.dir);
            loop {
                let (batch, n, _, next) = q.next_batch(shard, cursor);
                assert!(n as usize <= 3 || batch.timeseries.len() == n as usize);
                if n == 0 {
                    break;
                }
                total += batch.timeseries.len();
                cursor = next;
                q.commit(shard, cursor);
            }
        }
        total
    }

    #[test]
    fn queue_survives_reopen_and_drains_once() {
        let dir = tempfile::tempdir().unwrap();
        let q = RemoteWriteQueue::open(config(2), dir.path()).unwrap();
        q.append(&samples(10, 1000)).unwrap();
        q.append(&samples(5, 2000)).unwrap();
        assert_eq!(q.counters.pending.load(Ordering::Relaxed), 15);
        drop(q);
        let q = RemoteWriteQueue::open(config(2), dir.path()).unwrap();
        assert_eq!(q.counters.pending.load(Ordering::Relaxed), 15, "counted again after a restart");
        assert_eq!(drain(&q), 15);
        drop(q);
        let q = RemoteWriteQueue::open(config(2), dir.path()).unwrap();
        assert_eq!(q.counters.pending.load(Ordering::Relaxed), 0);
        assert_eq!(drain(&q), 0, "nothing sent twice");
    }

    #[test]
    fn backlog_bound_drops_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(1);
        c.max_backlog = Duration::from_secs(60);
        let q = RemoteWriteQueue::open(c, dir.path()).unwrap();
        q.append(&samples(4, 0)).unwrap();
        q.append(&samples(2, 120_000)).unwrap();
        assert_eq!(drain(&q), 2);
        assert_eq!(q.counters.dropped_backlog.load(Ordering::Relaxed), 4);
    }

    /// A receiver answering 429, 503, then 204, then 400 (a batch it will never take), then 204.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_on_429_and_5xx_drops_on_4xx() {
        use axum::body::Bytes;
        use axum::http::StatusCode;
        let answers = Arc::new(Mutex::new(vec![204u16, 400, 204, 503, 429]));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (answers.clone(), received.clone());
        let app = axum::Router::new().route(
            "/api/v1/write",
            axum::routing::post(move |body: Bytes| {
                let (a, r) = (a.clone(), r.clone());
                async move {
                    let code = a.lock().unwrap().pop().unwrap_or(204);
                    if code == 204 {
                        let req = remote_write::decode(&body, &crate::config::RemoteWriteLimits::default())
                            .unwrap();
                        r.lock().unwrap().extend(req.timeseries.into_iter().map(|t| t.samples[0].timestamp));
                    }
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(1);
        c.url = format!("http://{addr}/api/v1/write");
        let q = RemoteWriteQueue::open(c, dir.path()).unwrap();
        let (_stop, stop_rx) = watch::channel(false);
        q.spawn_senders(stop_rx);
        let counters = q.counters.clone();
        let wait = |sent: u64, dropped: u64| {
            let counters = counters.clone();
            async move {
                for _ in 0..200 {
                    if counters.sent.load(Ordering::Relaxed) == sent
                        && counters.dropped_http.load(Ordering::Relaxed) == dropped
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                panic!("sent {sent} / dropped {dropped} not reached");
            }
        };
        q.append(&samples(3, 1000)).unwrap();
        wait(3, 0).await;
        assert_eq!(counters.failed.load(Ordering::Relaxed), 6, "two retried attempts of 3 samples");
        q.append(&samples(3, 2000)).unwrap();
        wait(3, 3).await;
        q.append(&samples(3, 3000)).unwrap();
        wait(6, 3).await;
        assert_eq!(counters.pending.load(Ordering::Relaxed), 0);
        assert_eq!(counters.highest_sent_ms.load(Ordering::Relaxed), 3000);
        assert_eq!(*received.lock().unwrap(), vec![1000, 1000, 1000, 3000, 3000, 3000]);
        let text = q.metric_families().iter().map(|f| format!("{f:?}")).collect::<String>();
        assert!(text.contains("obsd_remote_write_samples_dropped_total"));
    }

    /// A torn record inside a closed segment (a write cut short by a full disk, then more
    /// records after it) costs only itself: every record after it is still sent.
    #[test]
    fn a_torn_record_skips_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let q = RemoteWriteQueue::open(config(1), dir.path()).unwrap();
        q.append(&samples(3, 1000)).unwrap();
        let shard = q.shards[0].clone();
        let id = shard.writing.load(Ordering::Acquire);
        let path = segment_path(&shard.dir, id);
        // A header promising more than follows, then a damaged copy of a whole record.
        let good = fs::read(&path).unwrap();
        let mut torn = good[..HEADER + 5].to_vec();
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        torn.extend_from_slice(&flipped);
        OpenOptions::new().append(true).open(&path).unwrap().write_all(&torn).unwrap();
        q.counters.pending.fetch_add(3, Ordering::Relaxed);
        q.append(&samples(3, 2000)).unwrap();
        // Close the segment, as a rotation does.
        {
            let mut guard = shard.writer.lock().unwrap();
            let w = guard.as_mut().unwrap();
            w.bytes = SEGMENT_BYTES;
            q.rotate_if_full(&shard, w).unwrap();
        }
        q.append(&samples(3, 3000)).unwrap();
        assert_eq!(drain(&q), 9);
        assert_eq!(q.counters.dropped_corrupt.load(Ordering::Relaxed), 3);
        // 12 queued (the damaged record's 3 included) less the 3 dropped; `drain` sends
        // without counting down what it sent, as `send_loop` does.
        assert_eq!(q.counters.pending.load(Ordering::Relaxed), 9);
        drop(q);
        // Counted the same way at a restart.
        let dir2 = tempfile::tempdir().unwrap();
        let shard_dir = dir2.path().join("shard-0");
        fs::create_dir_all(&shard_dir).unwrap();
        let mut bytes = good.clone();
        bytes.extend_from_slice(&torn);
        bytes.extend_from_slice(&good);
        fs::write(segment_path(&shard_dir, 1), &bytes).unwrap();
        let q = RemoteWriteQueue::open(config(1), dir2.path()).unwrap();
        assert_eq!(q.counters.pending.load(Ordering::Relaxed), 9, "the damaged record counts until read");
        assert_eq!(drain(&q), 6);
        assert_eq!(q.counters.pending.load(Ordering::Relaxed), 6);
        assert_eq!(q.counters.dropped_corrupt.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn shards_are_stable() {
        let l = Labels::from_pairs(vec![("__name__", "up"), ("job", "x")]);
        assert_eq!(shard_of(&l, 4), shard_of(&l.clone(), 4));
        assert!(shard_of(&l, 4) < 4);
    }
}
