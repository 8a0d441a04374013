-- 0002: administrators' level changes, with who and why, and who changed the ladder.

-- 1. Every level an administrator sets is recorded here (rises also go to the escalations outbox).
CREATE TABLE level_audit (
    id           bigserial   PRIMARY KEY,
    offender_id  bigint      NOT NULL REFERENCES offenders (id),
    from_level   text        NOT NULL,
    to_level     text        NOT NULL CHECK (to_level IN ('none', 'review', 'restrict', 'suspend', 'refer')),
    reason       text        NOT NULL CHECK (length(reason) > 0),
    actor        text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX level_audit_offender_idx ON level_audit (offender_id);

-- 2. Escalation rows written by an administrator carry the audit row that explains them.
ALTER TABLE escalations ADD COLUMN audit_id bigint REFERENCES level_audit (id);

-- 3. Who installed a ladder policy.
ALTER TABLE ladder_policies ADD COLUMN actor text NOT NULL DEFAULT 'migration';
