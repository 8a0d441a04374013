public import ArgumentParser
import Foundation
import Logging
import Postgres
import TiplineHTTP
import TiplineWorker

/// Where the database is.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: "libpq URI or conninfo string (default: $DATABASE_URL, else libpq's PG* variables).")
    var databaseURL: String?

    /// The conninfo to use: the option, then DATABASE_URL, then empty (libpq's PG* defaults).
    var conninfo: String {
        databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? ""
    }

    /// Said after a connection error when the settings themselves explain it: none was given at
    /// all, or one that libpq reads as nothing but a database name.
    var connectionHint: String? {
        let given = conninfo.trimmingCharacters(in: .whitespaces)
        if given.isEmpty {
            let environment = ProcessInfo.processInfo.environment
            let variables = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"]
            guard variables.allSatisfy({ (environment[$0] ?? "").isEmpty }) else { return nil }
            return "no --database-url, DATABASE_URL or PG* variable is set, so libpq tried its defaults: "
                + "the local socket, a database and user named after this OS user"
        }
        if !given.contains("="), !given.hasPrefix("postgresql://"), !given.hasPrefix("postgres://") {
            return "the connection setting is neither a postgresql:// URI nor key=value pairs, so libpq took it "
                + "as the name of a database on its default server"
        }
        return nil
    }

    /// A configuration for this process's connections.
    func config(application: String, settings: [(String, String)] = []) -> ConnectionConfig {
        ConnectionConfig(conninfo: conninfo, applicationName: application, settings: settings)
    }

    /// Opens a pool and runs `body`, shutting the pool down afterwards.
    func withDatabase<T>(
        application: String, maxConnections: Int = 2, settings: [(String, String)] = [], connectBackoff: Duration? = nil,
        _ body: (Database) async throws -> T
    ) async throws -> T {
        let database = Database(config: config(application: application, settings: settings), maxConnections: maxConnections,
                                connectBackoff: connectBackoff)
        do {
            let value = try await body(database)
            await Self.shutdown(database)
            return value
        } catch {
            await Self.shutdown(database)
            if error is CancellationError { throw error }  // an interrupted command (`EarlyShutdown.untilSignalled`)
            // The settings explain a failure to connect at all, not an outage after a good start.
            let connection = (error as? PostgresError)?.isConnectionProblem ?? (error as? DrainGaveUp)?.isConnectionProblem ?? false
            throw CommandFailure(error, hint: connection && !database.hasConnected ? connectionHint : nil)
        }
    }

    /// Closes the pool, waiting at most 10 s for calls still running on it: one blocked on a
    /// database that stopped answering (a request that already answered 503) must not keep the
    /// process from exiting after SIGTERM. The process's exit ends it.
    private static func shutdown(_ database: Database) async {
        // In a task of its own: a command cancelled by a signal (`EarlyShutdown.untilSignalled`)
        // would otherwise not wait for its calls at all.
        if await !Task(operation: { await database.shutdown(waitingAtMost: .seconds(10)) }).value {
            Output.errorLine("note: a database call still waiting for its answer after 10 s was abandoned at exit")
        }
    }
}

/// The one JSON style of the CLI's machine-readable output: sorted snake_case keys, and ISO 8601
/// dates in UTC to the microsecond as `export` writes them (`2026-01-01T00:00:00.123456Z`): a
/// report's time must read the same in every output, or a 30-day window's edge cannot be checked.
/// (`export`'s lines are built by the server, in the contract's order of keys.)
enum JSONOutput {
    /// An encoder in that style.
    static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(PostgresTimestamp.format(date))
        }
        // snake_case like `export`'s contract and the HTTP API (`externalID` is `external_id`).
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    /// `value` as JSON text in that style.
    static func string(_ value: some Encodable, pretty: Bool = false) throws -> String {
        String(decoding: try encoder(pretty: pretty).encode(value), as: UTF8.self)
    }
}

/// Log settings shared by long-running commands.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info
    @Option(help: "Log format: text, or json (one object per line).")
    var logFormat: LogFormat = .text

    /// How log lines are written.
    enum LogFormat: String, ExpressibleByArgument {
        case text, json
    }

    /// A logger writing to standard error.
    func logger(_ label: String) -> Logger {
        let json = logFormat == .json
        var logger = Logger(label: label) { json ? JSONLogHandler(label: $0) as any LogHandler : OneLineLogHandler(label: $0) }
        logger.logLevel = logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Turns any error into the one-line message the CLI prints, without stack traces or bind values.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    /// `hint`, when given, is added in brackets (not to an error that is already a `CommandFailure`).
    init(_ error: any Error, hint: String? = nil) {
        var text: String
        if let failure = error as? CommandFailure {
            text = failure.description
        } else if let gaveUp = error as? DrainGaveUp, case .failing(let last) = gaveUp.reason, last.sqlState == .readOnlySQLTransaction {
            text = "\(gaveUp) (the database only reads: a standby, or default_transaction_read_only is on; point --database-url "
                + "at the primary, or with several hosts in it, target_session_attrs=read-write picks the primary)"
        } else if let error = error as? PostgresError {
            switch error.code {
            case .connectionFailed where error.isRefusedConnection:
                text = "cannot connect to the database (check --database-url, DATABASE_URL or the PG* variables): \(error.message)"
            case .connectionFailed, .connectionLost:
                text = "cannot reach the database: \(error.message)"
            default:
                // A table or column missing: the database was never migrated, or is older than this binary.
                if error.sqlState == .undefinedTable || error.sqlState == .undefinedColumn {
                    text = "the database has no Tipline schema, or an older one (\(error.message)): run `tipline migrate` first"
                } else if error.sqlState == .readOnlySQLTransaction {
                    text = "\(error.message): the database only reads (a standby, or default_transaction_read_only "
                        + "is on); point --database-url at the primary (with several hosts in it, "
                        + "target_session_attrs=read-write picks the primary)"
                } else if error.sqlState == .insufficientPrivilege {
                    text = "\(error.message): this database user's role may not do this (README, Database roles: "
                        + "`tipline work` needs a member of tipline_worker, `submit` and `serve` of tipline_intake, the "
                        + "reading commands of tipline_admin; `offender set-level`, `policy set`, `dead retry`, "
                        + "`token create`/`revoke` and `migrate` need the schema owner)"
                } else {
                    text = error.description
                }
            }
        } else {
            text = "\(error)"
        }
        if let hint, !(error is CommandFailure) { text += " (\(hint))" }
        // One line, as README promises: libpq's messages carry line breaks and tabs.
        description = OneLineLogHandler.oneLine(text)
    }
}

/// Runs `body` again after a lost connection (a restart, a failover to a standby), with backoff up
/// to 5 s and a line on stderr each time; gives up after `attempts` tries (nil: never). Only for
/// work that is safe to repeat: submitting is idempotent on (source, external_id), reading is.
func retryingConnectionLoss<T>(attempts: Int?, _ body: () async throws -> T) async throws -> T {
    try await retrying(attempts: attempts, transient: false) { _ in try await body() }
}

/// `body`, called again after a lost connection (as `retryingConnectionLoss`) and, with
/// `transient`, after a transaction the server rolled back whole and that may well pass when
/// tried again (a deadlock, a serialization failure, a cancelled statement). `body` is told whether
/// a connection was lost before this call: a transaction whose connection broke may have committed.
func retrying<T>(attempts: Int?, transient: Bool, _ body: (_ afterLoss: Bool) async throws -> T) async throws -> T {
    var delay = 0.2
    var attempt = 0
    var lost = false
    while true {
        attempt += 1
        do {
            return try await body(lost)
        } catch let error as PostgresError where attempt < (attempts ?? .max) && (error.isConnectionProblem || (transient && error.isTransient)) {
            let what = error.isConnectionProblem ? "database connection lost" : "the database rolled the batch back"
            lost = lost || error.isConnectionProblem
            Output.error("\(what) (\(shortened(OneLineLogHandler.oneLine(error.message)))); retrying in \(delay)s\n")
            try await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, 5)
        }
    }
}

/// `text` cut to at most about `limit` characters at a space, with "…" where it was cut (a reason
/// in a line repeated on every retry: libpq's messages run to several sentences).
func shortened(_ text: String, limit: Int = 120) -> String {
    guard text.count > limit else { return text }
    let head = text.prefix(limit)
    let cut = head.lastIndex(of: " ").map { head[..<$0] } ?? head
    return cut.trimmingCharacters(in: CharacterSet(charactersIn: " .,;:")) + "…"
}

/// Who an administrator's change is recorded as: `--actor`, else `$USER`, else `admin`; never empty.
enum AdminActor {
    static func validate(_ given: String?) throws {
        if let given, given.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ValidationError("--actor must not be empty (it is recorded with the change)")
        }
        if let given { try RecordedText.validate(given, option: "--actor", limit: RecordedText.actorLimit) }
    }

    static func name(_ given: String?) -> String {
        if let given { return given.trimmingCharacters(in: .whitespacesAndNewlines) }
        let user = ProcessInfo.processInfo.environment["USER"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return user.isEmpty ? "admin" : user
    }
}

/// Text an administrator gives to be recorded with a change (`--reason`, `--note`, `--actor`):
/// bounded, so that one line of the audit or of `offender`/`policy show` stays a line.
enum RecordedText {
    static let limit = 1_000
    static let actorLimit = 100

    static func validate(_ text: String, option: String, limit: Int = limit) throws {
        if text.count > limit {
            throw ValidationError("\(option) must be at most \(limit) characters (it is recorded and shown with the change), not \(text.count)")
        }
    }
}

/// Writes the confirmation of a change already committed. A confirmation that cannot be written
/// (a full disk, a reader gone) still fails the command, but says the change was made, so that a
/// script does not take the exit status for a change refused.
func confirmCommitted(_ line: String) throws {
    do {
        try Output.line(line)
    } catch let error as OutputError {
        throw ConfirmationLost(reason: error)
    }
}

/// A change was committed; only the line saying so could not be written.
struct ConfirmationLost: Error, CustomStringConvertible {
    let reason: OutputError
    var description: String { "the change was made and recorded, but its confirmation could not be written (\(reason))" }
}

/// The command line as the kernel gave it: `CommandLine.arguments` replaces bytes that are not
/// UTF-8 with U+FFFD, which can make two different values one (two external ids, two reporters).
enum RawArguments {
    /// Whether each argument (after the program's name) was valid UTF-8.
    static let valid: [Bool] = (1..<Int(CommandLine.argc)).map { index in
        guard let pointer = CommandLine.unsafeArgv[index] else { return true }
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer))
        return String(validating: bytes, as: UTF8.self) != nil
    }

    /// Whether a value of `option` (given apart, `--text VALUE`, or joined, `--text=VALUE`) came
    /// from an argument that was not valid UTF-8. Words after a `--` are no option's.
    static func wasRepaired(_ option: String) -> Bool {
        let words = CommandLine.arguments.dropFirst().prefix { $0 != "--" }
        for (index, word) in zip(0..., words) {
            if word == option, index + 1 < valid.count, !valid[index + 1] { return true }
            if word.hasPrefix(option + "="), !valid[index] { return true }
        }
        return false
    }
}
