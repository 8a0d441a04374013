import Foundation
import Postgres
import Testing
import TiplineStore

@Suite("reading it back")
struct ExportTests {
    @Test("export prints one object per report with exactly the contract's fields")
    func exportMatchesContract() async throws {
        try await TestDatabase.with { db in
            let scenario = Scenario.make(count: 60, sellers: 8, seed: 21)
            try await WorkerProcessTests.submit(scenario, to: db)
            let worker = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            #expect(worker.status == .exit(0))
            _ = try await QueueTests.submit(["still queued 扣扣：1234567"], to: db)
            let export = try await TiplineProcess.run(["export"], databaseURL: db.url)
            let lines = export.stdout.split(separator: "\n")
            #expect(lines.count == 61)
            var statuses: [String: Int] = [:]
            for line in lines { statuses[try Self.checkLine(String(line)), default: 0] += 1 }
            #expect(statuses == ["done": 60, "queued": 1])
            // Resumed from an id: exactly the lines after it, in the same order.
            let ids = try lines.map { try #require((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? Int) }
            #expect(ids == ids.sorted())
            let cut = ids[40]
            let resumed = try await TiplineProcess.run(["export", "--after", String(cut)], databaseURL: db.url)
            #expect(resumed.status == .exit(0))
            #expect(resumed.stdout.split(separator: "\n") == Array(lines[41...]))
            let negative = try await TiplineProcess.run(["export", "--after=-1"], databaseURL: db.url)
            #expect(negative.status == .exit(64) && negative.stderr.contains("--after must be 0 or a report id"), "\(negative.stderr)")
            // Pages cut by size (here one report each, or a few) give the same lines, each once, in order.
            for (pageSize, pageBytes) in [(5_000, 1), (7, 600), (13, 1 << 20)] {
                var paged: [Substring] = []
                try await ReportExport.run(db.database, pageSize: pageSize, pageBytes: pageBytes) { paged.append(Substring($0)) }
                #expect(paged == lines, "pages of \(pageSize) reports and \(pageBytes) bytes")
            }
        }
    }

    @Test("escalations --follow reads a row whose notification never came, keeps following after its session is killed, and exits 0 on SIGTERM")
    func escalationsFollow() async throws {
        try await TestDatabase.with { db in
            let offender = try await db.int("INSERT INTO offenders DEFAULT VALUES RETURNING id")
            let follower = try TiplineProcess(["escalations", "--follow"], databaseURL: db.url)
            try follower.start()
            defer { follower.signal(SIGTERM) }
            try await waitUntil("the follower listens", timeout: 30) {
                try await db.int("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tipline-escalations'") >= 2
            }
            // No NOTIFY: only the 5 s poll can find it.
            let quiet = try await db.int("""
                INSERT INTO escalations (offender_id, from_level, to_level) VALUES (\(offender), 'none', 'review') RETURNING id
                """)
            try await waitUntil("the follower prints the row written without a notification", timeout: 30) {
                follower.stdout.contains("\"id\":\(quiet),")
            }
            // A restart ends every session like this; the follower reconnects and goes on.
            _ = try await db.int("""
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'tipline-escalations'
                """)
            let after = try await db.int("""
                WITH e AS (INSERT INTO escalations (offender_id, from_level, to_level) VALUES (\(offender), 'review', 'restrict') RETURNING id)
                SELECT id FROM e
                """)
            _ = try await db.int("SELECT count(*) FROM (SELECT pg_notify('tipline_escalations', '')) n")
            try await waitUntil("the follower prints the row written after its sessions were killed", timeout: 60) {
                follower.stdout.contains("\"id\":\(after),")
            }
            #expect(follower.process.isRunning, "stderr: \(follower.stderr.suffix(2000))")
            // SIGTERM ends it cleanly: exit 0, the last line whole.
            follower.signal(SIGTERM)
            #expect(try await follower.wait(timeout: 30) == .exit(0), "stderr: \(follower.stderr.suffix(2000))")
            #expect(follower.stdout.hasSuffix("}\n") && !follower.stderr.contains("abandoned"), "\(follower.stdout.suffix(300)) \(follower.stderr)")
        }
    }

    @Test("escalations --follow on a database it never reached exits 1 with the connection hint instead of retrying for ever")
    func escalationsFollowWrongDatabase() async throws {
        let missing = try TestDatabase.url(for: "tipline_no_such_database")
        let run = try await TiplineProcess.run(["escalations", "--follow"], databaseURL: missing, timeout: 30)
        #expect(run.status == .exit(1), "\(run.status) \(run.stderr.suffix(1000))")
        #expect(run.stderr.contains("does not exist") && !run.stderr.contains("retrying"), "\(run.stderr.suffix(1000))")
    }

    @Test("status --watch --json into a file writes each frame as it is taken, so an interrupt loses none")
    func statusWatchIntoAFile() async throws {
        try await TestDatabase.with { db in
            let watcher = try TiplineProcess(["status", "--json", "--watch", "0.5"], databaseURL: db.url)
            try watcher.start()
            try await waitUntil("two frames are in the file", timeout: 30) {
                watcher.stdout.split(separator: "\n").count >= 2
            }
            watcher.signal(SIGINT)
            // An interrupt is how a dashboard ends: exit 0, not death by the signal.
            #expect(try await watcher.wait(timeout: 30) == .exit(0), "\(watcher.stderr)")
            let frames = watcher.stdout.split(separator: "\n")
            #expect(frames.count >= 2)
            for frame in frames { #expect((try? JSONSerialization.jsonObject(with: Data(frame.utf8))) is [String: Any], "\(frame)") }
        }
    }

    @Test("status --watch blocked on a lock a migration holds still ends on SIGINT: exit 0 within its grace, with a note")
    func watchEndsWhileBlocked() async throws {
        try await TestDatabase.with { db in
            try await db.whileAnotherSessionHolds(Query(sql: "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE", binds: [])) {
                let watcher = try TiplineProcess(["status", "--watch", "1"], databaseURL: db.url)
                try watcher.start()
                defer { watcher.signal(SIGKILL) }
                try await waitUntil("status waits for the lock", timeout: 30) {
                    try await db.int("""
                        SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND application_name = 'tipline-status' AND wait_event_type = 'Lock'
                        """) == 1
                }
                watcher.signal(SIGINT)
                // The lock is held for a minute: an exit before that is the grace's.
                #expect(try await watcher.wait(timeout: 30) == .exit(0), "\(watcher.stderr)")
                #expect(watcher.stderr.contains("had not returned 3 s after the signal"), "\(watcher.stderr)")
            }
        }
    }

    @Test("escalations refuses a limit outside 1-100000 and a negative cursor")
    func escalationsArguments() async throws {
        try await TestDatabase.with { db in
            for args in [["--limit", "0"], ["--limit=-1"], ["--after=-5"]] {
                let result = try await TiplineProcess.run(["escalations"] + args, databaseURL: db.url, timeout: 20)
                #expect(result.status == .exit(64), "\(args): \(result.stderr)")
                #expect(result.stderr.contains("--limit must be between 1 and 100000") || result.stderr.contains("--after must be"),
                        "\(args): \(result.stderr)")
            }
        }
    }

    /// Checks one export line against the contract and returns its status.
    static func checkLine(_ line: String) throws -> String {
        let fields: Set<String> = ["id", "external_id", "source", "channel", "status", "outcome", "offender_id", "level",
                                   "category", "contacts", "reported_at", "processed_at"]
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(Set(object.keys) == fields)
        let status = try #require(object["status"] as? String)
        let contacts = try #require(object["contacts"] as? [[String: Any]])
        for contact in contacts { #expect(Set(contact.keys) == ["kind", "value"]) }
        if status == "done" {
            #expect(["no_contact", "recorded", "escalated"].contains(object["outcome"] as? String))
            #expect(["rental", "sale", "buyback", "lookup", "other"].contains(object["category"] as? String))
            #expect((object["outcome"] as? String == "no_contact") == (object["offender_id"] is NSNull))
            #expect((object["level"] is NSNull) == (object["offender_id"] is NSNull))
        } else {
            #expect(object["outcome"] is NSNull)
        }
        #expect((object["reported_at"] as? String)?.hasSuffix("Z") == true)
        return status
    }

    /// `tipline status --json` on `db`, as an object.
    static func statusObject(_ db: TestDatabase) async throws -> [String: Any] {
        let status = try await TiplineProcess.run(["status", "--json"], databaseURL: db.url)
        return try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any],
                            "stdout: \(status.stdout)\nstderr: \(status.stderr)")
    }

    /// Top-level counts from `status --json`.
    static func statusCounts(_ json: String) throws -> (counts: [String: Int], topOffenders: Int) {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let counts = try #require(object["counts"] as? [String: Int])
        return (counts, (object["top_offenders"] as? [Any])?.count ?? 0)
    }

    /// Escalation rows by the level reached.
    static func escalationsByLevel(_ db: TestDatabase) async throws -> [String: Int] {
        var levels = ["review": 0, "restrict": 0, "suspend": 0, "refer": 0]
        for row in try await db.database.query("SELECT to_level, count(*)::int FROM escalations GROUP BY 1") {
            levels[try row.decode(String.self, at: 0)] = try row.decode(Int.self, at: 1)
        }
        return levels
    }

    @Test("status --json tells counts, workers and top sellers")
    func statusJSON() async throws {
        try await TestDatabase.with { db in
            try await WorkerProcessTests.submit(Scenario.make(count: 100, sellers: 5, seed: 8), to: db)
            _ = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            let status = try await TiplineProcess.run(["status", "--json"], databaseURL: db.url)
            let (counts, top) = try Self.statusCounts(status.stdout)
            #expect(counts["done"] == 100 && counts["queued"] == 0)
            #expect(top > 0)
            let verdict = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
            #expect(verdict["healthy"] as? Bool == true && (verdict["attention"] as? [String]) == [])
            // Counted from the completion counters, which must agree with the reports themselves.
            let object = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
            #expect((object["completed"] as? [String: Int])?["15m"] == 100)
            let categories = try #require(object["categories_24h"] as? [String: Int])
            // Every category and level is a key, 0 included: a client need not guess what a missing key means.
            #expect(Set(categories.keys) == ["rental", "sale", "buyback", "lookup", "other"], "\(categories)")
            for (category, count) in categories {
                #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND category = \(category)") == count, "\(category)")
            }
            #expect(categories.values.reduce(0, +) == 100)
            // Escalations of the last day, from the counters too: the same as the rows written.
            let escalated = try await Self.escalationsByLevel(db)
            #expect(escalated.values.contains { $0 > 0 })
            #expect(object["escalations_24h"] as? [String: Int] == escalated)
            // An administrator's rise counts as well.
            // (Lowered first, which writes no escalation, so that the rise to refer is one.)
            let seller = try await db.int("SELECT min(id)::int FROM offenders WHERE merged_into IS NULL")
            for level in ["none", "refer"] {
                let set = try await TiplineProcess.run(["offender", "set-level", String(seller), level, "--reason", "court order"],
                                                       databaseURL: db.url)
                #expect(set.status == .exit(0), "stderr: \(set.stderr)")
            }
            let afterObject = try await Self.statusObject(db)
            #expect(afterObject["escalations_24h"] as? [String: Int] == (try await Self.escalationsByLevel(db)))
            #expect((afterObject["escalations_24h"] as? [String: Int])?["refer"] == (escalated["refer"] ?? 0) + 1)
            let screen = try await TiplineProcess.run(["status"], databaseURL: db.url)
            #expect(screen.stdout.contains("Top sellers") && screen.stdout.contains("done 100") && screen.stdout.contains("healthy"))
            // Reports waiting and no worker live: the screen says so.
            try await WorkerProcessTests.submit(Scenario.make(count: 3, sellers: 1, seed: 81), to: db)
            let waiting = try await TiplineProcess.run(["status"], databaseURL: db.url)
            #expect(waiting.stdout.contains("NEEDS ATTENTION") && waiting.stdout.contains("3 reports wait and no worker is live"), "\(waiting.stdout)")
            // A retry whose time has not come is told apart from the reports ready to run.
            _ = try await db.int("""
                WITH r AS (UPDATE jobs SET state = 'retrying', run_at = now() + interval '1 hour'
                            WHERE report_id = (SELECT min(report_id) FROM jobs) RETURNING 1) SELECT count(*) FROM r
                """)
            let backoff = try await TiplineProcess.run(["status"], databaseURL: db.url)
            #expect(backoff.stdout.contains("3 reports wait (1 of them for a retry) and no worker is live"), "\(backoff.stdout)")
        }
    }

    @Test("status counts the last 1, 5 and 15 minutes whole: the minute a window starts in by its share, not left out")
    func statusWindowsAreWhole() async throws {
        try await TestDatabase.with { db in
            // A steady rate: one report done and one failed attempt a second for the last 25
            // minutes, the reports and their counters written as the completions would have.
            if try await db.int("SELECT extract(second FROM now())::int") > 50 { try await Task.sleep(for: .seconds(11)) }
            try await db.database.execute("""
                INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at, state, outcome, category, processed_at)
                SELECT 'steady', k::text, 'app', sha256(k::text::bytea), 'ad', now(), 'done', 'no_contact', 'other',
                       now() - make_interval(secs => k + 0.5)
                  FROM generate_series(0, 1499) AS k
                """)
            try await db.database.execute("""
                INSERT INTO report_tallies (minute, backend, done, other)
                SELECT date_trunc('minute', processed_at), 0, count(*), count(*) FROM reports GROUP BY 1
                """)
            // Failed attempts over a day, counted by minute only: 60 for each past minute, the seconds so far in this one.
            // The last failure counted: this statement's whole seconds (it may run a while after the reports').
            let failedUntil = try await db.database.query("""
                INSERT INTO report_tallies AS t (minute, backend, failed)
                SELECT date_trunc('minute', now()) - make_interval(mins => m), 0,
                       CASE WHEN m = 0 THEN floor(extract(second FROM now()))::int ELSE 60 END
                  FROM generate_series(0, 1500) AS m
                ON CONFLICT (minute, backend) DO UPDATE SET failed = excluded.failed
                RETURNING extract(epoch FROM date_trunc('second', now()))::float8
                """).first?.decode(Double.self, at: 0) ?? 0
            let written = try await db.database.query("SELECT extract(epoch FROM max(processed_at))::float8 + 0.5 FROM reports")
                .one().decode(Double.self, at: 0)
            let object = try await Self.statusObject(db)
            let completed = try #require(object["completed"] as? [String: Int])
            // The steady rate stopped when it was written: each window has lost the seconds that
            // passed before status read it (several, on a loaded machine).
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let read = try #require((object["at"] as? String).flatMap(formatter.date(from:)), "\(object)")
            let elapsed = Int((read.timeIntervalSince1970 - written).rounded())
            for (window, expected) in [("1m", 60), ("5m", 300), ("15m", 900)] {
                // A window that starts in the minute the stream stopped in counts that minute's
                // reports by its share of the minute, as if spread over all of it: with d of them
                // in the window, off by at most (60 - d)^2 / 240 (so by 4 when status reads 28 s
                // after, on a loaded machine).
                let inside = Double(max(0, 60 - (expected - elapsed)))
                let slack = 3 + Int((inside * inside / 240).rounded(.up))
                #expect(abs((completed[window] ?? 0) - (expected - elapsed)) <= slack, "\(window), \(elapsed) s after: \(completed)")
            }
            let failedElapsed = Int((read.timeIntervalSince1970 - failedUntil).rounded())
            #expect(abs((object["recent_failures"] as? Int ?? 0) - (900 - failedElapsed)) <= 3, "\(failedElapsed) s after: \(object)")
            #expect((object["categories_24h"] as? [String: Int])?["other"] == 1500, "\(object)")
            // The screen's rate is its own last minute's count over 60 s.
            let screen = try await TiplineProcess.run(["status"], databaseURL: db.url)
            let lastMinute = try #require(screen.stdout.firstMatch(of: #/last 1m (\d+) /#).flatMap { Int($0.1) }, "\(screen.stdout)")
            #expect(screen.stdout.contains("(\(String(format: "%.1f", Double(lastMinute) / 60))/s)"), "\(screen.stdout)")
        }
    }

    @Test("reports still held by a worker whose lease ran out long ago, with no worker to take them back, need attention")
    func expiredLeasesNeedAttention() async throws {
        try await TestDatabase.with { db in
            _ = try await QueueTests.submit(["V信: held_seller1", "V信: held_seller2"], to: db)
            // What a worker killed two minutes ago leaves behind.
            try await db.database.execute("""
                UPDATE jobs SET state = 'running', attempt = 1, lease_owner = gen_random_uuid(), lease_expires_at = now() - interval '2 minutes'
                """)
            let object = try await Self.statusObject(db)
            #expect(object["healthy"] as? Bool == false && object["expired_leases"] as? Int == 2, "\(object)")
            #expect((object["attention"] as? [String])?.contains {
                $0.hasPrefix("2 reports are still held by a worker whose lease ran out a while ago: no worker is live")
            } == true, "\(object)")
            // A worker's heartbeat takes them back, and the queue is healthy once they are done.
            let drain = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            #expect(drain.status == .exit(0), "\(drain.stderr.suffix(1500))")
            let verdict = try await Self.statusObject(db)
            #expect(verdict["healthy"] as? Bool == true && verdict["expired_leases"] as? Int == 0, "\(verdict)")
        }
    }

    @Test("status --watch rides out a database it cannot reach: it says so, and draws again once it is back")
    func watchRidesOutAnOutage() async throws {
        try await TestDatabase.with { db in
            let watch = try TiplineProcess(["status", "--watch", "0.2"], databaseURL: db.url)
            try watch.start()
            try await waitUntil("a first frame", timeout: 30) { watch.stdout.contains("Tipline queue") }
            let admin = Database(config: ConnectionConfig(conninfo: try TestDatabase.adminURL), maxConnections: 1)
            try await admin.execute(Query(sql: "ALTER DATABASE \(db.name) ALLOW_CONNECTIONS false", binds: []))
            _ = try await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(db.name)")
            try await waitUntil("an outage frame", timeout: 30) { watch.stdout.contains("database unreachable for") }
            let framesBefore = watch.stdout.components(separatedBy: "Tipline queue").count
            try await admin.execute(Query(sql: "ALTER DATABASE \(db.name) ALLOW_CONNECTIONS true", binds: []))
            await admin.shutdown()
            try await waitUntil("a frame after the outage", timeout: 30) {
                watch.stdout.components(separatedBy: "Tipline queue").count > framesBefore
            }
            #expect(watch.process.isRunning, "stderr: \(watch.stderr)")
            #expect(!watch.stdout.contains("\u{1B}"), "screen-clearing codes written into a pipe")
            #expect(watch.stdout.contains("\n\nTipline queue"), "frames in a pipe are not a blank line apart")
            watch.signal(SIGINT)
            _ = try await watch.wait(timeout: 30)
        }
    }

    @Test("status against an unreachable database says so in one line")
    func unreachableDatabase() async throws {
        let result = try await TiplineProcess.run(["status"], databaseURL: "postgresql://nobody@127.0.0.1:1/none")
        #expect(result.status == .exit(1))
        #expect(result.stderr.contains("cannot reach the database"))
        #expect(result.stderr.split(separator: "\n").count <= 3)
        #expect(!result.stderr.contains("libpq tried its defaults") && !result.stderr.contains("neither"), "\(result.stderr)")
    }

    @Test("a database that cannot be reached with no connection setting at all, or with one libpq takes for a database name, says so")
    func connectionSettingHints() async throws {
        // Nothing listens on libpq's default socket here: the throwaway server has its own.
        let unset = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"].reduce(into: [String: String]()) { $0[$1] = "" }
        let none = try await TiplineProcess.run(["status"], databaseURL: nil, environment: unset)
        #expect(none.status == .exit(1))
        #expect(none.stderr.contains("(no --database-url, DATABASE_URL or PG* variable is set, so libpq tried its defaults"), "\(none.stderr)")
        let name = try await TiplineProcess.run(["status"], databaseURL: "tipline-db.example", environment: unset)
        #expect(name.status == .exit(1))
        #expect(name.stderr.contains("neither a postgresql:// URI nor key=value pairs"), "\(name.stderr)")
        #expect(!name.stderr.contains("tipline-db.example\""), "the setting was echoed: \(name.stderr)")
    }
}
