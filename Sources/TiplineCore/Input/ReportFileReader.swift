import Foundation
import Glibc

/// The formats `tipline submit --file` reads.
public enum InputFormat: String, Sendable, CaseIterable {
    case jsonl, csv

    /// The format a file name suggests (`.csv` is CSV, anything else JSONL).
    public static func guess(path: String) -> InputFormat {
        path.lowercased().hasSuffix(".csv") ? .csv : .jsonl
    }
}

/// One record of an input file: where it started, and the report or the reason it was refused.
public struct InputRecord: Sendable {
    /// 1-based line number where the record starts.
    public var line: Int
    /// The validated report, or what is wrong with it.
    public var result: Result<ReportInput, InputError>
}

/// Streams reports out of a JSONL or CSV file in fixed memory: a bad record is reported with its
/// line number and never stops the records after it.
public final class ReportFileReader {
    private let lines: LineReader
    private let validator: ReportValidator
    private let format: InputFormat
    private var csv: CSVRecordParser?
    private var csvHeader: [String]?
    private var headerError: InputError?
    private let now = Date()

    /// Opens `path` (or standard input for `-`).
    public init(path: String, format: InputFormat, validator: ReportValidator = ReportValidator()) throws {
        self.lines = try LineReader(path: path)
        self.format = format
        self.validator = validator
        if format == .csv { csv = CSVRecordParser() }
    }

    /// Bytes read so far (for progress).
    public var bytesRead: Int { lines.bytesRead }

    /// The file's size if it is a regular file.
    public var totalBytes: Int? { lines.totalBytes }

    /// Whether a read now would wait for input that has not come within `limit`: a producer
    /// writing into a pipe or a FIFO that paused (never a regular file). Waits up to `limit` to tell.
    public func inputMayWait(within limit: Duration) -> Bool {
        lines.inputMayWait(within: limit)
    }

    /// The next record, or `nil` at the end of the file. `beforeWaiting` runs before each read
    /// that may wait for the input; what it throws is thrown, and the reader stays as it was, to
    /// be called again (a caller holding records stores them first: a producer's lines cannot be
    /// read again once handed over).
    public func next(beforeWaiting: () throws -> Void = {}) throws -> InputRecord? {
        switch format {
        case .jsonl: try nextJSONL(beforeWaiting)
        case .csv: try nextCSV(beforeWaiting)
        }
    }

    private func nextJSONL(_ beforeWaiting: () throws -> Void) throws -> InputRecord? {
        try lines.nextJSONObject(beforeWaiting: beforeWaiting).map { InputRecord(line: $0.number, result: $0.object.flatMap { validator.validate($0, now: now) }) }
    }

    private func nextCSV(_ beforeWaiting: () throws -> Void) throws -> InputRecord? {
        // Taken out while in use: a copy left behind would share the parser's arrays, and every
        // change to them would copy them whole (quadratic after a stray quote gives back many lines).
        guard var parser = csv else { return nil }
        csv = nil
        defer { csv = parser }
        while true {
            let record: CSVRecordParser.Record
            if let ready = parser.takeRecord() {
                record = ready
            } else if let (number, line) = try lines.next(beforeWaiting: beforeWaiting) {
                switch line {
                case let bytes? where csvHeader == nil && headerError == nil && bytes.contains(0):
                    // Before the parser, whose quotes would break on the NUL bytes between them.
                    headerError = InputError(field: nil, "the CSV header holds NUL bytes: is the file UTF-16 or UTF-32? "
                        + "It must be UTF-8 (convert it, e.g. with iconv -t UTF-8)")
                    return InputRecord(line: number, result: .failure(headerError!))
                case let bytes?: parser.feed(line: bytes, number: number)
                case nil: parser.feedUnreadable(number: number, error: LineReader.tooLong)
                }
                continue
            } else if let last = parser.finish() {
                record = last
            } else {
                return nil
            }
            if case .failure(let error) = record.fields {
                if csvHeader == nil, headerError == nil {
                    // Without its header no row can be read: each says why, instead of the next row
                    // being taken for the header.
                    headerError = InputError(field: nil, "the CSV header (line \(record.line)) could not be read: \(error)")
                }
                return InputRecord(line: record.line, result: .failure(error))
            }
            guard case .success(let fields) = record.fields else { continue }
            // A blank line, or a row of empty cells (`,,,` as spreadsheets write them), holds no report.
            if fields.allSatisfy({ $0.allSatisfy(\.isWhitespace) }) { continue }
            if let headerError { return InputRecord(line: record.line, result: .failure(headerError)) }
            guard let header = csvHeader else {
                // Lines that end in CR alone make the whole file one line: its header, whose last
                // column holds the first row. Read as it is, every report would be lost in silence.
                if fields.contains(where: { $0.contains("\r") }) {
                    headerError = InputError(field: nil, "the CSV header could not be read\(LineSplitter.loneCRHint)")
                    return InputRecord(line: record.line, result: .failure(headerError!))
                }
                // A byte-order mark (as spreadsheet programs write) is not part of the first column's name.
                csvHeader = fields.map { $0.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\u{FEFF}"))).lowercased() }
                let missing = ["external_id", "channel", "reporter", "text"].filter { !csvHeader!.contains($0) }
                var seen = Set<String>()
                let repeated = csvHeader!.filter { !$0.isEmpty && !seen.insert($0).inserted }
                if !missing.isEmpty {
                    var why = ""
                    if fields.count == 1, let separator = [(";", "semicolons"), ("\t", "tabs"), ("|", "bars")].first(where: { fields[0].contains($0.0) }) {
                        why = " (it has one column, which holds \(separator.1): columns must be separated by commas)"
                    }
                    headerError = InputError(field: nil, "CSV header lacks column(s) \(missing.joined(separator: ", "))" + why)
                    return InputRecord(line: record.line, result: .failure(headerError!))
                }
                if !repeated.isEmpty {
                    // Which of two `reporter` columns is the reporter? Neither is guessed.
                    // Only a report field's name is repeated back: another column's name is the
                    // sender's data (an exporter may head a column with a caller's number).
                    let named = Set(repeated).filter(ReportValidator.fieldNames.contains).sorted()
                    let others = Set(repeated).count - named.count
                    let list = named + (others > 0 ? ["\(others) other(s), not shown (none of a report's fields)"] : [])
                    headerError = InputError(field: nil, "CSV header repeats column(s) \(list.joined(separator: ", "))")
                    return InputRecord(line: record.line, result: .failure(headerError!))
                }
                continue
            }
            guard fields.count == header.count else {
                // Rows that end in CR alone run together into one (after a header that ends in LF).
                let loneCR = fields.contains(where: { $0.contains("\r") }) ? LineSplitter.loneCRHint : ""
                return InputRecord(line: record.line, result: .failure(InputError(
                    field: nil, "has \(fields.count) fields, the header has \(header.count)" + loneCR)))
            }
            var object: [String: Any] = [:]
            for (name, value) in zip(header, fields) where !value.isEmpty { object[name] = value }
            return InputRecord(line: record.line, result: validator.validate(object, now: now))
        }
    }
}

/// The lines of a file or of standard input, read as they come in 1 MiB chunks (LF or CRLF,
/// numbered from 1; a line over `LineSplitter.maxLineBytes` comes back as `nil` bytes, unread).
public final class LineReader {
    /// Longest line read.
    public static let maxLineBytes = LineSplitter.maxLineBytes

    /// The error of a line over `maxLineBytes`.
    public static let tooLong = InputError(field: nil, "is longer than \(maxLineBytes) bytes: not read")

    private let source: ByteSource
    private var lines = LineSplitter()

    /// Opens `path` (or standard input for `-`).
    public init(path: String) throws {
        source = try ByteSource(path: path)
    }

    /// Bytes read so far.
    var bytesRead: Int { source.bytesRead }

    /// The file's size if it is a regular file.
    var totalBytes: Int? { source.totalBytes }

    /// Whether a read now would wait for input that has not come within `limit` (a pipe, a FIFO,
    /// a terminal: never a regular file). Waits up to `limit` to tell.
    public func inputMayWait(within limit: Duration) -> Bool {
        source.mayWait(within: limit)
    }

    /// The next line's number and bytes (nil for one too long to read), or nil at the end. A UTF-8
    /// byte-order mark before the first line (as spreadsheet programs write) is no part of it:
    /// left in, it made a CSV header's opening quote look stray, and a first JSON line or a
    /// reporter's identity not what was meant. `beforeWaiting` runs before each read that may
    /// block (to flush output meanwhile).
    public func next(beforeWaiting: () throws -> Void = {}) throws -> (number: Int, bytes: [UInt8]?)? {
        guard var line = try nextAsRead(beforeWaiting: beforeWaiting) else { return nil }
        if line.number == 1, line.bytes?.starts(with: [0xEF, 0xBB, 0xBF]) == true { line.bytes?.removeFirst(3) }
        return line
    }

    private func nextAsRead(beforeWaiting: () throws -> Void) throws -> (number: Int, bytes: [UInt8]?)? {
        while true {
            if let (number, line) = lines.takeLine() { return (number, Self.bytes(line)) }
            try beforeWaiting()
            guard try source.read({ lines.feed($0) }) else { return lines.finish().map { ($0.0, Self.bytes($0.1)) } }
        }
    }

    /// What a line of reports holds (`nextJSONObject`).
    public static let reportShape = "one report, {\"external_id\": ...}"

    /// The next line that is not blank, as a JSON object or why it is not one (a byte-order mark
    /// before the first line is no part of it: `next`), or nil at the end: the lines of JSONL input.
    /// `shape`: what each line holds, for the message about a line that is JSON but no object.
    public func nextJSONObject(shape: String = LineReader.reportShape, beforeWaiting: () throws -> Void = {}) throws
        -> (number: Int, object: Result<[String: Any], InputError>)? {
        while let (number, line) = try next(beforeWaiting: beforeWaiting) {
            guard let bytes = line else { return (number, .failure(Self.tooLong)) }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            return (number, Self.jsonObject(bytes, shape: shape))
        }
        return nil
    }

    /// `bytes` as one JSON object, read as strictly as RFC 8259 writes it (`StrictJSON`), or why not.
    static func jsonObject(_ line: [UInt8], shape: String = LineReader.reportShape) -> Result<[String: Any], InputError> {
        // A byte-order mark before a later line (files joined with `cat`) is no part of it either.
        let bytes = line.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(line.dropFirst(3)) : line
        guard String(validating: bytes, as: UTF8.self) != nil else {
            return .failure(InputError(field: nil, "is not valid UTF-8"))
        }
        // A raw NUL is never JSON; UTF-16 or UTF-32 text is full of them.
        guard !bytes.contains(0) else {
            return .failure(InputError(field: nil, "is not UTF-8 JSON (it holds NUL bytes: UTF-16 or UTF-32?)"))
        }
        if let problem = StrictJSON.problem(in: bytes, naming: ReportValidator.fieldNames) {
            return .failure(InputError(field: nil, "invalid JSON: \(problem)" + (Self.endsAtLoneCR(bytes) ? LineSplitter.loneCRHint : "")))
        }
        let parsed: Any
        do {
            // Fragments too: a line that is JSON but not an object is told so, below.
            parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            return .failure(InputError(field: nil, "invalid JSON" + (reason.map { ": \($0)" } ?? "")))
        }
        guard let object = parsed as? [String: Any] else {
            return .failure(InputError(field: nil, "is \(ReportValidator.jsonKind(parsed)), not a JSON object: each line is \(shape)"))
        }
        return .success(object)
    }

    /// Whether `line` is a JSON object up to its first carriage return (CRLF's is gone by now): the
    /// mark of a file whose lines end in CR alone, not of a CR used as JSON's whitespace.
    static func endsAtLoneCR(_ line: [UInt8]) -> Bool {
        guard let cr = line.firstIndex(of: 0x0D) else { return false }
        let first = Array(line[..<cr])
        return first.first == UInt8(ascii: "{") && StrictJSON.problem(in: first, naming: ReportValidator.fieldNames) == nil
    }

    private static func bytes(_ line: LineSplitter.Line) -> [UInt8]? {
        if case .bytes(let bytes) = line { return bytes }
        return nil
    }
}

/// A whole file (or standard input) as one text: `tipline extract`'s input.
public enum WholeText {
    /// The text of `path` (`-`: standard input), refused when it is longer than `limit` bytes (read
    /// no further), not UTF-8 (a UTF-16 or UTF-32 byte-order mark is named), or unreadable. A UTF-8
    /// byte-order mark at the start is no part of it.
    public static func read(path: String, limit: Int) throws -> String {
        let source = try ByteSource(path: path)
        var bytes: [UInt8] = []
        while try source.read({ bytes.append(contentsOf: $0) }) {
            if bytes.count > limit {
                throw InputError(field: nil, "\(source.path) is longer than \(limit) bytes: not read (one text at most that long)")
            }
        }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if let offset = UTF8Check.firstInvalidByte(bytes) {
            throw InputError(field: nil, "\(source.path) is not valid UTF-8 (first bad byte at offset \(offset))")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Where bytes stop being UTF-8.
public enum UTF8Check {
    /// The offset of the first byte that is not part of a valid UTF-8 sequence, or nil when all are.
    public static func firstInvalidByte(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}

/// Reads a file (or standard input) in 1 MiB chunks.
final class ByteSource {
    private let handle: FileHandle
    /// The file's name as given, or "standard input".
    let path: String
    private(set) var bytesRead = 0
    let totalBytes: Int?
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var ended = false
    /// A regular file, whose reads never wait for a producer.
    private lazy var isRegularFile: Bool = {
        var status = stat()
        return fstat(handle.fileDescriptor, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }()

    init(path: String) throws {
        self.path = path == "-" ? "standard input" : path
        if path == "-" {
            handle = FileHandle.standardInput
            totalBytes = nil
        } else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw InputError(field: nil, "cannot read \(path): it is a directory")
            }
            guard let opened = FileHandle(forReadingAtPath: path) else {
                throw InputError(field: nil, "cannot open \(path): \(String(cString: strerror(errno)))")
            }
            handle = opened
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            totalBytes = (attributes?[.size] as? NSNumber)?.intValue
        }
    }

    /// Hands `consume` the next bytes, at most 1 MiB: what one read(2) returns, so that input from a
    /// pipe is passed on as it arrives (Foundation's reads wait for the whole count), from one
    /// buffer kept for every read. False at the end, and on every call after it.
    ///
    /// The first bytes are checked for a UTF-16 or UTF-32 byte-order mark (reading on until there
    /// are four, or the input ends): every line of such a file would be refused, each for its NUL
    /// bytes, so the file is refused once instead, with what it is.
    func read(_ consume: (UnsafeBufferPointer<UInt8>) -> Void) throws -> Bool {
        guard !ended else { return false }
        var count = try readOnce(into: 0)
        if bytesRead == 0, count > 0 {
            while count < 4 {
                let more = try readOnce(into: count)
                if more == 0 { break }
                count += more
            }
            if let encoding = Self.wideEncoding(startingWith: buffer[0..<count]) {
                throw InputError(field: nil, "\(path) is \(encoding) (it starts with that byte-order mark): reports are "
                    + "read as UTF-8; convert it first, e.g. iconv -f \(encoding) -t UTF-8")
            }
        }
        guard count > 0 else {
            ended = true
            return false
        }
        bytesRead += count
        buffer.withUnsafeBufferPointer { consume(UnsafeBufferPointer(rebasing: $0[0..<count])) }
        return true
    }

    /// Whether a read would wait: input that is not a regular file, not ended, with nothing to read
    /// (nor its end) within `limit`.
    func mayWait(within limit: Duration) -> Bool {
        guard !ended, !isRegularFile else { return false }
        var ready = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: limit.components.seconds * 1000 + limit.components.attoseconds / 1_000_000_000_000_000)
        while true {
            let found = poll(&ready, 1, milliseconds)
            if found >= 0 { return found == 0 }
            if errno != EINTR { return false }
        }
    }

    /// One read(2) into the buffer from `offset`, retried when a signal interrupts it; 0 at the end.
    private func readOnce(into offset: Int) throws -> Int {
        let descriptor = handle.fileDescriptor
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if count >= 0 { return count }
            if errno != EINTR {
                throw InputError(field: nil, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The UTF-16 or UTF-32 encoding whose byte-order mark `bytes` start with, if any.
    static func wideEncoding(startingWith bytes: ArraySlice<UInt8>) -> String? {
        if bytes.starts(with: [0xFF, 0xFE, 0x00, 0x00]) { return "UTF-32LE" }
        if bytes.starts(with: [0x00, 0x00, 0xFE, 0xFF]) { return "UTF-32BE" }
        if bytes.starts(with: [0xFF, 0xFE]) { return "UTF-16LE" }
        if bytes.starts(with: [0xFE, 0xFF]) { return "UTF-16BE" }
        return nil
    }
}

extension LineSplitter {
    /// Said after an error in a line that holds a lone carriage return.
    static let loneCRHint = "; the line holds a carriage return (CR) without a line feed: lines must end in LF or CRLF. "
        + "A file whose lines end in CR alone (classic Mac OS) must be converted first, e.g. tr '\\r' '\\n'"
}

/// Splits a byte stream into lines (LF or CRLF), numbering them from 1. A line longer than
/// `maxLineBytes` is not kept: its bytes are dropped as they come, up to its newline, and it comes
/// out as `tooLong`, so one huge line (or a file without newlines) costs neither memory nor the
/// lines after it. Each byte is searched for a newline once.
struct LineSplitter {
    /// Longest line kept: a report at every field's limit, its text escaped character by
    /// character in JSON (six bytes for each of 65,536), fits with room to spare.
    static let maxLineBytes = 1 << 20

    /// A line's bytes, or the mark of one too long to keep.
    enum Line: Equatable {
        case bytes([UInt8])
        case tooLong
    }

    private var buffer: [UInt8] = []
    private var start = 0
    /// Where the search for the next newline resumes (bytes before it hold none).
    private var scanned = 0
    /// Dropping the rest of a line too long to keep.
    private var skipping = false
    private var number = 0
    private let maxLineBytes: Int

    init(maxLineBytes: Int = LineSplitter.maxLineBytes) {
        self.maxLineBytes = maxLineBytes
    }

    mutating func feed(_ chunk: some Collection<UInt8>) {
        if start > 0 {
            buffer.removeFirst(start)
            scanned -= start
            start = 0
        }
        buffer.append(contentsOf: chunk)
    }

    mutating func takeLine() -> (Int, Line)? {
        guard let newline = buffer[max(start, scanned)...].firstIndex(of: 0x0A) else {
            scanned = buffer.count
            // A carriage return last may be the first half of the line's CRLF: not the line's.
            let pending = buffer.count - start - (buffer.last == 0x0D ? 1 : 0)
            if skipping || pending > maxLineBytes {
                skipping = true
                buffer.removeAll(keepingCapacity: true)
                start = 0
                scanned = 0
            }
            return nil
        }
        number += 1
        defer {
            start = newline + 1
            scanned = start
        }
        var end = newline
        if end > start, buffer[end - 1] == 0x0D { end -= 1 }
        if skipping || end - start > maxLineBytes {
            skipping = false
            return (number, .tooLong)
        }
        return (number, .bytes(Array(buffer[start..<end])))
    }

    mutating func finish() -> (Int, Line)? {
        if skipping {
            skipping = false
            number += 1
            return (number, .tooLong)
        }
        guard start < buffer.count else { return nil }
        var line = Array(buffer[start...])
        if line.last == 0x0D { line.removeLast() }
        start = buffer.count
        scanned = start
        number += 1
        return (number, line.count > maxLineBytes ? .tooLong : .bytes(line))
    }
}
