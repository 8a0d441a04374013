import Foundation
import Synchronization
import Postgres
import Testing

/// The pool's connect backoff (`serve` uses it while the database is down), against a socket that
/// accepts and closes at once: no PostgreSQL is needed to count the attempts.
@Suite("connect backoff")
struct ConnectBackoffTests {
    @Test("with a connect backoff, calls while the server refuses get the last failure without a new attempt each")
    func connectBackoff() async throws {
        // A "server" that accepts and closes at once, counting the attempts.
        let (listener, port) = try RawHTTP.listener(backlog: 64)
        let attempts = Counter()
        let acceptorEnded = DispatchSemaphore(value: 0)
        let acceptor = Thread {
            defer { acceptorEnded.signal() }
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                attempts.add()
                close(client)
            }
        }
        acceptor.start()
        // The listener is closed only once the acceptor has stopped using it: its number may go to
        // another test's socket or pipe as soon as it is closed.
        defer {
            shutdown(listener, Int32(SHUT_RDWR))
            acceptorEnded.wait()
            close(listener)
        }
        let conninfo = "postgresql://nobody@127.0.0.1:\(port)/none?connect_timeout=2&sslmode=disable"
        for backoff in [Duration?.none, .seconds(1)] {
            let database = Database(config: ConnectionConfig(conninfo: conninfo), maxConnections: 1, connectBackoff: backoff)
            let before = attempts.value
            let started = ContinuousClock.now
            for _ in 0..<20 {
                await #expect(throws: PostgresError.self) { try await database.query("SELECT 1") }
            }
            let took = (ContinuousClock.now - started).components
            let elapsed = Double(took.seconds) + Double(took.attoseconds) / 1e18
            await database.shutdown()
            let made = attempts.value - before
            // Without a backoff every call connects; with one, 20 calls in a row make a few at most.
            if backoff == nil {
                #expect(made == 20, "\(made) attempts")
            } else {
                #expect(made <= Self.allowedAttempts(within: elapsed), "\(made) attempts in \(elapsed) s")
            }
        }
    }

    @Test("a session that found the database read-only is replaced, but with a connect backoff no faster than after a failure to connect")
    func readOnlyReplacedWithBackoff() async throws {
        try await TestDatabase.with { db in
            try await db.database.execute(Query(sql: "ALTER DATABASE \(db.name) SET default_transaction_read_only = on", binds: []))
            for backoff in [Duration?.none, .seconds(1)] {
                let database = Database(config: ConnectionConfig(conninfo: db.url), maxConnections: 1, connectBackoff: backoff)
                let sessions = Mutex<Set<Int32>>([])
                let started = ContinuousClock.now
                for _ in 0..<20 {
                    await #expect(throws: PostgresError.self) {
                        try await database.withConnection { connection in
                            let pid = try connection.query("SELECT pg_backend_pid()").one().decode(Int32.self, at: 0)
                            sessions.withLock { _ = $0.insert(pid) }
                            try connection.execute("CREATE TABLE read_only_probe (a int)")
                        }
                    }
                }
                let took = (ContinuousClock.now - started).components
                let elapsed = Double(took.seconds) + Double(took.attoseconds) / 1e18
                await database.shutdown()
                let made = sessions.withLock { $0.count }
                if backoff == nil {
                    // Each call's session said read-only and was dropped: each call made a new one.
                    #expect(made == 20, "\(made) sessions")
                } else {
                    // As after failures to connect.
                    #expect(made <= Self.allowedAttempts(within: elapsed), "\(made) sessions in \(elapsed) s")
                }
            }
        }
    }

    /// How many connection attempts a backoff of 50, 100, 200 ms... (up to 1 s) between them lets
    /// through in `elapsed` seconds (a loaded machine may take seconds over the calls), and never
    /// fewer than 5.
    static func allowedAttempts(within elapsed: Double) -> Int {
        var allowed = 1
        var delays = 0.0
        var delay = 0.05
        while delays + delay <= elapsed {
            delays += delay
            allowed += 1
            delay = min(delay * 2, 1)
        }
        return max(5, allowed)
    }

    /// A count shared with the acceptor thread.
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func add() { lock.withLock { count += 1 } }
        var value: Int { lock.withLock { count } }
    }
}
