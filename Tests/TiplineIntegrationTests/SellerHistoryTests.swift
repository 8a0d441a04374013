import Foundation
import Testing
import TiplineCore
@testable import TiplineStore

/// Which past reports a batch reads from `reports` and which from the sellers' columns: pure, no
/// database (`SellerHistory` lives in the store, beside the statement that reads them).
@Suite("seller history")
struct SellerHistoryTests {
    static let hash = ReporterHash(Data(repeating: 7, count: 32))!
    static let day = Date(timeIntervalSince1970: 1_790_000_000)

    static func span(_ days: Double) -> SellerHistory.Span {
        SellerHistory.Span(from: day.addingTimeInterval(days * 86_400), until: day.addingTimeInterval((days + 1) * 86_400))
    }

    @Test("only sellers whose column is not kept are read from reports; an unknown one whole, an overflowing one in its span")
    func unkeptSellers() throws {
        let kept = SellerRecord(bytes: SellerRecord.encode([(Self.day, Self.hash)]))
        let history = SellerHistory(whole: [1, 2, 6], windowed: [3, 4, 5], spans: [Self.span(1), Self.span(2), Self.span(3)])
        // 6 has no record: not locked, so unknown.
        let records: [Int64: SellerRecord] = [1: kept, 2: .overflow, 3: .unknown, 4: .overflow, 5: kept]
        let unkept = history.unkept(given: records)
        #expect(unkept.whole == [2, 6, 3])
        #expect(unkept.windowed == [4])
        #expect(unkept.spans.map(\.from) == [Self.span(2).from] && unkept.spans.map(\.until) == [Self.span(2).until])
        // Complete: every report given, from a column or read whole.
        #expect(history.complete(given: records) == [1, 2, 3, 5, 6])
        #expect(history.unkept(given: [1: kept, 2: kept, 3: kept, 4: kept, 5: kept, 6: kept]).isEmpty)
    }

    @Test("a kept seller's reports come from its column, within its span give or take a millisecond")
    func keptSellers() throws {
        let inside = Self.span(1).from.addingTimeInterval(-0.0005)
        let outside = Self.span(1).until.addingTimeInterval(0.01)
        let record = SellerRecord(bytes: SellerRecord.encode([(inside, Self.hash), (outside, Self.hash)]))
        let history = SellerHistory(whole: [1], windowed: [2, 3], spans: [Self.span(1), Self.span(1)])
        let events = try history.kept(in: [1: record, 2: record, 3: .overflow])
        #expect(events[1]?.map(\.0) == [inside, outside])
        #expect(events[2]?.map(\.0) == [inside])
        #expect(events[3] == nil)
        #expect(throws: TiplineError.self) { try history.kept(in: [1: record, 2: record]) }
    }
}
