public import Foundation

/// A Swift value that can be sent to PostgreSQL as a text-format parameter.
public protocol PostgresEncodable: Sendable {
    /// The value in PostgreSQL's text input format, or `nil` for NULL.
    var postgresText: String? { get }
}

/// A value that can be an element of an array parameter (`'{...}'` literal).
public protocol PostgresArrayElement: PostgresEncodable {}

extension String: PostgresArrayElement {
    public var postgresText: String? { self }
}

extension Substring: PostgresArrayElement {
    public var postgresText: String? { String(self) }
}

extension Int: PostgresArrayElement {
    public var postgresText: String? { String(self) }
}

extension Int64: PostgresArrayElement {
    public var postgresText: String? { String(self) }
}

extension Int32: PostgresArrayElement {
    public var postgresText: String? { String(self) }
}

extension Double: PostgresArrayElement {
    public var postgresText: String? { isFinite ? String(self) : (isNaN ? "NaN" : (self > 0 ? "Infinity" : "-Infinity")) }
}

extension Bool: PostgresArrayElement {
    public var postgresText: String? { self ? "t" : "f" }
}

extension Date: PostgresArrayElement {
    /// ISO 8601 in UTC with microseconds, which `timestamptz` reads exactly.
    public var postgresText: String? { PostgresTimestamp.format(self) }
}

extension Data: PostgresArrayElement {
    /// `bytea` hex format.
    public var postgresText: String? { "\\x" + PostgresHex.encode(self) }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? {
        switch self {
        case .none: nil
        case .some(let value): value.postgresText
        }
    }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    /// An array literal; every element is quoted so that no content can break out of it.
    public var postgresText: String? {
        var literal = "{"
        for (index, element) in enumerated() {
            if index > 0 { literal += "," }
            guard let text = element.postgresText else {
                literal += "NULL"
                continue
            }
            literal += "\""
            for scalar in text.unicodeScalars {
                if scalar == "\"" || scalar == "\\" { literal += "\\" }
                literal.unicodeScalars.append(scalar)
            }
            literal += "\""
        }
        return literal + "}"
    }
}

/// Hex helpers for `bytea`.
enum PostgresHex {
    static func encode(_ data: Data) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(data.count * 2)
        for byte in data {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: Substring) -> Data? {
        var text = text
        return text.withUTF8 { digits -> Data? in
            guard digits.count % 2 == 0 else { return nil }
            var failed = false
            let bytes = [UInt8](unsafeUninitializedCapacity: digits.count / 2) { out, initialized in
                var index = 0
                while index < digits.count {
                    guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else {
                        failed = true
                        break
                    }
                    out[index / 2] = high << 4 | low
                    index += 2
                }
                initialized = index / 2
            }
            return failed ? nil : Data(bytes)
        }
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
