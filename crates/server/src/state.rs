//! What every handler shares.

use crate::config::Config;
use spendgate_core::Timestamp;
use spendgate_store::Store;
use std::sync::Arc;

/// The time source. The system clock in production; tests may substitute their own.
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
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        AppState {
            store,
            config: Arc::new(config),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
