public import Foundation

/// Exact conversion between `Date` and PostgreSQL's `timestamptz` text form.
///
/// Sessions are set to UTC on connect, so the server always answers `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
/// Hand-written because `DateFormatter`s are neither cheap nor Sendable, and microseconds matter.
public enum PostgresTimestamp {
    /// Formats a date as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, rounded to the microsecond. Written byte
    /// by byte: a completion sends a few dozen dates, the intake one per report.
    public static func format(_ date: Date) -> String {
        let total = (date.timeIntervalSince1970 * 1_000_000).rounded()
        // Years 0 to 9999 (PostgreSQL reads more, but nothing here writes them): 4-digit years.
        guard total >= -62_167_219_200_000_000, total < 253_402_300_800_000_000 else { return formatWide(date) }
        let micros = Int64(total)
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = Int(micros - seconds * 1_000_000)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = civilFromDays(Int(days))
        var bytes = [UInt8](repeating: 0, count: 27)
        func put(_ value: Int, at start: Int, width: Int) {
            var rest = value
            for index in stride(from: start + width - 1, through: start, by: -1) {
                bytes[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
        }
        put(year, at: 0, width: 4)
        put(month, at: 5, width: 2)
        put(day, at: 8, width: 2)
        put(secondOfDay / 3600, at: 11, width: 2)
        put(secondOfDay / 60 % 60, at: 14, width: 2)
        put(secondOfDay % 60, at: 17, width: 2)
        put(fraction, at: 20, width: 6)
        bytes[4] = UInt8(ascii: "-"); bytes[7] = UInt8(ascii: "-"); bytes[10] = UInt8(ascii: "T")
        bytes[13] = UInt8(ascii: ":"); bytes[16] = UInt8(ascii: ":"); bytes[19] = UInt8(ascii: ".")
        bytes[26] = UInt8(ascii: "Z")
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `format` for years outside 0 to 9999, through the C library.
    static func formatWide(_ date: Date) -> String {
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
        Array(text.utf8).withUnsafeBufferPointer { parse($0) }
    }

    /// `parse` over the text's UTF-8 bytes.
    public static func parse(_ b: UnsafeBufferPointer<UInt8>) -> Date? {
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

    /// The proleptic Gregorian date of a day counted from 1970-01-01 (the inverse of `daysFromCivil`).
    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
