import CLibPQ
import Foundation

/// Where and how to connect: a libpq conninfo string or URI (empty means libpq's `PG*` defaults),
/// plus session settings applied right after every connect.
public struct ConnectionConfig: Sendable {
    /// A conninfo string (`host=... dbname=...`) or URI (`postgresql://...`); empty uses `PG*` variables.
    public var conninfo: String
    /// The `application_name` PostgreSQL shows in `pg_stat_activity` unless the conninfo names one.
    public var applicationName: String
    /// `SET`-able parameters applied after each connect (e.g. `idle_in_transaction_session_timeout`).
    public var settings: [(String, String)]

    /// Creates a configuration.
    public init(conninfo: String, applicationName: String = "tipline", settings: [(String, String)] = []) {
        self.conninfo = conninfo
        self.applicationName = applicationName
        self.settings = settings
    }
}

/// A notification received on a LISTEN channel.
public struct PostgresNotification: Sendable, Equatable {
    /// The channel name.
    public var channel: String
    /// The payload (may be empty).
    public var payload: String
    /// The backend process that sent it.
    public var senderPID: Int32
}

/// A message the server sent beside a statement's result (`RAISE NOTICE`, the `WARNING` of a
/// `GRANT` that granted nothing): not an error, and lost unless someone shows it.
public struct PostgresNotice: Sendable, Equatable, CustomStringConvertible {
    /// `NOTICE`, `WARNING`, `INFO`, ... (the server's untranslated word).
    public var severity: String
    /// The primary message.
    public var message: String
    /// The server's DETAIL field, if any.
    public var detail: String?
    /// The server's HINT field, if any.
    public var hint: String?

    /// Creates a notice.
    public init(severity: String, message: String, detail: String? = nil, hint: String? = nil) {
        self.severity = severity
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    /// `SEVERITY: message`, then `DETAIL:` and `HINT:` when there are any, as psql shows them.
    public var description: String {
        var text = "\(severity): \(message)"
        if let detail { text += " (DETAIL: \(detail))" }
        if let hint { text += " (HINT: \(hint))" }
        return text
    }
}

/// The notices a connection received and nobody has taken yet, at most `limit` of them (a
/// session that hears one per statement must not grow without bound).
private final class NoticeInbox {
    static let limit = 100
    var notices: [PostgresNotice] = []
    var dropped = 0

    /// libpq's notice receiver: called on the connection's own thread, inside the libpq call that
    /// read the notice, with the inbox as its argument.
    static let receiver: PQnoticeReceiver = { argument, result in
        guard let argument, let result else { return }
        let inbox = Unmanaged<NoticeInbox>.fromOpaque(argument).takeUnretainedValue()
        guard inbox.notices.count < limit else {
            inbox.dropped += 1
            return
        }
        let field = { (code: Character) -> String? in
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        inbox.notices.append(PostgresNotice(
            severity: field("V") ?? field("S") ?? "NOTICE",
            message: field("M") ?? "", detail: field("D"), hint: field("H")))
    }
}

/// One PostgreSQL session. Every libpq call in Tipline lives in this file.
///
/// Not Sendable: a connection belongs to one thread at a time. Its calls block, so it is only ever
/// used on threads of its own (see `Database`), never on Swift concurrency's cooperative pool.
public final class Connection {
    private let handle: OpaquePointer
    /// Prepared statement names, keyed by SQL text.
    private var prepared: [String: String] = [:]
    /// Statements whose results nobody reads (a transaction's `BEGIN`, `queuePrepared(_:)`), held back to
    /// travel with the next statement in one round trip (libpq pipeline mode).
    private var queued: [(query: Query, prepare: Bool)] = []
    /// Set when a pipeline's results came back out of step: the session can no longer be trusted.
    private var desynchronized = false
    /// Notices received and not yet taken (`takeNotices()`). Outlives `handle`: `deinit` finishes
    /// the connection before the stored properties go.
    private let inbox = NoticeInbox()

    private init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQfinish(handle)
    }

    /// libpq parameters given before the conninfo, so that the conninfo (or URI) overrides any of
    /// them. Without the TCP ones, a server that vanishes without a word (a network path that drops
    /// packets silently) would leave a call waiting until the kernel gives up, two hours on Linux:
    /// with them a connection whose peer stops answering fails after about 30 seconds, whether it
    /// is idle (keepalive probes, every 5 s after 10 s of silence) or has data unacknowledged
    /// (`tcp_user_timeout`). They do nothing on a Unix socket.
    public static let defaultParameters: [(String, String)] = [
        ("connect_timeout", "10"),
        ("keepalives", "1"),
        ("keepalives_idle", "10"),
        ("keepalives_interval", "5"),
        ("keepalives_count", "4"),
        ("tcp_user_timeout", "30000"),
    ]

    /// Opens a connection and applies the session settings. Blocks.
    public static func connect(_ config: ConnectionConfig) throws -> Connection {
        // Keywords are applied in order and the last one set wins: defaults first, then the
        // conninfo, whose own values (e.g. `connect_timeout=3`) take precedence. PGCONNECT_TIMEOUT
        // in the environment is honoured too.
        let defaults = defaultParameters.filter { name, _ in
            name != "connect_timeout" || ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil
        }
        let keywords = defaults.map(\.0) + ["fallback_application_name", "dbname"]
        let values = defaults.map(\.1) + [config.applicationName, config.conninfo]
        let handle = withCStrings(keywords) { keywordPointers in
            withCStrings(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = errorMessage(handle)
            PQfinish(handle)
            throw PostgresError(code: .connectionFailed, message: message)
        }
        // Notices would go to stderr by default, in the middle of a command's output: they are
        // kept for whoever asks (`tipline migrate` shows its migrations' own).
        let connection = Connection(handle: handle)
        PQsetNoticeReceiver(handle, NoticeInbox.receiver, Unmanaged.passUnretained(connection.inbox).toOpaque())
        // Every setting in one statement, one round trip, applied in order (a worker has seven).
        let names = ["TimeZone"] + config.settings.map(\.0)
        let settings = ["UTC"] + config.settings.map(\.1)
        try connection.execute("""
            SELECT set_config(s.name, s.value, false) FROM unnest(\(names)::text[], \(settings)::text[]) WITH ORDINALITY AS s (name, value, n)
             ORDER BY s.n
            """)
        return connection
    }

    /// True once libpq has seen the connection fail; such a connection must be discarded.
    public var isBroken: Bool {
        desynchronized || PQstatus(handle) != CONNECTION_OK
    }

    /// True when an idle connection is not safe to use: broken, or the server has sent something
    /// since its last reply, which an idle session not listening for notifications only does when
    /// it ends the session (a restart, `pg_terminate_backend`, an idle timeout: an error message and
    /// the end of the stream). Cheap (one `poll` with no wait); a pool asks before handing out an
    /// idle connection, so that the first request after a restart does not fail on a dead one.
    public var isStale: Bool {
        if isBroken { return true }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) != 0
    }

    /// True while a transaction block is open (or failed and not yet rolled back).
    public var inTransaction: Bool {
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// The notices the server sent since the last call, oldest first; when more came than are
    /// kept, a last one says how many were dropped.
    public func takeNotices() -> [PostgresNotice] {
        var notices = inbox.notices
        if inbox.dropped > 0 {
            notices.append(PostgresNotice(severity: "NOTICE", message: "\(inbox.dropped) more notices were not kept"))
        }
        inbox.notices = []
        inbox.dropped = 0
        return notices
    }

    /// The server process id of this session.
    public var backendPID: Int32 {
        PQbackendPID(handle)
    }

    /// The value libpq connected with for a connection parameter (`keepalives_idle`, ...), if set.
    public func parameter(_ keyword: String) -> String? {
        guard let options = PQconninfo(handle) else { return nil }
        defer { PQconninfoFree(options) }
        var option = options
        while let name = option.pointee.keyword {
            if String(cString: name) == keyword {
                return option.pointee.val.map { String(cString: $0) }
            }
            option += 1
        }
        return nil
    }

    /// Runs a statement and returns its rows. Blocks.
    @discardableResult
    public func query(_ query: Query) throws -> QueryResult {
        let result = try run(query, prepare: false)
        defer { PQclear(result) }
        return Self.copy(result)
    }

    /// Runs a statement as a named prepared statement (prepared once per session). Blocks.
    @discardableResult
    public func queryPrepared(_ query: Query) throws -> QueryResult {
        let result = try run(query, prepare: true)
        defer { PQclear(result) }
        return Self.copy(result)
    }

    /// Runs several statements (each prepared once per session) in one round trip, after any queued
    /// ones, and returns each one's rows, in order. The first error of any of them is thrown, and the
    /// statements after it do not run. Blocks.
    public func queryPrepared(_ queries: [Query]) throws -> [QueryResult] {
        precondition(!queries.isEmpty, "no statements to run")
        let results = try runQueued(then: queries.map { ($0, true) })
        defer { results.forEach { PQclear($0) } }
        return results.map { Self.copy($0) }
    }

    /// Runs a statement and returns the number of rows it affected. Blocks.
    @discardableResult
    public func execute(_ query: Query) throws -> Int {
        try self.query(query).affectedRows
    }

    /// Queues a statement (prepared once per session) whose result is not needed: it is sent with
    /// the next statement, or with the `COMMIT` of `transaction`, in the same round trip. An error
    /// in it is thrown by that statement, which then does not run. For use inside `transaction`.
    public func queuePrepared(_ query: Query) {
        queued.append((query, true))
    }

    /// Runs several statements separated by semicolons, without parameters (migrations). Blocks.
    public func executeScript(_ sql: String) throws {
        if !queued.isEmpty { _ = try runQueued(then: []) }  // nothing to read back
        guard let result = PQexec(handle, sql) else { throw lostConnection(sql) }
        defer { PQclear(result) }
        try check(result, sql: sql)
    }

    /// Runs `body` inside BEGIN/COMMIT; any thrown error rolls the transaction back.
    ///
    /// `BEGIN` travels with the body's first statement, and `COMMIT` with the statements the body
    /// queued (`queuePrepared`), so a transaction costs no round trip of its own.
    public func transaction<T>(_ body: (Connection) throws -> T) throws -> T {
        precondition(queued.isEmpty, "a transaction began with statements still queued")
        queued = [("BEGIN", false)]
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            queued.removeAll()
            if !isBroken, inTransaction { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Starts listening on `channel`. The name is quoted as an identifier by libpq.
    public func listen(_ channel: String) throws {
        guard let quoted = PQescapeIdentifier(handle, channel, channel.utf8.count) else {
            throw PostgresError(code: .queryFailed, message: Self.errorMessage(handle))
        }
        defer { PQfreemem(quoted) }
        try executeScript("LISTEN " + String(cString: quoted))
    }

    /// Waits up to `timeout` seconds for notifications and returns those that arrived. Blocks.
    /// When `wakeUp` (a descriptor of the caller's) becomes readable, returns at once, with what
    /// had arrived by then: another thread's way to end the wait early.
    public func waitForNotifications(timeout: Double, wakeUp: Int32? = nil) throws -> [PostgresNotification] {
        var pending = try drainNotifications()
        if !pending.isEmpty { return pending }
        let socket = PQsocket(handle)
        guard socket >= 0 else { throw lostConnection(nil) }
        var descriptors = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0)]
        if let wakeUp { descriptors.append(pollfd(fd: wakeUp, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(max(0, timeout * 1000)))
        if ready < 0 {
            if errno == EINTR { return [] }
            throw PostgresError(code: .connectionLost, message: "poll failed: \(String(cString: strerror(errno)))")
        }
        if descriptors[0].revents != 0 {
            pending = try drainNotifications()
        }
        return pending
    }

    private func drainNotifications() throws -> [PostgresNotification] {
        guard PQconsumeInput(handle) == 1 else { throw lostConnection(nil) }
        var received: [PostgresNotification] = []
        while let notify = PQnotifies(handle) {
            let event = notify.pointee
            received.append(PostgresNotification(
                channel: String(cString: event.relname),
                payload: event.extra.map { String(cString: $0) } ?? "",
                senderPID: event.be_pid))
            PQfreemem(notify)
        }
        return received
    }

    // MARK: - The checking helper every statement goes through

    private func run(_ query: Query, prepare: Bool) throws -> OpaquePointer {
        if !queued.isEmpty {
            guard let result = try runQueued(then: [(query, prepare)]).first else { throw lostConnection(query.sql) }
            return result
        }
        let count = Int32(query.parameters.count)
        let statement = prepare ? try preparedName(for: query.sql, parameterCount: count) : nil
        let result: OpaquePointer? = withParameters(query.parameters) { values, lengths, formats in
            if let statement {
                return PQexecPrepared(handle, statement, count, values, lengths, formats, 0)
            }
            return PQexecParams(handle, query.sql, count, nil, values, lengths, formats, 0)
        }
        guard let result else { throw lostConnection(query.sql) }
        do {
            try check(result, sql: query.sql)
        } catch {
            PQclear(result)
            throw error
        }
        return result
    }

    /// Sends the queued statements and then `last` in one pipeline ending in one sync, and returns
    /// the results of `last`, one each. The first error of any of them is thrown; statements after a
    /// failed one do not run (and a transaction they were in is left failed, for its rollback).
    private func runQueued(then last: [(query: Query, prepare: Bool)]) throws -> [OpaquePointer] {
        let statements = queued + last
        let firstKept = queued.count
        queued.removeAll()
        // Statements not yet prepared in this session are prepared first, outside the pipeline.
        let names = try statements.map { statement in
            statement.prepare ? try preparedName(for: statement.query.sql, parameterCount: Int32(statement.query.parameters.count)) : nil
        }
        guard PQenterPipelineMode(handle) == 1 else { throw lostConnection(statements.first?.query.sql) }
        for (statement, name) in zip(statements, names) {
            let count = Int32(statement.query.parameters.count)
            let sent = withParameters(statement.query.parameters) { values, lengths, formats in
                if let name { return PQsendQueryPrepared(handle, name, count, values, lengths, formats, 0) }
                return PQsendQueryParams(handle, statement.query.sql, count, nil, values, lengths, formats, 0)
            }
            guard sent == 1 else { try abandonPipeline(statement.query.sql) }
        }
        guard PQpipelineSync(handle) == 1 else { try abandonPipeline(nil) }
        var failure: (any Error)?
        var kept: [OpaquePointer] = []
        for (index, statement) in statements.enumerated() {
            // Each statement's results end with a NULL.
            var keptOne = false
            while let result = PQgetResult(handle) {
                let status = PQresultStatus(result)
                if status == PGRES_PIPELINE_ABORTED || failure != nil {
                    PQclear(result)
                    continue
                }
                do {
                    try check(result, sql: statement.query.sql)
                } catch {
                    failure = error
                    PQclear(result)
                    continue
                }
                if index >= firstKept, !keptOne {
                    kept.append(result)
                    keptOne = true
                } else {
                    PQclear(result)
                }
            }
            if isBroken { break }
        }
        // Then the sync point, after which the session takes ordinary statements again.
        var synced = false
        while !isBroken, let result = PQgetResult(handle) {
            synced = PQresultStatus(result) == PGRES_PIPELINE_SYNC
            PQclear(result)
            if synced { break }
        }
        if !synced || PQexitPipelineMode(handle) != 1 {
            kept.forEach { PQclear($0) }
            try abandonPipeline(nil, after: failure)
        }
        if let failure {
            kept.forEach { PQclear($0) }
            throw failure
        }
        guard kept.count == last.count else {
            kept.forEach { PQclear($0) }
            try abandonPipeline(last.first?.query.sql)
        }
        return kept
    }

    /// A pipeline that could not be sent or read to its end: the session is given up.
    private func abandonPipeline(_ sql: String?, after failure: (any Error)? = nil) throws -> Never {
        desynchronized = true
        prepared.removeAll()
        if let failure = failure as? PostgresError, failure.code == .connectionLost { throw failure }
        throw lostConnection(sql)
    }

    private func preparedName(for sql: String, parameterCount: Int32) throws -> String {
        if let existing = prepared[sql] { return existing }
        let name = "tipline_\(prepared.count + 1)"
        guard let made = PQprepare(handle, name, sql, parameterCount, nil) else { throw lostConnection(sql) }
        defer { PQclear(made) }
        try check(made, sql: sql)
        prepared[sql] = name
        return name
    }

    private func check(_ result: OpaquePointer, sql: String) throws {
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return
        default:
            let field = { (code: Character) -> String? in
                guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
                return String(cString: value)
            }
            let state = field("C").map(SQLState.init(rawValue:))
            var message = field("M") ?? Self.errorMessage(handle)
            if message.isEmpty { message = "unknown error" }
            let broken = isBroken
            if broken { prepared.removeAll() }
            throw PostgresError(
                code: broken && state == nil ? .connectionLost : .queryFailed, sqlState: state,
                message: message, detail: field("D"), hint: field("H"), query: sql)
        }
    }

    private func lostConnection(_ sql: String?) -> PostgresError {
        PostgresError(code: .connectionLost, message: Self.errorMessage(handle), query: sql)
    }

    private static func errorMessage(_ handle: OpaquePointer) -> String {
        guard let text = PQerrorMessage(handle) else { return "unknown libpq error" }
        let message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        return message.isEmpty ? "unknown libpq error" : message
    }

    private static func copy(_ result: OpaquePointer) -> QueryResult {
        let rowCount = Int(PQntuples(result))
        let fieldCount = Int(PQnfields(result))
        let names = (0..<fieldCount).map { String(cString: PQfname(result, Int32($0))) }
        var length = 0
        for r in 0..<Int32(rowCount) {
            for f in 0..<Int32(fieldCount) { length += Int(PQgetlength(result, r, f)) }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        var starts: [Int] = []
        var ends: [Int] = []
        starts.reserveCapacity(rowCount * fieldCount)
        ends.reserveCapacity(rowCount * fieldCount)
        for r in 0..<Int32(rowCount) {
            for f in 0..<Int32(fieldCount) {
                if PQgetisnull(result, r, f) == 1 {
                    starts.append(-1)
                    ends.append(-1)
                } else {
                    starts.append(bytes.count)
                    let value = UnsafeRawPointer(PQgetvalue(result, r, f)!).assumingMemoryBound(to: UInt8.self)
                    bytes.append(contentsOf: UnsafeBufferPointer(start: value, count: Int(PQgetlength(result, r, f))))
                    ends.append(bytes.count)
                }
            }
        }
        let storage = ResultStorage(
            columns: ColumnIndex(names: names), fieldCount: fieldCount, rowCount: rowCount, bytes: bytes, starts: starts, ends: ends)
        let affected = PQcmdTuples(result).flatMap { Int(String(cString: $0)) } ?? rowCount
        return QueryResult(storage: storage, affectedRows: affected)
    }
}

/// Calls `body` with a NULL-terminated array of C strings that lives for the call.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let owned = strings.map { strdup($0) }
    defer { owned.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = owned.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Calls `body` with libpq's three parameter arrays, which live for the call: the values (a NULL
/// pointer is SQL NULL), their lengths (read for binary values only), their formats.
private func withParameters<R>(
    _ parameters: [Query.Parameter],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
) -> R {
    if parameters.isEmpty { return body(nil, nil, nil) }
    // The values side by side in one buffer (never empty, so that it has an address).
    var storage: [UInt8] = [0]
    storage.reserveCapacity(parameters.reduce(1) { $0 + ($1.bytes?.count ?? 0) })
    let offsets = parameters.map { parameter -> Int? in
        guard let bytes = parameter.bytes else { return nil }
        let offset = storage.count
        storage += bytes
        return offset
    }
    let lengths = parameters.map { Int32($0.bytes?.count ?? 0) }
    let formats = parameters.map(\.format)
    return storage.withUnsafeBytes { buffer in
        let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
        let values: [UnsafePointer<CChar>?] = offsets.map { $0.map { base + $0 } }
        return values.withUnsafeBufferPointer { v in
            lengths.withUnsafeBufferPointer { l in formats.withUnsafeBufferPointer { f in body(v.baseAddress, l.baseAddress, f.baseAddress) } }
        }
    }
}
