import ContactExtraction
import Foundation
import Testing
@testable import TiplineCore

/// `count` distinct reporters, one report each, `spacing` seconds apart starting at `epoch`.
private func distinctReports(_ count: Int, spacing: TimeInterval = 60) -> [(at: Date, reporter: ReporterHash)] {
    (0..<count).map { (at: epoch.addingTimeInterval(Double($0) * spacing), reporter: reporter("r\($0)")) }
}

@Suite("Ladder")
struct LadderTests {
    @Test("default thresholds map distinct reporter counts to levels")
    func defaultThresholds() {
        let ladder = Ladder.default
        let expected: [Int: Level] = [
            0: .none, 1: .none, 2: .review, 3: .restrict, 4: .restrict,
            5: .suspend, 6: .suspend, 9: .suspend, 10: .refer, 11: .refer, 500: .refer,
        ]
        for (count, level) in expected {
            #expect(ladder.level(forDistinctReporters: count) == level, "\(count) reporters")
        }
    }

    @Test("the default ladder is a 30-day window with thresholds 2, 3, 5, 10")
    func defaultValues() {
        #expect(Ladder.default == Ladder(windowDays: 30, review: 2, restrict: 3, suspend: 5, refer: 10))
        #expect(Ladder.default.windowSeconds == 30 * 86_400)
        #expect(Ladder.default.problem == nil)
    }

    @Test("reports from n distinct reporters on one day reach the level for n")
    func reportsToLevels() {
        let ladder = Ladder.default
        for (count, level) in [(1, Level.none), (2, .review), (3, .restrict), (4, .restrict),
                               (5, .suspend), (9, .suspend), (10, .refer), (25, .refer)] {
            #expect(ladder.level(for: distinctReports(count)) == level, "\(count) reporters")
        }
    }

    @Test("no reports reach no reporters and level none")
    func noReports() {
        let empty: [(at: Date, reporter: ReporterHash)] = []
        #expect(Ladder.default.peakDistinctReporters(empty) == 0)
        #expect(Ladder.default.level(for: empty) == Level.none)
    }

    @Test("one reporter filing fifty times leaves the seller at none")
    func oneReporterFiftyTimes() {
        let reports = (0..<50).map { (at: epoch.addingTimeInterval(Double($0) * 600), reporter: reporter("same")) }
        #expect(Ladder.default.peakDistinctReporters(reports) == 1)
        #expect(Ladder.default.level(for: reports) == Level.none)
    }

    @Test("two reporters filing many times each count as two")
    func twoReportersManyTimes() {
        let reports = (0..<40).map { (at: epoch.addingTimeInterval(Double($0) * 60), reporter: reporter("r\($0 % 2)")) }
        #expect(Ladder.default.peakDistinctReporters(reports) == 2)
        #expect(Ladder.default.level(for: reports) == .review)
    }

    @Test("ten reporters whose first and last reports are exactly 30 days apart share a window and reach refer")
    func thirtyDaysInclusive() {
        // 10 reports spread evenly so the first and last are exactly 30 × 86 400 s apart.
        let span: TimeInterval = 30 * 86_400
        let reports = (0..<10).map { (at: epoch.addingTimeInterval(span * Double($0) / 9), reporter: reporter("r\($0)")) }
        #expect(reports.last!.at.timeIntervalSince(reports.first!.at) == span)
        #expect(Ladder.default.peakDistinctReporters(reports) == 10)
        #expect(Ladder.default.level(for: reports) == .refer)
    }

    @Test("ten reporters spread over 31 days never have ten in one window and stop at suspend")
    func thirtyOneDays() {
        let span: TimeInterval = 31 * 86_400
        let reports = (0..<10).map { (at: epoch.addingTimeInterval(span * Double($0) / 9), reporter: reporter("r\($0)")) }
        #expect(Ladder.default.peakDistinctReporters(reports) == 9)
        #expect(Ladder.default.level(for: reports) == .suspend)
    }

    @Test("a report one second outside the window no longer counts")
    func oneSecondOutside() {
        let reports = [
            (at: epoch, reporter: reporter("a")),
            (at: epoch.addingTimeInterval(30 * 86_400 + 1), reporter: reporter("b")),
        ]
        #expect(Ladder.default.peakDistinctReporters(reports) == 1)
        let inside = [
            (at: epoch, reporter: reporter("a")),
            (at: epoch.addingTimeInterval(30 * 86_400), reporter: reporter("b")),
        ]
        #expect(Ladder.default.peakDistinctReporters(inside) == 2)
    }

    @Test("reports out of time order give the same peak as in order")
    func outOfOrder() {
        var generator = SplitMix64(seed: 7)
        let reports = (0..<40).map { i in
            (at: epoch.addingTimeInterval(Double(i) * 3 * 86_400 / 2), reporter: reporter("r\(i % 13)"))
        }
        let inOrder = Ladder.default.peakDistinctReporters(reports)
        for _ in 0..<20 {
            #expect(Ladder.default.peakDistinctReporters(reports.shuffled(using: &generator)) == inOrder)
        }
        #expect(Ladder.default.peakDistinctReporters(Array(reports.reversed())) == inOrder)
    }

    @Test("the peak is taken over any window ending at a report, not only the latest one")
    func peakOverAnyWindow() {
        // A burst of 6 reporters early on, then one lone report 100 days later.
        var reports = (0..<6).map { (at: epoch.addingTimeInterval(Double($0) * 3600), reporter: reporter("r\($0)")) }
        reports.append((at: day(100), reporter: reporter("late")))
        #expect(Ladder.default.peakDistinctReporters(reports) == 6)
        #expect(Ladder.default.level(for: reports) == .suspend)
    }

    @Test("the peak matches a brute-force count over every window for random reports")
    func matchesBruteForce() {
        var generator = SplitMix64(seed: 2026)
        for _ in 0..<300 {
            let windowDays = Int.random(in: 1...40, using: &generator)
            let ladder = Ladder(windowDays: windowDays, review: 2, restrict: 3, suspend: 5, refer: 10)
            let count = Int.random(in: 0...30, using: &generator)
            let reports = (0..<count).map { _ in
                (at: day(Double.random(in: 0..<120, using: &generator).rounded()),
                 reporter: reporter("r\(Int.random(in: 0..<12, using: &generator))"))
            }
            #expect(ladder.peakDistinctReporters(reports) == bruteForcePeak(reports, windowDays: windowDays))
        }
    }

    @Test("the window scan counts the same whatever the reporters' ids, also ids far above the stamps' count")
    func scanIgnoresReporterNumbering() {
        var generator = SplitMix64(seed: 7)
        let scan = WindowScan(window: 30 * 86_400)
        for _ in 0..<200 {
            let count = Int.random(in: 1...20, using: &generator)
            let small = (0..<count).map { _ in
                WindowScan.Stamp(at: Double.random(in: 0..<(90 * 86_400), using: &generator).rounded(),
                                 reporter: Int32.random(in: 0..<6, using: &generator), origin: WindowScan.new)
            }.sorted { $0.at < $1.at }
            // The same reporters numbered as a book that has interned thousands of others would.
            let large = small.map { stamp in
                WindowScan.Stamp(at: stamp.at, reporter: 5_000 + stamp.reporter * 997, origin: stamp.origin)
            }
            let first = Int.random(in: 0..<count, using: &generator)
            #expect(scan.peak(large, endingFrom: first) == scan.peak(small, endingFrom: first))
            #expect(scan.peak(large, endingFrom: 0) == bruteForcePeak(
                small.map { (at: Date(timeIntervalSinceReferenceDate: $0.at), reporter: reporter("r\($0.reporter)")) }, windowDays: 30))
        }
    }

    @Test("a ladder whose thresholds decrease is flagged")
    func decreasingThresholds() {
        let bad = Ladder(windowDays: 30, review: 2, restrict: 5, suspend: 3, refer: 10)
        #expect(bad.problem?.contains("must not decrease") == true)
        let badTop = Ladder(windowDays: 30, review: 2, restrict: 3, suspend: 5, refer: 4)
        #expect(badTop.problem != nil)
        let equal = Ladder(windowDays: 30, review: 2, restrict: 2, suspend: 2, refer: 2)
        #expect(equal.problem == nil)
    }

    @Test("a ladder with a window under a day or review under one reporter is flagged")
    func degenerateLadders() {
        #expect(Ladder(windowDays: 0, review: 2, restrict: 3, suspend: 5, refer: 10).problem?.contains("window") == true)
        #expect(Ladder(windowDays: 30, review: 0, restrict: 3, suspend: 5, refer: 10).problem?.contains("review") == true)
        #expect(Ladder(windowDays: 3_651, review: 2, restrict: 3, suspend: 5, refer: 10).problem?.contains("1 to 3650 days") == true)
        #expect(Ladder(windowDays: 3_650, review: 2, restrict: 3, suspend: 5, refer: 1_000_000).problem == nil)
        #expect(Ladder(windowDays: 30, review: 2, restrict: 3, suspend: 5, refer: 1_000_001).problem?.contains("at most") == true)
    }

    @Test("a one-day window counts only reporters within 24 hours of a report")
    func oneDayWindow() {
        let ladder = Ladder(windowDays: 1, review: 2, restrict: 3, suspend: 5, refer: 10)
        #expect(ladder.problem == nil)
        #expect(ladder.windowSeconds == 86_400)
        // Three reporters a day apart each: any one window holds at most two (both ends inclusive).
        let daily = (0..<3).map { (at: day(Double($0)), reporter: reporter("r\($0)")) }
        #expect(ladder.peakDistinctReporters(daily) == 2)
        #expect(ladder.level(for: daily) == .review)
        // Three reporters 25 hours apart: never two in one window.
        let spread = (0..<3).map { (at: epoch.addingTimeInterval(Double($0) * 25 * 3600), reporter: reporter("r\($0)")) }
        #expect(ladder.level(for: spread) == Level.none)
        // The same reports on the default 30-day ladder all share a window.
        #expect(Ladder.default.level(for: spread) == .restrict)
    }

    @Test("levels are ordered none < review < restrict < suspend < refer")
    func levelOrder() {
        #expect(Level.allCases == [Level.none, .review, .restrict, .suspend, .refer])
        #expect(Level.allCases.map(\.rank) == [0, 1, 2, 3, 4])
        #expect(Level.allCases.sorted() == Level.allCases)
        #expect(Level.none < .review && .suspend < .refer)
        #expect(!(Level.refer < .refer))
    }
}
