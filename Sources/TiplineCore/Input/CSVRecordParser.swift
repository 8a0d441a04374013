/// An RFC 4180 record parser fed one line at a time, so a quoted field may span lines and the
/// record still knows the line it started on.
///
/// A quoted field that runs onto later lines and then does not end cleanly (another quote in the
/// wrong place, no closing quote before the end of the input, more than `maxRecordBytes`, or a line
/// too long to read) is most likely a stray opening quote. Then only the record's first line is
/// refused, and the lines after it are parsed again as records of their own, so one stray quote
/// never costs the good rows below it. The open record's lines are kept for that, within
/// `maxRecordBytes`.
struct CSVRecordParser {
    /// A complete record: its first line and its fields (or why it is malformed).
    struct Record {
        var line: Int
        var fields: Result<[String], InputError>
    }

    /// Longest record kept while its quoted field is open: as long as the longest line.
    static let maxRecordBytes = LineSplitter.maxLineBytes

    private let maxRecordBytes: Int
    private var fields: [[UInt8]] = []
    private var field: [UInt8] = []
    private var inQuotes = false
    /// A quoted field has just closed: only a comma or the end of the line may follow.
    private var afterClosingQuote = false
    /// The open record's lines, kept in case it must be given up and its later lines read again.
    private var lines: [(number: Int, bytes: [UInt8])] = []
    private var recordBytes = 0
    /// The column whose quoted field was still open at the end of the record's first line.
    private var spanningColumn = 0
    private var broken: (line: Int, error: InputError)?
    /// Records parsed and not yet taken, from `readyStart` on (a give-up can make many at once).
    private var ready: [Record] = []
    private var readyStart = 0
    /// Bytes parsed so far, lines read again after a give-up included: the parser's work.
    private(set) var consumedBytes = 0

    init(maxRecordBytes: Int = CSVRecordParser.maxRecordBytes) {
        self.maxRecordBytes = maxRecordBytes
    }

    /// Hands the parser the next physical line (without its line break) and its number.
    mutating func feed(line: [UInt8], number: Int) {
        if let again = consume(number: number, line: line) { replay(again) }
    }

    /// A line that could not be read (`error` says why) ends any record still open before it,
    /// and is refused by its number.
    mutating func feedUnreadable(number: Int, error: InputError) {
        while inQuotes {
            replay(giveUp(because: "runs into line \(number), which cannot be read"))
        }
        ready.append(Record(line: number, fields: .failure(error)))
    }

    /// Ends the input; a quoted field still open is given up as above, and on a single line it is
    /// refused as never closed.
    mutating func finish() -> Record? {
        while inQuotes {
            replay(giveUp(because: "is never closed"))
        }
        return takeRecord()
    }

    /// The next complete record, if one is ready.
    mutating func takeRecord() -> Record? {
        guard readyStart < ready.count else { return nil }
        let record = ready[readyStart]
        readyStart += 1
        if readyStart == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyStart = 0
        }
        return record
    }

    private mutating func replay(_ queue: ArraySlice<(number: Int, bytes: [UInt8])>) {
        // A stack, last line first, so that lines given back go on top without copying the rest.
        var stack = Array(queue.reversed())
        while let (number, line) = stack.popLast() {
            if let again = consume(number: number, line: line) {
                stack.append(contentsOf: again.reversed())
            }
        }
    }

    /// Parses one line; returns the lines to read again if the record had to be given up.
    private mutating func consume(number: Int, line: [UInt8]) -> ArraySlice<(number: Int, bytes: [UInt8])>? {
        lines.append((number, line))
        recordBytes += line.count + 1
        consumedBytes += line.count + 1
        let quote: UInt8 = 0x22
        let comma: UInt8 = 0x2C
        var i = 0
        while i < line.count {
            let c = line[i]
            if inQuotes {
                if c == quote {
                    if i + 1 < line.count, line[i + 1] == quote {
                        field.append(quote)
                        i += 1
                    } else {
                        inQuotes = false
                        afterClosingQuote = true
                    }
                } else {
                    field.append(c)
                }
            } else if c == comma {
                fields.append(field)
                field = []
                afterClosingQuote = false
            } else if afterClosingQuote {
                markBroken(line: number, "text after the closing quote of column \(fields.count + 1)")
                afterClosingQuote = false
                field.append(c)
            } else if c == quote, field.isEmpty {
                inQuotes = true
            } else if c == quote {
                markBroken(line: number, "a quote inside an unquoted field (column \(fields.count + 1))")
                field.append(c)
            } else {
                field.append(c)
            }
            i += 1
        }
        if inQuotes, lines.count == 1 { spanningColumn = fields.count + 1 }
        // A record over several lines that has broken is given up at once, even if a quote is open
        // again: however it ends it will be refused, and reading on to its end before starting over
        // would make input that breaks and reopens on every line cost quadratic time.
        if let broken, lines.count > 1 {
            return giveUp(because: "runs onto the next lines and breaks on line \(broken.line) (\(broken.error.message))")
        }
        if inQuotes {
            if recordBytes > maxRecordBytes {
                return giveUp(because: "runs past \(maxRecordBytes) bytes without its closing quote")
            }
            field.append(0x0A)
            return nil
        }
        endRecord()
        return nil
    }

    private mutating func markBroken(line: Int, _ message: String) {
        if broken == nil { broken = (line, InputError(field: nil, message)) }
    }

    /// Refuses the open record's first line and returns the lines after it, to be read again.
    private mutating func giveUp(because reason: String) -> ArraySlice<(number: Int, bytes: [UInt8])> {
        let first = lines[0].number
        let rest = lines.dropFirst()
        let error: InputError
        if let broken, broken.line == first {
            error = broken.error
        } else if rest.isEmpty {
            error = InputError(field: nil, "the quoted field in column \(spanningColumn) \(reason)")
        } else {
            error = InputError(field: nil, "the quoted field in column \(spanningColumn) \(reason): "
                + "this line is refused, and the lines after it are read as records of their own")
        }
        ready.append(Record(line: first, fields: .failure(error)))
        reset()
        return rest
    }

    private mutating func reset() {
        fields = []
        field = []
        inQuotes = false
        afterClosingQuote = false
        lines.removeAll(keepingCapacity: true)
        recordBytes = 0
        broken = nil
    }

    private mutating func endRecord() {
        fields.append(field)
        let line = lines[0].number
        let parsed = fields
        let failure = broken?.error
        reset()
        if let failure {
            ready.append(Record(line: line, fields: .failure(failure)))
            return
        }
        var strings: [String] = []
        for (index, bytes) in parsed.enumerated() {
            guard let text = String(validating: bytes, as: UTF8.self) else {
                ready.append(Record(line: line, fields: .failure(InputError(
                    field: nil, "column \(index + 1) is not valid UTF-8"))))
                return
            }
            strings.append(text)
        }
        ready.append(Record(line: line, fields: .success(strings)))
    }
}
