-- 0007_console_admin: comments on incidents, suppressions, API tokens and rule
-- switches. Wall-clock times, ms.

-- Comments join the incident's timeline: the transitions table gains the kind
-- 'comment' (SQLite cannot change a CHECK in place, so the table is rebuilt).
CREATE TABLE incident_transitions_v7 (
    alert_id   TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL
               CHECK (kind IN ('status', 'assign', 'notice', 'verification', 'comment')),
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    detail     TEXT,
    comment    TEXT,
    PRIMARY KEY (alert_id, seq)
);
INSERT INTO incident_transitions_v7
SELECT alert_id, seq, at, actor, kind, from_state, to_state, detail, comment
FROM incident_transitions;
DROP TABLE incident_transitions;
ALTER TABLE incident_transitions_v7 RENAME TO incident_transitions;
CREATE INDEX incident_transitions_at ON incident_transitions (at);

-- A suppression hides the alerts of one rule, optionally only from one source,
-- optionally only towards one destination, until it expires or is revoked. The
-- correlator reads the active ones and counts what each one hid (hits).
CREATE TABLE suppressions (
    id         TEXT PRIMARY KEY,            -- 16 random bytes, hex
    rule_id    TEXT NOT NULL,
    src_ip     TEXT,                        -- NULL: any source
    dest_ip    TEXT,                        -- NULL: any destination (needs src_ip)
    reason     TEXT NOT NULL,
    from_alert TEXT,                        -- the alert it was made from
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_by TEXT,
    revoked_at BIGINT,
    hits       BIGINT NOT NULL DEFAULT 0,
    last_hit   BIGINT,                      -- event time of the last alert it hid
    CHECK (dest_ip IS NULL OR src_ip IS NOT NULL)
);

CREATE INDEX suppressions_active ON suppressions (revoked_at, expires_at);

-- API tokens for automation: the token is shown once; only its SHA-256 is kept.
-- A token acts as its owner with the role it was given (never more than the owner's).
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,            -- public part, "fht_" + 16 hex digits
    hash       TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the whole token
    name       TEXT NOT NULL,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    role       TEXT NOT NULL
               CHECK (role IN ('sysadmin', 'secadmin', 'analyst', 'compliance', 'auditor')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used  BIGINT
);

CREATE INDEX api_tokens_user ON api_tokens (user_name);

-- Rules switched off from the console (a rule not listed is on), and the
-- generation the correlators compare to know when to reload.
CREATE TABLE rule_switches (
    rule_id    TEXT PRIMARY KEY,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);

CREATE TABLE console_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    rules      BIGINT NOT NULL,             -- bumped by every rule change or reload request
    suppress   BIGINT NOT NULL              -- bumped by every suppression change
);

INSERT INTO console_generation (id, rules, suppress) VALUES (1, 0, 0);
