-- 0011: each seller's reports kept on its offender row, for levelling.
--
-- Levelling a batch needs the past reports (time and reporter) of every seller below the top of
-- the ladder that the batch touches. Fetched from `reports` through reports_offender_idx, that is
-- one heap fetch per past report; kept here, they come with the seller's row lock. The worker
-- writes the column (TiplineCore's SellerRecord says its layout): all of a seller's reports and of
-- the offenders merged into it, or a one-byte marker when there are more than fit under 2 kB
-- (they are then read from `reports` as before). NULL: not kept (sellers from before this
-- migration, sellers at the top, levels an administrator set): the next batch reads the reports
-- whole and writes them here.
--
-- Rewriting a history changes no indexed column: with room left on the page (fillfactor), such
-- an update is HOT and touches no index.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
ALTER TABLE offenders ADD COLUMN history bytea;
ALTER TABLE offenders SET (fillfactor = 70);
