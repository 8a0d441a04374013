-- One queued job per report, on a freshly emptied jobs table (same columns and partial indexes
-- as migrations/0001: it is the migrated table itself).
TRUNCATE jobs;
INSERT INTO jobs (report_id, max_attempts) SELECT id, 5 FROM reports;
VACUUM ANALYZE jobs;
CHECKPOINT;
