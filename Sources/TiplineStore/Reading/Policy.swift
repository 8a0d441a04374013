public import Foundation
public import Postgres
public import TiplineCore

/// The escalation ladder policy: the newest row of `ladder_policies` is in force for reports
/// processed from then on; older rows stay as the record of what applied when.
public enum PolicyStore {
    /// A stored policy.
    public struct Row: Sendable, Codable {
        public var id: Int
        public var ladder: Ladder
        public var note: String
        public var actor: String
        public var createdAt: Date
    }

    /// Every policy, newest first (the first is in force).
    public static func history(_ database: Database) async throws -> [Row] {
        try await database.query("""
            SELECT id, window_days, review, restrict_at, suspend, refer, note, actor, created_at
              FROM ladder_policies ORDER BY id DESC
            """).map { row in
            Row(id: try row.decode(at: 0),
                ladder: Ladder(windowDays: try row.decode(at: 1), review: try row.decode(at: 2), restrict: try row.decode(at: 3),
                               suspend: try row.decode(at: 4), refer: try row.decode(at: 5)),
                note: try row.decode(at: 6), actor: try row.decode(at: 7), createdAt: try row.decode(at: 8))
        }
    }

    /// Installs a new ladder, made by `change` from the one in force (and its id); it applies to
    /// reports processed afterwards, and levels already reached stay. Changes are taken one at a
    /// time (an advisory lock to the commit), so that each is made from the ladder the one before
    /// installed: two administrators changing different thresholds at once both keep their change.
    public static func install(note: String, actor: String, in database: Database,
                               _ change: @escaping @Sendable (_ current: Ladder, _ id: Int) throws -> Ladder) async throws -> Int {
        guard !note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw TiplineError(.invalidInput, "--note must say why the ladder changes")
        }
        return try await database.transaction { tx in
            // READ COMMITTED whatever the database's default: the ladder is read after the lock,
            // in a snapshot that sees the change committed before it.
            try tx.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            try tx.execute("SELECT pg_advisory_xact_lock(\(Self.changeLock))")
            guard let row = try tx.query("""
                SELECT id, window_days, review, restrict_at, suspend, refer FROM ladder_policies ORDER BY id DESC LIMIT 1
                """).first
            else { throw TiplineError(.schema, "no ladder policy: run tipline migrate") }
            let current = Ladder(windowDays: try row.decode(at: 1), review: try row.decode(at: 2), restrict: try row.decode(at: 3),
                                 suspend: try row.decode(at: 4), refer: try row.decode(at: 5))
            let ladder = try change(current, try row.decode(at: 0))
            if let problem = ladder.problem { throw TiplineError(.invalidInput, "ladder: \(problem)") }
            return try tx.query("""
                INSERT INTO ladder_policies (window_days, review, restrict_at, suspend, refer, note, actor)
                VALUES (\(ladder.windowDays), \(ladder.review), \(ladder.restrict), \(ladder.suspend), \(ladder.refer), \(note), \(actor))
                RETURNING id
                """).one().decode(Int.self, at: 0)
        }
    }

    /// Advisory lock taken by every change of the ladder, held to commit ("tiplpol" in ASCII).
    static let changeLock: Int64 = 0x7469_706c_706f_6c
}

/// Administrator actions on offenders.
public enum OffenderAdmin {
    /// Sets an offender's level with a reason, recorded in `level_audit`; a rise is also an
    /// escalation row (and NOTIFY). Merged ids resolve to the survivor. Returns (survivor, from, to).
    public static func setLevel(
        _ reference: Int64, to level: Level, reason: String, actor: String, in database: Database
    ) async throws -> (offender: Int64, from: Level, to: Level) {
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw TiplineError(.invalidInput, "--reason must say why") }
        return try await database.transaction { tx in
            // The survivor is found without a lock, then locked alone (and followed on, should a
            // merge have absorbed it meanwhile). Locking the merged offender and then its survivor
            // took two rows in descending id order, and a worker's batch holding the survivor
            // re-points the offenders merged into it when it absorbs that survivor: a deadlock.
            var id = reference
            var survivor: Int64?
            for _ in 0..<64 where survivor == nil {
                guard let row = try tx.query("SELECT merged_into FROM offenders WHERE id = \(id)").first else {
                    throw TiplineError(.notFound, "no offender \(reference)")
                }
                if let next = try row.decodeIfPresent(Int64.self, at: 0) {
                    id = next
                } else if let next = try tx.query("SELECT merged_into FROM offenders WHERE id = \(id) FOR UPDATE").one()
                    .decodeIfPresent(Int64.self, at: 0) {
                    id = next
                } else {
                    survivor = id
                }
            }
            guard let survivor else {
                throw PostgresError(
                    code: .queryFailed, sqlState: .serializationFailure,
                    message: "offender \(reference) kept being merged into others while its level was being set; try again")
            }
            id = survivor
            let current = Level(rawValue: try tx.query("SELECT level FROM offenders WHERE id = \(id)").one().decode(String.self, at: 0)) ?? Level.none
            let audit = try tx.query("""
                INSERT INTO level_audit (offender_id, from_level, to_level, reason, actor, created_at)
                VALUES (\(id), \(current.rawValue), \(level.rawValue), \(trimmed), \(actor), clock_timestamp()) RETURNING id
                """).one().decode(Int64.self, at: 0)
            // The history column is kept only by workers levelling the seller (SellerRecord): from a
            // level they did not reach, they read its reports whole again, and count every window
            // again (`recount`), so that a seller set down climbs back to what its reporters justify.
            // `updated_at` orders the top sellers: a decision that keeps the level moves nobody up.
            try tx.execute("""
                UPDATE offenders SET level = \(level.rawValue), history = \(SellerRecord.recountBytes),
                                     updated_at = CASE WHEN level = \(level.rawValue) THEN updated_at ELSE now() END
                 WHERE id = \(id)
                """)
            if level > current {
                try tx.execute("SELECT pg_advisory_xact_lock(\(EscalationFeed.outboxLock))")
                // Counted in this minute's row of this session, like the workers' rises (`tipline status`).
                try tx.query("""
                    WITH written AS (
                        INSERT INTO escalations (offender_id, from_level, to_level, audit_id, created_at)
                        VALUES (\(id), \(current.rawValue), \(level.rawValue), \(audit), clock_timestamp()) RETURNING id
                    ), tallied AS (
                        INSERT INTO report_tallies AS t (minute, backend, to_review, to_restrict, to_suspend, to_refer)
                        VALUES (date_trunc('minute', now()), pg_backend_pid(), \(level == .review ? 1 : 0), \(level == .restrict ? 1 : 0),
                                \(level == .suspend ? 1 : 0), \(level == .refer ? 1 : 0))
                        ON CONFLICT (minute, backend) DO UPDATE SET \(unescaped: Queue.addRisesToTally)
                    )
                    SELECT pg_notify('tipline_escalations', id::text) FROM written
                    """)
            }
            return (id, current, level)
        }
    }
}

/// The escalation outbox, read in id order from a cursor.
public enum EscalationFeed {
    /// Advisory lock taken by every transaction that writes escalation rows, held to commit.
    static let outboxLock: Int64 = 0x7469_706c_6f75_74
    /// One escalation row.
    public struct Row: Sendable, Codable {
        public var id: Int64
        public var offenderID: Int64
        public var from: String
        public var to: String
        public var reportID: Int64?
        public var auditID: Int64?
        public var at: Date
    }

    /// Rows with id greater than `after`, oldest first, at most `limit`.
    public static func after(_ after: Int64, limit: Int, in database: Database) async throws -> [Row] {
        try await database.query("""
            SELECT id, offender_id, from_level, to_level, report_id, audit_id, created_at
              FROM escalations WHERE id > \(after) ORDER BY id LIMIT \(limit)
            """).map { row in
            Row(id: try row.decode(at: 0), offenderID: try row.decode(at: 1), from: try row.decode(at: 2),
                to: try row.decode(at: 3), reportID: try row.decodeIfPresent(at: 4), auditID: try row.decodeIfPresent(at: 5),
                at: try row.decode(at: 6))
        }
    }
}
