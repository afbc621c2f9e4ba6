//! What every handler shares.

use crate::config::Config;
use crate::gateway::keys::Keys;
use crate::gateway::recorder::Recorder;
use crate::gateway::upstream::Upstreams;
use spendgate_core::Timestamp;
use spendgate_store::{Store, StoreError};
use std::sync::Arc;

/// The time source. The system clock in production; tests substitute their own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(time::OffsetDateTime::now_utc())
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// Spend keys and their meters, in memory.
    pub keys: Arc<Keys>,
    pub recorder: Recorder,
    pub upstreams: Arc<Upstreams>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("loading keys and usage from the store: {0}")]
    Store(#[from] StoreError),
    #[error("building the HTTP clients for the providers: {0}")]
    Http(#[from] reqwest::Error),
}

impl AppState {
    /// Loads every spend key and its recent usage into memory and starts the request
    /// record writer (on the current Tokio runtime).
    pub async fn build(store: Arc<dyn Store>, config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
        let keys = Keys::load(&*store, clock.now()).await?;
        let upstreams = Upstreams::new(&config.catalog)?;
        Ok(AppState {
            recorder: Recorder::start(store.clone()),
            store,
            config: Arc::new(config),
            clock,
            keys: Arc::new(keys),
            upstreams: Arc::new(upstreams),
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
