public import Foundation

/// How a report reached us.
public enum Channel: String, Sendable, CaseIterable, Codable {
    case app, hotline
}

/// A report as submitted, validated, before it is stored. `reporter` is still the raw identity
/// here; the store hashes it before anything is written.
public struct ReportInput: Sendable, Equatable {
    /// The client's own id for the report; with the source, the idempotency key.
    public var externalID: String
    /// App or hotline.
    public var channel: Channel
    /// The reporter's identity (app user id or caller's number). Personal data: never stored or printed.
    public var reporter: String
    /// The ad text as reported.
    public var text: String
    /// When the ad was reported; `nil` means "now" at submission.
    public var reportedAt: Date?
    /// Where the ad was seen (free text, optional).
    public var platform: String?

    /// Creates a report input (unvalidated; use `ReportValidator`).
    public init(externalID: String, channel: Channel, reporter: String, text: String, reportedAt: Date?, platform: String?) {
        self.externalID = externalID
        self.channel = channel
        self.reporter = reporter
        self.text = text
        self.reportedAt = reportedAt
        self.platform = platform
    }
}

/// Why one input record was refused: which field, and what is wrong with it.
public struct InputError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The offending field, or `nil` when the record as a whole is bad (e.g. not JSON).
    public var field: String?
    /// What is wrong, in words an operator can act on.
    public var message: String

    /// Creates an input error.
    public init(field: String?, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String {
        field.map { "\($0): \(message)" } ?? message
    }
}

/// Size limits on report fields.
public struct ReportLimits: Sendable {
    /// Longest external id, in UTF-8 bytes.
    public var externalID = 200
    /// Longest reporter identity, in UTF-8 bytes.
    public var reporter = 256
    /// Longest ad text, in UTF-8 bytes (64 KiB).
    public var text = 65_536
    /// Longest platform name, in UTF-8 bytes.
    public var platform = 64
    /// How far in the future `reported_at` may be (clock skew), in seconds.
    public var futureSkew: TimeInterval = 86_400
    /// The earliest `reported_at` accepted.
    public var earliest = Date(timeIntervalSince1970: 946_684_800)  // 2000-01-01

    /// The defaults.
    public init() {}
}
