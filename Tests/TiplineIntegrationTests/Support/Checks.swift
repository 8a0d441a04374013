import Foundation
import Postgres
import Testing
import TiplineCore

/// Invariants checked after workers drained a scenario.
enum Checks {
    /// Counts the offender and report ids that rows name without the row existing.
    static let danglingReferences: Query = """
        SELECT (SELECT count(*) FROM reports r WHERE r.offender_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM offenders o WHERE o.id = r.offender_id))
             + (SELECT count(*) FROM contacts c WHERE c.offender_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM offenders o WHERE o.id = c.offender_id))
             + (SELECT count(*) FROM offenders a WHERE a.merged_into IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM offenders o WHERE o.id = a.merged_into))
             + (SELECT count(*) FROM escalations e WHERE NOT EXISTS (SELECT 1 FROM offenders o WHERE o.id = e.offender_id))
             + (SELECT count(*) FROM escalations e WHERE e.report_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.id = e.report_id))
        """

    /// A digest of every row a completion writes (reports, contacts, sellers, escalation rows and
    /// the tallies): equal before and after only when nothing was written in between.
    static func written(_ db: TestDatabase) async throws -> String {
        try await db.database.query("""
            SELECT md5(concat_ws('|',
                (SELECT string_agg(r::text, ',' ORDER BY r.id) FROM reports r),
                (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM contacts c),
                (SELECT string_agg(o::text, ',' ORDER BY o.id) FROM offenders o),
                (SELECT string_agg(e::text, ',' ORDER BY e.id) FROM escalations e),
                (SELECT string_agg(t::text, ',' ORDER BY t.minute, t.backend) FROM report_tallies t)))
            """).one().decode(String.self, at: 0)
    }

    /// Every report done exactly once; grouping, levels, links and escalation rows as expected.
    static func drainedExactlyOnce(_ db: TestDatabase, scenario: Scenario, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let expected = scenario.expected()
        #expect(try await db.int("SELECT count(*) FROM jobs") == 0, "jobs left in the queue", sourceLocation: sourceLocation)
        #expect(try await db.int("SELECT count(*) FROM reports WHERE state <> 'done'") == 0,
                "reports not done", sourceLocation: sourceLocation)
        #expect(try await db.int("SELECT count(*) FROM reports") == scenario.reports.count, sourceLocation: sourceLocation)
        // Each completion that committed counts its reports in this minute's tally of its session: a
        // report completed twice would count twice (a refused completion counts nothing).
        #expect(try await db.int("SELECT coalesce(sum(done), 0)::int FROM report_tallies") == scenario.reports.count,
                "completions committed differ from the reports", sourceLocation: sourceLocation)
        #expect(try await db.int("SELECT coalesce(sum(cardinality(contact_ids)), 0) FROM reports") == expected.links,
                "contact links differ from the extracted contacts", sourceLocation: sourceLocation)
        // A merged offender names the final survivor itself, never another merged offender: reports
        // and escalation rows of absorbed sellers resolve in one step.
        #expect(try await db.int("""
            SELECT count(*) FROM offenders a JOIN offenders b ON b.id = a.merged_into WHERE b.merged_into IS NOT NULL
            """) == 0, "a merge chain longer than one step", sourceLocation: sourceLocation)
        // No row names an offender or a report that is not stored (migration 0009 dropped the
        // foreign keys that used to refuse such a write).
        #expect(try await db.int(Checks.danglingReferences) == 0, "a row names a missing offender or report",
                sourceLocation: sourceLocation)
        // Grouping: reports of one seller (an offender with those merged into it) are exactly one expected seller.
        var actual: [Int64: Set<String>] = [:]
        for row in try await db.database.query("SELECT coalesce(o.merged_into, o.id), r.external_id FROM reports r JOIN offenders o ON o.id = r.offender_id") {
            actual[try row.decode(Int64.self, at: 0), default: []].insert(try row.decode(String.self, at: 1))
        }
        #expect(Set(actual.values) == Set(expected.groups.keys), "grouping differs from the expected sellers",
                sourceLocation: sourceLocation)
        var levels: [Int64: Level] = [:]
        for row in try await db.database.query("SELECT id, level FROM offenders WHERE merged_into IS NULL") {
            levels[try row.decode(Int64.self, at: 0)] = Level(rawValue: try row.decode(String.self, at: 1))
        }
        for (id, members) in actual {
            #expect(levels[id] == expected.groups[members], "offender \(id) level", sourceLocation: sourceLocation)
        }
        // Escalation rows: per offender a strictly rising chain from none to its final level, so
        // no rise was written twice.
        var chains: [Int64: [(String, String)]] = [:]
        for row in try await db.database.query("SELECT offender_id, from_level, to_level FROM escalations ORDER BY id") {
            chains[try row.decode(Int64.self, at: 0), default: []].append((try row.decode(at: 1), try row.decode(at: 2)))
        }
        for (id, chain) in chains {
            let ranks = chain.map { Level(rawValue: $0.1)!.rank }
            #expect(ranks == ranks.sorted() && Set(ranks).count == ranks.count, "offender \(id) escalations repeat: \(chain)",
                    sourceLocation: sourceLocation)
            if let level = levels[id] {  // merged offenders keep their own history; survivors end at their level
                #expect(chain.last.map { Level(rawValue: $0.1) } == level, "offender \(id) last escalation",
                        sourceLocation: sourceLocation)
            }
        }
        #expect(try await db.int("""
            SELECT count(*) FROM offenders o WHERE merged_into IS NULL AND level <> 'none'
               AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.offender_id = o.id)
            """) == 0, "a level above none without an escalation row", sourceLocation: sourceLocation)
    }
}
