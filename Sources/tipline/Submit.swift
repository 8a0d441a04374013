public import ArgumentParser
import Foundation
import Postgres
import TiplineCore
import TiplineHTTP
import TiplineStore

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit reports from a JSONL or CSV file, or one report from the command line.",
        discussion: """
            A JSONL line or CSV row has external_id, channel (app or hotline), reporter, text, and \
            optionally reported_at (ISO 8601 with a zone, default now) and platform. CSV needs a header row. \
            The same external_id from the same --source again is a duplicate, not a new report.

            Bad lines are reported on stderr with their line number and reason (and written to \
            --rejects if given); the good lines around them are accepted. A summary line follows. \
            Exit status: 0 when every line was accepted or a duplicate, 3 when some were rejected, 1 when the \
            submission failed (a file that cannot be read, the database), 64 for a usage error.

            Reporter identities are hashed with TIPLINE_REPORTER_KEY before anything is stored.
            """
    )

    @Option(help: "A JSONL or CSV file of reports ('-' for standard input).")
    var file: String?
    @Option(help: "File format: jsonl or csv (default: from the file name).")
    var format: InputFormat?
    @Option(help: "The client the reports come from; with external_id, the idempotency key (1-64 of A-Z a-z 0-9 . _ -, as a token's source).")
    var source: String = "cli"
    @Option(help: "Write rejected lines (line number, reason) to this file.")
    var rejects: String?
    // The next word whatever it starts with: an ad may begin with a dash ("-- 出租扣扣 ..."). Other
    // options take a value that starts with one as --option=VALUE, so that a --help after an
    // option with its value missing still shows the help instead of becoming the value.
    @Option(parsing: .unconditional, help: "The ad text of a single report (taken whatever it starts with).")
    var text: String?
    @Option(help: ArgumentHelp(
        "The reporter's identity for --text (app user id or caller's number; stored only hashed).",
        discussion: "A command line can be read by other users (ps) and lands in shell history: --reporter - reads the identity from standard input (its first line) instead."))
    var reporter: String?
    // Read as text and checked in validate(): the parser would repeat a wrong value in its error,
    // and a value out of place may be the reporter's identity.
    @Option(help: "Channel for --text: app or hotline (default app).")
    var channel: String?
    @Option(name: .customLong("external-id"), help: "External id for --text (default: derived from channel, reporter and text, so a retry is a duplicate).")
    var externalID: String?
    @Option(name: .customLong("reported-at"), help: "When the ad was reported, ISO 8601 (default now).")
    var reportedAt: String?
    @Option(help: "Where the ad was seen (for --text).")
    var platform: String?
    @Option(help: "Reports per transaction when reading a file (1-10000; default 1000).")
    var batch: Int?

    @OptionGroup var connection: ConnectionOptions

    // Words no option takes, refused in validate() without repeating them (the parser's own error
    // would print them).
    @Argument(parsing: .allUnrecognized, help: .hidden) var unexpected: [String] = []

    func validate() throws {
        // `--text --help` asks for the help, which --text would otherwise take for the ad.
        if let text, text == "--help" || text == "-h", !CommandLine.arguments.contains("--text=\(text)") {
            throw CleanExit.helpRequest(self)
        }
        if file == nil, text == nil { throw ValidationError("give --file PATH or --text TEXT --reporter ID") }
        if file != nil, text != nil { throw ValidationError("--file and --text cannot be combined") }
        if text != nil, reporter == nil { throw ValidationError("--text needs --reporter") }
        // The arguments came as bytes: ones that are not UTF-8 were replaced (U+FFFD), which could
        // make two reporters, or two reports' external ids, one. Not shown: the reporter is an
        // identity, and the others may hold one.
        for (option, value) in [("--reporter", reporter), ("--text", text), ("--external-id", externalID), ("--platform", platform)] {
            if value != nil, RawArguments.wasRepaired(option) {
                throw ValidationError("\(option) is not valid UTF-8 (the value is not shown); give it as UTF-8")
            }
        }
        if !unexpected.isEmpty {
            // An option misspelt is named; any other word is not (an identity given unquoted,
            // `--reporter 139 0000 9999`, would leave its last parts here).
            // Only long options are named: a word with one dash may be part of an identity given
            // unquoted (`--reporter Li -Na`), and tipline has no short options but -h.
            let options = unexpected.filter { $0.wholeMatch(of: /--[A-Za-z][A-Za-z-]*(=.*)?/) != nil }
                .map { $0.split(separator: "=", maxSplits: 1)[0] }
            if options.count == unexpected.count {
                throw ValidationError("unknown option(s) \(options.joined(separator: ", "))")
            }
            // A misspelt option with its value (`--chanel app`) is named; its value is not.
            let others = unexpected.count - options.count
            throw ValidationError((options.isEmpty ? "" : "unknown option(s) \(options.joined(separator: ", ")), and ")
                + "\(others) \(options.isEmpty ? "" : "other ")word(s) that no option takes (not shown: they may be a reporter's "
                + "identity; quote a value that has spaces)")
        }
        if let channel, Channel(rawValue: channel) == nil {
            if let known = Channel(rawValue: channel.lowercased()) {
                throw ValidationError("--channel must be app or hotline (channels are lower case: \(known.rawValue))")
            }
            throw ValidationError("--channel must be app or hotline (the value given is not shown: it may be a reporter's identity)")
        }
        if file != nil {
            let given = [("--reporter", reporter != nil), ("--channel", channel != nil), ("--external-id", externalID != nil),
                         ("--reported-at", reportedAt != nil), ("--platform", platform != nil)].filter(\.1).map(\.0)
            if !given.isEmpty {
                throw ValidationError("\(given.joined(separator: ", ")) only go(es) with --text: a file's lines carry their own fields")
            }
        }
        if text != nil, format != nil || rejects != nil || batch != nil {
            throw ValidationError("--format, --rejects and --batch only go with --file")
        }
        if file?.isEmpty == true { throw ValidationError("--file needs a path ('-' for standard input)") }
        // A name that is not UTF-8 reaches us repaired, and would be looked for under another name.
        if file != nil, RawArguments.wasRepaired("--file") {
            throw ValidationError("--file: the file's name is not valid UTF-8, so it cannot be opened by it; rename the file, "
                + "or give it on standard input: --file - < NAME (with --format csv for a CSV file)")
        }
        if rejects != nil, RawArguments.wasRepaired("--rejects") {
            throw ValidationError("--rejects: the file's name is not valid UTF-8; give a name in UTF-8")
        }
        if rejects?.isEmpty == true { throw ValidationError("--rejects needs a path") }
        // The rule of a token's source (reports filed from the command line can also come over
        // HTTP) is checked in `run`: a name stored before it is still taken.
        if source.isEmpty || source.utf8.count > 100 { throw ValidationError("--source must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'") }
        if let batch, !(1...10_000).contains(batch) { throw ValidationError("--batch must be between 1 and 10000") }
    }

    func run() async throws {
        let key = try ReporterKey.fromEnvironment()
        try await admitSource()
        if let text {
            try await submitOne(text: text, key: key)
        } else if let file {
            let rejected = try await submitFile(file, key: key)
            if rejected > 0 { throw ExitCode(3) }
        }
    }

    /// A source must have a name a token's source may have, unless this database already holds
    /// reports under it (filed before the rule): those can still be submitted again.
    private func admitSource() async throws {
        let rule: String
        do {
            try APITokens.validateSource(source)
            return
        } catch {
            rule = error.message
        }
        let stored = try await connection.withDatabase(application: "tipline-submit", settings: Intake.sessionSettings) { [source] database in
            try await database.query("SELECT EXISTS (SELECT 1 FROM reports WHERE source = \(source))").one().decode(Bool.self, at: 0)
        }
        // Checked against the database's state, so refused like `policy set`'s ladder: exit 1.
        guard stored else { throw CommandFailure(TiplineError(.invalidInput, "--source \(rule)")) }
        Output.errorLine("note: --source \(source.terminalSafe) \(rule); taken because this database holds reports under it already")
    }

    /// `--reporter`, or with `-` the first line of standard input (out of `ps` and shell history),
    /// read as `--file -` reads one (`LineReader`: LF or CRLF). Its bytes are checked as UTF-8, not
    /// repaired: two identities that differ only in bytes that are not UTF-8 would become one
    /// reporter (and the second report a duplicate).
    private func reporterGiven() throws -> String {
        guard reporter == "-" else { return reporter! }
        func refuse(_ why: String) -> CommandFailure {
            CommandFailure(TiplineError(.invalidInput, "--reporter -: standard input \(why) (the reporter's identity goes on its first line)"))
        }
        let first: (number: Int, bytes: [UInt8]?)?
        do {
            first = try LineReader(path: "-").next()
        } catch {
            throw CommandFailure(error)
        }
        guard let first else { throw refuse("is empty") }
        // (A byte-order mark before it is dropped by `LineReader.next`.)
        guard let line = first.bytes else { throw refuse("has a first line too long to read") }
        guard let text = String(validating: line, as: UTF8.self) else { throw refuse("is not valid UTF-8") }
        return text
    }

    private func submitOne(text: String, key: ReporterKey) async throws {
        // Keyed like the reporter's hash: a plain digest of the reporter and the text, stored and
        // exported as the external id, let anyone with the text try every phone number until it matched.
        let channel = self.channel.flatMap(Channel.init(rawValue:)) ?? .app
        var fields: [String: Any] = [
            "external_id": externalID ?? "derived below", "channel": channel.rawValue, "reporter": try reporterGiven(), "text": text,
        ]
        fields["reported_at"] = reportedAt
        fields["platform"] = platform
        let input: ReportInput
        switch ReportValidator().validate(fields) {
        case .success(let valid): input = valid
        case .failure(let error): throw CommandFailure(error)
        }
        let derived = externalID == nil
        let outcome = try await connection.withDatabase(application: "tipline-submit", settings: Intake.sessionSettings) { [input] database in
            try await ReporterKeyChanged.checkingTheKeyAgain(noting: Self.noteTheKeyCheck) { _ in
                var input = input
                let hasher = try await key.verify(against: database)
                if derived {
                    // From the reporter as stored (trimmed, in NFC, a caller's number in one form): the same
                    // caller written another way is the same report again, as it is the same reporter.
                    input.externalID = "cli-" + PostgresHex.encode(
                        hasher.hash("cli external id\u{1F}\(channel.rawValue)\u{1F}\(input.reporter)\u{1F}\(text)").prefix(16))
                }
                return try await Intake(database: database, hasher: hasher).submit([input], source: source)
            }
        }
        let (id, isNew) = outcome.results[0]
        try Output.line(isNew ? "accepted report \(id)" : "duplicate: report \(id) was already submitted")
    }

    /// Says how many of the file's reports were stored (or found stored) before the database's
    /// reporter key settings changed under the import: in the database as it was then.
    private static func noteStoredBeforeChange(_ count: Int) {
        guard count > 0 else { return }
        Output.error("note: \(count) of this file's reports were stored or found already there before the database's reporter key "
                     + "settings changed, in the database as it was then; if it was replaced, the same command again stores them "
                     + "in this one (the others count as duplicates)\n")
    }

    /// The input paused with reports in hand (`submitFile`).
    private struct ProducerPaused: Error {}

    /// The most text (ads, reporters, external ids) one batch of `--file` holds: a batch's memory
    /// is a few times its text, so 1,000 ads of 65 kB each peaked at 421 MB before this bound.
    static let maxBatchBytes = 8 << 20

    /// Said when the database's reporter key settings changed under the command (`ReporterKeyChanged`).
    private static func noteTheKeyCheck() {
        Output.error("note: the database's reporter key settings changed since they were checked (was the database replaced?); "
                     + "checking the key again\n")
    }

    private func submitFile(_ path: String, key: ReporterKey) async throws -> Int {
        // A refusal on a closed stderr, or a rejects FIFO whose reader left, must not end the import.
        Output.ignoreBrokenPipes()
        let reader: ReportFileReader
        do {
            reader = try ReportFileReader(path: path, format: format ?? .guess(path: path))
        } catch {
            throw CommandFailure(error)
        }
        let rejectLog = try rejects.map { try RejectsFile(path: $0, input: path) }
        defer { rejectLog?.close() }
        let progress = Progress(total: reader.totalBytes)
        let name = (path == "-" ? "stdin" : path).terminalSafe
        var accepted = 0
        var duplicates = 0
        var rejected = 0
        // Duplicates counted by a batch sent again after its connection broke: its first try may
        // have committed, and then its own reports come back as duplicates.
        var uncertain = 0
        // Stored before the database's reporter key settings last changed under the import: into
        // the database as it was then, which may since have been replaced.
        var storedBeforeChange = 0
        do {
            try await connection.withDatabase(application: "tipline-submit", settings: Intake.sessionSettings) { database in
                var intake = Intake(database: database, hasher: try await key.verify(against: database))
                var pending: [ReportInput] = []
                var pendingBytes = 0
                func flush() async throws {
                    guard !pending.isEmpty else { return }
                    var afterLoss = false
                    // A deadlock with another import of overlapping ids (each inserts in its file's
                    // order) rolls the batch back whole: tried again.
                    let outcome = try await retrying(attempts: 12, transient: true) { lost in
                        afterLoss = lost
                        let noting = {
                            progress.clearLine()
                            Self.noteTheKeyCheck()
                            storedBeforeChange = accepted + duplicates
                        }
                        return try await ReporterKeyChanged.checkingTheKeyAgain(noting: noting) { again in
                            if again { intake = Intake(database: database, hasher: try await key.verify(against: database)) }
                            return try await intake.submit(pending, source: source)
                        }
                    }
                    accepted += outcome.accepted
                    duplicates += outcome.duplicates
                    if afterLoss { uncertain += outcome.duplicates }
                    pending.removeAll(keepingCapacity: true)
                    pendingBytes = 0
                }
                while true {
                    // Reports read from a producer that paused (a pipe, a FIFO) are stored before
                    // the wait: its lines cannot be read again, should the import be stopped then.
                    let next: InputRecord?
                    do {
                        next = try reader.next(beforeWaiting: {
                            if !pending.isEmpty, reader.inputMayWait(within: .milliseconds(200)) { throw ProducerPaused() }
                        })
                    } catch is ProducerPaused {
                        try await flush()
                        continue
                    }
                    guard let record = next else { break }
                    switch record.result {
                    case .success(let input):
                        pending.append(input)
                        // A batch is bounded by its text too: memory stays fixed with long ads.
                        pendingBytes += input.text.utf8.count + input.reporter.utf8.count + input.externalID.utf8.count
                        if pending.count >= (batch ?? 1000) || pendingBytes >= Self.maxBatchBytes { try await flush() }
                    case .failure(let error):
                        rejected += 1
                        // The reason quotes what the line held: control characters are escaped, so
                        // that it cannot recolour a terminal or split a line of the rejects file.
                        let reason = "\(error)".terminalSafe
                        progress.clearLine()
                        Output.error("\(name):\(record.line): \(reason)\n")
                        rejectLog?.append("\(record.line)\t\(reason)\n")
                    }
                    progress.update(records: accepted + duplicates + rejected + pending.count, bytes: reader.bytesRead)
                }
                try await flush()
            }
        } catch {
            progress.clearLine()
            Self.noteStoredBeforeChange(storedBeforeChange)
            let stored = accepted + duplicates
            if stored + rejected == 0 { throw error }
            throw CommandFailure(Stopped(reason: CommandFailure(error).description,
                                         progress: "\(stored) report(s) of this file were stored or already there before it stopped "
                                             + "(accepted \(accepted), duplicate \(duplicates), rejected \(rejected)); the same command again "
                                             + "is safe: what is stored already counts as duplicate"))
        }
        progress.clearLine()
        try Output.line("accepted \(accepted), duplicate \(duplicates), rejected \(rejected) (source \(source))")
        if uncertain > 0 {
            Output.error("\(uncertain) of the duplicates were in a batch sent again after its connection broke: its first try may have "
                         + "committed, so they may be this run's own reports\n")
        }
        Self.noteStoredBeforeChange(storedBeforeChange)
        if let failure = rejectLog?.failure {
            throw CommandFailure(failure)
        }
        return rejected
    }
}

/// An import that stopped part of the way: why, and how far it got.
private struct Stopped: Error, CustomStringConvertible {
    let reason: String
    let progress: String
    var description: String { "\(reason); \(progress)" }
}

/// The `--rejects` file: opened in place, as a shell's `>` does (a link, a device or a FIFO is
/// written through, never replaced by a new file), and never the input file itself. A write that
/// fails is said once; the import goes on (every reason is on stderr too) and ends with status 1.
private final class RejectsFile {
    let path: String
    private var descriptor: Int32
    private(set) var failure: InputError?

    init(path: String, input: String) throws {
        self.path = path
        var existing = stat(), read = stat()
        let inputFound = input == "-" ? fstat(STDIN_FILENO, &read) == 0 : stat(input, &read) == 0
        if inputFound, stat(path, &existing) == 0, existing.st_dev == read.st_dev, existing.st_ino == read.st_ino,
           (existing.st_mode & S_IFMT) == S_IFREG {
            throw CommandFailure(InputError(field: nil, "--rejects \(path.terminalSafe) is the input file: it would be emptied before it is read"))
        }
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CommandFailure(InputError(field: nil, "cannot write --rejects file \(path.terminalSafe): \(String(cString: strerror(errno)))"))
        }
    }

    func append(_ line: String) {
        guard descriptor >= 0, failure == nil else { return }
        guard let code = writeAll(Data(line.utf8), to: descriptor) else { return }
        failure = InputError(field: nil, "cannot write --rejects file \(path.terminalSafe): \(String(cString: strerror(code))); it is incomplete (every reason is on stderr too)")
        Output.error("\(failure!)\n")
    }

    func close() {
        if descriptor >= 0 { _ = Foundation.close(descriptor) }
        descriptor = -1
    }
}

extension InputFormat: ExpressibleByArgument {}
extension Channel: ExpressibleByArgument {}

/// A one-line progress display on a terminal (rate, count, ETA); silent when stderr is not a terminal.
final class Progress {
    private let total: Int?
    private let enabled = isatty(STDERR_FILENO) == 1
    private let started = Date()
    private var lastDraw = Date.distantPast

    init(total: Int?) {
        self.total = total
    }

    func update(records: Int, bytes: Int) {
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = Date()
        let elapsed = max(0.001, Date().timeIntervalSince(started))
        var line = "\r\(records) records, \(Int(Double(records) / elapsed))/s"
        if let total, total > 0, bytes > 0 {
            let fraction = Double(bytes) / Double(total)
            let eta = elapsed / fraction - elapsed
            line += String(format: ", %.0f%%, ETA %d:%02d", fraction * 100, Int(eta) / 60, Int(eta) % 60)
        }
        Output.error((line + "\u{1B}[K"))
    }

    func clearLine() {
        guard enabled else { return }
        Output.error("\r\u{1B}[K")
    }
}
