import Foundation
import Postgres
import Testing
import TiplineCore
import TiplineStore

/// Sellers and the ladder with real worker processes (issue: grouping, levels, outbox, admin).
@Suite("sellers and the ladder", .serialized)
struct SellerTests {
    /// Drains `scenario` submitted in `order` with `workers` processes; returns sellers as sets of
    /// external ids with their level.
    static func run(_ scenario: Scenario, order: [Int], workers: Int, batch: Int = 50) async throws -> [Set<String>: String] {
        try await TestDatabase.with { db in
            let reordered = Scenario(reports: order.map { scenario.reports[$0] })
            try await WorkerProcessTests.submit(reordered, to: db)
            let processes = try (0..<workers).map {
                try WorkerProcessTests.worker(db, ["--until-idle", "--concurrency", "2", "--batch", String(batch)], name: "w\($0)")
            }
            for process in processes { try process.start() }
            for process in processes {
                #expect(try await process.wait(timeout: 600) == .exit(0), "stderr: \(process.stderr.suffix(1500))")
            }
            try await Checks.drainedExactlyOnce(db, scenario: reordered)
            var members: [Int64: Set<String>] = [:]
            for row in try await db.database.query("SELECT coalesce(o.merged_into, o.id), r.external_id FROM reports r JOIN offenders o ON o.id = r.offender_id") {
                members[try row.decode(Int64.self, at: 0), default: []].insert(try row.decode(String.self, at: 1))
            }
            var result: [Set<String>: String] = [:]
            for row in try await db.database.query("SELECT id, level FROM offenders WHERE merged_into IS NULL") {
                if let ids = members[try row.decode(Int64.self, at: 0)] { result[ids] = try row.decode(String.self, at: 1) }
            }
            return result
        }
    }

    @Test("the same 2,000 reports give the same sellers and levels with 1 or 4 workers, in reversed or shuffled order")
    func orderAndWorkerCountDoNotMatter() async throws {
        let scenario = Scenario.make(count: 2_000, sellers: 150, reporters: 60, seed: 2024)
        let forward = Array(scenario.reports.indices)
        var rng = SplitMix64(seed: 99)
        let one = try await Self.run(scenario, order: forward, workers: 1)
        let four = try await Self.run(scenario, order: forward, workers: 4, batch: 10)
        let reversed = try await Self.run(scenario, order: forward.reversed(), workers: 2)
        let shuffled = try await Self.run(scenario, order: forward.shuffled(using: &rng), workers: 4, batch: 7)
        #expect(one.count > 50, "the scenario should have many sellers")
        #expect(Set(one.values).count >= 4, "the scenario should reach several levels")
        #expect(four == one)
        #expect(reversed == one)
        #expect(shuffled == one)
    }

    @Test("concurrent merges of overlapping sellers by several processes end in one offender each")
    func concurrentMerges() async throws {
        // 40 chains of 8 sellers; each report links two neighbours of a chain, shuffled, so that
        // workers merge the same offenders from different ends at once.
        var reports: [Scenario.Report] = []
        var rng = SplitMix64(seed: 5)
        for chain in 0..<40 {
            for link in 0..<7 {
                for copy in 0..<3 {
                    let a = chain * 8 + link, b = a + 1
                    reports.append(Scenario.Report(
                        externalID: "c\(chain)-\(link)-\(copy)", channel: "app", reporter: "u\(Int.random(in: 0..<30, using: &rng))",
                        text: "出租 V信: \(Scenario.wechat(a)) 扣扣：\(Scenario.qq(a)) 或 QQ号：\(Scenario.qq(b))",
                        reportedAt: Scenario.end.addingTimeInterval(-Double(Int.random(in: 0..<2_000_000, using: &rng)))))
                }
            }
        }
        reports.shuffle(using: &rng)
        let scenario = Scenario(reports: reports)
        let sellers = try await Self.run(scenario, order: Array(reports.indices), workers: 4, batch: 5)
        #expect(sellers.count == 40)
        #expect(sellers.keys.allSatisfy { $0.count == 21 })
    }

    @Test("an administrator's level is recorded with who and why, and a rise goes to the outbox in order")
    func adminSetLevelAndOutbox() async throws {
        try await TestDatabase.with { db in
            let scenario = Scenario.make(count: 300, sellers: 20, seed: 77)
            try await WorkerProcessTests.submit(scenario, to: db)
            _ = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            let low = try await db.database.query("""
                SELECT id FROM offenders WHERE merged_into IS NULL AND level = 'none' ORDER BY id LIMIT 1
                """).one().decode(Int64.self, at: 0)
            let before = try await TiplineProcess.run(["escalations"], databaseURL: db.url).stdout.split(separator: "\n")
            let set = try await TiplineProcess.run(
                ["offender", "set-level", String(low), "suspend", "--reason", "matches a police bulletin", "--actor", "ops-1"],
                databaseURL: db.url)
            #expect(set.status == .exit(0), "\(set.stderr)")
            #expect(set.stdout.contains("none -> suspend"))
            let audit = try await db.database.query("SELECT reason, actor, from_level, to_level FROM level_audit").one()
            #expect(try audit.decode(String.self, at: 0) == "matches a police bulletin")
            #expect(try audit.decode(String.self, at: 1) == "ops-1")
            let lastID = try #require(before.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }?["id"] as? Int)
            let after = try await TiplineProcess.run(["escalations", "--after", String(lastID)], databaseURL: db.url)
            let lines = after.stdout.split(separator: "\n")
            #expect(lines.count == 1)
            #expect(lines.first?.contains("\"to\":\"suspend\"") == true)
            #expect(lines.first?.contains("\"offender_id\":\(low)") == true)
            // Every row is listed once, in id order.
            let ids = before.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? Int }
            let total = try await db.int("SELECT count(*) FROM escalations")
            #expect(ids == ids.sorted() && ids.count == total - 1)
            let refused = try await TiplineProcess.run(["offender", "set-level", String(low), "refer", "--reason", " "], databaseURL: db.url)
            #expect(refused.status == .exit(1))
            // A level set down is no escalation, but the seller's history shows it, with who and why.
            let down = try await TiplineProcess.run(
                ["offender", "set-level", String(low), "none", "--reason", "false positive", "--actor", "ops-2"], databaseURL: db.url)
            #expect(down.stdout.contains("suspend -> none"), "\(down.stderr)")
            #expect(try await db.int("SELECT count(*) FROM escalations") == total)
            let shown = try await TiplineProcess.run(["offender", String(low)], databaseURL: db.url)
            let history = shown.stdout.components(separatedBy: "Level history")[1].components(separatedBy: "Reports")[0]
            #expect(history.contains("none -> suspend  (set by ops-1: matches a police bulletin)"), "\(shown.stdout)")
            #expect(history.contains("suspend -> none  (set by ops-2: false positive)"), "\(shown.stdout)")
            #expect(history.components(separatedBy: "-> suspend").count == 2, "the admin's rise is listed once: \(history)")
            let json = try await TiplineProcess.run(["offender", String(low), "--json"], databaseURL: db.url)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["merged_ids"] is [Any], "\(object.keys.sorted())")
            let changes = try #require(object["level_history"] as? [[String: Any]])
            #expect(changes.compactMap { $0["actor"] as? String } == ["ops-1", "ops-2"])
        }
    }

    @Test("a seller lowered by hand climbs back to what its reporters justify at its next report, though that report adds no reporter")
    func loweredSellerClimbsBack() async throws {
        try await TestDatabase.with { db in
            func submit(_ reporter: String, _ at: String, _ id: String) async throws {
                let run = try await TiplineProcess.run(["submit", "--text", "出租微信 V信: lowered_c1", "--reporter", reporter,
                                                        "--reported-at", at, "--external-id", id], databaseURL: db.url)
                #expect(run.status == .exit(0), "\(run.stderr)")
                #expect(try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url).status == .exit(0))
            }
            for (index, reporter) in ["r1", "r2", "r3"].enumerated() { try await submit(reporter, "2026-10-0\(index + 1)T00:00:00Z", "c\(index)") }
            let seller = try await db.int("SELECT offender_id::int FROM contacts WHERE value = 'lowered_c1'")
            func level() async throws -> String {
                try await db.database.query("SELECT level FROM offenders WHERE id = \(Int64(seller))").one().decode(String.self, at: 0)
            }
            #expect(try await level() == "restrict")
            let screen = try await TiplineProcess.run(["offender", String(seller)], databaseURL: db.url)
            #expect(screen.stdout.contains("level restrict  3 reports from 3 distinct reporters"), "\(screen.stdout)")
            let lowered = try await TiplineProcess.run(["offender", "set-level", String(seller), "none", "--reason", "mistake?"], databaseURL: db.url)
            #expect(lowered.status == .exit(0) && lowered.stdout.contains("restrict -> none"), "\(lowered)")
            // A report two months later, from a reporter already counted: its own window holds one.
            try await submit("r1", "2026-12-01T00:00:00Z", "c-late")
            #expect(try await level() == "restrict")
            let rise = try await db.database.query("SELECT e.from_level, e.to_level FROM escalations e JOIN reports r ON r.id = e.report_id WHERE r.external_id = 'c-late'").one()
            #expect(try rise.decode(String.self, at: 0) == "none" && rise.decode(String.self, at: 1) == "restrict")
            // Only an administrator's level asks for a recount: a column dropped otherwise (reaching
            // the top, or a database from before 0011) is read whole and only the windows holding
            // the new report counted, as a ladder changed since applies to reports processed after it.
            _ = try await db.int("WITH u AS (UPDATE offenders SET level = 'none', history = NULL WHERE id = \(Int64(seller)) RETURNING 1) SELECT count(*) FROM u")
            try await submit("r1", "2026-12-01T06:00:00Z", "c-dropped")
            #expect(try await level() == "none")
            _ = try await db.int("WITH u AS (UPDATE offenders SET level = 'restrict' WHERE id = \(Int64(seller)) RETURNING 1) SELECT count(*) FROM u")
            // Then it reads its own windows again: one more old reporter raises nothing.
            let five = try await TiplineProcess.run(["offender", "wechat:lowered_c1"], databaseURL: db.url)
            #expect(five.stdout.contains("5 reports from 3 distinct reporters"), "\(five.stdout)")
            _ = try await TiplineProcess.run(["submit", "--text", "出租微信 V信: single_c9", "--reporter", "r9"], databaseURL: db.url)
            _ = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            let one = try await TiplineProcess.run(["offender", "wechat:single_c9"], databaseURL: db.url)
            #expect(one.stdout.contains("level none  1 report from 1 distinct reporter\n"), "\(one.stdout)")
            try await submit("r2", "2026-12-02T00:00:00Z", "c-later")
            #expect(try await level() == "restrict")
            #expect(try await db.int("SELECT count(*) FROM escalations e JOIN reports r ON r.id = e.report_id WHERE r.external_id = 'c-later'") == 0)
        }
    }

    @Test("a seller absorbed in the batch where it rose keeps, on its own row, the level its last escalation names")
    func absorbedSellerKeepsItsRise() async throws {
        try await TestDatabase.with { db in
            func line(_ id: String, _ reporter: String, _ text: String, _ at: String) -> String {
                #"{"external_id":"\#(id)","channel":"app","reporter":"\#(reporter)","text":"\#(text)","reported_at":"\#(at)"}"#
            }
            func drain(_ lines: [String]) async throws {
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("absorbed-\(UUID().uuidString).jsonl").path
                defer { try? FileManager.default.removeItem(atPath: path) }
                try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
                #expect(try await TiplineProcess.run(["submit", "--file", path], databaseURL: db.url).status == .exit(0))
                #expect(try await TiplineProcess.run(["work", "--until-idle", "--concurrency", "1"], databaseURL: db.url).status == .exit(0))
            }
            try await drain((1...3).map { line("x\($0)", "x\($0)", "出租微信 V信: mx_low1", "2026-10-0\($0)T00:00:00Z") })
            try await drain((1...2).map { line("y\($0)", "y\($0)", "出租微信 V信: my_high1", "2026-10-0\($0)T00:00:00Z") })
            // One batch: my_high1's seller rises to restrict, then a report naming both merges it into mx_low1's.
            try await drain([line("y3", "y3", "出租微信 V信: my_high1", "2026-10-03T00:00:00Z"),
                             line("both", "z1", "出租微信 V信: mx_low1 V信: my_high1", "2026-10-04T00:00:00Z")])
            let row = try await db.database.query("SELECT o.level, o.merged_into IS NOT NULL, (SELECT e.to_level FROM escalations e WHERE e.offender_id = o.id ORDER BY e.id DESC LIMIT 1) FROM offenders o WHERE o.id = (SELECT r.offender_id FROM reports r WHERE r.external_id = 'y1')").one()
            #expect(try row.decode(Bool.self, at: 1), "the seller was not absorbed")
            #expect(try row.decode(String.self, at: 2) == "restrict")
            #expect(try row.decode(String.self, at: 0) == "restrict")
        }
    }

    @Test("a seller is found by a phone written the way the ad wrote it, not only as stored")
    func offenderByPhoneAsWritten() async throws {
        try await TestDatabase.with { db in
            try await WorkerProcessTests.submit(Scenario.make(count: 200, sellers: 20, seed: 5), to: db)
            _ = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            let row = try await db.database.query("""
                SELECT value, offender_id FROM contacts WHERE kind = 'phone' AND value LIKE '+86%' ORDER BY id LIMIT 1
                """).one()
            let stored = try row.decode(String.self, at: 0)
            let digits = String(stored.dropFirst(3))
            let spaced = "\(digits.prefix(3)) \(digits.dropFirst(3).prefix(4)) \(digits.suffix(4))"
            for reference in ["phone:\(stored)", "phone:\(digits)", "phone:\(spaced)"] {
                let shown = try await TiplineProcess.run(["offender", reference], databaseURL: db.url)
                #expect(shown.status == .exit(0) && shown.stdout.contains(stored), "\(reference): \(shown.stderr)")
            }
        }
    }

    @Test("a seller is found by a WeChat ID, Telegram name, e-mail or site typed in any form an ad may use")
    func offenderByAnyContactAsWritten() async throws {
        try await TestDatabase.with { db in
            let text = "微信：Chain_aaaa1 TG @Odd_Seller 邮箱 Shop@Example.COM 网站 https://www.OddShop.cn:8080/x"
            let submitted = try await TiplineProcess.run(["submit", "--text", text, "--reporter", "u1"], databaseURL: db.url)
            #expect(submitted.status == .exit(0), "\(submitted.stderr)")
            _ = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            #expect(try await db.int("SELECT count(DISTINCT offender_id) FROM contacts") == 1)
            for reference in [
                "wechat:ＣＨＡＩＮ_aaaa1", "wechat:Chain_AAAA1", "telegram:＠odd_seller", "telegram:t.me/Odd_Seller", "telegram:Odd_Seller",
                "email:SHOP@example.com", "site:https://www.oddshop.cn/", "site:oddshop.cn:8080", "site:OddShop.cn",
            ] {
                let shown = try await TiplineProcess.run(["offender", reference, "--json"], databaseURL: db.url)
                #expect(shown.status == .exit(0) && shown.stdout.contains("chain_aaaa1"), "\(reference): \(shown.stderr)")
            }
            let missing = try await TiplineProcess.run(["offender", "wechat:other_seller1"], databaseURL: db.url)
            #expect(missing.status != .exit(0) && missing.stderr.contains("no offender matches"))
        }
    }

    @Test("the offender screen names the first 20 sellers merged in and counts the rest; --json lists them all")
    func offenderManyMerged() async throws {
        try await TestDatabase.with { db in
            let survivor = try await db.int("INSERT INTO offenders DEFAULT VALUES RETURNING id")
            _ = try await db.int("""
                WITH m AS (INSERT INTO offenders (merged_into) SELECT \(survivor) FROM generate_series(1, 25) RETURNING id)
                SELECT count(*) FROM m
                """)
            let text = try await TiplineProcess.run(["offender", String(survivor)], databaseURL: db.url)
            #expect(text.status == .exit(0) && text.stdout.contains("#\(survivor + 20) and 5 more (--json lists them all)"), "\(text.stdout)")
            #expect(!text.stdout.contains("#\(survivor + 21)"))
            let json = try await TiplineProcess.run(["offender", String(survivor), "--json"], databaseURL: db.url)
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect((object?["merged_ids"] as? [Int])?.count == 25)
        }
    }

    @Test("a report's time reads the same to the microsecond in offender (text and JSON) and export")
    func offenderTimesToTheMicrosecond() async throws {
        try await TestDatabase.with { db in
            let at = try #require(ISO8601.parse("2026-11-01T08:00:00.123456Z"))
            let inputs = [
                ReportInput(externalID: "f1", channel: .app, reporter: "u1", text: "QQ 22223333", reportedAt: at, platform: nil),
                ReportInput(externalID: "f2", channel: .app, reporter: "u2", text: "QQ 22223333",
                            reportedAt: at.addingTimeInterval(-0.123456), platform: nil),
            ]
            _ = try await Intake(database: db.database, hasher: try await WorkerProcessTests.key.verify(against: db.database)).submit(inputs, source: "test")
            _ = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            let exported = try await TiplineProcess.run(["export"], databaseURL: db.url)
            #expect(exported.stdout.contains("2026-11-01T08:00:00.123456Z") && exported.stdout.contains("2026-11-01T08:00:00.000000Z"))
            let json = try await TiplineProcess.run(["offender", "qq:22223333", "--json"], databaseURL: db.url)
            #expect(json.stdout.contains("\"2026-11-01T08:00:00.123456Z\"") && json.stdout.contains("\"2026-11-01T08:00:00.000000Z\""),
                    "\(json.stdout)")
            let text = try await TiplineProcess.run(["offender", "qq:22223333"], databaseURL: db.url)
            #expect(text.stdout.contains("2026-11-01T08:00:00.123456Z") && text.stdout.contains("2026-11-01T08:00:00.000000Z"), "\(text.stdout)")
        }
    }

    @Test("an administrator's level given for a merged seller's id goes to its survivor without waiting for the merged row's lock")
    func adminSetLevelOfMergedID() async throws {
        try await TestDatabase.with { db in
            let survivor = Int64(try await db.int("INSERT INTO offenders DEFAULT VALUES RETURNING id"))
            let absorbed = Int64(try await db.int("INSERT INTO offenders (merged_into) VALUES (\(survivor)) RETURNING id"))
            // Another session holds the absorbed row, as a worker's batch may that read one of its
            // contacts before the merge: setting the level must not wait for it. A session that did
            // would give up after lock_timeout and fail the test with lock_not_available.
            let admin = Database(config: ConnectionConfig(conninfo: db.url, settings: [("lock_timeout", "5s")]), maxConnections: 1)
            defer { Task { await admin.shutdown() } }
            let set = try await db.whileAnotherSessionHolds("SELECT id FROM offenders WHERE id = \(absorbed) FOR UPDATE") {
                try await OffenderAdmin.setLevel(absorbed, to: .suspend, reason: "bulletin", actor: "ops", in: admin)
            }
            #expect(set.offender == survivor && set.from == Level.none && set.to == .suspend)
            #expect(try await db.int("SELECT count(*) FROM offenders WHERE id = \(survivor) AND level = 'suspend'") == 1)
            #expect(try await db.int("SELECT count(*) FROM level_audit WHERE offender_id = \(survivor)") == 1)
        }
    }

    @Test("a new ladder policy is shown, recorded, and applies to later reports")
    func policyChange() async throws {
        try await TestDatabase.with { db in
            let set = try await TiplineProcess.run(["policy", "set", "--review", "3", "--restrict", "4", "--note", "fewer reviews"],
                                                   databaseURL: db.url)
            #expect(set.status == .exit(0), "\(set.stderr)")
            let show = try await TiplineProcess.run(["policy", "show"], databaseURL: db.url)
            #expect(show.stdout.contains("in force  #2") && show.stdout.contains("review 3, restrict 4"))
            #expect(show.stdout.contains("before    #1"))
            _ = try await QueueTests.submit(["V信: policy_test1", "V信: policy_test1"], to: db)
            _ = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            // Two distinct reporters no longer reach review under the new ladder.
            #expect(try await db.database.query("SELECT level FROM offenders").one().decode(String.self, at: 0) == "none")
            // Refused before connecting, as usage errors, when the options alone say so.
            let bad = try await TiplineProcess.run(["policy", "set", "--review", "5", "--restrict", "2", "--note", "x"], databaseURL: db.url)
            #expect(bad.status == .exit(64) && bad.stderr.contains("must not decrease: --review 5 is above --restrict 2"), "\(bad.stderr)")
            let huge = try await TiplineProcess.run(["policy", "set", "--refer", "99999999999", "--note", "x"], databaseURL: db.url)
            #expect(huge.status == .exit(64) && huge.stderr.contains("--refer must be 1 to 1000000 reporters"), "\(huge.stderr)")
            let silent = try await TiplineProcess.run(["policy", "set", "--review", "2", "--note", " "], databaseURL: db.url)
            #expect(silent.status == .exit(64) && silent.stderr.contains("--note must say why"), "\(silent.stderr)")
            let nowhere = "postgresql://nobody@127.0.0.1:1/none"
            let window = try await TiplineProcess.run(["policy", "set", "--window-days", "0", "--note", "x"], databaseURL: nowhere)
            #expect(window.status == .exit(64) && window.stderr.contains("--window-days must be 1 to 3650, not 0"), "\(window.stderr)")
            // Against the thresholds kept (review 3 in force), once the ladder is read.
            let below = try await TiplineProcess.run(["policy", "set", "--restrict", "2", "--note", "x"], databaseURL: db.url)
            #expect(below.status == .exit(1) && below.stderr.contains("must not decrease"), "\(below.stderr)")
            #expect(below.stderr.contains("review 3, restrict 2, suspend 5, refer 10 (review, suspend, refer as in policy #2, in force)"),
                    "\(below.stderr)")
            #expect(try await db.int("SELECT count(*) FROM ladder_policies") == 2)
        }
    }

    @Test("two administrators changing different thresholds at once both keep their change")
    func concurrentPolicyChanges() async throws {
        try await TestDatabase.with { db in
            // Under REPEATABLE READ too: a snapshot taken before the lock would miss the other change.
            try await db.database.execute(Query(sql: "ALTER DATABASE \(db.name) SET default_transaction_isolation = 'repeatable read'", binds: []))
            // The ladder table locked, so that both commands are under way before either reads it.
            let (alice, bob) = try await db.whileAnotherSessionHolds(Query(sql: "LOCK TABLE ladder_policies IN ACCESS EXCLUSIVE MODE", binds: [])) {
                let alice = try TiplineProcess(["policy", "set", "--review", "3", "--restrict", "4", "--note", "A", "--actor", "alice"], databaseURL: db.url)
                let bob = try TiplineProcess(["policy", "set", "--refer", "20", "--note", "B", "--actor", "bob"], databaseURL: db.url)
                try alice.start()
                try bob.start()
                try await waitUntil("both wait for a lock", timeout: 30) {
                    try await db.int("""
                        SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND application_name = 'tipline-policy' AND wait_event_type = 'Lock'
                        """) == 2
                }
                return (alice, bob)
            }
            #expect(try await alice.wait(timeout: 60) == .exit(0), "\(alice.stderr)")
            #expect(try await bob.wait(timeout: 60) == .exit(0), "\(bob.stderr)")
            let inForce = try await db.database.query("""
                SELECT review, restrict_at, suspend, refer FROM ladder_policies ORDER BY id DESC LIMIT 1
                """).one()
            #expect(try [inForce.decode(Int.self, at: 0), inForce.decode(Int.self, at: 1), inForce.decode(Int.self, at: 2),
                         inForce.decode(Int.self, at: 3)] == [3, 4, 5, 20])
            #expect(try await db.int("SELECT count(*) FROM ladder_policies") == 3)
        }
    }

    /// Submits one report per (day, reporter) naming `contact` (a WeChat id), and drains them.
    static func report(_ contact: String, _ reports: [(day: Int, reporter: String)], tag: String, to db: TestDatabase) async throws {
        let scenario = Scenario(reports: reports.enumerated().map { index, report in
            Scenario.Report(externalID: "\(tag)-\(index)", channel: "app", reporter: report.reporter, text: "出租微信 V信: \(contact)",
                            reportedAt: Scenario.end.addingTimeInterval(Double(report.day) * 86_400 + Double(index)))
        })
        try await WorkerProcessTests.submit(scenario, to: db)
        let work = try await TiplineProcess.run(["work", "--until-idle", "--batch", "7"], databaseURL: db.url)
        #expect(work.status == .exit(0), "\(work.stderr)")
    }

    /// The surviving offender owning WeChat id `contact`, its level and its history column.
    static func seller(_ contact: String, in db: TestDatabase) async throws -> (id: Int64, level: String, record: SellerRecord) {
        let row = try await db.database.query("""
            SELECT o.id, o.level, o.history FROM contacts c JOIN offenders o ON o.id = c.offender_id
             WHERE c.kind = 'wechat' AND c.value = \(contact)
            """).one()
        return (try row.decode(at: 0), try row.decode(at: 1), SellerRecord(bytes: try row.decodeIfPresent(Data.self, at: 2)))
    }

    /// The seller's reports (its own and those of offenders merged into it) as (time, reporter) pairs.
    static func reports(of seller: Int64, in db: TestDatabase) async throws -> [String] {
        try await db.database.query("""
            SELECT r.reported_at, r.reporter_hash FROM reports r JOIN offenders o ON o.id = r.offender_id
             WHERE coalesce(o.merged_into, o.id) = \(seller)
            """).map { "\(try $0.decode(Date.self, at: 0).timeIntervalSinceReferenceDate) \(Array(try $0.decode(Data.self, at: 1)))" }.sorted()
    }

    static func pairs(_ record: SellerRecord) -> [String] {
        record.events().map { "\($0.at.timeIntervalSinceReferenceDate) \($0.reporter.bytes)" }.sorted()
    }

    @Test("a seller's history column holds its reports: kept by its batches, merged, marked for a recount by an administrator and rebuilt, a marker past its capacity")
    func keptHistories() async throws {
        try await TestDatabase.with { db in
            // Three reports by one reporter: level none, every report kept.
            try await Self.report("history_a1", [(0, "u1"), (-3, "u1"), (-40, "u1")], tag: "a", to: db)
            var a = try await Self.seller("history_a1", in: db)
            #expect(a.level == "none")
            #expect(a.record.count == 3)
            let first = try await Self.reports(of: a.id, in: db)
            #expect(Self.pairs(a.record) == first)

            // A second seller, then a report naming both: the survivor keeps both histories and the
            // report, the absorbed offender none.
            try await Self.report("history_b1", [(-1, "u2"), (-90, "u3")], tag: "b", to: db)
            let b = try await Self.seller("history_b1", in: db)
            try await Self.report("history_a1 V信: history_b1", [(-2, "u4")], tag: "ab", to: db)
            a = try await Self.seller("history_a1", in: db)
            let bNow = try await Self.seller("history_b1", in: db)
            #expect(a.id == min(a.id, b.id) && bNow.id == a.id)
            #expect(a.level == "restrict")  // u1, u2, u4 within days -3 to 0
            #expect(a.record.count == 6)
            let merged = try await Self.reports(of: a.id, in: db)
            #expect(Self.pairs(a.record) == merged)
            let absorbed = try await db.database.query("SELECT history FROM offenders WHERE id = \(max(a.id, b.id))").one()
            #expect(try absorbed.decodeIfPresent(Data.self, at: 0) == nil)

            // An administrator's level drops the column; the next batch reads the reports whole and
            // keeps them again.
            let set = try await TiplineProcess.run(
                ["offender", "set-level", String(a.id), "review", "--reason", "test", "--actor", "ops"], databaseURL: db.url)
            #expect(set.status == .exit(0), "\(set.stderr)")
            guard case .recount = (try await Self.seller("history_a1", in: db)).record else {
                Issue.record("an administrator's level left the history column, or did not ask for a recount")
                return
            }
            try await Self.report("history_a1", [(-60, "u5")], tag: "a2", to: db)
            a = try await Self.seller("history_a1", in: db)
            #expect(a.record.count == 7)
            let rebuilt = try await Self.reports(of: a.id, in: db)
            #expect(Self.pairs(a.record) == rebuilt)

            // Past the capacity, one reporter filing again and again: the marker, and the reports are
            // read from the table again (a second reporter within the window lifts it to review).
            let many = (0...SellerRecord.capacity).map { (day: -$0, reporter: "u9") }
            try await Self.report("history_c1", many, tag: "c", to: db)
            var c = try await Self.seller("history_c1", in: db)
            #expect(c.level == "none")
            guard case .overflow = c.record else {
                Issue.record("\(SellerRecord.capacity + 1) reports did not leave the overflow marker")
                return
            }
            try await Self.report("history_c1", [(-20, "u8")], tag: "c2", to: db)
            c = try await Self.seller("history_c1", in: db)
            #expect(c.level == "review")
        }
    }
}
