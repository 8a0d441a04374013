import Foundation
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

    @Test("the pool reuses its connections")
    func poolReusesConnections() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        var pids = Set<Int>()
        for _ in 0..<20 { pids.insert(try await database.query("SELECT pg_backend_pid()").one().decode(Int.self, at: 0)) }
        #expect(pids.count == 1)
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

    @Test("interpolated values are bind parameters, so hostile strings round-trip unchanged")
    func valuesAreParameters() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let hostile = ["'; DROP TABLE x; --", "\\\"{},NULL", "emoji 🐧 and עברית", "NULL", ""]
        for value in hostile {
            #expect(try await database.query("SELECT \(value)::text").one().decode(String.self, at: 0) == value)
        }
        let array = try await database.query("SELECT array_length(\(hostile)::text[], 1), (\(hostile)::text[])[2]").one()
        #expect(try array.decode(Int.self, at: 0) == hostile.count)
        #expect(try array.decode(String.self, at: 1) == hostile[1])
        let optional: String? = nil
        #expect(try await database.query("SELECT \(optional)::text IS NULL").one().decode(Bool.self, at: 0))
        let date = Date(timeIntervalSince1970: 1_790_000_000.123456)
        let back = try await database.query("SELECT \(date)::timestamptz").one().decode(Date.self, at: 0)
        #expect(abs(back.timeIntervalSince(date)) < 0.000_01)
        let bytes = Data([0, 1, 2, 255, 92])
        #expect(try await database.query("SELECT \(bytes)::bytea").one().decode(Data.self, at: 0) == bytes)
    }

    @Test("a spliced statement's parameters follow the outer ones; dollar quotes and text inside it stay as written")
    func fragmentsAreRenumbered() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let inner: Query = """
            SELECT \("b")::text AS x, \(2)::int AS y, $$cost $1$$::text AS z, $q$ $2 $q$::text AS v,
                   'it''s $9' AS w /* $3 */ -- $4
            """
        let outer: Query = "SELECT \("a")::text, \(1)::int, f.* FROM (\(fragment: inner)\n) f WHERE f.y > \(0)"
        #expect(outer.sql == """
            SELECT $1::text, $2::int, f.* FROM (SELECT $3::text AS x, $4::int AS y, $$cost $1$$::text AS z, $q$ $2 $q$::text AS v,
                   'it''s $9' AS w /* $3 */ -- $4
            ) f WHERE f.y > $5
            """)
        #expect(outer.binds == ["a", "1", "b", "2", "0"])
        let row = try await database.query(outer).one()
        #expect(try row.decode(String.self, at: 0) == "a" && row.decode(Int.self, at: 1) == 1)
        #expect(try row.decode(String.self, at: 2) == "b" && row.decode(Int.self, at: 3) == 2)
        #expect(try row.decode(String.self, at: 4) == "cost $1" && row.decode(String.self, at: 5) == " $2 ")
        #expect(try row.decode(String.self, at: 6) == "it's $9")
    }

    @Test("a transaction that throws is rolled back")
    func transactionRollsBack() async throws {
        let database = Database(config: ConnectionConfig(conninfo: try Self.url), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        let table = "tx_\(UUID().uuidString.prefix(8).lowercased())"
        try await database.execute(Query(sql: "CREATE TABLE \(table) (n int)", binds: []))
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await database.transaction { tx in
                try tx.execute(Query(sql: "INSERT INTO \(table) VALUES (1)", binds: []))
                throw Boom()
            }
        }
        #expect(try await database.query(Query(sql: "SELECT count(*) FROM \(table)", binds: [])).one().decode(Int.self, at: 0) == 0)
        try await database.execute(Query(sql: "DROP TABLE \(table)", binds: []))
    }

    @Test("LISTEN delivers NOTIFY to a dedicated session")
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

    @Test("a bad connection string fails with connectionFailed, not a crash")
    func badConnection() async throws {
        let database = Database(config: ConnectionConfig(conninfo: "host=127.0.0.1 port=1 connect_timeout=2"), maxConnections: 1)
        defer { Task { await database.shutdown() } }
        await #expect(throws: PostgresError.self) { try await database.execute("SELECT 1") }
    }
}
