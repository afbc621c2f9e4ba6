-- Budget alerts: a wallet's webhooks, and one delivery per webhook and event (`dedup`
-- names the event: the key, the threshold or limit, the cycle), so an event is sent once.

CREATE TABLE webhooks (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    wallet_id     TEXT NOT NULL REFERENCES wallets(id),
    spend_key_id  TEXT,
    url           TEXT NOT NULL,
    secret        TEXT NOT NULL,
    events        TEXT NOT NULL,   -- JSON array of event names
    thresholds    TEXT NOT NULL,   -- JSON array of percents
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE INDEX webhooks_wallet ON webhooks(wallet_id, seq);

CREATE TABLE webhook_deliveries (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id),
    wallet_id        TEXT NOT NULL,
    dedup            TEXT NOT NULL,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    UNIQUE (webhook_id, dedup)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, seq);
CREATE INDEX spend_keys_expiry ON spend_keys(expires_at) WHERE expires_at IS NOT NULL;
