import ContactExtraction
import Foundation
import Testing
@testable import TiplineCore

/// The placement of a report that must have one (a helper because `#require` cannot wrap a mutating call).
private func placed(
    _ placement: SellerBook.Placement?, sourceLocation: SourceLocation = #_sourceLocation
) throws -> SellerBook.Placement {
    try #require(placement, sourceLocation: sourceLocation)
}

/// A book with nothing stored.
private func emptyBook(ladder: Ladder = .default) -> SellerBook {
    SellerBook(ladder: ladder, owners: [:], levels: [:], events: [:])
}

@Suite("SellerBook")
struct SellerBookTests {
    @Test("a report with no contacts belongs to no seller")
    func noContacts() {
        var book = emptyBook()
        #expect(book.add(contacts: [], at: epoch, reporter: reporter("a")) == nil)
        #expect(book.created.isEmpty)
        #expect(book.owners.isEmpty)
    }

    @Test("new contacts create a provisional offender that owns them")
    func newOffender() throws {
        var book = emptyBook()
        let placement = try placed(book.add(contacts: [qq("12345"), wechat("seller_a")], at: epoch, reporter: reporter("a")))
        #expect(placement.offender >= SellerBook.firstProvisionalID)
        #expect(book.created == [placement.offender])
        #expect(book.owners[qq("12345")] == placement.offender)
        #expect(book.owners[wechat("seller_a")] == placement.offender)
        #expect(placement.level == Level.none)
        #expect(placement.rise == nil)
        #expect(book.merges.isEmpty)
    }

    @Test("unrelated contacts create distinct provisional offenders in creation order")
    func distinctOffenders() throws {
        var book = emptyBook()
        let first = try placed(book.add(contacts: [qq("111111")], at: epoch, reporter: reporter("a")))
        let second = try placed(book.add(contacts: [qq("222222")], at: epoch, reporter: reporter("b")))
        #expect(first.offender != second.offender)
        #expect(second.offender >= SellerBook.firstProvisionalID)
        #expect(book.created == [first.offender, second.offender])
    }

    @Test("a report sharing a contact with a stored offender lands on that offender")
    func joinsStoredOffender() throws {
        var book = SellerBook(ladder: .default, owners: [qq("12345"): 42], levels: [42: .review], events: [:])
        let placement = try placed(book.add(contacts: [qq("12345"), wechat("new_one")], at: epoch, reporter: reporter("a")))
        #expect(placement.offender == 42)
        #expect(book.created.isEmpty)
        #expect(book.owners[wechat("new_one")] == 42)
        #expect(book.level(of: 42) == .review)
    }

    @Test("a chain A-B, B-C, C-D added in the worst order ends with one seller")
    func chainWorstOrder() throws {
        let a = qq("10001"), b = qq("10002"), c = qq("10003"), d = qq("10004")
        var book = emptyBook()
        let reports: [[Contact]] = [[a], [c], [d], [b, c], [a, b], [c, d]]
        var placements: [SellerBook.Placement] = []
        for (i, contacts) in reports.enumerated() {
            placements.append(try placed(book.add(contacts: contacts, at: day(Double(i)), reporter: reporter("r\(i)"))))
        }
        // A, C and D each started a seller of their own.
        #expect(book.created.count == 3)
        let survivors = Set(placements.map { book.survivor(of: $0.offender) })
        #expect(survivors.count == 1)
        let survivor = try #require(survivors.first)
        // The survivor is the lowest id, A's, and the other two were absorbed into it.
        #expect(survivor == book.created[0])
        #expect(book.merges.count == 2)
        #expect(Set(book.merges.map(\.absorbed)) == Set(book.created[1...]))
        #expect(book.merges.allSatisfy { $0.into == survivor })
        for contact in [a, b, c, d] {
            #expect(book.survivor(of: try #require(book.owners[contact])) == survivor)
        }
        // Six distinct reporters within six days: suspend, for every id the seller ever had.
        #expect(book.level(of: survivor) == .suspend)
        for id in book.created { #expect(book.level(of: id) == .suspend) }
    }

    @Test("a report linking two stored offenders merges them into the lowest id")
    func mergeIntoLowestID() throws {
        var book = SellerBook(
            ladder: .default, owners: [qq("99999"): 9, qq("55555"): 5], levels: [5: .review, 9: .review], events: [:])
        let placement = try placed(book.add(contacts: [qq("99999"), qq("55555")], at: epoch, reporter: reporter("a")))
        #expect(placement.offender == 5)
        #expect(book.survivor(of: 9) == 5)
        #expect(book.survivor(of: 5) == 5)
        #expect(book.merges.count == 1)
        #expect(book.merges.first?.absorbed == 9)
        #expect(book.merges.first?.into == 5)
        #expect(book.created.isEmpty)
        // Both contacts now resolve to the survivor.
        #expect(book.survivor(of: try #require(book.owners[qq("99999")])) == 5)
        #expect(book.survivor(of: try #require(book.owners[qq("55555")])) == 5)
    }

    @Test("a merge lifts the survivor to the absorbed seller's level and reports it as a rise")
    func mergeLiftsLevel() throws {
        var book = SellerBook(
            ladder: .default, owners: [qq("99999"): 9, qq("55555"): 5], levels: [5: .review, 9: .suspend], events: [:])
        let placement = try placed(book.add(contacts: [qq("55555"), qq("99999")], at: epoch, reporter: reporter("a")))
        #expect(placement.offender == 5)
        #expect(placement.level == .suspend)
        #expect(placement.rise == SellerBook.Rise(offender: 5, from: .review, to: .suspend))
        #expect(book.level(of: 5) == .suspend)
        #expect(book.level(of: 9) == .suspend)
    }

    @Test("a merge pools both sellers' reporters for the window count")
    func mergePoolsEvents() throws {
        let events: [Int64: [SellerBook.Event]] = [
            5: [(at: day(0), reporter: reporter("a")), (at: day(1), reporter: reporter("b"))],
            9: [(at: day(2), reporter: reporter("c")), (at: day(3), reporter: reporter("d"))],
        ]
        var book = SellerBook(
            ladder: .default, owners: [qq("99999"): 9, qq("55555"): 5], levels: [5: .review, 9: .review], events: events)
        let placement = try placed(book.add(contacts: [qq("55555"), qq("99999")], at: day(4), reporter: reporter("e")))
        // a, b, c, d, e within five days: five distinct reporters.
        #expect(placement.level == .suspend)
        #expect(placement.rise == SellerBook.Rise(offender: 5, from: .review, to: .suspend))
    }

    @Test("a seller's events are those it was given, the batch's and those of every seller it absorbed, by time")
    func eventsOfSurvivor() throws {
        let events: [Int64: [SellerBook.Event]] = [
            5: [(at: day(6), reporter: reporter("a"))],
            9: [(at: day(2), reporter: reporter("c")), (at: day(8), reporter: reporter("d"))],
        ]
        var book = SellerBook(
            ladder: .default, owners: [qq("99999"): 9, qq("55555"): 5], levels: [5: .none, 9: .none], events: events)
        _ = try placed(book.add(contacts: [qq("55555")], at: day(7), reporter: reporter("b")))
        _ = try placed(book.add(contacts: [qq("55555"), qq("99999")], at: day(1), reporter: reporter("e")))
        let expected: [(Double, String)] = [(1, "e"), (2, "c"), (6, "a"), (7, "b"), (8, "d")]
        for id: Int64 in [5, 9] {
            let got = book.events(of: id)
            #expect(got.map(\.at) == expected.map { day($0.0) })
            #expect(got.map(\.reporter) == expected.map { reporter($0.1) })
        }
        let fresh = try placed(book.add(contacts: [qq("12345")], at: day(3), reporter: reporter("f")))
        #expect(book.events(of: fresh.offender).map(\.reporter) == [reporter("f")])
    }

    @Test("a stored level never goes down when new reports would earn less")
    func levelsNeverGoDown() throws {
        var book = SellerBook(ladder: .default, owners: [qq("12345"): 3], levels: [3: .refer], events: [:])
        let placement = try placed(book.add(contacts: [qq("12345")], at: epoch, reporter: reporter("a")))
        #expect(placement.level == .refer)
        #expect(placement.rise == nil)
        #expect(book.level(of: 3) == .refer)
    }

    @Test("a seller to recount (its level set by hand) has every window read at its next report, once; others only the windows holding it")
    func recountAfterLevelSetByHand() throws {
        // Three reporters within a window long ago earn restrict; the stored level says none.
        let past: [SellerBook.Event] = ["a", "b", "c"].enumerated().map { (epoch.addingTimeInterval(Double($0.offset) * 86_400), reporter($0.element)) }
        let later = epoch.addingTimeInterval(90 * 86_400)
        var incremental = SellerBook(ladder: .default, owners: [qq("12345"): 3], levels: [3: .none], events: [3: past])
        let kept = try placed(incremental.add(contacts: [qq("12345")], at: later, reporter: reporter("a")))
        #expect(kept.level == .none && kept.rise == nil)
        var book = SellerBook(ladder: .default, owners: [qq("12345"): 3], levels: [3: .none], events: [3: past], recount: [3])
        let climbed = try placed(book.add(contacts: [qq("12345")], at: later, reporter: reporter("a")))
        #expect(climbed.level == .restrict && climbed.rise == SellerBook.Rise(offender: 3, from: .none, to: .restrict))
        // Once: the next report reads its own windows only, and changes nothing.
        let next = try placed(book.add(contacts: [qq("12345")], at: later.addingTimeInterval(60), reporter: reporter("d")))
        #expect(next.level == .restrict && next.rise == nil)
        // A merge with a seller to recount reads every window too.
        var merging = SellerBook(ladder: .default, owners: [qq("12345"): 3, qq("99999"): 9], levels: [3: .none, 9: .none],
                                 events: [3: past, 9: []], recount: [3])
        let merged = try placed(merging.add(contacts: [qq("12345"), qq("99999")], at: later, reporter: reporter("a")))
        #expect(merged.offender == 3 && merged.level == .restrict, "\(merged)")
    }

    @Test("a merge never lowers the survivor below its own level")
    func mergeNeverLowers() throws {
        var book = SellerBook(
            ladder: .default, owners: [qq("99999"): 9, qq("55555"): 5], levels: [5: .refer, 9: .review], events: [:])
        let placement = try placed(book.add(contacts: [qq("99999"), qq("55555")], at: epoch, reporter: reporter("a")))
        #expect(placement.offender == 5)
        #expect(placement.level == .refer)
        #expect(placement.rise == nil)
    }

    @Test("a second distinct reporter raises the seller from none to review; a repeated reporter does not")
    func escalationRises() throws {
        var book = emptyBook()
        let contact = [wechat("seller_x")]
        let first = try placed(book.add(contacts: contact, at: day(0), reporter: reporter("a")))
        #expect(first.rise == nil)
        #expect(first.level == Level.none)
        let repeated = try placed(book.add(contacts: contact, at: day(1), reporter: reporter("a")))
        #expect(repeated.rise == nil)
        #expect(repeated.level == Level.none)
        let second = try placed(book.add(contacts: contact, at: day(2), reporter: reporter("b")))
        #expect(second.rise == SellerBook.Rise(offender: first.offender, from: Level.none, to: .review))
        #expect(second.level == .review)
        let again = try placed(book.add(contacts: contact, at: day(3), reporter: reporter("b")))
        #expect(again.rise == nil)
        let third = try placed(book.add(contacts: contact, at: day(4), reporter: reporter("c")))
        #expect(third.rise == SellerBook.Rise(offender: first.offender, from: .review, to: .restrict))
    }

    @Test("each level is risen to once as reporters accumulate")
    func everyRiseOnce() throws {
        var book = emptyBook()
        var rises: [SellerBook.Rise] = []
        for i in 0..<12 {
            let placement = try placed(book.add(contacts: [qq("77777")], at: day(Double(i)), reporter: reporter("r\(i)")))
            if let rise = placement.rise { rises.append(rise) }
        }
        #expect(rises.map(\.from) == [Level.none, .review, .restrict, .suspend])
        #expect(rises.map(\.to) == [Level.review, .restrict, .suspend, .refer])
    }

    @Test("reporters more than a window apart do not raise the seller")
    func reportersOutsideWindow() throws {
        var book = emptyBook()
        _ = book.add(contacts: [qq("88888")], at: day(0), reporter: reporter("a"))
        let late = try placed(book.add(contacts: [qq("88888")], at: day(31), reporter: reporter("b")))
        #expect(late.level == Level.none)
        #expect(late.rise == nil)
    }

    @Test("a late-arriving report dated earlier still counts in the window it belongs to")
    func earlierDatedReport() throws {
        var book = emptyBook()
        _ = book.add(contacts: [qq("66666")], at: day(40), reporter: reporter("a"))
        _ = book.add(contacts: [qq("66666")], at: day(0), reporter: reporter("b"))
        let placement = try placed(book.add(contacts: [qq("66666")], at: day(20), reporter: reporter("c")))
        // b and c share [day -10, day 20]; a and c share [day 10, day 40]: two at most.
        #expect(placement.level == .review)
    }
}
