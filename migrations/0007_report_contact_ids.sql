-- 0007: a report's contacts move from the report_contacts link table into the report row itself,
-- written with its outcome in the same UPDATE.
--
-- The links are written once, when the report is done, and never change: contacts are never
-- deleted or renumbered, and a merge moves contacts between sellers, not between reports. As rows
-- of their own they cost, per contact of every report, a heap tuple, a primary-key insert, two
-- foreign-key checks and a statement per batch: about 13% of the database's time in a 50,000-report
-- drain (pg_stat_statements). contact_ids holds the ids of the report's canonical contacts in
-- ascending order; NULL while the report is not done, or when it has none.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
ALTER TABLE reports ADD COLUMN contact_ids bigint[];

UPDATE reports r SET contact_ids = l.ids
  FROM (SELECT report_id, array_agg(contact_id ORDER BY contact_id) AS ids FROM report_contacts GROUP BY report_id) l
 WHERE r.id = l.report_id;

DROP TABLE report_contacts;
