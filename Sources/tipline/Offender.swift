public import ArgumentParser
import Foundation
public import TiplineCore
import ContactExtraction
import Postgres
import TiplineStore

struct OffenderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offender",
        abstract: "Show a seller, or set its level.",
        subcommands: [ShowOffender.self, SetLevel.self],
        defaultSubcommand: ShowOffender.self
    )
}

struct SetLevel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-level",
        abstract: "Set a seller's level, with the reason; recorded in the audit table (a rise also goes to the outbox).",
        discussion: "Later reports can still raise the level again by the ladder; it never falls on its own."
    )

    @Argument(help: "Offender id, 29 or #29 (merged ids resolve to the survivor).") var id: String
    @Argument(help: "none, review, restrict, suspend or refer.") var level: Level
    @Option(help: "Why (required, recorded).") var reason: String
    @Option(help: "Who (default: $USER, else admin).") var actor: String?
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        // Parsed here, not by the argument parser, whose refusal would quote it raw (control characters included).
        if OffenderView.id(id) == nil {
            throw ValidationError("expected an offender id (29 or #29), not \"\(String(id.prefix(64)).terminalSafe)\"")
        }
        try AdminActor.validate(actor)
        try RecordedText.validate(reason, option: "--reason")
    }

    func run() async throws {
        let change = try await connection.withDatabase(application: "tipline-offender") { database in
            try await OffenderAdmin.setLevel(OffenderView.id(id)!, to: level, reason: reason, actor: AdminActor.name(actor), in: database)
        }
        try confirmCommitted("offender #\(change.offender): \(change.from.rawValue) -> \(change.to.rawValue) (recorded)")
    }
}

extension Level: ExpressibleByArgument {}

struct ShowOffender: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one seller: contacts, reports (newest first), distinct reporters, every level change.",
        discussion: """
            REFERENCE is an offender id (merged ids resolve to the survivor) or KIND:VALUE of one of its \
            contacts, e.g. phone:+8613812345678 (or 13812345678), qq:12345678, wechat:abc_123; the value \
            may be typed in any form an ad may use (telegram:t.me/Acct_Shop, site:https://www.shop.cn/x, \
            qq:１２３４５６７８). \
            The level history holds the ladder's rises and every level an administrator set, up or \
            down, with who and why. \
            Reporters are shown only as a prefix of their keyed hash (r:1a2b3c4d). \
            At most --limit contacts and --limit reports are listed (the counts are always whole), \
            so that a seller with millions of contacts does not fill the screen or the memory; \
            --all lists every one.
            """
    )

    @Argument(help: "Offender id (29, or #29 as status shows it) or KIND:VALUE.")
    var reference: String
    @Flag(help: "Print JSON.")
    var json = false
    @Option(help: "List at most N contacts and N reports (1-1000000, default 1000; the newest reports).")
    var limit: Int?
    @Flag(help: "List every contact and report, however many.")
    var all = false
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let limit, !(1...1_000_000).contains(limit) { throw ValidationError("--limit must be between 1 and 1000000") }
        if all, limit != nil { throw ValidationError("give --limit or --all, not both") }
        guard OffenderView.id(reference) == nil else { return }
        guard let colon = reference.firstIndex(of: ":") else {
            throw ValidationError("expected an offender id (29 or #29) or KIND:VALUE (e.g. qq:12345678), not \"\(String(reference.prefix(64)).terminalSafe)\"")
        }
        let kind = reference[..<colon].lowercased()
        guard ContactKind(rawValue: kind) != nil else {
            throw ValidationError("unknown contact kind \"\(String(kind.prefix(32)).terminalSafe)\" (expected one of \(ContactKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    func run() async throws {
        let view = try await connection.withDatabase(application: "tipline-offender") { database in
            try await OffenderView.find(reference, in: database, limit: all ? nil : limit ?? 1_000)
        }
        guard let view else {
            throw CommandFailure(TiplineError(.notFound, "no offender matches \(reference)"))
        }
        if json {
            try Output.line(try JSONOutput.string(view, pretty: true))
            return
        }
        let formatter = ISO8601DateFormatter()
        // Reports' times to the second, unless one of them has a fraction: then every one to the
        // microsecond, as `export` and `--json` give them (a 30-day window's edge may need it).
        let precise = view.reports.contains { !PostgresTimestamp.format($0.reportedAt).hasSuffix(".000000Z") }
        let reportedAt = { (date: Date) in precise ? PostgresTimestamp.format(date) : formatter.string(from: date) }
        let reports = view.reportCount == 1 ? "1 report" : "\(view.reportCount) reports"
        let reporters = view.distinctReporters == 1 ? "1 distinct reporter" : "\(view.distinctReporters) distinct reporters"
        try Output.line("Offender #\(view.id)  level \(view.level)  \(reports) from \(reporters)")
        if !view.mergedIDs.isEmpty {
            // A seller that absorbed thousands would fill the screen with ids: the first 20 here.
            let shown = view.mergedIDs.prefix(20).map { "#\($0)" }.joined(separator: ", ")
            let more = view.mergedIDs.count > 20 ? " and \(view.mergedIDs.count - 20) more (--json lists them all)" : ""
            try Output.line("Merged from \(shown)\(more)")
        }
        try Output.line("\nContacts")
        for contact in view.contacts { try Output.line("  \(contact.kind.padding(9)) \(contact.value)") }
        if view.contactCount > view.contacts.count {
            try Output.line("  ... and \(view.contactCount - view.contacts.count) more (--limit N or --all to list them)")
        }
        try Output.line("\nLevel history")
        if view.levelHistory.isEmpty { try Output.line("  no changes") }
        for change in view.levelHistory {
            var line = "  \(formatter.string(from: change.at))  \(change.from) -> \(change.to)"
            if let report = change.reportID { line += "  (report \(report))" }
            if let actor = change.actor { line += "  (set by \(actor.terminalSafe): \((change.reason ?? "").terminalSafe))" }
            if change.offenderID != view.id { line += "  (as #\(change.offenderID), merged in since)" }
            try Output.line(line)
        }
        try Output.line("\nReports (newest first)")
        for report in view.reports {
            try Output.line("  \(String(report.id).padding(7)) \(reportedAt(report.reportedAt))  \(report.channel.padding(7))"
                  + " \(report.reporter)  \((report.category ?? "-").padding(7)) \((report.outcome ?? "-").padding(10))"
                  + " \(report.source.terminalSafe)/\(report.externalID.terminalSafe)")
        }
        if view.reportCount > view.reports.count {
            try Output.line("  ... and \(view.reportCount - view.reports.count) older (--limit N or --all to list them)")
        }
    }
}
