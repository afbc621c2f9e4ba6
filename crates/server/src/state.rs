//! What every handler shares.

use crate::config::Config;
use crate::counters::Counters;
use crate::counters::shared::{Shared, SharedError};
use crate::error::ApiError;
use crate::gateway::keys::Keys;
use crate::gateway::recorder::Recorder;
use crate::gateway::spool::Spool;
use crate::gateway::upstream::Upstreams;
use crate::metrics::Metrics;
use spendgate_core::{SpendKeyId, Timestamp};
use spendgate_store::{Store, StoreError};
use std::sync::Arc;

/// The time source. The system clock in production; tests substitute their own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_unix_millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// Spend keys and their meters, in memory.
    pub keys: Arc<Keys>,
    /// Where admission counts: the meters in `keys`, or the cluster's shared counters.
    pub counters: Counters,
    pub recorder: Recorder,
    pub upstreams: Arc<Upstreams>,
    /// Failed wallet-key sign-ins by address.
    pub auth_guard: Arc<crate::guard::AuthGuard>,
    pub metrics: Arc<Metrics>,
    /// Keys used since the budget-alert task last looked.
    pub alerts: Arc<crate::alerts::Touched>,
    /// Spans of model requests, when exported (`otel.endpoint`).
    pub otel: Option<Arc<crate::otel::Otel>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("loading keys and usage from the store: {0}")]
    Store(#[from] StoreError),
    #[error("joining the cluster's shared counters: {0}")]
    Shared(#[from] SharedError),
    #[error("{0}")]
    Otel(String),
    #[error("opening the record spool in {dir}: {source}")]
    Spool { dir: std::path::PathBuf, source: std::io::Error },
}

impl AppState {
    /// Joins the cluster's shared counters if configured and starts the request record
    /// writer and the budget-alert task (on the current Tokio runtime). Spend keys are read as they are used.
    pub async fn build(store: Arc<dyn Store>, config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
        let keys = Arc::new(Keys::default());
        let metrics = Arc::new(Metrics::new(&config.catalog, config.server.metrics_per_key));
        let upstreams = Upstreams::new(&config.catalog, &config.upstream, &metrics);
        let shared = match &config.shared {
            Some(c) => Some(Shared::start(c, store.clone(), keys.clone(), clock.clone()).await?),
            None => None,
        };
        let spool = Spool::open(&config.spool_dir, &config.database_url)
            .map_err(|source| StartError::Spool { dir: config.spool_dir.clone(), source })?;
        let alerts = Arc::new(crate::alerts::Touched::default());
        let guard = crate::guard::AuthGuard::new(config.server.failed_signins_allowed);
        let otel = match &config.otel {
            Some(policy) => Some(Arc::new(crate::otel::Otel::start(policy).map_err(StartError::Otel)?)),
            None => None,
        };
        let state = AppState {
            recorder: Recorder::start(store.clone(), shared.clone(), Some(spool), alerts.clone()),
            counters: shared.map_or(Counters::Local, Counters::Shared),
            store,
            config: Arc::new(config),
            clock,
            keys,
            upstreams: Arc::new(upstreams),
            auth_guard: Arc::new(guard),
            metrics,
            alerts,
            otel,
        };
        crate::alerts::start(state.clone());
        Ok(state)
    }

    /// Reloads a key from the store into memory (another instance changed it).
    pub async fn reload_key(&self, id: &SpendKeyId) -> Result<(), ApiError> {
        Ok(self.keys.reload(&*self.store, id).await?)
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
