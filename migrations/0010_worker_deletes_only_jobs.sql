-- 0010: the worker role may no longer delete reports, sellers, contacts or escalations.
--
-- Since 0009 no foreign key stops a row from naming an offender or a report that was deleted, so
-- nothing that runs as a worker may delete either; no worker statement deletes from these tables
-- (a completion deletes job rows, and folds old rows of report_tallies). Reports and offenders are
-- never deleted by any command.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tipline_worker') THEN
        EXECUTE 'REVOKE DELETE ON reports, contacts, offenders, escalations FROM tipline_worker';
    END IF;
END
$$;
