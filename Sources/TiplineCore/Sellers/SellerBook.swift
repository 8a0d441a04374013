public import ContactExtraction
public import Foundation

/// The sellers (offenders) one batch of reports touches, grouped and levelled in memory.
///
/// The store loads what it knows (who owns each contact, each offender's level and past reports),
/// then adds the batch's reports one by one. Reports sharing a contact, directly or through a
/// chain, end with one offender; when a report links several, they merge into the lowest id.
/// New offenders get provisional ids above every stored id until the store allocates real ones.
/// Pure: no database, so the rules are tested on their own.
///
/// Levels are read incrementally. The stored level already accounts for every window of the stored
/// reports, so a report only re-reads the windows that hold it (its reports within one window
/// length either side); a merge re-reads every window that holds reports of both sellers. A seller
/// at the top of the ladder reads nothing. A seller whose stored level may not account for its
/// windows (an administrator set it, `recount`) has every window read at its next report, so that
/// it climbs back to what its reporters justify.
public struct SellerBook: Sendable {
    /// A report's past or present contribution to its seller's level.
    public typealias Event = (at: Date, reporter: ReporterHash)

    /// Where one report landed.
    public struct Placement: Sendable, Equatable {
        /// The offender the report belongs to right after it (provisional ids are `>= firstProvisionalID`).
        public var offender: Int64
        /// The offender's level after this report.
        public var level: Level
        /// The rise this report caused, if any.
        public var rise: Rise?
    }

    /// One rise of a level: an escalation row.
    public struct Rise: Sendable, Equatable {
        /// The offender that rose.
        public var offender: Int64
        /// The level before.
        public var from: Level
        /// The level after.
        public var to: Level
    }

    /// Provisional ids start here, far above any real id.
    public static let firstProvisionalID: Int64 = 1 << 60

    /// The ladder levels are read against.
    public let ladder: Ladder
    /// Current owner of each known contact (a surviving offender).
    public private(set) var owners: [Contact: Int64]
    private var parent: [Int64: Int64] = [:]
    private var levels: [Int64: Level]
    /// Each surviving offender's reports, sorted by time.
    private var histories: [Int64: [WindowScan.Stamp]] = [:]
    private var reporterIDs: [ReporterHash: Int32] = [:]
    /// The reporters by interned id.
    private var reporters: [ReporterHash] = []
    private let scan: WindowScan
    private var nextProvisional = SellerBook.firstProvisionalID
    /// Offenders absorbed by another in this batch, in the order it happened: (absorbed, survivor).
    public private(set) var merges: [(absorbed: Int64, into: Int64)] = []
    /// Provisional offenders created in this batch, in creation order.
    public private(set) var created: [Int64] = []
    /// False for a book that only groups (`grouping(ladder:owners:levels:)`).
    private var levelling = true
    /// Stored offenders whose every window is read at their next report.
    private var recount: Set<Int64>

    /// Starts from what the store knows: contact owners, offender levels, and each offender's past
    /// reports; `recount` names offenders whose stored level may not reflect their windows (their
    /// every report must be in `events`).
    public init(ladder: Ladder, owners: [Contact: Int64], levels: [Int64: Level], events: [Int64: [Event]], recount: Set<Int64> = []) {
        self.ladder = ladder
        self.owners = owners
        self.levels = levels
        self.recount = recount
        self.scan = WindowScan(window: ladder.windowSeconds)
        for (id, reports) in events {
            var stamps = reports.map { WindowScan.Stamp(at: $0.at.timeIntervalSinceReferenceDate, reporter: intern($0.reporter), origin: id) }
            stamps.sort { $0.at < $1.at }
            histories[id] = stamps
        }
    }

    /// A book that only groups: the same placements' offenders, merges and new offenders as a full
    /// book given the same owners, with levels left as given and no rises. What the store needs to
    /// decide which sellers to lock and whose reports to read, before it has read any; it skips
    /// the windows, which are most of `add`'s work.
    public static func grouping(ladder: Ladder, owners: [Contact: Int64], levels: [Int64: Level]) -> SellerBook {
        var book = SellerBook(ladder: ladder, owners: owners, levels: levels, events: [:])
        book.levelling = false
        return book
    }

    private mutating func intern(_ reporter: ReporterHash) -> Int32 {
        if let id = reporterIDs[reporter] { return id }
        let id = Int32(reporterIDs.count)
        reporterIDs[reporter] = id
        reporters.append(reporter)
        return id
    }

    /// The reports the book holds for the offender that `id` ended in, by time: those it was given
    /// and this batch's. The seller's every report when it was given all of them (and so was every
    /// offender merged into it); not meaningful in a book that only groups.
    public func events(of id: Int64) -> [Event] {
        (histories[survivor(of: id)] ?? []).map { (Date(timeIntervalSinceReferenceDate: $0.at), reporters[Int($0.reporter)]) }
    }

    /// The surviving offender for `id` (itself unless merged in this batch).
    public func survivor(of id: Int64) -> Int64 {
        var current = id
        while let next = parent[current] { current = next }
        return current
    }

    /// The current level of a surviving offender.
    public func level(of id: Int64) -> Level {
        levels[survivor(of: id)] ?? Level.none
    }

    /// The level `id` itself reached, before any merge absorbed it.
    public func ownLevel(of id: Int64) -> Level {
        levels[id] ?? Level.none
    }

    /// Adds one report. Returns `nil` for a report with no contacts (it belongs to no seller).
    public mutating func add(contacts: [Contact], at: Date, reporter: ReporterHash) -> Placement? {
        guard !contacts.isEmpty else { return nil }
        // The offenders the contacts belong to: usually one or none, found without building a set.
        var lowest: Int64?
        var several = false
        for contact in contacts {
            guard let owner = owners[contact] else { continue }
            let current = survivor(of: owner)
            if let found = lowest, found != current { several = true }
            lowest = min(lowest ?? current, current)
        }
        let roots: [Int64] = several ? Set(contacts.compactMap { owners[$0] }.map { survivor(of: $0) }).sorted() : []
        let root: Int64
        let before: Level
        if let lowest {
            root = lowest
            before = levels[lowest] ?? Level.none
            for other in roots where other != lowest {
                parent[other] = lowest
                merges.append((other, lowest))
                histories[lowest] = Self.merged(histories[lowest] ?? [], histories.removeValue(forKey: other) ?? [])
                levels[lowest] = max(levels[lowest] ?? Level.none, levels[other] ?? Level.none)
            }
        } else {
            root = nextProvisional
            nextProvisional += 1
            created.append(root)
            before = Level.none
        }
        for contact in contacts { owners[contact] = root }
        guard levelling else { return Placement(offender: root, level: levels[root] ?? Level.none, rise: nil) }
        let time = at.timeIntervalSinceReferenceDate
        var history = histories.removeValue(forKey: root) ?? []
        let position = WindowScan.endIndex(in: history, notAfter: time)
        history.insert(WindowScan.Stamp(at: time, reporter: intern(reporter), origin: WindowScan.new), at: position)
        var after = levels[root] ?? Level.none
        let involved = several ? roots : [root]
        let recounting = !recount.isEmpty && involved.contains(where: recount.contains)
        if after < Level.top {
            // After a merge every window holding reports of two sellers is new; otherwise only the
            // windows holding this report (ending at it or at most one window length later). A
            // seller to recount has every window read, once.
            let peak = recounting
                ? scan.peak(history, endingFrom: 0)
                : several
                ? scan.peak(history, endingFrom: 0, onlyChanged: true)
                : scan.peak(history, endingFrom: position, through: time + ladder.windowSeconds)
            after = max(after, ladder.level(forDistinctReporters: peak))
        }
        if recounting { recount.subtract(involved) }
        histories[root] = history
        // A merge can lift the survivor to the level of the seller it absorbed; that is a rise too.
        levels[root] = after
        guard after > before else { return Placement(offender: root, level: after, rise: nil) }
        return Placement(offender: root, level: after, rise: Rise(offender: root, from: before, to: after))
    }

    /// Two time-sorted histories as one.
    private static func merged(_ a: [WindowScan.Stamp], _ b: [WindowScan.Stamp]) -> [WindowScan.Stamp] {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        var out: [WindowScan.Stamp] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0
        var j = 0
        while i < a.count, j < b.count {
            if b[j].at < a[i].at { out.append(b[j]); j += 1 } else { out.append(a[i]); i += 1 }
        }
        out += a[i...]
        out += b[j...]
        return out
    }
}
