import Crypto
public import TiplineCore
public import Foundation
public import Postgres

/// The secret that turns reporter identities into keyed hashes (HMAC-SHA256).
///
/// Only the hash is ever stored: enough to count distinct reporters, useless for finding out who
/// they are without the key. The key comes from `TIPLINE_REPORTER_KEY`.
public struct ReporterKey: Sendable {
    /// The environment variable the key is read from.
    public static let environmentVariable = "TIPLINE_REPORTER_KEY"
    private let secret: Data

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

    /// The keyed hash of a reporter identity (32 bytes).
    public func hash(_ reporter: String) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data(reporter.utf8), using: SymmetricKey(data: secret)))
    }
}

extension ReporterKey {
    /// A fingerprint of the key (HMAC of a fixed label): safe to store, and equal only for equal keys.
    public var fingerprint: String {
        hash("tipline reporter key check v1").prefix(16).map { String(format: "%02x", $0) }.joined()
    }

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

    /// Records the key's fingerprint on first use and refuses a different key afterwards: a process
    /// hashing with another key would count one reporter as two and break every level. A
    /// placeholder key is refused on first use; a database already filled with one keeps it (there
    /// is no other key its reporters' hashes match).
    public func verify(against database: Database) async throws {
        let fingerprint = self.fingerprint
        let weakness = self.weakness
        let placeholder = weakness != nil
        let stored = try await database.transaction { tx in
            if !placeholder {
                try tx.execute("""
                    INSERT INTO settings (name, value) VALUES ('reporter_key_fingerprint', \(fingerprint))
                    ON CONFLICT (name) DO NOTHING
                    """)
            }
            return try tx.query("SELECT value FROM settings WHERE name = 'reporter_key_fingerprint'")
                .first?.decode(String.self, at: 0)
        }
        if placeholder, stored == nil {
            throw TiplineError(.configuration,
                "\(Self.environmentVariable) looks like a placeholder (\(weakness ?? "")); "
                + "make a real one with: openssl rand -hex 32")
        }
        guard stored == fingerprint else {
            throw TiplineError(.configuration,
                "\(Self.environmentVariable) differs from the key this database recorded when it was first used "
                + "(by `submit`, `serve` or `work`; fingerprint \(stored ?? "none") in the database, \(fingerprint) here): "
                + "reporters would be counted twice")
        }
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
