public import Foundation
public import Postgres
public import TiplineCore

/// Dead reports: listing them and sending them back to the queue.
public enum DeadJobs {
    /// A dead report and why it died.
    public struct Row: Sendable, Codable {
        public var id: Int64
        public var source: String
        public var externalID: String
        public var attempts: Int
        @ExplicitNull public var lastError: String?
        @ExplicitNull public var diedAt: Date?
    }

    /// Dead reports, most recent first.
    public static func list(_ database: Database, limit: Int) async throws -> [Row] {
        try await database.query("""
            SELECT id, source, external_id, attempts, last_error, processed_at FROM reports
             WHERE state = 'dead' ORDER BY processed_at DESC NULLS LAST, id DESC LIMIT \(limit)
            """).map { row in
            Row(id: try row.decode(at: 0), source: try row.decode(at: 1), externalID: try row.decode(at: 2),
                attempts: try row.decode(at: 3), lastError: try row.decodeIfPresent(at: 4),
                diedAt: try row.decodeIfPresent(at: 5))
        }
    }

    /// Queues dead reports again with a fresh attempt budget; `ids == nil` retries every dead report.
    /// Returns the ids requeued (a report that is not dead is left alone).
    public static func retry(_ database: Database, ids: [Int64]?, maxAttempts: Int = 5) async throws -> [Int64] {
        try await database.transaction { tx in
            let requeued = try tx.query("""
                WITH revived AS (
                    UPDATE reports SET state = 'pending', last_error = NULL, processed_at = NULL
                     WHERE state = 'dead' AND (\(ids == nil) OR id = ANY(\(ids ?? [])::bigint[]))
                    RETURNING id
                ), queued AS (
                    INSERT INTO jobs (report_id, max_attempts) SELECT id, \(maxAttempts) FROM revived
                )
                SELECT id FROM revived ORDER BY id
                """).map { try $0.decode(Int64.self, at: 0) }
            if !requeued.isEmpty { try tx.execute("SELECT pg_notify('tipline_jobs', '')") }
            return requeued
        }
    }
}
