public import Foundation

/// The escalation ladder: how many distinct reporters within a window lift a seller to each level.
public struct Ladder: Sendable, Equatable, Codable {
    /// Length of the window, in days, that ends at one of the seller's reports.
    public var windowDays: Int
    /// Distinct reporters for `review`.
    public var review: Int
    /// Distinct reporters for `restrict`.
    public var restrict: Int
    /// Distinct reporters for `suspend`.
    public var suspend: Int
    /// Distinct reporters for `refer`.
    public var refer: Int

    /// The defaults of shared/DESIGN.md: 30 days; review 2, restrict 3, suspend 5, refer 10.
    public static let `default` = Ladder(windowDays: 30, review: 2, restrict: 3, suspend: 5, refer: 10)

    /// Creates a ladder; thresholds must not decrease.
    public init(windowDays: Int, review: Int, restrict: Int, suspend: Int, refer: Int) {
        self.windowDays = windowDays
        self.review = review
        self.restrict = restrict
        self.suspend = suspend
        self.refer = refer
    }

    /// The longest window a ladder may have (ten years).
    public static let maxWindowDays = 3_650
    /// The most distinct reporters a threshold may ask for.
    public static let maxThreshold = 1_000_000

    /// Why a ladder is unusable, or `nil` when it is fine.
    public var problem: String? {
        if !(1...Self.maxWindowDays).contains(windowDays) { return "the window must be 1 to \(Self.maxWindowDays) days, not \(windowDays)" }
        if review < 1 { return "review needs at least 1 reporter" }
        if refer > Self.maxThreshold { return "a threshold may be at most \(Self.maxThreshold) reporters, not \(refer)" }
        if !(review <= restrict && restrict <= suspend && suspend <= refer) {
            return "thresholds must not decrease from review to restrict, suspend and refer: "
                + "review \(review), restrict \(restrict), suspend \(suspend), refer \(refer)"
        }
        return nil
    }

    /// The window length in seconds.
    public var windowSeconds: TimeInterval { TimeInterval(windowDays) * 86_400 }

    /// The level that `reporters` distinct reporters within one window reach.
    public func level(forDistinctReporters reporters: Int) -> Level {
        if reporters >= refer { return .refer }
        if reporters >= suspend { return .suspend }
        if reporters >= restrict { return .restrict }
        if reporters >= review { return .review }
        return .none
    }

    /// The most distinct reporters in any window `[t - window, t]` that ends at one of the reports.
    ///
    /// Both ends are inclusive: two reports exactly `windowDays` apart share a window. One reporter
    /// counts once however often they file. Runs in O(n log n) for the sort, O(n) after.
    public func peakDistinctReporters<Reporter: Hashable>(_ reports: [(at: Date, reporter: Reporter)]) -> Int {
        var ids: [Reporter: Int32] = [:]
        var stamps = reports.map { report in
            let id = ids[report.reporter] ?? Int32(ids.count)
            ids[report.reporter] = id
            return WindowScan.Stamp(at: report.at.timeIntervalSinceReferenceDate, reporter: id, origin: WindowScan.new)
        }
        stamps.sort { $0.at < $1.at }
        return WindowScan(window: windowSeconds).peak(stamps, endingFrom: 0)
    }

    /// The level a set of reports earns on this ladder.
    public func level<Reporter: Hashable>(for reports: [(at: Date, reporter: Reporter)]) -> Level {
        level(forDistinctReporters: peakDistinctReporters(reports))
    }
}

/// The sliding window behind the ladder, over reports sorted by time.
struct WindowScan {
    /// One report: when, by whom (a small id per reporter), and where it came from.
    struct Stamp {
        /// `reported_at`, seconds since the reference date.
        var at: Double
        /// The reporter, interned.
        var reporter: Int32
        /// The stored offender whose history held it, or `new` for a report added in this batch.
        var origin: Int64
    }

    /// `origin` of a report added in this batch.
    static let new: Int64 = 0

    /// Window length in seconds.
    let window: Double

    /// The most distinct reporters in the windows ending at `stamps[first...]`, up to a window
    /// ending at `through` at the latest. With `onlyChanged`, a window counts only when it holds a
    /// new report or reports of at least two stored offenders: every other window was counted
    /// when its reports were processed. `stamps` must be sorted by time.
    func peak(_ stamps: [Stamp], endingFrom first: Int, through: Double = .infinity, onlyChanged: Bool = false) -> Int {
        guard first < stamps.count else { return 0 }
        // Reporters are small ids counting from 0 (interned per book): their counts live in an
        // array, not a dictionary. A book that knows far more reporters than these stamps hold
        // gets them renumbered first, so that the array stays the size of the stamps.
        let largest = Int(stamps.lazy.map(\.reporter).max()!)
        if largest >= 4 * stamps.count + 256 {
            var dense: [Int32: Int32] = [:]
            let renumbered = stamps.map { stamp in
                var stamp = stamp
                let id = dense[stamp.reporter] ?? Int32(dense.count)
                dense[stamp.reporter] = id
                stamp.reporter = id
                return stamp
            }
            return peak(renumbered, endingFrom: first, through: through, onlyChanged: onlyChanged)
        }
        var reporterCounts = [Int32](repeating: 0, count: largest + 1)
        var reporters = 0  // distinct reporters in the window
        var origins: [Int64: Int] = [:]
        var start = Self.firstIndex(in: stamps, notBefore: stamps[first].at - window)
        var next = start
        var peak = 0
        for end in first..<stamps.count {
            let at = stamps[end].at
            if at > through { break }
            while next <= end {
                let reporter = Int(stamps[next].reporter)
                if reporterCounts[reporter] == 0 { reporters += 1 }
                reporterCounts[reporter] += 1
                if onlyChanged { origins[stamps[next].origin, default: 0] += 1 }
                next += 1
            }
            while stamps[start].at < at - window {
                let reporter = Int(stamps[start].reporter)
                reporterCounts[reporter] -= 1
                if reporterCounts[reporter] == 0 { reporters -= 1 }
                if onlyChanged { Self.remove(stamps[start].origin, from: &origins) }
                start += 1
            }
            if onlyChanged, origins[Self.new] == nil, origins.count < 2 { continue }
            peak = max(peak, reporters)
        }
        return peak
    }

    /// The first index whose time is `>= time` (binary search).
    static func firstIndex(in stamps: [Stamp], notBefore time: Double) -> Int {
        partition(stamps) { $0 < time }
    }

    /// The index after the last stamp whose time is `<= time` (binary search).
    static func endIndex(in stamps: [Stamp], notAfter time: Double) -> Int {
        partition(stamps) { $0 <= time }
    }

    /// The first index whose time fails `isBefore`, which holds for a prefix of the sorted stamps.
    private static func partition(_ stamps: [Stamp], _ isBefore: (Double) -> Bool) -> Int {
        var low = 0
        var high = stamps.count
        while low < high {
            let mid = (low + high) / 2
            if isBefore(stamps[mid].at) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private static func remove<Key: Hashable>(_ key: Key, from counts: inout [Key: Int]) {
        if counts[key] == 1 { counts[key] = nil } else { counts[key]! -= 1 }
    }
}
