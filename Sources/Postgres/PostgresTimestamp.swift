public import Foundation

/// Exact conversion between `Date` and PostgreSQL's `timestamptz` text form.
///
/// Sessions are set to UTC on connect, so the server always answers `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
/// Hand-written because `DateFormatter`s are neither cheap nor Sendable, and microseconds matter.
public enum PostgresTimestamp {
    /// Formats a date as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    public static func format(_ date: Date) -> String {
        let total = (date.timeIntervalSince1970 * 1_000_000).rounded()
        var seconds = Int(floor(total / 1_000_000))
        let micros = Int(total) - seconds * 1_000_000
        var parts = tm()
        var t = time_t(seconds)
        gmtime_r(&t, &parts)
        seconds = Int(parts.tm_sec)
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(seconds, 2)).\(pad(micros, 6))Z"
    }

    /// Parses `timestamptz` output (any offset, optional fraction); `nil` if malformed.
    public static func parse(_ text: some StringProtocol) -> Date? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var value = 0
            for c in b[from..<from + count] {
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard b.count >= 19, let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < b.count, b[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < b.count, b[index] >= 48, b[index] <= 57 {
                fraction += Double(b[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offset = 0
        if index < b.count, b[index] == UInt8(ascii: "+") || b[index] == UInt8(ascii: "-") {
            let sign = b[index] == UInt8(ascii: "-") ? -1 : 1
            guard let h = number(index + 1, 2) else { return nil }
            var m = 0
            var s = 0
            if index + 5 < b.count + 0, b.count >= index + 6, b[index + 3] == UInt8(ascii: ":") {
                m = number(index + 4, 2) ?? 0
                if b.count >= index + 9, b[index + 6] == UInt8(ascii: ":") { s = number(index + 7, 2) ?? 0 }
            }
            offset = sign * (h * 3600 + m * 60 + s)
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        let epoch = Double(days * 86_400 + hour * 3600 + minute * 60 + second - offset) + fraction
        return Date(timeIntervalSince1970: epoch)
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
