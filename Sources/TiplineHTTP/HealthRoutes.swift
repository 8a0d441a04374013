import Hummingbird
import Logging
import Postgres
import TiplineStore

/// `GET /healthz` (the process answers) and `GET /readyz` (the database answers and its schema is current).
struct HealthRoutes: Sendable {
    let database: Database
    let reporterKeyCheck: ReporterKeyCheck
    /// How long readiness waits for the database: a server that stops answering (a hung host, a
    /// stopped process) makes it answer 503, not hang with the prober.
    var readinessTimeout: Duration = .seconds(5)

    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in try JSONBody.response(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, context in
            do {
                let logger = context.logger
                // The key check's database calls get what is left of the limit; deriving the key
                // (about a tenth of a second of work, once) does not count against it.
                let started = ContinuousClock.now
                var pending = try await withDeadline(readinessTimeout) { [database] in
                    let pending = try await Migrator().pending(database)
                    try await Self.requireWrites(database)
                    return pending
                }
                if pending?.isEmpty == true {
                    do {
                        let left = readinessTimeout - (ContinuousClock.now - started)
                        try await reporterKeyCheck.ensure(database, always: true, databaseLimit: left, logger: logger)
                    } catch is DatabaseDidNotAnswer {
                        pending = nil
                    }
                }
                guard let pending else {
                    context.logger.warning("not ready: the database did not answer in time")
                    return try JSONBody.response(.serviceUnavailable, APIError(.serviceUnavailable, code: "database_unavailable",
                        "the database did not answer within \(readinessTimeout); retry later").envelope)
                }
                guard pending.isEmpty else {
                    return try JSONBody.response(.serviceUnavailable, APIError.migrationsPending(
                        "migrations not applied: \(pending.map(String.init).joined(separator: ", ")) (run tipline migrate)").envelope)
                }
                return try JSONBody.response(.ok, ["status": "ready"])
            } catch let error as TiplineError where error.code == .schema {
                // Past this server's schema (a newer release migrated it), or short of it.
                context.logger.warning("not ready", metadata: ["error": "\(error.message)"])
                return try JSONBody.response(.serviceUnavailable, APIError.migrationsPending(error.message).envelope)
            } catch let error as PostgresError where error.sqlState == .readOnlySQLTransaction {
                context.logger.warning("not ready", metadata: ["error": "\(error.message)"])
                return try JSONBody.response(.serviceUnavailable, APIError.databaseReadOnly.envelope)
            } catch let error as APIError {
                context.logger.warning("not ready", metadata: ["error": "\(error.message)"])
                return try JSONBody.response(error.status, error.envelope)
            } catch {
                context.logger.warning("not ready", metadata: ["error": "\(error)"])
                return try JSONBody.response(.serviceUnavailable, APIError.databaseUnavailable.envelope)
            }
        }
    }
}

extension HealthRoutes {
    /// Throws the server's own read-only error when a session would only read (a standby, or
    /// `default_transaction_read_only`): reports could not be stored. The session is then not
    /// pooled again (`Database.withConnection`), so the next check reads the setting anew.
    static func requireWrites(_ database: Database) async throws {
        try await database.withConnection { connection in
            guard try connection.query("SELECT current_setting('transaction_read_only')").one().decode(String.self, at: 0) == "on" else { return }
            throw PostgresError(code: .queryFailed, sqlState: .readOnlySQLTransaction, message: "the database only reads (transaction_read_only is on)")
        }
    }
}

extension APIError {
    var envelope: ErrorEnvelope { ErrorEnvelope(error: .init(code: code, message: message, field: field)) }
}
