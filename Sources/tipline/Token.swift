import ArgumentParser
import Foundation
import TiplineCore
import TiplineHTTP

/// `tipline token create|list|revoke`: bearer tokens of the HTTP intake.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke the bearer tokens of the HTTP intake.",
        discussion: """
            A token belongs to one source (the name its reports are filed under, which with the \
            external_id makes a submission idempotent) and one channel. Only its SHA-256 is stored: \
            the token is printed once, by `create`, and never again.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a token; prints it once on standard output (keep it: it cannot be shown again).")
        @Option(help: "Source name its reports are filed under (A-Z a-z 0-9 . _ -, up to 64).") var source: String
        @Option(help: "Channel of its reports: app or hotline.") var channel: Channel
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            do { try APITokens.validateSource(source) } catch { throw ValidationError("--source \(error.message)") }
        }

        func run() async throws {
            // A reader that has gone (`| head -0`) must fail the write, not kill the process before
            // the token it never showed is revoked.
            Output.ignoreBrokenPipes()
            let (id, token) = try await connection.withDatabase(application: "tipline-token") { database in
                try await APITokens(database: database).create(source: source, channel: channel)
            }
            do {
                try Output.line(token)
            } catch {
                // Never shown, so never usable: revoke it rather than leave it active.
                let revoked = try? await connection.withDatabase(application: "tipline-token") { database in
                    try await APITokens(database: database).revoke(id: id)
                }
                throw CommandFailure(TokenNotShown(id: id, reason: error, revoked: revoked != nil))
            }
            Output.error("token \(id) for source \(source) (\(channel.rawValue)); it is shown only this once\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every token's id, source, channel and dates (never the tokens).")
        @Flag(help: "One JSON object per line.") var json = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let tokens = try await connection.withDatabase(application: "tipline-token") { database in
                try await APITokens(database: database).list()
            }
            if json {
                let encoder = JSONOutput.encoder()
                for token in tokens { try Output.line(String(decoding: try encoder.encode(token), as: UTF8.self)) }
                return
            }
            if tokens.isEmpty { try Output.line("no tokens (make one with: tipline token create --source NAME --channel app)") }
            let format = ISO8601DateFormatter()
            for token in tokens {
                let state = token.revokedAt.map { "revoked " + format.string(from: $0) } ?? "active"
                let used = token.lastUsedAt.map { format.string(from: $0) } ?? "never"
                try Output.line("\(token.id)\t\(token.source.terminalSafe)\t\(token.channel)\tcreated \(format.string(from: token.createdAt))\tlast used \(used)\t\(state)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token; requests with it get 401 from then on.")
        @Argument(help: "The token's id (from `tipline token list`).") var id: Int64
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let revoked = try await connection.withDatabase(application: "tipline-token") { database in
                try await APITokens(database: database).revoke(id: id)
            }
            switch revoked {
            case .none: throw CommandFailure(TokenNotFound(id: id))
            case .some(true): try confirmCommitted("revoked token \(id)")
            case .some(false): try Output.line("token \(id) was already revoked")
            }
        }
    }
}

private struct TokenNotFound: Error, CustomStringConvertible {
    let id: Int64
    var description: String { "no token with id \(id)" }
}

/// `token create` could not print the token it made.
struct TokenNotShown: Error, CustomStringConvertible {
    let id: Int64
    let reason: any Error
    let revoked: Bool

    var description: String {
        "\(reason): token \(id) was never shown, " + (revoked ? "so it was revoked; make another" : "and revoking it failed too: run `tipline token revoke \(id)`")
    }
}
