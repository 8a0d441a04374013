import Foundation
import Synchronization
import Postgres
import Testing

/// The libpq layer against the real server `scripts/test` started.
@Suite("libpq layer")
struct PostgresTests {
    static var url: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["TIPLINE_TEST_ADMIN_URL"], !url.isEmpty else {
                throw PostgresError(code: .connectionFailed, message: "TIPLINE_TEST_ADMIN_URL is not set: run scripts/test")
            }
            return url
        }
    }

    /// Runs `body` with a one-connection database and a table of its own (`prefix` and a random
    /// suffix, created with `columns`), and drops the table afterwards.
    static func withTable(_ prefix: String, _ columns: String, _ body: (Database, String) async throws -> Void) async throws {
        let database = Database(config: ConnectionConfig(conninfo: try url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let table = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        try await database.execute(Query(sql: "CREATE TABLE \(table) (\(columns))", binds: []))
        try await body(database, table)
        try await database.execute(Query(sql: "DROP TABLE \(table)", binds: []))
    }

    @Test("connections get TCP keepalives and a user timeout by default, and the conninfo's own values win")
    func connectionDefaults() throws {
        let plain = try Connection.connect(ConnectionConfig(conninfo: try Self.url))
        #expect(plain.parameter("keepalives") == "1")
        #expect(plain.parameter("keepalives_idle") == "10")
        #expect(plain.parameter("keepalives_interval") == "5")
        #expect(plain.parameter("keepalives_count") == "4")
        #expect(plain.parameter("tcp_user_timeout") == "30000")
        #expect(plain.parameter("connect_timeout") == "10")
        let url = try Self.url
        let own = try Connection.connect(ConnectionConfig(
            conninfo: url + (url.contains("?") ? "&" : "?") + "keepalives_idle=7&tcp_user_timeout=9000&connect_timeout=3"))
        #expect(own.parameter("keepalives_idle") == "7")
        #expect(own.parameter("tcp_user_timeout") == "9000")
        #expect(own.parameter("connect_timeout") == "3")
        #expect(own.parameter("keepalives_count") == "4")
    }

    @Test("a connection keeps the server's notices and warnings, with detail and hint, until taken; a flood keeps the first hundred and counts the rest")
    func noticesAreKept() throws {
        let connection = try Connection.connect(ConnectionConfig(conninfo: try Self.url))
        #expect(connection.takeNotices().isEmpty)
        try connection.executeScript("""
            DO $$ BEGIN
                RAISE NOTICE 'first %', 1;
                RAISE WARNING 'second' USING DETAIL = 'why', HINT = 'what to do';
            END $$
            """)
        #expect(connection.takeNotices() == [
            PostgresNotice(severity: "NOTICE", message: "first 1"),
            PostgresNotice(severity: "WARNING", message: "second", detail: "why", hint: "what to do"),
        ])
        #expect(connection.takeNotices().isEmpty, "taking the notices did not empty the inbox")
        try connection.executeScript("DO $$ BEGIN FOR i IN 1..250 LOOP RAISE NOTICE 'n%', i; END LOOP; END $$")
        let flood = connection.takeNotices()
        #expect(flood.count == 101 && flood.first?.message == "n1" && flood[99].message == "n100", "\(flood.count)")
        #expect(flood.last?.message == "150 more notices were not kept", "\(String(describing: flood.last))")
    }

    @Test("16 concurrent in-flight queries in one process all make progress")
    func sixteenInFlight() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url, applicationName: "barrier-\(UUID().uuidString.prefix(8))"),
                                maxConnections: 16)
        defer { Task { await database.shutdown() } }
        let key = Int64.random(in: 1..<Int64(Int32.max))
        // Each query takes a shared advisory lock (held by its session) and then waits inside
        // PostgreSQL until 16 sessions hold it. Were libpq's blocking calls on the cooperative pool
        // (2 threads here), at most 2 could be in flight and every query would fail after 30 s.
        // (A DO block, because each statement in PL/pgSQL reads pg_locks afresh; `key` is our own integer.)
        let barrier = Query(sql: """
            DO $$
            DECLARE
                n int := 0;
                rounds_seen int := 0;
            BEGIN
                PERFORM pg_advisory_lock_shared(\(key));
                FOR i IN 1..3000 LOOP
                    SELECT count(*) INTO n FROM pg_locks WHERE locktype = 'advisory' AND objid = \(key)::oid AND granted;
                    IF n >= 16 THEN
                        rounds_seen := rounds_seen + 1;
                        IF rounds_seen >= 20 THEN RETURN; END IF;
                    END IF;
                    PERFORM pg_sleep(0.01);
                END LOOP;
                RAISE EXCEPTION 'only % of 16 queries were in flight at once', n;
            END $$
            """, binds: [])
        let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try await database.execute(barrier)
                    return true
                }
            }
            var all: [Bool] = []
            for try await value in group { all.append(value) }
            return all
        }
        #expect(finished.count == 16)
    }

    @Test("a connection applies its settings, after UTC, in order; an unknown setting fails the connect and names it")
    func settingsApplied() async throws {
        let settings = [("enable_seqscan", "off"), ("idle_in_transaction_session_timeout", "7000"),
                        ("application_name", "first"), ("application_name", "second")]
        let database = Database(config: ConnectionConfig(conninfo: try Self.url, settings: settings), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let row = try await database.query("""
            SELECT current_setting('TimeZone'), current_setting('enable_seqscan'),
                   current_setting('idle_in_transaction_session_timeout'), current_setting('application_name')
            """).one()
        #expect(try (0..<4).map { try row.decode(String.self, at: $0) } == ["UTC", "off", "7s", "second"])

        let broken = Database(config: ConnectionConfig(conninfo: try Self.url, settings: [("no_such_setting", "1")]), maxConnections: 1)
        defer { Task { await broken.shutdown() } }
        await #expect { _ = try await broken.query("SELECT 1") } throws: { error in
            "\(error)".contains("no_such_setting")
        }
    }

    @Test("the pool reuses its connections")
    func poolReusesConnections() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        var pids = Set<Int>()
        for _ in 0..<20 { pids.insert(try await database.query("SELECT pg_backend_pid()").one().decode(Int.self, at: 0)) }
        #expect(pids.count == 1)
    }

    @Test("under a DatabaseDeadline a call still running at the deadline throws DatabaseDeadlinePassed then and finishes in the background; one still waiting for a connection is never made")
    func databaseDeadline() async throws {
        try await Self.withTable("deadline", "n int") { database, table in
            // The pool's one connection is busy, under no deadline, with a call that waits for an
            // advisory lock another session holds until this test lets it go (no guessed delay: a
            // loaded machine cannot end it before the call below has waited past its deadline).
            let other = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
            defer { Task { await other.shutdown() } }
            let key = Int64.random(in: 1...Int64.max)
            _ = try await other.execute("SELECT pg_advisory_lock(\(key))")
            let busy = Task { try await database.execute("SELECT pg_advisory_xact_lock(\(key))") }
            while try await other.query("""
                SELECT count(*)::int FROM pg_locks
                 WHERE locktype = 'advisory' AND NOT granted AND ((classid::int8 << 32) | objid::int8) = \(key)
                """).one().decode(Int.self, at: 0) == 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            // Let go after 30 s whatever happens, so that a deadline that does not work fails below
            // instead of waiting for ever.
            let letGo = Task {
                guard (try? await Task.sleep(for: .seconds(30))) != nil else { return }
                _ = try? await other.execute("SELECT pg_advisory_unlock(\(key))")
            }
            // This one waits for that connection, past its deadline: it throws, and never runs (the
            // table below holds no 1).
            await #expect(throws: DatabaseDeadlinePassed.self) {
                try await DatabaseDeadline.within(.milliseconds(400)) {
                    try await database.execute(Query(sql: "INSERT INTO \(table) VALUES (1)", binds: []))
                }
            }
            letGo.cancel()
            _ = try await other.execute("SELECT pg_advisory_unlock(\(key))")
            _ = try await busy.value
            // This one starts at once and outlasts its deadline: the caller stops waiting, the
            // statement goes on and commits.
            await #expect(throws: DatabaseDeadlinePassed.self) {
                try await DatabaseDeadline.within(.milliseconds(300)) {
                    try await database.execute(Query(sql: "INSERT INTO \(table) SELECT 2 FROM pg_sleep(3)", binds: []))
                }
            }
            // Read once it has committed: the pool's one connection is free again then.
            let rows = try await database.query(Query(sql: "SELECT coalesce(array_agg(n ORDER BY n)::text, '{}') FROM \(table)", binds: []))
            #expect(try rows.one().decode(String.self, at: 0) == "{2}")
            // Within the deadline, a call answers as without one; an inner, later deadline does not extend it.
            let value = try await DatabaseDeadline.within(.seconds(5)) {
                try await DatabaseDeadline.within(.seconds(60)) {
                    #expect(DatabaseDeadline.current! < ContinuousClock.now + .seconds(6))
                    return try await database.query("SELECT 41 + 1").one().decode(Int.self, at: 0)
                }
            }
            #expect(value == 42)
        }
    }

    @Test("a pool knows whether it ever connected: not before, not after a refused connect, yes after one that opened")
    func poolKnowsItConnected() async throws {
        let refused = Database(config: ConnectionConfig(conninfo: "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"), maxConnections: 1)
        defer { Task { await refused.shutdown() } }
        #expect(!refused.hasConnected)
        await #expect(throws: PostgresError.self) { try await refused.query("SELECT 1") }
        #expect(!refused.hasConnected)
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        #expect(!database.hasConnected)
        _ = try await database.query("SELECT 1")
        #expect(database.hasConnected)
    }

    @Test("errors carry SQLSTATE and PostgreSQL's message")
    func errorsCarrySQLState() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        do {
            try await database.execute("SELECT 1/0")
            Issue.record("division by zero did not throw")
        } catch let error as PostgresError {
            #expect(error.sqlState?.rawValue == "22012")
            #expect(error.message.contains("division by zero"))
        }
        do {
            try await database.execute("SELECT * FROM no_such_table_here")
            Issue.record("missing table did not throw")
        } catch let error as PostgresError {
            #expect(error.sqlState == .undefinedTable)
        }
        // The connection is still usable afterwards.
        #expect(try await database.query("SELECT 41 + 1").one().decode(Int.self, at: 0) == 42)
    }

    @Test("array parameters of every element kind round-trip: quoted text, bare numbers and booleans, NULLs")
    func arrayParametersRoundTrip() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let texts: [String?] = ["a\"b", "back\\slash", "{braces},comma", "NULL", nil, "", " spaced ", "微信 🐧"]
        let row = try await database.query("""
            SELECT (SELECT array_agg(coalesce(t, '<null here>') ORDER BY n) FROM unnest(\(texts)::text[]) WITH ORDINALITY AS u (t, n))::text,
                   array_length(\(texts)::text[], 1),
                   (\([Int64.min, -1, 0, Int64.max])::bigint[])::text,
                   (\([Int.min, 42])::bigint[])::text, (\([Int32.min, Int32.max])::int[])::text,
                   (\([true, false])::bool[])::text, (\([Int64?.none, 7])::bigint[])::text,
                   (\([Data([0, 255]), Data()])::bytea[])::text, (\([Int64]())::bigint[])::text
            """).one()
        let back = try row.decode(String.self, at: 0)
        let expected = "{" + texts.map { text -> String in
            let value = text ?? "<null here>"
            return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }.joined(separator: ",") + "}"
        #expect(back == expected)
        #expect(try row.decode(Int.self, at: 1) == texts.count)
        #expect(try row.decode(String.self, at: 2) == "{-9223372036854775808,-1,0,9223372036854775807}")
        #expect(try row.decode(String.self, at: 3) == "{-9223372036854775808,42}")
        #expect(try row.decode(String.self, at: 4) == "{-2147483648,2147483647}")
        #expect(try row.decode(String.self, at: 5) == "{t,f}")
        #expect(try row.decode(String.self, at: 6) == "{NULL,7}")
        #expect(try row.decode(String.self, at: 7) == #"{"\\x00ff","\\x"}"#)
        #expect(try row.decode(String.self, at: 8) == "{}")
    }

    @Test("arrays of int8, int4, bool, text and bytea are bound in binary, others as text; a cast to another element type is refused")
    func binaryArrayParameters() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let binary: [any PostgresEncodable] = [[Int64(1)], [Int64?.none], [Int32(1)], [true], ["a"], [Data()]]
        #expect(binary.allSatisfy { $0.postgresParameter.text == nil })
        let text: [any PostgresEncodable] = [[1], [Date(timeIntervalSince1970: 0)], [1.5], "a", Int64(1)]
        #expect(text.allSatisfy { $0.postgresParameter.text == $0.postgresText })
        #expect([1, 2].postgresParameter.text == "{1,2}")
        // The server checks a binary array's element type against the cast: no silent conversion.
        await #expect(throws: PostgresError.self) { try await database.query("SELECT (\([Int64(1)])::int[])::text").one() }
        await #expect(throws: PostgresError.self) { try await database.query("SELECT (\([Int32(1)])::bigint[])::text").one() }
        // Text cannot hold a NUL byte: refused by the server, not cut short.
        await #expect(throws: PostgresError.self) { try await database.query("SELECT (\(["a\u{0}b"])::text[])::text").one() }
        #expect(try await database.query("SELECT (\([Int64(-5), 7])::bigint[])::text").one().decode(String.self, at: 0) == "{-5,7}")
    }

    @Test("timestamps and bytea round-trip exactly through the server: written to the microsecond, read back the same")
    func timestampsAndByteaRoundTrip() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        var generator = SystemRandomNumberGenerator()
        // To the microsecond within 1970-2038 (further out, the Doubles of `Date` and of the
        // conversions no longer keep every microsecond apart), whole seconds from year 1 to 9998,
        // and the edges of days, leap days and 1970.
        var micros: [Int64] = (0..<2000).map { _ in Int64.random(in: 0...2_147_483_647_000_000, using: &generator) }
        micros += (0..<500).map { _ in Int64.random(in: -62_135_596_800...253_370_764_799, using: &generator) * 1_000_000 }
        micros += [0, -1, 1, 999_999, -999_999, 951_782_400_000_000, 951_868_799_999_999, -62_135_596_800_000_000,
                   -2_208_988_800_000_000, 1_790_000_000_000_001]
        let dates = micros.map { Date(timeIntervalSince1970: Double($0) / 1_000_000) }
        let blobs = (0..<200).map { n in Data((0..<n).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        let rows = try await database.query("""
            SELECT (extract(epoch FROM t) * 1000000)::bigint, t FROM unnest(\(dates)::timestamptz[]) WITH ORDINALITY AS u (t, n) ORDER BY n
            """)
        #expect(rows.count == dates.count)
        for (index, row) in rows.enumerated() {
            // What the server read is the date to the microsecond (a Double holds these exactly
            // enough for the rounding to land on the same microsecond), and what it wrote parses back.
            let expected = Int64((dates[index].timeIntervalSince1970 * 1_000_000).rounded())
            #expect(try row.decode(Int64.self, at: 0) == expected, "written: \(dates[index])")
            let back = try row.decode(Date.self, at: 1)
            #expect(Int64((back.timeIntervalSince1970 * 1_000_000).rounded()) == expected, "read back: \(back)")
        }
        let returned = try await database.query("SELECT b FROM unnest(\(blobs)::bytea[]) WITH ORDINALITY AS u (b, n) ORDER BY n")
            .map { try $0.decode(Data.self, at: 0) }
        #expect(returned == blobs)
        // A value that is not hex is an error, not a guess.
        let bad = try await database.query("SELECT '\\x0g'::text").one()
        #expect(throws: PostgresError.self) { try bad.decode(Data.self, at: 0) }
    }

    @Test("integers, doubles and booleans decode across their range; out of range or malformed is an error, NULL is nil")
    func scalarsDecode() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let row = try await database.query("""
            SELECT (-9223372036854775808)::bigint, 9223372036854775807::bigint, (-2147483648)::int, 0::int, '+12'::text,
                   '9223372036854775808'::text, '2147483648'::text, ''::text, '-'::text, '12a'::text, NULL::bigint,
                   'NaN'::float8, '-Infinity'::float8, 0.1::float8, true, false, '1.5e300'::float8
            """).one()
        #expect(try row.decode(Int64.self, at: 0) == Int64.min)
        #expect(try row.decode(Int64.self, at: 1) == Int64.max)
        #expect(try row.decode(Int32.self, at: 2) == Int32.min)
        #expect(try row.decode(Int.self, at: 3) == 0)
        #expect(try row.decode(Int.self, at: 4) == 12)
        #expect(throws: PostgresError.self) { try row.decode(Int64.self, at: 5) }
        #expect(throws: PostgresError.self) { try row.decode(Int32.self, at: 6) }
        #expect(try row.decode(Int64.self, at: 6) == 2_147_483_648)
        for column in 7...9 {
            #expect(throws: PostgresError.self) { try row.decode(Int.self, at: column) }
        }
        #expect(try row.decodeIfPresent(Int64.self, at: 10) == nil)
        #expect(throws: PostgresError.self) { try row.decode(Int64.self, at: 10) }
        #expect(try row.decode(Double.self, at: 11).isNaN)
        #expect(try row.decode(Double.self, at: 12) == -.infinity)
        #expect(try row.decode(Double.self, at: 13) == 0.1)
        #expect(try row.decode(Bool.self, at: 14) && !(try row.decode(Bool.self, at: 15)))
        #expect(try row.decode(Double.self, at: 16) == 1.5e300)
        #expect(throws: PostgresError.self) { try row.decode(Int.self, at: 17) }
    }

    @Test("interpolated values are bind parameters, so hostile strings round-trip unchanged")
    func valuesAreParameters() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let hostile = ["'; DROP TABLE x; --", "\\\"{},NULL", "emoji 🐧 and עברית", "NULL", ""]
        // The value is a bind parameter, not SQL text.
        let query: Query = "SELECT \(hostile[0])::text"
        #expect(query.sql == "SELECT $1::text" && query.parameters == [.text(hostile[0])], "\(query)")
        for value in hostile {
            #expect(try await database.query("SELECT \(value)::text").one().decode(String.self, at: 0) == value)
        }
        let array = try await database.query("SELECT array_length(\(hostile)::text[], 1), (\(hostile)::text[])[2]").one()
        #expect(try array.decode(Int.self, at: 0) == hostile.count)
        #expect(try array.decode(String.self, at: 1) == hostile[1])
        let optional: String? = nil
        #expect(try await database.query("SELECT \(optional as String?)::text IS NULL").one().decode(Bool.self, at: 0))
        let date = Date(timeIntervalSince1970: 1_790_000_000.123456)
        let back = try await database.query("SELECT \(date)::timestamptz").one().decode(Date.self, at: 0)
        #expect(abs(back.timeIntervalSince(date)) < 0.000_01)
        let bytes = Data([0, 1, 2, 255, 92])
        #expect(try await database.query("SELECT \(bytes)::bytea").one().decode(Data.self, at: 0) == bytes)
    }

    @Test("a spliced statement's parameters follow the outer ones; dollar quotes, text and names with `$` inside it stay as written")
    func fragmentsAreRenumbered() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let inner: Query = """
            SELECT \("b")::text AS x, \(2)::int AS y, $$cost $1$$::text AS z, $q$ $2 $q$::text AS v,
                   'it''s $9' AS w /* $3 */ -- $4
                   , $€1$ 微信 $5 $€1$::text AS u, '扣扣 $6' AS t, \(-9_000_000_000)::bigint AS s, 7 AS col$1, 8 AS a$b$
            """
        let outer: Query = "SELECT \("a")::text, \(1)::int, f.* FROM (\(fragment: inner)\n) f WHERE f.y > \(0)"
        #expect(outer.sql == """
            SELECT $1::text, $2::int, f.* FROM (SELECT $3::text AS x, $4::int AS y, $$cost $1$$::text AS z, $q$ $2 $q$::text AS v,
                   'it''s $9' AS w /* $3 */ -- $4
                   , $€1$ 微信 $5 $€1$::text AS u, '扣扣 $6' AS t, $5::bigint AS s, 7 AS col$1, 8 AS a$b$
            ) f WHERE f.y > $6
            """)
        #expect(outer.parameters.map(\.text) == ["a", "1", "b", "2", "-9000000000", "0"])
        let row = try await database.query(outer).one()
        #expect(try row.decode(String.self, at: 0) == "a" && row.decode(Int.self, at: 1) == 1)
        #expect(try row.decode(String.self, at: 2) == "b" && row.decode(Int.self, at: 3) == 2)
        #expect(try row.decode(String.self, at: 4) == "cost $1" && row.decode(String.self, at: 5) == " $2 ")
        #expect(try row.decode(String.self, at: 6) == "it's $9")
        #expect(try row.decode(String.self, at: 7) == " 微信 $5 " && row.decode(String.self, at: 8) == "扣扣 $6")
        #expect(try row.decode(Int64.self, at: 9) == -9_000_000_000)
        #expect(try row.decode(Int.self, at: 10) == 7 && row.decode(Int.self, at: 11) == 8)
    }

    @Test("a `$` inside a name is left alone, and a placeholder right after a closing dollar quote is renumbered")
    func placeholdersBesideNamesAndDollarQuotes() {
        // Neither statement is run: a dollar-quoted string beside a placeholder is not valid SQL.
        let inner: Query = "SELECT col$1, x$y$2, $$q$$\(5), \(6)"
        let outer: Query = "SELECT \(1), (\(fragment: inner))"
        #expect(outer.sql == "SELECT $1, (SELECT col$1, x$y$2, $$q$$$2, $3)")
    }

    @Test("a transaction that throws is rolled back")
    func transactionRollsBack() async throws {
        struct Boom: Error {}
        // The closure's type is spelled out: beginning with `#expect(throws:)`, it was inferred as not throwing.
        try await Self.withTable("tx", "n int") { (database: Database, table: String) async throws in
            await #expect(throws: Boom.self) {
                try await database.transaction { tx in
                    try tx.execute(Query(sql: "INSERT INTO \(table) VALUES (1)", binds: []))
                    throw Boom()
                }
            }
            #expect(try await database.query(Query(sql: "SELECT count(*) FROM \(table)", binds: [])).one().decode(Int.self, at: 0) == 0)
        }
    }

    @Test("queued statements run, in order, with the COMMIT, and BEGIN travels with the first statement")
    func queuedStatementsRunAtCommit() async throws {
        try await Self.withTable("q", "n int PRIMARY KEY, note text") { database, table in
            let seen = try await database.transaction { tx in
                // The first statement starts the transaction: the queued ones below see its row.
                try tx.execute(Query(sql: "INSERT INTO \(table) VALUES (1, 'first')", binds: []))
                tx.queuePrepared(Query(sql: "UPDATE \(table) SET note = note || $1", binds: [" second"]))
                tx.queuePrepared(Query(sql: "INSERT INTO \(table) SELECT n + 1, note || $1 FROM \(table)", binds: [" third"]))
                // Queued statements have not run yet.
                return try tx.query(Query(sql: "SELECT count(*) FROM \(table)", binds: [])).one().decode(Int.self, at: 0)
            }
            // The SELECT above went out after the two queued statements, in the same round trip.
            #expect(seen == 2)
            let notes = try await database.query(Query(sql: "SELECT note FROM \(table) ORDER BY n", binds: [])).map { try $0.decode(String.self, at: 0) }
            #expect(notes == ["first second", "first second third"])
            // Nothing queued is left behind: the connection takes ordinary statements again.
            #expect(try await database.query(Query(sql: "SELECT 7", binds: [])).one().decode(Int.self, at: 0) == 7)
        }
    }

    @Test("several statements in one round trip each return their rows, after the queued ones; an error stops the rest")
    func severalStatementsReturnTheirRows() async throws {
        try await Self.withTable("m", "n int PRIMARY KEY") { database, table in
            let counts = try await database.transaction { tx in
                tx.queuePrepared(Query(sql: "INSERT INTO \(table) VALUES (1)", binds: []))
                return try tx.queryPrepared([
                    Query(sql: "INSERT INTO \(table) VALUES (2), (3) RETURNING n", binds: []),
                    Query(sql: "SELECT count(*) FROM \(table) WHERE n > $1", binds: ["0"]),
                    Query(sql: "SELECT n FROM \(table) WHERE n > 5", binds: []),
                ]).map { result in try result.map { try $0.decode(Int.self, at: 0) } }
            }
            #expect(counts == [[2, 3], [3], []])
            // The statement that fails is reported, and the one after it never runs.
            let error = await #expect(throws: PostgresError.self) {
                try await database.transaction { tx in
                    try tx.queryPrepared([
                        Query(sql: "INSERT INTO \(table) VALUES (4)", binds: []),
                        Query(sql: "INSERT INTO \(table) VALUES (1)", binds: []),
                        Query(sql: "INSERT INTO \(table) VALUES (5)", binds: []),
                    ])
                }
            }
            #expect(error?.sqlState == .uniqueViolation)
            #expect(try await database.query(Query(sql: "SELECT array_agg(n ORDER BY n)::text FROM \(table)", binds: [])).one()
                .decode(String.self, at: 0) == "{1,2,3}")
        }
    }

    @Test("an error in a queued statement fails the commit: nothing of the transaction stays, and the session is reusable")
    func queuedStatementErrorRollsBack() async throws {
        try await Self.withTable("qe", "n int PRIMARY KEY") { database, table in
            let pid = try await database.query("SELECT pg_backend_pid()").one().decode(Int.self, at: 0)
            let error = await #expect(throws: PostgresError.self) {
                try await database.transaction { tx in
                    try tx.execute(Query(sql: "INSERT INTO \(table) VALUES (1)", binds: []))
                    tx.queuePrepared(Query(sql: "INSERT INTO \(table) VALUES (2)", binds: []))
                    tx.queuePrepared(Query(sql: "INSERT INTO \(table) VALUES (1)", binds: []))  // duplicate key
                    tx.queuePrepared(Query(sql: "INSERT INTO \(table) VALUES (3)", binds: []))
                }
            }
            #expect(error?.sqlState == .uniqueViolation)
            #expect(error?.query?.contains("VALUES (1)") == true)
            #expect(try await database.query(Query(sql: "SELECT count(*) FROM \(table)", binds: [])).one().decode(Int.self, at: 0) == 0)
            // Same session (one connection), back to normal.
            #expect(try await database.query("SELECT pg_backend_pid()").one().decode(Int.self, at: 0) == pid)
            _ = try await database.transaction { tx in try tx.execute(Query(sql: "INSERT INTO \(table) VALUES (5)", binds: [])) }
            #expect(try await database.query(Query(sql: "SELECT count(*) FROM \(table)", binds: [])).one().decode(Int.self, at: 0) == 1)
        }
    }

    @Test("a first statement that fails leaves no transaction open, and a body that sends nothing sends no BEGIN")
    func firstStatementFailure() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        await #expect(throws: PostgresError.self) {
            try await database.transaction { tx in try tx.execute(Query(sql: "SELECT 1 / $1::int", binds: ["0"])) }
        }
        // A body that throws before any statement: nothing was sent, nothing to roll back.
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await database.transaction { _ in throw Boom() }
        }
        let status = try await database.withConnection { connection in connection.inTransaction }
        #expect(status == false)
        #expect(try await database.query("SELECT 1").one().decode(Int.self, at: 0) == 1)
    }

    // Bounded: a listener that never connects, or a notification never delivered, fails the test
    // instead of hanging the run.
    @Test("LISTEN delivers NOTIFY to a dedicated session", .timeLimit(.minutes(1)))
    func listenNotify() async throws {
        let channel = "test_\(UUID().uuidString.prefix(8).lowercased())"
        let received = AsyncStream<PostgresNotification>.makeStream()
        let connected = AsyncStream<Void>.makeStream()
        let listener = NotificationListener(config: ConnectionConfig(conninfo: try Self.url), channels: [channel]) { event in
            switch event {
            case .notification(let n): received.continuation.yield(n)
            case .reconnected: connected.continuation.yield()
            case .failed: break
            }
        }
        listener.start()
        defer { listener.stop() }
        for await _ in connected.stream { break }
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        try await database.execute("SELECT pg_notify(\(channel), 'hello')")
        var iterator = received.stream.makeAsyncIterator()
        let note = await iterator.next()
        #expect(note?.channel == channel)
        #expect(note?.payload == "hello")
    }

    @Test("a listener whose answer fails at once every time waits longer before each new session, and reconnect() moves it to a new one")
    func listenerBacksOffAndReconnects() async throws {
        let channel = "test_\(UUID().uuidString.prefix(8).lowercased())"
        let sessions = Mutex(0)
        let refusing = Atomic<Bool>(true)
        let listener = NotificationListener(config: ConnectionConfig(conninfo: try Self.url), channels: [channel], answer: { _ in
            // As a claim on a server that only reads: no connection problem, yet the session is no use.
            if refusing.load(ordering: .relaxed) {
                throw PostgresError(code: .queryFailed, sqlState: .readOnlySQLTransaction, message: "read-only")
            }
        }) { event in
            if case .reconnected = event { sessions.withLock { $0 += 1 } }
        }
        listener.start()
        defer { listener.stop() }
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        // A notification every 50 ms for 3 s: each session lives until the first one.
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(3) {
            try await database.execute("SELECT pg_notify(\(channel), '')")
            try await Task.sleep(for: .milliseconds(50))
        }
        // 0.1, 0.2, 0.4, 0.8, 1.6 s between sessions: six at most in 3 s (twenty and more when
        // every new session started the wait at 0.1 s again).
        let refused = sessions.withLock { $0 }
        #expect(refused >= 1 && refused <= 7, "\(refused) sessions in 3 s")
        // Asked to, a working listener leaves its session for a new one within a second or two.
        refusing.store(false, ordering: .relaxed)
        try await Task.sleep(for: .seconds(6))  // the backoff of 5 s at most runs out
        let before = sessions.withLock { $0 }
        listener.reconnect()
        let asked = ContinuousClock.now
        while sessions.withLock({ $0 }) == before, ContinuousClock.now - asked < .seconds(30) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(sessions.withLock { $0 } == before + 1)
    }

    @Test("a wait for notifications ends as soon as its wake-up descriptor is readable, not at its timeout")
    func waitEndsOnWakeUp() throws {
        let connection = try Connection.connect(ConnectionConfig(conninfo: try Self.url))
        let channel = "test_wake_\(UUID().uuidString.prefix(8).lowercased())"
        try connection.listen(channel)
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { for end in ends { close(end) } }
        var byte: UInt8 = 1
        #expect(write(ends[1], &byte, 1) == 1)
        // Readable before the wait: it returns at once, with nothing, instead of after a minute.
        let started = ContinuousClock.now
        #expect(try connection.waitForNotifications(timeout: 60, wakeUp: ends[0]).isEmpty)
        #expect(ContinuousClock.now - started < .seconds(30))
        // A notification that had arrived is still returned (a session hears its own NOTIFY).
        try connection.execute("SELECT pg_notify(\(channel), 'x')")
        let notes = try connection.waitForNotifications(timeout: 60, wakeUp: ends[0])
        #expect(notes.map(\.payload) == ["x"])
    }

    @Test("a bad connection string fails with connectionFailed, not a crash")
    func badConnection() async throws {
        let database = Database(config: ConnectionConfig(conninfo: "host=127.0.0.1 port=1 connect_timeout=2"), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        await #expect(throws: PostgresError.self) { try await database.execute("SELECT 1") }
    }
}

@Suite("connection errors: configuration or outage")
struct ConnectionErrorTests {
    @Test("settings libpq refuses and servers that turn a connection away are configuration errors; outages are not")
    func refusedOrUnreachable() {
        let refused = [
            #"invalid URI query parameter: "foo""#,
            #"invalid integer value "badport" for connection option "port""#,
            #"invalid sslmode value: "bogus""#,
            #"missing "=" after "x" in connection info string"#,
            #"connection to server at "127.0.0.1", port 5432 failed: server does not support SSL, but SSL was required"#,
            #"connection to server at "127.0.0.1", port 5432 failed: fe_sendauth: no password supplied"#,
            "channel binding required, but server authenticated client without channel binding",
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "x""#,
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "x" does not exist"#,
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "x" is not permitted to log in"#,
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  permission denied for database "x""#,
        ]
        let unreachable = [
            #"connection to server at "127.0.0.1", port 1 failed: Connection refused"#,
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is starting up"#,
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is shutting down"#,
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  sorry, too many clients already"#,
            #"connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "x" is not currently accepting connections"#,
            #"could not translate host name "db.example" to address: Temporary failure in name resolution"#,
        ]
        for message in refused {
            #expect(PostgresError(code: .connectionFailed, message: message).isRefusedConnection, "\(message)")
        }
        for message in unreachable {
            #expect(!PostgresError(code: .connectionFailed, message: message).isRefusedConnection, "\(message)")
        }
        // A lost connection is never a refusal, whatever it says.
        #expect(!PostgresError(code: .connectionLost, message: "FATAL:  role \"x\" does not exist").isRefusedConnection)
    }

    @Test("a timeout or keepalive setting libpq cannot read is a configuration error, though libpq names the server before it",
          arguments: ["connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"])
    func unreadableTimeoutSetting(name: String) throws {
        let url = try PostgresTests.url
        do {
            _ = try Connection.connect(ConnectionConfig(conninfo: url + (url.contains("?") ? "&" : "?") + "\(name)=abc"))
            Issue.record("\(name)=abc was accepted")
        } catch let error as PostgresError {
            #expect(error.isRefusedConnection, "\(error.message)")
        }
    }
}
