-- The audit log: one row per management action, written in the transaction of the
-- change it describes. Append only.

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    wallet_id   TEXT NOT NULL REFERENCES wallets(id),
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    changes     TEXT NOT NULL,   -- JSON object
    ip          TEXT,
    user_agent  TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_log_wallet ON audit_log(wallet_id, seq);
