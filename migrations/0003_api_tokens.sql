-- 0003: bearer tokens of the HTTP intake (`tipline token create|list|revoke`).
--
-- Only a SHA-256 of each token is stored: the token is shown once, when it is made, and a copy of
-- the database lets nobody in. Revocation is a timestamp, so `tipline token list` keeps the history.

CREATE TABLE api_tokens (
    id           bigserial   PRIMARY KEY,
    -- the source reports sent with this token are filed under (the idempotency key's first half)
    source       text        NOT NULL CHECK (source ~ '^[A-Za-z0-9._-]{1,64}$'),
    channel      text        NOT NULL CHECK (channel IN ('app', 'hotline')),
    token_hash   bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- written at most once a minute per token, so busy clients do not turn reads into writes
    last_used_at timestamptz,
    revoked_at   timestamptz
);
