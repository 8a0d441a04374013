import ArgumentParser
import Foundation
import TiplineStore

struct Dead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List dead reports or queue them again.",
        subcommands: [List.self, Retry.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dead reports with their last error, most recent first.")
        @Option(help: "How many to show.") var limit: Int = 50
        @Flag(help: "One JSON object per line.") var json = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let rows = try await connection.withDatabase(application: "tipline-dead") { database in
                try await DeadJobs.list(database, limit: limit)
            }
            if json {
                for row in rows { print(try JSONOutput.string(row)) }
                return
            }
            if rows.isEmpty { print("no dead reports") }
            for row in rows {
                print("report \(row.id)  \(row.source)/\(row.externalID)  attempts \(row.attempts)  \(row.lastError ?? "")")
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue dead reports again with a fresh attempt budget.")
        @Argument(help: "Report ids to retry.") var ids: [Int64] = []
        @Flag(help: "Retry every dead report.") var all = false
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if ids.isEmpty == !all { throw ValidationError("give report ids or --all (not both)") }
        }

        func run() async throws {
            let requeued = try await connection.withDatabase(application: "tipline-dead") { database in
                try await DeadJobs.retry(database, ids: all ? nil : ids)
            }
            print("queued \(requeued.count) dead report(s) again" + (requeued.isEmpty ? "" : ": \(requeued.map(String.init).joined(separator: ", "))"))
            let skipped = Set(ids).subtracting(requeued)
            if !skipped.isEmpty {
                print("not dead, or no such report (left alone): \(skipped.sorted().map(String.init).joined(separator: ", "))")
            }
        }
    }
}
