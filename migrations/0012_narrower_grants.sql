-- 0012: each role may write only the columns its commands write, and a job only for a pending report.
--
-- Until now the intake role could insert whole rows: a report already `done` with any seller,
-- outcome and level (bypassing the queue), or a job for a report that was done or dead (processed
-- again: counted twice in the tallies and in its seller's history). It now inserts only the columns
-- `Intake.submit` writes; the rest take their defaults (`pending`, no outcome, no seller).
--
-- The worker role loses what no worker statement uses: inserting reports or jobs, pointing a job
-- at another report, changing a report's text, source or reporter hash (it writes only the outcome
-- columns), rewriting the
-- escalation outbox, deleting worker rows, changing or deleting the reporter key's fingerprint
-- (which would let a process with another key in unnoticed), and changing a contact other than
-- its owner.
--
-- A job may be queued only for a report that is `pending` (a report waits in exactly one job
-- until it is done or dead; `dead retry` makes it pending again first), whoever inserts it. The
-- check runs once per statement over the rows it inserted, each looked up by key. A report this
-- transaction wrote itself (intake's insert, `dead retry`'s update) is read as written; one that
-- another transaction wrote is share-locked first and read again, so that a snapshot taken before
-- a worker finished it cannot pass it for pending (under REPEATABLE READ the lock fails instead).
-- It runs as its owner (the lock needs more than the intake role may do), so it names its schema
-- and sets its own search_path: a temporary table called `reports` in the caller's session must not
-- stand in for the real one.
CREATE FUNCTION jobs_only_for_pending_reports() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    me xid := pg_current_xact_id()::xid;
    stray bigint;
BEGIN
    -- Each report by key (a scalar subquery: a join could be planned as a scan of every report).
    IF NOT EXISTS (
        SELECT 1 FROM queued_jobs j
         WHERE (SELECT r.state = 'pending' AND r.xmin = me FROM public.reports r WHERE r.id = j.report_id) IS NOT TRUE
    ) THEN
        RETURN NULL;  -- every report is one this transaction wrote, pending: intake and dead retry
    END IF;
    PERFORM 1 FROM public.reports r WHERE r.id = ANY (ARRAY(SELECT report_id FROM queued_jobs)) FOR SHARE;
    SELECT j.report_id INTO stray FROM queued_jobs j
     WHERE (SELECT r.state FROM public.reports r WHERE r.id = j.report_id) IS DISTINCT FROM 'pending'
     LIMIT 1;
    IF stray IS NOT NULL THEN
        RAISE EXCEPTION 'report % is not pending: a job may be queued only for a pending report', stray
            USING ERRCODE = 'check_violation', HINT = 'tipline dead retry queues a dead report again';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_only_for_pending_reports AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS queued_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_only_for_pending_reports();

-- Only the trigger runs it (firing a trigger checks no EXECUTE privilege): anyone else could attach
-- it to a table of their own and share-lock reports as its owner. And its owner is the tables'
-- owner, not whoever ran this migration (a superuser, or a user who may later lose the owner's role).
REVOKE EXECUTE ON FUNCTION jobs_only_for_pending_reports() FROM PUBLIC;
DO $$
DECLARE
    owner regrole := (SELECT relowner::regrole FROM pg_class WHERE oid = 'public.reports'::regclass);
BEGIN
    EXECUTE format('ALTER FUNCTION jobs_only_for_pending_reports() OWNER TO %s', owner);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'jobs_only_for_pending_reports() stays owned by %: it may not hand it to %', current_user, owner;
END
$$;

DO $$
BEGIN
    -- Only where this database granted the role something already (0004 did when the role
    -- existed): a database migrated before the roles existed grants them nothing, and keeps so.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tipline_intake')
       AND has_table_privilege('tipline_intake', 'schema_migrations', 'SELECT') THEN
        EXECUTE 'REVOKE INSERT ON reports, jobs FROM tipline_intake';
        EXECUTE 'GRANT INSERT (source, external_id, channel, reporter_hash, body, platform, reported_at)
                     ON reports TO tipline_intake';
        EXECUTE 'GRANT INSERT (report_id, max_attempts) ON jobs TO tipline_intake';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tipline_worker')
       AND has_table_privilege('tipline_worker', 'schema_migrations', 'SELECT') THEN
        -- Revoking a table's privilege revokes its column privileges too: revoke, then grant columns.
        EXECUTE 'REVOKE INSERT, UPDATE ON reports FROM tipline_worker';
        EXECUTE 'GRANT UPDATE (state, outcome, category, offender_id, level, attempts, last_error, processed_at,
                               contact_ids) ON reports TO tipline_worker';
        EXECUTE 'REVOKE INSERT, UPDATE ON jobs FROM tipline_worker';
        EXECUTE 'GRANT UPDATE (state, attempt, run_at, solo, lease_owner, lease_expires_at, claimed_at, last_error,
                               failed_at) ON jobs TO tipline_worker';
        EXECUTE 'REVOKE UPDATE ON contacts FROM tipline_worker';
        EXECUTE 'GRANT UPDATE (offender_id) ON contacts TO tipline_worker';
        EXECUTE 'REVOKE UPDATE, DELETE ON escalations, settings FROM tipline_worker';
        EXECUTE 'REVOKE DELETE ON workers FROM tipline_worker';
    END IF;
END
$$;
