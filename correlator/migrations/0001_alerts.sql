-- 0001_alerts: alerts, their tags and evidence, and the consumer offsets that are
-- written in the same transaction as the alerts an event produced (store.h).
-- Portable subset of SQLite and PostgreSQL: TEXT, INTEGER, BIGINT, CHECK,
-- composite keys, ON DELETE CASCADE. Times are event time, ms since the epoch.

CREATE TABLE alerts (
    -- 32 hex digits of SHA-256(rule_id, group_key, window_start): see alerts.h
    id              TEXT PRIMARY KEY,
    rule_id         TEXT NOT NULL,
    rule_name       TEXT,
    title           TEXT NOT NULL,
    level           TEXT NOT NULL CHECK (level IN ('informational', 'low', 'medium',
                                                   'high', 'critical')),
    severity        INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4), -- level, 0..4
    status          TEXT NOT NULL DEFAULT 'new'
                    CHECK (status IN ('new', 'acknowledged', 'rectifying', 'rectified',
                                      'closed', 'false_positive', 'accepted_risk',
                                      'reopened')),
    category        TEXT,               -- GB/T 20986 category of the first gbt20986 tag
    subcategory     TEXT,
    group_key       TEXT NOT NULL,
    window_start    BIGINT NOT NULL,
    first_seen      BIGINT NOT NULL,
    last_seen       BIGINT NOT NULL,
    count           BIGINT NOT NULL CHECK (count >= 1),
    hits            BIGINT NOT NULL CHECK (hits >= 1),
    src_ip          TEXT,
    dest_ip         TEXT,
    src_zone        TEXT,
    dest_zone       TEXT,
    src_department  TEXT,
    dest_department TEXT,
    src_asset       TEXT,
    dest_asset      TEXT,
    department      TEXT,               -- the owning department (责任单位)
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- The dashboard queue: open alerts by severity, newest first; per department.
CREATE INDEX alerts_queue ON alerts (status, severity, last_seen);
CREATE INDEX alerts_department ON alerts (department, status, last_seen);
CREATE INDEX alerts_level ON alerts (severity, last_seen);
CREATE INDEX alerts_last_seen ON alerts (last_seen);
-- Dedupe after a restart: the open alert of a rule and key.
CREATE INDEX alerts_rule_key ON alerts (rule_id, group_key, first_seen);
CREATE INDEX alerts_category ON alerts (category, subcategory, last_seen);

CREATE TABLE alert_tags (
    alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    ord      INTEGER NOT NULL,          -- position in the rule's tag list
    tag      TEXT NOT NULL,             -- as written in the rule
    kind     TEXT NOT NULL CHECK (kind IN ('clause', 'category', 'attack', 'other')),
    value    TEXT NOT NULL,             -- 8.1.4.1.c; malware; t1046
    sub      TEXT,                      -- mining; technique, tactic, group, software
    display  TEXT NOT NULL,             -- 8.1.4.1 c, malware.mining, T1046
    PRIMARY KEY (alert_id, tag)
);

-- Reports per clause or category: WHERE kind = 'clause' AND value = '8.1.3.3.a'.
CREATE INDEX alert_tags_value ON alert_tags (kind, value, sub);

-- The first N triggering events of an alert (seq 1..N) plus the latest one.
-- `event` is the sensor's JSON text, attacker-controlled: bound, never parsed here.
CREATE TABLE alert_evidence (
    alert_id     TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,       -- the hit of the alert (1-based)
    ts           BIGINT NOT NULL,
    community_id TEXT,
    event        TEXT NOT NULL,
    truncated    INTEGER NOT NULL DEFAULT 0 CHECK (truncated IN (0, 1)),
    PRIMARY KEY (alert_id, seq)
);

-- Pivot from a flow to the alerts it raised.
CREATE INDEX alert_evidence_community_id ON alert_evidence (community_id);

-- Kafka positions applied to this database: next_offset is the offset of the next
-- message to consume (last applied + 1), as in a Kafka offset commit.
CREATE TABLE consumer_offsets (
    topic        TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset  BIGINT NOT NULL CHECK (next_offset >= 0),
    updated_at   BIGINT NOT NULL,       -- wall clock, ms
    PRIMARY KEY (topic, partition_id)
);
