import Hummingbird
import Logging
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

    /// The failure says what is wrong in the server's log (`logger`) only: its fingerprints would
    /// let whoever asks confirm a guessed key offline, and a weak key would give away every
    /// reporter's hash.
    func ensure(_ intake: Intake, always: Bool = false, logger: Logger) async throws {
        let now = ContinuousClock.now
        if !always, let last = verifiedAt.withLock({ $0 }), now - last < maxAge { return }
        do {
            try await intake.reporterKey.verify(against: intake.database)
        } catch let error as TiplineError where error.code == .configuration {
            verifiedAt.withLock { $0 = nil }
            logger.error("reports refused: \(error.message)")
            // The server's configuration, not the client's request: not ready, retry later.
            throw APIError(.serviceUnavailable, code: "reporter_key_mismatch",
                "the server's reporter key does not fit this database (its log says why); reports are refused until it does")
        }
        verifiedAt.withLock { $0 = now }
    }
}
