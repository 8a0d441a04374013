import Foundation
import Postgres
import Testing
@testable import TiplineStore

/// Administrators' commands at their edges: output that cannot be written, ids that are not dead,
/// values a client sent that a terminal would obey, merged sellers' histories.
@Suite("admin commands at their edges")
struct AdminCommandTests {
    /// Submits JSONL `lines` and drains them.
    static func submitAndDrain(_ lines: [String], to db: TestDatabase) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("admin-\(UUID().uuidString).jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let submit = try await TiplineProcess.run(["submit", "--file", path], databaseURL: db.url)
        #expect(submit.status == .exit(0), "\(submit.stderr)")
        let work = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
        #expect(work.status == .exit(0), "\(work.stderr.suffix(2000))")
    }

    static func line(_ id: String, _ reporter: String, _ text: String) -> String {
        let object: [String: Any] = ["external_id": id, "channel": "app", "reporter": reporter, "text": text]
        return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test("output to a full disk is one error line and exit 1, not a crash or a silent exit 0; a token never shown (a full disk, a reader gone) is revoked")
    func fullDisk() async throws {
        try await TestDatabase.with { db in
            // Two reporters: a rise, so that `escalations` has a row to print.
            try await Self.submitAndDrain([Self.line("f-1", "u1", "出租微信 V信: full_disk1"), Self.line("f-2", "u2", "出租微信 V信: full_disk1")],
                                          to: db)
            #expect(try await db.int("SELECT count(*) FROM escalations") == 1)
            for arguments in [["export"], ["escalations"], ["status", "--json"], ["dead", "list"], ["offender", "wechat:full_disk1"],
                              ["token", "list"], ["policy", "show"]] {
                let run = try await TiplineProcess.run(arguments, databaseURL: db.url, stdoutPath: "/dev/full")
                #expect(run.status == .exit(1), "\(arguments): \(run.stderr.suffix(1000))")
                #expect(run.stderr.contains("cannot write the output: No space left on device"), "\(arguments): \(run.stderr.suffix(1000))")
                #expect(!run.stderr.contains("Fatal error"), "\(arguments)")
            }
            let create = try await TiplineProcess.run(["token", "create", "--source", "lost", "--channel", "app"],
                                                      databaseURL: db.url, stdoutPath: "/dev/full")
            #expect(create.status == .exit(1), "\(create.stderr)")
            #expect(create.stderr.contains("was never shown, so it was revoked"), "\(create.stderr)")
            #expect(try await db.int("SELECT count(*) FROM api_tokens WHERE source = 'lost' AND revoked_at IS NULL") == 0)

            // A pipe whose reader has gone (`tipline token create | (exit)`): the same, not a death by SIGPIPE.
            let pipe = Pipe()
            try pipe.fileHandleForReading.close()
            let piped = try await TiplineProcess.run(["token", "create", "--source", "piped", "--channel", "app"],
                                                     databaseURL: db.url, stdoutHandle: pipe.fileHandleForWriting)
            #expect(piped.status == .exit(1), "\(piped.status) \(piped.stderr)")
            #expect(piped.stderr.contains("was never shown, so it was revoked"), "\(piped.stderr)")
            #expect(try await db.int("SELECT count(*) FROM api_tokens WHERE source = 'piped' AND revoked_at IS NULL") == 0)

            // Standard output closed (`>&-`): the same, said as a closed descriptor, not as whatever
            // file the process opened next under its number.
            let errPath = NSTemporaryDirectory() + "tipline-closed-\(db.name).err"
            defer { try? FileManager.default.removeItem(atPath: errPath) }
            /// `tipline ARGUMENTS` through the shell, with `redirection` (which closes a descriptor); its status and stderr.
            func shell(_ arguments: String, _ redirection: String) throws -> (Int32, String) {
                let shell = Process()
                shell.executableURL = URL(fileURLWithPath: "/bin/sh")
                shell.arguments = ["-c", #"exec "$0" "# + arguments + " " + redirection + #" 2>"$1""#, try TiplineProcess.binary, errPath]
                shell.environment = ProcessInfo.processInfo.environment.merging(["DATABASE_URL": db.url]) { $1 }
                try shell.run()
                shell.waitUntilExit()
                return (shell.terminationStatus, (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
            }
            let (closedStatus, closedErr) = try shell("token create --source closed --channel app", ">&-")
            #expect(closedStatus == 1, "\(closedErr)")
            #expect(closedErr.contains("cannot write the output: Bad file descriptor") && closedErr.contains("so it was revoked"), "\(closedErr)")
            #expect(try await db.int("SELECT count(*) FROM api_tokens WHERE source = 'closed' AND revoked_at IS NULL") == 0)
            // Standard input closed: not an empty file, an error.
            let (inStatus, inErr) = try shell("submit --file - --source closed-in", "<&-")
            #expect(inStatus == 1 && inErr.contains("cannot read standard input: Bad file descriptor"), "\(inStatus) \(inErr)")
        }
    }

    @Test("an administrator's rise that waited for a worker's is shown after it: the level history follows the order rises were written")
    func levelHistoryInWrittenOrder() async throws {
        try await TestDatabase.with { db in
            _ = try await QueueTests.submit(["扣扣 6677889"], to: db)
            #expect(try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url).status == .exit(0))
            let seller = try await db.int("SELECT id::int FROM offenders")
            let worker = Database(config: ConnectionConfig(conninfo: db.url), maxConnections: 1)
            defer { Task { await worker.shutdown() } }
            // A worker's completion holds the seller; the administrator's change waits for it, then
            // the worker's rise is written and committed first.
            let admin = try await worker.withConnection { session in
                try session.transaction { tx in
                    try tx.execute("SELECT id FROM offenders WHERE id = \(seller) FOR UPDATE")
                    let admin = try TiplineProcess(["offender", "set-level", String(seller), "suspend", "--reason", "by hand"],
                                                   databaseURL: db.url)
                    try admin.start()
                    var waiting = false
                    for _ in 0..<400 where !waiting {
                        // A session waiting for this transaction (other tests' lock waits are for
                        // theirs; pg_stat_activity would not do: it is read once per transaction).
                        waiting = try tx.query("""
                            SELECT count(*) FROM pg_locks
                             WHERE NOT granted AND locktype = 'transactionid' AND transactionid = pg_current_xact_id()::xid
                            """).one().decode(Int.self, at: 0) > 0
                        if !waiting { usleep(25_000) }
                    }
                    #expect(waiting, "the administrator's change never waited for the seller")
                    try tx.execute("UPDATE offenders SET level = 'review' WHERE id = \(seller)")
                    try tx.execute("SELECT pg_advisory_xact_lock(\(EscalationFeed.outboxLock))")
                    try tx.execute("""
                        INSERT INTO escalations (offender_id, from_level, to_level, created_at)
                        VALUES (\(seller), 'none', 'review', clock_timestamp())
                        """)
                    return admin
                }
            }
            #expect(try await admin.wait() == .exit(0), "\(admin.stderr)")
            let shown = try await TiplineProcess.run(["offender", String(seller)], databaseURL: db.url).stdout
            let rise = try #require(shown.range(of: "none -> review"), "\(shown)")
            let byHand = try #require(shown.range(of: "review -> suspend"), "\(shown)")
            #expect(rise.lowerBound < byHand.lowerBound, "the administrator's later rise is listed first: \(shown)")
        }
    }

    @Test("offender lists at most --limit contacts and reports, says how many more there are, and counts them all; --all lists every one")
    func offenderListsWithinALimit() async throws {
        try await TestDatabase.with { db in
            _ = try await QueueTests.submit(["QQ 1111111 QQ 2222222 QQ 3333333", "QQ 3333333 QQ 4444444 QQ 5555555", "QQ 5555555"], to: db)
            #expect(try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url).status == .exit(0))
            let limited = try await TiplineProcess.run(["offender", "qq:1111111", "--limit", "2"], databaseURL: db.url)
            #expect(limited.status == .exit(0), "\(limited.stderr)")
            #expect(limited.stdout.contains("3 reports from 3 distinct reporters"), "\(limited.stdout)")
            #expect(limited.stdout.contains("... and 3 more (--limit N or --all to list them)"), "\(limited.stdout)")
            #expect(limited.stdout.contains("... and 1 older (--limit N or --all to list them)"), "\(limited.stdout)")
            #expect(!limited.stdout.contains("3333333"), "a contact past the limit was listed: \(limited.stdout)")
            let json = try await TiplineProcess.run(["offender", "qq:1111111", "--json", "--limit", "2"], databaseURL: db.url)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout)")
            #expect((object["contacts"] as? [Any])?.count == 2 && object["contact_count"] as? Int == 5, "\(object)")
            #expect((object["reports"] as? [Any])?.count == 2 && object["report_count"] as? Int == 3, "\(object)")
            let all = try await TiplineProcess.run(["offender", "qq:1111111", "--all"], databaseURL: db.url)
            #expect(all.stdout.contains("5555555") && !all.stdout.contains("... and"), "\(all.stdout)")
            let zero = try await TiplineProcess.run(["offender", "qq:1111111", "--limit", "0"], databaseURL: db.url)
            #expect(zero.status == .exit(64) && zero.stderr.contains("--limit must be between 1 and 1000000"), "\(zero.stderr)")
        }
    }

    @Test("set-level to the level a seller has is recorded but moves nobody up the top sellers; a change does")
    func setLevelUnchangedKeepsTheOrder() async throws {
        try await TestDatabase.with { db in
            let older = try await db.int("INSERT INTO offenders (level, updated_at) VALUES ('refer', now() - interval '2 days') RETURNING id")
            let newer = try await db.int("INSERT INTO offenders (level, updated_at) VALUES ('refer', now() - interval '1 day') RETURNING id")
            func topIDs() async throws -> [Int] {
                (try await ExportTests.statusObject(db)["top_offenders"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
            }
            #expect(try await topIDs() == [newer, older])
            let same = try await TiplineProcess.run(["offender", "set-level", String(older), "refer", "--reason", "checked, stays"], databaseURL: db.url)
            #expect(same.status == .exit(0), "\(same.stderr)")
            #expect(try await db.int("SELECT count(*) FROM level_audit WHERE offender_id = \(older)") == 1)
            #expect(try await topIDs() == [newer, older])
            let lowered = try await TiplineProcess.run(["offender", "set-level", String(older), "suspend", "--reason", "court order"], databaseURL: db.url)
            #expect(lowered.status == .exit(0), "\(lowered.stderr)")
            let raised = try await TiplineProcess.run(["offender", "set-level", String(older), "refer", "--reason", "court order"], databaseURL: db.url)
            #expect(raised.status == .exit(0), "\(raised.stderr)")
            #expect(try await topIDs() == [older, newer])
        }
    }

    @Test("dead retry of an id that is not dead says so on stderr and exits 3; dead list --limit is bounded; a negative number given apart is noted as read for an option")
    func deadEdges() async throws {
        try await TestDatabase.with { db in
            let retry = try await TiplineProcess.run(["dead", "retry", "99999"], databaseURL: db.url)
            #expect(retry.status == .exit(3))
            #expect(retry.stderr.contains("not dead, or no such report (left alone): 99999"), "\(retry.stderr)")
            #expect(retry.stdout.contains("queued 0 dead report(s) again"))
            for limit in ["0", "-1", "100001"] {
                let list = try await TiplineProcess.run(["dead", "list", "--limit=\(limit)"], databaseURL: db.url)
                #expect(list.status == .exit(64), "--limit \(limit): \(list.stderr)")
                #expect(list.stderr.contains("--limit must be between 1 and 100000"), "\(list.stderr)")
            }
            // Given apart, a negative number is taken for an option; a note says so, and how to give it.
            let note = "note: a negative number given apart is read as an option (every word that starts with a dash is): "
                + "give such a value as --option=-1, and such an argument after a -- that ends the options\n"
            for arguments in [["dead", "list", "--limit", "-1"], ["offender", "-1"]] {
                let apart = try await TiplineProcess.run(arguments, databaseURL: db.url)
                #expect(apart.status == .exit(64) && apart.stderr.hasPrefix("Error: Missing ") && apart.stderr.hasSuffix(note), "\(arguments): \(apart.stderr)")
            }
            // Taken for an unknown option, or leaving no id at all.
            for arguments in [["dead", "retry", "5", "-3"], ["dead", "retry", "-3"]] {
                let apart = try await TiplineProcess.run(arguments, databaseURL: db.url)
                #expect(apart.status == .exit(64) && apart.stderr.hasSuffix(note), "\(arguments): \(apart.stderr)")
            }
            let both = try await TiplineProcess.run(["offender", "1", "--all", "--limit", "3"], databaseURL: db.url)
            #expect(both.status == .exit(64) && both.stderr.contains("give --limit or --all, not both"), "\(both.stderr)")
            // A usage error of another kind gets no note, and the word is never repeated (a negative
            // chat id may be a reporter's identity).
            let other = try await TiplineProcess.run(["submit", "--text", "-5", "--reporter", "u", "--batch", "3"], databaseURL: db.url)
            #expect(other.status == .exit(64) && !other.stderr.contains("note:"), "\(other.stderr)")
            let identity = try await TiplineProcess.run(["submit", "--text", "ad", "--reporter", "-1001234567890"], databaseURL: db.url)
            #expect(identity.status == .exit(64) && identity.stderr.hasSuffix(note) && !identity.stderr.contains("1001234567890"), "\(identity.stderr)")
            // After `--` it is the argument, and nothing is noted.
            let ended = try await TiplineProcess.run(["offender", "--", "-1"], databaseURL: db.url)
            #expect(ended.status == .exit(1) && !ended.stderr.contains("note:"), "\(ended.stderr)")
            // A retry that changed nothing has no change to confirm when its line cannot be written.
            let none = try await TiplineProcess.run(["dead", "retry", "--all"], databaseURL: db.url, stdoutPath: "/dev/full")
            #expect(none.status == .exit(1) && none.stderr.contains("cannot write the output"), "\(none.stderr)")
            #expect(!none.stderr.contains("the change was made"), "\(none.stderr)")
            // A dead report's JSON line has every key.
            _ = try await QueueTests.submit(["出租微信 V信: dead_keys1"], to: db)
            _ = try await db.int("""
                WITH j AS (DELETE FROM jobs RETURNING report_id)
                UPDATE reports SET state = 'dead', last_error = NULL FROM j WHERE id = j.report_id RETURNING 1
                """)
            let listed = try await TiplineProcess.run(["dead", "list", "--json"], databaseURL: db.url)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any], "\(listed.stdout)")
            #expect(object["last_error"] is NSNull, "\(listed.stdout)")
        }
    }

    @Test("a retry in its backoff is not a report waiting; one whose time came long ago is")
    func waitingMeansReady() async throws {
        try await TestDatabase.with { db in
            try await WorkerProcessTests.submit(Scenario.make(count: 2, sellers: 1, seed: 61), to: db)
            // Both queued an hour ago; one is a retry due in an hour, the other a retry due ten minutes ago.
            try await db.database.execute("""
                UPDATE jobs SET created_at = now() - interval '1 hour', state = 'retrying', failed_at = now() - interval '1 hour',
                                run_at = CASE WHEN report_id = (SELECT min(report_id) FROM jobs) THEN now() + interval '1 hour'
                                              ELSE now() - interval '10 minutes' END
                """)
            let object = try await ExportTests.statusObject(db)
            let oldest = try #require(object["oldest_waiting_seconds"] as? Double)
            #expect(oldest > 590 && oldest < 700, "\(oldest)")
            // Only the retry in its backoff: nothing is waiting, and the key is null rather than missing.
            try await db.database.execute("UPDATE jobs SET run_at = now() + interval '1 hour'")
            let quiet = try await ExportTests.statusObject(db)
            #expect(quiet["oldest_waiting_seconds"] is NSNull, "\(quiet)")
            #expect((quiet["attention"] as? [String])?.contains { $0.contains("oldest waiting") } == false, "\(quiet)")
        }
    }

    @Test("an offender's level history names the merged seller a change belonged to; a client's control characters are shown escaped")
    func mergedHistoryAndControls() async throws {
        try await TestDatabase.with { db in
            // Seller A reaches review (2 reporters), seller B restrict (3); one report names both.
            try await Self.submitAndDrain([
                Self.line("a-1", "u1", "出租微信 V信: aaa_111x"), Self.line("a-2", "u2", "出租微信 V信: aaa_111x"),
                Self.line("b-1", "u3", "空白号 扣扣：11112222"), Self.line("b-2", "u4", "空白号 扣扣：11112222"),
                Self.line("b-3", "u5", "空白号 扣扣：11112222"),
                Self.line("both", "u6", "出租微信 V信: aaa_111x 扣扣：11112222"),
            ], to: db)
            // Intake refuses control characters in an external id now; one an earlier release stored
            // (or a hand edit) must still not reach the terminal raw.
            try await db.database.execute("UPDATE reports SET external_id = \("both\u{1B}[31mred\nx") WHERE external_id = 'both'")
            let survivor = try await db.int("SELECT o.id::int FROM contacts c JOIN offenders o ON o.id = c.offender_id WHERE c.value = 'aaa_111x'")
            let absorbed = try await db.int("SELECT id::int FROM offenders WHERE merged_into = \(Int64(survivor))")
            let json = try await TiplineProcess.run(["offender", String(survivor), "--json"], databaseURL: db.url)
            let view = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let history = try #require(view["level_history"] as? [[String: Any]])
            #expect(Set(history.compactMap { $0["offender_id"] as? Int }) == [survivor, absorbed], "\(json.stdout)")
            // Every change has every key, null where it has no value (a rise has no actor, an
            // administrator's change no escalation id), as `escalations` writes them.
            for change in history {
                #expect(Set(change.keys) == ["id", "offender_id", "from", "to", "report_id", "at", "audit_id", "actor", "reason"], "\(change)")
            }
            // Found by the absorbed seller's QQ, written in full-width digits, too.
            let byQQ = try await TiplineProcess.run(["offender", "qq:１１１１２２２２", "--json"], databaseURL: db.url)
            #expect(byQQ.status == .exit(0), "\(byQQ.stderr)")
            #expect((try JSONSerialization.jsonObject(with: Data(byQQ.stdout.utf8)) as? [String: Any])?["id"] as? Int == survivor, "\(byQQ.stdout)")
            let screen = try await TiplineProcess.run(["offender", String(survivor)], databaseURL: db.url)
            #expect(screen.stdout.contains("(as #\(absorbed), merged in since)"), "\(screen.stdout)")
            #expect(!screen.stdout.contains("\u{1B}"), "a raw ESC reached the terminal")
            #expect(screen.stdout.contains(#"both\u{1B}[31mred\u{A}x"#), "\(screen.stdout)")
            // A source name an earlier release accepted with control characters: `offender` and,
            // on a dead report, `dead list` escape it too.
            let legacy = "legacy\u{1B}[2J\u{7}"
            try await db.database.execute("UPDATE reports SET source = \(legacy) WHERE external_id LIKE 'both%'")
            _ = try await QueueTests.submit(["出租微信 V信: dead_source1"], to: db)
            _ = try await db.int("""
                WITH j AS (DELETE FROM jobs RETURNING report_id)
                UPDATE reports SET state = 'dead', source = \(legacy) FROM j WHERE id = j.report_id RETURNING 1
                """)
            for arguments in [["offender", String(survivor)], ["dead", "list"]] {
                let shown = try await TiplineProcess.run(arguments, databaseURL: db.url)
                #expect(shown.status == .exit(0), "\(arguments): \(shown.stderr)")
                #expect(!shown.stdout.contains("\u{1B}") && !shown.stdout.contains("\u{7}"), "\(arguments): \(shown.stdout)")
                #expect(shown.stdout.contains(#"legacy\u{1B}[2J\u{7}/"#), "\(arguments): \(shown.stdout)")
            }
        }
    }

    @Test("control characters an administrator or a caller typed are escaped: policy show, an error naming a contact, a worker's log")
    func controlCharactersEscaped() async throws {
        try await TestDatabase.with { db in
            let set = try await TiplineProcess.run(["policy", "set", "--review", "2", "--note", "two\nlines\u{1B}[31m red",
                                                    "--actor", "ev\u{1B}[2Jil"], databaseURL: db.url)
            #expect(set.status == .exit(0), "\(set.stderr)")
            let show = try await TiplineProcess.run(["policy", "show"], databaseURL: db.url)
            #expect(!show.stdout.contains("\u{1B}"), "a raw ESC reached the terminal: \(show.stdout)")
            #expect(show.stdout.contains(#"by ev\u{1B}[2Jil: two\u{A}lines\u{1B}[31m red"#), "\(show.stdout)")
            let missing = try await TiplineProcess.run(["offender", "wechat:\u{1B}]0;pwned\u{7}"], databaseURL: db.url)
            #expect(missing.status == .exit(1))
            #expect(!missing.stderr.contains("\u{1B}") && !missing.stderr.contains("\u{7}"), "\(missing.stderr)")
            #expect(missing.stderr.contains(#"\u{1B}]0;pwned\u{7}"#), "\(missing.stderr)")
            // Refused before any database work too: the usage error escapes what it quotes.
            for arguments in [["offender", "\u{1B}]0;pwned\u{7}"], ["offender", "x\u{1B}[2J\u{7}:1"],
                              ["offender", "set-level", "\u{1B}]0;pwned\u{7}", "review", "--reason", "r"],
                              // The parser's own messages quote the value too.
                              ["offender", "set-level", "7", "b\u{1B}[2Jx", "--reason", "r"], ["dead", "list", "--limit", "5\u{1B}[2J"],
                              ["status", "--js\u{1B}[2Jon"]] {
                let refused = try await TiplineProcess.run(arguments, databaseURL: db.url)
                #expect(refused.status == .exit(64), "\(refused.stderr)")
                #expect(!refused.stderr.contains("\u{1B}") && !refused.stderr.contains("\u{7}"), "\(refused.stderr)")
                #expect(refused.stderr.contains(#"\u{1B}"#), "\(refused.stderr)")
            }
            let worker = try await TiplineProcess.run(["work", "--until-idle", "--name", "\u{1B}[31mred", "--log-level", "info"],
                                                      databaseURL: db.url)
            #expect(worker.status == .exit(0), "\(worker.stderr)")
            #expect(worker.stderr.contains(#"\u{1B}[31mred"#) && !worker.stderr.contains("\u{1B}"), "\(worker.stderr)")
        }
    }

    @Test("an empty --actor, a policy change that changes nothing and an unknown contact kind are usage errors")
    func usageErrors() async throws {
        try await TestDatabase.with { db in
            for arguments in [["offender", "set-level", "1", "review", "--reason", "r", "--actor", " "],
                              ["policy", "set", "--review", "2", "--note", "n", "--actor", ""]] {
                let run = try await TiplineProcess.run(arguments, databaseURL: db.url)
                #expect(run.status == .exit(64), "\(arguments): \(run.stderr)")
                #expect(run.stderr.contains("--actor must not be empty"), "\(run.stderr)")
            }
            let nothing = try await TiplineProcess.run(["policy", "set", "--note", "same again"], databaseURL: db.url)
            #expect(nothing.status == .exit(64))
            #expect(nothing.stderr.contains("give at least one of --window-days"), "\(nothing.stderr)")
            let fax = try await TiplineProcess.run(["offender", "fax:123"], databaseURL: db.url)
            #expect(fax.status == .exit(64))
            #expect(fax.stderr.contains(#"unknown contact kind "fax" (expected one of phone, qq, wechat, telegram, email, site)"#), "\(fax.stderr)")
            let long = String(repeating: "r", count: 1_001)
            for (arguments, option) in [(["offender", "set-level", "1", "review", "--reason", long], "--reason"),
                                        (["policy", "set", "--review", "2", "--note", long], "--note"),
                                        (["policy", "set", "--review", "2", "--note", "n", "--actor", String(long.prefix(101))], "--actor")] {
                let run = try await TiplineProcess.run(arguments, databaseURL: db.url)
                #expect(run.status == .exit(64), "\(option): \(run.stderr)")
                #expect(run.stderr.contains("\(option) must be at most"), "\(option): \(run.stderr)")
            }
            #expect(try await db.int("SELECT count(*) FROM level_audit") + db.int("SELECT count(*) FROM ladder_policies WHERE note = 'n'") == 0)
        }
    }

    @Test("a seller is named as status prints it (#29) as well as by its number; a change whose confirmation cannot be written says it was made")
    func offenderNumberAndLostConfirmation() async throws {
        try await TestDatabase.with { db in
            try await Self.submitAndDrain([Self.line("n-1", "u1", "出租微信 V信: hash_named1")], to: db)
            let seller = try await db.int("SELECT id::int FROM offenders")
            let shown = try await TiplineProcess.run(["offender", "#\(seller)"], databaseURL: db.url)
            #expect(shown.status == .exit(0) && shown.stdout.hasPrefix("Offender #\(seller) "), "\(shown.stderr)")
            let set = try await TiplineProcess.run(["offender", "set-level", "#\(seller)", "review", "--reason", "by its #"],
                                                   databaseURL: db.url, stdoutPath: "/dev/full")
            #expect(set.status == .exit(1), "\(set.stderr)")
            #expect(set.stderr.contains("the change was made and recorded, but its confirmation could not be written"), "\(set.stderr)")
            #expect(try await db.int("SELECT count(*) FROM offenders WHERE id = \(seller) AND level = 'review'") == 1)
        }
    }
}
