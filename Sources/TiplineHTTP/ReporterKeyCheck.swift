import Hummingbird
import Synchronization
import TiplineStore

/// Makes sure the reporter key matches the database before the first report is stored.
///
/// Checked once at start-up when the database is up; when it is not, the server still starts
/// (health and readiness must answer) and the check runs before the first submission instead.
final class ReporterKeyCheck: Sendable {
    private let verified = Mutex(false)

    func ensure(_ intake: Intake) async throws {
        if verified.withLock({ $0 }) { return }
        do {
            try await intake.reporterKey.verify(against: intake.database)
        } catch let error as TiplineError where error.code == .configuration {
            // The server's configuration, not the client's request: not ready, retry later.
            throw APIError(.serviceUnavailable, code: "reporter_key_mismatch", error.message)
        }
        verified.withLock { $0 = true }
    }
}
