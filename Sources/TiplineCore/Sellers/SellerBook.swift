public import ContactExtraction
public import Foundation

/// The sellers (offenders) one batch of reports touches, grouped and levelled in memory.
///
/// The store loads what it knows (who owns each contact, each offender's level and past reports),
/// then adds the batch's reports one by one. Reports sharing a contact, directly or through a
/// chain, end with one offender; when a report links several, they merge into the lowest id.
/// New offenders get provisional ids above every stored id until the store allocates real ones.
/// Pure: no database, so the rules are tested on their own.
public struct SellerBook: Sendable {
    /// A report's past or present contribution to its seller's level.
    public typealias Event = (at: Date, reporter: Data)

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
    private var events: [Int64: [Event]]
    private var nextProvisional = SellerBook.firstProvisionalID
    /// Offenders absorbed by another in this batch, in the order it happened: (absorbed, survivor).
    public private(set) var merges: [(absorbed: Int64, into: Int64)] = []
    /// Provisional offenders created in this batch, in creation order.
    public private(set) var created: [Int64] = []

    /// Starts from what the store knows: contact owners, offender levels, and each offender's past reports.
    public init(ladder: Ladder, owners: [Contact: Int64], levels: [Int64: Level], events: [Int64: [Event]]) {
        self.ladder = ladder
        self.owners = owners
        self.levels = levels
        self.events = events
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
    public mutating func add(contacts: [Contact], at: Date, reporter: Data) -> Placement? {
        guard !contacts.isEmpty else { return nil }
        let roots = Set(contacts.compactMap { owners[$0] }.map { survivor(of: $0) })
        let root: Int64
        let before: Level
        if let lowest = roots.min() {
            root = lowest
            before = levels[lowest] ?? Level.none
            for other in roots.sorted() where other != lowest {
                parent[other] = lowest
                merges.append((other, lowest))
                events[lowest, default: []] += events.removeValue(forKey: other) ?? []
                levels[lowest] = max(levels[lowest] ?? Level.none, levels[other] ?? Level.none)
            }
        } else {
            root = nextProvisional
            nextProvisional += 1
            created.append(root)
            before = Level.none
        }
        for contact in contacts { owners[contact] = root }
        events[root, default: []].append((at, reporter))
        // A merge can lift the survivor to the level of the seller it absorbed; that is a rise too.
        let after = max(levels[root] ?? Level.none, ladder.level(for: events[root]!))
        levels[root] = after
        guard after > before else { return Placement(offender: root, level: after, rise: nil) }
        return Placement(offender: root, level: after, rise: Rise(offender: root, from: before, to: after))
    }
}
