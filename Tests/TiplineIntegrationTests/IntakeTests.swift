import Foundation
import Postgres
import Testing
import TiplineCore
import TiplineStore

@Suite("intake from the command line")
struct IntakeTests {
    /// Writes a temporary input file (`scripts/test` points TMPDIR at .tipline/tmp and clears it).
    static func write(_ text: String, ext: String = "jsonl") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("reports-\(UUID().uuidString).\(ext)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a batch hashed with a key checked against another database, or before its key settings changed, stores nothing")
    func keyCheckedElsewhere() async throws {
        try await TestDatabase.with { a in
            try await TestDatabase.with { b in
                let key = WorkerProcessTests.key
                let report = ReportInput(externalID: "k1", channel: .app, reporter: "u1", text: "QQ 22223333", reportedAt: nil, platform: nil)
                let checkedOnA = try await key.verify(against: a.database)
                // b records no derivation yet; then one of its own (another salt).
                await #expect(throws: ReporterKeyChanged.self) {
                    try await Intake(database: b.database, hasher: checkedOnA).submit([report], source: "test")
                }
                let checkedOnB = try await key.verify(against: b.database)
                await #expect(throws: ReporterKeyChanged.self) {
                    try await Intake(database: b.database, hasher: checkedOnA).submit([report], source: "test")
                }
                #expect(try await b.int("SELECT count(*) FROM reports") == 0)
                #expect(try await Intake(database: b.database, hasher: checkedOnB).submit([report], source: "test").accepted == 1)
                // The fingerprint a's check saw is no longer there.
                _ = try await a.database.execute("UPDATE settings SET value = 'changed' WHERE name = 'reporter_key_stretched_fingerprint'")
                await #expect(throws: ReporterKeyChanged.self) {
                    try await Intake(database: a.database, hasher: checkedOnA).submit([report], source: "test")
                }
                #expect(try await a.int("SELECT count(*) FROM reports") == 0)
            }
        }
    }

    @Test("a database dropped and created again under a running `submit --file` gets its reporters hashed with its own derivation")
    func databaseReplacedMidImport() async throws {
        try await TestDatabase.with { db in
            let producer = try FIFOProducer()
            let submit = try await producer.start(["--batch", "1"], databaseURL: db.url)
            func send(_ numbers: ClosedRange<Int>) {
                for n in numbers {
                    producer.write(#"{"external_id":"r\#(n)","channel":"app","reporter":"one reporter","text":"QQ 2222333\#(n)"}"# + "\n")
                }
            }
            send(1...3)
            try await waitUntil("the first reports are stored") { try await db.int("SELECT count(*) FROM reports") == 3 }
            // A database with no key recorded now.
            let again = try await db.replaced()
            defer { Task { await again.shutdown() } }
            send(4...6)
            producer.close()
            #expect(try await submit.wait(timeout: 120) == .exit(0), "stderr: \(submit.stderr.suffix(2000))")
            #expect(submit.stderr.contains("checking the key again"), "\(submit.stderr.suffix(2000))")
            // The summary counts the three that went into the dropped database, and says so.
            #expect(submit.stdout.contains("accepted 6, duplicate 0, rejected 0"), "\(submit.stdout)")
            #expect(submit.stderr.contains("note: 3 of this file's reports were stored or found already there before the database's reporter key settings changed"),
                    "\(submit.stderr.suffix(2000))")
            let expected = try await WorkerProcessTests.key.verify(against: again).hash("one reporter")
            let stored = try await again.query("SELECT DISTINCT reporter_hash FROM reports")
            #expect(stored.count == 1)
            #expect(try stored.one().decode(Data.self, at: 0) == expected)
        }
    }

    @Test("reports from a producer that paused are stored before the wait, not held back for a full batch")
    func pausedProducerIsStored() async throws {
        try await TestDatabase.with { db in
            let producer = try FIFOProducer()
            let submit = try await producer.start([], databaseURL: db.url)
            func send(_ numbers: ClosedRange<Int>) {
                for n in numbers {
                    producer.write(#"{"external_id":"p\#(n)","channel":"app","reporter":"u\#(n)","text":"QQ 3333444\#(n)"}"# + "\n")
                }
            }
            // Five of a batch of 1,000 and a blank line, and the producer keeps the FIFO open.
            send(1...5)
            producer.write("\n")
            try await waitUntil("the five reports are stored while the producer waits", timeout: 30) {
                try await db.int("SELECT count(*) FROM reports") == 5
            }
            send(6...8)
            producer.close()
            #expect(try await submit.wait(timeout: 60) == .exit(0), "stderr: \(submit.stderr.suffix(2000))")
            #expect(submit.stdout.contains("accepted 8, duplicate 0, rejected 0"), "\(submit.stdout)")
        }
    }

    @Test("two imports of the same ids in opposite orders at once both finish (a deadlock between them is retried), every report stored once")
    func opposingImports() async throws {
        try await TestDatabase.with { db in
            let lines = (0..<3_000).map { #"{"external_id":"o\#($0)","channel":"app","reporter":"u\#($0 % 50)","text":"QQ \#(20_000_000 + $0)"}"# }
            let forward = try Self.write(lines.joined(separator: "\n") + "\n")
            let backward = try Self.write(lines.reversed().joined(separator: "\n") + "\n")
            defer { for path in [forward, backward] { try? FileManager.default.removeItem(atPath: path) } }
            for round in 0..<3 {
                let imports = try [forward, backward].map {
                    try TiplineProcess(["submit", "--file", $0, "--batch", "3000", "--source", "round\(round)"], databaseURL: db.url)
                }
                // Both wait behind a lock on the table, so that their inserts run at the same time.
                try await db.whileAnotherSessionHolds(Query(sql: "LOCK TABLE reports IN SHARE MODE", binds: [])) {
                    for run in imports { try run.start() }
                    try await waitUntil("both imports wait to insert", timeout: 60) {
                        try await db.int("""
                            SELECT count(*) FROM pg_stat_activity
                             WHERE datname = current_database() AND application_name = 'tipline-submit' AND wait_event_type = 'Lock'
                            """) == 2
                    }
                }
                var accepted = 0
                for run in imports {
                    #expect(try await run.wait(timeout: 120) == .exit(0), "round \(round): \(run.stderr.suffix(1000))")
                    let summary = try #require(run.stdout.firstMatch(of: /accepted (\d+), duplicate (\d+), rejected 0/), "\(run.stdout)")
                    #expect(Int(summary.1)! + Int(summary.2)! == 3_000)
                    accepted += Int(summary.1)!
                }
                #expect(accepted == 3_000, "round \(round)")
                #expect(try await db.int("SELECT count(*) FROM reports WHERE source = \("round\(round)")") == 3_000)
            }
        }
    }

    @Test("submitting the same file twice creates no new reports")
    func resubmitIsDuplicate() async throws {
        try await TestDatabase.with { db in
            let path = try Self.write(try Scenario.make(count: 500, sellers: 50, seed: 1).jsonl())
            let first = try await TiplineProcess.run(["submit", "--file", path], databaseURL: db.url)
            #expect(first.status == .exit(0), "\(first.stderr)")
            #expect(first.stdout.contains("accepted 500, duplicate 0, rejected 0"))
            let second = try await TiplineProcess.run(["submit", "--file", path], databaseURL: db.url)
            #expect(second.stdout.contains("accepted 0, duplicate 500, rejected 0"))
            #expect(try await db.int("SELECT count(*) FROM reports") == 500)
            #expect(try await db.int("SELECT count(*) FROM jobs") == 500)
        }
    }

    @Test("a bad line is reported with its number and reason; the good lines around it are accepted")
    func badLinesDoNotCostGoodOnes() async throws {
        try await TestDatabase.with { db in
            let good = { (n: Int) in #"{"external_id":"e\#(n)","channel":"app","reporter":"u\#(n)","text":"出租微信 V信: abc_12\#(n)x"}"# }
            let lines = [
                good(1),
                #"{"external_id":"e2","channel":"fax","reporter":"u2","text":"t"}"#,
                #"{"external_id":"e3","channel":"app","reporter":"u3""#,
                good(4),
                #"{"external_id":"e5","channel":"app","reporter":"u5","text":"x","reported_at":"yesterday"}"#,
                #"{"external_id":"e6","channel":"app","reporter":"u6","text":"a\u0000b"}"#,
                good(7),
            ]
            let path = try Self.write(lines.joined(separator: "\n"))
            let rejects = path + ".rejects"
            let result = try await TiplineProcess.run(["submit", "--file", path, "--rejects", rejects], databaseURL: db.url)
            #expect(result.status == .exit(3))
            #expect(result.stdout.contains("accepted 3, duplicate 0, rejected 4"))
            #expect(result.stderr.contains(":2: channel: unknown channel, expected app or hotline"), "\(result.stderr)")
            #expect(result.stderr.contains(":3: invalid JSON"))
            #expect(result.stderr.contains(":5: reported_at:"))
            #expect(result.stderr.contains(":6: text: contains a NUL character"))
            let logged = try String(contentsOfFile: rejects, encoding: .utf8)
            #expect(logged.split(separator: "\n").map { $0.prefix(2) } == ["2\t", "3\t", "5\t", "6\t"])
            #expect(try await db.int("SELECT count(*) FROM reports") == 3)
        }
    }

    @Test("submit --text stores one report, and the same text again is a duplicate")
    func submitText() async throws {
        try await TestDatabase.with { db in
            let args = ["submit", "--text", "扣扣：12345678 空白号18元", "--reporter", "+8613900001111", "--channel", "hotline"]
            let first = try await TiplineProcess.run(args, databaseURL: db.url)
            #expect(first.stdout.hasPrefix("accepted report "))
            let second = try await TiplineProcess.run(args, databaseURL: db.url)
            #expect(second.stdout.hasPrefix("duplicate: report "))
            #expect(try await db.int("SELECT count(*) FROM reports") == 1)
            // The reporter's number is stored only as a keyed hash.
            #expect(try await db.int("SELECT count(*) FROM reports r WHERE r::text LIKE '%13900001111%'") == 0)
            // Nor is the external id derived from it a plain digest, which anyone could recompute for
            // every phone number: it is keyed too.
            let stored = try await db.database.query("SELECT external_id FROM reports").one().decode(String.self, at: 0)
            let plain = try await db.database.query("""
                SELECT 'cli-' || left(encode(sha256(convert_to(\("hotline\u{1F}+8613900001111\u{1F}扣扣：12345678 空白号18元"), 'UTF8')), 'hex'), 32)
                """).one().decode(String.self, at: 0)
            #expect(stored.hasPrefix("cli-") && stored.count == 36 && stored != plain, "\(stored)")
            // `--reporter -` reads the identity from standard input (out of ps and shell history): the
            // same reporter, so the same report again.
            var piped = args
            piped[piped.firstIndex(of: "+8613900001111")!] = "-"
            // A byte-order mark and CRLF are no part of it.
            let again = try await TiplineProcess.run(piped, databaseURL: db.url, input: Data([0xEF, 0xBB, 0xBF]) + Data("+8613900001111\r\n".utf8))
            #expect(again.status == .exit(0), "\(again.stderr)")
            #expect(again.stdout.hasPrefix("duplicate: report "), "\(again.stdout)")
            let empty = try await TiplineProcess.run(piped, databaseURL: db.url, input: Data())
            #expect(empty.status == .exit(1))
            #expect(empty.stderr.contains("--reporter -: standard input is empty"), "\(empty.stderr)")
            // Bytes that are not UTF-8 are refused, not repaired into another reporter's identity.
            let garbled = try await TiplineProcess.run(piped, databaseURL: db.url, input: Data([0x75, 0xB2, 0xE2, 0x0A]))
            #expect(garbled.status == .exit(1))
            #expect(garbled.stderr.contains("is not valid UTF-8"), "\(garbled.stderr)")
        }
    }

    @Test("submit --text refuses an --external-id, --text, --platform or --reporter that is not UTF-8: repaired, two of them could be one report")
    func submitTextNotUTF8() async throws {
        try await TestDatabase.with { db in
            // Two external ids that differ only in a byte that is not UTF-8: each would become U+FFFD.
            let first = try await TiplineProcess.runInShell(#""$0" submit --text 'ad one QQ 12345678' --reporter alice --external-id "ext$(printf '\377')""#,
                                                            databaseURL: db.url)
            #expect(first.status == .exit(64), "\(first)")
            #expect(first.stderr.hasPrefix("Error: --external-id is not valid UTF-8 (the value is not shown); give it as UTF-8\n"), "\(first.stderr)")
            for (option, script) in [("--text", #""$0" submit --text "ad $(printf '\376')" --reporter alice"#),
                                     ("--platform", #""$0" submit --text ad --reporter alice --platform="p$(printf '\376')""#),
                                     ("--reporter", #""$0" submit --text ad --reporter "al$(printf '\351')ce""#)] {
                let run = try await TiplineProcess.runInShell(script, databaseURL: db.url)
                #expect(run.status == .exit(64) && run.stderr.hasPrefix("Error: \(option) is not valid UTF-8"), "\(option): \(run)")
            }
            // A file whose name is not UTF-8 could only be looked for under its repaired name.
            let named = try await TiplineProcess.runInShell(#"f="$(mktemp -d)/bad$(printf '\377').jsonl" && echo '{}' > "$f" && "$0" submit --file "$f""#,
                                                            databaseURL: db.url)
            #expect(named.status == .exit(64) && named.stderr.hasPrefix("Error: --file: the file's name is not valid UTF-8"), "\(named)")
            // The option whose value is bad is the one named, not one whose valid value holds a U+FFFD.
            let blamed = try await TiplineProcess.runInShell(#""$0" submit --text ad --reporter "$(printf '\357\277\275')x" --platform="p$(printf '\377')""#,
                                                             databaseURL: db.url)
            #expect(blamed.status == .exit(64) && blamed.stderr.hasPrefix("Error: --platform is not valid UTF-8"), "\(blamed)")
            #expect(try await db.int("SELECT count(*) FROM reports") == 0)
            // A real U+FFFD, sent as UTF-8, is text like any other.
            let real = try await TiplineProcess.run(["submit", "--text", "ad \u{FFFD} QQ 12345678", "--reporter", "alice", "--external-id", "ext\u{FFFD}"],
                                                    databaseURL: db.url)
            #expect(real.status == .exit(0) && real.stdout.hasPrefix("accepted report "), "\(real)")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE external_id = \("ext\u{FFFD}")") == 1)
        }
    }

    @Test("submit --text again with the same reporter written another way is a duplicate, not a second report")
    func submitTextReporterForms() async throws {
        try await TestDatabase.with { db in
            let text = "出租微信 V信: abc_123x"
            for (channel, forms) in [("hotline", ["+86 138 1234 5678", "13812345678", " 13812345678 ", "0086-138-1234-5678"]),
                                     ("app", ["u_1234", " u_1234 "])] {
                for (index, reporter) in forms.enumerated() {
                    let run = try await TiplineProcess.run(["submit", "--text", text, "--reporter", reporter, "--channel", channel],
                                                           databaseURL: db.url)
                    #expect(run.stdout.hasPrefix(index == 0 ? "accepted report " : "duplicate: report "), "\(reporter): \(run.stdout)")
                }
            }
            #expect(try await db.int("SELECT count(*) FROM reports") == 2)
        }
    }

    @Test("a UTF-16 file arriving through a pipe a byte at first is refused whole, like the same file on disk")
    func utf16ThroughAPipe() async throws {
        try await TestDatabase.with { db in
            let line = #"{"external_id":"e1","channel":"app","reporter":"u1","text":"t"}"# + "\n"
            let utf16 = [UInt8]([0xFF, 0xFE]) + Array(line.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            for format in ["jsonl", "csv"] {
                let process = try TiplineProcess(["submit", "--file", "-", "--format", format], databaseURL: db.url)
                let input = Pipe()
                process.process.standardInput = input
                try process.start()
                // The first read finds one byte of the mark (the pipe holds nothing once submit has
                // read it: either end of a pipe answers FIONREAD); the rest comes later.
                try input.fileHandleForWriting.write(contentsOf: Data(utf16.prefix(1)))
                let writeEnd = input.fileHandleForWriting.fileDescriptor
                try await waitUntil("submit reads the first byte", timeout: 30) {
                    var pending: Int32 = -1
                    return ioctl(writeEnd, UInt(FIONREAD), &pending) == 0 && pending == 0
                }
                try input.fileHandleForWriting.write(contentsOf: Data(utf16.dropFirst()))
                try input.fileHandleForWriting.close()
                #expect(try await process.wait(timeout: 60) == .exit(1), "\(format): \(process.stderr)")
                #expect(process.stderr == "Error: standard input is UTF-16LE (it starts with that byte-order mark): reports are read as "
                        + "UTF-8; convert it first, e.g. iconv -f UTF-16LE -t UTF-8\n", "\(format): \(process.stderr)")
            }
            #expect(try await db.int("SELECT count(*) FROM reports") == 0)
        }
    }

    @Test("--text takes an ad that starts with a dash; a --help where a value was expected is never the value")
    func dashedValues() async throws {
        try await TestDatabase.with { db in
            let args = ["submit", "--text", "-- 出租扣扣 12345678 --", "--reporter=-u1", "--platform=-"]
            let run = try await TiplineProcess.run(args, databaseURL: db.url)
            #expect(run.status == .exit(0), "\(run.stderr)")
            let stored = try await db.database.query("SELECT body, platform FROM reports").one()
            #expect(try stored.decode(String.self, at: 0) == "-- 出租扣扣 12345678 --")
            #expect(try stored.decode(String.self, at: 1) == "-")
            // A negative number given as --option=VALUE is refused for what it is.
            let negative = try await TiplineProcess.run(["export", "--after=-5"], databaseURL: db.url)
            #expect(negative.status == .exit(64))
            #expect(negative.stderr.contains("--after must be 0 or a report id"), "\(negative.stderr)")
            // A --help where a value was expected is never taken for the value: after --text it asks
            // for the help, after another option the value is missing.
            let help = try await TiplineProcess.run(["submit", "--reporter", "u9", "--text", "--help"], databaseURL: db.url)
            #expect(help.status == .exit(0) && help.stdout.contains("OVERVIEW: Submit reports"), "\(help.stdout) \(help.stderr)")
            for arguments in [["submit", "--text", "t", "--reporter", "--help"], ["policy", "set", "--review", "3", "--note", "--help"],
                              ["work", "--name", "--help"]] {
                let missing = try await TiplineProcess.run(arguments, databaseURL: db.url, timeout: 30)
                #expect(missing.status == .exit(64) && missing.stderr.contains("Missing value for"), "\(arguments): \(missing.stderr)")
            }
            #expect(try await db.int("SELECT count(*) FROM reports") == 1)
            #expect(try await db.int("SELECT count(*) FROM ladder_policies") == 1)
        }
    }

    @Test("an external id in two Unicode encodings of the same text is one report")
    func externalIDEncodings() async throws {
        try await TestDatabase.with { db in
            let lines = [
                #"{"external_id":"caf\u00e9","channel":"app","reporter":"u1","text":"出租微信 V信: abc_123x"}"#,
                #"{"external_id":"cafe\u0301","channel":"app","reporter":"u2","text":"出租微信 V信: abc_124x"}"#,
            ]
            let path = try Self.write(lines.joined(separator: "\n"))
            let result = try await TiplineProcess.run(["submit", "--file", path], databaseURL: db.url)
            #expect(result.stdout.contains("accepted 1, duplicate 1, rejected 0"), "\(result.stdout)\(result.stderr)")
            #expect(try await db.int("SELECT count(*) FROM reports") == 1)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE external_id = \("caf\u{E9}")") == 1)
            let again = try Self.write(lines[1])
            let second = try await TiplineProcess.run(["submit", "--file", again], databaseURL: db.url)
            #expect(second.stdout.contains("accepted 0, duplicate 1, rejected 0"), "\(second.stdout)\(second.stderr)")
        }
    }

    @Test("one hotline caller's number written three ways is one reporter, and one seller it reports stays at none")
    func hotlineCallerWrittenThreeWays() async throws {
        try await TestDatabase.with { db in
            let lines = ["+86 138 1234 5678", "13812345678", "0086-138-1234-5678"].enumerated().map { n, caller in
                #"{"external_id":"h\#(n)","channel":"hotline","reporter":"\#(caller)","text":"出租微信 V信: same_seller_1"}"#
            }
            let path = try Self.write(lines.joined(separator: "\n"))
            let result = try await TiplineProcess.run(["submit", "--file", path], databaseURL: db.url)
            #expect(result.stdout.contains("accepted 3, duplicate 0, rejected 0"), "\(result.stdout)\(result.stderr)")
            #expect(try await db.int("SELECT count(DISTINCT reporter_hash) FROM reports") == 1)
            let work = try await TiplineProcess.run(["work", "--until-idle", "--concurrency", "1"], databaseURL: db.url)
            #expect(work.status == .exit(0), "\(work.stderr)")
            // All three grouped under one seller, which one reporter leaves at none (review needs two).
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND outcome = 'recorded' AND offender_id IS NOT NULL") == 3)
            #expect(try await db.int("SELECT count(DISTINCT offender_id) FROM reports") == 1)
            #expect(try await db.int("SELECT count(*) FROM offenders WHERE level <> 'none'") == 0)
            #expect(try await db.int("SELECT count(*) FROM escalations") == 0)
        }
    }

    @Test("submit's own errors are one line with exit status 1: bad --text, a directory, an unwritable --rejects, an unreachable server")
    func submitErrors() async throws {
        try await TestDatabase.with { db in
            let empty = try await TiplineProcess.run(["submit", "--text", " ", "--reporter", "z"], databaseURL: db.url)
            #expect(empty.status == .exit(1))
            #expect(empty.stderr == "Error: text: is empty\n", "\(empty.stderr)")
            let directory = try await TiplineProcess.run(["submit", "--file", FileManager.default.temporaryDirectory.path], databaseURL: db.url)
            #expect(directory.status == .exit(1))
            #expect(directory.stderr.contains("it is a directory") && !directory.stderr.contains("NSCocoaErrorDomain"), "\(directory.stderr)")
            let path = try Self.write(#"{"external_id":"e1","channel":"app","reporter":"u1","text":"t"}"#)
            let rejects = try await TiplineProcess.run(["submit", "--file", path, "--rejects", "/nonexistent/dir/r.tsv"], databaseURL: db.url)
            #expect(rejects.status == .exit(1))
            #expect(rejects.stderr.contains("cannot write --rejects file /nonexistent/dir/r.tsv: No such file or directory"), "\(rejects.stderr)")
            // Options for a single report are refused with a file, not silently ignored.
            let mixed = try await TiplineProcess.run(["submit", "--file", path, "--reporter", "x", "--channel", "hotline"], databaseURL: db.url)
            #expect(mixed.status == .exit(64))
            #expect(mixed.stderr.contains("--reporter, --channel only go(es) with --text"), "\(mixed.stderr)")
            // A channel that is not one is not repeated: a value out of place may be the reporter's identity.
            let channel = try await TiplineProcess.run(["submit", "--text", "V信: abc_123x", "--reporter", "hotline",
                                                        "--channel", "139 0000 9999"], databaseURL: db.url)
            #expect(channel.status == .exit(64))
            #expect(channel.stderr.contains("--channel must be app or hotline") && !channel.stderr.contains("9999"), "\(channel.stderr)")
            // Nor is a reporter given unquoted (its last parts are words no option takes); a misspelt option is named.
            let unquoted = try await TiplineProcess.run(["submit", "--text", "V信: abc_123x", "--reporter", "139", "0000", "9999"], databaseURL: db.url)
            #expect(unquoted.status == .exit(64))
            #expect(unquoted.stderr.contains("2 word(s) that no option takes") && !unquoted.stderr.contains("9999"), "\(unquoted.stderr)")
            let misspelt = try await TiplineProcess.run(["submit", "--text", "V信: abc_123x", "--reporter", "u", "--chanel", "app"], databaseURL: db.url)
            #expect(misspelt.status == .exit(64) && misspelt.stderr.contains("unknown option(s) --chanel, and 1 other word(s) that no option takes (not shown"),
                    "\(misspelt.stderr)")
            // A word with one dash may be part of an identity given unquoted: not named.
            let dashed = try await TiplineProcess.run(["submit", "--text", "V信: abc_123x", "--reporter", "Li", "-Na", "x"], databaseURL: db.url)
            #expect(dashed.status == .exit(64) && dashed.stderr.contains("2 word(s) that no option takes") && !dashed.stderr.contains("-Na"),
                    "\(dashed.stderr)")
            let option = try await TiplineProcess.run(["submit", "--text", "V信: abc_123x", "--reporter", "u", "--bogus"], databaseURL: db.url)
            #expect(option.status == .exit(64) && option.stderr.contains("unknown option(s) --bogus"), "\(option.stderr)")
            // A source a token could not carry: its reports could never come over HTTP under the same name.
            let spaced = try await TiplineProcess.run(["submit", "--file", path, "--source", "bad source!"], databaseURL: db.url)
            // Checked against what the database holds (below), so refused with exit 1, not as usage.
            #expect(spaced.status == .exit(1))
            #expect(spaced.stderr.hasPrefix("Error: --source must be 1 to 64 characters of A-Z, a-z, 0-9"), "\(spaced.stderr)")
            #expect(!spaced.stderr.contains("Usage:"), "\(spaced.stderr)")
            // --batch belongs to a file; an empty path is no path.
            for arguments in [["submit", "--text", "t", "--reporter", "r", "--batch", "5"], ["submit", "--file", ""],
                              ["submit", "--file", path, "--rejects", ""]] {
                let refused = try await TiplineProcess.run(arguments, databaseURL: db.url)
                #expect(refused.status == .exit(64), "\(arguments): \(refused.stderr)")
            }
            // Unless reports were filed under it before the rule: those can be submitted again. (The
            // database first takes a report, so that the key is recorded before that one is there.)
            #expect(try await TiplineProcess.run(["submit", "--text", "V信: abc_123x", "--reporter", "r1"], databaseURL: db.url).status == .exit(0))
            try await db.database.execute("""
                INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at)
                VALUES ('bad source!', 'old-1', 'app', decode(repeat('00', 32), 'hex'), 'old', now())
                """)
            let again = try await TiplineProcess.run(["submit", "--file", path, "--source", "bad source!"], databaseURL: db.url)
            #expect(again.status == .exit(0) && again.stderr.contains("taken because this database holds reports under it already"),
                    "\(again.stderr)")
            // libpq's message has a line break and a tab in it.
            let unreachable = try await TiplineProcess.run(["status", "--database-url", "postgresql://postgres@127.0.0.1:1/x"], databaseURL: nil)
            #expect(unreachable.status == .exit(1))
            #expect(unreachable.stderr.hasPrefix("Error: cannot reach the database:"), "\(unreachable.stderr)")
            #expect(unreachable.stderr.split(separator: "\n").count == 1, "\(unreachable.stderr)")
        }
    }

    @Test("a CSV file with a quoted multi-line text is read")
    func csvIntake() async throws {
        try await TestDatabase.with { db in
            let csv = "external_id,channel,reporter,text,reported_at,platform\r\n"
                + "c1,hotline,+8613900000001,\"出租微信, 日租80\r\nV信: zuhao_01\",2026-11-01T10:00:00+08:00,wechat\r\n"
                + "c2,hotline,+8613900000002,\"说\"\"靠谱\"\" 扣扣：5566778\",,\r\n"
            let path = try Self.write(csv, ext: "csv")
            let result = try await TiplineProcess.run(["submit", "--file", path, "--source", "hotline-a"], databaseURL: db.url)
            #expect(result.stdout.contains("accepted 2, duplicate 0, rejected 0"), "\(result.stderr)")
            let body = try await db.database.query("SELECT body FROM reports WHERE external_id = 'c2'").one().decode(String.self, at: 0)
            #expect(body == "说\"靠谱\" 扣扣：5566778")
        }
    }

    @Test("submit refuses a reporter key other than the one the database was filled with")
    func wrongKeyRefused() async throws {
        try await TestDatabase.with { db in
            let args = ["submit", "--text", "V信: abc_123x", "--reporter", "u1"]
            _ = try await TiplineProcess.run(args, databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": "first-key-0123456789"])
            let other = try await TiplineProcess.run(args, databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": "other-key-0123456789"])
            #expect(other.status == .exit(1))
            #expect(other.stderr.contains("differs from the key this database recorded when it was first used"))
        }
    }

    @Test("submit refuses a missing, short or placeholder reporter key and stores nothing")
    func weakKeysRefused() async throws {
        try await TestDatabase.with { db in
            let args = ["submit", "--text", "V信: abc_123x", "--reporter", "13812345678"]
            for (key, message) in [("", "TIPLINE_REPORTER_KEY is not set"), ("0123456789abcde", "must be at least 16 bytes (got 15)"),
                                   ("0000000000000000", "looks like a placeholder (only 1 different characters)"),
                                   (String(repeating: " ", count: 32), "looks like a placeholder"),
                                   ("abcabcabcabcabcabc", "looks like a placeholder (only 3 different characters)"),
                                   ("abcdabcdabcdabcd", "looks like a placeholder (a run of 4 characters repeated)"),
                                   ("abcdabcdabcdabcdab", "looks like a placeholder (a run of 4 characters repeated)"),
                                   ("日本語文日本語文日本語文", "looks like a placeholder (a run of 4 characters repeated)"),
                                   ("0123456789abcdef0123456789abcdef", "looks like a placeholder (a run of 16 characters repeated)")] {
                let result = try await TiplineProcess.run(args, databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": key])
                #expect(result.status == .exit(1) && result.stderr.contains(message), "\(key): \(result.stderr)")
            }
            #expect(try await db.int("SELECT count(*) FROM reports") == 0)
            #expect(try await db.int("SELECT count(*) FROM settings WHERE name IN ('reporter_key_derivation', 'reporter_key_stretched_fingerprint')") == 0)
            // Four different characters are enough, when they do not repeat one run (a random 16-hex-digit
            // key has fewer than 8 different ones about once in a hundred).
            let poor = try await TiplineProcess.run(args, databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": "0123012301230132"])
            #expect(poor.status == .exit(0), "\(poor.stderr)")
            try await db.database.execute("DELETE FROM jobs")
            try await db.database.execute("DELETE FROM reports")
            try await db.database.execute("DELETE FROM settings WHERE name LIKE 'reporter_key_%'")
            // A database an earlier release filled with such a key keeps it: no other key matches its
            // hashes. (Its fingerprint was made with the key itself, and migration 0014 recorded `none`.)
            let placeholder = "0000000000000000"
            let fingerprint = try await ReporterKey(secret: placeholder).hasher(for: .none).fingerprint
            try await db.database.execute("INSERT INTO settings (name, value) VALUES ('reporter_key_fingerprint', \(fingerprint))")
            try await db.database.execute("INSERT INTO settings (name, value) VALUES ('reporter_key_derivation', 'none')")
            let kept = try await TiplineProcess.run(args, databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": placeholder])
            #expect(kept.status == .exit(0), "\(kept.stderr)")
            #expect(try await db.int("SELECT count(*) FROM reports") == 1)
        }
    }

    @Test("--rejects writes through a link in place, never replaces it, and refuses the input file itself")
    func rejectsFileInPlace() async throws {
        try await TestDatabase.with { db in
            let lines = [#"{"external_id":"e1","channel":"app","reporter":"u1","text":"出租微信 V信: abc_121x"}"#,
                         #"{"external_id":"e2","channel":"fax","reporter":"u2","text":"t"}"#]
            let path = try Self.write(lines.joined(separator: "\n"))
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rejects-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let target = dir + "/target.tsv", link = dir + "/link.tsv"
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            let result = try await TiplineProcess.run(["submit", "--file", path, "--rejects", link], databaseURL: db.url)
            #expect(result.status == .exit(3), "\(result.stderr)")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target, "the link was replaced")
            #expect(try String(contentsOfFile: target, encoding: .utf8).hasPrefix("2\t"))
            // The input file as its own rejects file: refused before anything is emptied.
            let before = try String(contentsOfFile: path, encoding: .utf8)
            let same = try await TiplineProcess.run(["submit", "--file", path, "--rejects", path], databaseURL: db.url)
            #expect(same.status == .exit(1))
            #expect(same.stderr.contains("is the input file"), "\(same.stderr)")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == before)
            // The same through stdin (`--file - < FILE`).
            let piped = try TiplineProcess(["submit", "--file", "-", "--rejects", path], databaseURL: db.url)
            piped.process.standardInput = FileHandle(forReadingAtPath: path)!
            try piped.start()
            #expect(try await piped.wait(timeout: 60) == .exit(1))
            #expect(piped.stderr.contains("is the input file"), "\(piped.stderr)")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == before)
            // A rejects file that cannot be written (a full disk, through a link to /dev/full): said
            // once, the good lines are still stored, exit 1.
            let full = dir + "/full.tsv"
            try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: "/dev/full")
            let more = [#"{"external_id":"f1","channel":"app","reporter":"u1","text":"出租微信 V信: abc_131x"}"#,
                        #"{"external_id":"f2","channel":"fax","reporter":"u2","text":"t"}"#,
                        #"{"external_id":"f3","channel":"app","reporter":"u3","text":"出租微信 V信: abc_141x"}"#]
            let second = try Self.write(more.joined(separator: "\n"))
            let onFull = try await TiplineProcess.run(["submit", "--file", second, "--rejects", full], databaseURL: db.url)
            #expect(onFull.status == .exit(1), "\(onFull.stderr)")
            #expect(onFull.stdout.contains("accepted 2, duplicate 0, rejected 1"), "\(onFull.stdout)")
            #expect(onFull.stderr.contains("cannot write --rejects file \(full): No space left on device"), "\(onFull.stderr)")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: full) == "/dev/full")
            #expect(try await db.int("SELECT count(*) FROM reports") == 3)
        }
    }

    @Test("refusals of lines naming a member or column twice, with control characters in the name, do not show it and stay one line in the rejects file; an unwritable stderr costs nothing")
    func refusalsEscaped() async throws {
        try await TestDatabase.with { db in
            // Lines refused for a member named twice (with control characters in its name).
            let lines = [#"{"external_id":"e1","\u001b[31mRED":1,"\u001b[31mRED":2,"channel":"app","reporter":"u1","text":"t"}"#,
                         #"{"external_id":"e2","a\nb":1,"a\nb":2,"channel":"app","reporter":"u2","text":"t"}"#,
                         #"{"external_id":"e3","channel":"app","reporter":"u3","text":"出租微信 V信: abc_151x"}"#]
            let path = try Self.write(lines.joined(separator: "\n"))
            let rejects = path + ".rejects"
            defer { try? FileManager.default.removeItem(atPath: rejects) }
            let result = try await TiplineProcess.run(["submit", "--file", path, "--rejects", rejects], databaseURL: db.url)
            #expect(result.status == .exit(3))
            // A member's name that is none of a report's fields is the sender's data: not shown at all.
            #expect(!result.stderr.contains("\u{1B}") && !result.stderr.contains("RED"), "\(result.stderr)")
            let logged = try String(contentsOfFile: rejects, encoding: .utf8).split(separator: "\n")
            #expect(logged.map { $0.prefix(2) } == ["1\t", "2\t"], "\(logged)")
            // Nor is a CSV header's repeated column that is none of a report's fields: counted, not shown.
            let csv = try Self.write("external_id,channel,reporter,text,\"\u{1B}[31mRED\",\"\u{1B}[31mRED\"\ne1,app,u1,t\n", ext: "csv")
            let csvRejects = csv + ".rejects"
            defer { try? FileManager.default.removeItem(atPath: csvRejects) }
            let header = try await TiplineProcess.run(["submit", "--file", csv, "--rejects", csvRejects], databaseURL: db.url)
            #expect(header.status == .exit(3))
            #expect(!header.stderr.contains("\u{1B}"), "a raw ESC reached stderr: \(header.stderr)")
            #expect(header.stderr.contains("repeats column(s) 1 other(s), not shown") && !header.stderr.contains("RED"), "\(header.stderr)")
            let csvLogged = try String(contentsOfFile: csvRejects, encoding: .utf8).split(separator: "\n")
            #expect(csvLogged.map { $0.prefix(2) } == ["1\t", "2\t"] && !csvLogged.joined().contains("\u{1B}"), "\(csvLogged)")
            // Standard error on a full disk: the refusals are lost, nothing else (it trapped).
            let quiet = try TiplineProcess(["submit", "--file", path, "--source", "quiet"], databaseURL: db.url)
            quiet.process.standardError = FileHandle(forWritingAtPath: "/dev/full")!
            try quiet.start()
            #expect(try await quiet.wait(timeout: 60) == .exit(3))
            #expect(try await db.int("SELECT count(*) FROM reports WHERE source = 'quiet'") == 1)
            // Standard error a pipe whose reader has gone: SIGPIPE ended the import at the first refusal.
            let closed = try TiplineProcess(["submit", "--file", path, "--source", "closed"], databaseURL: db.url)
            try closed.startWithStderrReaderGone()
            #expect(try await closed.wait(timeout: 60) == .exit(3))
            #expect(try await db.int("SELECT count(*) FROM reports WHERE source = 'closed'") == 1)
        }
    }

}

/// A FIFO this test writes into line by line, as a producer would, read by `submit --file`.
final class FIFOProducer {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("reports-\(UUID().uuidString).jsonl").path
    private var writer: Int32 = -1

    init() throws {
        guard mkfifo(path, 0o600) == 0 else { throw TestSetupError("mkfifo failed (errno \(errno))") }
    }

    /// Starts `submit --file` on the FIFO with `arguments`, and opens its writing end.
    func start(_ arguments: [String], databaseURL: String) async throws -> TiplineProcess {
        let submit = try TiplineProcess(["submit", "--file", path] + arguments, databaseURL: databaseURL)
        try submit.start()
        let path = self.path
        writer = try await RawHTTP.offPool { () throws -> Int32 in
            let fd = open(path, O_WRONLY)
            guard fd >= 0 else { throw TestSetupError("cannot open the FIFO (errno \(errno))") }
            return fd
        }
        return submit
    }

    func write(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.write(writer, $0.baseAddress, $0.count - 1) }
    }

    /// The end of the input.
    func close() {
        if writer >= 0 { Glibc.close(writer) }
        writer = -1
    }

    deinit {
        close()
        unlink(path)
    }
}
