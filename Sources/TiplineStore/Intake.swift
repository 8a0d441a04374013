import Foundation
public import Postgres
public import TiplineCore

/// What happened to a batch of submitted reports.
public struct SubmitOutcome: Sendable {
    /// One entry per input, in input order: the report id and whether it was new.
    public var results: [(reportID: Int64, isNew: Bool)]
    /// How many were new reports.
    public var accepted: Int { results.filter(\.isNew).count }
    /// How many were already there (same source and external id).
    public var duplicates: Int { results.count - accepted }
}

/// Accepts reports into the store and the queue.
public struct Intake: Sendable {
    /// Settings for the sessions that store reports (`submit`, `serve`): READ COMMITTED whatever
    /// the database's default. Two intakes of the same report at once then find each other's row
    /// (a duplicate, as the contract says) instead of failing on a snapshot that cannot see it
    /// (could not serialize access) under REPEATABLE READ or SERIALIZABLE.
    public static let sessionSettings = [("default_transaction_isolation", "read committed")]

    /// Where reports go.
    public let database: Database
    /// Hashes reporter identities before anything is written: the key this database's derivation
    /// made (`ReporterKey.verify(against:)`).
    public let hasher: ReporterHasher
    /// Attempts each new job gets before it is dead.
    public var maxAttempts: Int

    /// Creates an intake.
    public init(database: Database, hasher: ReporterHasher, maxAttempts: Int = 5) {
        self.database = database
        self.hasher = hasher
        self.maxAttempts = maxAttempts
    }

    /// Stores new reports and queues a job for each, in one transaction with one NOTIFY. Reports
    /// whose `(source, external_id)` already exists are not inserted; their existing id is returned.
    ///
    /// The same statement checks that the database still records the derivation and fingerprint
    /// the hasher was verified against: a database replaced, or its key settings changed, since
    /// the check (a long `submit --file` reconnecting to a database dropped and created again)
    /// stores nothing, and `ReporterKeyChanged` says to check the key again. Without it, its
    /// reporters would be hashed with another database's derivation, and counted twice.
    public func submit(_ reports: [ReportInput], source: String) async throws -> SubmitOutcome {
        guard !reports.isEmpty else { return SubmitOutcome(results: []) }
        let now = Date()
        let externalIDs = reports.map(\.externalID)
        let channels = reports.map(\.channel.rawValue)
        let hashes = reports.map { hasher.hash($0.reporter) }
        let bodies = reports.map(\.text)
        let platforms = reports.map(\.platform)
        let times = reports.map { $0.reportedAt ?? now }
        let maxAttempts = self.maxAttempts
        let derivation = hasher.derivation.recorded
        let fingerprint = hasher.fingerprint
        let fingerprintSetting = hasher.derivation.fingerprintSetting
        let rows = try await database.transaction { tx in
            let inserted = try tx.queryPrepared("""
                WITH key_fits AS (
                    SELECT count(*) = 2 AS fits FROM settings
                     WHERE (name = 'reporter_key_derivation' AND value = \(derivation))
                        OR (name = \(fingerprintSetting) AND value = \(fingerprint))
                ), input AS (
                    SELECT * FROM unnest(\(externalIDs)::text[], \(channels)::text[], \(hashes)::bytea[],
                                         \(bodies)::text[], \(platforms)::text[], \(times)::timestamptz[])
                             AS t (external_id, channel, reporter_hash, body, platform, reported_at)
                     WHERE (SELECT fits FROM key_fits)
                ), inserted AS (
                    INSERT INTO reports (source, external_id, channel, reporter_hash, body, platform, reported_at)
                    SELECT \(source), external_id, channel, reporter_hash, body, platform, reported_at FROM input
                    ON CONFLICT (source, external_id) DO NOTHING
                    RETURNING id, external_id
                ), queued AS (
                    INSERT INTO jobs (report_id, max_attempts) SELECT id, \(maxAttempts) FROM inserted
                )
                SELECT id, external_id, true AS is_new FROM inserted
                UNION ALL
                SELECT NULL, NULL, NULL WHERE NOT (SELECT fits FROM key_fits)
                """)
            if let first = inserted.rows.first, try first.decodeIfPresent(Int64.self, at: 0) == nil { throw ReporterKeyChanged() }
            var found = inserted.rows
            if inserted.count < Set(externalIDs).count {
                let existing = try tx.queryPrepared("""
                    SELECT id, external_id, false AS is_new FROM reports
                    WHERE source = \(source) AND external_id = ANY(\(externalIDs)::text[])
                    """)
                found += existing.rows
            }
            if inserted.count > 0 {
                // One NOTIFY per transaction, however many reports: PostgreSQL takes a global lock
                // at commit for notifications. It goes with the COMMIT, in its round trip.
                tx.queuePrepared("SELECT pg_notify('tipline_jobs', '')")
            }
            return found
        }
        var byExternalID: [String: (Int64, Bool)] = [:]
        for row in rows {
            let id: Int64 = try row.decode(at: 0)
            let externalID: String = try row.decode(at: 1)
            let isNew: Bool = try row.decode(at: 2)
            if let previous = byExternalID[externalID], previous.1 { continue }
            byExternalID[externalID] = (id, isNew)
        }
        // The first occurrence of an external id in the batch is the new one; later ones are duplicates.
        var seen = Set<String>()
        let results = reports.map { report -> (reportID: Int64, isNew: Bool) in
            let (id, isNew) = byExternalID[report.externalID] ?? (0, false)
            let first = seen.insert(report.externalID).inserted
            return (id, isNew && first)
        }
        return SubmitOutcome(results: results)
    }
}

/// The database no longer records the reporter key derivation and fingerprint a hasher was
/// verified against (`Intake.submit`): nothing of the batch was stored.
public struct ReporterKeyChanged: Error, CustomStringConvertible {
    public init() {}

    /// Runs `body` again, once, when it throws `ReporterKeyChanged` (the database replaced under a
    /// long import or a running server, say), after `noting` says so; `body` checks the key again
    /// first when `again` is true, which records it in a database not used yet, or refuses one
    /// that records another.
    public static func checkingTheKeyAgain<T>(noting: () -> Void, _ body: (_ again: Bool) async throws -> T) async throws -> T {
        do {
            return try await body(false)
        } catch is ReporterKeyChanged {
            noting()
            return try await body(true)
        }
    }

    public var description: String {
        "the database's reporter key settings are no longer those checked at start (the database was replaced, or its "
            + "settings changed): nothing of this batch was stored; the key must be checked against it again"
    }
}
