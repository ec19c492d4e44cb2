-- 0006_console: the console's people and their trail. Users (passwords as Argon2id
-- hashes, libsodium's crypto_pwhash_str), sessions (only a SHA-256 of the session id is
-- stored; the id itself lives in the browser's cookie), and the audit log: append-only,
-- each record carrying the hash of the one before (audit.h). Wall-clock times, ms.

CREATE TABLE users (
    name                TEXT PRIMARY KEY,
    role                TEXT NOT NULL
                        CHECK (role IN ('sysadmin', 'secadmin', 'analyst', 'compliance',
                                        'auditor')),
    password_hash       TEXT NOT NULL,
    must_change         INTEGER NOT NULL DEFAULT 0 CHECK (must_change IN (0, 1)),
    password_changed_at BIGINT NOT NULL,
    departments         TEXT,               -- analyst: the departments it sees, one per line
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    locked_until        BIGINT,
    disabled            INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at          BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,            -- hex SHA-256 of the session id
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,               -- the token state changes must echo
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    source     TEXT                         -- the client address at login
);

CREATE INDEX sessions_user ON sessions (user_name);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,           -- 1, 2, ... without gaps
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    source    TEXT,                         -- client address, or "cli"
    action    TEXT NOT NULL,                -- login, logout, incident.status, ...
    object    TEXT,                         -- what it acted on (an incident id, a user)
    outcome   TEXT NOT NULL,                -- ok, denied, refused, failed
    detail    TEXT,
    prev_hash TEXT NOT NULL,                -- hash of record seq - 1 (or of the anchor)
    hash      TEXT NOT NULL                 -- SHA-256 over this record and prev_hash
);

CREATE INDEX audit_log_at ON audit_log (at);

-- The head of the chain (one row): appenders lock it, so records get consecutive seq
-- numbers; anchor_* remember the last record pruned, so the rest still verifies.
CREATE TABLE audit_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    anchor_seq  BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL
);

INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0,
        '0000000000000000000000000000000000000000000000000000000000000000');
