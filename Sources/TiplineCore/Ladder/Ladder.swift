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

    /// Why a ladder is unusable, or `nil` when it is fine.
    public var problem: String? {
        if windowDays < 1 { return "the window must be at least 1 day" }
        if review < 1 { return "review needs at least 1 reporter" }
        if !(review <= restrict && restrict <= suspend && suspend <= refer) {
            return "thresholds must not decrease: review \(review) <= restrict \(restrict) <= suspend \(suspend) <= refer \(refer)"
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
        let sorted = reports.sorted { $0.at < $1.at }
        var inWindow: [Reporter: Int] = [:]
        var start = 0
        var peak = 0
        for end in sorted.indices {
            inWindow[sorted[end].reporter, default: 0] += 1
            let earliest = sorted[end].at.addingTimeInterval(-windowSeconds)
            while sorted[start].at < earliest {
                let reporter = sorted[start].reporter
                inWindow[reporter]! -= 1
                if inWindow[reporter] == 0 { inWindow[reporter] = nil }
                start += 1
            }
            peak = max(peak, inWindow.count)
        }
        return peak
    }

    /// The level a set of reports earns on this ladder.
    public func level<Reporter: Hashable>(for reports: [(at: Date, reporter: Reporter)]) -> Level {
        level(forDistinctReporters: peakDistinctReporters(reports))
    }
}
