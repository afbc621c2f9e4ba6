//! The request-record writer: records go into a queue on the request path and a
//! background task writes them to the store in batches (group commit: whatever queued
//! up while the last batch was being written goes in the next transaction). In cluster
//! mode it then settles the batch in the shared counters (releasing reservations and
//! adding usage after the ledger has it, see `counters::shared`).
//!
//! When the store cannot take a batch (PostgreSQL down), the batch goes to the on-disk
//! [`Spool`] and is written when the store is back: nothing is lost, and the requests
//! keep being served. `flush` waits until everything queued before it is durable (in the
//! store or the spool); a clean shutdown calls it.
//!
//! Crash window: records still in the queue when the process is killed are lost: those
//! of the last [`FLUSH_WINDOW`] (10 ms) plus the batch being written.

use super::spool::Spool;
use crate::alerts::Touched;
use crate::counters::shared::{Settled, Shared};
use spendgate_store::{RequestRecord, Store};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The largest batch written in one transaction.
const MAX_BATCH: usize = 2048;
/// How often the spool is retried while the store is away.
const DRAIN_EVERY: Duration = Duration::from_millis(500);
/// How long the first record of a batch waits for others (group commit): one
/// transaction per window rather than per handful of records. The crash window.
pub const FLUSH_WINDOW: Duration = Duration::from_millis(10);

// Records are nearly every message: boxing them would allocate once more per request.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// A request that reached a provider, with its settlement in the shared counters.
    Record(RequestRecord, Option<Settled>),
    /// A request that did not: its reservation in the shared counters, to release.
    Release(Settled),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Msg>,
    /// Records queued and not yet written (to the store, or the spool when it is away).
    queued: Arc<AtomicUsize>,
}

impl Recorder {
    /// Starts the writer task on the current runtime. `spool` is where batches wait
    /// when the store cannot take them (none: they wait in memory).
    /// `touched` is told the keys of each batch once it is written (and settled).
    pub fn start(
        store: Arc<dyn Store>,
        shared: Option<Arc<Shared>>,
        spool: Option<Spool>,
        touched: Arc<Touched>,
    ) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            store,
            shared,
            spool,
            waiting: VecDeque::new(),
            memory: Vec::new(),
            queued: queued.clone(),
            touched,
        };
        tokio::spawn(writer.run(rx));
        Recorder { tx, queued }
    }

    /// Records queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queues a record (and, in cluster mode, its settlement). Never blocks.
    pub fn record(&self, record: RequestRecord, settled: Option<Settled>) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Msg::Record(record, settled)).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("request record writer has stopped; a record was not written");
        }
    }

    /// Queues the release of a reservation in the shared counters.
    pub fn release(&self, settled: Settled) {
        let _ = self.tx.send(Msg::Release(settled));
    }

    /// Waits until every record queued before this call is durable.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.await;
        }
    }
}

/// A batch's settlements: per record of the batch, in order (or none).
type Settlements = Vec<Option<Settled>>;

struct Writer {
    store: Arc<dyn Store>,
    shared: Option<Arc<Shared>>,
    spool: Option<Spool>,
    /// The settlements of the spooled batches, in the spool's order (`None`: a batch
    /// adopted from a stopped instance, or already written by an interrupted drain).
    waiting: VecDeque<Option<Settlements>>,
    /// Batches waiting in memory when there is no spool (or it failed).
    memory: Vec<(Vec<RequestRecord>, Settlements)>,
    queued: Arc<AtomicUsize>,
    touched: Arc<Touched>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let adopted = self.spool.as_ref().map_or(0, Spool::len);
        self.waiting.extend((0..adopted).map(|_| None));
        let mut msgs = Vec::with_capacity(MAX_BATCH);
        loop {
            if self.backlog() {
                self.drain().await;
            }
            let received = if self.backlog() {
                match tokio::time::timeout(DRAIN_EVERY, rx.recv_many(&mut msgs, MAX_BATCH)).await {
                    Ok(n) => n,
                    Err(_) => continue,
                }
            } else {
                rx.recv_many(&mut msgs, MAX_BATCH).await
            };
            if received == 0 {
                return;
            }
            // Group commit: more records for the same transaction, unless someone waits.
            let deadline = tokio::time::Instant::now() + FLUSH_WINDOW;
            while msgs.len() < MAX_BATCH && !msgs.iter().any(|m| matches!(m, Msg::Flush(_))) {
                let room = MAX_BATCH - msgs.len();
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut msgs, room)).await {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            let (mut records, mut settlements, mut releases, mut acks) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for msg in msgs.drain(..) {
                match msg {
                    Msg::Record(r, s) => {
                        records.push(r);
                        settlements.push(s);
                    }
                    Msg::Release(s) => releases.push(s),
                    Msg::Flush(ack) => acks.push(ack),
                }
            }
            if let Some(shared) = &self.shared {
                shared.settle(releases, "").await;
            }
            if !records.is_empty() {
                let n = records.len();
                self.write(records, settlements).await;
                self.queued.fetch_sub(n, Ordering::Relaxed);
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }

    fn backlog(&self) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty()) || !self.memory.is_empty()
    }

    /// Writes a batch to the store, or (the store failing) to the spool.
    async fn write(&mut self, records: Vec<RequestRecord>, settlements: Settlements) {
        if !self.backlog() {
            match self.store.record_requests(&records).await {
                Ok(committed) => return self.settle(&records, settlements, &committed).await,
                Err(e) => {
                    tracing::warn!(error = %e, records = records.len(), "writing request records failed; spooling them")
                }
            }
        }
        if let Some(spool) = &mut self.spool {
            match spool.append(&records) {
                Ok(()) => return self.waiting.push_back(Some(settlements)),
                Err(e) => tracing::error!(error = %e, "the record spool failed; keeping records in memory"),
            }
        }
        self.memory.push((records, settlements));
    }

    /// A written batch: settled in the shared counters, its keys then handed to the
    /// budget alerts (which read the counters).
    async fn settle(
        &self,
        records: &[RequestRecord],
        settlements: Settlements,
        committed: &spendgate_store::Committed,
    ) {
        self.settle_shared(records, settlements, committed).await;
        self.touched.add(records.iter().map(|r| &r.key_id));
    }

    /// Settles a written batch in the shared counters: its records that the store did
    /// not have yet are charged (`None` settlements: replayed records, charge only).
    async fn settle_shared(
        &self,
        records: &[RequestRecord],
        settlements: Settlements,
        committed: &spendgate_store::Committed,
    ) {
        let Some(shared) = &self.shared else { return };
        let items = records
            .iter()
            .zip(settlements)
            .zip(&committed.fresh)
            .enumerate()
            .filter_map(|(i, ((r, s), fresh))| {
                // Our own settlement, never applied (a batch is settled once, after the
                // commit it learnt of), or a replayed record's charge.
                let held = s.is_some();
                let mut s = s.unwrap_or_else(|| Settled {
                    entry: None,
                    key_id: r.key_id.clone(),
                    release: None,
                    charge: Some((r.cost, r.created_at)),
                });
                // Already stored: charged when its batch was settled, or by the rebuild
                // since; unless it is ours and an earlier write committed it in this
                // very epoch without our learning of it (the answer to COMMIT was lost).
                let committed_unseen =
                    held && committed.earlier.get(i).is_some_and(|e| e.as_deref() == Some(committed.epoch.as_str()));
                if !fresh && !committed_unseen {
                    s.charge = None;
                }
                (s.release.is_some() || s.charge.is_some()).then_some(s)
            })
            .collect();
        shared.settle(items, &committed.epoch).await;
    }

    /// Writes what waits (spool, then memory) while the store takes it.
    async fn drain(&mut self) {
        // A quick look first: while the store is away, records keep going to the spool
        // instead of waiting on connection attempts.
        if !matches!(tokio::time::timeout(DRAIN_EVERY, self.store.ping()).await, Ok(Ok(()))) {
            return;
        }
        if let Some(spool) = &self.spool
            && !spool.is_empty()
        {
            let batches = match spool.read() {
                Ok(b) => b,
                Err(e) => return tracing::error!(error = %e, "reading the record spool failed"),
            };
            for (i, records) in batches.iter().enumerate() {
                let committed = match self.store.record_requests(records).await {
                    Ok(c) => c,
                    Err(_) => return,
                };
                let settlements = self.waiting.get_mut(i).and_then(Option::take).unwrap_or_default();
                let settlements =
                    if settlements.is_empty() { records.iter().map(|_| None).collect() } else { settlements };
                self.settle(records, settlements, &committed).await;
            }
            tracing::info!(batches = batches.len(), "wrote the spooled request records");
            self.waiting.clear();
            if let Some(spool) = &mut self.spool
                && let Err(e) = spool.clear()
            {
                tracing::error!(error = %e, "emptying the record spool failed");
            }
        }
        while !self.memory.is_empty() {
            let Ok(committed) = self.store.record_requests(&self.memory[0].0).await else { return };
            let (records, settlements) = self.memory.remove(0);
            self.settle(&records, settlements, &committed).await;
        }
    }
}
