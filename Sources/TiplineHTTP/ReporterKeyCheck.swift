import Hummingbird
import Logging
import Postgres
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
    /// The server's key.
    let key: ReporterKey
    /// When the last check passed, and the hasher it gave.
    private let verified = Mutex<(at: ContinuousClock.Instant, hasher: ReporterHasher)?>(nil)
    let maxAge: Duration = .seconds(10)

    /// `verified`: the hasher of a check that just passed, trusted as one made now.
    init(key: ReporterKey, verified: ReporterHasher? = nil) {
        self.key = key
        if let verified { self.verified.withLock { $0 = (ContinuousClock.now, verified) } }
    }

    /// The failure says what is wrong in the server's log (`logger`) only: its fingerprints would
    /// let whoever asks confirm a guessed key offline, and a weak key would give away every
    /// reporter's hash. Returns the hasher to store reporters with. `databaseLimit` bounds the
    /// check's database calls together (`DatabaseDidNotAnswer`), not the key's derivation.
    @discardableResult
    func ensure(_ database: Database, always: Bool = false, databaseLimit: Duration? = nil, logger: Logger) async throws -> ReporterHasher {
        let now = ContinuousClock.now
        if !always, let last = verified.withLock({ $0 }), now - last.at < maxAge { return last.hasher }
        let hasher: ReporterHasher
        do {
            hasher = try await key.verify(against: database, waitingAtMost: databaseLimit)
        } catch let error as TiplineError where error.code == .configuration {
            verified.withLock { $0 = nil }
            logger.error("reports refused: \(error.message)")
            // The server's configuration, not the client's request: not ready, retry later.
            throw APIError(.serviceUnavailable, code: "reporter_key_mismatch",
                "the server's reporter key does not fit this database (its log says why); reports are refused until it does")
        }
        verified.withLock { $0 = (now, hasher) }
        return hasher
    }
}
