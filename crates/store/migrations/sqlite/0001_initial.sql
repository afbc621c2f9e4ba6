-- Wallets, their API keys, spend keys, and request records with daily aggregates.
-- Instants are unix milliseconds (UTC); money is integer nano-dollars; secrets are
-- stored only as SHA-256 hashes.

CREATE TABLE wallets (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE wallet_keys (
    id          TEXT PRIMARY KEY,
    wallet_id   TEXT NOT NULL REFERENCES wallets(id),
    name        TEXT NOT NULL,
    key_hash    BLOB NOT NULL UNIQUE,
    key_preview TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX wallet_keys_wallet ON wallet_keys(wallet_id);

CREATE TABLE spend_keys (
    -- Creation order, for newest-first cursor pagination.
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    wallet_id           TEXT NOT NULL REFERENCES wallets(id),
    name                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    request_shape       TEXT NOT NULL CHECK (request_shape IN ('openai', 'anthropic')),
    allowed_models      TEXT,     -- JSON array, NULL = all
    allowed_providers   TEXT,     -- JSON array, NULL = all
    spend_limit_nanos   INTEGER,
    spend_limit_cycle   TEXT,
    request_limit_count INTEGER,
    request_limit_cycle TEXT,
    rate_limit_rpm      INTEGER,
    rate_limit_burst    INTEGER,
    expires_at          INTEGER,
    key_hash            BLOB NOT NULL UNIQUE,
    key_preview         TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    revoked_at          INTEGER,
    version             INTEGER NOT NULL
);
CREATE INDEX spend_keys_wallet ON spend_keys(wallet_id, seq);

-- One row per request that reached a provider.
CREATE TABLE request_records (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    key_id              TEXT NOT NULL,
    wallet_id           TEXT NOT NULL,
    model               TEXT NOT NULL,
    provider            TEXT NOT NULL,
    endpoint            TEXT NOT NULL,
    status              INTEGER NOT NULL,
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cost_nanos          INTEGER NOT NULL,
    latency_ms          INTEGER NOT NULL,
    created_at          INTEGER NOT NULL
);
CREATE INDEX request_records_key ON request_records(key_id, seq);
CREATE INDEX request_records_wallet ON request_records(wallet_id, seq);

-- Per key and UTC day, kept in the same transaction as the records: the current
-- cycle's figures are a sum over at most 31 rows.
CREATE TABLE key_usage_daily (
    key_id        TEXT NOT NULL,
    day           INTEGER NOT NULL,  -- days since the epoch
    requests      INTEGER NOT NULL,
    spend_nanos   INTEGER NOT NULL,
    tokens        INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    PRIMARY KEY (key_id, day)
);
