import Foundation
import Postgres
import TiplineCore

/// What `GET /v1/reports/{id}` shows: the report's progress and result, never its text or reporter.
struct ReportView: Encodable, Sendable {
    var id: Int64
    var externalID: String
    var channel: String
    /// `queued`, `running`, `retrying`, `done` or `dead` (as in `tipline export`).
    var status: String
    /// `no_contact`, `recorded` or `escalated`; null until done.
    @ExplicitNull var outcome: String?
    /// The seller's level right after this report; null without a seller.
    @ExplicitNull var level: String?
    /// `rental`, `sale`, `buyback`, `lookup` or `other`; null until done.
    @ExplicitNull var category: String?
    var reportedAt: String
    @ExplicitNull var processedAt: String?

    enum CodingKeys: String, CodingKey {
        case id, externalID = "external_id", channel, status, outcome, level, category
        case reportedAt = "reported_at", processedAt = "processed_at"
    }

    /// The report `id` if it belongs to `source`.
    static func find(_ id: Int64, source: String, in database: Database) async throws -> ReportView? {
        let rows = try await database.query("""
            SELECT r.id, r.external_id, r.channel, coalesce(j.state, r.state), r.outcome, r.level, r.category,
                   to_char(r.reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   to_char(r.processed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
              FROM reports r LEFT JOIN jobs j ON j.report_id = r.id
             WHERE r.id = \(id) AND r.source = \(source)
            """)
        guard let row = rows.first else { return nil }
        return ReportView(
            id: try row.decode(at: 0), externalID: try row.decode(at: 1), channel: try row.decode(at: 2),
            status: try row.decode(at: 3), outcome: try row.decodeIfPresent(at: 4), level: try row.decodeIfPresent(at: 5),
            category: try row.decodeIfPresent(at: 6), reportedAt: try row.decode(at: 7), processedAt: try row.decodeIfPresent(at: 8))
    }
}
