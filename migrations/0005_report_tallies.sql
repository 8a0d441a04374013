-- 0005: counters that keep `tipline status` fast however many reports are stored.
--
-- Every completing transaction adds its reports to the row of the current minute and of its own
-- database session, so concurrent workers never wait for each other on a counter row. Workers
-- fold rows older than a day into one row per day (backend 0), so the table stays small: status
-- sums at most a couple of days of minutes plus one row per day before that.
CREATE TABLE report_tallies (
    minute   timestamptz NOT NULL,  -- start of the minute (or of the day, for folded rows)
    backend  integer     NOT NULL,  -- pg_backend_pid() of the completing session; 0 for folded rows
    done     bigint      NOT NULL DEFAULT 0,
    rental   bigint      NOT NULL DEFAULT 0,
    sale     bigint      NOT NULL DEFAULT 0,
    buyback  bigint      NOT NULL DEFAULT 0,
    lookup   bigint      NOT NULL DEFAULT 0,
    other    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, backend)
);

-- Reports completed before this migration, by minute.
INSERT INTO report_tallies (minute, backend, done, rental, sale, buyback, lookup, other)
SELECT date_trunc('minute', coalesce(processed_at, now())), 0, count(*),
       count(*) FILTER (WHERE category = 'rental'), count(*) FILTER (WHERE category = 'sale'),
       count(*) FILTER (WHERE category = 'buyback'), count(*) FILTER (WHERE category = 'lookup'),
       count(*) FILTER (WHERE category IS NULL OR category NOT IN ('rental', 'sale', 'buyback', 'lookup'))
  FROM reports WHERE state = 'done'
 GROUP BY 1;

-- The status screen's top sellers: highest level first, most recently changed first.
CREATE INDEX offenders_top_idx
    ON offenders (array_position(ARRAY['none', 'review', 'restrict', 'suspend', 'refer'], level) DESC, updated_at DESC)
 WHERE merged_into IS NULL AND level <> 'none';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tipline_worker') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON report_tallies TO tipline_worker';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tipline_admin') THEN
        EXECUTE 'GRANT SELECT ON report_tallies TO tipline_admin';
    END IF;
END
$$;
