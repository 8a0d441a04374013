import ArgumentParser
import Foundation
import Postgres
import TiplineCore
import TiplineStore

struct Escalations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the escalation outbox in order, one JSON object per line, from a cursor.",
        discussion: """
            Each rise of a seller's level is one row: {"id", "offender_id", "from", "to", "report_id", \
            "audit_id", "at"}. Pass the last id you handled as --after; rows commit in id order, so \
            nothing is skipped. --follow keeps reading as new rows are written (LISTEN tipline_escalations, \
            and a read every 5 s in case a notification was missed); it rides out a database restart, \
            reconnecting with backoff, and stops on SIGINT, SIGTERM or SIGHUP with exit status 0 (a \
            database it never reached is an error at once, exit 1).
            """
    )

    @Option(help: "Print rows with an id greater than this.") var after: Int64 = 0
    @Flag(help: "Keep waiting for new rows.") var follow = false
    @Option(help: "Rows fetched per query (1-100000); every row after --after is printed either way.") var limit: Int = 1000
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if after < 0 { throw ValidationError("--after must be 0 or an escalation id") }
        if !(1...100_000).contains(limit) { throw ValidationError("--limit must be between 1 and 100000") }
    }

    func run() async throws {
        if follow {
            // From the start: a signal while the listener connects ends it cleanly too.
            try await EarlyShutdown.untilSignalled { [self] in try await followRows() }
        } else {
            try await read(AsyncStream { $0.finish() })
        }
    }

    /// `--follow`: reads, then waits for a notification or the 5 s poll, for ever.
    private func followRows() async throws {
        let signal = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let listener = NotificationListener(config: connection.config(application: "tipline-escalations"),
                                            channels: [Queue.escalationsChannel]) { _ in signal.continuation.yield() }
        listener.start()
        // The fallback poll: a row whose notification was lost is read within 5 s.
        let ticker = Task {
            while (try? await Task.sleep(for: .seconds(5))) != nil { signal.continuation.yield() }
        }
        defer {
            listener.stop()
            ticker.cancel()
        }
        try await read(signal.stream)
    }

    /// Reads rows from `--after` on; with `--follow`, for ever, waiting for `wakes` between reads.
    private func read(_ wakes: AsyncStream<Void>) async throws {
        let encoder = JSONOutput.encoder()
        try await connection.withDatabase(application: "tipline-escalations", maxConnections: 1) { database in
            var cursor = after
            var wake = wakes.makeAsyncIterator()
            while true {
                let from = cursor
                // Only a connection that worked once is worth waiting for: a wrong address, database
                // or password fails at once, as in every other command.
                let rows = try await retryingConnectionLoss(attempts: follow && database.hasConnected ? nil : 1) {
                    try await EscalationFeed.after(from, limit: limit, in: database)
                }
                for row in rows {
                    // Unbuffered, so that a consumer reading a pipe with --follow sees each row at once.
                    try Output.write(try encoder.encode(EscalationLine(row)) + Data("\n".utf8))
                    cursor = row.id
                }
                if rows.count == limit { continue }
                guard follow else { return }
                _ = await wake.next()
                try Task.checkCancellation()
            }
        }
    }
}

/// The JSON shape of one outbox row.
struct EscalationLine: Encodable {
    let id: Int64
    let offender_id: Int64
    let from: String
    let to: String
    @ExplicitNull var report_id: Int64?
    @ExplicitNull var audit_id: Int64?
    let at: Date

    init(_ row: EscalationFeed.Row) {
        id = row.id
        offender_id = row.offenderID
        from = row.from
        to = row.to
        report_id = row.reportID
        audit_id = row.auditID
        at = row.at
    }
}
