-- 0008_group_indexes: the queue's default order as an index (a page is a range scan,
-- however deep), and covering indexes for the alert groups (GET /api/v1/alerts/groups,
-- as EveBox groups: by rule, source, destination). The grouped query reads only the
-- index, in group order: with a million alerts the unfiltered rule grouping went from
-- seconds to about 0.2 s on SQLite (bench/README.md, "The console API").
CREATE INDEX alerts_group_rule ON alerts (rule_id, rule_name, last_seen, first_seen, count);
CREATE INDEX alerts_group_src ON alerts (src_ip, last_seen, first_seen, count);
CREATE INDEX alerts_group_dest ON alerts (dest_ip, last_seen, first_seen, count);
CREATE INDEX alerts_last_seen_id ON alerts (last_seen, id);
