-- 0006: drop two indexes that nothing reads, each costing a B-tree insert on the hottest writes.
--
-- reports_processed_at_idx: `tipline status` counts completions from report_tallies (0005) and
-- finds dead reports through reports_dead_idx; every outcome written and every report moved by a
-- merge inserted into it (an outcome update is never HOT: offender_id is indexed).
-- report_contacts_contact_idx: reports are read with their contacts (by report_id, the primary
-- key); no query looks reports up by contact, and contacts are never deleted, so the foreign key
-- from report_contacts needs no index on that side either.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
DROP INDEX IF EXISTS reports_processed_at_idx;
DROP INDEX IF EXISTS report_contacts_contact_idx;
