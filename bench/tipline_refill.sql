-- Before each run of the Tipline-shape ceiling: every report pending again (the run before wrote
-- outcomes), no counters, and one queued job per report on a freshly emptied jobs table (same
-- columns and partial indexes as migrations/0001: it is the migrated table itself).
UPDATE reports SET state = 'pending', outcome = NULL, category = NULL, attempts = 0, last_error = NULL, processed_at = NULL
 WHERE state <> 'pending';
TRUNCATE jobs, report_tallies;
INSERT INTO jobs (report_id, max_attempts) SELECT id, 5 FROM reports;
VACUUM ANALYZE reports;
VACUUM ANALYZE jobs;
CHECKPOINT;
