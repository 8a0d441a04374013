-- 0008: escalations counted per minute beside the completions, so that `tipline status` reads the
-- last day's escalations by level from a few thousand counter rows instead of every escalation row
-- of the last 24 hours (about 30 ms with 200,000 of them, a third of the status screen's time).
--
-- Rises written by workers count in the row of their completing transaction's minute and session;
-- rises written by an administrator (`tipline offender set-level`) in their own. Folded daily rows
-- carry them like the other counters.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
ALTER TABLE report_tallies
    ADD COLUMN to_review   bigint NOT NULL DEFAULT 0,
    ADD COLUMN to_restrict bigint NOT NULL DEFAULT 0,
    ADD COLUMN to_suspend  bigint NOT NULL DEFAULT 0,
    ADD COLUMN to_refer    bigint NOT NULL DEFAULT 0;

-- Escalations written before this migration, by minute (older ones are never read by status).
INSERT INTO report_tallies AS t (minute, backend, to_review, to_restrict, to_suspend, to_refer)
SELECT date_trunc('minute', created_at), 0,
       count(*) FILTER (WHERE to_level = 'review'), count(*) FILTER (WHERE to_level = 'restrict'),
       count(*) FILTER (WHERE to_level = 'suspend'), count(*) FILTER (WHERE to_level = 'refer')
  FROM escalations
 WHERE created_at > now() - interval '2 days'
 GROUP BY 1
ON CONFLICT (minute, backend) DO UPDATE
   SET to_review = t.to_review + excluded.to_review, to_restrict = t.to_restrict + excluded.to_restrict,
       to_suspend = t.to_suspend + excluded.to_suspend, to_refer = t.to_refer + excluded.to_refer;
