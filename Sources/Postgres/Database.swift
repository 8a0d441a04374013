import Dispatch
import NIOPosix
import Synchronization

/// A pool of connections whose blocking libpq calls run on threads of their own.
///
/// Work is handed to an `NIOThreadPool` with one thread per connection, so a slow query blocks
/// only its own thread and never Swift concurrency's cooperative pool (2 threads on 2 cores).
/// Each closure gets a connection for its whole duration: a transaction is one hop.
public final class Database: Sendable {
    /// The configuration new connections are opened with.
    public let config: ConnectionConfig
    /// The most connections (and threads) this pool opens.
    public let maxConnections: Int
    private let threads: NIOThreadPool
    private let idle: Mutex<[Slot]>
    private let connectedOnce = Atomic<Bool>(false)
    /// With `connectBackoff`: the last failure to connect, and until when new attempts fail with it.
    private let refusal = Mutex<(error: PostgresError, until: ContinuousClock.Instant, delay: Duration)?>(nil)
    private let connectBackoff: Duration?

    /// Whether a connection of this pool ever opened: a failure after that is an outage, not the
    /// settings.
    public var hasConnected: Bool { connectedOnce.load(ordering: .relaxed) }

    /// Moves a connection between threads; only one thread uses it at a time.
    private struct Slot: @unchecked Sendable {
        let connection: Connection
    }

    /// Creates a pool; connections open lazily on first use. With `connectBackoff`, a failure to
    /// connect is given back to the calls that follow, without a new attempt, for 50 ms, doubling
    /// with each failure in a row up to `connectBackoff`: a server whose every request opens a
    /// connection would otherwise try thousands of connections a second while the database is down.
    public init(config: ConnectionConfig, maxConnections: Int = 4, connectBackoff: Duration? = nil) {
        precondition(maxConnections > 0, "a pool needs at least one connection")
        self.config = config
        self.maxConnections = maxConnections
        self.connectBackoff = connectBackoff
        self.threads = NIOThreadPool(numberOfThreads: maxConnections)
        self.idle = Mutex([])
        threads.start()
    }

    /// Runs `body` with a connection on a pool thread. A connection that broke is dropped, so the
    /// next call reconnects.
    /// Under a `DatabaseDeadline`, waiting (for a thread, then for the server) ends at the deadline
    /// with `DatabaseDeadlinePassed`; a call that has not started by then never starts.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let work: @Sendable () throws -> T = { [self] in
            // At most `maxConnections` closures run at once, so taking from `idle` never starves.
            // An idle connection the server closed meanwhile (a restart) is replaced, not used.
            var reused = idle.withLock { $0.popLast() }?.connection
            if let connection = reused, connection.isStale { reused = nil }
            let connection: Connection
            if let reused {
                connection = reused
            } else {
                connection = try connect()
            }
            do {
                let value = try body(connection)
                release(connection)
                return value
            } catch {
                // A session that found the database read-only keeps the read-only default it
                // started with after the database takes writes again (`default_transaction_read_only`
                // reset, a standby promoted): a new one reads the setting anew, or (with several
                // hosts and target_session_attrs=read-write) reaches the primary.
                if let error = error as? PostgresError, error.sqlState == .readOnlySQLTransaction {
                    // With `connectBackoff`, the sessions that replace it are opened no faster than
                    // after a failure to connect: a request a session would cost a struggling server.
                    refuseNewConnections(after: error)
                } else {
                    release(connection)
                }
                throw error
            }
        }
        if let deadline = DatabaseDeadline.current { return try await run(work, before: deadline) }
        do {
            return try await threads.runIfActive(work)
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw Self.shutDown
        }
    }

    private static let shutDown = PostgresError(code: .shutDown, message: "the database pool is shut down")

    /// `work` on a pool thread, waited for until `deadline` (`DeadlineSweeper`), without a task or
    /// a timer of its own.
    private func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T, before deadline: ContinuousClock.Instant) async throws -> T {
        guard ContinuousClock.now < deadline else { throw DatabaseDeadlinePassed() }
        return try await withCheckedThrowingContinuation { continuation in
            let once = ResumeOnce(continuation)
            let timer = DeadlineSweeper.shared.add(deadline: deadline) { once.resume(with: .failure(DatabaseDeadlinePassed())) }
            threads.submit { state in
                guard case .active = state else {
                    DeadlineSweeper.shared.cancel(timer)
                    once.resume(with: .failure(Self.shutDown))
                    return
                }
                // Its caller stopped waiting while it waited for a thread, or the deadline passed
                // since (the sweeper looks only every `granularity`): too late to start.
                guard !once.isResumed else { return }
                guard ContinuousClock.now < deadline else {
                    DeadlineSweeper.shared.cancel(timer)
                    once.resume(with: .failure(DatabaseDeadlinePassed()))
                    return
                }
                let result = Result(catching: work)
                DeadlineSweeper.shared.cancel(timer)
                once.resume(with: result)
            }
        }
    }

    /// Opens a connection, or (with `connectBackoff`) gives back the last failure while its delay lasts.
    private func connect() throws -> Connection {
        // Without a backoff nothing is ever refused, and the clearing below costs one lock per new connection.
        if let refused = refusal.withLock({ $0 }), ContinuousClock.now < refused.until { throw refused.error }
        do {
            let connection = try Connection.connect(config)
            connectedOnce.store(true, ordering: .relaxed)
            // The server is reachable again. A delay that came of read-only sessions stays (or every
            // new session would start it again at its shortest); it lapses once none comes for a while.
            refusal.withLock { last in
                if last?.error.sqlState != .readOnlySQLTransaction { last = nil }
            }
            return connection
        } catch let error as PostgresError where error.isConnectionProblem {
            refuseNewConnections(after: error)
            throw error
        }
    }

    /// With `connectBackoff`: new connections fail with `error` for a while, which doubles with each
    /// failure in a row up to `connectBackoff`.
    private func refuseNewConnections(after error: PostgresError) {
        guard let cap = connectBackoff else { return }
        let now = ContinuousClock.now
        refusal.withLock { last in
            // In a row: within twice the longest delay of the last one's end.
            let delay = last.flatMap { now - $0.until < cap * 2 ? min($0.delay * 2, cap) : nil } ?? min(.milliseconds(50), cap)
            last = (error, now + delay, delay)
        }
    }

    /// Runs `body` inside a transaction on a pool thread.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await withConnection { connection in try connection.transaction(body) }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    public func query(_ query: Query) async throws -> QueryResult {
        try await withConnection { connection in try connection.query(query) }
    }

    /// Runs one statement and returns the number of rows it affected.
    @discardableResult
    public func execute(_ query: Query) async throws -> Int {
        try await withConnection { connection in try connection.execute(query) }
    }

    /// Closes idle connections and stops the threads.
    public func shutdown() async {
        idle.withLock { $0.removeAll() }
        try? await threads.shutdownGracefully()
    }

    /// Closes the pool without waiting for the calls still running on it (one blocked on a
    /// database that does not answer goes on until the process exits): a later `shutdown` then
    /// returns at once.
    public func abandon() {
        idle.withLock { $0.removeAll() }
        threads.shutdownGracefully(queue: .global()) { _ in }
    }

    /// Closes the pool like `shutdown()`, waiting at most `limit` for calls still running on it.
    /// False when one still is: a call blocked on a database that stopped answering goes on until
    /// it answers or the process exits, and must not keep a stopping process alive.
    public func shutdown(waitingAtMost limit: Duration) async -> Bool {
        (try? await withDeadline(limit) { await self.shutdown() }) != nil
    }

    private func release(_ connection: Connection) {
        // A broken connection, or one left inside a transaction, is not safe to hand out again.
        guard !connection.isBroken, !connection.inTransaction else { return }
        let slot = Slot(connection: connection)
        idle.withLock { $0.append(slot) }
    }
}
