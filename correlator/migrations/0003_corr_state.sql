-- 0003_corr_state: the window state of correlation rules, written in the same
-- transaction as the alerts and the consumer positions, so a restart resumes the
-- windows exactly where the stored positions resume the events (correlation.h,
-- "checkpoints").

CREATE TABLE corr_state (
    rule      TEXT NOT NULL,            -- "<rule id>#<hash of its definition>"
    group_key BLOB NOT NULL,            -- group key and group-by values, NUL-separated
    state     BLOB NOT NULL,            -- counts, times, values (correlation.c layout)
    PRIMARY KEY (rule, group_key)
);

-- Single values of the correlator: 'corr_watermark' = newest event time seen, ms.
CREATE TABLE correlator_meta (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
