import ArgumentParser
import Foundation
import Postgres
import TiplineHTTP
import TiplineStore
import TiplineCore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Is the queue healthy? Depth, age, throughput, failures, workers, escalations, top sellers.",
        discussion: "With --watch the screen is redrawn every SECONDS until interrupted (SIGINT, SIGTERM or SIGHUP: exit 0)."
    )

    @Flag(help: "Print one JSON object instead of the screen.")
    var json = false
    @Option(help: "Redraw every SECONDS (0.2-3600; Ctrl-C to stop).")
    var watch: Double?

    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let watch, !(watch >= 0.2 && watch <= 3600) { throw ValidationError("--watch must be between 0.2 and 3600 seconds") }
    }

    func run() async throws {
        if watch != nil {
            Output.ignoreBrokenPipes()  // a closed stderr must not end the dashboard
            try await EarlyShutdown.untilSignalled { [self] in try await show() }
        } else {
            try await show()
        }
    }

    /// One snapshot, or with `--watch` one every SECONDS for ever.
    private func show() async throws {
        // On a terminal each frame replaces the last (home and clear); into a file or a pipe, frames
        // follow each other, a blank line apart, with no control codes.
        let clear = isatty(STDOUT_FILENO) == 1 ? "\u{1B}[H\u{1B}[2J" : ""
        var first = true
        func frame(_ text: String) throws {
            try Output.line((clear.isEmpty && !first ? "\n" : clear) + text)
            first = false
        }
        try await connection.withDatabase(application: "tipline-status", maxConnections: 1) { database in
            var unreachableSince: Date?
            repeat {
                let snapshot: StatusSnapshot
                do {
                    snapshot = try await StatusSnapshot.read(database)
                    unreachableSince = nil
                } catch let error as PostgresError where watch != nil && error.isConnectionProblem && !error.isRefusedConnection {
                    // A dashboard is most needed while the database restarts: it says so and
                    // keeps trying (JSON frames stay snapshots only: the outage goes to stderr).
                    let since = unreachableSince ?? Date()
                    unreachableSince = since
                    let line = "database unreachable for \(Int(Date().timeIntervalSince(since))) s, retrying every \(watch!.formatted()) s: "
                        + OneLineLogHandler.oneLine(error.message)
                    if json { Output.errorLine(line) } else { try frame(line.terminalSafe) }
                    try await Task.sleep(for: .seconds(watch!))
                    continue
                }
                if json {
                    try Output.line(try StatusScreen.json(snapshot))
                } else if watch != nil {
                    try frame(StatusScreen.render(snapshot))  // in one write
                } else {
                    try Output.line(StatusScreen.render(snapshot))
                }
                if let watch { try await Task.sleep(for: .seconds(watch)) }
            } while watch != nil
        }
    }
}

/// Renders a status snapshot for a terminal or as JSON.
enum StatusScreen {
    static func json(_ snapshot: StatusSnapshot) throws -> String {
        try JSONOutput.string(snapshot)
    }

    static func render(_ s: StatusSnapshot) -> String {
        var lines: [String] = []
        let c = s.counts
        lines.append("Tipline queue — \(s.healthy ? "healthy" : "NEEDS ATTENTION")  (\(ISO8601DateFormatter().string(from: s.at)))")
        for problem in s.attention { lines.append("  ! " + problem) }
        lines.append("")
        lines.append("Queue      queued \(c["queued"] ?? 0)  running \(c["running"] ?? 0)  retrying \(c["retrying"] ?? 0)  "
                     + "done \(c["done"] ?? 0)  dead \(c["dead"] ?? 0)")
        lines.append("Oldest     " + (s.oldestWaitingSeconds.map { "waiting for \(duration($0))" } ?? "nothing waiting"))
        lines.append("Completed  last 1m \(s.completed["1m"] ?? 0)  5m \(s.completed["5m"] ?? 0)  15m \(s.completed["15m"] ?? 0)"
                     + "  (\(String(format: "%.1f", Double(s.completed["1m"] ?? 0) / 60))/s)")
        lines.append("Failures   \(s.recentFailures) failed \(s.recentFailures == 1 ? "attempt" : "attempts") in the last 15m; dead in all \(c["dead"] ?? 0)"
                     + ((c["dead"] ?? 0) > 0 ? "  (tipline dead list)" : ""))
        let levels = ["review", "restrict", "suspend", "refer"].map { "\($0) \(s.escalations24h[$0] ?? 0)" }
        lines.append("Escalated  last 24h: " + levels.joined(separator: "  "))
        if s.categories24h.values.contains(where: { $0 > 0 }) {
            lines.append("Categories last 24h: " + ["rental", "sale", "buyback", "lookup", "other"]
                .map { "\($0) \(s.categories24h[$0] ?? 0)" }.joined(separator: "  "))
        }
        lines.append("")
        lines.append("Workers (\(s.workers.count) live" + (s.workers.isEmpty ? ")" : "; in flight and processed as of each one's last heartbeat)"))
        if s.workers.isEmpty { lines.append("  none") }
        for w in s.workers {
            lines.append("  \(w.name.terminalSafe.padding(28))  in flight \(String(w.inFlight).padding(4))  processed \(String(w.processed).padding(8))"
                         + "  heartbeat \(String(format: "%.1f", w.secondsSinceHeartbeat))s ago  up \(duration(w.upSeconds))")
        }
        lines.append("")
        lines.append("Top sellers (highest level first; most recently changed first within a level)")
        if s.topOffenders.isEmpty { lines.append("  none above `none` yet") }
        for o in s.topOffenders {
            lines.append("  #\(String(o.id).padding(6)) \(o.level.padding(8))  \(o.reporters) reporters, \(o.reports) reports"
                         + "  \(o.contacts.joined(separator: " "))")
        }
        return lines.joined(separator: "\n")
    }

    static func duration(_ seconds: Double) -> String { QueueHealth.duration(seconds) }
}

extension String {
    /// Pads with spaces on the right to at least `width` characters.
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

