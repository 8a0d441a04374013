import Foundation
import Crypto
import Postgres
import Testing
@testable import TiplineStore

/// How the reporter key becomes the key that hashes reporters (`ReporterKeyDerivation`), through
/// real `tipline submit` processes and a real database. The expected values were computed apart
/// from Tipline, with Python's `hashlib.scrypt` and `hmac`.
@Suite("reporter key derivation")
struct ReporterKeyTests {
    static let key = "pinned-reporter-key-0123456789"
    /// `+86 138 1234 5678` as it is hashed.
    static let caller = "+8613812345678"
    static let submit = ["submit", "--text", "V信: abc_123x", "--reporter", "+86 138 1234 5678", "--channel", "hotline"]

    /// `tipline submit` of this file's report (`submit`) into `db`, with this file's key.
    static func submitted(_ db: TestDatabase) async throws -> (status: TiplineProcess.Termination, stdout: String, stderr: String) {
        try await TiplineProcess.run(submit, databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": key])
    }

    /// The derivation, the fingerprint and the report's reporter hash a database records after `submit`.
    static func recorded(_ db: TestDatabase) async throws -> (derivation: String?, fingerprint: String?, stretched: String?, hash: String?) {
        func value(_ name: String) async throws -> String? {
            try await db.database.query("SELECT value FROM settings WHERE name = \(name)").first?.decode(String.self, at: 0)
        }
        let hash = try await db.database.query("SELECT encode(reporter_hash, 'hex') FROM reports").first?.decode(String.self, at: 0)
        return (try await value("reporter_key_derivation"), try await value("reporter_key_fingerprint"),
                try await value("reporter_key_stretched_fingerprint"), hash)
    }

    /// Migrates `db` to schema 13 (before derivations), as an earlier release left it.
    static func atSchema13(_ db: TestDatabase) async throws {
        _ = try await Migrator(migrations: Migration.embedded.filter { $0.version < 14 }).migrate(db.database)
    }

    /// What an earlier release's submit recorded for `caller` with `key` (the bare key's fingerprint,
    /// then a report whose reporter hash is the bare key's HMAC): `fa03...` and `3864...` for this file's key.
    /// With `fingerprint` nil, only the report.
    static func earlierReleaseSubmitted(_ db: TestDatabase, fingerprint: String? = "fa037a72df65c559656f68356e5e0176",
                                        hash: String = "386424ed870533cf86739fcc3776b52200c36a33d1725f68ec606d334794c8df") async throws {
        if let fingerprint {
            try await db.database.execute("""
                INSERT INTO settings (name, value) VALUES ('reporter_key_fingerprint', \(fingerprint)) ON CONFLICT (name) DO NOTHING
                """)
        }
        try await db.database.execute("""
            INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at)
            VALUES ('earlier', 'e-1', 'hotline', decode(\(hash), 'hex'), 'V信: abc_123x', now())
            """)
    }

    @Test("scrypt is RFC 7914's: its test vector (password, NaCl, N 1024, r 8, p 16), first 32 bytes")
    func scryptVector() throws {
        let derived = try ReporterKeyDerivation.scrypt(n: 1024, r: 8, p: 16, salt: Array("NaCl".utf8)).derive(from: Data("password".utf8))
        #expect(derived.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
            == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162")
    }

    @Test("a derivation reads back as written; one with another shape, costs past the limits or a salt not in lower-case hex is refused")
    func recordedForm() throws {
        let salt = Array(0..<16).map(UInt8.init)
        let derivation = ReporterKeyDerivation.scrypt(n: 16384, r: 8, p: 2, salt: salt)
        #expect(derivation.recorded == "scrypt n=16384 r=8 p=2 salt=000102030405060708090a0b0c0d0e0f")
        #expect(try ReporterKeyDerivation(recorded: derivation.recorded) == derivation)
        #expect(try ReporterKeyDerivation(recorded: "none") == .none)
        let fresh = ReporterKeyDerivation.fresh()
        guard case .scrypt(let n, let r, let p, let freshSalt) = fresh else {
            Issue.record("fresh() is \(fresh.recorded)")
            return
        }
        #expect(n == 16384 && r == 8 && p == 2 && freshSalt.count == 16)
        #expect(ReporterKeyDerivation.fresh() != fresh)
        let hex = "000102030405060708090a0b0c0d0e0f"
        for text in ["", "scrypt", "scrypt n=16384 r=8 p=2", "scrypt n=16384 r=8 p=2 salt=\(hex) extra", "argon2id m=65536 t=3 p=4 salt=\(hex)",
                     "scrypt r=8 n=16384 p=2 salt=\(hex)", "scrypt n=16384 r=8 p=2 salt=\(hex.uppercased())",
                     "scrypt n=16384 r=8 p=2 salt=+0\(hex.dropFirst(2))", "scrypt n=16384 r=8 p=2 salt=\(hex.dropFirst())",
                     "scrypt n=16384  r=8 p=2 salt=\(hex)", "scrypt n=x r=8 p=2 salt=\(hex)", "scrypt n=+16384 r=8 p=2 salt=\(hex)",
                     "scrypt n=016384 r=8 p=2 salt=\(hex)"] {
            #expect(throws: TiplineError.self, "\(text)") { try ReporterKeyDerivation(recorded: text) }
        }
        // Refused: n not a power of two, below 2^10 or above 2^20; r or p above 16; over 64 MiB; over
        // 2^22 block operations; n not below 2^(16 r) (BoringSSL refuses it); a salt of 15 or 80 bytes.
        for (n, r, p, salt) in [(16383, 8, 2, hex), (512, 8, 2, hex), (1 << 21, 1, 1, hex), (1 << 20, 8, 1, hex), (16384, 17, 1, hex),
                                (16384, 8, 17, hex), (1 << 15, 16, 16, hex), (1 << 16, 1, 1, hex), (16384, 8, 2, String(hex.prefix(30))),
                                (16384, 8, 2, String(repeating: hex, count: 5))] {
            let text = "scrypt n=\(n) r=\(r) p=\(p) salt=\(salt)"
            #expect(throws: TiplineError.self, "\(text)") { try ReporterKeyDerivation(recorded: text) }
        }
    }

    @Test("every derivation at the edges of what is read derives a key (BoringSSL runs what the parser lets through)")
    func edgesDerive() async throws {
        let hex = "000102030405060708090a0b0c0d0e0f"
        let key = try ReporterKey(secret: Self.key)
        // The smallest; r = 1 at its largest n; r = 16 with p = 1 (BoringSSL's tightest memory); p = 16; 64 MiB.
        let edges: [(n: Int, r: Int, p: Int)] = [(1 << 10, 1, 1), (1 << 15, 1, 1), (1 << 10, 16, 1), (1 << 10, 8, 16), (1 << 16, 8, 1)]
        for (n, r, p) in edges {
            let derivation = try ReporterKeyDerivation(recorded: "scrypt n=\(n) r=\(r) p=\(p) salt=\(hex)")
            #expect(try await key.hasher(for: derivation).fingerprint.count == 32, "\(derivation.recorded)")
        }
    }

    @Test("a hasher printed or reflected shows its derivation and fingerprint, not the key")
    func hasherHidesTheKey() async throws {
        let derivation = ReporterKeyDerivation.scrypt(n: 16384, r: 8, p: 2, salt: Array(0..<16).map(UInt8.init))
        let hasher = try await ReporterKey(secret: Self.key).hasher(for: derivation)
        let derivedKey = "f50b00def6ffe69d280e4b561069f991d35892e58402686f86bfe0e117f02d33"
        for shown in [String(describing: hasher), String(reflecting: hasher), "\(Mirror(reflecting: hasher).children.map(\.value))"] {
            #expect(shown.contains("a4bf37bcc936075de64addbe0b4dea1b"), "\(shown)")
            #expect(!shown.contains("245, 11, 0, 222") && !shown.contains(derivedKey) && !shown.contains("0xf5"), "\(shown)")
        }
    }

    @Test("a new database records a scrypt derivation with a salt of its own; the reporter's hash and the fingerprint are made with the key it derives, not with the key itself")
    func newDatabaseDerives() async throws {
        var salts: [[UInt8]] = []
        var hashes: [String] = []
        for _ in 0..<2 {
            let (salt, hash) = try await TestDatabase.with { db in
                let run = try await Self.submitted(db)
                #expect(run.status == .exit(0), "\(run.stderr)")
                let recorded = try await Self.recorded(db)
                let derivation = try ReporterKeyDerivation(recorded: try #require(recorded.derivation))
                guard case .scrypt(16384, 8, 2, let salt) = derivation, salt.count == 16 else {
                    Issue.record("recorded: \(derivation.recorded)")
                    return ([UInt8](), "")
                }
                let hash = try #require(recorded.hash)
                // What the key itself would give (an earlier release's hashes).
                #expect(hash != "386424ed870533cf86739fcc3776b52200c36a33d1725f68ec606d334794c8df")
                #expect(recorded.stretched != nil && recorded.stretched != "fa037a72df65c559656f68356e5e0176")
                // The same key again: accepted, the same reporter, a duplicate.
                let again = try await Self.submitted(db)
                #expect(again.status == .exit(0) && again.stdout.hasPrefix("duplicate: report"), "\(again.stdout) \(again.stderr)")
                #expect(try await Self.recorded(db).derivation == recorded.derivation)
                return (salt, hash)
            }
            salts.append(salt)
            hashes.append(hash)
        }
        // Two databases, one key, one caller: two salts, two hashes.
        #expect(salts[0] != salts[1])
        #expect(hashes[0] != hashes[1])
        // A recorded derivation is used as recorded: the values Python gives for this key and salt.
        try await TestDatabase.with { db in
            try await db.database.execute("""
                INSERT INTO settings (name, value)
                VALUES ('reporter_key_derivation', 'scrypt n=16384 r=8 p=2 salt=000102030405060708090a0b0c0d0e0f')
                """)
            let run = try await Self.submitted(db)
            #expect(run.status == .exit(0), "\(run.stderr)")
            let recorded = try await Self.recorded(db)
            #expect(recorded.stretched == "a4bf37bcc936075de64addbe0b4dea1b")
            #expect(recorded.hash == "bd91e1dee8761db41c92779366f06538461d9b41d29b9a22bb1f85bed436b2f4")
        }
    }

    @Test("a database an earlier release used (its key's own fingerprint) is marked `none` by migration 0014 and keeps hashing with the key itself")
    func earlierDatabaseKeepsItsKey() async throws {
        try await TestDatabase.with(migrate: false) { db in
            try await Self.atSchema13(db)
            try await Self.earlierReleaseSubmitted(db)
            // This release's submit on a database short of migration 0014: refused, nothing stored or recorded.
            let early = try await Self.submitted(db)
            #expect(early.status == .exit(1) && early.stderr.contains("lacks migration(s) 14"), "\(early.stderr)")
            #expect(try await db.int("SELECT count(*) FROM reports") == 1)
            #expect(try await Self.recorded(db).derivation == nil)
            #expect(try await TiplineProcess.run(["migrate"], databaseURL: db.url).status == .exit(0))
            #expect(try await Self.recorded(db).derivation == "none")
            let run = try await Self.submitted(db)
            #expect(run.status == .exit(0), "\(run.stderr)")
            let recorded = try await Self.recorded(db)
            #expect(recorded.derivation == "none" && recorded.fingerprint == "fa037a72df65c559656f68356e5e0176")
            // The caller of the earlier report, submitted again: one reporter (the bare key's hash).
            #expect(try await db.int("SELECT count(*) FROM reports") == 2)
            #expect(try await db.int("SELECT count(DISTINCT reporter_hash) FROM reports") == 1)
            #expect(recorded.hash == "386424ed870533cf86739fcc3776b52200c36a33d1725f68ec606d334794c8df")
            let other = try await TiplineProcess.run(Self.submit, databaseURL: db.url,
                                                     environment: ["TIPLINE_REPORTER_KEY": "another-key-0123456789abcdef"])
            #expect(other.status == .exit(1) && other.stderr.contains("differs from the key this database recorded"), "\(other.stderr)")
        }
    }

    @Test("a database where an earlier serve or work only recorded the bare key's fingerprint (no report) is not kept on the bare key: migration 0014 puts the marker in its place")
    func earlierStartWithoutReportsIsNotKept() async throws {
        try await TestDatabase.with(migrate: false) { db in
            try await Self.atSchema13(db)
            try await db.database.execute("""
                INSERT INTO settings (name, value) VALUES ('reporter_key_fingerprint', 'fa037a72df65c559656f68356e5e0176')
                """)
            #expect(try await TiplineProcess.run(["migrate"], databaseURL: db.url).status == .exit(0))
            let migrated = try await Self.recorded(db)
            #expect(migrated.derivation == nil && migrated.fingerprint == ReporterKey.unusedMarker)
            let run = try await Self.submitted(db)
            #expect(run.status == .exit(0), "\(run.stderr)")
            let recorded = try await Self.recorded(db)
            #expect(recorded.derivation?.hasPrefix("scrypt ") == true && recorded.stretched != nil)
            #expect(recorded.hash != "386424ed870533cf86739fcc3776b52200c36a33d1725f68ec606d334794c8df")
        }
    }

    @Test("an earlier release's fingerprint and report committed while migration 0014 waits for its lock are seen by all of it: the database is marked `none`")
    func migrationWaitsForAnEarlierReleasesWrite() async throws {
        try await TestDatabase.with(migrate: false) { db in
            try await Self.atSchema13(db)
            // An earlier release's submit in flight: its fingerprint and report written, not committed.
            let earlier = try Connection.connect(ConnectionConfig(conninfo: db.url))
            try earlier.execute("BEGIN")
            try earlier.execute("""
                INSERT INTO settings (name, value) VALUES ('reporter_key_fingerprint', 'fa037a72df65c559656f68356e5e0176')
                ON CONFLICT (name) DO NOTHING
                """)
            try earlier.execute("""
                INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at)
                VALUES ('earlier', 'e-1', 'hotline', decode('386424ed870533cf86739fcc3776b52200c36a33d1725f68ec606d334794c8df', 'hex'), 'x', now())
                """)
            let migrate = try TiplineProcess(["migrate"], databaseURL: db.url)
            try migrate.start()
            // Until migrate waits for a lock on settings (its first statement), then the write commits.
            var waiting = false
            for _ in 0..<600 where !waiting {
                waiting = try await db.int("""
                    SELECT count(*)::int FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                     WHERE NOT l.granted AND d.datname = current_database() AND l.relation = 'settings'::regclass
                    """) > 0
                if !waiting { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(waiting, "migrate never waited for the lock on settings")
            try earlier.execute("COMMIT")
            #expect(try await migrate.wait() == .exit(0), "\(migrate.stderr)")
            let recorded = try await Self.recorded(db)
            #expect(recorded.derivation == "none" && recorded.fingerprint == "fa037a72df65c559656f68356e5e0176", "\(recorded)")
        }
    }

    @Test("serve on a database short of migration 0014 starts, and answers readyz and reports with 503 migrations_pending naming it; nothing is stored")
    func serveShortOfTheSchema() async throws {
        try await TestDatabase.with(migrate: false) { db in
            try await Self.atSchema13(db)
            try await IntakeServer.running(databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": Self.key]) { server in
                let token = try await server.token(source: "key-test")
                let ready = try await server.get("/readyz")
                #expect(ready.status == 503 && ready.error.code == "migrations_pending", "\(ready.text)")
                let reply = try await server.post(sampleReport("s-1"), token: token)
                #expect(reply.status == 503 && reply.error.code == "migrations_pending", "\(reply.text)")
                #expect(reply.text.contains("lacks migration(s) 14"), "\(reply.text)")
                #expect(try await db.int("SELECT count(*) FROM reports") == 0)
                #expect(try await Self.recorded(db).derivation == nil)
            }
        }
    }

    @Test("a database migrated but not used yet holds a fingerprint no key has, which an earlier release (comparing only that row) refuses; this one records its own derivation beside it")
    func unusedDatabaseShutsOutEarlierReleases() async throws {
        try await TestDatabase.with { db in
            let marker = try #require(try await Self.recorded(db).fingerprint)
            #expect(marker.wholeMatch(of: #/[0-9a-f]{32}/#) == nil, "\(marker)")
            // An earlier release's check: insert its fingerprint unless one is there, then compare.
            try await db.database.execute("""
                INSERT INTO settings (name, value) VALUES ('reporter_key_fingerprint', 'fa037a72df65c559656f68356e5e0176')
                ON CONFLICT (name) DO NOTHING
                """)
            #expect(try await Self.recorded(db).fingerprint == marker)
            // Deleted by hand: first use puts it back.
            try await db.database.execute("DELETE FROM settings WHERE name = 'reporter_key_fingerprint'")
            let run = try await Self.submitted(db)
            #expect(run.status == .exit(0), "\(run.stderr)")
            let recorded = try await Self.recorded(db)
            #expect(recorded.fingerprint == marker && recorded.derivation?.hasPrefix("scrypt n=16384 r=8 p=2 salt=") == true)
            // Deleted after first use: the next check puts it back too, so an earlier release still finds it.
            try await db.database.execute("DELETE FROM settings WHERE name = 'reporter_key_fingerprint'")
            let again = try await Self.submitted(db)
            #expect(again.status == .exit(0), "\(again.stderr)")
            #expect(try await Self.recorded(db).fingerprint == marker)
        }
    }

    @Test("reporter key settings that contradict each other (edited by hand, or partly lost) are refused, naming them, and nothing is stored or recorded")
    func inconsistentSettingsRefused() async throws {
        let bare = ("reporter_key_fingerprint", "fa037a72df65c559656f68356e5e0176")
        let derivation = ("reporter_key_derivation", "scrypt n=16384 r=8 p=2 salt=000102030405060708090a0b0c0d0e0f")
        let stretched = ("reporter_key_stretched_fingerprint", "a4bf37bcc936075de64addbe0b4dea1b")
        let none = ("reporter_key_derivation", "none")
        let cases: [(rows: [(String, String)], withReport: Bool, message: String)] = [
            ([bare], false, "a fingerprint of the key itself (reporter_key_fingerprint) but no derivation"),
            ([stretched], false, "the salt it was derived with is gone"),
            ([none], false, "but no fingerprint of the key itself"),
            ([none, bare, stretched], false, "and a fingerprint of a derived key"),
            ([], true, "reports but no reporter key"),
            ([derivation, stretched, bare], false, "an earlier release has taken reports into it since it was migrated"),
            ([derivation], true, "any key would now be taken"),
        ]
        for (rows, withReport, message) in cases {
            try await TestDatabase.with { db in
                try await db.database.execute("DELETE FROM settings WHERE name LIKE 'reporter_key_%'")
                for (name, value) in rows { try await db.database.execute("INSERT INTO settings (name, value) VALUES (\(name), \(value))") }
                if withReport { try await Self.earlierReleaseSubmitted(db, fingerprint: nil, hash: String(repeating: "ab", count: 32)) }
                let reports = try await db.int("SELECT count(*) FROM reports")
                let run = try await Self.submitted(db)
                #expect(run.status == .exit(1) && run.stderr.contains("reporter key settings contradict each other"), "\(run.stderr)")
                #expect(run.stderr.contains(message), "\(run.stderr)")
                #expect(try await db.int("SELECT count(*) FROM reports") == reports)
                let left = try await db.int("SELECT count(*) FROM settings WHERE name LIKE 'reporter_key_%'")
                #expect(left == rows.count, "\(rows)")
            }
        }
    }

    @Test("serve hashes a POSTed reporter with the derived key: the hash and fingerprint Python gives for its key and the recorded salt")
    func serveHashesWithTheDerivedKey() async throws {
        try await TestDatabase.with { db in
            try await db.database.execute("""
                INSERT INTO settings (name, value)
                VALUES ('reporter_key_derivation', 'scrypt n=16384 r=8 p=2 salt=000102030405060708090a0b0c0d0e0f')
                """)
            try await IntakeServer.running(databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": Self.key]) { server in
                let token = try await server.token(source: "key-test", channel: "hotline")
                let reply = try await server.post(["external_id": "k1", "channel": "hotline", "reporter": "+86 138 1234 5678",
                                                   "text": "V信: abc_123x"], token: token)
                #expect(reply.status == 201, "\(reply.text)")
                let recorded = try await Self.recorded(db)
                #expect(recorded.stretched == "a4bf37bcc936075de64addbe0b4dea1b")
                #expect(recorded.hash == "bd91e1dee8761db41c92779366f06538461d9b41d29b9a22bb1f85bed436b2f4")
            }
        }
    }

    @Test("a worker reads no reporter key: with none, or with another, it drains what intake stored and records nothing")
    func workerNeedsNoKey() async throws {
        try await TestDatabase.with { db in
            for (index, workerKey) in ["", "another-key-0123456789abcdef"].enumerated() {
                let submit = ["submit", "--text", "V信: worker_\(index)x", "--reporter", "u\(index)"]
                let run = try await TiplineProcess.run(submit, databaseURL: db.url, environment: ["TIPLINE_REPORTER_KEY": Self.key])
                #expect(run.status == .exit(0), "\(run.stderr)")
                let recordedBefore = try await Self.recorded(db)
                // With nothing recorded, a worker that checked (or recorded) a key would show it here.
                try await db.database.execute("DELETE FROM settings WHERE name LIKE 'reporter_key_%'")
                let work = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url,
                                                        environment: ["TIPLINE_REPORTER_KEY": workerKey])
                #expect(work.status == .exit(0), "key '\(workerKey)': \(work.stderr)")
                #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == index + 1)
                #expect(try await db.int("SELECT count(*) FROM settings WHERE name LIKE 'reporter_key_%'") == 0)
                // Put back as submit left them (the derivation again: the next submit matches).
                try await db.database.execute("""
                    INSERT INTO settings (name, value) VALUES ('reporter_key_derivation', \(recordedBefore.derivation ?? "")),
                    ('reporter_key_stretched_fingerprint', \(recordedBefore.stretched ?? "")),
                    ('reporter_key_fingerprint', \(recordedBefore.fingerprint ?? ""))
                    """)
            }
        }
    }

    @Test("a derivation this release would not record is refused with a message naming the setting, and nothing is stored")
    func unknownDerivationRefused() async throws {
        try await TestDatabase.with { db in
            for value in ["argon2id m=65536 t=3 p=4 salt=000102030405060708090a0b0c0d0e0f",
                          "scrypt n=1073741824 r=8 p=1 salt=000102030405060708090a0b0c0d0e0f",
                          // Within the earlier bounds, refused by BoringSSL at run time (n not below 2^(16 r)).
                          "scrypt n=65536 r=1 p=1 salt=000102030405060708090a0b0c0d0e0f",
                          "scrypt n=+16384 r=8 p=2 salt=000102030405060708090a0b0c0d0e0f"] {
                try await db.database.execute("DELETE FROM settings WHERE name LIKE 'reporter_key_%'")
                try await db.database.execute("INSERT INTO settings (name, value) VALUES ('reporter_key_derivation', \(value))")
                let run = try await Self.submitted(db)
                #expect(run.status == .exit(1), "\(value): \(run.stderr)")
                #expect(run.stderr.contains("this database's reporter key derivation (settings.reporter_key_derivation)"), "\(run.stderr)")
                #expect(try await db.int("SELECT count(*) FROM reports") == 0)
                #expect(try await Self.recorded(db).stretched == nil)
            }
        }
    }
}
