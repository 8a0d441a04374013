import Hummingbird
import Synchronization
import TiplineStore

/// Makes sure the reporter key matches the database before reports are stored.
///
/// Checked at start-up when the database is up; when it is not, the server still starts (health
/// and readiness must answer) and the check runs before the first submission instead. A check that
/// passed is trusted for `maxAge`, then made again, so a fingerprint changed in the database after
/// the server started (the schema owner's doing) stops submissions within that time; readiness
/// checks every time.
final class ReporterKeyCheck: Sendable {
    /// When the last check passed.
    private let verifiedAt = Mutex<ContinuousClock.Instant?>(nil)
    let maxAge: Duration = .seconds(10)

    func ensure(_ intake: Intake, always: Bool = false) async throws {
        let now = ContinuousClock.now
        if !always, let last = verifiedAt.withLock({ $0 }), now - last < maxAge { return }
        do {
            try await intake.reporterKey.verify(against: intake.database)
        } catch let error as TiplineError where error.code == .configuration {
            verifiedAt.withLock { $0 = nil }
            // The server's configuration, not the client's request: not ready, retry later.
            throw APIError(.serviceUnavailable, code: "reporter_key_mismatch", error.message)
        }
        verifiedAt.withLock { $0 = now }
    }
}
