-- 0013: failed attempts counted by minute, like completions and escalations.
--
-- `tipline status` showed "failures in the last 15 minutes" as the reports then waiting for a
-- retry, plus those that went dead: a report that failed four times counted once, and failures
-- followed by a success vanished. Each failed attempt (an error recorded by a worker, or a lease
-- that ran out and was taken back by a heartbeat) now adds one to its minute's row. Counting
-- starts with this migration: attempts that failed before it are not in the figure.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
ALTER TABLE report_tallies ADD COLUMN failed bigint NOT NULL DEFAULT 0;
