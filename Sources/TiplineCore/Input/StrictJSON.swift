/// Checks that bytes are one JSON text as RFC 8259 defines it, before Foundation's parser reads
/// them: that parser also takes a comma before `}` or `]`, and keeps the last of two members with
/// the same name, so `{"text": "a", "text": "b"}` would be read as if the first were not there.
/// A report must mean one thing to every reader, so both are refused here, with where and why.
public enum StrictJSON {
    /// Objects and arrays nested deeper than this are refused (a report is one flat object).
    public static let maxDepth = 64

    /// Nil when `bytes` (UTF-8) are one well-formed JSON value with no object naming a member twice;
    /// otherwise what is wrong and at which byte offset (from 0). A member named twice is named only
    /// when it is one of `naming`: any other name is the sender's data, which may be personal (an
    /// exporter's member keyed by a caller's number), and errors are printed and logged.
    public static func problem(in bytes: [UInt8], naming: Set<String> = []) -> String? {
        var checker = Checker(bytes: bytes, naming: naming)
        do throws(Problem) {
            checker.skipSpace()
            try checker.value(depth: 0)
            checker.skipSpace()
            if checker.at < bytes.count { throw Problem("unexpected text after the JSON value", at: checker.at) }
            return nil
        } catch {
            return "\(error.message) (byte \(error.offset))"
        }
    }

    struct Problem: Error {
        var message: String
        var offset: Int
        init(_ message: String, at offset: Int) {
            self.message = message
            self.offset = offset
        }
    }

    private struct Checker {
        let bytes: [UInt8]
        let naming: Set<String>
        var at = 0

        init(bytes: [UInt8], naming: Set<String>) {
            self.bytes = bytes
            self.naming = naming
        }

        var current: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { at += 1 }
        }

        mutating func value(depth: Int) throws(Problem) {
            guard let byte = current else { throw Problem("the JSON ends where a value should be", at: at) }
            switch byte {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""): _ = try string(decoding: false)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            case UInt8(ascii: "t"): try word("true")
            case UInt8(ascii: "f"): try word("false")
            case UInt8(ascii: "n"): try word("null")
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                throw Problem("a value is missing before '\(Character(Unicode.Scalar(byte)))' (a trailing comma?)", at: at)
            default: throw Problem("unexpected character where a value should be", at: at)
            }
        }

        mutating func object(depth: Int) throws(Problem) {
            if try open(depth: depth, closing: UInt8(ascii: "}")) { return }
            // Names written in plain ASCII without escapes (all of a report's) are compared as bytes
            // while there are few; any other name, or many, and they are all compared as strings
            // (escapes read, canonical equivalence).
            var plain: [Range<Int>] = []
            var names: Set<String>?
            while true {
                guard current == UInt8(ascii: "\"") else {
                    throw Problem(current == UInt8(ascii: "}") ? "a comma before '}' (trailing commas are not JSON)"
                                                               : "a member name (a string in double quotes) is expected", at: at)
                }
                let start = at
                var twice: String?
                if names == nil, plain.count < 16, let range = plainName() {
                    if plain.contains(where: { bytes[$0].elementsEqual(bytes[range]) }) {
                        twice = String(decoding: bytes[range], as: UTF8.self)
                    }
                    plain.append(range)
                } else {
                    if names == nil {
                        names = Set(plain.map { String(decoding: bytes[$0], as: UTF8.self) })
                    }
                    let name = try string(decoding: true) ?? ""
                    if !names!.insert(name).inserted { twice = name }
                }
                if let twice {
                    throw Problem(naming.contains(twice) ? "the member \"\(twice)\" appears twice in one object"
                                                         : "a member appears twice in one object (its name is not one of a report's fields: not shown)",
                                  at: start)
                }
                skipSpace()
                guard current == UInt8(ascii: ":") else { throw Problem("':' is expected after a member name", at: at) }
                at += 1
                skipSpace()
                try value(depth: depth)
                if try close(UInt8(ascii: "}"), inside: "an object", after: "a member") { return }
            }
        }

        mutating func array(depth: Int) throws(Problem) {
            if try open(depth: depth, closing: UInt8(ascii: "]")) { return }
            while true {
                if current == UInt8(ascii: "]") { throw Problem("a comma before ']' (trailing commas are not JSON)", at: at) }
                try value(depth: depth)
                if try close(UInt8(ascii: "]"), inside: "an array", after: "an element") { return }
            }
        }

        /// Steps past the `{` or `[` under the cursor, within the depth allowed; true when the
        /// container is empty (its `closing` read too).
        mutating func open(depth: Int, closing: UInt8) throws(Problem) -> Bool {
            guard depth <= StrictJSON.maxDepth else { throw Problem("nested deeper than \(StrictJSON.maxDepth) levels", at: at) }
            at += 1
            skipSpace()
            guard current == closing else { return false }
            at += 1
            return true
        }

        /// After a member or element: steps past a comma (false: another follows) or past `closing`
        /// (true: the container ends).
        mutating func close(_ closing: UInt8, inside container: String, after item: String) throws(Problem) -> Bool {
            skipSpace()
            switch current {
            case UInt8(ascii: ","):
                at += 1
                skipSpace()
                return false
            case closing:
                at += 1
                return true
            case nil: throw Problem("the JSON ends inside \(container)", at: at)
            default: throw Problem("',' or '\(Character(Unicode.Scalar(closing)))' is expected after \(item)", at: at)
            }
        }

        /// Reads a name in plain ASCII without escapes (the cursor on its opening quote) and returns the
        /// range of its characters; nil, the cursor not moved, for any other string.
        mutating func plainName() -> Range<Int>? {
            var end = at + 1
            while end < bytes.count {
                let byte = bytes[end]
                if byte == UInt8(ascii: "\"") {
                    defer { at = end + 1 }
                    return (at + 1)..<end
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { return nil }
                end += 1
            }
            return nil
        }

        /// Reads a string (the cursor on its opening quote); returns its value when `decoding` (member
        /// names, to compare them), else nil.
        mutating func string(decoding: Bool) throws(Problem) -> String? {
            let start = at
            at += 1
            var scalars = String.UnicodeScalarView()
            var plainStart = at
            func flushPlain(_ end: Int) {
                if decoding, end > plainStart {
                    scalars.append(contentsOf: String(decoding: bytes[plainStart..<end], as: UTF8.self).unicodeScalars)
                }
            }
            while true {
                guard let byte = current else { throw Problem("a string is not closed", at: start) }
                switch byte {
                case UInt8(ascii: "\""):
                    flushPlain(at)
                    at += 1
                    return decoding ? String(scalars) : nil
                case UInt8(ascii: "\\"):
                    flushPlain(at)
                    at += 1
                    guard let escaped = current else { throw Problem("a string is not closed", at: start) }
                    at += 1
                    switch escaped {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "u"):
                        // JSON's grammar lets a surrogate stand alone, but it is no character: refused
                        // here with where, rather than by Foundation as an "end of file".
                        let escape = at - 2
                        let first = try hex4()
                        let lone = Problem("a lone UTF-16 surrogate escape (\\u\(String(first, radix: 16, uppercase: true))) is not a character", at: escape)
                        if (0xD800...0xDBFF).contains(first) {
                            guard current == UInt8(ascii: "\\"), at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "u") else { throw lone }
                            at += 2
                            let second = try hex4()
                            guard (0xDC00...0xDFFF).contains(second) else { throw lone }
                            scalars.append(Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))!)
                        } else {
                            guard let scalar = Unicode.Scalar(first) else { throw lone }
                            scalars.append(scalar)
                        }
                    default: throw Problem("'\\\(Character(Unicode.Scalar(escaped)))' is not a JSON escape", at: at - 2)
                    }
                    plainStart = at
                case 0..<0x20:
                    throw Problem("a control character (U+00\(byte < 0x10 ? "0" : "")\(String(byte, radix: 16, uppercase: true))) inside a string must be escaped", at: at)
                default:
                    at += 1
                }
            }
        }

        mutating func hex4() throws(Problem) -> UInt32 {
            guard at + 4 <= bytes.count else { throw Problem("'\\u' needs four hexadecimal digits", at: at - 2) }
            var value: UInt32 = 0
            for byte in bytes[at..<(at + 4)] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw Problem("'\\u' needs four hexadecimal digits", at: at - 2)
                }
                value = value << 4 | UInt32(digit)
            }
            at += 4
            return value
        }

        mutating func number() throws(Problem) {
            let start = at
            if current == UInt8(ascii: "-") { at += 1 }
            guard let first = current, isDigit(first) else { throw Problem("a number needs a digit after '-'", at: start) }
            at += 1
            if first == UInt8(ascii: "0"), let next = current, isDigit(next) {
                throw Problem("a number cannot start with 0 followed by digits", at: start)
            }
            digits()
            if current == UInt8(ascii: ".") {
                at += 1
                guard let next = current, isDigit(next) else { throw Problem("a number needs digits after '.'", at: start) }
                digits()
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                at += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { at += 1 }
                guard let next = current, isDigit(next) else { throw Problem("a number needs digits in its exponent", at: start) }
                digits()
            }
            // Foundation's parser refuses a number beyond a Double's range as "not representable":
            // only an exponent or some 300 digits can get there.
            if at - start > 300 || bytes[start..<at].contains(where: { $0 | 0x20 == UInt8(ascii: "e") }),
               let value = Double(String(decoding: bytes[start..<at], as: UTF8.self)), value.isInfinite {
                throw Problem("a number too large to read (beyond 1.8e308)", at: start)
            }
        }

        mutating func digits() {
            while let byte = current, isDigit(byte) { at += 1 }
        }

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        mutating func word(_ word: StaticString) throws(Problem) {
            let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            guard at + expected.count <= bytes.count, bytes[at..<(at + expected.count)].elementsEqual(expected) else {
                throw Problem("unexpected character where a value should be", at: at)
            }
            at += expected.count
        }
    }
}
