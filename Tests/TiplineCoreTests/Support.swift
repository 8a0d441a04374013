import ContactExtraction
import Foundation
@testable import TiplineCore

/// A tiny, seedable generator so property tests fail the same way every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A fixed instant the tests count from: 2026-10-01T00:00:00Z.
let epoch = Date(timeIntervalSince1970: 1_790_812_800)

/// `days` (and `seconds`) after `epoch`.
func day(_ days: Double, plus seconds: TimeInterval = 0) -> Date {
    epoch.addingTimeInterval(days * 86_400 + seconds)
}

/// A reporter identity as the store hands it to the book (a keyed hash; any bytes up to 32 will do here).
func reporter(_ name: String) -> ReporterHash { ReporterHash(name.utf8)! }

/// A QQ contact, the simplest canonical value to write by hand.
func qq(_ digits: String) -> Contact { Contact(kind: .qq, value: digits) }

/// A WeChat contact.
func wechat(_ id: String) -> Contact { Contact(kind: .wechat, value: id) }

/// Writes `bytes` to a fresh temporary file and returns its path.
func temporaryFile(_ bytes: [UInt8], suffix: String) throws -> String {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("tipline-core-\(UUID().uuidString)\(suffix)").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ text: String, suffix: String) throws -> String {
    try temporaryFile(Array(text.utf8), suffix: suffix)
}

/// Reads every record of a file.
func readAll(path: String, format: InputFormat) throws -> [InputRecord] {
    let reader = try ReportFileReader(path: path, format: format)
    var records: [InputRecord] = []
    while let record = try reader.next() { records.append(record) }
    return records
}

/// Independent oracle for the window rule: the most distinct reporters in any `[t - window, t]`
/// ending at a report, by brute force.
func bruteForcePeak(_ reports: [(at: Date, reporter: ReporterHash)], windowDays: Int) -> Int {
    let window = TimeInterval(windowDays) * 86_400
    var peak = 0
    for end in reports {
        let inWindow = reports.filter { $0.at <= end.at && $0.at >= end.at.addingTimeInterval(-window) }
        peak = max(peak, Set(inWindow.map(\.reporter)).count)
    }
    return peak
}
