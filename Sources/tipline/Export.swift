import ArgumentParser
import Foundation
import TiplineStore

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every report as one JSON object per line.",
        discussion: """
            Fields: id, external_id, source, channel, status (queued, running, retrying, done, dead), \
            outcome (no_contact, recorded, escalated; null until done), offender_id, level (the seller's \
            level after this report), category, contacts [{kind, value}], reported_at, processed_at.
            Reports come in id order; an export that was interrupted goes on from the last id it \
            printed with --after ID.
            """
    )

    @Option(help: "Print only reports with an id greater than this (the last id of an interrupted export).")
    var after: Int64 = 0
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if after < 0 { throw ValidationError("--after must be 0 or a report id") }
    }

    func run() async throws {
        let output = BufferedOutput()
        try await connection.withDatabase(application: "tipline-export", maxConnections: 1) { database in
            try await ReportExport.run(database, after: after) { line in try output.write(line + "\n") }
        }
        try output.flush()
    }
}
