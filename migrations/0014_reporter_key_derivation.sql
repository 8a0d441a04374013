-- 0014: the reporter key is stretched (scrypt) on new databases, and workers read no key.
--
-- A database first used from now on records how the key is derived (`reporter_key_derivation`)
-- and the fingerprint of the derived key (`reporter_key_stretched_fingerprint`). One already in
-- use (it holds a fingerprint of the key itself) keeps hashing with the key itself: it is marked
-- `none` here, since its reporters' identities are not kept to hash them again. One not used yet
-- gets a `reporter_key_fingerprint` that matches no key, so that an older `submit` or `serve`
-- (which records and compares only that row) refuses it instead of hashing with the bare key.
--
-- Workers never see a reporter's identity, only the hash intake stored, so `tipline work` stopped
-- checking TIPLINE_REPORTER_KEY: the key stays on the hosts that run `submit` and `serve`. The
-- worker role could insert into `settings`, and so choose the key of a database not yet used; it
-- keeps only reading it.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
INSERT INTO settings (name, value)
SELECT 'reporter_key_derivation', 'none' FROM settings WHERE name = 'reporter_key_fingerprint'
ON CONFLICT (name) DO NOTHING;

INSERT INTO settings (name, value)
VALUES ('reporter_key_fingerprint', 'stretched (schema 14): use a tipline that has migration 0014')
ON CONFLICT (name) DO NOTHING;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tipline_worker') THEN
        EXECUTE 'REVOKE INSERT ON settings FROM tipline_worker';
    END IF;
END
$$;
