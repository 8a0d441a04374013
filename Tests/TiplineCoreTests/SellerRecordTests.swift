import Foundation
import Testing
import TiplineCore

@Suite("Seller history records")
struct SellerRecordTests {
    /// A 32-byte hash whose every byte is `seed`, and a report of it at `seconds`.
    func event(_ seconds: Double, _ seed: UInt8) -> SellerBook.Event {
        (Date(timeIntervalSinceReferenceDate: seconds), ReporterHash([UInt8](repeating: seed, count: 32))!)
    }

    func same(_ a: [SellerBook.Event], _ b: [SellerBook.Event]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.at == $1.at && $0.reporter == $1.reporter }
    }

    @Test("kept reports come back with the same times, to the bit, and the same reporters")
    func roundTrip() {
        // Times as the worker parses them: fractions that no decimal writes exactly.
        let events = [event(815_000_000.123456, 1), event(-1.5, 2), event(815_000_000.123456, 1), event(0.1 + 0.2, 255)]
        let bytes = SellerRecord.encode(events)
        #expect(bytes.count == 1 + 4 * SellerRecord.entrySize)
        #expect(bytes.first == 1)
        let record = SellerRecord(bytes: bytes)
        #expect(record.count == 4)
        #expect(same(record.events(), events))
        #expect(same(SellerRecord(bytes: SellerRecord.encode([])).events(), []))
        #expect(SellerRecord(bytes: SellerRecord.encode([])).count == 0)
    }

    @Test("appended entries read as one history")
    func appending() {
        let first = [event(10, 1), event(20, 2)]
        let more = [event(15, 3)]
        let bytes = SellerRecord.encode(first) + SellerRecord.entries(more)!
        #expect(same(SellerRecord(bytes: bytes).events(), first + more))
    }

    @Test("a span keeps only the reports inside it, both ends included")
    func span() {
        let events = [event(10, 1), event(20, 2), event(30, 3), event(40, 4)]
        let record = SellerRecord(bytes: SellerRecord.encode(events))
        let inside = record.events(from: Date(timeIntervalSinceReferenceDate: 20), until: Date(timeIntervalSinceReferenceDate: 30))
        #expect(same(inside, [events[1], events[2]]))
        #expect(same(record.events(until: Date(timeIntervalSinceReferenceDate: 10)), [events[0]]))
        #expect(same(record.events(from: Date(timeIntervalSinceReferenceDate: 41)), []))
    }

    @Test("more reports than the capacity, or a hash of another length, make the overflow marker")
    func overflow() {
        let many = (0...SellerRecord.capacity).map { event(Double($0), UInt8($0)) }
        #expect(SellerRecord.encode(many) == SellerRecord.overflowBytes)
        #expect(SellerRecord.encode(Array(many.dropLast())).count == 1 + SellerRecord.capacity * SellerRecord.entrySize)
        let short: SellerBook.Event = (Date(timeIntervalSinceReferenceDate: 0), ReporterHash([1, 2, 3])!)
        #expect(SellerRecord.encode([short]) == SellerRecord.overflowBytes)
        #expect(SellerRecord.entries([short]) == nil)
        guard case .overflow = SellerRecord(bytes: SellerRecord.overflowBytes) else {
            Issue.record("the overflow marker does not read as overflow")
            return
        }
        #expect(SellerRecord(bytes: SellerRecord.overflowBytes).count == nil)
    }

    @Test("a record stores the bytes it was read from; unknown stores NULL")
    func stored() {
        let kept = SellerRecord.encode([event(1, 1), event(2, 2)])
        #expect(SellerRecord(bytes: kept).stored == kept)
        #expect(SellerRecord(bytes: SellerRecord.overflowBytes).stored == SellerRecord.overflowBytes)
        #expect(SellerRecord(bytes: nil).stored == nil)
        #expect(SellerRecord(bytes: Data([7, 7])).stored == nil)
    }

    @Test("an administrator's mark reads as recount, and is stored as it was read; both it and unknown read whole")
    func recountMark() {
        guard case .recount = SellerRecord(bytes: SellerRecord.recountBytes) else {
            Issue.record("the recount mark did not read as recount")
            return
        }
        #expect(SellerRecord.recountBytes == Data([2]))
        #expect(SellerRecord.recount.stored == SellerRecord.recountBytes)
        #expect(SellerRecord.recount.readsWhole && SellerRecord.unknown.readsWhole)
        #expect(!SellerRecord.overflow.readsWhole && !SellerRecord(bytes: SellerRecord.encode([event(1, 1)])).readsWhole)
        #expect(SellerRecord.recount.count == nil && SellerRecord.recount.events().isEmpty)
    }

    @Test("NULL and bytes of no known layout read as unknown, whose reports are read whole")
    func unknownLayouts() {
        let kept = SellerRecord.encode([event(1, 1)])
        let cases: [Data?] = [
            nil, Data(), Data([3]), Data([2, 0]), Data([0, 0]), kept.dropLast(), kept + Data([0]),
            Data([1]) + Data(repeating: 0, count: (SellerRecord.capacity + 1) * SellerRecord.entrySize),
        ]
        for bytes in cases {
            guard case .unknown = SellerRecord(bytes: bytes) else {
                Issue.record("\(bytes.map { Array($0.prefix(4)) } as Any) (\(bytes?.count ?? -1) bytes) did not read as unknown")
                continue
            }
        }
    }
}
