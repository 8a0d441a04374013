import Crypto
public import Foundation
public import Postgres
public import TiplineCore

/// A client allowed to use the HTTP intake: reports it submits belong to `source`.
public struct APIClient: Sendable, Equatable {
    /// The token's id (shown by `tipline token list`, never the token itself).
    public var tokenID: Int64
    /// The source its reports are filed under; with the external id, the idempotency key.
    public var source: String
    /// The channel its reports come from.
    public var channel: Channel
}

/// One row of `tipline token list`.
public struct APITokenInfo: Sendable, Encodable {
    /// The token's id.
    public var id: Int64
    /// The source its reports are filed under.
    public var source: String
    /// `app` or `hotline`.
    public var channel: String
    /// When it was made.
    public var createdAt: Date
    /// When it was last used (updated at most once a minute); null if never.
    @ExplicitNull public var lastUsedAt: Date?
    /// When it was revoked; null if it was not.
    @ExplicitNull public var revokedAt: Date?
}

/// Bearer tokens of the HTTP intake. A token is `tl_` + 64 hex digits (32 random bytes); only its
/// SHA-256 is stored, so a copy of the database lets nobody in.
public struct APITokens: Sendable {
    /// Where tokens live.
    public let database: Database

    /// Creates the token store.
    public init(database: Database) {
        self.database = database
    }

    /// Checks a source name: it appears in URLs, logs and the `reports` table.
    public static func validateSource(_ source: String) throws(InputError) {
        guard (1...64).contains(source.utf8.count),
              source.utf8.allSatisfy({ $0 < 0x80 && (isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")) })
        else {
            throw InputError(field: "source", "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
        }
    }

    /// Makes a token for `source` and returns its id and the token, which is never shown again.
    public func create(source: String, channel: Channel) async throws -> (id: Int64, token: String) {
        try Self.validateSource(source)
        var generator = SystemRandomNumberGenerator()  // getrandom(2) on Linux: cryptographically secure
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = "tl_" + PostgresHex.encode(bytes)
        let hash = Self.hash(token)
        let id = try await database.query("""
            INSERT INTO api_tokens (source, channel, token_hash) VALUES (\(source), \(channel.rawValue), \(hash))
            RETURNING id
            """).one().decode(Int64.self, at: 0)
        return (id, token)
    }

    /// Every token, newest first, without the tokens themselves (only hashes are stored).
    public func list() async throws -> [APITokenInfo] {
        try await database.query("""
            SELECT id, source, channel, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id DESC
            """).map { row in
            APITokenInfo(id: try row.decode(at: 0), source: try row.decode(at: 1), channel: try row.decode(at: 2),
                         createdAt: try row.decode(at: 3), lastUsedAt: try row.decodeIfPresent(at: 4),
                         revokedAt: try row.decodeIfPresent(at: 5))
        }
    }

    /// Revokes a token at once (the next request with it gets 401). `nil` when no such token;
    /// `false` when it was already revoked.
    public func revoke(id: Int64) async throws -> Bool? {
        let rows = try await database.query("""
            WITH target AS (SELECT id, revoked_at FROM api_tokens WHERE id = \(id) FOR UPDATE),
                 revoked AS (UPDATE api_tokens SET revoked_at = now()
                              WHERE id IN (SELECT id FROM target WHERE revoked_at IS NULL) RETURNING id)
            SELECT EXISTS (SELECT 1 FROM revoked) FROM target
            """)
        return try rows.first?.decode(Bool.self, at: 0)
    }

    /// The client a presented token belongs to, or `nil` when it is unknown or revoked. Tokens are
    /// looked up on every request (no cache), so a revocation takes effect immediately.
    public func authenticate(_ token: String) async throws -> APIClient? {
        guard token.hasPrefix("tl_"), token.utf8.count == 67 else { return nil }
        let hash = Self.hash(token)
        // `last_used_at` is written at most once a minute per token, so busy clients do not turn
        // every request into a row update.
        let rows = try await database.query("""
            WITH token AS (SELECT id, source, channel FROM api_tokens WHERE token_hash = \(hash) AND revoked_at IS NULL),
                 touched AS (UPDATE api_tokens SET last_used_at = now()
                              WHERE id IN (SELECT id FROM token)
                                AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute'))
            SELECT id, source, channel FROM token
            """)
        guard let row = rows.first, let channel = Channel(rawValue: try row.decode(String.self, at: 2)) else { return nil }
        return APIClient(tokenID: try row.decode(at: 0), source: try row.decode(at: 1), channel: channel)
    }

    static func hash(_ token: String) -> Data {
        Data(SHA256.hash(data: Data(token.utf8)))
    }
}
