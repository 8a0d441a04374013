public import Foundation

/// What `offenders.history` holds for a seller: its every report (time and reporter), so that
/// levelling a batch gets them with the seller's lock instead of fetching its past reports from
/// `reports` one by one.
///
/// The column's bytes: one byte saying which case, then for `kept` one entry of 40 bytes per
/// report: `reported_at` as the bits of its `timeIntervalSinceReferenceDate` (8 bytes,
/// little-endian; the very value a worker parsed from PostgreSQL's text, so a time read from here
/// and the same time read from `reports` compare equal), then the reporter's hash (32 bytes).
/// NULL is `unknown`.
public enum SellerRecord: Sendable {
    /// Not kept yet: a seller stored before migration 0011, or one whose history was dropped (it
    /// reached the top of the ladder, or an administrator set its level). Its reports are read
    /// whole once; the batch that reads them writes them here.
    case unknown
    /// More reports than `capacity`: they are read from `reports`, as far as the windows need.
    case overflow
    /// Set by an administrator's level (`offender set-level`): like `unknown`, its reports are read
    /// whole; and its level is counted again over every window at its next report, since the one
    /// stored may no longer reflect them. A worker of an earlier release reads it as `unknown`.
    case recount
    /// Every report of the seller and of the offenders merged into it, in no particular order:
    /// the column's bytes, checked (`events` reads them).
    case kept(Data)

    /// Reports kept at most: 40 entries (1,601 bytes) keep an offender row under PostgreSQL's
    /// 2 kB threshold, above which the value would be compressed or moved out of line.
    public static let capacity = 40

    /// Bytes per report.
    public static let entrySize = 8 + ReporterHash.capacity

    /// The first byte of the column: which case it holds.
    public static let overflowTag: UInt8 = 0, keptTag: UInt8 = 1, recountTag: UInt8 = 2

    /// The bytes `overflow` is stored as.
    public static let overflowBytes = Data([overflowTag])
    /// The bytes `recount` is stored as.
    public static let recountBytes = Data([recountTag])

    /// The column's bytes for a seller whose every report is `events`: `overflow`'s when there
    /// are more than `capacity` (or a reporter hash of another length than 32 bytes).
    public static func encode(_ events: some Collection<SellerBook.Event>) -> Data {
        guard events.count <= capacity, let entries = entries(events) else { return overflowBytes }
        return Data([keptTag]) + entries
    }

    /// The entries for `events`, to append to a kept column's bytes; nil when a reporter hash is
    /// not 32 bytes long.
    public static func entries(_ events: some Collection<SellerBook.Event>) -> Data? {
        guard events.allSatisfy({ $0.reporter.byteCount == ReporterHash.capacity }) else { return nil }
        var bytes = [UInt8](repeating: 0, count: events.count * entrySize)
        bytes.withUnsafeMutableBytes { out in
            var offset = 0
            for event in events {
                out.storeBytes(of: event.at.timeIntervalSinceReferenceDate.bitPattern.littleEndian, toByteOffset: offset, as: UInt64.self)
                event.reporter.withUnsafeBytes { hash in
                    UnsafeMutableRawBufferPointer(rebasing: out[(offset + 8)...]).copyMemory(from: hash)
                }
                offset += entrySize
            }
        }
        return Data(bytes)
    }

    /// What the column's bytes say (nil: NULL). Bytes of no known layout read as `unknown`: the
    /// seller's reports are then read whole and the column is written again.
    public init(bytes: Data?) {
        guard let bytes, let tag = bytes.first else {
            self = .unknown
            return
        }
        let body = bytes.count - 1
        switch tag {
        case Self.overflowTag where body == 0: self = .overflow
        case Self.recountTag where body == 0: self = .recount
        case Self.keptTag where body % Self.entrySize == 0 && body / Self.entrySize <= Self.capacity: self = .kept(bytes)
        default: self = .unknown
        }
    }

    /// What a column holding this record stores: nil (NULL) for `unknown`.
    public var stored: Data? {
        switch self {
        case .unknown: nil
        case .overflow: Self.overflowBytes
        case .recount: Self.recountBytes
        case .kept(let bytes): bytes
        }
    }

    /// Whether the seller's reports must be read whole from `reports` (`unknown`, `recount`).
    public var readsWhole: Bool {
        switch self {
        case .unknown, .recount: true
        case .overflow, .kept: false
        }
    }

    /// How many reports a kept history holds.
    public var count: Int? {
        guard case .kept(let bytes) = self else { return nil }
        return (bytes.count - 1) / Self.entrySize
    }

    /// The kept reports made from `from` through `until` (nil: no bound), in the order kept; none
    /// for a history not kept. Only their reporters are read.
    public func events(from: Date? = nil, until: Date? = nil) -> [SellerBook.Event] {
        guard case .kept(let bytes) = self else { return [] }
        let lower = from?.timeIntervalSinceReferenceDate ?? -.infinity
        let upper = until?.timeIntervalSinceReferenceDate ?? .infinity
        var events: [SellerBook.Event] = []
        bytes.withUnsafeBytes { raw in
            var offset = 1
            while offset + Self.entrySize <= raw.count {
                let at = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
                if at >= lower, at <= upper {
                    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
                    Swift.withUnsafeMutableBytes(of: &words) {
                        $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(offset + 8)..<(offset + Self.entrySize)]))
                    }
                    events.append((Date(timeIntervalSinceReferenceDate: at), ReporterHash(raw: words, count: ReporterHash.capacity)!))
                }
                offset += Self.entrySize
            }
        }
        return events
    }
}
