-- 0009_traffic: what the sensors saw, for the overview (态势感知). traffic_hourly holds
-- flows, packets and bytes per hour of event time by segment, application protocol,
-- nDPI category and destination country, summed by the correlator from flow events in
-- the transaction of their batch (a flow counts once, when it ends: update events are
-- not counted). '' stands for "none" in the key columns. sensor_status keeps each
-- sensor's latest stats event (and the packet count of the one before, for packets/s),
-- its drops and Kafka failures.
CREATE TABLE traffic_hourly (
    hour      BIGINT NOT NULL,            -- event time / 3600000
    segment   TEXT NOT NULL,              -- sensor.segment
    app_proto TEXT NOT NULL,              -- 'unknown' when nDPI named none
    category  TEXT NOT NULL,              -- ndpi.category
    country   TEXT NOT NULL,              -- geo.dest.country (ISO 3166), '' not looked up
    flows     BIGINT NOT NULL,
    packets   BIGINT NOT NULL,
    bytes     BIGINT NOT NULL,
    PRIMARY KEY (hour, segment, app_proto, category, country)
);

CREATE TABLE sensor_status (
    sensor         TEXT PRIMARY KEY,
    segment        TEXT,
    ts             BIGINT NOT NULL,       -- event time of its latest stats event (ms)
    received_at    BIGINT NOT NULL,       -- wall clock when a correlator stored it (ms)
    packets        BIGINT NOT NULL,       -- stats.capture.packets (since the sensor started)
    prev_ts        BIGINT,                -- the stats event before (NULL: none, or the
    prev_packets   BIGINT,                --   sensor restarted): packets/s between the two
    kernel_packets BIGINT,                -- live capture only, as in the stats event
    kernel_drops   BIGINT,
    ifdrops        BIGINT,
    kafka_failed   BIGINT,                -- stats.kafka.failed (with --kafka)
    kafka_dropped  BIGINT,
    spool_pending  BIGINT,                -- stats.kafka.spool.pending
    output_dropped BIGINT                 -- stats.output.dropped
);
