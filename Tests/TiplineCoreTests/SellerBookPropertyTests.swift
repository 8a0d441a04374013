import ContactExtraction
import Foundation
import Testing
@testable import TiplineCore

/// Properties of `SellerBook` over a few hundred small random scenarios (seeded, so reproducible).
@Suite("SellerBook properties")
struct SellerBookPropertyTests {
    @Test("the same reports in original, reversed and shuffled orders give the same sellers and levels")
    func orderIndependence() {
        var generator = SplitMix64(seed: 0x7197_1175)
        for scenario in 0..<300 {
            let reports = randomScenario(using: &generator)
            let stored = randomStoredState(using: &generator)
            let baseline = outcome(of: reports, order: Array(reports.indices), stored: stored)
            var orders = [Array(reports.indices.reversed())]
            for _ in 0..<3 { orders.append(Array(reports.indices).shuffled(using: &generator)) }
            for order in orders {
                let other = outcome(of: reports, order: order, stored: stored)
                #expect(other.groups == baseline.groups, "scenario \(scenario), order \(order)")
                #expect(other.levels == baseline.levels, "scenario \(scenario), order \(order)")
            }
        }
    }

    @Test("a grouping-only book places every report, merges and creates exactly as the full book does")
    func groupingMatchesFullBook() {
        var generator = SplitMix64(seed: 4242)
        for scenario in 0..<300 {
            let reports = randomScenario(using: &generator)
            let stored = randomStoredState(using: &generator)
            var full = SellerBook(ladder: .default, owners: stored.owners, levels: stored.levels, events: stored.events)
            var grouping = SellerBook.grouping(ladder: .default, owners: stored.owners, levels: stored.levels)
            for report in reports {
                let a = full.add(contacts: report.contacts, at: report.at, reporter: report.reporter)
                let b = grouping.add(contacts: report.contacts, at: report.at, reporter: report.reporter)
                #expect(a?.offender == b?.offender, "scenario \(scenario)")
                #expect(b?.rise == nil)
            }
            #expect(full.merges.map(\.absorbed) == grouping.merges.map(\.absorbed), "scenario \(scenario)")
            #expect(full.merges.map(\.into) == grouping.merges.map(\.into), "scenario \(scenario)")
            #expect(full.created == grouping.created, "scenario \(scenario)")
            #expect(full.owners == grouping.owners, "scenario \(scenario)")
        }
    }

    @Test("reports end grouped exactly as the connected components of shared contacts")
    func groupsAreComponents() {
        var generator = SplitMix64(seed: 31)
        for scenario in 0..<300 {
            let reports = randomScenario(using: &generator)
            let stored = randomStoredState(using: &generator)
            let order = Array(reports.indices).shuffled(using: &generator)
            #expect(outcome(of: reports, order: order, stored: stored).groups == components(of: reports, stored: stored),
                    "scenario \(scenario)")
        }
    }

    @Test("a seller's final level is what the ladder gives all its reports together")
    func finalLevelMatchesLadder() {
        var generator = SplitMix64(seed: 99)
        for scenario in 0..<300 {
            let reports = randomScenario(using: &generator)
            let order = Array(reports.indices).shuffled(using: &generator)
            let result = outcome(of: reports, order: order, stored: StoredState())
            for (group, level) in result.levels {
                let events = group.map { (at: reports[$0].at, reporter: reports[$0].reporter) }
                let peak = bruteForcePeak(events, windowDays: 30)
                #expect(level == Ladder.default.level(forDistinctReporters: peak), "scenario \(scenario)")
            }
        }
    }

    @Test("processing reports in two batches, state carried between them, gives the same sellers and levels as one")
    func batchIndependence() {
        var generator = SplitMix64(seed: 4_242)
        for scenario in 0..<300 {
            let reports = randomScenario(using: &generator)
            let stored = randomStoredState(using: &generator)
            let order = Array(reports.indices).shuffled(using: &generator)
            let whole = outcome(of: reports, order: order, stored: stored)
            let split = Int.random(in: 0...order.count, using: &generator)
            let batched = twoBatchOutcome(of: reports, first: Array(order[..<split]), second: Array(order[split...]), stored: stored)
            #expect(batched.groups == whole.groups, "scenario \(scenario), split at \(split)")
            #expect(batched.levels == whole.levels, "scenario \(scenario), split at \(split)")
        }
    }

    @Test("no seller's level ever goes down, and every rise goes up from the level it had")
    func levelsOnlyRise() {
        var generator = SplitMix64(seed: 77)
        for scenario in 0..<300 {
            let reports = randomScenario(using: &generator)
            let stored = randomStoredState(using: &generator)
            var book = SellerBook(ladder: .default, owners: stored.owners, levels: stored.levels, events: stored.events)
            var seen: [Int64: Level] = stored.levels
            for report in reports.shuffled(using: &generator) {
                let contactsBefore = report.contacts.compactMap { book.owners[$0] }
                let levelBefore = contactsBefore.map { book.level(of: $0) }.max() ?? Level.none
                guard let placement = book.add(contacts: report.contacts, at: report.at, reporter: report.reporter) else {
                    continue
                }
                #expect(placement.level >= levelBefore, "scenario \(scenario)")
                if let rise = placement.rise {
                    #expect(rise.offender == placement.offender)
                    #expect(rise.from < rise.to)
                    #expect(rise.to == placement.level)
                }
                seen[placement.offender] = seen[placement.offender] ?? Level.none
                for (id, level) in seen {
                    #expect(book.level(of: id) >= level, "scenario \(scenario): offender \(id) went down")
                    seen[id] = book.level(of: id)
                }
            }
        }
    }
}

extension SellerBookPropertyTests {
    @Test("every placement's level is what the ladder gives all of its seller's reports so far, stored ones included")
    func incrementalLevelsMatchAFullReread() {
        var generator = SplitMix64(seed: 2_026)
        for scenario in 0..<300 {
            // Longer scenarios than the others, dates bunched so that windows overlap often.
            let reports = randomScenario(using: &generator, count: 10...40, days: 45)
            let stored = randomStoredState(using: &generator, pastReports: 0...12)
            expectPlacementsMatchAFullReread(of: reports, stored: stored, recount: [], scenario: "scenario \(scenario)")
        }
    }

    /// Adds `reports` to a book of `stored` (told to recount `recount`) and checks that every
    /// placement's level is the stored level or what the ladder gives all of its seller's reports
    /// so far, stored ones included, whichever is higher.
    private func expectPlacementsMatchAFullReread(of reports: [GeneratedReport], stored: StoredState, recount: Set<Int64>, scenario: String) {
        var book = SellerBook(ladder: .default, owners: stored.owners, levels: stored.levels, events: stored.events, recount: recount)
        // Every report the book has seen, under the offender it was filed with.
        var seen: [(offender: Int64, event: SellerBook.Event)] = stored.events.flatMap { id, events in events.map { (id, $0) } }
        for report in reports {
            guard let placement = book.add(contacts: report.contacts, at: report.at, reporter: report.reporter) else { continue }
            seen.append((placement.offender, (report.at, report.reporter)))
            let mine = seen.filter { book.survivor(of: $0.offender) == placement.offender }.map(\.event)
            let storedLevel = stored.levels.filter { book.survivor(of: $0.key) == placement.offender }.values.max() ?? Level.none
            #expect(placement.level == max(storedLevel, Ladder.default.level(for: mine)), "\(scenario)")
        }
    }

    @Test("a seller whose level an administrator lowered, told to recount, is at what the ladder gives all its reports from its next placement on")
    func recountedLevelsMatchAFullReread() {
        var generator = SplitMix64(seed: 1_207)
        for scenario in 0..<300 {
            let reports = randomScenario(using: &generator, count: 10...40, days: 45)
            var stored = randomStoredState(using: &generator, pastReports: 0...12)
            var lowered: Set<Int64> = []
            for id in stored.levels.keys.sorted() where Bool.random(using: &generator) {
                stored.levels[id] = Level.none
                lowered.insert(id)
            }
            expectPlacementsMatchAFullReread(of: reports, stored: stored, recount: lowered, scenario: "scenario \(scenario), lowered \(lowered)")
        }
    }

    @Test("a seller whose level an administrator lowered, with no recount asked, rises again only by windows holding new reports, in any order")
    func loweredLevelsStayOrderIndependent() {
        var generator = SplitMix64(seed: 515)
        for scenario in 0..<300 {
            let reports = randomScenario(using: &generator)
            var stored = randomStoredState(using: &generator, pastReports: 0...8)
            for id in stored.levels.keys where Bool.random(using: &generator) { stored.levels[id] = Level.none }
            let baseline = outcome(of: reports, order: Array(reports.indices), stored: stored)
            for _ in 0..<4 {
                let order = Array(reports.indices).shuffled(using: &generator)
                let other = outcome(of: reports, order: order, stored: stored)
                #expect(other.levels == baseline.levels, "scenario \(scenario), order \(order)")
                let split = Int.random(in: 0...order.count, using: &generator)
                let batched = twoBatchOutcome(of: reports, first: Array(order[..<split]), second: Array(order[split...]), stored: stored)
                #expect(batched.levels == baseline.levels, "scenario \(scenario), split at \(split)")
            }
        }
    }
}

// MARK: - Random scenarios

/// One generated report.
private struct GeneratedReport {
    var contacts: [Contact]
    var at: Date
    var reporter: ReporterHash
}

/// What the store already knew before the batch.
private struct StoredState {
    var owners: [Contact: Int64] = [:]
    var levels: [Int64: Level] = [:]
    var events: [Int64: [SellerBook.Event]] = [:]
}

/// A pool small enough that reports often collide.
private let contactPool: [Contact] = (0..<8).map { qq("1000\($0)") } + [wechat("seller_a"), wechat("seller_b")]

private func randomDate(using generator: inout SplitMix64, days: Int = 90) -> Date {
    day(Double(Int.random(in: 0..<days * 24, using: &generator)) / 24)
}

private func randomReporter(using generator: inout SplitMix64) -> ReporterHash {
    reporter("r\(Int.random(in: 0..<6, using: &generator))")
}

/// 1 to 14 reports (or `count`), each with 0 to 3 contacts from the pool, one of 6 reporters, within 90 days (or `days`).
private func randomScenario(using generator: inout SplitMix64, count: ClosedRange<Int> = 1...14, days: Int = 90) -> [GeneratedReport] {
    (0..<Int.random(in: count, using: &generator)).map { _ in
        let contactCount = Int.random(in: 0...9, using: &generator) == 0 ? 0 : Int.random(in: 1...3, using: &generator)
        let contacts = (0..<contactCount).map { _ in contactPool.randomElement(using: &generator)! }
        return GeneratedReport(
            contacts: Array(Set(contacts)).sorted(), at: randomDate(using: &generator, days: days),
            reporter: randomReporter(using: &generator))
    }
}

/// Sometimes nothing, sometimes a stored offender or two owning contacts of the pool, with a level
/// and a few past reports (the level at least what those reports earn, as the store keeps it).
private func randomStoredState(using generator: inout SplitMix64, pastReports: ClosedRange<Int> = 0...3) -> StoredState {
    var stored = StoredState()
    for id: Int64 in [3, 7] where Bool.random(using: &generator) {
        for _ in 0..<Int.random(in: 1...2, using: &generator) {
            stored.owners[contactPool.randomElement(using: &generator)!] = id
        }
        let events = (0..<Int.random(in: pastReports, using: &generator)).map { _ in
            (at: randomDate(using: &generator), reporter: randomReporter(using: &generator))
        }
        stored.events[id] = events
        stored.levels[id] = max(Level.allCases.randomElement(using: &generator)!, Ladder.default.level(for: events))
    }
    // A stored offender that lost every contact to the other one is not loaded.
    for id in stored.levels.keys where !stored.owners.values.contains(id) {
        stored.levels[id] = nil
        stored.events[id] = nil
    }
    return stored
}

/// Report indices grouped by seller, and each group's final level.
private typealias Outcome = (groups: Set<Set<Int>>, levels: [Set<Int>: Level])

/// Processes the reports in `order` in one book.
private func outcome(of reports: [GeneratedReport], order: [Int], stored: StoredState) -> Outcome {
    var book = SellerBook(ladder: .default, owners: stored.owners, levels: stored.levels, events: stored.events)
    var placed: [Int: Int64] = [:]
    for index in order {
        let report = reports[index]
        if let placement = book.add(contacts: report.contacts, at: report.at, reporter: report.reporter) {
            placed[index] = placement.offender
        } else {
            #expect(report.contacts.isEmpty)
        }
    }
    return group(placed, survivor: book.survivor(of:), level: book.level(of:))
}

private func group(_ placed: [Int: Int64], survivor: (Int64) -> Int64, level: (Int64) -> Level) -> Outcome {
    var bySurvivor: [Int64: Set<Int>] = [:]
    for (index, offender) in placed { bySurvivor[survivor(offender), default: []].insert(index) }
    var levels: [Set<Int>: Level] = [:]
    for (id, members) in bySurvivor { levels[members] = level(id) }
    return (Set(bySurvivor.values), levels)
}

/// Processes `first`, then carries the state over as the store would (provisional ids become real
/// ids, contacts point at survivors, levels and reports per survivor) and processes `second`.
private func twoBatchOutcome(of reports: [GeneratedReport], first: [Int], second: [Int], stored: StoredState) -> Outcome {
    var book = SellerBook(ladder: .default, owners: stored.owners, levels: stored.levels, events: stored.events)
    var placedFirst: [Int: Int64] = [:]
    for index in first {
        let report = reports[index]
        if let placement = book.add(contacts: report.contacts, at: report.at, reporter: report.reporter) {
            placedFirst[index] = placement.offender
        }
    }
    // Real ids for surviving provisional offenders, as the store allocates them.
    var realID: [Int64: Int64] = [:]
    for (n, id) in book.created.enumerated() where book.survivor(of: id) == id { realID[id] = 1_000 + Int64(n) }
    func persisted(_ id: Int64) -> Int64 {
        let survivor = book.survivor(of: id)
        return realID[survivor] ?? survivor
    }
    var carried = StoredState()
    for (contact, owner) in book.owners {
        carried.owners[contact] = persisted(owner)
        carried.levels[persisted(owner)] = book.level(of: owner)
    }
    for (id, events) in stored.events { carried.events[persisted(id), default: []] += events }
    for (index, offender) in placedFirst {
        carried.events[persisted(offender), default: []].append((at: reports[index].at, reporter: reports[index].reporter))
    }

    var next = SellerBook(ladder: .default, owners: carried.owners, levels: carried.levels, events: carried.events)
    var placed: [Int: Int64] = placedFirst.mapValues(persisted)
    for index in second {
        let report = reports[index]
        if let placement = next.add(contacts: report.contacts, at: report.at, reporter: report.reporter) {
            placed[index] = placement.offender
        }
    }
    return group(placed, survivor: next.survivor(of:), level: next.level(of:))
}

/// Connected components of reports that share a contact, directly or through a stored owner.
private func components(of reports: [GeneratedReport], stored: StoredState) -> Set<Set<Int>> {
    let indices = reports.indices.filter { !reports[$0].contacts.isEmpty }
    var parent = Dictionary(uniqueKeysWithValues: indices.map { ($0, $0) })
    func find(_ i: Int) -> Int { parent[i] == i ? i : find(parent[i]!) }
    func owners(_ report: GeneratedReport) -> Set<Int64> { Set(report.contacts.compactMap { stored.owners[$0] }) }
    for i in indices {
        for j in indices where j > i {
            let sharesContact = !Set(reports[i].contacts).isDisjoint(with: reports[j].contacts)
            let sharesStoredSeller = !owners(reports[i]).isDisjoint(with: owners(reports[j]))
            if sharesContact || sharesStoredSeller { parent[find(j)] = find(i) }
        }
    }
    var result: [Int: Set<Int>] = [:]
    for i in indices { result[find(i), default: []].insert(i) }
    return Set(result.values)
}
