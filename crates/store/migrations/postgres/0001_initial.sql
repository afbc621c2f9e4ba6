-- The PostgreSQL schema: the same tables as SQLite's (instants are unix milliseconds,
-- UTC; money is integer nano-dollars; secrets only as SHA-256 hashes), plus the counter
-- epoch that cluster mode's Redis counters are rebuilt against.

CREATE TABLE wallets (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE wallet_keys (
    id          TEXT PRIMARY KEY,
    wallet_id   TEXT NOT NULL REFERENCES wallets(id),
    name        TEXT NOT NULL,
    key_hash    BYTEA NOT NULL UNIQUE,
    key_preview TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX wallet_keys_wallet ON wallet_keys(wallet_id);

CREATE TABLE spend_keys (
    -- Creation order, for newest-first cursor pagination.
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    wallet_id           TEXT NOT NULL REFERENCES wallets(id),
    name                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    request_shape       TEXT NOT NULL CHECK (request_shape IN ('openai', 'anthropic')),
    allowed_models      TEXT,     -- JSON array, NULL = all
    allowed_providers   TEXT,     -- JSON array, NULL = all
    spend_limit_nanos   BIGINT,
    spend_limit_cycle   TEXT,
    request_limit_count BIGINT,
    request_limit_cycle TEXT,
    rate_limit_rpm      BIGINT,
    rate_limit_burst    BIGINT,
    expires_at          BIGINT,
    key_hash            BYTEA NOT NULL UNIQUE,
    key_preview         TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    revoked_at          BIGINT,
    version             BIGINT NOT NULL
);
CREATE INDEX spend_keys_wallet ON spend_keys(wallet_id, seq);

-- One row per request that reached a provider.
CREATE TABLE request_records (
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    key_id              TEXT NOT NULL,
    wallet_id           TEXT NOT NULL,
    model               TEXT NOT NULL,
    provider            TEXT NOT NULL,
    endpoint            TEXT NOT NULL,
    status              BIGINT NOT NULL,
    input_tokens        BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    cost_nanos          BIGINT NOT NULL,
    latency_ms          BIGINT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX request_records_key ON request_records(key_id, seq);
CREATE INDEX request_records_wallet ON request_records(wallet_id, seq);
CREATE INDEX request_records_wallet_time ON request_records(wallet_id, created_at);

-- Per key and UTC day, kept in the same transaction as the records.
CREATE TABLE key_usage_daily (
    key_id        TEXT NOT NULL,
    day           BIGINT NOT NULL,  -- days since the epoch
    requests      BIGINT NOT NULL,
    spend_nanos   BIGINT NOT NULL,
    tokens        BIGINT NOT NULL,
    last_used_at  BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
);

-- Dashboard sign-in sessions (the token only as a SHA-256 hash).
CREATE TABLE dashboard_sessions (
    token_hash    BYTEA PRIMARY KEY,
    wallet_id     TEXT NOT NULL REFERENCES wallets(id),
    wallet_key_id TEXT NOT NULL REFERENCES wallet_keys(id),
    csrf_token    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

-- The epoch of the shared counters (cluster mode): set each time they are rebuilt from
-- this ledger. A batch of records notes the epoch it was committed in, so that it is
-- counted exactly once: by the rebuild, or added to the counters after it.
CREATE TABLE counter_epoch (
    id     SMALLINT PRIMARY KEY CHECK (id = 1),
    epoch  TEXT NOT NULL
);
INSERT INTO counter_epoch (id, epoch) VALUES (1, '');
