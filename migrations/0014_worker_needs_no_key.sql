-- 0014: a worker no longer reads the reporter key, so its role records nothing in `settings`.
--
-- Workers never see a reporter's identity, only the hash intake stored, so `tipline work` stopped
-- checking TIPLINE_REPORTER_KEY: the key stays on the hosts that run `submit` and `serve`. Until
-- now the worker role could insert the key's derivation and fingerprint into a database not yet
-- used, and so choose the key every later intake process had to have. It keeps reading settings.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tipline_worker') THEN
        EXECUTE 'REVOKE INSERT ON settings FROM tipline_worker';
    END IF;
END
$$;
