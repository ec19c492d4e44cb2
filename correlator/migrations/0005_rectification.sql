-- 0005_rectification: the rectification (整改) of every incident. An alert is an
-- incident; its status follows the lifecycle of correlator/lifecycle.h, every move
-- is recorded in incident_transitions, and the columns below hold what the moves
-- set: the assignment, the deadline, the side exits' details, the official notice
-- (通报) and the verification by traffic. Wall-clock times (ms) for what people and
-- the console do; event times (ms) for what sensors saw (first_seen, stats).

-- The status gains 'duplicate'. A CHECK cannot be altered portably and the table
-- cannot be rebuilt without cascading deletes to its children, so the column is
-- replaced: new column, copy, drop, rename.
ALTER TABLE alerts ADD COLUMN state TEXT NOT NULL DEFAULT 'new'
    CHECK (state IN ('new', 'acknowledged', 'rectifying', 'rectified', 'closed', 'reopened',
                     'false_positive', 'duplicate', 'accepted_risk'));
UPDATE alerts SET state = status;
DROP INDEX alerts_queue;
DROP INDEX alerts_department;
ALTER TABLE alerts DROP COLUMN status;
ALTER TABLE alerts RENAME COLUMN state TO status;

-- Where the incident happened: the inventory segments of both sides and the
-- sensor that saw it first (verification asks that sensor's stats).
ALTER TABLE alerts ADD COLUMN src_segment TEXT;
ALTER TABLE alerts ADD COLUMN dest_segment TEXT;
ALTER TABLE alerts ADD COLUMN sensor TEXT;

-- Assignment: NULL department = the owning department (alerts.department).
ALTER TABLE alerts ADD COLUMN assigned_department TEXT;
ALTER TABLE alerts ADD COLUMN assignee TEXT;

-- Milestones (wall clock): the last move, the first acknowledgement, the last
-- rectification and closure; how often the incident was reopened.
ALTER TABLE alerts ADD COLUMN status_at BIGINT;
ALTER TABLE alerts ADD COLUMN acknowledged_at BIGINT;
ALTER TABLE alerts ADD COLUMN rectified_at BIGINT;
ALTER TABLE alerts ADD COLUMN closed_at BIGINT;
ALTER TABLE alerts ADD COLUMN reopen_count INTEGER NOT NULL DEFAULT 0;

-- The deadline (UTC ms), counted from first_seen by the policy (rules/rectification.yaml)
-- or set by a notice or a risk acceptance's expiry; guessed = counted in a year
-- without calendar data (Monday to Friday).
ALTER TABLE alerts ADD COLUMN deadline_at BIGINT;
ALTER TABLE alerts ADD COLUMN containment_at BIGINT;
ALTER TABLE alerts ADD COLUMN deadline_guessed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN deadline_source TEXT
    CHECK (deadline_source IN ('policy', 'notice', 'risk_expired'));

-- Side exits.
ALTER TABLE alerts ADD COLUMN duplicate_of TEXT;
ALTER TABLE alerts ADD COLUMN risk_reason TEXT;
ALTER TABLE alerts ADD COLUMN risk_approver TEXT;
ALTER TABLE alerts ADD COLUMN risk_expires BIGINT;

-- The official notice (通报) that set this incident's deadline.
ALTER TABLE alerts ADD COLUMN notice_no TEXT;
ALTER TABLE alerts ADD COLUMN notice_issuer TEXT;
ALTER TABLE alerts ADD COLUMN notice_date TEXT;

-- Verification by traffic: the window after `rectified`, its outcome and evidence (JSON:
-- window, sensors, stats seen).
ALTER TABLE alerts ADD COLUMN verify_until BIGINT;
ALTER TABLE alerts ADD COLUMN verification TEXT
    CHECK (verification IN ('verified', 'sensor_gap'));
ALTER TABLE alerts ADD COLUMN verification_evidence TEXT;

CREATE INDEX alerts_queue ON alerts (status, severity, last_seen);
CREATE INDEX alerts_department ON alerts (department, status, last_seen);
CREATE INDEX alerts_deadline ON alerts (deadline_at);

-- Every move of an incident: who, when (wall clock), from, to, why. A reassignment,
-- a notice or a verification outcome is recorded too (kind), with from/to the status
-- it left unchanged.
CREATE TABLE incident_transitions (
    alert_id   TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,        -- 1, 2, ... per incident
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('status', 'assign', 'notice', 'verification')),
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    detail     TEXT,                    -- assignment, notice, duplicate of, risk terms
    comment    TEXT,
    PRIMARY KEY (alert_id, seq)
);

CREATE INDEX incident_transitions_at ON incident_transitions (at);

-- Stats events per sensor and hour (event time): what verification by traffic
-- reads to decide whether a sensor watched throughout a window.
CREATE TABLE sensor_stats (
    sensor   TEXT NOT NULL,
    hour     BIGINT NOT NULL,           -- event time / 3600000
    segment  TEXT,
    count    BIGINT NOT NULL,
    first_ts BIGINT NOT NULL,
    last_ts  BIGINT NOT NULL,
    PRIMARY KEY (sensor, hour)
);
