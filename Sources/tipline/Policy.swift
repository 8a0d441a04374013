import ArgumentParser
import Foundation
import TiplineCore
import TiplineStore

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Show or change the escalation ladder.",
        subcommands: [Show.self, Set.self],
        defaultSubcommand: Show.self
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The ladder in force and the ones before it.")
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let history = try await connection.withDatabase(application: "tipline-policy") { database in
                try await PolicyStore.history(database)
            }
            if json {
                try Output.line(try JSONOutput.string(history, pretty: true))
                return
            }
            let formatter = ISO8601DateFormatter()
            for (index, row) in history.enumerated() {
                let l = row.ladder
                try Output.line("\(index == 0 ? "in force" : "before  ")  #\(row.id)  distinct reporters within \(l.windowDays) days: "
                      + "review \(l.review), restrict \(l.restrict), suspend \(l.suspend), refer \(l.refer)")
                try Output.line("          since \(formatter.string(from: row.createdAt)) by \(row.actor): \(row.note)")
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install a new ladder (applies to reports processed from now on; recorded).",
            discussion: "Unset thresholds keep their current values. Levels already reached never go down."
        )
        @Option(name: .customLong("window-days"), help: "Days in a window of distinct reporters (1-3650).") var windowDays: Int?
        @Option(help: "Distinct reporters in one window that make a seller `review`.") var review: Int?
        @Option(help: "... that make it `restrict` (not fewer than --review).") var restrict: Int?
        @Option(help: "... that make it `suspend` (not fewer than --restrict).") var suspend: Int?
        @Option(help: "... that make it `refer` (not fewer than --suspend; at most 1000000).") var refer: Int?
        @Option(help: "Why the ladder changes (recorded).") var note: String
        @Option(help: "Who changes it (default: $USER, else admin).") var actor: String?
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            try AdminActor.validate(actor)
            if windowDays == nil, review == nil, restrict == nil, suspend == nil, refer == nil {
                throw ValidationError("give at least one of --window-days, --review, --restrict, --suspend, --refer (the others keep their values)")
            }
        }

        func run() async throws {
            let id = try await connection.withDatabase(application: "tipline-policy") { database in
                guard let current = try await PolicyStore.history(database).first?.ladder else {
                    throw TiplineError(.schema, "no ladder policy: run tipline migrate")
                }
                let ladder = Ladder(windowDays: windowDays ?? current.windowDays, review: review ?? current.review,
                                    restrict: restrict ?? current.restrict, suspend: suspend ?? current.suspend,
                                    refer: refer ?? current.refer)
                return try await PolicyStore.install(ladder, note: note, actor: AdminActor.name(actor),
                                                     in: database)
            }
            try Output.line("installed ladder policy #\(id)")
        }
    }
}
