/// A seller's escalation level, lowest first. Levels only rise on their own.
public enum Level: String, Sendable, CaseIterable, Codable, Comparable {
    case none, review, restrict, suspend, refer

    /// Position on the ladder: `none` is 0, `refer` is 4.
    public var rank: Int {
        switch self {
        case .none: 0
        case .review: 1
        case .restrict: 2
        case .suspend: 3
        case .refer: 4
        }
    }

    /// The top of the ladder: a seller here reads no more windows.
    public static let top = Level.refer

    public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rank < rhs.rank }
}
