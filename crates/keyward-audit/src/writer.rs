//! [`AuditWriter`]: takes records from the data plane without ever blocking it, and persists
//! them from one background task, many per transaction.
//!
//! ```text
//! data plane ── reserve() ──▶ bounded queue (65 536) ──▶ task: take 1, drain ≤ 511 more
//!    (Err → 503)   slot.write(record)                      → chain per tenant → sink.append
//!                                                           (one transaction; retried, never
//!                                                            dropped, while the sink fails)
//! ```
//!
//! A call is reserved a queue slot before it is forwarded, so every forwarded call has room for
//! its record: when the queue is full or the sink is failing, `reserve` fails and the data
//! plane refuses the call (`503 audit_unavailable`) instead of forwarding it unaudited.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::chain::{canonical_json, ChainHead};
use crate::{AuditError, AuditRecord, AuditSink, StoredAuditRecord};

/// Tuning of an [`AuditWriter`].
#[derive(Debug, Clone)]
pub struct AuditWriterConfig {
    /// Records queued or reserved before `reserve` refuses. Default 65 536.
    pub capacity: usize,
    /// Most records per transaction. Default 512.
    pub max_batch: usize,
    /// First wait after a failed append; doubles up to `retry_max`. Default 50 ms.
    pub retry_initial: Duration,
    /// Default 5 s.
    pub retry_max: Duration,
    /// After `flush_and_stop`, attempts per batch before its records are given up (and
    /// logged as lost). Default 5.
    pub shutdown_attempts: u32,
    /// How long a batch that is not full waits for more records before it is written. Under
    /// load this turns many small transactions (and thread wake-ups) into few large ones; it
    /// delays only the record's durability, never the call. Default 2 ms.
    pub linger: Duration,
}

impl Default for AuditWriterConfig {
    fn default() -> Self {
        Self {
            capacity: 65_536,
            max_batch: 512,
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_secs(5),
            shutdown_attempts: 5,
            linger: Duration::from_millis(2),
        }
    }
}

/// Why no record can be accepted now. The data plane answers `503 audit_unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditUnavailable {
    /// `capacity` records are queued or reserved: the sink is slower than the traffic.
    #[error("the audit queue is full")]
    QueueFull,
    /// The last append failed and none has succeeded since.
    #[error("the audit store is failing")]
    Unhealthy,
    /// The writer is shutting down.
    #[error("the audit writer has stopped")]
    Stopped,
}

impl AuditUnavailable {
    /// The stable error code for clients.
    pub const CODE: &'static str = "audit_unavailable";
}

/// Room for one record in the queue, taken before the call is forwarded.
#[derive(Debug)]
pub struct AuditSlot {
    permit: mpsc::OwnedPermit<AuditRecord>,
}

impl AuditSlot {
    /// Queue the call's record. Never blocks, never fails: the room was reserved. A slot
    /// dropped without `write` frees its room and records nothing.
    pub fn write(self, record: AuditRecord) {
        let _sender = self.permit.send(record);
    }
}

/// The handle the data plane holds. Cheap to clone; all clones feed one task.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<AuditRecord>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("queue_depth", &self.queue_depth())
            .field("healthy", &self.is_healthy())
            .finish()
    }
}

struct Shared {
    capacity: usize,
    healthy: AtomicBool,
    failures: AtomicU64,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// Start the background task on the current tokio runtime.
    pub fn start(sink: Arc<dyn AuditSink>, config: AuditWriterConfig) -> Self {
        // tokio refuses 0 and anything near its semaphore limit; keep to a sane range.
        let capacity = config.capacity.clamp(1, 1 << 24);
        let (tx, rx) = mpsc::channel(capacity);
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            capacity,
            healthy: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            stop,
            task: Mutex::new(None),
        });
        let task = Task {
            sink,
            rx,
            stop: stop_rx,
            shared: shared.clone(),
            heads: HashMap::new(),
            config,
        };
        let handle = tokio::spawn(task.run());
        *lock(&shared.task) = Some(handle);
        Self { tx, shared }
    }

    /// Take room for one record, without waiting. Call it BEFORE forwarding; on `Err` refuse
    /// the call rather than forward it unaudited.
    pub fn reserve(&self) -> Result<AuditSlot, AuditUnavailable> {
        if !self.shared.healthy.load(Ordering::Acquire) {
            return Err(AuditUnavailable::Unhealthy);
        }
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(AuditSlot { permit }),
            Err(mpsc::error::TrySendError::Full(_)) => Err(AuditUnavailable::QueueFull),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AuditUnavailable::Stopped),
        }
    }

    /// Records queued or reserved and not yet taken by the task (for `/metrics`).
    pub fn queue_depth(&self) -> usize {
        self.shared.capacity.saturating_sub(self.tx.capacity())
    }

    /// Failed append attempts since start (for `/metrics`).
    pub fn write_failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// `false` from a failed append until the next successful one.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// Refuse new slots, write everything queued and every slot still out (waiting for their
    /// `write` or drop), then end the task. Stop the listeners first.
    pub async fn flush_and_stop(self) {
        self.shared.stop.send_replace(true);
        let handle = lock(&self.shared.task).take();
        drop(self);
        if let Some(handle) = handle {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "the audit writer task failed");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning only means a panic elsewhere while holding it; the Option inside is whole.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A batch chained and ready to append, with the heads it leaves behind.
struct Chained {
    rows: Vec<StoredAuditRecord>,
    heads: HashMap<String, ChainHead>,
}

/// The background task: the queue's only reader and the sink's only writer.
struct Task {
    sink: Arc<dyn AuditSink>,
    rx: mpsc::Receiver<AuditRecord>,
    stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
    /// Last `(seq, hash)` per tenant as the sink has it, loaded on first use.
    heads: HashMap<String, ChainHead>,
    config: AuditWriterConfig,
}

impl Task {
    async fn run(mut self) {
        loop {
            let first = tokio::select! {
                biased;
                record = self.rx.recv() => record,
                _ = self.stop.wait_for(|stop| *stop) => None,
            };
            let Some(first) = first else { break };
            let mut batch = self.fill(first);
            if batch.len() < self.config.max_batch && !self.config.linger.is_zero() {
                tokio::time::sleep(self.config.linger).await;
                self.top_up(&mut batch);
            }
            self.commit(batch).await;
        }
        // Stopping (or every handle is gone): no new slots; drain what is queued and what
        // the slots still out will write. `recv` ends once both are exhausted.
        self.rx.close();
        while let Some(first) = self.rx.recv().await {
            let batch = self.fill(first);
            self.commit(batch).await;
        }
    }

    /// `first` plus whatever is already queued, up to `max_batch`.
    fn fill(&mut self, first: AuditRecord) -> Vec<AuditRecord> {
        let mut batch = vec![first];
        self.top_up(&mut batch);
        batch
    }

    /// Add whatever is queued now, up to `max_batch`.
    fn top_up(&mut self, batch: &mut Vec<AuditRecord>) {
        while batch.len() < self.config.max_batch.max(1) {
            match self.rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
    }

    /// Persist a batch, retrying with backoff until it lands (or, once stopping, until
    /// `shutdown_attempts` failed). The writer is unhealthy from the first failure on.
    async fn commit(&mut self, batch: Vec<AuditRecord>) {
        let mut texts = Vec::with_capacity(batch.len());
        for record in batch {
            match canonical_json(&record) {
                Ok(json) => texts.push((record.tenant, json)),
                Err(e) => {
                    self.shared.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "an audit record could not be serialised; dropped");
                }
            }
        }
        if texts.is_empty() {
            return;
        }
        let mut delay = self.config.retry_initial;
        let mut attempts_while_stopping = 0;
        let mut uncertain = None;
        loop {
            let Err(e) = self.append(&texts, &mut uncertain).await else {
                if !self.shared.healthy.swap(true, Ordering::AcqRel) {
                    tracing::info!("audit writer recovered: appends succeed again");
                }
                return;
            };
            self.shared.failures.fetch_add(1, Ordering::Relaxed);
            self.shared.healthy.store(false, Ordering::Release);
            tracing::error!(error = %e, records = texts.len(), "audit append failed; retrying");
            if *self.stop.borrow() {
                attempts_while_stopping += 1;
                if attempts_while_stopping >= self.config.shutdown_attempts {
                    tracing::error!(
                        records = texts.len(),
                        "audit records lost: the audit store kept failing during shutdown"
                    );
                    self.heads.clear();
                    return;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.config.retry_max);
        }
    }

    /// One attempt. `uncertain` is the previous attempt of this batch, if it failed: its
    /// commit may have landed anyway, so the sink is asked where each chain ends now.
    async fn append(
        &mut self,
        texts: &[(String, String)],
        uncertain: &mut Option<Chained>,
    ) -> Result<(), AuditError> {
        if let Some(tried) = uncertain.take() {
            for tenant in tried.heads.keys() {
                self.heads.remove(tenant);
            }
            match self.landed(&tried).await {
                Ok(true) => {
                    self.heads.extend(tried.heads);
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) => {
                    *uncertain = Some(tried);
                    return Err(e);
                }
            }
        }
        let chained = self.chain(texts).await?;
        match self.sink.append(&chained.rows).await {
            Ok(()) => {
                self.heads.extend(chained.heads);
                Ok(())
            }
            Err(e) => {
                *uncertain = Some(chained);
                Err(e)
            }
        }
    }

    /// Whether the sink's chains already end where `tried` would have left them.
    async fn landed(&mut self, tried: &Chained) -> Result<bool, AuditError> {
        for (tenant, head) in &tried.heads {
            if self.head(tenant).await? != *head {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Link each record after its tenant's current head (without moving the heads yet).
    async fn chain(&mut self, texts: &[(String, String)]) -> Result<Chained, AuditError> {
        let mut heads: HashMap<String, ChainHead> = HashMap::new();
        let mut rows = Vec::with_capacity(texts.len());
        for (tenant, json) in texts {
            if !heads.contains_key(tenant) {
                let head = self.head(tenant).await?;
                heads.insert(tenant.clone(), head);
            }
            if let Some(head) = heads.get_mut(tenant) {
                rows.push(head.append(tenant, json.clone()));
            }
        }
        Ok(Chained { rows, heads })
    }

    async fn head(&mut self, tenant: &str) -> Result<ChainHead, AuditError> {
        if let Some(head) = self.heads.get(tenant) {
            return Ok(head.clone());
        }
        let head = match self.sink.last_hash(tenant).await? {
            Some((seq, hash)) => ChainHead { seq, hash },
            None => ChainHead::genesis(),
        };
        self.heads.insert(tenant.to_owned(), head.clone());
        Ok(head)
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
