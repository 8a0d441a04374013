import ContactExtraction
public import Foundation
public import Postgres
public import TiplineCore

/// One seller with every contact, report and level change (`tipline offender`).
public struct OffenderView: Sendable, Codable {
    /// The surviving offender id.
    public var id: Int64
    /// Ids merged into this one.
    public var mergedIDs: [Int64]
    /// The current level.
    public var level: String
    /// Canonical contacts (the first `limit` of them, by kind and value, when `find` was given one).
    public var contacts: [ContactRow]
    /// How many contacts the seller has.
    public var contactCount: Int
    /// Reports, newest first (the newest `limit`, when `find` was given one).
    public var reports: [ReportRow]
    /// How many reports the seller has (those of the offenders merged into it included).
    public var reportCount: Int
    /// Distinct reporters over all reports.
    public var distinctReporters: Int
    /// Changes of the level, oldest first.
    public var levelHistory: [LevelChange]

    // `mergedIDs` would come out as `merged_i_ds` from the CLI's snake_case encoder.
    private enum CodingKeys: String, CodingKey {
        case id, mergedIDs = "mergedIds", level, contacts, contactCount, reports, reportCount, distinctReporters, levelHistory
    }

    /// A contact.
    public struct ContactRow: Sendable, Codable {
        public var kind: String
        public var value: String
    }

    /// A report, with the reporter shown only as a short prefix of its keyed hash.
    public struct ReportRow: Sendable, Codable {
        public var id: Int64
        public var source: String
        public var externalID: String
        public var channel: String
        public var reporter: String
        public var reportedAt: Date
        @ExplicitNull public var category: String?
        @ExplicitNull public var outcome: String?
        @ExplicitNull public var level: String?
    }

    /// A change of level: a rise by the ladder (an escalation row, `id`), or one an administrator
    /// made, up or down (a `level_audit` row, `auditID`, with who and why).
    public struct LevelChange: Sendable, Codable {
        @ExplicitNull public var id: Int64?
        /// The seller whose level changed: this one, or one merged into it since.
        public var offenderID: Int64
        public var from: String
        public var to: String
        @ExplicitNull public var reportID: Int64?
        public var at: Date
        @ExplicitNull public var auditID: Int64?
        @ExplicitNull public var actor: String?
        @ExplicitNull public var reason: String?
    }

    /// The offender id `reference` names, if it is one: `29`, or `#29` as `status` and `offender` print it.
    public static func id(_ reference: String) -> Int64? {
        Int64(reference.hasPrefix("#") ? reference.dropFirst() : Substring(reference))
    }

    /// Finds an offender by id (following merges) or by `kind:value` of one of its contacts.
    public static func find(_ reference: String, in database: Database, limit: Int? = nil) async throws -> OffenderView? {
        try await database.withConnection { connection in
            var start: Int64?
            if let id = id(reference) {
                start = id
            } else if let colon = reference.firstIndex(of: ":") {
                let kind = String(reference[..<colon]).lowercased()
                let typed = String(reference[reference.index(after: colon)...])
                // As extraction stores it, read from any form an ad may use (`phone:138 1234 5678`,
                // `qq:１２３４５６７８`, `telegram:t.me/Acct_Shop`, `site:https://www.HaoShop.cn/`);
                // a value no reading accepts is looked up lower-cased, as typed.
                let value = ContactKind(rawValue: kind).flatMap { ContactExtractor().canonical($0, typed: typed) } ?? typed.lowercased()
                start = try connection.query("""
                    SELECT offender_id FROM contacts WHERE kind = \(kind) AND value = \(value)
                    """).first?.decodeIfPresent(Int64.self, at: 0)
            }
            guard var id = start else { return nil }
            // Follow merges to the survivor.
            for _ in 0..<64 {
                guard let row = try connection.query("SELECT merged_into FROM offenders WHERE id = \(id)").first else {
                    return nil
                }
                guard let next = try row.decodeIfPresent(Int64.self, at: 0) else { break }
                id = next
            }
            let level = try connection.query("SELECT level FROM offenders WHERE id = \(id)").one().decode(String.self, at: 0)
            let merged = try connection.query("SELECT id FROM offenders WHERE merged_into = \(id) ORDER BY id")
                .map { try $0.decode(Int64.self, at: 0) }
            let contacts = try connection.query("""
                SELECT kind, value FROM contacts WHERE offender_id = \(id) ORDER BY kind, value LIMIT \(limit as Int?)
                """).map { ContactRow(kind: try $0.decode(at: 0), value: try $0.decode(at: 1)) }
            var contactCount = contacts.count
            if let limit, contactCount >= limit {
                contactCount = try connection.query("SELECT count(*) FROM contacts WHERE offender_id = \(id)").one().decode(Int.self, at: 0)
            }
            let reports = try connection.query("""
                SELECT id, source, external_id, channel, encode(substring(reporter_hash FROM 1 FOR 4), 'hex'),
                       reported_at, category, outcome, level
                  FROM reports WHERE offender_id = ANY(\([id] + merged)::bigint[]) ORDER BY reported_at DESC, id DESC
                 LIMIT \(limit as Int?)
                """).map { row in
                ReportRow(id: try row.decode(at: 0), source: try row.decode(at: 1), externalID: try row.decode(at: 2),
                          channel: try row.decode(at: 3), reporter: "r:" + (try row.decode(String.self, at: 4)),
                          reportedAt: try row.decode(at: 5), category: try row.decodeIfPresent(at: 6),
                          outcome: try row.decodeIfPresent(at: 7), level: try row.decodeIfPresent(at: 8))
            }
            // The whole counts, in the scan that counts the distinct reporters anyway.
            let counted = try connection.query("""
                SELECT count(*), count(DISTINCT reporter_hash) FROM reports WHERE offender_id = ANY(\([id] + merged)::bigint[])
                """).one()
            let reportCount = try counted.decode(Int.self, at: 0)
            let reporters = try counted.decode(Int.self, at: 1)
            // Rises by the ladder, and every level an administrator set (a rise they made is both an
            // escalation and an audit row: shown once, with who and why).
            let owners = [id] + merged
            let history = try connection.query("""
                SELECT e.id, e.from_level, e.to_level, e.report_id, e.created_at, NULL::bigint, NULL::text, NULL::text, e.offender_id
                  FROM escalations e WHERE e.offender_id = ANY(\(owners)::bigint[]) AND e.audit_id IS NULL
                UNION ALL
                SELECT e.id, a.from_level, a.to_level, NULL, coalesce(e.created_at, a.created_at), a.id, a.actor, a.reason, a.offender_id
                  FROM level_audit a
                  LEFT JOIN LATERAL (SELECT id, created_at FROM escalations WHERE audit_id = a.id LIMIT 1) e ON true
                 WHERE a.offender_id = ANY(\(owners)::bigint[])
                 ORDER BY 5, 1 NULLS LAST, 6
                """).map { row in
                LevelChange(id: try row.decodeIfPresent(at: 0), offenderID: try row.decode(at: 8), from: try row.decode(at: 1),
                            to: try row.decode(at: 2), reportID: try row.decodeIfPresent(at: 3), at: try row.decode(at: 4),
                            auditID: try row.decodeIfPresent(at: 5), actor: try row.decodeIfPresent(at: 6),
                            reason: try row.decodeIfPresent(at: 7))
            }
            return OffenderView(id: id, mergedIDs: merged, level: level, contacts: contacts, contactCount: contactCount,
                                reports: reports, reportCount: reportCount, distinctReporters: reporters, levelHistory: history)
        }
    }
}
