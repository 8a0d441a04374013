import ContactExtraction
import Foundation
import Testing
@testable import TiplineCore

@Suite("ISO8601")
struct ISO8601Tests {
    @Test("a UTC date-time with Z parses to the same instant")
    func zulu() {
        #expect(ISO8601.parse("2026-10-03T06:22:05Z") == Date(timeIntervalSince1970: 1_791_008_525))
        #expect(ISO8601.parse("2026-10-03T06:22:05z") == Date(timeIntervalSince1970: 1_791_008_525))
        #expect(ISO8601.parse("2026-10-03 06:22:05Z") == Date(timeIntervalSince1970: 1_791_008_525))
    }

    @Test("fractional seconds are kept")
    func fractions() throws {
        let parsed = try #require(ISO8601.parse("2026-10-03T06:22:05.250Z"))
        #expect(abs(parsed.timeIntervalSince1970 - 1_791_008_525.25) < 1e-6)
        let comma = try #require(ISO8601.parse("2026-10-03T06:22:05,5+00:00"))
        #expect(abs(comma.timeIntervalSince1970 - 1_791_008_525.5) < 1e-6)
        #expect(ISO8601.parse("2026-10-03T06:22:05.Z") == nil)
    }

    @Test("offsets are subtracted to reach UTC, with or without a colon or minutes")
    func offsets() {
        let utc = Date(timeIntervalSince1970: 1_791_008_525)
        #expect(ISO8601.parse("2026-10-03T14:22:05+08:00") == utc)
        #expect(ISO8601.parse("2026-10-03T14:22:05+0800") == utc)
        #expect(ISO8601.parse("2026-10-03T14:22:05+08") == utc)
        #expect(ISO8601.parse("2026-10-03T01:52:05-04:30") == utc)
    }

    @Test("minutes without seconds are accepted")
    func noSeconds() {
        #expect(ISO8601.parse("2026-10-03T06:22Z") == Date(timeIntervalSince1970: 1_791_008_520))
    }

    @Test("a bare date is UTC midnight")
    func bareDate() {
        #expect(ISO8601.parse("2026-10-03") == Date(timeIntervalSince1970: 1_790_985_600))
        #expect(ISO8601.parse("1970-01-01") == Date(timeIntervalSince1970: 0))
        #expect(ISO8601.parse("2000-01-01") == Date(timeIntervalSince1970: 946_684_800))
    }

    @Test("leap days exist only in leap years")
    func leapDays() {
        #expect(ISO8601.parse("2024-02-29") != nil)
        #expect(ISO8601.parse("2000-02-29") != nil)
        #expect(ISO8601.parse("2026-02-29") == nil)
        #expect(ISO8601.parse("1900-02-29") == nil)
        #expect(ISO8601.parse("2024-03-01")!.timeIntervalSince(ISO8601.parse("2024-02-28")!) == 2 * 86_400)
    }

    @Test("malformed or out-of-range dates and times are refused")
    func refused() {
        for text in [
            "", "2026/11/03", "2026-1-03", "2026-13-01", "2026-00-10", "2026-04-31", "2026-10-03T",
            "2026-10-03T14:22:05", "2026-10-03T24:00:00Z", "2026-10-03T12:60:00Z", "2026-10-03T12:00:61Z",
            "2026-10-03T12:00:00+15:00", "2026-10-03T12:00:00Z junk", "2026-10-03x", "03-10-2026",
            "2026-10-03T12:00:00+08:0",
        ] {
            #expect(ISO8601.parse(text) == nil, "\(text)")
        }
    }
}
