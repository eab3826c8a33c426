//! The bounded queue between the protocol handlers and the span store, and the intake
//! counters. Capacity is counted in spans (a permit per queued span), so a few huge batches
//! cannot hold more memory than many small ones; when the permits run out intake refuses
//! instead of buffering (HTTP 429 / gRPC UNAVAILABLE / UDP drop, each counted).

use super::red_metrics::RedMetrics;
use crate::trace_store::{Span, WriteOutcome, Writer};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// How long a handler waits for its batch to be stored before answering "try again".
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    OtlpGrpc,
    OtlpHttp,
    JaegerCompactUdp,
    JaegerBinaryUdp,
    JaegerThriftHttp,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "otlp_grpc",
            Protocol::OtlpHttp => "otlp_http",
            Protocol::JaegerCompactUdp => "jaeger_thrift_compact_udp",
            Protocol::JaegerBinaryUdp => "jaeger_thrift_binary_udp",
            Protocol::JaegerThriftHttp => "jaeger_thrift_http",
        }
    }
}

/// Why spans or batches were turned away; the `reason` label of the rejection counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Undecodable protobuf, JSON or thrift (the sender's fault).
    Malformed,
    /// Body or span count over the configured limit (the sender's fault).
    Oversized,
    /// A span with a missing, zero or wrong-length id (the sender's fault).
    InvalidId,
    /// Content type or encoding not spoken here (the sender's fault).
    Unsupported,
    /// The queue is full (ours; the sender should retry).
    QueueFull,
    /// The store failed or did not answer in time (ours).
    StoreError,
    /// Started before the retention window, so never stored.
    Expired,
    /// Starts more than an hour ahead of this host's clock, so never stored.
    Future,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::Oversized => "oversized",
            Reason::InvalidId => "invalid_id",
            Reason::Unsupported => "unsupported",
            Reason::QueueFull => "queue_full",
            Reason::StoreError => "store_error",
            Reason::Expired => "expired",
            Reason::Future => "future",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("batch of {spans} spans exceeds the limit of {limit} (sender's fault)")]
    TooManySpans { spans: usize, limit: usize },
    #[error("span queue full; retry later")]
    QueueFull,
    #[error("span store failed (internal): {0}")]
    Store(String),
}

#[derive(Default)]
pub struct Counters {
    received: Mutex<BTreeMap<Protocol, u64>>,
    rejected_spans: Mutex<BTreeMap<(Protocol, Reason), u64>>,
    rejected_batches: Mutex<BTreeMap<(Protocol, Reason), u64>>,
    limited: Mutex<BTreeMap<Protocol, super::otlp_limits::Dropped>>,
}

impl Counters {
    pub fn received(&self, p: Protocol, n: usize) {
        *self.received.lock().unwrap_or_else(|e| e.into_inner()).entry(p).or_default() += n as u64;
    }

    pub fn rejected_spans(&self, p: Protocol, reason: Reason, n: usize) {
        if n > 0 {
            *self.rejected_spans.lock().unwrap_or_else(|e| e.into_inner()).entry((p, reason)).or_default() +=
                n as u64;
        }
    }

    pub fn rejected_batch(&self, p: Protocol, reason: Reason) {
        *self.rejected_batches.lock().unwrap_or_else(|e| e.into_inner()).entry((p, reason)).or_default() += 1;
    }

    /// What the span limits took out of a request.
    pub fn limited(&self, p: Protocol, d: super::otlp_limits::Dropped) {
        if d == super::otlp_limits::Dropped::default() {
            return;
        }
        let mut map = self.limited.lock().unwrap_or_else(|e| e.into_inner());
        let total = map.entry(p).or_default();
        total.attributes += d.attributes;
        total.truncated_values += d.truncated_values;
        total.events += d.events;
        total.links += d.links;
    }

    pub fn snapshot_limited(&self) -> BTreeMap<Protocol, super::otlp_limits::Dropped> {
        self.limited.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn snapshot_received(&self) -> BTreeMap<Protocol, u64> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn snapshot_rejected_spans(&self) -> BTreeMap<(Protocol, Reason), u64> {
        self.rejected_spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn snapshot_rejected_batches(&self) -> BTreeMap<(Protocol, Reason), u64> {
        self.rejected_batches.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

struct Job {
    protocol: Protocol,
    spans: Vec<Span>,
    _permit: OwnedSemaphorePermit,
    ack: Option<oneshot::Sender<Result<WriteOutcome, String>>>,
}

#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    capacity: usize,
    max_batch_spans: usize,
    pub counters: Arc<Counters>,
    pub red: Arc<RedMetrics>,
}

impl Intake {
    /// Starts the store writer thread; it ends when every `Intake` clone is dropped, after
    /// writing what is queued.
    pub fn start(
        writer: Writer,
        capacity: usize,
        max_batch_spans: usize,
        counters: Arc<Counters>,
        red: Arc<RedMetrics>,
    ) -> std::io::Result<(Intake, std::thread::JoinHandle<()>)> {
        let (tx, mut rx) = mpsc::channel::<Job>(capacity.clamp(16, 65536));
        let thread_counters = counters.clone();
        let handle = std::thread::Builder::new().name("obsd-span-writer".into()).spawn(move || {
            while let Some(job) = rx.blocking_recv() {
                let result = writer.write(&job.spans);
                match &result {
                    Ok(outcome) => {
                        thread_counters.rejected_spans(job.protocol, Reason::Expired, outcome.expired);
                        thread_counters.rejected_spans(job.protocol, Reason::Future, outcome.future);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, spans = job.spans.len(), "storing spans failed");
                        thread_counters.rejected_spans(job.protocol, Reason::StoreError, job.spans.len());
                    }
                }
                if let Some(ack) = job.ack {
                    let _ = ack.send(result.map_err(|e| e.to_string()));
                }
            }
        })?;
        let intake = Intake {
            tx,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            max_batch_spans,
            counters,
            red,
        };
        Ok((intake, handle))
    }

    pub fn queue_length(&self) -> usize {
        self.capacity.saturating_sub(self.permits.available_permits())
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn max_batch_spans(&self) -> usize {
        self.max_batch_spans
    }

    fn enqueue(
        &self,
        protocol: Protocol,
        spans: Vec<Span>,
        ack: Option<oneshot::Sender<Result<WriteOutcome, String>>>,
    ) -> Result<(), IntakeError> {
        let n = spans.len();
        if n > self.max_batch_spans {
            self.counters.rejected_batch(protocol, Reason::Oversized);
            self.counters.rejected_spans(protocol, Reason::Oversized, n);
            return Err(IntakeError::TooManySpans { spans: n, limit: self.max_batch_spans });
        }
        let permits = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        let Ok(permit) = self.permits.clone().try_acquire_many_owned(permits) else {
            self.counters.rejected_batch(protocol, Reason::QueueFull);
            self.counters.rejected_spans(protocol, Reason::QueueFull, n);
            return Err(IntakeError::QueueFull);
        };
        self.red.record(&spans);
        self.counters.received(protocol, n);
        self.tx.try_send(Job { protocol, spans, _permit: permit, ack }).map_err(|_| {
            self.counters.rejected_batch(protocol, Reason::QueueFull);
            self.counters.rejected_spans(protocol, Reason::QueueFull, n);
            IntakeError::QueueFull
        })
    }

    /// Queues spans and waits until they are stored: OTLP and HTTP senders get an honest answer.
    pub async fn submit(&self, protocol: Protocol, spans: Vec<Span>) -> Result<WriteOutcome, IntakeError> {
        if spans.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let (tx, rx) = oneshot::channel();
        self.enqueue(protocol, spans, Some(tx))?;
        match tokio::time::timeout(ACK_TIMEOUT, rx).await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(e))) => Err(IntakeError::Store(e)),
            Ok(Err(_)) => Err(IntakeError::Store("writer stopped".into())),
            Err(_) => Err(IntakeError::Store(format!("not stored within {ACK_TIMEOUT:?}"))),
        }
    }

    /// Queues spans without waiting (UDP has nobody to answer).
    pub fn submit_nowait(&self, protocol: Protocol, spans: Vec<Span>) -> Result<(), IntakeError> {
        if spans.is_empty() {
            return Ok(());
        }
        self.enqueue(protocol, spans, None)
    }
}
