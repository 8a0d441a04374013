-- Fills a migrated Tipline database with :nrows reports for the Tipline-shape ceiling
-- (tipline_claim_complete.pgbench). The jobs are (re)made by tipline_refill.sql before each run.
INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at)
SELECT 'pgbench', g::text, 'app', sha256(g::text::bytea), '出租微信 日租80元 V信: seller_' || (g % 5000) || 'x', now()
  FROM generate_series(1, :nrows) g;
VACUUM ANALYZE reports;
