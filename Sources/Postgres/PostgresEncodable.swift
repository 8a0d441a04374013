public import Foundation

/// A Swift value that can be sent to PostgreSQL as a parameter.
public protocol PostgresEncodable: Sendable {
    /// The value in PostgreSQL's text input format, or `nil` for NULL.
    var postgresText: String? { get }
    /// The value as it is bound: its text form unless the type has a binary one.
    var postgresParameter: Query.Parameter { get }
}

extension PostgresEncodable {
    public var postgresParameter: Query.Parameter { .text(postgresText) }
}

/// A value that can be an element of an array parameter (`'{...}'` literal).
public protocol PostgresArrayElement: PostgresEncodable {
    /// Appends the element as it is written inside an array literal: quoted, or `NULL`.
    func appendArrayElement(to literal: inout [UInt8])
    /// The element type an array of these is sent as in binary (`int8`, `int4`, `bool`, `text`,
    /// `bytea`), or nil: such arrays go as text literals. The statement must cast the parameter to
    /// exactly that array type (`::bigint[]`, `::int[]`, ...): the server refuses another element type.
    static var binaryElementType: PostgresBinaryType? { get }
    /// Appends the element in the binary array format: its length (big-endian `int32`, -1 for
    /// NULL), then its bytes. Called only when `binaryElementType` is not nil.
    func appendBinaryElement(to bytes: inout [UInt8])
}

/// The types whose arrays are bound in binary, with their `pg_type` OIDs.
public enum PostgresBinaryType: UInt32, Sendable {
    case bool = 16, bytea = 17, int8 = 20, int4 = 23, text = 25
}

extension PostgresArrayElement {
    public static var binaryElementType: PostgresBinaryType? { nil }
    public func appendBinaryElement(to bytes: inout [UInt8]) {
        preconditionFailure("\(Self.self) has no binary array format")
    }
}

extension [UInt8] {
    /// Appends `value` big-endian (network order, as PostgreSQL's binary formats are).
    fileprivate mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    /// Appends one element of a binary array: its length, then its bytes.
    fileprivate mutating func appendElement(_ body: some Collection<UInt8>) {
        appendBigEndian(Int32(body.count))
        append(contentsOf: body)
    }
}

extension PostgresArrayElement {
    /// Quotes the text form, escaping `"` and `\\` (ASCII, so a byte-wise scan of UTF-8 is exact), so
    /// that no content can break out of the element.
    public func appendArrayElement(to literal: inout [UInt8]) {
        guard var text = postgresText else {
            literal.append(contentsOf: "NULL".utf8)
            return
        }
        literal.append(UInt8(ascii: "\""))
        text.withUTF8 { bytes in
            // Most elements need no escape: copied whole.
            guard bytes.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                literal.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { literal.append(UInt8(ascii: "\\")) }
                literal.append(byte)
            }
        }
        literal.append(UInt8(ascii: "\""))
    }
}

extension FixedWidthInteger {
    /// Digits and a sign need no quotes in an array literal. Written straight into the literal:
    /// a completion sends several hundred integers.
    fileprivate func appendDigits(to literal: inout [UInt8]) {
        if self < 0 { literal.append(UInt8(ascii: "-")) }
        let start = literal.count
        var rest = self.magnitude
        repeat {
            literal.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10))
            rest /= 10
        } while rest != 0
        literal[start..<literal.count].reverse()
    }
}

extension String: PostgresArrayElement {
    public var postgresText: String? { self }
    public static var binaryElementType: PostgresBinaryType? { .text }
    public func appendBinaryElement(to bytes: inout [UInt8]) { bytes.appendElement(utf8) }
}

extension Substring: PostgresArrayElement {
    public var postgresText: String? { String(self) }
}

extension Int: PostgresArrayElement {
    public var postgresText: String? { String(self) }
    public func appendArrayElement(to literal: inout [UInt8]) { appendDigits(to: &literal) }
}

extension Int64: PostgresArrayElement {
    public var postgresText: String? { String(self) }
    public func appendArrayElement(to literal: inout [UInt8]) { appendDigits(to: &literal) }
    public static var binaryElementType: PostgresBinaryType? { .int8 }
    public func appendBinaryElement(to bytes: inout [UInt8]) {
        bytes.appendBigEndian(Int32(8))
        bytes.appendBigEndian(self)
    }
}

extension Int32: PostgresArrayElement {
    public var postgresText: String? { String(self) }
    public func appendArrayElement(to literal: inout [UInt8]) { appendDigits(to: &literal) }
    public static var binaryElementType: PostgresBinaryType? { .int4 }
    public func appendBinaryElement(to bytes: inout [UInt8]) {
        bytes.appendBigEndian(Int32(4))
        bytes.appendBigEndian(self)
    }
}

extension Double: PostgresArrayElement {
    public var postgresText: String? { isFinite ? String(self) : (isNaN ? "NaN" : (self > 0 ? "Infinity" : "-Infinity")) }
}

extension Bool: PostgresArrayElement {
    public var postgresText: String? { self ? "t" : "f" }
    public func appendArrayElement(to literal: inout [UInt8]) { literal.append(self ? UInt8(ascii: "t") : UInt8(ascii: "f")) }
    public static var binaryElementType: PostgresBinaryType? { .bool }
    public func appendBinaryElement(to bytes: inout [UInt8]) {
        bytes.appendBigEndian(Int32(1))
        bytes.append(self ? 1 : 0)
    }
}

extension Date: PostgresArrayElement {
    /// ISO 8601 in UTC with microseconds, which `timestamptz` reads exactly.
    public var postgresText: String? { PostgresTimestamp.format(self) }
}

extension Data: PostgresArrayElement {
    /// `bytea` hex format.
    public var postgresText: String? { "\\x" + PostgresHex.encode(self) }
    public static var binaryElementType: PostgresBinaryType? { .bytea }
    public func appendBinaryElement(to bytes: inout [UInt8]) { bytes.appendElement(self) }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? {
        switch self {
        case .none: nil
        case .some(let value): value.postgresText
        }
    }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {
    public func appendArrayElement(to literal: inout [UInt8]) {
        switch self {
        case .none: literal.append(contentsOf: "NULL".utf8)
        case .some(let value): value.appendArrayElement(to: &literal)
        }
    }

    public static var binaryElementType: PostgresBinaryType? { Wrapped.binaryElementType }

    public func appendBinaryElement(to bytes: inout [UInt8]) {
        switch self {
        case .none: bytes.appendBigEndian(Int32(-1))
        case .some(let value): value.appendBinaryElement(to: &bytes)
        }
    }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    /// An array literal; every element is quoted (or a bare number, `t`/`f`, `NULL`), so that no
    /// content can break out of it. Built as UTF-8 bytes: arrays are most of what a completion sends.
    public var postgresText: String? {
        var literal: [UInt8] = []
        literal.reserveCapacity(2 + count * 8)
        literal.append(UInt8(ascii: "{"))
        for index in indices {
            if index != startIndex { literal.append(UInt8(ascii: ",")) }
            self[index].appendArrayElement(to: &literal)
        }
        literal.append(UInt8(ascii: "}"))
        return String(decoding: literal, as: UTF8.self)
    }

    /// In binary (array_recv's format) when the element type has one: no literal to build on this
    /// side, none to parse on the server's. One dimension, lower bound 1; empty: no dimensions.
    public var postgresParameter: Query.Parameter {
        guard let type = Element.binaryElementType else { return .text(postgresText) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20 + count * 12)
        bytes.appendBigEndian(Int32(isEmpty ? 0 : 1))  // dimensions
        bytes.appendBigEndian(Int32(0))  // the has-NULLs flag: the server finds NULLs by their length
        bytes.appendBigEndian(type.rawValue)
        if !isEmpty {
            bytes.appendBigEndian(Int32(count))
            bytes.appendBigEndian(Int32(1))  // lower bound
            for element in self { element.appendBinaryElement(to: &bytes) }
        }
        return .binary(bytes)
    }
}

/// Hex helpers for `bytea`, and for any bytes shown or stored as hex.
public enum PostgresHex {
    /// Two lower-case hex digits a byte.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ digits: UnsafeBufferPointer<UInt8>) -> Data? {
        guard digits.count % 2 == 0 else { return nil }
        var data = Data(count: digits.count / 2)
        return data.withUnsafeMutableBytes { decode(digits, into: $0) } ? data : nil
    }

    /// The hex digits of `bytea`'s text output (what follows its `\\x`), or nil when `text` is not
    /// in that form.
    public static func byteaDigits(_ text: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x") else { return nil }
        return UnsafeBufferPointer(rebasing: text[2...])
    }

    /// Decodes hex digits (either case, two a byte) into the first `digits.count / 2` bytes of
    /// `out`, for a caller that holds the bytes without allocating. False for an odd count, an
    /// `out` too small, or anything that is not a hex digit.
    public static func decode(_ digits: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableRawBufferPointer) -> Bool {
        guard digits.count % 2 == 0, digits.count / 2 <= out.count else { return false }
        // Both nibbles of every byte are looked up; any invalid digit sets the high bit.
        return nibbles.withUnsafeBufferPointer { table in
            var invalid: UInt8 = 0
            var index = 0
            while index < digits.count {
                let high = table[Int(digits[index])], low = table[Int(digits[index + 1])]
                invalid |= high | low
                out[index / 2] = high << 4 | low
                index += 2
            }
            return invalid & 0x80 == 0
        }
    }

    /// The value of each hex digit by its byte, 0xFF for every other byte.
    private static let nibbles: [UInt8] = (0...255).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt8(byte) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt8(byte) - UInt8(ascii: "A") + 10
        default: 0xFF
        }
    }
}
