import ArgumentParser
import Foundation
import TiplineCore
import TiplineStore

/// The `tipline` command: intake, workers and administration over one PostgreSQL database.
@main
struct Tipline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tipline",
        abstract: "Turn citizens' reports of account-rental ads into action.",
        discussion: """
            Reports are stored in PostgreSQL and processed by any number of `tipline work` processes, \
            which extract the sellers' contacts, group reports by seller and escalate repeat sellers.

            Connection: --database-url or DATABASE_URL (a libpq URI or conninfo string); otherwise \
            libpq's PG* environment variables and defaults.

            Reporters' identities are stored only as a hash keyed with TIPLINE_REPORTER_KEY (make one \
            with `openssl rand -hex 32`, keep it for good, give every host the same): `submit` and \
            `serve` need it; `work` does not (it sees only the hashes).
            """,
        // The schema is what an operator upgrading a cluster must match: every worker and server
        // refuses a database migrated past or short of it.
        version: "tipline for database schema \(Migration.embedded.last?.version ?? 0) (migrations/ up to \(Migration.embedded.last.map { String(format: "%04d_%@", $0.version, $0.name) } ?? "none"))",
        subcommands: [
            Migrate.self, Submit.self, Work.self, Status.self, Export.self, Extract.self,
            OffenderCommand.self, Dead.self, PolicyCommand.self, Escalations.self, Serve.self, TokenCommand.self,
        ]
    )

    static func main() async {
        StandardDescriptors.keepClosedOnesClosed()
        // What ArgumentParser's own `main` does, but for the note after a usage error that a
        // negative number probably caused: the parser reads `-1` as an option, and its message
        // (`Missing value for '--limit <limit>'`, `Missing expected argument`) does not say so.
        var command: any ParsableCommand
        do {
            command = try await asyncParseAsRoot()
        } catch {
            // Help and the version go to standard output, as the parser has them.
            guard exitCode(for: error) != .success else { exit(withError: error) }
            // The parser's message quotes what it was given: control characters are escaped, so
            // that an argument cannot recolour or clear the terminal (`terminalSafe`), line by line.
            let message = fullMessage(for: error)
            if !message.isEmpty {
                Output.errorLine(message.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { String($0).terminalSafe }.joined(separator: "\n"))
            }
            // A usage error where a word was a negative number: the word is not repeated (it may
            // be a reporter's identity: a negative chat id).
            let negative = CommandLine.arguments.dropFirst().prefix { $0 != "--" }.contains { $0.wholeMatch(of: /-[0-9][0-9.]*/) != nil }
            if negative, exitCode(for: error) == .validationFailure, Self.mayComeOfANegativeNumber(message) {
                Output.errorLine("note: a negative number given apart is read as an option (every word that starts with a dash is): "
                    + "give such a value as --option=-1, and such an argument after a -- that ends the options")
            }
            Foundation.exit(exitCode(for: error).rawValue)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

extension Tipline {
    /// Usage errors a negative number given apart may have caused: a value or an argument found
    /// missing, the number itself taken for an unknown option, or no id at all (`dead retry -3`).
    static func mayComeOfANegativeNumber(_ message: String) -> Bool {
        message.hasPrefix("Error: Missing value for") || message.hasPrefix("Error: Missing expected argument")
            || message.wholeMatch(of: /Error: Unknown option '-[0-9][^']*'(?s:.*)/) != nil
            || message.hasPrefix("Error: \(Dead.Retry.noIDs)")
    }
}

/// A process started with standard input, output or error closed (`tipline ... >&-`) would give
/// that descriptor number to the next file it opens (an event descriptor of the runtime, a
/// database socket): output meant for the caller would go there, or fail with a baffling error
/// (`Invalid argument`). Each closed one is held by /dev/null opened the other way round (input
/// for writing only, output for reading only), so that using it fails as a closed descriptor does
/// (`Bad file descriptor`): input that is not there is not an empty file, and output that cannot
/// be shown is still an error (a token never shown is revoked).
enum StandardDescriptors {
    static func keepClosedOnesClosed() {
        for descriptor in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] where fcntl(descriptor, F_GETFD) == -1 {
            // The lowest free number: this one, since those below it are open by now.
            _ = open("/dev/null", descriptor == STDIN_FILENO ? O_WRONLY : O_RDONLY)
        }
    }
}
