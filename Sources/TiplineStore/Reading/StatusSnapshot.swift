public import Foundation
public import Postgres
public import TiplineCore

/// Everything `tipline status` shows: is the queue healthy?
public struct StatusSnapshot: Sendable, Codable {
    /// True when nothing needs an administrator (`attention` is empty).
    public var healthy: Bool
    /// What needs an administrator now, one line each (`QueueHealth`): reports waiting with no live
    /// worker, a report waiting five minutes or more, dead reports.
    public var attention: [String]
    /// Jobs and reports by status.
    public var counts: [String: Int]
    /// How long, in seconds, the job that has waited longest to be claimed has been ready to run:
    /// since it was queued, or since its retry fell due (a retry still in its backoff is not
    /// waiting). Null when none is ready.
    @ExplicitNull public var oldestWaitingSeconds: Double?
    /// Reports completed in the last 1, 5 and 15 minutes, from per-minute counters: the minutes
    /// inside the window whole, and the minute the window starts in by the share of it inside.
    public var completed: [String: Int]
    /// Failed attempts in the last 15 minutes (errors recorded by workers, and leases that ran out
    /// and were taken back), counted like `completed`.
    public var recentFailures: Int
    /// Jobs still `running` whose lease ran out a while ago: over a minute, and over two heartbeat
    /// intervals (a third of the lease) of the live worker with the longest lease. Their worker is
    /// gone, and no live worker's heartbeat has returned them to the queue.
    public var expiredLeases: Int
    /// Workers that heartbeat within their lease.
    public var workers: [WorkerRow]
    /// Escalations in the last 24 hours, by level reached (every level, 0 included).
    public var escalations24h: [String: Int]
    /// Categories of reports completed in the last 24 hours (every category, 0 included).
    public var categories24h: [String: Int]
    /// The sellers at the top of the ladder: the ten at the highest levels, most recently changed
    /// first within a level.
    public var topOffenders: [OffenderRow]
    /// When this was read.
    public var at: Date

    enum CodingKeys: String, CodingKey {
        case healthy, attention, counts, oldestWaitingSeconds, completed, recentFailures, expiredLeases, workers
        case escalations24h = "escalations_24h", categories24h = "categories_24h", topOffenders, at
    }

    /// A live worker.
    public struct WorkerRow: Sendable, Codable {
        public var name: String
        public var host: String
        public var pid: Int
        public var inFlight: Int
        public var processed: Int
        public var concurrency: Int
        public var secondsSinceHeartbeat: Double
        public var upSeconds: Double
    }

    /// A seller in the top list.
    public struct OffenderRow: Sendable, Codable {
        public var id: Int64
        public var level: String
        public var reports: Int
        public var reporters: Int
        @ExplicitNull public var lastReportedAt: Date?
        public var contacts: [String]
    }

    /// Reads a snapshot in one transaction (REPEATABLE READ, so the numbers agree with each other).
    public static func read(_ database: Database) async throws -> StatusSnapshot {
        try await database.withConnection { connection in
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { _ = try? connection.execute("COMMIT") }
            // Every count over `jobs` names the states of one of its partial indexes: a table that a
            // large drain left long and empty is then not read from end to end (two sequential scans
            // of 16 MB took 19 ms of `status` after the 1,000,000-report growth run).
            let totals = try connection.query("""
                SELECT (SELECT count(*) FROM jobs WHERE state = 'queued'),
                       (SELECT count(*) FROM jobs WHERE state = 'running'),
                       (SELECT count(*) FROM jobs WHERE state = 'retrying'),
                       (SELECT coalesce(sum(done), 0)::bigint FROM report_tallies),
                       (SELECT count(*) FROM reports WHERE state = 'dead'),
                       (SELECT extract(epoch FROM now() - min(run_at))::float8 FROM jobs
                         WHERE state IN ('queued', 'retrying') AND run_at <= now()),
                       \(fragment: Self.lastMinutes(1, of: "done")),
                       \(fragment: Self.lastMinutes(5, of: "done")),
                       \(fragment: Self.lastMinutes(15, of: "done")),
                       \(fragment: Self.lastMinutes(15, of: "failed")),
                       (SELECT count(*) FROM jobs
                         WHERE state = 'running'
                           AND lease_expires_at < now() - make_interval(secs => greatest(60, 2 * coalesce((
                                   SELECT max(lease_seconds) / 3 FROM workers
                                    WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => lease_seconds)), 0)))),
                       (SELECT count(*) FROM jobs WHERE state IN ('queued', 'retrying') AND run_at > now())
                """).one()
            let counts = [
                "queued": try totals.decode(Int.self, at: 0), "running": try totals.decode(Int.self, at: 1),
                "retrying": try totals.decode(Int.self, at: 2), "done": try totals.decode(Int.self, at: 3),
                "dead": try totals.decode(Int.self, at: 4),
            ]
            let workers = try connection.query("""
                SELECT name, host, pid, in_flight, processed, concurrency,
                       extract(epoch FROM now() - heartbeat_at)::float8, extract(epoch FROM now() - started_at)::float8
                  FROM workers
                 WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => lease_seconds)
                 ORDER BY name, started_at
                """).map { row in
                WorkerRow(name: try row.decode(at: 0), host: try row.decode(at: 1), pid: try row.decode(at: 2),
                          inFlight: try row.decode(at: 3), processed: try row.decode(at: 4),
                          concurrency: try row.decode(at: 5), secondsSinceHeartbeat: try row.decode(at: 6),
                          upSeconds: try row.decode(at: 7))
            }
            // The last day's escalations by level and completions by category, from the per-minute
            // counters (counting the escalation rows themselves took 30 ms once 200,000 of them were
            // from the last day), in one pass over them.
            let lastDay = try connection.query("""
                SELECT \(unescaped: ["to_review", "to_restrict", "to_suspend", "to_refer", "rental", "sale", "buyback", "lookup", "other"]
                            .map { "coalesce(round(sum(\($0) * share)), 0)::bigint" }.joined(separator: ", "))
                  FROM (\(fragment: Self.windowShares(minutes: 24 * 60))) w
                """).one()
            /// The counts of `names` (0 included), in the columns from `first` on.
            func byName(_ names: [String], from first: Int) throws -> [String: Int] {
                var found: [String: Int] = [:]
                for (index, name) in names.enumerated() { found[name] = try lastDay.decode(Int.self, at: first + index) }
                return found
            }
            let escalations = try byName(["review", "restrict", "suspend", "refer"], from: 0)
            let categories = try byName(["rental", "sale", "buyback", "lookup", "other"], from: 4)
            let top = try connection.query("""
                WITH top AS (
                    SELECT id, level, updated_at FROM offenders
                     WHERE merged_into IS NULL AND level <> 'none'
                     ORDER BY array_position(ARRAY['none', 'review', 'restrict', 'suspend', 'refer'], level) DESC,
                              updated_at DESC
                     LIMIT 10
                )
                SELECT top.id, top.level, s.reports, s.reporters, s.last_at, c.contacts
                  FROM top
                 CROSS JOIN LATERAL (
                       SELECT count(*) AS reports, count(DISTINCT r.reporter_hash) AS reporters, max(r.reported_at) AS last_at
                         FROM (SELECT top.id AS id UNION ALL SELECT o.id FROM offenders o WHERE o.merged_into = top.id) m
                         JOIN reports r ON r.offender_id = m.id) s
                 CROSS JOIN LATERAL (
                       SELECT coalesce(array_agg(kind || ':' || value ORDER BY kind, value), '{}') AS contacts
                         FROM (SELECT kind, value FROM contacts WHERE offender_id = top.id ORDER BY kind, value LIMIT 4) x) c
                 ORDER BY array_position(ARRAY['none', 'review', 'restrict', 'suspend', 'refer'], top.level) DESC,
                          top.updated_at DESC, top.id
                """).map { row in
                OffenderRow(id: try row.decode(at: 0), level: try row.decode(at: 1), reports: try row.decode(at: 2),
                            reporters: try row.decode(at: 3), lastReportedAt: try row.decodeIfPresent(at: 4),
                            contacts: PostgresTextArray.parse(try row.decode(String.self, at: 5)))
            }
            let expiredLeases: Int = try totals.decode(at: 10)
            let attention = QueueHealth.problems(
                waiting: (counts["queued"] ?? 0) + (counts["retrying"] ?? 0), inBackoff: try totals.decode(at: 11),
                oldestWaitingSeconds: try totals.decodeIfPresent(at: 5),
                liveWorkers: workers.count, dead: counts["dead"] ?? 0, expiredLeases: expiredLeases)
            return StatusSnapshot(
                healthy: attention.isEmpty, attention: attention, counts: counts, oldestWaitingSeconds: try totals.decodeIfPresent(at: 5),
                completed: ["1m": try totals.decode(at: 6), "5m": try totals.decode(at: 7), "15m": try totals.decode(at: 8)],
                recentFailures: try totals.decode(at: 9), expiredLeases: expiredLeases, workers: workers, escalations24h: escalations,
                categories24h: categories, topOffenders: top, at: Date())
        }
    }
}

extension StatusSnapshot {
    /// The counter rows of the last `minutes` minutes with the share of each inside the window
    /// (`share`): 1 for a minute that began inside it, the part after the window's start for the
    /// minute it starts in. Counters are kept by minute, so that minute's are assumed spread evenly
    /// over it; counting only the minutes that began inside the window left out up to a minute.
    static func windowShares(minutes: Int) -> Query {
        """
        SELECT *, least(1, extract(epoch FROM minute + interval '1 minute' - (now() - interval '\(unescaped: String(minutes)) minutes')) / 60) AS share
          FROM report_tallies
         WHERE minute > now() - interval '\(unescaped: String(minutes + 1)) minutes'
        """
    }

    /// The sum of `column` over the last `minutes` minutes (`windowShares`), as a scalar subquery.
    static func lastMinutes(_ minutes: Int, of column: String) -> Query {
        "(SELECT coalesce(round(sum(\(unescaped: column) * share)), 0)::bigint FROM (\(fragment: windowShares(minutes: minutes))) w)"
    }
}

/// Reads PostgreSQL's text output of a `text[]` value.
public enum PostgresTextArray {
    /// Splits `{a,"b c","d\"e"}` into its elements (NULL elements become empty strings).
    public static func parse(_ text: String) -> [String] {
        var elements: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        var sawQuotes = false
        for ch in text.dropFirst().dropLast() {
            if escaped {
                current.append(ch)
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else if ch == "\"" {
                quoted.toggle()
                sawQuotes = true
            } else if ch == ",", !quoted {
                elements.append(!sawQuotes && current == "NULL" ? "" : current)
                current = ""
                sawQuotes = false
            } else {
                current.append(ch)
            }
        }
        if text.count > 2 { elements.append(!sawQuotes && current == "NULL" ? "" : current) }
        return elements
    }
}
