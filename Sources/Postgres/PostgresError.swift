/// A failure reported by libpq or by PostgreSQL, with the SQLSTATE when the server sent one.
///
/// `description` is deliberately terse (code, SQLSTATE, primary message) so that it can be shown to
/// an operator; the query text and server detail live in `debugDescription`.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is, independent of the server's SQLSTATE.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The connection could not be opened.
        public static let connectionFailed = Code(name: "connectionFailed")
        /// The connection broke while it was in use.
        public static let connectionLost = Code(name: "connectionLost")
        /// The server rejected or failed a statement.
        public static let queryFailed = Code(name: "queryFailed")
        /// A result value could not be decoded into the requested Swift type.
        public static let decodingFailed = Code(name: "decodingFailed")
        /// A statement returned no row where one was required.
        public static let noRows = Code(name: "noRows")
        /// The database handle was shut down.
        public static let shutDown = Code(name: "shutDown")
        public var description: String { name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// The server's SQLSTATE, when the server reported one.
    public var sqlState: SQLState?
    /// PostgreSQL's (or libpq's) primary message.
    public var message: String
    /// The server's DETAIL field, if any.
    public var detail: String?
    /// The server's HINT field, if any.
    public var hint: String?
    /// The SQL text that failed, if any (never bind values, which may be personal data).
    public var query: String?

    /// Creates an error.
    public init(
        code: Code, sqlState: SQLState? = nil, message: String,
        detail: String? = nil, hint: String? = nil, query: String? = nil
    ) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.query = query
    }

    /// True when the connection that produced this error cannot be used again.
    public var isConnectionProblem: Bool {
        if code == .connectionFailed || code == .connectionLost { return true }
        guard let sqlState else { return false }
        return sqlState.rawValue.hasPrefix("08") || sqlState == .adminShutdown
            || sqlState == .crashShutdown || sqlState == .cannotConnectNow
            || sqlState == .idleInTransactionTimeout
    }

    /// True when a connection attempt cannot succeed as configured, however often it is retried:
    /// the connection string itself is invalid (an unknown parameter, a port that is not a number,
    /// an unknown `sslmode`: libpq refuses it before connecting), or the server answered and turned
    /// it away for good (the database or role does not exist, the role may not log in or lacks
    /// CONNECT on the database, authentication failed or needs a password none was given for, no
    /// `pg_hba.conf` line admits it, or SSL, GSSAPI encryption or channel binding was required and
    /// the server does not offer it). Read from libpq's messages, which carry no SQLSTATE
    /// here; a server whose messages are not in English is never taken for refusing.
    public var isRefusedConnection: Bool {
        guard code == .connectionFailed else { return false }
        // Settings read per connection attempt (the timeouts, keepalives) come after the server's name.
        if Self.invalidSettings.contains(where: { message.hasPrefix($0) || message.contains("failed: " + $0) })
            || message.contains("in connection info string") {
            return true
        }
        if Self.clientRefusals.contains(where: { message.contains($0) }) { return true }
        let parts = message.split(separator: "FATAL:", maxSplits: 1)
        guard parts.count == 2 || message.hasPrefix("FATAL:"), let reason = parts.last else { return false }
        return Self.refusals.contains { reason.contains($0) }
    }

    /// How libpq's messages about an unusable connection string begin.
    private static let invalidSettings = [
        "invalid URI", "invalid connection option", "invalid port number", "invalid integer value",
        "invalid sslmode value", "invalid gssencmode value", "invalid target_session_attrs value",
        "invalid channel_binding value", "invalid load_balance_hosts value", "invalid ssl_min_protocol_version value",
        "invalid ssl_max_protocol_version value", "invalid require_auth", "missing \"=\" after",
        "could not match", "unterminated quoted string", "invalid percent-encoded token", "end of string reached when looking for matching",
    ]

    /// What libpq says when the server cannot meet what the settings require, or the settings
    /// lack what the server requires.
    private static let clientRefusals = [
        "server does not support SSL, but SSL was required", "fe_sendauth: no password supplied",
        "channel binding required", "GSSAPI encryption required but was impossible",
    ]

    /// What a server says when it turns a connection away for good.
    private static let refusals = [
        "does not exist", "authentication failed", "no pg_hba.conf entry", "is not permitted to log in",
        "permission denied for database",
    ]

    /// True when retrying the same transaction may well succeed (deadlock, serialization, lost connection).
    public var isTransient: Bool {
        isConnectionProblem || sqlState == .deadlockDetected || sqlState == .serializationFailure
            || sqlState == .lockNotAvailable || sqlState == .queryCanceled
    }

    public var description: String {
        var text = "PostgreSQL \(code)"
        if let sqlState { text += " [\(sqlState.rawValue)]" }
        return text + ": " + message
    }

    public var debugDescription: String {
        var text = description
        if let detail { text += "\nDETAIL: \(detail)" }
        if let hint { text += "\nHINT: \(hint)" }
        if let query { text += "\nQUERY: \(query)" }
        return text
    }
}

/// A five-character SQLSTATE code, with names for the ones Tipline reacts to.
public struct SQLState: RawRepresentable, Hashable, Sendable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let uniqueViolation = SQLState(rawValue: "23505")
    public static let foreignKeyViolation = SQLState(rawValue: "23503")
    public static let checkViolation = SQLState(rawValue: "23514")
    public static let notNullViolation = SQLState(rawValue: "23502")
    public static let serializationFailure = SQLState(rawValue: "40001")
    public static let deadlockDetected = SQLState(rawValue: "40P01")
    public static let lockNotAvailable = SQLState(rawValue: "55P03")
    public static let queryCanceled = SQLState(rawValue: "57014")
    public static let adminShutdown = SQLState(rawValue: "57P01")
    public static let crashShutdown = SQLState(rawValue: "57P02")
    public static let cannotConnectNow = SQLState(rawValue: "57P03")
    public static let idleInTransactionTimeout = SQLState(rawValue: "25P03")
    public static let insufficientPrivilege = SQLState(rawValue: "42501")
    public static let readOnlySQLTransaction = SQLState(rawValue: "25006")
    public static let undefinedTable = SQLState(rawValue: "42P01")
    public static let undefinedColumn = SQLState(rawValue: "42703")
    public static let raiseException = SQLState(rawValue: "P0001")
}
