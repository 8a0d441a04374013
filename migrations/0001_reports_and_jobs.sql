-- 0001: reports, the job queue, sellers (offenders) and their contacts, the escalation outbox,
-- worker registry and the escalation ladder policy.
--
-- Never edit this file once shipped: `tipline migrate` records its checksum and refuses a changed file.

-- 1. Offenders: one row per seller. A merged offender points at the survivor (lowest id).
CREATE TABLE offenders (
    id           bigserial   PRIMARY KEY,
    merged_into  bigint      REFERENCES offenders (id),
    level        text        NOT NULL DEFAULT 'none'
                             CHECK (level IN ('none', 'review', 'restrict', 'suspend', 'refer')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offenders_merged_into_idx ON offenders (merged_into) WHERE merged_into IS NOT NULL;

-- 2. Reports: every accepted report, forever. The reporter is stored only as a keyed hash.
CREATE TABLE reports (
    id            bigserial   PRIMARY KEY,
    source        text        NOT NULL,
    external_id   text        NOT NULL,
    channel       text        NOT NULL CHECK (channel IN ('app', 'hotline')),
    reporter_hash bytea       NOT NULL CHECK (octet_length(reporter_hash) = 32),
    body          text        NOT NULL,
    platform      text,
    reported_at   timestamptz NOT NULL,
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    -- pending while a job row exists; done or dead once it has left the queue.
    state         text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    outcome       text        CHECK (outcome IN ('no_contact', 'recorded', 'escalated')),
    category      text        CHECK (category IN ('rental', 'sale', 'buyback', 'lookup', 'other')),
    offender_id   bigint      REFERENCES offenders (id),
    level         text        CHECK (level IN ('none', 'review', 'restrict', 'suspend', 'refer')),
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text,
    processed_at  timestamptz,
    UNIQUE (source, external_id),
    CHECK ((state = 'done') = (outcome IS NOT NULL))
);
CREATE INDEX reports_offender_idx ON reports (offender_id, reported_at) WHERE offender_id IS NOT NULL;
CREATE INDEX reports_processed_at_idx ON reports (processed_at) WHERE processed_at IS NOT NULL;
CREATE INDEX reports_dead_idx ON reports (id) WHERE state = 'dead';

-- 3. Jobs: the hot table. Only unfinished work lives here; finishing deletes the row, so the
--    claimable set stays small however many reports are stored.
CREATE TABLE jobs (
    report_id        bigint      PRIMARY KEY REFERENCES reports (id),
    state            text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'retrying')),
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    run_at           timestamptz NOT NULL DEFAULT now(),
    -- set when a lease ran out: the job may have crashed its worker, so it is claimed alone.
    solo             boolean     NOT NULL DEFAULT false,
    lease_owner      uuid,
    lease_expires_at timestamptz,
    claimed_at       timestamptz,
    last_error       text,
    failed_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE INDEX jobs_ready_idx ON jobs (run_at, report_id) WHERE state IN ('queued', 'retrying');
CREATE INDEX jobs_solo_idx ON jobs (run_at, report_id) WHERE solo AND state IN ('queued', 'retrying');
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                      autovacuum_analyze_scale_factor = 0.02);

-- 4. Contacts: one row per canonical contact; offender_id always names a surviving offender once
--    the inserting transaction commits.
CREATE TABLE contacts (
    id           bigserial   PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('phone', 'qq', 'wechat', 'telegram', 'email', 'site')),
    value        text        NOT NULL,
    offender_id  bigint      REFERENCES offenders (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, value)
);
CREATE INDEX contacts_offender_idx ON contacts (offender_id);

CREATE TABLE report_contacts (
    report_id   bigint NOT NULL REFERENCES reports (id),
    contact_id  bigint NOT NULL REFERENCES contacts (id),
    PRIMARY KEY (report_id, contact_id)
);
CREATE INDEX report_contacts_contact_idx ON report_contacts (contact_id);

-- 5. Escalations: the outbox. One row per rise of a level, in id order; NOTIFY tipline_escalations.
CREATE TABLE escalations (
    id           bigserial   PRIMARY KEY,
    offender_id  bigint      NOT NULL REFERENCES offenders (id),
    from_level   text        NOT NULL,
    to_level     text        NOT NULL,
    report_id    bigint      REFERENCES reports (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX escalations_offender_idx ON escalations (offender_id);
CREATE INDEX escalations_created_at_idx ON escalations (created_at);

-- 6. Workers: registry and heartbeat, so that status can list live workers.
CREATE TABLE workers (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL,
    host          text        NOT NULL,
    pid           integer     NOT NULL,
    concurrency   integer     NOT NULL,
    lease_seconds double precision NOT NULL,
    batch_size    integer     NOT NULL,
    in_flight     integer     NOT NULL DEFAULT 0,
    processed     bigint      NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    stopped_at    timestamptz
);
CREATE INDEX workers_heartbeat_idx ON workers (heartbeat_at) WHERE stopped_at IS NULL;

-- 7. The escalation ladder: the newest row is in force.
CREATE TABLE ladder_policies (
    id           serial      PRIMARY KEY,
    window_days  integer     NOT NULL CHECK (window_days > 0),
    review       integer     NOT NULL CHECK (review > 0),
    restrict_at  integer     NOT NULL CHECK (restrict_at >= review),
    suspend      integer     NOT NULL CHECK (suspend >= restrict_at),
    refer        integer     NOT NULL CHECK (refer >= suspend),
    note         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ladder_policies (window_days, review, restrict_at, suspend, refer, note)
VALUES (30, 2, 3, 5, 10, 'default ladder (shared/DESIGN.md)');

-- 8. Settings that must agree across every process, e.g. a fingerprint of the reporter key (a
--    process with a different key would count one reporter as two).
CREATE TABLE settings (
    name   text PRIMARY KEY,
    value  text NOT NULL
);
