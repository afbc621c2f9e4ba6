-- Dashboard sign-in sessions (the token is stored only as a SHA-256 hash), and an index
-- for usage by model over a time range.

CREATE TABLE dashboard_sessions (
    token_hash    BLOB PRIMARY KEY,
    wallet_id     TEXT NOT NULL REFERENCES wallets(id),
    wallet_key_id TEXT NOT NULL REFERENCES wallet_keys(id),
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);

CREATE INDEX request_records_wallet_time ON request_records(wallet_id, created_at);
