-- 0004_correlator_health: what each correlator instance says of itself, for the
-- console's health page and metrics: the rules it runs, the rules it refused (a
-- level-3 deployment missing rules must not go unnoticed) and its counters.
-- Wall-clock times, ms. One row per instance (--instance, default the host name).

CREATE TABLE correlator_health (
    instance      TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    strict        INTEGER NOT NULL,     -- 1: would not start with a rule refused
    rules_loaded  INTEGER NOT NULL,
    rules_refused INTEGER NOT NULL,
    report        TEXT NOT NULL         -- the whole report as JSON (correlator/health.h)
);
