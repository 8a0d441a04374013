-- Before each run of the Tipline-shape ceiling: every report pending again (the run before wrote
-- outcomes), no counters, and one queued job per report on a freshly emptied jobs table (same
-- columns and partial indexes as migrations/0001: it is the migrated table itself).
UPDATE reports SET state = 'pending', outcome = NULL, category = NULL, attempts = 0, last_error = NULL, processed_at = NULL
 WHERE state <> 'pending';
TRUNCATE jobs, report_tallies;
-- Every report is pending here; the trigger of migration 0012 would share-lock each of the
-- 1,000,000 rows (written by other transactions) to check it, dirtying the table before the run.
BEGIN;
ALTER TABLE jobs DISABLE TRIGGER jobs_only_for_pending_reports;
INSERT INTO jobs (report_id, max_attempts) SELECT id, 5 FROM reports;
ALTER TABLE jobs ENABLE TRIGGER jobs_only_for_pending_reports;
COMMIT;
VACUUM ANALYZE reports;
VACUUM ANALYZE jobs;
CHECKPOINT;
