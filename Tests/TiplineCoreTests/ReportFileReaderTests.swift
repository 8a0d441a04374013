import ContactExtraction
import Foundation
import Testing
@testable import TiplineCore

private func failure(_ record: InputRecord) -> InputError? {
    if case .failure(let error) = record.result { return error }
    return nil
}

private func report(_ record: InputRecord) -> ReportInput? {
    try? record.result.get()
}

@Suite("ReportFileReader, JSONL")
struct JSONLReaderTests {
    @Test("a truncated line in the middle is reported with its line number and the next line still parses")
    func truncatedLine() throws {
        let path = try temporaryFile(#"""
            {"external_id":"e1","channel":"app","reporter":"u1","text":"出租微信"}
            {"external_id":"e2","channel":"app","rep
            {"external_id":"e3","channel":"hotline","reporter":"u3","text":"批发QQ号"}

            """#, suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [1, 2, 3])
        #expect(report(records[0])?.externalID == "e1")
        #expect(failure(records[1])?.message.hasPrefix("invalid JSON") == true)
        #expect(report(records[2])?.externalID == "e3")
        #expect(report(records[2])?.channel == .hotline)
    }

    @Test("a line with a member named twice or a trailing comma is refused with where; the lines beside it are read")
    func strictJSONLines() throws {
        let path = try temporaryFile(#"""
            {"external_id":"e1","channel":"app","reporter":"u1","text":"出租微信 V信: abc_123x"}
            {"external_id":"e2","channel":"app","reporter":"u2","text":"出租微信 V信: abc_123x","text":"无"}
            {"external_id":"e3","channel":"app","reporter":"u3","text":"批发QQ号",}
            {"external_id":"e4","channel":"app","reporter":"u4","text":"批发QQ号"}

            """#, suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [1, 2, 3, 4])
        #expect(report(records[0])?.externalID == "e1")
        #expect(failure(records[1])?.message.hasPrefix(#"invalid JSON: the member "text" appears twice in one object (byte "#) == true,
                "\(String(describing: failure(records[1])))")
        #expect(failure(records[2])?.message.hasPrefix("invalid JSON: a comma before '}' (trailing commas are not JSON)") == true,
                "\(String(describing: failure(records[2])))")
        #expect(report(records[3])?.externalID == "e4")
    }

    @Test("a line that is not valid UTF-8 is reported and the rest are read")
    func invalidUTF8() throws {
        var bytes = Array(#"{"external_id":"e1","channel":"app","reporter":"u1","text":"a"}"#.utf8) + [0x0A]
        bytes += Array(#"{"external_id":"e2","channel":"app","reporter":"u2","text":""#.utf8) + [0xC3, 0x28, 0xFF]
        bytes += Array(#""}"#.utf8) + [0x0A]
        bytes += Array(#"{"external_id":"e3","channel":"app","reporter":"u3","text":"c"}"#.utf8) + [0x0A]
        let path = try temporaryFile(bytes, suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [1, 2, 3])
        #expect(failure(records[1])?.message.contains("UTF-8") == true)
        #expect(report(records[0]) != nil)
        #expect(report(records[2])?.externalID == "e3")
    }

    @Test("a UTF-16 line is refused, not guessed")
    func utf16Line() throws {
        let line = Array(#"{"external_id":"e1","channel":"app","reporter":"u1","text":"a"}"#.utf16).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let path = try temporaryFile(line + [0x0A] + Array(#"{"external_id":"e2","channel":"app","reporter":"u2","text":"b"}"#.utf8) + [0x0A], suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [1, 2])
        #expect(failure(records[0])?.message.contains("UTF-16 or UTF-32") == true)
        #expect(report(records[1])?.externalID == "e2")
    }

    @Test("a file holding only a byte-order mark is empty; a blank line after one is skipped")
    func byteOrderMarkOnly() throws {
        for (text, lines) in [("\u{FEFF}", [Int]()), ("\u{FEFF}\n", []), ("\u{FEFF}\n" + #"{"external_id":"e1","channel":"app","reporter":"u1","text":"a"}"#, [2])] {
            let path = try temporaryFile(text, suffix: ".jsonl")
            defer { try? FileManager.default.removeItem(atPath: path) }
            let records = try readAll(path: path, format: .jsonl)
            #expect(records.map(\.line) == lines, "\(text.debugDescription)")
            #expect(records.allSatisfy { report($0) != nil }, "\(text.debugDescription)")
        }
    }

    @Test("a UTF-16 or UTF-32 file with a byte-order mark is refused whole, naming its encoding")
    func wideEncodingFile() throws {
        let line = #"{"external_id":"e1","channel":"app","reporter":"u1","text":"a"}"# + "\n"
        let utf16LE = [UInt8]([0xFF, 0xFE]) + Array(line.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let utf16BE = [UInt8]([0xFE, 0xFF]) + Array(line.utf16).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let utf32LE = [UInt8]([0xFF, 0xFE, 0, 0]) + line.unicodeScalars.flatMap { [UInt8($0.value & 0xFF), 0, 0, 0] }
        for (bytes, name) in [(utf16LE, "UTF-16LE"), (utf16BE, "UTF-16BE"), (utf32LE, "UTF-32LE")] {
            for format in [InputFormat.jsonl, .csv] {
                let path = try temporaryFile(bytes, suffix: ".txt")
                defer { try? FileManager.default.removeItem(atPath: path) }
                #expect {
                    _ = try readAll(path: path, format: format)
                } throws: { error in
                    "\(error)".contains("is \(name) (it starts with that byte-order mark)")
                }
            }
        }
    }

    @Test("blank lines are skipped but still counted")
    func blankLines() throws {
        let path = try temporaryFile(
            "\n" + #"{"external_id":"e1","channel":"app","reporter":"u1","text":"a"}"# + "\n   \n\t\n"
                + #"{"external_id":"e2","channel":"app","reporter":"u2","text":"b"}"# + "\n\n",
            suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [2, 5])
        #expect(records.compactMap { report($0)?.externalID } == ["e1", "e2"])
    }

    @Test("CRLF line endings are read like LF, and a last line without a line break is read")
    func crlf() throws {
        let path = try temporaryFile(
            #"{"external_id":"e1","channel":"app","reporter":"u1","text":"a"}"# + "\r\n"
                + #"{"external_id":"e2","channel":"app","reporter":"u2","text":"b","reported_at":"2026-10-03"}"# + "\r\n"
                + #"{"external_id":"e3","channel":"app","reporter":"u3","text":"c"}"#,
            suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [1, 2, 3])
        #expect(records.compactMap { report($0)?.externalID } == ["e1", "e2", "e3"])
        #expect(report(records[1])?.reportedAt == ISO8601.parse("2026-10-03"))
    }

    @Test("a line of valid JSON that is not an object is refused, naming what it is, not as invalid JSON")
    func notAnObject() throws {
        let path = try temporaryFile("[1, 2, 3]\n\"text\"\nnull\n42\ntrue\n", suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [1, 2, 3, 4, 5])
        let tail = ", not a JSON object: each line is one report, {\"external_id\": ...}"
        #expect(records.map { failure($0)?.message } == ["is an array", "is a string", "is null", "is a number", "is a boolean"].map { $0 + tail })
        #expect(records.allSatisfy { failure($0)?.field == nil })
    }

    @Test("a UTF-8 byte-order mark before a later JSONL line (files joined with cat) is no part of it")
    func byteOrderMarkMidFile() throws {
        let line = { (id: String) in #"{"external_id":"\#(id)","channel":"app","reporter":"u","text":"t"}"# }
        let path = try temporaryFile("\u{FEFF}" + line("b1") + "\n" + "\u{FEFF}" + line("b2") + "\n", suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try readAll(path: path, format: .jsonl).compactMap(report).map(\.externalID) == ["b1", "b2"])
    }

    @Test("lines ending in a carriage return alone (classic Mac OS) are refused with that reason, in JSONL and CSV, whatever the column order")
    func loneCarriageReturns() throws {
        let line = #"{"external_id":"j1","channel":"app","reporter":"u","text":"t"}"#
        let jsonl = try temporaryFile(line + "\r" + line.replacingOccurrences(of: "j1", with: "j2") + "\r", suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: jsonl) }
        var cases = [(jsonl, InputFormat.jsonl, "invalid JSON: unexpected text after the JSON value (byte 63)" + LineSplitter.loneCRHint)]
        // Required columns last or not: read as one line, the header would take the rows in (or,
        // in the samples' order, be a header with no rows, and every report lost in silence).
        for header in ["external_id,channel,reporter,text", "external_id,channel,reporter,text,platform"] {
            let extra = header.hasSuffix("platform") ? ",weibo" : ""
            let csv = try temporaryFile(header + "\re1,app,u1,t1\(extra)\re2,hotline,u2,t2\(extra)\r", suffix: ".csv")
            cases.append((csv, .csv, "the CSV header could not be read" + LineSplitter.loneCRHint))
        }
        defer { for (path, _, _) in cases { try? FileManager.default.removeItem(atPath: path) } }
        for (path, format, reason) in cases {
            let records = try readAll(path: path, format: format)
            #expect(records.count == 1 && records.first.flatMap(failure)?.message == reason, "\(path): \(records)")
        }
        #expect(LineSplitter.loneCRHint.contains("carriage return (CR) without a line feed"))
        // A header ended by LF, rows by CR alone: the rows run together, and say why.
        let mixed = try temporaryFile("external_id,channel,reporter,text\nm1,app,u1,t1\rm2,app,u2,t2\r\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: mixed) }
        let rows = try readAll(path: mixed, format: .csv)
        #expect(rows.count == 1 && rows.first.flatMap(failure)?.message == "has 7 fields, the header has 4" + LineSplitter.loneCRHint, "\(rows)")
        // A CR as JSON's whitespace is no line end: a line that parses is read, one that fails for
        // another reason gets no word about line ends.
        let spaced = try temporaryFile(#"{"external_id":"j3",\#r"channel":"app","reporter":"u","text":"t"}"# + "\n"
            + #"{"external_id":"j4",\#r"channel":"app","reporter":"u","text":"t",}"# + "\n", suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: spaced) }
        let read = try readAll(path: spaced, format: .jsonl)
        #expect(read.compactMap(report).map(\.externalID) == ["j3"])
        #expect(read.last.flatMap(failure).map { !$0.message.contains("carriage return") } == true, "\(read)")
    }

    @Test("a validation error inside a JSONL record names the field and the line")
    func validationError() throws {
        let path = try temporaryFile(#"{"external_id":"e1","channel":"fax","reporter":"u1","text":"a"}"# + "\n"
            + #"{"external_id":"e2","channel":"app","reporter":13812345678,"text":"a"}"# + "\n", suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [1, 2])
        #expect(failure(records[0])?.field == "channel")
        #expect(failure(records[1])?.field == "reporter")
        #expect(failure(records[1])?.message.hasPrefix("must be a string") == true)
    }

    @Test("a file larger than one read chunk is read whole, lines spanning chunks included")
    func largeFile() throws {
        let filler = String(repeating: "出租微信日租", count: 40)
        var text = ""
        for i in 1...3_000 {
            text += #"{"external_id":"e\#(i)","channel":"app","reporter":"u\#(i)","text":"\#(filler)"}"# + "\n"
        }
        #expect(text.utf8.count > 1 << 20)
        let path = try temporaryFile(text, suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = try ReportFileReader(path: path, format: .jsonl)
        #expect(reader.totalBytes == text.utf8.count)
        var records: [InputRecord] = []
        while let record = try reader.next() { records.append(record) }
        #expect(records.count == 3_000)
        #expect(records.allSatisfy { report($0)?.text == filler })
        #expect(records.map(\.line) == Array(1...3_000))
        #expect(reader.bytesRead == text.utf8.count)
    }

    @Test("a file that cannot be opened is an input error")
    func missingFile() {
        #expect(throws: InputError.self) {
            _ = try ReportFileReader(path: "/nonexistent/tipline-\(UUID().uuidString).jsonl", format: .jsonl)
        }
    }

    @Test("the format is guessed from the file name")
    func guessFormat() {
        #expect(InputFormat.guess(path: "reports.csv") == .csv)
        #expect(InputFormat.guess(path: "REPORTS.CSV") == .csv)
        #expect(InputFormat.guess(path: "reports.jsonl") == .jsonl)
        #expect(InputFormat.guess(path: "-") == .jsonl)
    }
}

@Suite("ReportFileReader, CSV")
struct CSVReaderTests {
    @Test("CSV with a header, quoted commas, doubled quotes and a newline inside a field is read with correct line numbers")
    func quotedFields() throws {
        let path = try temporaryFile(#"""
            external_id,channel,reporter,text,reported_at
            e1,app,u1,"出租, 日租",2026-10-03T14:22:05+08:00
            e2,hotline,u2,"He said ""rent""",
            e3,app,u3,"line one
            line two",
            e4,app,u4,plain,

            """#, suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 3, 4, 6])
        let e1 = try #require(report(records[0]))
        #expect(e1.text == "出租, 日租")
        #expect(e1.reportedAt == ISO8601.parse("2026-10-03T06:22:05Z"))
        let e2 = try #require(report(records[1]))
        #expect(e2.text == #"He said "rent""#)
        #expect(e2.channel == .hotline)
        #expect(e2.reportedAt == nil)
        #expect(report(records[2])?.text == "line one\nline two")
        #expect(report(records[3])?.externalID == "e4")
    }

    @Test("a row with the wrong number of fields is reported on the line it starts and later rows still parse")
    func wrongFieldCount() throws {
        let path = try temporaryFile(#"""
            external_id,channel,reporter,text
            e1,app,u1,"multi
            line",extra
            e2,app,u2,too,many
            e3,app,u3,ok

            """#, suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 4, 5])
        #expect(failure(records[0])?.message == "has 5 fields, the header has 4")
        #expect(failure(records[1])?.message == "has 5 fields, the header has 4")
        #expect(report(records[2])?.externalID == "e3")
    }

    @Test("a header missing required columns is reported on line 1, and the rows after it are refused")
    func missingHeaderColumns() throws {
        let path = try temporaryFile("external_id,text\ne1,hello\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.first?.line == 1)
        let message = try #require(records.first.flatMap(failure)?.message)
        #expect(message.contains("channel"))
        #expect(message.contains("reporter"))
        #expect(records.allSatisfy { failure($0) != nil })
    }

    @Test("a whole text is read up to its limit exactly, and refused a byte past it")
    func wholeTextLimit() throws {
        let atLimit = try temporaryFile(String(repeating: " ", count: 52) + "QQ 12345678", suffix: ".txt")
        defer { try? FileManager.default.removeItem(atPath: atLimit) }
        #expect(try WholeText.read(path: atLimit, limit: 63) == String(repeating: " ", count: 52) + "QQ 12345678")
        #expect(throws: InputError(field: nil, "\(atLimit) is longer than 62 bytes: not read (one text at most that long)")) {
            try WholeText.read(path: atLimit, limit: 62)
        }
    }

    @Test("a header of one column that holds semicolons or tabs says columns are separated by commas")
    func otherSeparators() throws {
        for (separator, name) in [(";", "semicolons"), ("\t", "tabs")] {
            let path = try temporaryFile(["external_id", "channel", "reporter", "text"].joined(separator: separator) + "\ne1\(separator)app\(separator)u\(separator)t\n",
                                         suffix: ".csv")
            defer { try? FileManager.default.removeItem(atPath: path) }
            let records = try readAll(path: path, format: .csv)
            #expect(records.map { failure($0)?.message } == Array(repeating: "CSV header lacks column(s) external_id, channel, reporter, text "
                + "(it has one column, which holds \(name): columns must be separated by commas)", count: 2))
        }
    }

    @Test("a header that names a column twice is refused, and the rows after it with it")
    func repeatedHeaderColumn() throws {
        let path = try temporaryFile("external_id,channel,reporter,text,Reporter\ne1,app,u1,hello,u2\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [1, 2])
        #expect(failure(records[0])?.message == "CSV header repeats column(s) reporter")
        #expect(failure(records[1]) != nil)
    }

    @Test("a byte-order mark before a quoted header is not part of it: the rows are read")
    func byteOrderMarkBeforeQuotedHeader() throws {
        let path = try temporaryFile("\u{FEFF}\"external_id\",\"channel\",\"reporter\",\"text\"\n\"e1\",\"app\",\"u1\",\"hello\"\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.count == 1)
        #expect(report(records[0])?.externalID == "e1")
    }

    @Test("a header that cannot be read refuses every row with that reason; no row is taken for the header")
    func unreadableHeader() throws {
        let path = try temporaryFile("external_id,chan\"nel,reporter,text\ne1,app,u1,hello\ne2,app,u2,hi\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [1, 2, 3])
        #expect(failure(records[0])?.message.contains("quote") == true, "\(records[0])")
        for record in records.dropFirst() {
            #expect(failure(record)?.message.hasPrefix("the CSV header (line 1) could not be read:") == true, "\(record)")
        }
    }

    @Test("rows of empty or blank cells are skipped like blank lines; a header of NUL bytes asks whether the file is UTF-16")
    func emptyRowsAndWideHeader() throws {
        let path = try temporaryFile("external_id,channel,reporter,text\r\ne1,app,u1,hello\r\n,,,\r\n   \r\n\t\r\n , ,\t, \r\ne2,app,u2,bye\r\n",
                                     suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 7])
        #expect(records.compactMap { report($0)?.externalID } == ["e1", "e2"])
        // UTF-16 without a byte-order mark, its header quoted or not.
        for text in ["external_id,channel,reporter,text\ne1,app,u1,hi\n", "\"external_id\",\"channel\",\"reporter\",\"text\"\ne1,app,u1,hi\n"] {
            let wide = try temporaryFile(Array(text.utf8).flatMap { [$0, UInt8(0)] }, suffix: ".csv")
            defer { try? FileManager.default.removeItem(atPath: wide) }
            let refused = try readAll(path: wide, format: .csv)
            #expect(failure(refused[0])?.message.contains("the CSV header holds NUL bytes: is the file UTF-16 or UTF-32?") == true,
                    "\(refused.map { failure($0)?.message ?? "" })")
            #expect(refused.allSatisfy { report($0) == nil })
        }
    }

    @Test("header names are matched case-insensitively and in any order")
    func headerCaseAndOrder() throws {
        let path = try temporaryFile(" Text ,REPORTER,Channel,External_ID\nhello,u1,app,e1\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.count == 1)
        #expect(report(records[0]) == ReportInput(
            externalID: "e1", channel: .app, reporter: "u1", text: "hello", reportedAt: nil, platform: nil))
    }

    @Test("an unterminated quote at the end of the file is reported on the line where it began, and the lines after it are read on their own")
    func unterminatedQuote() throws {
        let path = try temporaryFile(#"""
            external_id,channel,reporter,text
            e1,app,u1,ok
            e2,app,u2,"never closed
            more text

            """#, suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 3, 4])
        #expect(report(records[0])?.externalID == "e1")
        #expect(failure(records[1])?.message.hasPrefix("the quoted field in column 4 is never closed: this line is refused") == true)
        #expect(failure(records[2])?.message == "has 1 fields, the header has 4")
    }

    @Test("a quote left open on the last line is refused as never closed")
    func unterminatedQuoteOnTheLastLine() throws {
        let path = try temporaryFile("external_id,channel,reporter,text\ne1,app,u1,ok\ne2,app,u2,\"open", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 3])
        #expect(failure(records[1])?.message == "the quoted field in column 4 is never closed")
    }

    @Test("a stray opening quote costs only its own line: the good rows it swallowed are read again")
    func strayOpeningQuoteNeverClosed() throws {
        let path = try temporaryFile(#"""
            external_id,channel,reporter,text
            e1,app,u1,"5"" screen, rent
            e2,app,u2,出租微信
            e3,app,u3,"a, b"
            e4,app,u4,"multi
            line"
            e5,app,u5,日租

            """#, suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 3, 4, 5, 7])
        let message = try #require(failure(records[0])?.message)
        #expect(message.hasPrefix("the quoted field in column 4 runs onto the next lines and breaks on line 4 (text after the closing quote of column 4)"), "\(message)")
        #expect(records.dropFirst().compactMap { report($0)?.externalID } == ["e2", "e3", "e4", "e5"])
        #expect(report(records[3])?.text == "multi\nline")
    }

    @Test("a stray quote at the end of the file gives back every row after it")
    func strayQuoteAtTheEnd() throws {
        let path = try temporaryFile("external_id,channel,reporter,text\ne1,app,u1,\"oops\ne2,app,u2,ok\ne3,app,u3,fine\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 3, 4])
        #expect(failure(records[0]) != nil)
        #expect(records.dropFirst().compactMap { report($0)?.externalID } == ["e2", "e3"])
    }

    @Test("text after a closing quote is refused")
    func textAfterClosingQuote() throws {
        let path = try temporaryFile("external_id,channel,reporter,text\ne1,app,u1,\"a\"b\ne2,app,u2,ok\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 3])
        #expect(failure(records[0])?.message == "text after the closing quote of column 4")
        #expect(report(records[1])?.externalID == "e2")
    }

    @Test("a line too long to read keeps the line numbers after it, and ends a quoted field left open before it")
    func tooLongLine() throws {
        let huge = "e9,app,u9," + String(repeating: "x", count: 3 << 20)
        let path = try temporaryFile(
            "external_id,channel,reporter,text\ne1,app,u1,\"open\n\(huge)\ne2,app,u2,ok\ne3,app,u3,\"closed\"\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 3, 4, 5])
        #expect(failure(records[0])?.message == "the quoted field in column 4 runs into line 3, which cannot be read")
        #expect(failure(records[1])?.message == "is longer than \(LineSplitter.maxLineBytes) bytes: not read")
        #expect(records.dropFirst(2).compactMap { report($0)?.externalID } == ["e2", "e3"])
    }

    @Test("CSV with CRLF line endings and blank lines reads like LF")
    func crlfAndBlankLines() throws {
        let path = try temporaryFile(
            "external_id,channel,reporter,text\r\n\r\ne1,app,u1,\"a, b\"\r\ne2,app,u2,c\r\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [3, 4])
        #expect(records.compactMap { report($0)?.text } == ["a, b", "c"])
    }

    @Test("a quote inside an unquoted field is reported")
    func strayQuote() throws {
        let path = try temporaryFile("external_id,channel,reporter,text\ne1,app,u1,say \"hi\"\ne2,app,u2,ok\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.map(\.line) == [2, 3])
        #expect(failure(records[0])?.message.contains("quote") == true)
        #expect(report(records[1])?.externalID == "e2")
    }

    @Test("an empty CSV cell counts as a missing field")
    func emptyCell() throws {
        let path = try temporaryFile("external_id,channel,reporter,text\ne1,app,,hello\n", suffix: ".csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .csv)
        #expect(records.count == 1)
        #expect(failure(records[0]) == InputError(field: "reporter", "is required"))
    }
}

@Suite("CSVRecordParser")
struct CSVRecordParserTests {
    @Test("a quoted field open past the record limit is given up: its first line refused, the rest read again")
    func recordLimit() {
        var parser = CSVRecordParser(maxRecordBytes: 20)
        var records: [CSVRecordParser.Record] = []
        for (number, line) in ["a,\"open", "b,1", "c,2", "d,3", "e,4", "f,\"x\""].enumerated() {
            parser.feed(line: Array(line.utf8), number: number + 1)
            while let record = parser.takeRecord() { records.append(record) }
        }
        while let record = parser.finish() { records.append(record) }
        #expect(records.map(\.line) == [1, 2, 3, 4, 5, 6])
        if case .failure(let error) = records[0].fields {
            #expect(error.message.hasPrefix("the quoted field in column 2 runs past 20 bytes without its closing quote"))
        } else {
            Issue.record("line 1 was accepted")
        }
        let rows = records.dropFirst().compactMap { try? $0.fields.get() }
        #expect(rows == [["b", "1"], ["c", "2"], ["d", "3"], ["e", "4"], ["f", "x"]])
    }

    @Test("a quoted field over several lines within the limit is one record")
    func multiLineWithinLimit() {
        var parser = CSVRecordParser(maxRecordBytes: 20)
        for (number, line) in ["a,\"one", "two", "three\",z"].enumerated() {
            parser.feed(line: Array(line.utf8), number: number + 1)
        }
        let record = parser.finish()
        #expect(record?.line == 1)
        #expect((try? record?.fields.get()) == ["a", "one\ntwo\nthree", "z"])
        #expect(parser.finish() == nil)
    }
}

extension CSVRecordParserTests {
    @Test("rows that each break an open quote and open another are refused one by one, in linear work")
    func breakAndReopenOnEveryLine() {
        // From a clean start each line ends inside a quote; from inside one, "u1" closes it with text
        // after the quote, and the last field opens another. Reading every such record to the record
        // limit before starting over scanned about a megabyte per line.
        var parser = CSVRecordParser()
        let line = Array(#"1,app,"u1","text with no closing quote"#.utf8)
        var records = 0
        let rows = 20_000
        for number in 1...rows {
            parser.feed(line: line, number: number)
            while parser.takeRecord() != nil { records += 1 }
        }
        while parser.finish() != nil { records += 1 }
        #expect(records == rows)
        #expect(parser.consumedBytes < rows * (line.count + 1) * 3, "\(parser.consumedBytes) bytes parsed for \(rows) lines")
    }
}

@Suite("LineSplitter")
struct LineSplitterTests {
    /// Feeds `chunks` and takes every line, then the last one.
    private func lines(_ chunks: [[UInt8]], max: Int) -> [(Int, LineSplitter.Line)] {
        var splitter = LineSplitter(maxLineBytes: max)
        var out: [(Int, LineSplitter.Line)] = []
        for chunk in chunks {
            splitter.feed(chunk)
            while let line = splitter.takeLine() { out.append(line) }
        }
        if let last = splitter.finish() { out.append(last) }
        return out
    }

    @Test("a line over the limit comes out as too long, wherever the chunks cut it, and the lines around it are whole")
    func overlongLine() {
        let text = Array("ok1\r\n".utf8) + [UInt8](repeating: 0x61, count: 25) + Array("\nok2\n".utf8) + [UInt8](repeating: 0x62, count: 11)
        for size in [1, 2, 3, 7, 10, 64] {
            let chunks = stride(from: 0, to: text.count, by: size).map { Array(text[$0..<min($0 + size, text.count)]) }
            let got = lines(chunks, max: 10)
            #expect(got.map(\.0) == [1, 2, 3, 4], "chunks of \(size)")
            #expect(got.map(\.1) == [.bytes(Array("ok1".utf8)), .tooLong, .bytes(Array("ok2".utf8)), .tooLong], "chunks of \(size)")
        }
        // At the limit exactly, the line is kept.
        #expect(lines([[UInt8](repeating: 0x63, count: 10) + [0x0A]], max: 10).map(\.1) == [.bytes([UInt8](repeating: 0x63, count: 10))])
    }

    @Test("a line at the limit with a CRLF is kept wherever a chunk ends, between its CR and LF too")
    func limitWithCRLF() {
        let text = [UInt8](repeating: 0x63, count: 10) + Array("\r\nok\r\n".utf8)
        for size in 1...text.count {
            let chunks = stride(from: 0, to: text.count, by: size).map { Array(text[$0..<min($0 + size, text.count)]) }
            #expect(lines(chunks, max: 10).map(\.1) == [.bytes([UInt8](repeating: 0x63, count: 10)), .bytes(Array("ok".utf8))],
                    "chunks of \(size)")
        }
    }

    @Test("a file with one line far over the limit is read line by line: the long one refused by number, the others accepted")
    func hugeLineInAFile() throws {
        let good = #"{"external_id":"e1","channel":"app","reporter":"u1","text":"出租微信"}"#
        let huge = #"{"external_id":"e2","channel":"app","reporter":"u2","text":""# + String(repeating: "x", count: 3 << 20) + #""}"#
        let last = #"{"external_id":"e3","channel":"app","reporter":"u3","text":"批发QQ号"}"#
        let path = try temporaryFile(good + "\n" + huge + "\n" + last + "\n", suffix: ".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try readAll(path: path, format: .jsonl)
        #expect(records.map(\.line) == [1, 2, 3])
        #expect(report(records[0])?.externalID == "e1")
        #expect(failure(records[1])?.message == "is longer than \(LineSplitter.maxLineBytes) bytes: not read")
        #expect(report(records[2])?.externalID == "e3")
    }
}
