-- 0004: least-privilege roles. Grant them to login users (see README, "Database roles"):
--   tipline_intake  submits reports (CLI or HTTP) and reads their status; never reads ad text,
--                   reporter hashes, sellers or contacts, and deletes nothing.
--   tipline_worker  processes the queue.
--   tipline_admin   reads everything (status, export, offender, escalations); changes nothing.
-- Roles are cluster-wide: they are created once, by whoever migrates first with CREATEROLE. A
-- migrating user without CREATEROLE skips this step with a NOTICE instead of failing.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['tipline_intake', 'tipline_worker', 'tipline_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            IF NOT (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                RAISE NOTICE 'role % does not exist and % may not create it: least-privilege roles skipped', r, current_user;
                RETURN;
            END IF;
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it a moment ago
            END;
        END IF;
    END LOOP;

    -- 1. Intake: insert reports and jobs; read back only the columns a client may see.
    EXECUTE 'GRANT USAGE ON SCHEMA public TO tipline_intake, tipline_worker, tipline_admin';
    EXECUTE 'GRANT INSERT ON reports, jobs TO tipline_intake';
    EXECUTE 'GRANT SELECT (id, source, external_id, channel, state, outcome, level, category, reported_at,
                           submitted_at, processed_at) ON reports TO tipline_intake';
    EXECUTE 'GRANT SELECT (report_id, state) ON jobs TO tipline_intake';
    EXECUTE 'GRANT USAGE ON SEQUENCE reports_id_seq TO tipline_intake';
    EXECUTE 'GRANT SELECT, INSERT ON settings TO tipline_intake';
    EXECUTE 'GRANT SELECT ON schema_migrations TO tipline_intake, tipline_worker, tipline_admin';
    EXECUTE 'GRANT SELECT, UPDATE (last_used_at) ON api_tokens TO tipline_intake';

    -- 2. Workers: the queue and everything a report's processing writes.
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON reports, jobs, contacts, report_contacts, offenders,
                                                    escalations, workers, settings TO tipline_worker';
    EXECUTE 'GRANT SELECT ON ladder_policies TO tipline_worker';
    EXECUTE 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tipline_worker';

    -- 3. Administration, read-only.
    EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO tipline_admin';
END
$$;
