import ArgumentParser
import Foundation
import TiplineCore
import TiplineStore

struct Dead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List dead reports or queue them again.",
        subcommands: [List.self, Retry.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dead reports with their last error, most recent first.")
        @Option(help: "How many to show (1-100000).") var limit: Int = 50
        @Flag(help: "One JSON object per line.") var json = false
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if !(1...100_000).contains(limit) { throw ValidationError("--limit must be between 1 and 100000") }
        }

        func run() async throws {
            let rows = try await connection.withDatabase(application: "tipline-dead") { database in
                try await DeadJobs.list(database, limit: limit)
            }
            if json {
                for row in rows { try Output.line(try JSONOutput.string(row)) }
                return
            }
            if rows.isEmpty { try Output.line("no dead reports") }
            for row in rows {
                try Output.line("report \(row.id)  \(row.source.terminalSafe)/\(row.externalID.terminalSafe)  attempts \(row.attempts)  \((row.lastError ?? "").terminalSafe)")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue dead reports again with a fresh attempt budget.",
            discussion: "Exit status 3 when a report id given is not dead (or does not exist): it is left alone and named on standard error.")
        /// The usage error of a retry with neither ids nor `--all`.
        static let noIDs = "give the ids of the reports to retry, or --all"

        @Argument(help: "Report ids to retry.") var ids: [Int64] = []
        @Flag(help: "Retry every dead report.") var all = false
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if ids.isEmpty, !all { throw ValidationError(Self.noIDs) }
            if !ids.isEmpty, all { throw ValidationError("give report ids or --all, not both") }
        }

        func run() async throws {
            let requeued = try await connection.withDatabase(application: "tipline-dead") { database in
                try await DeadJobs.retry(database, ids: all ? nil : ids)
            }
            // Only a retry that changed something has a change to confirm.
            try (requeued.isEmpty ? Output.line : confirmCommitted)("queued \(requeued.count) dead report(s) again" + (requeued.isEmpty ? "" : ": \(requeued.map(String.init).joined(separator: ", "))"))
            let skipped = Set(ids).subtracting(requeued)
            if !skipped.isEmpty {
                Output.error("not dead, or no such report (left alone): \(skipped.sorted().map(String.init).joined(separator: ", "))\n")
                throw ExitCode(3)
            }
        }
    }
}
