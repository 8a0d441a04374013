import ArgumentParser
import TiplineStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the migrations this binary carries, in order.",
        discussion: """
            Each migration runs in its own transaction under an advisory lock, so several processes may \
            migrate at once: each migration is applied once, in order, by whichever process takes the \
            lock first (the output says which ones this process applied). A migration whose file \
            changed after it was applied is refused.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let report = try await connection.withDatabase(application: "tipline-migrate") { database in
            try await Migrator().migrate(database)
        }
        if report.applied.isEmpty {
            try Output.line("schema is up to date (\(report.alreadyApplied.count) migrations)")
        } else {
            try Output.line("applied migrations \(report.applied.map(String.init).joined(separator: ", "))"
                  + " (\(report.alreadyApplied.count) already applied)")
        }
    }
}
