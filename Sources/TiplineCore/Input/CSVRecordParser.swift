/// An RFC 4180 record parser fed one line at a time, so a quoted field may span lines and the
/// record still knows the line it started on.
struct CSVRecordParser {
    /// A complete record: its first line and its fields (or why it is malformed).
    struct Record {
        var line: Int
        var fields: Result<[String], InputError>
    }

    private var fields: [[UInt8]] = []
    private var field: [UInt8] = []
    private var inQuotes = false
    private var recordLine = 0
    private var lineNumber = 0
    private var ready: [Record] = []
    private var broken: InputError?

    /// Hands the parser the next physical line (without its line break).
    mutating func feed(line: [UInt8]) {
        lineNumber += 1
        if !inQuotes { recordLine = lineNumber }
        var i = 0
        let quote: UInt8 = 0x22
        let comma: UInt8 = 0x2C
        while i < line.count {
            let c = line[i]
            if inQuotes {
                if c == quote {
                    if i + 1 < line.count, line[i + 1] == quote {
                        field.append(quote)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == comma {
                fields.append(field)
                field = []
            } else if c == quote, field.isEmpty {
                inQuotes = true
            } else if c == quote {
                broken = broken ?? InputError(field: nil, "a quote inside an unquoted field (column \(fields.count + 1))")
                field.append(c)
            } else {
                field.append(c)
            }
            i += 1
        }
        if inQuotes {
            field.append(0x0A)
        } else {
            endRecord()
        }
    }

    /// Ends the input; an unterminated quoted field is reported on the line where it began.
    mutating func finish() -> Record? {
        if let record = takeRecord() { return record }
        guard inQuotes else { return nil }
        inQuotes = false
        broken = InputError(field: nil, "a quoted field is never closed")
        endRecord()
        return takeRecord()
    }

    /// The next complete record, if one is ready.
    mutating func takeRecord() -> Record? {
        ready.isEmpty ? nil : ready.removeFirst()
    }

    private mutating func endRecord() {
        fields.append(field)
        field = []
        defer {
            fields = []
            broken = nil
        }
        if let broken {
            ready.append(Record(line: recordLine, fields: .failure(broken)))
            return
        }
        var strings: [String] = []
        for (index, bytes) in fields.enumerated() {
            guard let text = String(validating: bytes, as: UTF8.self) else {
                ready.append(Record(line: recordLine, fields: .failure(InputError(
                    field: nil, "column \(index + 1) is not valid UTF-8"))))
                return
            }
            strings.append(text)
        }
        ready.append(Record(line: recordLine, fields: .success(strings)))
    }
}
