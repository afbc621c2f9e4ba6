//! A cluster for end-to-end tests: several real `spendgate serve` processes sharing a
//! fresh PostgreSQL database and a Redis database of their own, in front of the mock
//! provider. Redis is `SPENDGATE_TEST_REDIS` (default redis://127.0.0.1:6379); like
//! PostgreSQL, a missing server skips the test, or fails it under `CI=true`.

use super::{Server, TempDir, create_wallet_in, provider_env, start_mock_with};
use spendgate_store::testing::{TestDatabase, services_required};
use std::sync::atomic::{AtomicU32, Ordering};

/// One instance's settings.
#[derive(Clone, Debug)]
pub struct Instance {
    pub database: String,
    pub redis: String,
    pub fail_open: bool,
    /// More of the config file (whole sections).
    pub extra: String,
}

pub struct Cluster {
    pub servers: Vec<Server>,
    pub wallet_key: String,
    pub mock: spendgate_mock::Mock,
    pub mock_url: String,
    /// The shared Redis database (`redis://HOST:PORT/N`).
    pub redis_url: String,
    pub prefix: String,
    pub dir: TempDir,
    pub db: TestDatabase,
}

fn redis_base() -> String {
    std::env::var("SPENDGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

impl Cluster {
    /// `n` instances, once PostgreSQL and Redis answer (else `None`, or a panic in CI).
    pub async fn start(name: &str, n: usize, mock: spendgate_mock::MockConfig) -> Option<Cluster> {
        static DB: AtomicU32 = AtomicU32::new(1);
        let db = TestDatabase::create().await?;
        let base = redis_base();
        match redis::Client::open(base.as_str()).unwrap().get_multiplexed_async_connection().await {
            Ok(_) => {}
            Err(e) if services_required() => panic!("CI=true but Redis at {base} is not reachable: {e}"),
            Err(e) => {
                eprintln!("skipping: Redis at {base} is not reachable ({e}); set CI=true to fail instead");
                return None;
            }
        }
        // Each test its own Redis database (1 to 15), so FLUSHDB touches only its own.
        let index = DB.fetch_add(1, Ordering::Relaxed);
        assert!(index < 16, "more cluster tests than Redis databases");
        let redis_url = format!("{base}/{index}");
        let prefix = format!("sgtest{}", std::process::id());
        let (mock_url, mock) = start_mock_with(mock).await;
        let dir = TempDir::new(name);
        let (_, wallet_key) = create_wallet_in(&db.url, "cluster");
        let mut cluster = Cluster { servers: Vec::new(), wallet_key, mock, mock_url, redis_url, prefix, dir, db };
        cluster.flushdb().await;
        for _ in 0..n {
            let server = cluster.launch(&cluster.instance());
            cluster.servers.push(server);
        }
        Some(cluster)
    }

    /// The default settings of an instance of this cluster.
    pub fn instance(&self) -> Instance {
        Instance {
            database: self.db.url.clone(),
            redis: self.redis_url.clone(),
            fail_open: false,
            extra: String::new(),
        }
    }

    /// Starts one more instance (not added to `servers`).
    pub fn launch(&self, i: &Instance) -> Server {
        static N: AtomicU32 = AtomicU32::new(0);
        let config = self.dir.path(&format!("instance-{}.toml", N.fetch_add(1, Ordering::Relaxed)));
        let failure = if i.fail_open { "open" } else { "closed" };
        let spool = self.dir.path("spool");
        std::fs::write(
            &config,
            format!(
                "database = {:?}\nspool_dir = {:?}\n[cluster]\nredis = {:?}\nredis_prefix = {:?}\non_redis_failure = {failure:?}\n{}",
                i.database, spool, i.redis, self.prefix, i.extra
            ),
        )
        .unwrap();
        let env = provider_env(&self.mock_url);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::launch(&self.dir, &["--config", config.to_str().unwrap()], &env)
    }

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }

    /// Empties this test's Redis database (a Redis restart, as far as spendgate can tell).
    pub async fn flushdb(&self) {
        let _: () = redis::cmd("FLUSHDB").query_async(&mut self.redis().await).await.unwrap();
    }

    /// A key's shared counters hash.
    pub async fn counters(&self, key_id: &str) -> std::collections::HashMap<String, i64> {
        let name = format!("{}:1:k:{key_id}", self.prefix);
        redis::cmd("HGETALL").arg(name).query_async(&mut self.redis().await).await.unwrap()
    }

    pub async fn store(&self) -> std::sync::Arc<dyn spendgate_store::Store> {
        spendgate_store::open(&self.db.url).await.unwrap()
    }
}
