import Crypto
import _CryptoExtras
public import TiplineCore
public import Foundation
public import Postgres
import Synchronization

/// The secret that turns reporter identities into keyed hashes (HMAC-SHA256).
///
/// Only the hash is ever stored: enough to count distinct reporters, useless for finding out who
/// they are without the key. The key material comes from `TIPLINE_REPORTER_KEY`; what hashes is
/// the key the database's derivation makes of it (`ReporterKeyDerivation`), which `verify(against:)`
/// returns as a `ReporterHasher`.
public final class ReporterKey: Sendable {
    /// The environment variable the key is read from.
    public static let environmentVariable = "TIPLINE_REPORTER_KEY"
    private let secret: Data
    /// The derivations run or running, each once however many callers want it at the same time (a
    /// derivation costs about a tenth of a second and 16 MiB; `serve` checks the key every few
    /// seconds, and a burst of requests may all find it unchecked). A process uses one database;
    /// tests, with a database each, use a few at once.
    private let derivations = Mutex<[ReporterKeyDerivation: Task<ReporterHasher, any Error>]>([:])

    /// Wraps key material; at least 16 bytes.
    public init(secret: String) throws {
        guard secret.utf8.count >= 16 else {
            throw TiplineError(.configuration,
                "\(Self.environmentVariable) must be at least 16 bytes (got \(secret.utf8.count)); "
                + "make one with: openssl rand -hex 32")
        }
        self.secret = Data(secret.utf8)
    }

    /// Reads the key from the environment, with a message that says how to set it.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ReporterKey {
        guard let secret = environment[environmentVariable], !secret.isEmpty else {
            throw TiplineError(.configuration,
                "\(environmentVariable) is not set: reporter identities are stored only as a keyed hash, "
                + "so a key is required (make one with: openssl rand -hex 32)")
        }
        return try ReporterKey(secret: secret)
    }

    /// The hasher this key gives under `derivation` (the derivation runs once).
    public func hasher(for derivation: ReporterKeyDerivation) async throws -> ReporterHasher {
        let secret = self.secret
        let run = derivations.withLock { runs in
            if let run = runs[derivation] { return run }
            if runs.count >= 16 { runs.removeAll() }
            let run = Task { ReporterHasher(derivation: derivation, key: try derivation.derive(from: secret)) }
            runs[derivation] = run
            return run
        }
        do {
            return try await run.value
        } catch {
            // Not kept: a failure that may pass (memory) is tried again by the next caller.
            derivations.withLock { runs in
                if runs[derivation] == run { runs[derivation] = nil }
            }
            throw error
        }
    }
}

/// How the key material becomes the key that hashes reporters, as the database records it in
/// `settings` (`reporter_key_derivation`) when it is first used.
///
/// Both the reporters' hashes and the key's fingerprint are made with the derived key. So whoever
/// holds a copy of the database (and knows one reporter's identity, or just the fingerprint) must
/// run the derivation once for every key they guess: about a tenth of a second and 16 MiB each
/// with the default costs, instead of a microsecond. A random key (`openssl rand -hex 32`) cannot
/// be guessed either way; a passphrase can only be tried slowly.
public enum ReporterKeyDerivation: Hashable, Sendable {
    /// The key material itself: databases first used before derivations were recorded keep it
    /// (their reporters' hashes were made with it, and the identities are not kept to redo them).
    case none
    /// scrypt (RFC 7914) with these costs and the database's own random salt.
    case scrypt(n: Int, r: Int, p: Int, salt: [UInt8])

    /// A new database's: scrypt with N = 2^14, r = 8 (16 MiB), p = 2, and a fresh 16-byte salt.
    public static func fresh() -> ReporterKeyDerivation {
        var generator = SystemRandomNumberGenerator()  // getrandom(2) on Linux: cryptographically secure
        return .scrypt(n: 1 << 14, r: 8, p: 2, salt: (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// As `settings` records it: `scrypt n=16384 r=8 p=2 salt=` and the salt in hex.
    public var recorded: String {
        switch self {
        case .none: "none"
        case .scrypt(let n, let r, let p, let salt): "scrypt n=\(n) r=\(r) p=\(p) salt=\(PostgresHex.encode(salt))"
        }
    }

    /// The `settings` row that holds the fingerprint of a key made this way (`verify` writes and
    /// compares it): the key itself's for `none`, the derived key's otherwise.
    public var fingerprintSetting: String {
        switch self {
        case .none: "reporter_key_fingerprint"
        case .scrypt: "reporter_key_stretched_fingerprint"
        }
    }

    /// Reads what `recorded` wrote. Costs beyond what this release would ever record are refused
    /// (a row changed to ask for gigabytes must not take the process down), and so is anything else
    /// it would not write.
    public init(recorded text: String) throws {
        func refuse(_ why: String) -> TiplineError {
            TiplineError(.configuration,
                "this database's reporter key derivation (settings.reporter_key_derivation) \(why); "
                + "it was written by a newer release, or by hand")
        }
        if text == "none" {
            self = .none
            return
        }
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 5, words[0] == "scrypt" else { throw refuse("is not one this release knows") }
        var values: [String: Substring] = [:]
        for (word, name) in zip(words.dropFirst(), ["n", "r", "p", "salt"]) {
            guard word.hasPrefix(name + "=") else { throw refuse("is not one this release knows") }
            values[name] = word.dropFirst(name.count + 1)
        }
        func number(_ name: String) -> Int? {
            // Digits only, as `recorded` writes them (no sign, no leading zero).
            guard let text = values[name], let value = Int(text), String(value) == text else { return nil }
            return value
        }
        guard let n = number("n"), let r = number("r"), let p = number("p"), let salt = [UInt8](hexDigits: values["salt"]!)
        else { throw refuse("is not one this release knows") }
        // At most 64 MiB (128 * n * r) and about a second of work (n * r * p); and within what
        // BoringSSL's scrypt runs (n below 2^(16 r); with p = 1, r at most 16).
        guard n >= 1 << 10, n & (n - 1) == 0, n <= 1 << 20, (1...16).contains(r), (1...16).contains(p),
              16 * r > 63 || n < 1 << (16 * r), 128 * n * r <= 64 << 20, n * r * p <= 1 << 22, (16...64).contains(salt.count)
        else { throw refuse("asks for costs or a salt this release does not use") }
        self = .scrypt(n: n, r: r, p: p, salt: salt)
    }

    /// The key `secret` gives under this derivation.
    func derive(from secret: Data) throws -> SymmetricKey {
        switch self {
        case .none:
            return SymmetricKey(data: secret)
        case .scrypt(let n, let r, let p, let salt):
            do {
                return try KDF.Scrypt.deriveKey(from: secret, salt: salt, outputByteCount: 32, rounds: n, blockSize: r, parallelism: p)
            } catch {
                throw TiplineError(.configuration,
                    "the reporter key derivation \(recorded) (settings.reporter_key_derivation) could not be run: \(error)")
            }
        }
    }
}

/// A database call of `ReporterKey.verify(against:waitingAtMost:)` that did not answer in time.
public struct DatabaseDidNotAnswer: Error {
    /// How long it was given.
    public let limit: Duration
}

/// Hashes reporter identities with the key a database's derivation made (`ReporterKey.verify`).
/// Printed or reflected, it shows its derivation and fingerprint, never the key.
public struct ReporterHasher: Sendable, CustomStringConvertible, CustomReflectable {
    /// The derivation that made the key.
    public let derivation: ReporterKeyDerivation
    /// The derived key's bytes (Crypto's `SymmetricKey` is not `Sendable`).
    private let key: [UInt8]

    init(derivation: ReporterKeyDerivation, key: SymmetricKey) {
        self.derivation = derivation
        self.key = key.withUnsafeBytes { Array($0) }
    }

    /// The keyed hash of a reporter identity (32 bytes).
    public func hash(_ reporter: String) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data(reporter.utf8), using: SymmetricKey(data: key)))
    }

    /// A fingerprint of the key (HMAC of a fixed label): safe to store, and equal only for equal keys.
    public var fingerprint: String {
        PostgresHex.encode(hash("tipline reporter key check v1").prefix(16))
    }

    public var description: String { "ReporterHasher(\(derivation.recorded), fingerprint \(fingerprint))" }

    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}

extension [UInt8] {
    /// The bytes of an even number of lower-case hex digits (as `PostgresHex.encode` writes them), or nil.
    init?(hexDigits text: Substring) {
        let digits = Array(text.utf8)
        guard digits.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        var bytes = [UInt8](repeating: 0, count: digits.count / 2)
        let decoded = digits.withUnsafeBufferPointer { digits in bytes.withUnsafeMutableBytes { PostgresHex.decode(digits, into: $0) } }
        guard decoded else { return nil }  // an odd count
        self = bytes
    }
}

extension ReporterKey {
    /// The key's characters (Unicode scalars; the key is text in an environment variable).
    private var characters: [Unicode.Scalar] { Array(String(decoding: secret, as: UTF8.self).unicodeScalars) }

    /// How many different characters the key holds. A placeholder (sixteen zeros, spaces) has
    /// three or fewer; random keys are never this poor (16 hex digits have fewer than 4 different
    /// ones about once in a billion).
    var distinctCharacters: Int { Set(characters).count }

    /// The length of the shortest run of characters the key repeats from its start to its end, a
    /// last repetition cut short or not (`abcdabcdab`: 4), or nil when none repeats at least twice.
    /// A random key of 16 or more hex digits does so about once in 4 billion.
    var repeatedRun: Int? {
        let characters = self.characters
        guard characters.count >= 2 else { return nil }
        return (1...characters.count / 2).first { run in
            characters.indices.allSatisfy { characters[$0] == characters[$0 % run] }
        }
    }

    /// Why the key looks like a placeholder rather than key material, or nil. Such a key makes the
    /// hashes of phone numbers easy to reverse: whoever guesses it can hash every number.
    var weakness: String? {
        if distinctCharacters < 4 { return "only \(distinctCharacters) different characters" }
        if let run = repeatedRun { return "a run of \(run) characters repeated" }
        return nil
    }

    /// Checks the key against the database and returns the hasher to store reporters with.
    ///
    /// The database must be at this binary's schema (`Migrator.requireCurrent`): migration 0014
    /// marks which databases keep the bare key. On first use the database records a derivation
    /// (`ReporterKeyDerivation.fresh()`, a salt of its own) and the fingerprint of the key it makes;
    /// afterwards a different key is refused: a process hashing with another key would count one
    /// reporter as two and break every level. A database first used before derivations existed
    /// (derivation `none`) keeps hashing with the key material itself. A placeholder key is refused
    /// on first use; a database already filled with one keeps it (there is no other key its
    /// reporters' hashes match).
    ///
    /// With `limit`, its database calls that have not answered within it, all together, throw
    /// `DatabaseDidNotAnswer` (the derivation itself is not counted: it is work, not waiting).
    public func verify(against database: Database, waitingAtMost limit: Duration? = nil) async throws -> ReporterHasher {
        var waited = Duration.zero
        func bounded<T: Sendable>(_ call: @escaping @Sendable () async throws -> T) async throws -> T {
            guard let limit else { return try await call() }
            let start = ContinuousClock.now
            guard waited < limit, let value = try await withDeadline(limit - waited, call) else {
                throw DatabaseDidNotAnswer(limit: limit)
            }
            waited += ContinuousClock.now - start
            return value
        }
        var recorded = try await bounded {
            try await Migrator().requireCurrent(database)
            return try await Self.recorded(in: database)
        }
        if recorded.derivation == nil {
            // Migration 0014 recorded `none` for every database whose reports were hashed with the
            // bare key, and a marker in that row for every other one.
            if let bare = recorded.bare, bare != Self.unusedMarker {
                throw contradiction("a fingerprint of the key itself (reporter_key_fingerprint) but no derivation, which "
                    + "migration 0014 records for it; a database whose reports were hashed with the key itself needs "
                    + "reporter_key_derivation 'none'")
            }
            if recorded.stretched != nil {
                throw contradiction("a fingerprint of a derived key (reporter_key_stretched_fingerprint) but no derivation "
                    + "(reporter_key_derivation): the salt it was derived with is gone; restore it from a backup")
            }
            if recorded.used {
                throw contradiction("reports but no reporter key: they were stored by an earlier release while migration "
                    + "0014 ran, or by hand, and no key can be shown to be theirs")
            }
            try refuseIfPlaceholder()
            // First use: the first process to record a derivation decides it; any other that
            // started at the same time reads it back and derives with it too. The marker goes
            // back too, should it have been deleted: an earlier release must not record the bare key.
            let fresh = ReporterKeyDerivation.fresh().recorded
            let marker = Self.unusedMarker
            recorded = try await bounded {
                try await database.execute("""
                    INSERT INTO settings (name, value) VALUES ('reporter_key_derivation', \(fresh)), ('reporter_key_fingerprint', \(marker))
                    ON CONFLICT (name) DO NOTHING
                    """)
                return try await Self.recorded(in: database)
            }
        }
        let derivation = try ReporterKeyDerivation(recorded: recorded.derivation ?? "")
        // The derivation runs outside any transaction: it holds nothing while it works.
        let hasher = try await hasher(for: derivation)
        let fingerprint = hasher.fingerprint
        var stored: String?
        switch derivation {
        case .none:
            // Recorded by an earlier release, never written now (a database first used now derives).
            stored = recorded.bare == Self.unusedMarker ? nil : recorded.bare
            guard stored != nil, recorded.stretched == nil else {
                throw contradiction("the derivation 'none' (reporter_key_derivation), which only a database an earlier "
                    + "release filled has, " + (stored == nil ? "but no fingerprint of the key itself (reporter_key_fingerprint)"
                                                              : "and a fingerprint of a derived key (reporter_key_stretched_fingerprint)"))
            }
        case .scrypt:
            // The bare key's row must keep the marker: an earlier release records its key there
            // (insert if absent) and then hashes beside this one's.
            if let bare = recorded.bare, bare != Self.unusedMarker {
                throw contradiction("a derivation (reporter_key_derivation) and a fingerprint of the key itself "
                    + "(reporter_key_fingerprint): an earlier release has taken reports into it since it was migrated")
            }
            if recorded.stretched == nil, recorded.used {
                // Only a database whose first user stopped between its two records lacks it; one
                // with reports lost it by hand, and recording a key now could take another one.
                throw contradiction("reports and a derivation (reporter_key_derivation) but no fingerprint of the derived "
                    + "key (reporter_key_stretched_fingerprint): any key would now be taken; restore it from a backup")
            }
            if recorded.bare == nil {
                let marker = Self.unusedMarker
                _ = try await bounded {
                    try await database.execute("""
                        INSERT INTO settings (name, value) VALUES ('reporter_key_fingerprint', \(marker)) ON CONFLICT (name) DO NOTHING
                        """)
                }
            }
            stored = recorded.stretched
            if stored == nil {
                try refuseIfPlaceholder()
                stored = try await bounded {
                    try await database.execute("""
                        INSERT INTO settings (name, value) VALUES ('reporter_key_stretched_fingerprint', \(fingerprint))
                        ON CONFLICT (name) DO NOTHING
                        """)
                    return try await Self.recorded(in: database).stretched
                }
            }
        }
        guard stored == fingerprint else {
            throw TiplineError(.configuration,
                "\(Self.environmentVariable) differs from the key this database recorded when it was first used "
                + "(fingerprint \(stored ?? "none") in the database, \(fingerprint) here): "
                + "reporters would be counted twice")
        }
        return hasher
    }

    /// What migration 0014 writes as the bare key's fingerprint in a database not used yet: no key
    /// has it, so an earlier release (which compares only that row) refuses the database.
    static let unusedMarker = "stretched (schema 14): use a tipline that has migration 0014"

    /// The error for settings that cannot all be true (written by hand, or partly lost).
    private func contradiction(_ what: String) -> TiplineError {
        TiplineError(.configuration, "this database's reporter key settings contradict each other: it records \(what)")
    }

    /// Refuses a placeholder key (`weakness`) for a database that records no key yet.
    private func refuseIfPlaceholder() throws {
        guard let weakness else { return }
        throw TiplineError(.configuration,
            "\(Self.environmentVariable) looks like a placeholder (\(weakness)); make a real one with: openssl rand -hex 32")
    }

    /// What the database records: the derivation, the bare key's fingerprint (or the marker of a
    /// database not used yet), the derived key's fingerprint, and whether it holds any report.
    @Sendable
    private static func recorded(in database: Database) async throws
        -> (derivation: String?, bare: String?, stretched: String?, used: Bool) {
        var values: [String: String] = [:]
        for row in try await database.query("""
            SELECT name, value FROM settings
             WHERE name IN ('reporter_key_derivation', 'reporter_key_fingerprint', 'reporter_key_stretched_fingerprint')
            UNION ALL
            SELECT 'reports', 'yes' WHERE EXISTS (SELECT 1 FROM reports)
            """) {
            values[try row.decode(String.self, at: 0)] = try row.decode(String.self, at: 1)
        }
        return (values["reporter_key_derivation"], values["reporter_key_fingerprint"], values["reporter_key_stretched_fingerprint"],
                values["reports"] != nil)
    }
}

extension ReporterHash: PostgresDecodable {
    /// From `bytea`'s hex output (`\x` and two digits a byte), with no allocation on the way.
    public init?(postgresBytes text: UnsafeBufferPointer<UInt8>) {
        guard let digits = PostgresHex.byteaDigits(text) else { return nil }
        var raw: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        guard withUnsafeMutableBytes(of: &raw, { PostgresHex.decode(digits, into: $0) }) else { return nil }
        self.init(raw: raw, count: digits.count / 2)
    }
}
