//! The request-record writer: records go into a queue on the request path and a
//! background task writes them to the store in batches (group commit: whatever queued
//! up while the last batch was being written goes in the next transaction). A failed
//! write is retried, never dropped. `flush` waits until everything queued before it is
//! durable; a clean shutdown calls it.
//!
//! Crash window: records still in the queue when the process is killed are lost. The
//! queue is written continuously, so under steady load that is the last few
//! milliseconds of requests (one batch).

use spendgate_store::{RequestRecord, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The largest batch written in one transaction.
const MAX_BATCH: usize = 2048;

enum Msg {
    Record(RequestRecord),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Recorder {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(store, rx));
        Recorder { tx }
    }

    /// Queues a record. Never blocks.
    pub fn record(&self, record: RequestRecord) {
        if self.tx.send(Msg::Record(record)).is_err() {
            tracing::error!("request record writer has stopped; a record was not written");
        }
    }

    /// Waits until every record queued before this call is in the store.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.await;
        }
    }
}

async fn write_loop(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut msgs = Vec::with_capacity(MAX_BATCH);
    let mut records = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    while rx.recv_many(&mut msgs, MAX_BATCH).await > 0 {
        for msg in msgs.drain(..) {
            match msg {
                Msg::Record(r) => records.push(r),
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        let mut delay = Duration::from_millis(50);
        while !records.is_empty() {
            match store.record_requests(&records).await {
                Ok(_) => records.clear(),
                Err(e) => {
                    tracing::warn!(error = %e, records = records.len(), "writing request records failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}
