-- 0014: the reporter key is stretched (scrypt) on new databases, and workers read no key.
--
-- A database first used from now on records how the key is derived (`reporter_key_derivation`)
-- and the fingerprint of the derived key (`reporter_key_stretched_fingerprint`). One whose reports
-- were hashed with the key itself (it holds reports and that key's fingerprint) keeps it: it is
-- marked `none` here, since its reporters' identities are not kept to hash them again. Every other
-- one (none of its reports hashed yet, though an earlier `serve` or `work` may have recorded the
-- bare key's fingerprint at start-up) gets, as `reporter_key_fingerprint`, a value that matches no
-- key, so that an earlier `submit` or `serve` (which records and compares only that row) refuses it
-- instead of hashing with the bare key.
--
-- `settings` is locked first: an earlier release's fingerprint committed while this runs would
-- otherwise be missed by one statement and met by the next. (A report an earlier release commits
-- meanwhile may still be missed: this release then finds reports and no key recorded, and refuses
-- the database rather than hash beside them with another key. Stop earlier intake first.)
--
-- Workers never see a reporter's identity, only the hash intake stored, so `tipline work` stopped
-- checking TIPLINE_REPORTER_KEY: the key stays on the hosts that run `submit` and `serve`. The
-- worker role could insert into `settings`, and so choose the key of a database not yet used; it
-- keeps only reading it.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
LOCK TABLE settings IN SHARE ROW EXCLUSIVE MODE;

DO $$
DECLARE
    marker CONSTANT text := 'stretched (schema 14): use a tipline that has migration 0014';
    used boolean := true;  -- a migrating user who may not read reports cannot tell: the fingerprint decides
BEGIN
    IF has_table_privilege('reports', 'SELECT') THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM reports)' INTO used;
    END IF;
    IF used THEN
        INSERT INTO settings (name, value)
        SELECT 'reporter_key_derivation', 'none' FROM settings WHERE name = 'reporter_key_fingerprint'
        ON CONFLICT (name) DO NOTHING;
    ELSE
        UPDATE settings SET value = marker WHERE name = 'reporter_key_fingerprint';
    END IF;
    INSERT INTO settings (name, value) VALUES ('reporter_key_fingerprint', marker) ON CONFLICT (name) DO NOTHING;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tipline_worker') THEN
        EXECUTE 'REVOKE INSERT ON settings FROM tipline_worker';
    END IF;
END
$$;
