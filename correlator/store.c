/*
 * store.c - the alert store, on SQLite (WAL) or PostgreSQL through db.h; see store.h for the
 * exactly-once contract and correlator/README-alerts.md for the design.
 *
 * The migrations are embedded below as string constants; the readable source
 * is correlator/migrations/NNNN_name.sql and test_alerts.c fails when the two
 * differ (README-alerts.md shows how to regenerate the constants).
 *
 * Every statement is prepared once at open and every value is bound; no SQL
 * text is built from data anywhere in this file.
 */
#include "store.h"
#include "store_int.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- embedded migrations (generated from correlator/migrations/NNNN_name.sql) ------------- */

/* BEGIN MIGRATIONS */
static const char MIGRATION_0001[] =
    "-- 0001_alerts: alerts, their tags and evidence, and the consumer offsets that are\n"
    "-- written in the same transaction as the alerts an event produced (store.h).\n"
    "-- Portable subset of SQLite and PostgreSQL: TEXT, INTEGER, BIGINT, CHECK,\n"
    "-- composite keys, ON DELETE CASCADE. Times are event time, ms since the epoch.\n"
    "\n"
    "CREATE TABLE alerts (\n"
    "    -- 32 hex digits of SHA-256(rule_id, group_key, window_start): see alerts.h\n"
    "    id              TEXT PRIMARY KEY,\n"
    "    rule_id         TEXT NOT NULL,\n"
    "    rule_name       TEXT,\n"
    "    title           TEXT NOT NULL,\n"
    "    level           TEXT NOT NULL CHECK (level IN ('informational', 'low', 'medium',\n"
    "                                                   'high', 'critical')),\n"
    "    severity        INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4), -- level, 0..4\n"
    "    status          TEXT NOT NULL DEFAULT 'new'\n"
    "                    CHECK (status IN ('new', 'acknowledged', 'rectifying', 'rectified',\n"
    "                                      'closed', 'false_positive', 'accepted_risk',\n"
    "                                      'reopened')),\n"
    "    category        TEXT,               -- GB/T 20986 category of the first gbt20986 tag\n"
    "    subcategory     TEXT,\n"
    "    group_key       TEXT NOT NULL,\n"
    "    window_start    BIGINT NOT NULL,\n"
    "    first_seen      BIGINT NOT NULL,\n"
    "    last_seen       BIGINT NOT NULL,\n"
    "    count           BIGINT NOT NULL CHECK (count >= 1),\n"
    "    hits            BIGINT NOT NULL CHECK (hits >= 1),\n"
    "    src_ip          TEXT,\n"
    "    dest_ip         TEXT,\n"
    "    src_zone        TEXT,\n"
    "    dest_zone       TEXT,\n"
    "    src_department  TEXT,\n"
    "    dest_department TEXT,\n"
    "    src_asset       TEXT,\n"
    "    dest_asset      TEXT,\n"
    "    department      TEXT,               -- the owning department (责任单位)\n"
    "    created_at      BIGINT NOT NULL,\n"
    "    updated_at      BIGINT NOT NULL\n"
    ");\n"
    "\n"
    "-- The dashboard queue: open alerts by severity, newest first; per department.\n"
    "CREATE INDEX alerts_queue ON alerts (status, severity, last_seen);\n"
    "CREATE INDEX alerts_department ON alerts (department, status, last_seen);\n"
    "CREATE INDEX alerts_level ON alerts (severity, last_seen);\n"
    "CREATE INDEX alerts_last_seen ON alerts (last_seen);\n"
    "-- Dedupe after a restart: the open alert of a rule and key.\n"
    "CREATE INDEX alerts_rule_key ON alerts (rule_id, group_key, first_seen);\n"
    "CREATE INDEX alerts_category ON alerts (category, subcategory, last_seen);\n"
    "\n"
    "CREATE TABLE alert_tags (\n"
    "    alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,\n"
    "    ord      INTEGER NOT NULL,          -- position in the rule's tag list\n"
    "    tag      TEXT NOT NULL,             -- as written in the rule\n"
    "    kind     TEXT NOT NULL CHECK (kind IN ('clause', 'category', 'attack', 'other')),\n"
    "    value    TEXT NOT NULL,             -- 8.1.4.1.c; malware; t1046\n"
    "    sub      TEXT,                      -- mining; technique, tactic, group, software\n"
    "    display  TEXT NOT NULL,             -- 8.1.4.1 c, malware.mining, T1046\n"
    "    PRIMARY KEY (alert_id, tag)\n"
    ");\n"
    "\n"
    "-- Reports per clause or category: WHERE kind = 'clause' AND value = '8.1.3.3.a'.\n"
    "CREATE INDEX alert_tags_value ON alert_tags (kind, value, sub);\n"
    "\n"
    "-- The first N triggering events of an alert (seq 1..N) plus the latest one.\n"
    "-- `event` is the sensor's JSON text, attacker-controlled: bound, never parsed here.\n"
    "CREATE TABLE alert_evidence (\n"
    "    alert_id     TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,\n"
    "    seq          BIGINT NOT NULL,       -- the hit of the alert (1-based)\n"
    "    ts           BIGINT NOT NULL,\n"
    "    community_id TEXT,\n"
    "    event        TEXT NOT NULL,\n"
    "    truncated    INTEGER NOT NULL DEFAULT 0 CHECK (truncated IN (0, 1)),\n"
    "    PRIMARY KEY (alert_id, seq)\n"
    ");\n"
    "\n"
    "-- Pivot from a flow to the alerts it raised.\n"
    "CREATE INDEX alert_evidence_community_id ON alert_evidence (community_id);\n"
    "\n"
    "-- Kafka positions applied to this database: next_offset is the offset of the next\n"
    "-- message to consume (last applied + 1), as in a Kafka offset commit.\n"
    "CREATE TABLE consumer_offsets (\n"
    "    topic        TEXT NOT NULL,\n"
    "    partition_id INTEGER NOT NULL,\n"
    "    next_offset  BIGINT NOT NULL CHECK (next_offset >= 0),\n"
    "    updated_at   BIGINT NOT NULL,       -- wall clock, ms\n"
    "    PRIMARY KEY (topic, partition_id)\n"
    ");\n";

static const char MIGRATION_0002[] =
    "-- 0002_alert_outbox: alert updates waiting for the Kafka alerts topic, written in\n"
    "-- the same transaction as the alerts (transactional outbox). The publisher sends\n"
    "-- them in seq order and deletes them once the broker acknowledged delivery, so a\n"
    "-- crash between storing and publishing re-sends rather than loses.\n"
    "\n"
    "CREATE TABLE alert_outbox (\n"
    "    seq        BIGINT PRIMARY KEY,      -- assigned by the store, increasing\n"
    "    alert_id   TEXT NOT NULL,\n"
    "    payload    TEXT NOT NULL,           -- the alert update as JSON (alert_to_json)\n"
    "    created_at BIGINT NOT NULL          -- event time of the update, ms\n"
    ");\n";

static const char MIGRATION_0003[] =
    "-- 0003_corr_state: the window state of correlation rules, written in the same\n"
    "-- transaction as the alerts and the consumer positions, so a restart resumes the\n"
    "-- windows exactly where the stored positions resume the events (correlation.h,\n"
    "-- \"checkpoints\").\n"
    "\n"
    "CREATE TABLE corr_state (\n"
    "    rule      TEXT NOT NULL,            -- \"<rule id>#<hash of its definition>\"\n"
    "    group_key BLOB NOT NULL,            -- group key and group-by values, NUL-separated\n"
    "    state     BLOB NOT NULL,            -- counts, times, values (correlation.c layout)\n"
    "    PRIMARY KEY (rule, group_key)\n"
    ");\n"
    "\n"
    "-- Single values of the correlator: 'corr_watermark' = newest event time seen, ms.\n"
    "CREATE TABLE correlator_meta (\n"
    "    name  TEXT PRIMARY KEY,\n"
    "    value BIGINT NOT NULL\n"
    ");\n";

static const char MIGRATION_0004[] =
    "-- 0004_correlator_health: what each correlator instance says of itself, for the\n"
    "-- console's health page and metrics: the rules it runs, the rules it refused (a\n"
    "-- level-3 deployment missing rules must not go unnoticed) and its counters.\n"
    "-- Wall-clock times, ms. One row per instance (--instance, default the host name).\n"
    "\n"
    "CREATE TABLE correlator_health (\n"
    "    instance      TEXT PRIMARY KEY,\n"
    "    started_at    BIGINT NOT NULL,\n"
    "    updated_at    BIGINT NOT NULL,\n"
    "    strict        INTEGER NOT NULL,     -- 1: would not start with a rule refused\n"
    "    rules_loaded  INTEGER NOT NULL,\n"
    "    rules_refused INTEGER NOT NULL,\n"
    "    report        TEXT NOT NULL         -- the whole report as JSON (correlator/health.h)\n"
    ");\n";

static const char MIGRATION_0005[] =
    "-- 0005_rectification: the rectification (整改) of every incident. An alert is an\n"
    "-- incident; its status follows the lifecycle of correlator/lifecycle.h, every move\n"
    "-- is recorded in incident_transitions, and the columns below hold what the moves\n"
    "-- set: the assignment, the deadline, the side exits' details, the official notice\n"
    "-- (通报) and the verification by traffic. Wall-clock times (ms) for what people and\n"
    "-- the console do; event times (ms) for what sensors saw (first_seen, stats).\n"
    "\n"
    "-- The status gains 'duplicate'. A CHECK cannot be altered portably and the table\n"
    "-- cannot be rebuilt without cascading deletes to its children, so the column is\n"
    "-- replaced: new column, copy, drop, rename.\n"
    "ALTER TABLE alerts ADD COLUMN state TEXT NOT NULL DEFAULT 'new'\n"
    "    CHECK (state IN ('new', 'acknowledged', 'rectifying', 'rectified', 'closed', 'reopened',\n"
    "                     'false_positive', 'duplicate', 'accepted_risk'));\n"
    "UPDATE alerts SET state = status;\n"
    "DROP INDEX alerts_queue;\n"
    "DROP INDEX alerts_department;\n"
    "ALTER TABLE alerts DROP COLUMN status;\n"
    "ALTER TABLE alerts RENAME COLUMN state TO status;\n"
    "\n"
    "-- Where the incident happened: the inventory segments of both sides and the\n"
    "-- sensor that saw it first (verification asks that sensor's stats).\n"
    "ALTER TABLE alerts ADD COLUMN src_segment TEXT;\n"
    "ALTER TABLE alerts ADD COLUMN dest_segment TEXT;\n"
    "ALTER TABLE alerts ADD COLUMN sensor TEXT;\n"
    "\n"
    "-- Assignment: NULL department = the owning department (alerts.department).\n"
    "ALTER TABLE alerts ADD COLUMN assigned_department TEXT;\n"
    "ALTER TABLE alerts ADD COLUMN assignee TEXT;\n"
    "\n"
    "-- Milestones (wall clock): the last move, the first acknowledgement, the last\n"
    "-- rectification and closure; how often the incident was reopened.\n"
    "ALTER TABLE alerts ADD COLUMN status_at BIGINT;\n"
    "ALTER TABLE alerts ADD COLUMN acknowledged_at BIGINT;\n"
    "ALTER TABLE alerts ADD COLUMN rectified_at BIGINT;\n"
    "ALTER TABLE alerts ADD COLUMN closed_at BIGINT;\n"
    "ALTER TABLE alerts ADD COLUMN reopen_count INTEGER NOT NULL DEFAULT 0;\n"
    "\n"
    "-- The deadline (UTC ms), counted from first_seen by the policy (rules/rectification.yaml)\n"
    "-- or set by a notice or a risk acceptance's expiry; guessed = counted in a year\n"
    "-- without calendar data (Monday to Friday).\n"
    "ALTER TABLE alerts ADD COLUMN deadline_at BIGINT;\n"
    "ALTER TABLE alerts ADD COLUMN containment_at BIGINT;\n"
    "ALTER TABLE alerts ADD COLUMN deadline_guessed INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE alerts ADD COLUMN deadline_source TEXT\n"
    "    CHECK (deadline_source IN ('policy', 'notice', 'risk_expired'));\n"
    "\n"
    "-- Side exits.\n"
    "ALTER TABLE alerts ADD COLUMN duplicate_of TEXT;\n"
    "ALTER TABLE alerts ADD COLUMN risk_reason TEXT;\n"
    "ALTER TABLE alerts ADD COLUMN risk_approver TEXT;\n"
    "ALTER TABLE alerts ADD COLUMN risk_expires BIGINT;\n"
    "\n"
    "-- The official notice (通报) that set this incident's deadline.\n"
    "ALTER TABLE alerts ADD COLUMN notice_no TEXT;\n"
    "ALTER TABLE alerts ADD COLUMN notice_issuer TEXT;\n"
    "ALTER TABLE alerts ADD COLUMN notice_date TEXT;\n"
    "\n"
    "-- Verification by traffic: the window after `rectified`, its outcome and evidence (JSON:\n"
    "-- window, sensors, stats seen).\n"
    "ALTER TABLE alerts ADD COLUMN verify_until BIGINT;\n"
    "ALTER TABLE alerts ADD COLUMN verification TEXT\n"
    "    CHECK (verification IN ('verified', 'sensor_gap'));\n"
    "ALTER TABLE alerts ADD COLUMN verification_evidence TEXT;\n"
    "\n"
    "CREATE INDEX alerts_queue ON alerts (status, severity, last_seen);\n"
    "CREATE INDEX alerts_department ON alerts (department, status, last_seen);\n"
    "CREATE INDEX alerts_deadline ON alerts (deadline_at);\n"
    "\n"
    "-- Every move of an incident: who, when (wall clock), from, to, why. A reassignment,\n"
    "-- a notice or a verification outcome is recorded too (kind), with from/to the status\n"
    "-- it left unchanged.\n"
    "CREATE TABLE incident_transitions (\n"
    "    alert_id   TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,\n"
    "    seq        INTEGER NOT NULL,        -- 1, 2, ... per incident\n"
    "    at         BIGINT NOT NULL,\n"
    "    actor      TEXT NOT NULL,\n"
    "    kind       TEXT NOT NULL CHECK (kind IN ('status', 'assign', 'notice', 'verification')),\n"
    "    from_state TEXT NOT NULL,\n"
    "    to_state   TEXT NOT NULL,\n"
    "    detail     TEXT,                    -- assignment, notice, duplicate of, risk terms\n"
    "    comment    TEXT,\n"
    "    PRIMARY KEY (alert_id, seq)\n"
    ");\n"
    "\n"
    "CREATE INDEX incident_transitions_at ON incident_transitions (at);\n"
    "\n"
    "-- Stats events per sensor and hour (event time): what verification by traffic\n"
    "-- reads to decide whether a sensor watched throughout a window.\n"
    "CREATE TABLE sensor_stats (\n"
    "    sensor   TEXT NOT NULL,\n"
    "    hour     BIGINT NOT NULL,           -- event time / 3600000\n"
    "    segment  TEXT,\n"
    "    count    BIGINT NOT NULL,\n"
    "    first_ts BIGINT NOT NULL,\n"
    "    last_ts  BIGINT NOT NULL,\n"
    "    PRIMARY KEY (sensor, hour)\n"
    ");\n";

static const char MIGRATION_0006[] =
    "-- 0006_console: the console's people and their trail. Users (passwords as Argon2id\n"
    "-- hashes, libsodium's crypto_pwhash_str), sessions (only a SHA-256 of the session id is\n"
    "-- stored; the id itself lives in the browser's cookie), and the audit log: append-only,\n"
    "-- each record carrying the hash of the one before (audit.h). Wall-clock times, ms.\n"
    "\n"
    "CREATE TABLE users (\n"
    "    name                TEXT PRIMARY KEY,\n"
    "    role                TEXT NOT NULL\n"
    "                        CHECK (role IN ('sysadmin', 'secadmin', 'analyst', 'compliance',\n"
    "                                        'auditor')),\n"
    "    password_hash       TEXT NOT NULL,\n"
    "    must_change         INTEGER NOT NULL DEFAULT 0 CHECK (must_change IN (0, 1)),\n"
    "    password_changed_at BIGINT NOT NULL,\n"
    "    departments         TEXT,               -- analyst: the departments it sees, one per "
    "line\n"
    "    failed_logins       INTEGER NOT NULL DEFAULT 0,\n"
    "    locked_until        BIGINT,\n"
    "    disabled            INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),\n"
    "    created_at          BIGINT NOT NULL\n"
    ");\n"
    "\n"
    "CREATE TABLE sessions (\n"
    "    id_hash    TEXT PRIMARY KEY,            -- hex SHA-256 of the session id\n"
    "    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,\n"
    "    csrf       TEXT NOT NULL,               -- the token state changes must echo\n"
    "    created_at BIGINT NOT NULL,\n"
    "    last_seen  BIGINT NOT NULL,\n"
    "    source     TEXT                         -- the client address at login\n"
    ");\n"
    "\n"
    "CREATE INDEX sessions_user ON sessions (user_name);\n"
    "\n"
    "CREATE TABLE audit_log (\n"
    "    seq       BIGINT PRIMARY KEY,           -- 1, 2, ... without gaps\n"
    "    at        BIGINT NOT NULL,\n"
    "    actor     TEXT NOT NULL,\n"
    "    source    TEXT,                         -- client address, or \"cli\"\n"
    "    action    TEXT NOT NULL,                -- login, logout, incident.status, ...\n"
    "    object    TEXT,                         -- what it acted on (an incident id, a user)\n"
    "    outcome   TEXT NOT NULL,                -- ok, denied, refused, failed\n"
    "    detail    TEXT,\n"
    "    prev_hash TEXT NOT NULL,                -- hash of record seq - 1 (or of the anchor)\n"
    "    hash      TEXT NOT NULL                 -- SHA-256 over this record and prev_hash\n"
    ");\n"
    "\n"
    "CREATE INDEX audit_log_at ON audit_log (at);\n"
    "\n"
    "-- The head of the chain (one row): appenders lock it, so records get consecutive seq\n"
    "-- numbers; anchor_* remember the last record pruned, so the rest still verifies.\n"
    "CREATE TABLE audit_head (\n"
    "    id          INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    seq         BIGINT NOT NULL,\n"
    "    hash        TEXT NOT NULL,\n"
    "    anchor_seq  BIGINT NOT NULL,\n"
    "    anchor_hash TEXT NOT NULL\n"
    ");\n"
    "\n"
    "INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash)\n"
    "VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0,\n"
    "        '0000000000000000000000000000000000000000000000000000000000000000');\n";

static const char MIGRATION_0007[] =
    "-- 0007_console_admin: comments on incidents, suppressions, API tokens and rule\n"
    "-- switches. Wall-clock times, ms.\n"
    "\n"
    "-- Comments join the incident's timeline: the transitions table gains the kind\n"
    "-- 'comment' (SQLite cannot change a CHECK in place, so the table is rebuilt).\n"
    "CREATE TABLE incident_transitions_v7 (\n"
    "    alert_id   TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,\n"
    "    seq        INTEGER NOT NULL,\n"
    "    at         BIGINT NOT NULL,\n"
    "    actor      TEXT NOT NULL,\n"
    "    kind       TEXT NOT NULL\n"
    "               CHECK (kind IN ('status', 'assign', 'notice', 'verification', 'comment')),\n"
    "    from_state TEXT NOT NULL,\n"
    "    to_state   TEXT NOT NULL,\n"
    "    detail     TEXT,\n"
    "    comment    TEXT,\n"
    "    PRIMARY KEY (alert_id, seq)\n"
    ");\n"
    "INSERT INTO incident_transitions_v7\n"
    "SELECT alert_id, seq, at, actor, kind, from_state, to_state, detail, comment\n"
    "FROM incident_transitions;\n"
    "DROP TABLE incident_transitions;\n"
    "ALTER TABLE incident_transitions_v7 RENAME TO incident_transitions;\n"
    "CREATE INDEX incident_transitions_at ON incident_transitions (at);\n"
    "\n"
    "-- A suppression hides the alerts of one rule, optionally only from one source,\n"
    "-- optionally only towards one destination, until it expires or is revoked. The\n"
    "-- correlator reads the active ones and counts what each one hid (hits).\n"
    "CREATE TABLE suppressions (\n"
    "    id         TEXT PRIMARY KEY,            -- 16 random bytes, hex\n"
    "    rule_id    TEXT NOT NULL,\n"
    "    src_ip     TEXT,                        -- NULL: any source\n"
    "    dest_ip    TEXT,                        -- NULL: any destination (needs src_ip)\n"
    "    reason     TEXT NOT NULL,\n"
    "    from_alert TEXT,                        -- the alert it was made from\n"
    "    created_by TEXT NOT NULL,\n"
    "    created_at BIGINT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    revoked_by TEXT,\n"
    "    revoked_at BIGINT,\n"
    "    hits       BIGINT NOT NULL DEFAULT 0,\n"
    "    last_hit   BIGINT,                      -- event time of the last alert it hid\n"
    "    CHECK (dest_ip IS NULL OR src_ip IS NOT NULL)\n"
    ");\n"
    "\n"
    "CREATE INDEX suppressions_active ON suppressions (revoked_at, expires_at);\n"
    "\n"
    "-- API tokens for automation: the token is shown once; only its SHA-256 is kept.\n"
    "-- A token acts as its owner with the role it was given (never more than the owner's).\n"
    "CREATE TABLE api_tokens (\n"
    "    id         TEXT PRIMARY KEY,            -- public part, \"fht_\" + 16 hex digits\n"
    "    hash       TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the whole token\n"
    "    name       TEXT NOT NULL,\n"
    "    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,\n"
    "    role       TEXT NOT NULL\n"
    "               CHECK (role IN ('sysadmin', 'secadmin', 'analyst', 'compliance', 'auditor')),\n"
    "    created_at BIGINT NOT NULL,\n"
    "    expires_at BIGINT NOT NULL,\n"
    "    revoked_at BIGINT,\n"
    "    last_used  BIGINT\n"
    ");\n"
    "\n"
    "CREATE INDEX api_tokens_user ON api_tokens (user_name);\n"
    "\n"
    "-- Rules switched off from the console (a rule not listed is on), and the\n"
    "-- generation the correlators compare to know when to reload.\n"
    "CREATE TABLE rule_switches (\n"
    "    rule_id    TEXT PRIMARY KEY,\n"
    "    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),\n"
    "    changed_by TEXT NOT NULL,\n"
    "    changed_at BIGINT NOT NULL\n"
    ");\n"
    "\n"
    "CREATE TABLE console_generation (\n"
    "    id         INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    rules      BIGINT NOT NULL,             -- bumped by every rule change or reload request\n"
    "    suppress   BIGINT NOT NULL              -- bumped by every suppression change\n"
    ");\n"
    "\n"
    "INSERT INTO console_generation (id, rules, suppress) VALUES (1, 0, 0);\n";

static const char MIGRATION_0008[] =
    "-- 0008_group_indexes: the queue's default order as an index (a page is a range scan,\n"
    "-- however deep), and covering indexes for the alert groups (GET /api/v1/alerts/groups,\n"
    "-- as EveBox groups: by rule, source, destination). The grouped query reads only the\n"
    "-- index, in group order: with a million alerts the unfiltered rule grouping went from\n"
    "-- seconds to about 0.2 s on SQLite (bench/README.md, \"The console API\").\n"
    "CREATE INDEX alerts_group_rule ON alerts (rule_id, rule_name, last_seen, first_seen, count);\n"
    "CREATE INDEX alerts_group_src ON alerts (src_ip, last_seen, first_seen, count);\n"
    "CREATE INDEX alerts_group_dest ON alerts (dest_ip, last_seen, first_seen, count);\n"
    "CREATE INDEX alerts_last_seen_id ON alerts (last_seen, id);\n";

static const char MIGRATION_0009[] =
    "-- 0009_traffic: what the sensors saw, for the overview (态势感知). traffic_hourly holds\n"
    "-- flows, packets and bytes per hour of event time by segment, application protocol,\n"
    "-- nDPI category and destination country, summed by the correlator from flow events in\n"
    "-- the transaction of their batch (a flow counts once, when it ends: update events are\n"
    "-- not counted). '' stands for \"none\" in the key columns. sensor_status keeps each\n"
    "-- sensor's latest stats event (and the packet count of the one before, for packets/s),\n"
    "-- its drops and Kafka failures.\n"
    "CREATE TABLE traffic_hourly (\n"
    "    hour      BIGINT NOT NULL,            -- event time / 3600000\n"
    "    segment   TEXT NOT NULL,              -- sensor.segment\n"
    "    app_proto TEXT NOT NULL,              -- 'unknown' when nDPI named none\n"
    "    category  TEXT NOT NULL,              -- ndpi.category\n"
    "    country   TEXT NOT NULL,              -- geo.dest.country (ISO 3166), '' not looked up\n"
    "    flows     BIGINT NOT NULL,\n"
    "    packets   BIGINT NOT NULL,\n"
    "    bytes     BIGINT NOT NULL,\n"
    "    PRIMARY KEY (hour, segment, app_proto, category, country)\n"
    ");\n"
    "\n"
    "CREATE TABLE sensor_status (\n"
    "    sensor         TEXT PRIMARY KEY,\n"
    "    segment        TEXT,\n"
    "    ts             BIGINT NOT NULL,       -- event time of its latest stats event (ms)\n"
    "    received_at    BIGINT NOT NULL,       -- wall clock when a correlator stored it (ms)\n"
    "    packets        BIGINT NOT NULL,       -- stats.capture.packets (since the sensor "
    "started)\n"
    "    prev_ts        BIGINT,                -- the stats event before (NULL: none, or the\n"
    "    prev_packets   BIGINT,                --   sensor restarted): packets/s between the two\n"
    "    kernel_packets BIGINT,                -- live capture only, as in the stats event\n"
    "    kernel_drops   BIGINT,\n"
    "    ifdrops        BIGINT,\n"
    "    kafka_failed   BIGINT,                -- stats.kafka.failed (with --kafka)\n"
    "    kafka_dropped  BIGINT,\n"
    "    spool_pending  BIGINT,                -- stats.kafka.spool.pending\n"
    "    output_dropped BIGINT                 -- stats.output.dropped\n"
    ");\n";
/* END MIGRATIONS */

static const store_migration migrations[] = {
    {1, "0001_alerts", MIGRATION_0001},        {2, "0002_alert_outbox", MIGRATION_0002},
    {3, "0003_corr_state", MIGRATION_0003},    {4, "0004_correlator_health", MIGRATION_0004},
    {5, "0005_rectification", MIGRATION_0005}, {6, "0006_console", MIGRATION_0006},
    {7, "0007_console_admin", MIGRATION_0007}, {8, "0008_group_indexes", MIGRATION_0008},
    {9, "0009_traffic", MIGRATION_0009},
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

const store_migration *store_migrations(size_t *n)
{
    *n = NMIGRATIONS;
    return migrations;
}

/* ---- statements ------------------------------------------------------------------- */

#define ALERT_COLS                                                                                 \
    "id, rule_id, rule_name, title, severity, status, group_key, window_start, first_seen, "       \
    "last_seen, count, hits, src_ip, dest_ip, src_zone, dest_zone, src_department, "               \
    "dest_department, src_asset, dest_asset, department, created_at, updated_at, src_segment, "    \
    "dest_segment, sensor"

static const char *const stmt_sql[S_COUNT] = {
    [S_UPSERT] =
        "INSERT INTO alerts (id, rule_id, rule_name, title, level, severity, category, "
        "subcategory, group_key, window_start, first_seen, last_seen, count, hits, src_ip, "
        "dest_ip, src_zone, dest_zone, src_department, dest_department, src_asset, dest_asset, "
        "department, created_at, updated_at, src_segment, dest_segment, sensor) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
        "?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28) "
        "ON CONFLICT (id) DO UPDATE SET "
        /* never backwards: a stale state cannot undo a newer one */
        "first_seen = CASE WHEN excluded.first_seen < alerts.first_seen "
        "THEN excluded.first_seen ELSE alerts.first_seen END, "
        "last_seen = CASE WHEN excluded.last_seen > alerts.last_seen "
        "THEN excluded.last_seen ELSE alerts.last_seen END, "
        "count = CASE WHEN excluded.hits > alerts.hits THEN excluded.count ELSE alerts.count END, "
        "updated_at = CASE WHEN excluded.hits > alerts.hits "
        "THEN excluded.updated_at ELSE alerts.updated_at END, "
        "hits = CASE WHEN excluded.hits > alerts.hits THEN excluded.hits ELSE alerts.hits END, "
        "src_ip = COALESCE(alerts.src_ip, excluded.src_ip), "
        "dest_ip = COALESCE(alerts.dest_ip, excluded.dest_ip), "
        "src_zone = COALESCE(alerts.src_zone, excluded.src_zone), "
        "dest_zone = COALESCE(alerts.dest_zone, excluded.dest_zone), "
        "src_department = COALESCE(alerts.src_department, excluded.src_department), "
        "dest_department = COALESCE(alerts.dest_department, excluded.dest_department), "
        "src_asset = COALESCE(alerts.src_asset, excluded.src_asset), "
        "dest_asset = COALESCE(alerts.dest_asset, excluded.dest_asset), "
        "department = COALESCE(alerts.department, excluded.department), "
        "src_segment = COALESCE(alerts.src_segment, excluded.src_segment), "
        "dest_segment = COALESCE(alerts.dest_segment, excluded.dest_segment), "
        "sensor = COALESCE(alerts.sensor, excluded.sensor)",
    [S_TAG] = "INSERT INTO alert_tags (alert_id, ord, tag, kind, value, sub, display) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (alert_id, tag) DO NOTHING",
    [S_EV_INSERT] =
        "INSERT INTO alert_evidence (alert_id, seq, ts, community_id, event, truncated) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (alert_id, seq) DO NOTHING",
    [S_EV_DEL_LATEST] = "DELETE FROM alert_evidence WHERE alert_id = ?1 AND seq > ?2",
    [S_OUTBOX_INSERT] = "INSERT INTO alert_outbox (seq, alert_id, payload, created_at) "
                        "VALUES (?1, ?2, ?3, ?4)",
    [S_OUTBOX_READ] = "SELECT seq, alert_id, payload FROM alert_outbox WHERE seq > ?1 "
                      "ORDER BY seq LIMIT ?2",
    [S_OUTBOX_DELETE] = "DELETE FROM alert_outbox WHERE seq <= ?1",
    [S_OFFSET_SET] = "INSERT INTO consumer_offsets (topic, partition_id, next_offset, updated_at) "
                     "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (topic, partition_id) DO UPDATE SET "
                     "next_offset = excluded.next_offset, updated_at = excluded.updated_at",
    [S_OFFSET_GET] = "SELECT next_offset FROM consumer_offsets WHERE topic = ?1 AND "
                     "partition_id = ?2",
    [S_OFFSETS] = "SELECT partition_id, next_offset FROM consumer_offsets WHERE topic = ?1 "
                  "ORDER BY partition_id",
    [S_LOAD_OPEN] = "SELECT " ALERT_COLS " FROM alerts WHERE rule_id = ?1 AND group_key = ?2 "
                    "AND status IN ('new', 'acknowledged', 'rectifying', 'reopened', 'rectified') "
                    "ORDER BY first_seen DESC, id DESC LIMIT 1",
    [S_GET] = "SELECT " ALERT_COLS " FROM alerts WHERE id = ?1",
    [S_GET_TAGS] = "SELECT tag FROM alert_tags WHERE alert_id = ?1 ORDER BY ord",
    [S_GET_EVIDENCE] = "SELECT seq, ts, community_id, event, truncated FROM alert_evidence "
                       "WHERE alert_id = ?1 ORDER BY seq",
    [S_CORR_PUT] = "INSERT INTO corr_state (rule, group_key, state) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (rule, group_key) DO UPDATE SET state = excluded.state",
    [S_CORR_DEL] = "DELETE FROM corr_state WHERE rule = ?1 AND group_key = ?2",
    [S_CORR_DEL_RULE] = "DELETE FROM corr_state WHERE rule = ?1",
    [S_CORR_LOAD] = "SELECT rule, group_key, state FROM corr_state ORDER BY rule, group_key",
    [S_META_SET] = "INSERT INTO correlator_meta (name, value) VALUES (?1, ?2) "
                   "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    [S_META_GET] = "SELECT value FROM correlator_meta WHERE name = ?1",
    [S_HEALTH_PUT] =
        "INSERT INTO correlator_health (instance, started_at, updated_at, strict, rules_loaded, "
        "rules_refused, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (instance) DO "
        "UPDATE SET started_at = excluded.started_at, updated_at = excluded.updated_at, "
        "strict = excluded.strict, rules_loaded = excluded.rules_loaded, "
        "rules_refused = excluded.rules_refused, report = excluded.report",
    [S_STATUS_GET] = "SELECT status FROM alerts WHERE id = ?1",
    /* a recurrence of a rectified incident: the correlator reopens it */
    [S_REOPEN] = "UPDATE alerts SET status = 'reopened', status_at = ?2, "
                 "reopen_count = reopen_count + 1, verify_until = NULL, verification = NULL, "
                 "verification_evidence = NULL WHERE id = ?1 AND status = 'rectified'",
    [S_TRANSITION] =
        "INSERT INTO incident_transitions (alert_id, seq, at, actor, kind, from_state, to_state, "
        "detail, comment) SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 "
        "FROM incident_transitions WHERE alert_id = ?1",
    [S_SENSOR_STATS] =
        "INSERT INTO sensor_stats (sensor, hour, segment, count, first_ts, last_ts) "
        "VALUES (?1, ?2, ?3, 1, ?4, ?4) ON CONFLICT (sensor, hour) DO UPDATE SET "
        "count = sensor_stats.count + 1, segment = COALESCE(excluded.segment, "
        "sensor_stats.segment), "
        "first_ts = CASE WHEN excluded.first_ts < sensor_stats.first_ts THEN excluded.first_ts "
        "ELSE sensor_stats.first_ts END, "
        "last_ts = CASE WHEN excluded.last_ts > sensor_stats.last_ts THEN excluded.last_ts "
        "ELSE sensor_stats.last_ts END",
};

/* ---- helpers ---------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) fh_err store_fail(store *st, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
    va_end(ap);
    n = strlen(st->errmsg);
    if (st->db && n < sizeof(st->errmsg))
        snprintf(st->errmsg + n, sizeof(st->errmsg) - n, ": %s", db_errmsg(st->db));
    return FH_ERR_IO;
}

int64_t store_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t store_now_ms(const store *st)
{
    return st->o.now ? st->o.now(st->o.now_ctx) : store_wall_ms();
}

fh_err store_exec(store *st, const char *sql, const char *what)
{
    if (db_exec(st->db, sql) != FH_OK)
        return store_fail(st, "%s", what);
    return FH_OK;
}

/* Steps a statement that returns no rows, then resets it. */
fh_err store_step_done(store *st, db_stmt *s, const char *what)
{
    int rc = db_step(s);
    fh_err err = FH_OK;

    if (rc != DB_DONE)
        err = store_fail(st, "%s", what);
    db_reset(s);
    return err;
}

void store_bind_ms(db_stmt *s, int i, int64_t ms)
{
    if (ms)
        db_bind_int64(s, i, ms);
    else
        db_bind_null(s, i);
}

db_stmt *store_lazy(store *st, int i, const char *sql)
{
    if (i < 0 || i >= STORE_LAZY_MAX) {
        snprintf(st->errmsg, sizeof(st->errmsg), "store: statement slot %d out of range", i);
        return NULL;
    }
    if (!st->lazy[i] && !(st->lazy[i] = db_prepare(st->db, sql)))
        store_fail(st, "prepare statement %d", i);
    return st->lazy[i];
}

void store_stmt_done(db_stmt *s)
{
    db_reset(s);
}

/* A copy of a text column, NULL for SQL NULL; *failed on allocation failure. */
char *store_col_dup(db_stmt *s, int i, bool *failed)
{
    const char *t;
    size_t n;
    char *p;

    if (db_column_null(s, i))
        return NULL;
    t = db_column_text(s, i);
    n = db_column_bytes(s, i);
    p = malloc((size_t)n + 1);
    if (!p || !t) {
        free(p);
        *failed = true;
        return NULL;
    }
    memcpy(p, t, (size_t)n);
    p[n] = '\0';
    return p;
}

/* ---- open, migrate, close --------------------------------------------------------- */

/* A migration in the backend's dialect: PostgreSQL has BYTEA where SQLite has BLOB. */
static char *dialect(store *st, const char *sql)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 2 + 1), *o = out;

    if (!out)
        return NULL;
    for (const char *p = sql; *p;) {
        if (db_backend(st->db) == DB_POSTGRES && !strncmp(p, " BLOB", 5) &&
            (p[5] == ' ' || p[5] == ',' || p[5] == '\n' || p[5] == ')')) {
            memcpy(o, " BYTEA", 6);
            o += 6;
            p += 5;
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

static fh_err migrate(store *st)
{
    db_stmt *s = NULL;
    int current = 0;
    fh_err err;

    if ((err = store_begin(st)))
        return err;
    /* PostgreSQL: one migrating connection at a time (SQLite: BEGIN IMMEDIATE did it) */
    if (db_backend(st->db) == DB_POSTGRES &&
        (err = store_exec(st, "SELECT pg_advisory_xact_lock(4242006)", "migrations: lock")))
        goto fail;
    if ((err = store_exec(
             st,
             "CREATE TABLE IF NOT EXISTS schema_migrations ("
             "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
             "migrations: CREATE TABLE schema_migrations")))
        goto fail;
    if (!(s = db_prepare(st->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")) ||
        db_step(s) != DB_ROW) {
        err = store_fail(st, "migrations: reading schema_migrations");
        goto fail;
    }
    current = (int)db_column_int64(s, 0);
    db_finalize(s);
    s = NULL;
    if (current > migrations[NMIGRATIONS - 1].version) {
        snprintf(st->errmsg, sizeof(st->errmsg),
                 "schema version %d is newer than this build knows (%d)", current,
                 migrations[NMIGRATIONS - 1].version);
        err = FH_ERR_CONFIG;
        goto fail;
    }
    if (!(s = db_prepare(st->db, "INSERT INTO schema_migrations (version, name, applied_at) "
                                 "VALUES (?1, ?2, ?3)"))) {
        err = store_fail(st, "migrations: prepare");
        goto fail;
    }
    for (size_t i = 0; i < NMIGRATIONS; i++) {
        const store_migration *m = &migrations[i];
        char *sql;

        if (m->version <= current)
            continue;
        if (!(sql = dialect(st, m->sql))) {
            err = FH_ERR_NOMEM;
            snprintf(st->errmsg, sizeof(st->errmsg), "migration %s: out of memory", m->name);
            goto fail;
        }
        err = db_exec(st->db, sql) == FH_OK ? FH_OK : store_fail(st, "migration %s", m->name);
        free(sql);
        if (err)
            goto fail;
        db_bind_int64(s, 1, m->version);
        db_bind_text(s, 2, m->name, -1);
        db_bind_int64(s, 3, store_wall_ms());
        if ((err = store_step_done(st, s, "migrations: INSERT schema_migrations")))
            goto fail;
    }
    db_finalize(s);
    s = NULL;
    if ((err = store_commit(st)))
        goto fail;
    return FH_OK;
fail:
    db_finalize(s);
    store_rollback(st);
    return err;
}

/* The target for messages: a PostgreSQL URI without its password. */
static void display_name(const char *target, char *out, size_t len)
{
    const char *scheme = strstr(target, "://"), *at, *colon;

    snprintf(out, len, "%s", target);
    if (!db_target_is_postgres(target) || !scheme)
        return;
    scheme += 3;
    at = strchr(scheme, '@');
    colon = at ? memchr(scheme, ':', (size_t)(at - scheme)) : NULL;
    if (colon)
        snprintf(out, len, "%.*s:***%s", (int)(colon - target), target, at);
}

fh_err store_open(store **out, const store_opts *opts, char *err, size_t errlen)
{
    store *st;
    db_stmt *s = NULL;
    db_opts dbo;
    fh_err e;
    const char *path = opts && opts->path ? opts->path : NULL;
    char name[256];

    *out = NULL;
    if (!path || !*path) {
        snprintf(err, errlen, "store: no database path");
        return FH_ERR_CONFIG;
    }
    display_name(path, name, sizeof(name));
    st = calloc(1, sizeof(*st));
    if (!st || !(st->path = strdup(path)) || !jbuf_init(&st->json, 4096, 1 << 24)) {
        if (st) {
            free(st->path);
            free(st);
        }
        snprintf(err, errlen, "store '%s': out of memory", name);
        return FH_ERR_NOMEM;
    }
    st->o = *opts;
    st->o.path = st->path;
    if (st->o.busy_timeout_ms <= 0)
        st->o.busy_timeout_ms = 5000;
    if (!st->o.evidence_first)
        st->o.evidence_first = 10;
    dbo.busy_timeout_ms = st->o.busy_timeout_ms;
    dbo.sync_full = st->o.sync_full;
    if ((e = db_open(&st->db, path, &dbo, st->errmsg, sizeof(st->errmsg))) || (e = migrate(st)))
        goto fail;
    for (int i = 0; i < S_COUNT; i++)
        if (!(st->s[i] = db_prepare(st->db, stmt_sql[i]))) {
            e = store_fail(st, "prepare statement %d", i);
            goto fail;
        }
    if (!(s = db_prepare(st->db, "SELECT COALESCE(MAX(seq), 0) FROM alert_outbox")) ||
        db_step(s) != DB_ROW) {
        db_finalize(s);
        e = store_fail(st, "reading alert_outbox");
        goto fail;
    }
    st->next_outbox_seq = (uint64_t)db_column_int64(s, 0) + 1;
    db_finalize(s);
    *out = st;
    return FH_OK;
fail:
    snprintf(err, errlen, "store '%s': %s", name, st->errmsg);
    store_close(st);
    return e;
}

void store_close(store *st)
{
    if (!st)
        return;
    if (st->in_tx && st->db)
        store_rollback(st);
    for (int i = 0; i < S_COUNT; i++)
        db_finalize(st->s[i]);
    for (int i = 0; i < STORE_LAZY_MAX; i++)
        db_finalize(st->lazy[i]);
    db_close(st->db);
    jbuf_free(&st->json);
    free(st->path);
    free(st);
}

const char *store_errmsg(const store *st)
{
    return st->errmsg;
}

int store_schema_version(store *st)
{
    db_stmt *s = NULL;
    int v = 0;

    if ((s = db_prepare(st->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")) &&
        db_step(s) == DB_ROW)
        v = (int)db_column_int64(s, 0);
    db_finalize(s);
    return v;
}

/* ---- transactions ----------------------------------------------------------------- */

fh_err store_begin(store *st)
{
    if (st->in_tx) {
        snprintf(st->errmsg, sizeof(st->errmsg), "store_begin: a transaction is already open");
        return FH_ERR_ARG;
    }
    if (db_begin(st->db) != FH_OK)
        return store_fail(st, "store_begin: BEGIN");
    st->in_tx = true;
    return FH_OK;
}

fh_err store_commit(store *st)
{
    fh_err err;

    if (!st->in_tx) {
        snprintf(st->errmsg, sizeof(st->errmsg), "store_commit: no transaction is open");
        return FH_ERR_ARG;
    }
    if ((err = store_exec(st, "COMMIT", "store_commit: COMMIT"))) {
        /* SQLite may keep the transaction open after a failed COMMIT (busy): roll it
         * back so the caller's state (rollback + book reset) holds. */
        store_rollback(st);
        return err;
    }
    st->in_tx = false;
    return FH_OK;
}

void store_rollback(store *st)
{
    if (db_in_transaction(st->db))
        db_exec(st->db, "ROLLBACK");
    st->in_tx = false;
}

bool store_in_transaction(const store *st)
{
    return st->in_tx;
}

fh_err store_need_tx(store *st, const char *what)
{
    if (st->in_tx)
        return FH_OK;
    snprintf(st->errmsg, sizeof(st->errmsg), "%s: outside a transaction (call store_begin)", what);
    return FH_ERR_ARG;
}

/* ---- applying alerts -------------------------------------------------------------- */

static fh_err apply_row(store *st, const alert *a)
{
    db_stmt *s = st->s[S_UPSERT];
    const char *level = alert_level_name(a->level);

    if (!level) {
        snprintf(st->errmsg, sizeof(st->errmsg), "store_apply: alert %s: bad level %d", a->id,
                 a->level);
        return FH_ERR_ARG;
    }
    db_bind_str(s, 1, a->id);
    db_bind_str(s, 2, a->rule_id);
    db_bind_str(s, 3, a->rule_name);
    db_bind_str(s, 4, a->title);
    db_bind_str(s, 5, level);
    db_bind_int64(s, 6, a->level);
    db_bind_str(s, 7, a->category);
    db_bind_str(s, 8, a->subcategory);
    db_bind_str(s, 9, a->group_key);
    db_bind_int64(s, 10, a->window_start_ms);
    db_bind_int64(s, 11, a->first_seen_ms);
    db_bind_int64(s, 12, a->last_seen_ms);
    db_bind_int64(s, 13, (int64_t)a->count);
    db_bind_int64(s, 14, (int64_t)a->hits);
    db_bind_str(s, 15, a->src.ip);
    db_bind_str(s, 16, a->dest.ip);
    db_bind_str(s, 17, a->src.zone);
    db_bind_str(s, 18, a->dest.zone);
    db_bind_str(s, 19, a->src.department);
    db_bind_str(s, 20, a->dest.department);
    db_bind_str(s, 21, a->src.name);
    db_bind_str(s, 22, a->dest.name);
    db_bind_str(s, 23, a->department);
    db_bind_int64(s, 24, a->created_ms);
    db_bind_int64(s, 25, a->updated_ms);
    db_bind_str(s, 26, a->src.segment);
    db_bind_str(s, 27, a->dest.segment);
    db_bind_str(s, 28, a->sensor);
    return store_step_done(st, s, "store_apply: INSERT alerts");
}

static fh_err apply_tags(store *st, const alert *a)
{
    db_stmt *s = st->s[S_TAG];
    fh_err err;

    for (uint32_t i = 0; i < a->ntags; i++) {
        const alert_tag *t = &a->tags[i];

        db_bind_str(s, 1, a->id);
        db_bind_int64(s, 2, (int)i);
        db_bind_str(s, 3, t->tag);
        db_bind_str(s, 4, alert_tag_kind_name(t->kind));
        db_bind_str(s, 5, t->value);
        db_bind_str(s, 6, t->sub);
        db_bind_str(s, 7, t->display);
        if ((err = store_step_done(st, s, "store_apply: INSERT alert_tags")))
            return err;
    }
    return FH_OK;
}

static fh_err apply_evidence(store *st, const alert *a)
{
    fh_err err;

    for (uint32_t i = 0; i < a->nevidence; i++) {
        const alert_evidence *e = &a->evidence[i];
        db_stmt *s;

        if (e->event_len > INT_MAX) {
            snprintf(st->errmsg, sizeof(st->errmsg), "store_apply: evidence too large");
            return FH_ERR_LIMIT;
        }
        if (e->seq > st->o.evidence_first) {
            /* the latest item replaces the previous latest one */
            s = st->s[S_EV_DEL_LATEST];
            db_bind_str(s, 1, a->id);
            db_bind_int64(s, 2, (int64_t)st->o.evidence_first);
            if ((err = store_step_done(st, s, "store_apply: DELETE alert_evidence")))
                return err;
        }
        s = st->s[S_EV_INSERT];
        db_bind_str(s, 1, a->id);
        db_bind_int64(s, 2, (int64_t)e->seq);
        db_bind_int64(s, 3, e->ts_ms);
        db_bind_str(s, 4, e->community_id);
        db_bind_text(s, 5, e->event ? e->event : "", e->event ? (int)e->event_len : 0);
        db_bind_int64(s, 6, e->truncated ? 1 : 0);
        if ((err = store_step_done(st, s, "store_apply: INSERT alert_evidence")))
            return err;
    }
    return FH_OK;
}

static fh_err apply_outbox(store *st, const alert *a, const char *status)
{
    db_stmt *s = st->s[S_OUTBOX_INSERT];
    alert shown = *a; /* shallow: the JSON shows the stored status, not the book's copy */
    fh_err err;

    if (status)
        shown.status = (char *)status;
    if ((err = alert_to_json(&shown, &st->json))) {
        snprintf(st->errmsg, sizeof(st->errmsg), "store_apply: alert %s: JSON too large", a->id);
        return err;
    }
    db_bind_int64(s, 1, (int64_t)st->next_outbox_seq);
    db_bind_str(s, 2, a->id);
    db_bind_text(s, 3, st->json.data, (int)st->json.len);
    db_bind_int64(s, 4, a->updated_ms);
    if ((err = store_step_done(st, s, "store_apply: INSERT alert_outbox")))
        return err;
    st->next_outbox_seq++;
    return FH_OK;
}

/*
 * The incident's status before this update (*status: "" when the alert is new).
 * A rectified incident that fires again is reopened here, in the transaction of
 * the event that recurred, and the move is recorded: the console may have moved
 * it to rectified while the book held it, so the store's word counts.
 */
static fh_err apply_recurrence(store *st, const alert *a, char *status, size_t len)
{
    db_stmt *s = st->s[S_STATUS_GET];
    int64_t now;
    char detail[96], when[32];
    fh_err err;
    int rc;

    status[0] = '\0';
    db_bind_str(s, 1, a->id);
    rc = db_step(s);
    if (rc == DB_ROW)
        snprintf(status, len, "%s", db_column_text(s, 0));
    else if (rc != DB_DONE)
        store_fail(st, "store_apply: SELECT status");
    store_stmt_done(s);
    if (rc != DB_ROW && rc != DB_DONE)
        return FH_ERR_IO;
    if (strcmp(status, "rectified") != 0)
        return FH_OK;
    now = store_now_ms(st);
    s = st->s[S_REOPEN];
    db_bind_str(s, 1, a->id);
    db_bind_int64(s, 2, now);
    if ((err = store_step_done(st, s, "store_apply: UPDATE alerts (reopen)")))
        return err;
    if (db_changes(st->db) == 0) /* PostgreSQL: someone moved it since we read it */
        return FH_OK;
    alert_format_time(a->last_seen_ms, when);
    snprintf(detail, sizeof(detail), "recurrence at %s (event time); hits %llu", when,
             (unsigned long long)a->hits);
    if ((err = store_record(st, a->id, now, "correlator", "status", "rectified", "reopened", detail,
                            NULL)))
        return err;
    snprintf(status, len, "reopened");
    return FH_OK;
}

fh_err store_record(store *st, const char *id, int64_t at, const char *actor, const char *kind,
                    const char *from, const char *to, const char *detail, const char *comment)
{
    db_stmt *s = st->s[S_TRANSITION];

    db_bind_str(s, 1, id);
    db_bind_int64(s, 2, at);
    db_bind_str(s, 3, actor);
    db_bind_str(s, 4, kind);
    db_bind_str(s, 5, from);
    db_bind_str(s, 6, to);
    db_bind_str(s, 7, detail);
    db_bind_str(s, 8, comment);
    return store_step_done(st, s, "INSERT incident_transitions");
}

fh_err store_apply(store *st, const alert *a)
{
    char status[32];
    fh_err err;

    if ((err = store_need_tx(st, "store_apply")))
        return err;
    if ((err = apply_recurrence(st, a, status, sizeof(status))))
        return err;
    if ((err = apply_row(st, a)))
        return err;
    if (a->opened && (err = apply_tags(st, a)))
        return err;
    if ((err = apply_evidence(st, a)))
        return err;
    if (st->o.outbox && (err = apply_outbox(st, a, status[0] ? status : NULL)))
        return err;
    return FH_OK;
}

fh_err store_sensor_stats(store *st, const char *sensor, const char *segment, int64_t ts_ms)
{
    db_stmt *s = st->s[S_SENSOR_STATS];
    fh_err err;

    if ((err = store_need_tx(st, "store_sensor_stats")))
        return err;
    if (!sensor || !*sensor || ts_ms <= 0)
        return FH_OK;
    db_bind_str(s, 1, sensor);
    db_bind_int64(s, 2, ts_ms / 3600000);
    db_bind_str(s, 3, segment && *segment ? segment : NULL);
    db_bind_int64(s, 4, ts_ms);
    return store_step_done(st, s, "store_sensor_stats: INSERT sensor_stats");
}

/* ---- offsets ---------------------------------------------------------------------- */

fh_err store_set_offset(store *st, const char *topic, int32_t partition, int64_t next_offset)
{
    db_stmt *s = st->s[S_OFFSET_SET];
    fh_err err;

    if ((err = store_need_tx(st, "store_set_offset")))
        return err;
    if (!topic || next_offset < 0) {
        snprintf(st->errmsg, sizeof(st->errmsg), "store_set_offset: bad topic or offset");
        return FH_ERR_ARG;
    }
    db_bind_str(s, 1, topic);
    db_bind_int64(s, 2, partition);
    db_bind_int64(s, 3, next_offset);
    db_bind_int64(s, 4, store_wall_ms());
    return store_step_done(st, s, "store_set_offset: INSERT consumer_offsets");
}

fh_err store_get_offset(store *st, const char *topic, int32_t partition, int64_t *next_offset)
{
    db_stmt *s = st->s[S_OFFSET_GET];
    int rc;
    fh_err err = FH_OK;

    db_bind_str(s, 1, topic);
    db_bind_int64(s, 2, partition);
    rc = db_step(s);
    if (rc == DB_ROW)
        *next_offset = db_column_int64(s, 0);
    else if (rc == DB_DONE)
        err = FH_ERR_NOTFOUND;
    else
        err = store_fail(st, "store_get_offset");
    store_stmt_done(s);
    return err;
}

fh_err store_get_offsets(store *st, const char *topic, store_offset_fn fn, void *ctx)
{
    db_stmt *s = st->s[S_OFFSETS];
    int rc;
    fh_err err = FH_OK;

    db_bind_str(s, 1, topic);
    while ((rc = db_step(s)) == DB_ROW)
        fn(ctx, (int)db_column_int64(s, 0), db_column_int64(s, 1));
    if (rc != DB_DONE)
        err = store_fail(st, "store_get_offsets");
    store_stmt_done(s);
    return err;
}

/* ---- correlation window state ------------------------------------------------------ */

fh_err store_corr_put(void *ctx, const char *rule, const char *key, size_t keylen,
                      const void *state, size_t len)
{
    store *st = ctx;
    db_stmt *s = st->s[S_CORR_PUT];
    fh_err err;

    if ((err = store_need_tx(st, "store_corr_put")))
        return err;
    db_bind_str(s, 1, rule);
    db_bind_blob(s, 2, key, keylen);
    db_bind_blob(s, 3, state, len);
    return store_step_done(st, s, "store_corr_put: INSERT corr_state");
}

fh_err store_corr_del(void *ctx, const char *rule, const char *key, size_t keylen)
{
    store *st = ctx;
    db_stmt *s = st->s[key ? S_CORR_DEL : S_CORR_DEL_RULE];
    fh_err err;

    if ((err = store_need_tx(st, "store_corr_del")))
        return err;
    db_bind_str(s, 1, rule);
    if (key)
        db_bind_blob(s, 2, keylen ? key : "", keylen);
    return store_step_done(st, s, "store_corr_del: DELETE corr_state");
}

fh_err store_corr_load(store *st, store_corr_fn fn, void *ctx)
{
    db_stmt *s = st->s[S_CORR_LOAD];
    fh_err err = FH_OK;
    int rc;

    while ((rc = db_step(s)) == DB_ROW) {
        const char *rule = db_column_text(s, 0);
        size_t keylen, len;
        const void *key = db_column_blob(s, 1, &keylen);
        const void *state = db_column_blob(s, 2, &len);

        fn(ctx, rule ? rule : "", key ? key : "", keylen, state ? state : "", len);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "store_corr_load: SELECT corr_state");
    store_stmt_done(s);
    return err;
}

fh_err store_meta_set(store *st, const char *name, int64_t value)
{
    db_stmt *s = st->s[S_META_SET];
    fh_err err;

    if ((err = store_need_tx(st, "store_meta_set")))
        return err;
    db_bind_str(s, 1, name);
    db_bind_int64(s, 2, value);
    return store_step_done(st, s, "store_meta_set: INSERT correlator_meta");
}

fh_err store_meta_get(store *st, const char *name, int64_t *value)
{
    db_stmt *s = st->s[S_META_GET];
    fh_err err = FH_OK;
    int rc;

    db_bind_str(s, 1, name);
    rc = db_step(s);
    if (rc == DB_ROW)
        *value = db_column_int64(s, 0);
    else if (rc == DB_DONE)
        err = FH_ERR_NOTFOUND;
    else
        err = store_fail(st, "store_meta_get: SELECT correlator_meta");
    store_stmt_done(s);
    return err;
}

/* Ends a transaction the caller opened for itself (own): commit, or roll back on err. */
fh_err store_own_tx_end(store *st, bool own, fh_err err)
{
    if (!own)
        return err;
    if (err) {
        store_rollback(st);
        return err;
    }
    return store_commit(st);
}

fh_err store_health_put(store *st, const store_health *h)
{
    db_stmt *s = st->s[S_HEALTH_PUT];
    bool own = !st->in_tx;
    fh_err err;

    if (own && (err = store_begin(st)))
        return err;
    db_bind_str(s, 1, h->instance);
    db_bind_int64(s, 2, h->started_ms);
    db_bind_int64(s, 3, h->updated_ms);
    db_bind_int64(s, 4, h->strict ? 1 : 0);
    db_bind_int64(s, 5, h->rules_loaded);
    db_bind_int64(s, 6, h->rules_refused);
    db_bind_str(s, 7, h->report);
    err = store_step_done(st, s, "store_health_put: INSERT correlator_health");
    return store_own_tx_end(st, own, err);
}

/* ---- reading alerts --------------------------------------------------------------- */

/* Fills a from a row of ALERT_COLS. */
static fh_err read_row(db_stmt *s, alert *a)
{
    bool failed = false;
    const char *id = db_column_text(s, 0);

    snprintf(a->id, sizeof(a->id), "%s", id ? (const char *)id : "");
    a->rule_id = store_col_dup(s, 1, &failed);
    a->rule_name = store_col_dup(s, 2, &failed);
    a->title = store_col_dup(s, 3, &failed);
    a->level = (int)db_column_int64(s, 4);
    a->status = store_col_dup(s, 5, &failed);
    a->group_key = store_col_dup(s, 6, &failed);
    a->window_start_ms = db_column_int64(s, 7);
    a->first_seen_ms = db_column_int64(s, 8);
    a->last_seen_ms = db_column_int64(s, 9);
    a->count = (uint64_t)db_column_int64(s, 10);
    a->hits = (uint64_t)db_column_int64(s, 11);
    a->src.ip = store_col_dup(s, 12, &failed);
    a->dest.ip = store_col_dup(s, 13, &failed);
    a->src.zone = store_col_dup(s, 14, &failed);
    a->dest.zone = store_col_dup(s, 15, &failed);
    a->src.department = store_col_dup(s, 16, &failed);
    a->dest.department = store_col_dup(s, 17, &failed);
    a->src.name = store_col_dup(s, 18, &failed);
    a->dest.name = store_col_dup(s, 19, &failed);
    a->department = store_col_dup(s, 20, &failed);
    a->created_ms = db_column_int64(s, 21);
    a->updated_ms = db_column_int64(s, 22);
    a->src.segment = store_col_dup(s, 23, &failed);
    a->dest.segment = store_col_dup(s, 24, &failed);
    a->sensor = store_col_dup(s, 25, &failed);
    return failed ? FH_ERR_NOMEM : FH_OK;
}

static fh_err read_tags(store *st, alert *a)
{
    db_stmt *s = st->s[S_GET_TAGS];
    char **tags = NULL;
    uint32_t n = 0, cap = 0;
    int rc;
    fh_err err = FH_OK;

    db_bind_str(s, 1, a->id);
    while ((rc = db_step(s)) == DB_ROW) {
        bool failed = false;

        if (n == cap) {
            char **t = realloc(tags, (cap ? cap * 2 : 8) * sizeof(*tags));

            if (!t) {
                err = FH_ERR_NOMEM;
                break;
            }
            tags = t;
            cap = cap ? cap * 2 : 8;
        }
        tags[n] = store_col_dup(s, 0, &failed);
        if (failed || !tags[n]) {
            err = FH_ERR_NOMEM;
            break;
        }
        n++;
    }
    if (!err && rc != DB_DONE)
        err = store_fail(st, "reading alert_tags");
    store_stmt_done(s);
    if (!err)
        err = alert_set_tags(a, (const char *const *)tags, n);
    for (uint32_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
    return err;
}

static fh_err read_evidence(store *st, alert *a)
{
    db_stmt *s = st->s[S_GET_EVIDENCE];
    uint32_t cap = 0;
    int rc;
    fh_err err = FH_OK;

    db_bind_str(s, 1, a->id);
    while ((rc = db_step(s)) == DB_ROW) {
        alert_evidence *e;
        bool failed = false;

        if (a->nevidence == cap) {
            alert_evidence *t = realloc(a->evidence, (cap ? cap * 2 : 8) * sizeof(*t));

            if (!t) {
                err = FH_ERR_NOMEM;
                break;
            }
            a->evidence = t;
            cap = cap ? cap * 2 : 8;
        }
        e = &a->evidence[a->nevidence];
        memset(e, 0, sizeof(*e));
        e->seq = (uint64_t)db_column_int64(s, 0);
        e->ts_ms = db_column_int64(s, 1);
        e->community_id = store_col_dup(s, 2, &failed);
        e->event = store_col_dup(s, 3, &failed);
        e->event_len = db_column_bytes(s, 3);
        e->truncated = (int)db_column_int64(s, 4) != 0;
        a->nevidence++;
        if (failed) {
            err = FH_ERR_NOMEM;
            break;
        }
    }
    if (!err && rc != DB_DONE)
        err = store_fail(st, "reading alert_evidence");
    store_stmt_done(s);
    return err;
}

fh_err store_load_open(store *st, const char *rule_id, const char *group_key, alert *out,
                       bool *found)
{
    db_stmt *s = st->s[S_LOAD_OPEN];
    int rc;
    fh_err err = FH_OK;

    *found = false;
    db_bind_str(s, 1, rule_id);
    db_bind_str(s, 2, group_key);
    rc = db_step(s);
    if (rc == DB_ROW) {
        err = read_row(s, out);
        *found = true;
    } else if (rc != DB_DONE) {
        err = store_fail(st, "store_load_open");
    }
    store_stmt_done(s);
    if (!err && *found)
        err = read_tags(st, out);
    if (err) {
        alert_clear(out);
        *found = false;
    }
    return err;
}

fh_err store_book_load(void *st, const char *rule_id, const char *group_key, alert *out,
                       bool *found)
{
    return store_load_open(st, rule_id, group_key, out, found);
}

fh_err store_get_alert(store *st, const char *id, alert *out)
{
    db_stmt *s = st->s[S_GET];
    int rc;
    fh_err err = FH_OK;

    memset(out, 0, sizeof(*out));
    db_bind_str(s, 1, id);
    rc = db_step(s);
    if (rc == DB_ROW)
        err = read_row(s, out);
    else if (rc == DB_DONE)
        err = FH_ERR_NOTFOUND;
    else
        err = store_fail(st, "store_get_alert");
    store_stmt_done(s);
    if (!err)
        err = read_tags(st, out);
    if (!err)
        err = read_evidence(st, out);
    if (err)
        alert_clear(out);
    return err;
}

/* ---- outbox ----------------------------------------------------------------------- */

fh_err store_outbox_read(store *st, uint64_t after, uint32_t max, store_outbox_fn fn, void *ctx)
{
    db_stmt *s = st->s[S_OUTBOX_READ];
    int rc;
    fh_err err = FH_OK;

    db_bind_int64(s, 1, (int64_t)after);
    db_bind_int64(s, 2, max);
    while ((rc = db_step(s)) == DB_ROW) {
        err = fn(ctx, (uint64_t)db_column_int64(s, 0), db_column_text(s, 1), db_column_text(s, 2),
                 db_column_bytes(s, 2));
        if (err)
            break;
    }
    if (!err && rc != DB_DONE)
        err = store_fail(st, "store_outbox_read");
    store_stmt_done(s);
    return err;
}

fh_err store_outbox_ack(store *st, uint64_t upto)
{
    db_stmt *s = st->s[S_OUTBOX_DELETE];
    bool own = !st->in_tx;
    fh_err err;

    if (own && (err = store_begin(st)))
        return err;
    db_bind_int64(s, 1, (int64_t)upto);
    err = store_step_done(st, s, "store_outbox_ack: DELETE alert_outbox");
    return store_own_tx_end(st, own, err);
}
