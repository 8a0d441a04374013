public import Foundation
public import Postgres
public import TiplineCore

/// A worker's hold on the jobs it claimed. Every state change names the owner and the attempt it
/// expects, so a worker whose lease ran out cannot change a job another worker now holds.
public struct Lease: Sendable, Equatable {
    /// The worker process's unique id (a new one per process start).
    public var owner: UUID
    /// How long a claim or heartbeat keeps the jobs, in seconds.
    public var seconds: Double

    /// Creates a lease description.
    public init(owner: UUID, seconds: Double) {
        self.owner = owner
        self.seconds = seconds
    }
}

/// A job handed to a worker, with the report it is about.
public struct ClaimedJob: Sendable, Equatable {
    /// The report (and job) id.
    public var reportID: Int64
    /// This attempt's number, from 1.
    public var attempt: Int
    /// Attempts allowed before the job is dead.
    public var maxAttempts: Int
    /// The ad text.
    public var body: String
    /// The reporter's keyed hash.
    public var reporterHash: ReporterHash
    /// When the ad was reported.
    public var reportedAt: Date
    /// Its previous lease ran out (it may crash workers): it was claimed alone.
    public var solo: Bool = false
    /// Seconds it waited between becoming ready (queued, or its retry time) and this claim.
    public var waitedSeconds: Double = 0
}

/// The job queue: claims, heartbeats, rescue of expired leases, failures and completion.
public struct Queue: Sendable {
    /// The database holding the queue.
    public let database: Database
    /// The channel `submit` notifies when jobs arrive.
    public static let jobsChannel = "tipline_jobs"
    /// The channel notified when escalation rows are written.
    public static let escalationsChannel = "tipline_escalations"

    /// Creates a queue over a database.
    public init(database: Database) {
        self.database = database
    }

    /// How long a worker's session may sit idle inside a transaction (`workerSessionSettings`).
    public static let idleInTransactionTimeout: Double = 5

    /// The session settings of a worker's connections.
    ///
    /// - A worker stopped mid-transaction (SIGSTOP, a paused host, a partition) must not hold its
    ///   row locks for long: every other worker's batches that name one of its sellers, or a
    ///   contact it is inserting, wait behind them, and with sellers as skewed as real ones that
    ///   is nearly every batch. PostgreSQL ends a session idle in its transaction after
    ///   `idleInTransactionTimeout`, whatever the lease (it was twice the lease: 30 s of a stopped
    ///   cluster by default, two hours with `--lease 3600`). A completion's only idle moments
    ///   are the worker's own work between statements (milliseconds); one ended there is rolled
    ///   back and retried on a new session, and the jobs of a worker that stays stopped are
    ///   rescued once their lease runs out.
    /// - No idle-session timeout: a database default of `idle_session_timeout` would end the
    ///   listening session between notifications, and lose those sent meanwhile.
    /// - Every statement a worker runs reaches a batch's rows by key (ids, contacts, a seller's
    ///   window, the head of the ready index): a nested loop over an index is the right plan for
    ///   each, however large the tables. Statistics lag behind a table that fills from empty, or
    ///   (the job table) empties and refills all the time, and a plan made from them would be kept:
    ///   a sequential scan filtering on `= ANY($n)`, a hash join over a whole table (1.3 ms per
    ///   batch for 5,000 contacts in a profile, against microseconds by key), or a claim that
    ///   sorted every ready job to take fifty (the whole backlog, 3 MB sorted on disk per claim,
    ///   when `jobs` had been analysed nearly empty: a growth run's chunk drained at half speed).
    ///   So no sequential scans, hash or merge joins, and no sort where an index gives the order.
    /// - One generic plan per prepared statement serves every batch: left to choose, PostgreSQL
    ///   re-planned the completion's statements on every call (a custom plan for each set of
    ///   arrays), and planning cost more than running them (0.33 ms against 0.05 ms for the fence).
    /// - No JIT: a generic plan cannot see a batch's size (LIMIT $n is costed as a tenth of the
    ///   table), so with a backlog of a million jobs the claim's estimate crossed `jit_above_cost`
    ///   and every claim was compiled: 10 ms for 50 rows.
    /// - READ COMMITTED, whatever the database's default: a completion reads what it needs under
    ///   the seller locks in statements of their own, each seeing what committed before it began
    ///   (a batch that held a lock first included). Under REPEATABLE READ or SERIALIZABLE the
    ///   transaction's first snapshot would stay, and every seller changed while a batch waited for
    ///   its lock would fail that batch's completion (could not serialize access).
    public static func workerSessionSettings() -> [(String, String)] {
        [("default_transaction_isolation", "read committed"),
         ("idle_in_transaction_session_timeout", String(Int(idleInTransactionTimeout * 1000))),
         ("idle_session_timeout", "0"),
         ("enable_seqscan", "off"), ("enable_hashjoin", "off"), ("enable_mergejoin", "off"), ("enable_sort", "off"),
         ("plan_cache_mode", "force_generic_plan"), ("jit", "off")]
    }

    /// The condition that the job row `alias` is running under the lease of `owner`. A row has its
    /// lease columns set exactly while it is `running` (the `jobs` CHECK constraint), so this says
    /// `state = 'running'` without naming it: named, it let the planner read a batch's rows through
    /// `jobs_lease_idx`, every running job of every worker and their dead entries, instead of by
    /// key (statistics taken while nothing ran make that index look empty).
    static func stillHeld(by owner: String?, alias: String) -> Query {
        "\(unescaped: alias).lease_owner = \(owner as String?)::uuid AND \(unescaped: alias).lease_expires_at IS NOT NULL"
    }

    /// Claims up to `limit` ready jobs with `FOR UPDATE SKIP LOCKED`, in one statement.
    ///
    /// A job whose previous lease ran out (`solo`) may have crashed its worker: it is claimed alone,
    /// so that it cannot take a batch of healthy jobs down with it again.
    /// A worker passes `includeSolo: true` only once it has nothing else in flight and claims
    /// nothing else until that job is done, so that a job that may crash the process only ever runs
    /// in a process with nothing else to lose.
    public func claim(limit: Int, lease: Lease, includeSolo: Bool = true) async throws -> [ClaimedJob] {
        try await database.withConnection { connection in
            try Self.claim(limit: limit, lease: lease, includeSolo: includeSolo, on: connection)
        }
    }

    /// The claim commits without waiting for its WAL flush (`synchronous_commit` off for this one
    /// statement's transaction): a claim lost in a server crash only leaves the job queued, and the
    /// completion that follows, which does wait, flushes the claim with it. Not for use inside a
    /// transaction, where the setting would last to its end.
    ///
    /// On a connection of the caller's: the worker also claims on its listening session.
    public static func claim(limit: Int, lease: Lease, includeSolo: Bool, on connection: Connection) throws -> [ClaimedJob] {
        let rows = try connection.queryPrepared(claimQuery(limit: limit, lease: lease, includeSolo: includeSolo))
        return try rows.map { row in
            ClaimedJob(
                reportID: try row.decode(at: 0), attempt: try row.decode(at: 1), maxAttempts: try row.decode(at: 2),
                body: try row.decode(at: 3), reporterHash: try row.decode(at: 4), reportedAt: try row.decode(at: 5),
                solo: try row.decode(at: 6), waitedSeconds: try row.decode(at: 7))
        }
    }

    /// The claim's statement. Its batch is the head of `jobs_ready_idx`, read in the index's order.
    static func claimQuery(limit: Int, lease: Lease, includeSolo: Bool) -> Query {
        """
            WITH no_flush_wait AS (
                SELECT set_config('synchronous_commit', 'off', true)
            ), solo AS (
                SELECT report_id FROM jobs
                 WHERE solo AND \(includeSolo) AND state IN ('queued', 'retrying') AND run_at <= now()
                 ORDER BY run_at, report_id
                 LIMIT 1
                 FOR UPDATE SKIP LOCKED
            ), batch AS (
                SELECT report_id FROM jobs
                 WHERE state IN ('queued', 'retrying') AND run_at <= now() AND NOT solo
                   AND NOT EXISTS (SELECT 1 FROM solo)
                 ORDER BY run_at, report_id
                 LIMIT \(limit)
                 FOR UPDATE SKIP LOCKED
            ), picked AS (
                SELECT report_id FROM solo UNION ALL SELECT report_id FROM batch
            )
            UPDATE jobs j
               SET state = 'running', attempt = j.attempt + 1, lease_owner = \(lease.owner.uuidString),
                   lease_expires_at = now() + make_interval(secs => \(lease.seconds)), claimed_at = now()
              FROM picked, reports r, no_flush_wait
             WHERE j.report_id = picked.report_id AND r.id = j.report_id
            RETURNING j.report_id, j.attempt, j.max_attempts, r.body, r.reporter_hash, r.reported_at, j.solo,
                      greatest(extract(epoch FROM now() - j.run_at), 0)::float8
            """
    }

    /// What one heartbeat did.
    public struct Heartbeat: Sendable, Equatable {
        /// Leases extended (jobs this worker still holds).
        public var extended: Int
        /// Jobs of silent workers put back in the queue.
        public var retried: Int
        /// Jobs of silent workers that had used up their attempts, now dead.
        public var dead: Int
        /// Whether a job to be claimed alone (`solo`) is queued or waiting for its retry, this
        /// heartbeat's rescues included: the worker then makes room to claim it.
        public var soloWaiting: Bool
    }

    /// One heartbeat, in one statement (an idle worker sends little else): records that this worker
    /// is alive, extends the lease on the jobs it knows it holds, and rescues jobs whose lease ran
    /// out — back to the queue, or `dead` once out of attempts — announcing any it put back.
    ///
    /// Only the listed jobs are extended: a claim whose answer was lost with the connection must
    /// expire and be rescued, not be kept alive by a worker that never saw it. Rows locked by the
    /// worker's own completing transactions are skipped rather than waited for (no deadlock), and a
    /// rescue touches only rows still `running` with an expired lease, skipping locked ones, so it
    /// can never undo a completion. A worker that has deregistered (`stopped_at` set) keeps the row
    /// its stop wrote: a beat that reaches the database after the stop changes nothing of it.
    @discardableResult
    public func heartbeat(lease: Lease, holding reportIDs: [Int64], processed: Int, rescueLimit: Int = Queue.rescueLimit) async throws -> Heartbeat {
        try await database.withConnection { connection in
            try Self.heartbeat(owner: lease.owner.uuidString, seconds: lease.seconds, holding: reportIDs,
                               processed: processed, rescueLimit: rescueLimit, on: connection)
        }
    }

    /// Most jobs one rescue takes back; a worker whose rescue took this many beats again at once.
    public static let rescueLimit = 1000

    /// Ends the leases of the jobs `lease` holds other than `holding` (those in a worker's hands):
    /// jobs it let go of without a word to the database (a completion that could not reach it, a
    /// claim that committed though its answer was lost), which the worker, alive, does not make
    /// wait for their leases to run out. The next rescue (the worker's heartbeat runs one right
    /// after) takes them back as it takes back any job whose lease ran out: claimed alone (nothing
    /// tells a lost connection from a completion that crashes the server), dead once out of
    /// attempts. The caller makes sure no claim of its own is under way, whose jobs would be in no
    /// hands yet. Rows locked elsewhere (a transaction of a lost connection the server has not
    /// ended yet) are skipped: `ended` falls short of `found` then.
    public func endStrayLeases(lease: Lease, holding: [Int64]) async throws -> (ended: Int, found: Int) {
        let row = try await database.withConnection { connection in
            try connection.queryPrepared("""
                WITH stray AS (
                    SELECT report_id FROM jobs j
                     WHERE j.state = 'running' AND \(fragment: Self.stillHeld(by: lease.owner.uuidString, alias: "j"))
                       AND j.report_id <> ALL(\(holding)::bigint[])
                ), free AS (
                    SELECT report_id FROM jobs j
                     WHERE j.report_id IN (SELECT report_id FROM stray)
                       AND j.state = 'running' AND \(fragment: Self.stillHeld(by: lease.owner.uuidString, alias: "j"))
                     FOR UPDATE SKIP LOCKED
                ), ended AS (
                    UPDATE jobs j SET lease_expires_at = now() - interval '1 millisecond'
                      FROM free WHERE j.report_id = free.report_id
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM ended)::int, (SELECT count(*) FROM stray)::int
                """).one()
        }
        return (try row.decode(Int.self, at: 0), try row.decode(Int.self, at: 1))
    }

    /// Rescues jobs whose lease ran out, without a worker's heartbeat (see `heartbeat`).
    @discardableResult
    public func rescueExpired(limit: Int = Queue.rescueLimit) async throws -> (retried: Int, dead: Int) {
        let done = try await database.withConnection { connection in
            try Self.heartbeat(owner: nil, seconds: 0, holding: [], processed: 0, rescueLimit: limit, on: connection)
        }
        return (done.retried, done.dead)
    }

    private static func heartbeat(owner: String?, seconds: Double, holding reportIDs: [Int64], processed: Int,
                                  rescueLimit: Int, on connection: Connection) throws -> Heartbeat {
        let row = try connection.queryPrepared("""
            WITH me AS (
                UPDATE workers SET heartbeat_at = now(), in_flight = \(reportIDs.count), processed = \(processed)
                 WHERE id = \(owner as String?)::uuid AND stopped_at IS NULL
            ), mine AS (
                SELECT report_id FROM jobs
                 WHERE report_id = ANY(\(reportIDs)::bigint[]) AND \(fragment: stillHeld(by: owner, alias: "jobs"))
                 FOR UPDATE SKIP LOCKED
            ), extended AS (
                UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => \(seconds))
                  FROM mine WHERE j.report_id = mine.report_id
                RETURNING 1
            ), expired AS (
                SELECT report_id, attempt >= max_attempts AS final FROM jobs
                 WHERE state = 'running' AND lease_expires_at < now()
                   AND NOT report_id = ANY(\(reportIDs)::bigint[])
                 ORDER BY lease_expires_at LIMIT \(rescueLimit)
                 FOR UPDATE SKIP LOCKED
            ), gone AS (
                DELETE FROM jobs j USING expired e WHERE j.report_id = e.report_id AND e.final
                RETURNING j.report_id, j.attempt
            ), dead AS (
                UPDATE reports r
                   SET state = 'dead', attempts = gone.attempt, processed_at = now(),
                       last_error = 'lease expired on attempt ' || gone.attempt
                                    || ': the worker crashed, hung or lost its connection'
                  FROM gone WHERE r.id = gone.report_id
                RETURNING 1
            ), retried AS (
                UPDATE jobs j
                   SET state = 'retrying', solo = true, run_at = now(),
                       lease_owner = NULL, lease_expires_at = NULL, failed_at = now(),
                       last_error = 'lease expired on attempt ' || j.attempt
                                    || ': the worker crashed, hung or lost its connection'
                  FROM expired e WHERE j.report_id = e.report_id AND NOT e.final
                RETURNING 1
            ), counts AS (
                SELECT (SELECT count(*) FROM extended) AS extended, (SELECT count(*) FROM retried) AS retried,
                       (SELECT count(*) FROM dead) AS dead
            ), tallied AS (
                \(fragment: tallyFailures("retried + dead", from: "counts"))
            )
            SELECT extended, retried, dead, CASE WHEN retried > 0 THEN pg_notify('tipline_jobs', '') END IS NULL,
                   retried > 0 OR EXISTS (SELECT 1 FROM jobs WHERE solo AND state IN ('queued', 'retrying'))
              FROM counts
            """).one()
        return Heartbeat(extended: try row.decode(at: 0), retried: try row.decode(at: 1), dead: try row.decode(at: 2),
                         soloWaiting: try row.decode(at: 4))
    }

    /// Records a failed attempt: back to the queue after `retryDelay` seconds, or `dead` with the
    /// error once attempts are used up. Fenced: refused (returns false) unless this lease still holds it.
    @discardableResult
    public func fail(_ job: ClaimedJob, error: String, retryDelay: Double, lease: Lease) async throws -> Bool {
        let message = String(error.prefix(2000))
        return try await database.transaction { tx in
            if job.attempt >= job.maxAttempts {
                return try tx.queryPrepared("""
                    WITH gone AS (
                        DELETE FROM jobs
                         WHERE report_id = \(job.reportID) AND attempt = \(job.attempt)
                           AND \(fragment: Self.stillHeld(by: lease.owner.uuidString, alias: "jobs"))
                        RETURNING report_id, attempt
                    ), tallied AS (
                        \(fragment: Self.tallyFailures("count(*)", from: "gone"))
                    )
                    UPDATE reports r
                       SET state = 'dead', attempts = gone.attempt, last_error = \(message), processed_at = now()
                      FROM gone WHERE r.id = gone.report_id
                    """).affectedRows == 1
            }
            return try tx.queryPrepared("""
                WITH failed AS (
                    UPDATE jobs
                       SET state = 'retrying', run_at = now() + make_interval(secs => \(retryDelay)),
                           lease_owner = NULL, lease_expires_at = NULL, last_error = \(message), failed_at = now()
                     WHERE report_id = \(job.reportID) AND attempt = \(job.attempt)
                       AND \(fragment: Self.stillHeld(by: lease.owner.uuidString, alias: "jobs"))
                    RETURNING 1
                ), tallied AS (
                    \(fragment: Self.tallyFailures("count(*)", from: "failed"))
                )
                SELECT count(*) FROM failed
                """).one().decode(Int.self, at: 0) == 1
        }
    }

    /// True when no job is queued, running or waiting for a retry.
    ///
    /// By a sequential scan even in a worker's session (which turns them off): at the end of a
    /// drain `jobs` holds only dead rows, and an index scan visited each through the heap (51,000
    /// buffers for 50,000 finished jobs, against 1,025 pages).
    public func isIdle() async throws -> Bool {
        try await database.transaction { tx in
            try tx.execute("SET LOCAL enable_seqscan = on")
            return try tx.query("SELECT NOT EXISTS (SELECT 1 FROM jobs)").one().decode(Bool.self, at: 0)
        }
    }
}
