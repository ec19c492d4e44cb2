-- 0002_alert_outbox: alert updates waiting for the Kafka alerts topic, written in
-- the same transaction as the alerts (transactional outbox). The publisher sends
-- them in seq order and deletes them once the broker acknowledged delivery, so a
-- crash between storing and publishing re-sends rather than loses.

CREATE TABLE alert_outbox (
    seq        BIGINT PRIMARY KEY,      -- assigned by the store, increasing
    alert_id   TEXT NOT NULL,
    payload    TEXT NOT NULL,           -- the alert update as JSON (alert_to_json)
    created_at BIGINT NOT NULL          -- event time of the update, ms
);
