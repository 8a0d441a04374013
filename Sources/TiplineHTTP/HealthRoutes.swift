public import Hummingbird
import Logging
import Postgres
import TiplineStore

/// `GET /healthz` (the process answers) and `GET /readyz` (the database answers and its schema is current).
struct HealthRoutes: Sendable {
    let database: Database

    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in try JSONBody.response(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, context in
            do {
                let pending = try await Migrator().pending(database)
                guard pending.isEmpty else {
                    return try JSONBody.response(.serviceUnavailable, APIError(.serviceUnavailable, code: "migrations_pending",
                        "migrations not applied: \(pending.map(String.init).joined(separator: ", ")) (run tipline migrate)").envelope)
                }
                return try JSONBody.response(.ok, ["status": "ready"])
            } catch {
                context.logger.warning("not ready", metadata: ["error": "\(error)"])
                return try JSONBody.response(.serviceUnavailable, APIError.databaseUnavailable.envelope)
            }
        }
    }
}

extension APIError {
    var envelope: ErrorEnvelope { ErrorEnvelope(error: .init(code: code, message: message, field: field)) }
}
