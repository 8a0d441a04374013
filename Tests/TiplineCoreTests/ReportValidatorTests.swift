import ContactExtraction
import Foundation
import Testing
@testable import TiplineCore

/// A complete, valid record; tests change one field at a time.
private func validFields(_ changes: [String: Any?] = [:]) -> [String: Any] {
    var fields: [String: Any] = [
        "external_id": "ext-1",
        "channel": "app",
        "reporter": "user-42",
        "text": "出租微信 日租80元",
    ]
    for (name, value) in changes { fields[name] = value }
    return fields
}

/// The clock the validator is given: 2026-11-01T00:00:00Z.
private let now = Date(timeIntervalSince1970: 1_793_491_200)

private func error(of result: Result<ReportInput, InputError>) -> InputError? {
    if case .failure(let error) = result { return error }
    return nil
}

@Suite("ReportValidator")
struct ReportValidatorTests {
    private let validator = ReportValidator()

    @Test("a complete record is accepted as it was given")
    func validRecord() throws {
        let input = try validator.validate(validFields(["platform": "weibo"]), now: now).get()
        #expect(input == ReportInput(
            externalID: "ext-1", channel: .app, reporter: "user-42", text: "出租微信 日租80元",
            reportedAt: nil, platform: "weibo"))
    }

    @Test("a record without text is refused with field text: is required")
    func missingText() {
        let failure = error(of: validator.validate(validFields(["text": nil]), now: now))
        #expect(failure == InputError(field: "text", "is required"))
    }

    @Test("each required field missing or null is reported by name")
    func requiredFields() {
        for name in ["external_id", "channel", "reporter", "text"] {
            #expect(error(of: validator.validate(validFields([name: nil]), now: now))?.field == name)
            #expect(error(of: validator.validate(validFields([name: NSNull()]), now: now))?.message == "is required")
        }
    }

    @Test("text of only whitespace is refused as empty")
    func blankText() {
        let failure = error(of: validator.validate(validFields(["text": "  \n\t "]), now: now))
        #expect(failure?.field == "text")
        #expect(failure?.message == "is empty")
    }

    @Test("an unknown channel or time is refused with what is expected, never repeating the value (it may be a misplaced identity)")
    func unknownChannel() throws {
        let failure = try #require(error(of: validator.validate(validFields(["channel": "fax"]), now: now)))
        #expect(failure.field == "channel")
        #expect(failure.message.contains("app"))
        #expect(failure.message.contains("hotline"))
        #expect(!failure.message.contains("fax"))
        // A caller's number in the channel or time column of a CSV whose columns are out of place.
        for field in ["channel", "reported_at"] {
            let misplaced = try #require(error(of: validator.validate(validFields([field: "+86 138 1234 5678"]), now: now)))
            #expect(misplaced.field == field)
            #expect(!misplaced.message.contains("138"), "\(misplaced.message)")
        }
        // A known channel in capitals is named, with the fix.
        let capital = try #require(error(of: validator.validate(validFields(["channel": "Hotline"]), now: now)))
        #expect(capital.message == #"unknown channel "Hotline" (channels are lower case: hotline)"#)
    }

    @Test("the hotline channel is accepted")
    func hotline() throws {
        #expect(try validator.validate(validFields(["channel": "hotline"]), now: now).get().channel == .hotline)
    }

    @Test("a reporter given as a number is refused: it must be a string")
    func numericReporter() throws {
        for value: Any in [NSNumber(value: 13_812_345_678), 42] {
            let failure = try #require(error(of: validator.validate(validFields(["reporter": value]), now: now)))
            #expect(failure.field == "reporter")
            #expect(failure.message.hasPrefix("must be a string"))
        }
    }

    @Test("a NUL character in the text is refused")
    func nulInText() throws {
        let failure = try #require(error(of: validator.validate(validFields(["text": "出租\u{0}微信"]), now: now)))
        #expect(failure.field == "text")
        #expect(failure.message.contains("NUL"))
    }

    @Test("text over 64 KiB is refused and text of exactly 64 KiB is accepted")
    func textLimit() throws {
        let exact = String(repeating: "a", count: 65_536)
        #expect(try validator.validate(validFields(["text": exact]), now: now).get().text == exact)
        let failure = try #require(error(of: validator.validate(validFields(["text": exact + "a"]), now: now)))
        #expect(failure.field == "text")
        #expect(failure.message.contains("65537"))
        // The limit is in UTF-8 bytes, not characters: 21 846 three-byte characters are 65 538 bytes.
        let wide = String(repeating: "租", count: 21_846)
        #expect(error(of: validator.validate(validFields(["text": wide]), now: now))?.field == "text")
    }

    @Test("surrounding spaces are trimmed from short fields but kept in the text")
    func trimming() throws {
        let input = try validator.validate(
            validFields(["external_id": "  ext-9 ", "reporter": " user ", "text": "  出租 "]), now: now).get()
        #expect(input.externalID == "ext-9")
        #expect(input.reporter == "user")
        #expect(input.text == "  出租 ")
    }

    @Test("reported_at with an offset is accepted and converted to UTC")
    func reportedAtWithOffset() throws {
        let input = try validator.validate(validFields(["reported_at": "2026-10-03T14:22:05+08:00"]), now: now).get()
        #expect(input.reportedAt == ISO8601.parse("2026-10-03T06:22:05Z"))
        #expect(input.reportedAt == Date(timeIntervalSince1970: 1_791_008_525))
    }

    @Test("reported_at as a bare date is accepted as UTC midnight")
    func reportedAtDate() throws {
        let input = try validator.validate(validFields(["reported_at": "2026-10-03"]), now: now).get()
        #expect(input.reportedAt == Date(timeIntervalSince1970: 1_790_985_600))
    }

    @Test("reported_at with slashes is refused with an example of the right form")
    func reportedAtSlashes() throws {
        let failure = try #require(error(of: validator.validate(validFields(["reported_at": "2026/11/03"]), now: now)))
        #expect(failure.field == "reported_at")
        #expect(failure.message.contains("ISO 8601"))
    }

    @Test("reported_at with a time but no zone is refused, and the message says the zone is what is missing",
          arguments: ["2026-10-03T14:22:05", "2026-10-03 14:22", "2026-10-03T14:22:05.25"])
    func reportedAtNoZone(value: String) throws {
        let failure = try #require(error(of: validator.validate(validFields(["reported_at": value]), now: now)))
        #expect(failure.field == "reported_at")
        #expect(failure.message.contains("has no time zone") && failure.message.contains("+08:00"), "\(failure.message)")
    }

    @Test("reported_at more than a day ahead of now is refused; within a day of skew is accepted")
    func reportedAtFuture() throws {
        let failure = try #require(error(of: validator.validate(validFields(["reported_at": "2026-11-03T00:00:00Z"]), now: now)))
        #expect(failure.field == "reported_at")
        #expect(failure.message.contains("future"))
        let skewed = try validator.validate(validFields(["reported_at": "2026-11-01T23:00:00Z"]), now: now).get()
        #expect(skewed.reportedAt == now.addingTimeInterval(23 * 3600))
    }

    @Test("reported_at before 2000 is refused and 2000-01-01 itself is accepted")
    func reportedAtBefore2000() throws {
        let failure = try #require(error(of: validator.validate(validFields(["reported_at": "1999-12-31T23:59:59Z"]), now: now)))
        #expect(failure.field == "reported_at")
        #expect(failure.message.contains("2000"))
        let first = try validator.validate(validFields(["reported_at": "2000-01-01"]), now: now).get()
        #expect(first.reportedAt == Date(timeIntervalSince1970: 946_684_800))
    }

    @Test("line breaks and other blanks at either end of a one-line field are trimmed, so one reporter stays one; inside, a control character or line break is refused")
    func lineBreaksInOneLineFields() throws {
        for end in ["\n", "\r\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}", "\u{3000}", "\t"] {
            let input = try validator.validate(validFields(["external_id": end + "ext-1" + end, "reporter": "mallory" + end,
                                                            "channel": "app" + end, "platform": end + "weibo"]), now: now).get()
            #expect(input.externalID == "ext-1" && input.reporter == "mallory" && input.channel == .app && input.platform == "weibo",
                    "\(end.unicodeScalars.map(\.value))")
            // Nothing but blanks is nothing.
            #expect(error(of: validator.validate(validFields(["reporter": end + end]), now: now)) == InputError(field: "reporter", "is required"))
        }
        for (inside, code) in [("\n", "000A"), ("\t", "0009"), ("\u{7F}", "007F"), ("\u{2028}", "2028"), ("\u{1B}", "001B")] {
            for field in ["external_id", "reporter", "platform"] {
                let failure = error(of: validator.validate(validFields([field: "mal" + inside + "lory"]), now: now))
                #expect(failure == InputError(field: field, "contains a control character or line break (U+\(code)) inside it"))
            }
        }
        // The ad's text keeps its lines.
        #expect(try validator.validate(validFields(["text": "出租\n微信\r\n"]), now: now).get().text == "出租\n微信\r\n")
    }

    @Test("an over-long external id, reporter or platform is refused by field")
    func otherLimits() {
        #expect(error(of: validator.validate(validFields(["external_id": String(repeating: "x", count: 201)]), now: now))?.field
            == "external_id")
        #expect(error(of: validator.validate(validFields(["reporter": String(repeating: "x", count: 257)]), now: now))?.field
            == "reporter")
        #expect(error(of: validator.validate(validFields(["platform": String(repeating: "x", count: 65)]), now: now))?.field
            == "platform")
    }

    @Test("a value NFC makes longer than its limit is refused with both lengths: the stored one and the one before NFC")
    func limitAfterNFC() {
        // U+0958 (DEVANAGARI LETTER QA) decomposes: 3 bytes sent, 6 stored.
        let failure = error(of: validator.validate(validFields(["external_id": String(repeating: "\u{0958}", count: 60)]), now: now))
        #expect(failure == InputError(field: "external_id", "is 360 bytes long once in Unicode's composed form (NFC), 180 before it (limit 200)"))
        #expect(error(of: validator.validate(validFields(["external_id": String(repeating: "x", count: 201)]), now: now))
            == InputError(field: "external_id", "is 201 bytes long (limit 200)"))
    }

    @Test("the external id is put in NFC, so canonically equal ids are one key byte for byte")
    func externalIDInNFC() throws {
        let decomposed = try validator.validate(validFields(["external_id": "cafe\u{301}-1"]), now: now).get()
        #expect(Array(decomposed.externalID.utf8) == Array("caf\u{E9}-1".utf8))
        let composed = try validator.validate(validFields(["external_id": "caf\u{E9}-1"]), now: now).get()
        #expect(Array(composed.externalID.utf8) == Array("caf\u{E9}-1".utf8))
        // The text is kept as given.
        let other = try validator.validate(validFields(["text": "cafe\u{301}"]), now: now).get()
        #expect(Array(other.text.utf8) == Array("cafe\u{301}".utf8))
    }

    @Test("a hotline caller's number is one reporter however it is written; app user ids are kept as given")
    func canonicalReporter() throws {
        for written in ["+86 138 1234 5678", "13812345678", "138-1234-5678", "0086 138 1234 5678", "8613812345678",
                        "(+86) 138 1234 5678", "＋８６ １３８１２３４５６７８"] {
            let report = try validator.validate(validFields(["channel": "hotline", "reporter": written]), now: now).get()
            #expect(report.reporter == "+8613812345678", "\(written)")
        }
        let landline = try validator.validate(validFields(["channel": "hotline", "reporter": "010-8765 4321"]), now: now).get()
        #expect(landline.reporter == "01087654321")
        let foreign = try validator.validate(validFields(["channel": "hotline", "reporter": "00 44 7911 123456"]), now: now).get()
        #expect(foreign.reporter == "+447911123456")
        let named = try validator.validate(validFields(["channel": "hotline", "reporter": "caller 7"]), now: now).get()
        #expect(named.reporter == "caller 7")
        let app = try validator.validate(validFields(["channel": "app", "reporter": "138-1234-5678"]), now: now).get()
        #expect(app.reporter == "138-1234-5678")
        let decomposed = try validator.validate(validFields(["reporter": "cafe\u{301}"]), now: now).get()
        #expect(Array(decomposed.reporter.utf8) == Array("caf\u{E9}".utf8))
    }

    @Test("a field of the wrong JSON type is named by its type: boolean, number, array, object")
    func wrongTypeNames() throws {
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(#"{"t":true,"n":12,"one":1,"a":[1],"o":{}}"#.utf8)) as? [String: Any])
        for (key, name) in [("t", "a boolean"), ("n", "a number"), ("one", "a number"), ("a", "an array"), ("o", "an object")] {
            let message = error(of: validator.validate(validFields(["reporter": decoded[key]]), now: now))?.message
            #expect(message == "must be a string, not \(name)", "\(key): \(message ?? "accepted")")
        }
    }

    @Test("an input error reads as field: message")
    func errorDescription() {
        #expect(InputError(field: "text", "is required").description == "text: is required")
        #expect(InputError(field: nil, "invalid JSON").description == "invalid JSON")
    }
}
