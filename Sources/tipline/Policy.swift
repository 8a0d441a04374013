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
                try Output.line("          since \(formatter.string(from: row.createdAt)) by \(row.actor.terminalSafe): \(row.note.terminalSafe)")
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
            // What can be told without the ladder in force; the rest (thresholds against the ones
            // kept) once it is read.
            if let windowDays, !(1...Ladder.maxWindowDays).contains(windowDays) {
                throw ValidationError("--window-days must be 1 to \(Ladder.maxWindowDays), not \(windowDays)")
            }
            let thresholds = [("--review", review), ("--restrict", restrict), ("--suspend", suspend), ("--refer", refer)]
                .compactMap { name, value in value.map { (name, $0) } }
            for (name, value) in thresholds where !(1...Ladder.maxThreshold).contains(value) {
                throw ValidationError("\(name) must be 1 to \(Ladder.maxThreshold) reporters, not \(value)")
            }
            for (lower, higher) in zip(thresholds, thresholds.dropFirst()) where lower.1 > higher.1 {
                throw ValidationError("thresholds must not decrease: \(lower.0) \(lower.1) is above \(higher.0) \(higher.1)")
            }
            if note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw ValidationError("--note must say why the ladder changes")
            }
            try RecordedText.validate(note, option: "--note")
        }

        func run() async throws {
            let id = try await connection.withDatabase(application: "tipline-policy") { [windowDays, review, restrict, suspend, refer, note] database in
                try await PolicyStore.install(note: note, actor: AdminActor.name(actor), in: database) { current, currentID in
                    let ladder = Ladder(windowDays: windowDays ?? current.windowDays, review: review ?? current.review,
                                        restrict: restrict ?? current.restrict, suspend: suspend ?? current.suspend,
                                        refer: refer ?? current.refer)
                    // Say which thresholds came from the ladder in force, when together they are wrong.
                    let kept = [("review", review), ("restrict", restrict), ("suspend", suspend), ("refer", refer)]
                        .filter { $0.1 == nil }.map(\.0)
                    if let problem = ladder.problem, !kept.isEmpty {
                        throw TiplineError(.invalidInput, "ladder: \(problem) (\(kept.joined(separator: ", ")) as in policy #\(currentID), in force)")
                    }
                    return ladder
                }
            }
            try confirmCommitted("installed ladder policy #\(id)")
        }
    }
}
