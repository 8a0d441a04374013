@preconcurrency import Crypto
import Foundation
public import Postgres

/// One numbered SQL file from migrations/, carried inside the binary.
public struct Migration: Sendable, Equatable {
    /// The number the file name starts with; migrations apply in this order.
    public var version: Int
    /// The rest of the file name.
    public var name: String
    /// The file's SQL.
    public var sql: String

    /// SHA-256 of the SQL, hex; a changed file after it was applied is refused.
    public var checksum: String {
        PostgresHex.encode(SHA256.hash(data: Data(sql.utf8)))
    }
}

/// What `tipline migrate` did.
public struct MigrationReport: Sendable {
    /// Versions applied by this run.
    public var applied: [Int]
    /// Versions that were already there.
    public var alreadyApplied: [Int]
    /// What the server said while this run applied each migration (its `RAISE NOTICE`s, the
    /// `WARNING` of a grant that granted nothing), in order.
    public var notices: [(version: Int, notice: PostgresNotice)] = []
}

/// A migration problem an operator has to look at.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var description: String
}

/// Applies migrations in order, each in its own transaction, under an advisory lock so that any
/// number of processes may run it at once: one applies, the others wait and then find nothing to do.
public struct Migrator: Sendable {
    /// The advisory lock key ("tipline" in ASCII), taken per transaction.
    static let lockKey: Int64 = 0x7469_706c_696e_65
    /// The migrations this binary carries.
    public let migrations: [Migration]

    /// Creates a migrator for the embedded migrations (or others, in tests).
    public init(migrations: [Migration] = Migration.embedded) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Brings the schema up to date.
    public func migrate(_ database: Database) async throws -> MigrationReport {
        let migrations = self.migrations
        return try await database.withConnection { connection in
            var report = MigrationReport(applied: [], alreadyApplied: [])
            try connection.transaction { tx in
                try tx.execute("SELECT pg_advisory_xact_lock(\(Self.lockKey))")
                try tx.executeScript("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version    integer     PRIMARY KEY,
                        name       text        NOT NULL,
                        checksum   text        NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """)
                // A schema newer than this binary is not "up to date": its workers would refuse it.
                let known = Set(migrations.map(\.version))
                let unknown = try tx.query("SELECT version FROM schema_migrations ORDER BY version")
                    .map { try $0.decode(Int.self, at: 0) }.filter { !known.contains($0) }
                if !unknown.isEmpty {
                    throw MigrationError(description:
                        "the database has migration(s) \(unknown.map(String.init).joined(separator: ", ")) that this binary "
                        + "does not know: the schema is newer than this binary; run the binary that applied them")
                }
            }
            _ = connection.takeNotices()  // "relation schema_migrations already exists, skipping"
            for migration in migrations {
                let applied = try connection.transaction { tx in
                    try tx.execute("SELECT pg_advisory_xact_lock(\(Self.lockKey))")
                    let existing = try tx.query(
                        "SELECT checksum FROM schema_migrations WHERE version = \(migration.version)")
                    if let row = existing.first {
                        let checksum: String = try row.decode(at: 0)
                        guard checksum == migration.checksum else {
                            throw MigrationError(description:
                                "migration \(migration.version)_\(migration.name) was changed after it was applied "
                                + "(checksum \(checksum.prefix(12)) in the database, \(migration.checksum.prefix(12)) in this binary); "
                                + "shipped migrations must never be edited: add a new one")
                        }
                        return false
                    }
                    try tx.executeScript(migration.sql)
                    try tx.execute("""
                        INSERT INTO schema_migrations (version, name, checksum)
                        VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                        """)
                    return true
                }
                report.notices += connection.takeNotices().map { (migration.version, $0) }
                if applied { report.applied.append(migration.version) } else { report.alreadyApplied.append(migration.version) }
            }
            return report
        }
    }

    /// Versions this binary knows that are not applied yet (all of them on a database never migrated).
    public func pending(_ database: Database) async throws -> [Int] {
        do {
            return missing(given: try await applied(database))
        } catch let error as PostgresError where error.sqlState == .undefinedTable {
            return missing(given: [])
        }
    }

    /// The versions this binary carries that `applied` lacks, in order.
    private func missing(given applied: Set<Int>) -> [Int] {
        migrations.map(\.version).filter { !applied.contains($0) }
    }

    /// Throws unless the database's schema is this binary's: every migration it carries applied,
    /// and none it does not know. A worker checks this before its first claim: against an older
    /// schema its statements would fail on every batch, and against a newer one it could write
    /// what newer workers rely on the wrong way (from 0011 on, a seller's kept history).
    public func requireCurrent(_ database: Database) async throws {
        let applied: Set<Int>
        do {
            applied = try await self.applied(database)
        } catch let error as PostgresError where error.sqlState == .undefinedTable {
            throw TiplineError(.schema, "the database has no Tipline schema yet: run `tipline migrate` first")
        }
        let lacking = missing(given: applied)
        let unknown = applied.subtracting(migrations.map(\.version)).sorted()
        if !lacking.isEmpty {
            throw TiplineError(.schema, "the database lacks migration(s) \(lacking.map(String.init).joined(separator: ", ")) "
                + "that this binary needs: run `tipline migrate` with this binary first")
        }
        if !unknown.isEmpty {
            throw TiplineError(.schema, "the database has migration(s) \(unknown.map(String.init).joined(separator: ", ")) "
                + "that this binary does not know: it is older than the schema; run the binary that applied them")
        }
    }

    /// The versions recorded in `schema_migrations`.
    private func applied(_ database: Database) async throws -> Set<Int> {
        Set(try await database.query("SELECT version FROM schema_migrations").map { try $0.decode(Int.self, at: 0) })
    }
}
