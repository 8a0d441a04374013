/// A SQL statement whose interpolated values are always sent as bind parameters.
///
/// `"SELECT * FROM reports WHERE id = \(id)"` becomes `SELECT * FROM reports WHERE id = $1` with `id`
/// bound, so a value can never change the statement. Raw SQL can only be spliced in through
/// `\(unescaped:)`, which is meant for identifiers and fragments that come from the program itself.
public struct Query: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// One bind value, as libpq sends it.
    public struct Parameter: Sendable, Equatable {
        /// Text: its UTF-8 bytes and a terminating NUL (libpq measures text with `strlen`).
        /// Binary: the bytes. `nil`: SQL NULL.
        let bytes: [UInt8]?
        /// libpq's format code: 0 text, 1 binary.
        let format: Int32

        /// A text-format value; `nil` is SQL NULL.
        public static func text(_ value: String?) -> Parameter {
            Parameter(bytes: value.map { Array($0.utf8) + [0] }, format: 0)
        }

        /// A binary-format value (the type's `*recv` format).
        public static func binary(_ bytes: [UInt8]) -> Parameter {
            Parameter(bytes: bytes, format: 1)
        }

        /// The text form of a text value (nil for NULL and for a binary value).
        public var text: String? {
            guard format == 0, let bytes else { return nil }
            return String(decoding: bytes.dropLast(), as: UTF8.self)
        }
    }

    /// The SQL text with `$n` placeholders.
    public private(set) var sql: String
    /// The bind values, `$1` first.
    public private(set) var parameters: [Parameter]

    /// Creates a query from SQL text without parameters.
    public init(stringLiteral value: String) {
        sql = value
        parameters = []
    }

    /// Creates a query from an interpolation; every value becomes a parameter.
    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        parameters = stringInterpolation.parameters
    }

    /// Creates a query from SQL text and already-encoded parameters.
    public init(sql: String, parameters: [Parameter]) {
        self.sql = sql
        self.parameters = parameters
    }

    /// Creates a query from SQL text and text parameters (`nil` is SQL NULL).
    public init(sql: String, binds: [String?]) {
        self.init(sql: sql, parameters: binds.map { .text($0) })
    }

    public var description: String { sql }

    /// `sql` with every placeholder `$n` outside quotes and comments made `$(n + offset)`.
    ///
    /// Scans UTF-8 bytes: every character that matters here is ASCII, and no byte of a multi-byte
    /// character is. Like PostgreSQL's lexer, a dollar-quote tag is letters, digits (not first),
    /// underscores and any non-ASCII byte, and a `$` inside a name (`col$1`, `a$b$`) is part of
    /// the name: neither a placeholder nor a dollar quote.
    static func renumbered(_ sql: String, by offset: Int) -> String {
        var sql = sql
        return sql.withUTF8 { text -> String in
            var out: [UInt8] = []
            out.reserveCapacity(text.count + 16)
            var i = 0
            // The bytes last copied end a name (an identifier or a keyword), which a `$` continues.
            var inName = false
            /// Copies from `i` up to and including the first `terminator` at or after `from`.
            func copy(through terminator: some Collection<UInt8>, from: Int) {
                var end = from
                while end < text.count, !text[end...].starts(with: terminator) { end += 1 }
                end = min(end + terminator.count, text.count)
                out.append(contentsOf: text[i..<end])
                i = end
            }
            func isDigit(_ k: Int) -> Bool { k < text.count && text[k] >= UInt8(ascii: "0") && text[k] <= UInt8(ascii: "9") }
            func isTagByte(_ k: Int, first: Bool) -> Bool {
                guard k < text.count else { return false }
                let c = text[k] | 0x20  // ASCII letters folded to lower case
                return (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || text[k] == UInt8(ascii: "_") || text[k] >= 0x80
                    || (!first && isDigit(k))
            }
            while i < text.count {
                let c = text[i]
                let wasInName = inName
                inName = false
                if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                    copy(through: CollectionOfOne(c), from: i + 1)  // '' inside a string ends and restarts it: same text
                } else if c == UInt8(ascii: "-"), i + 1 < text.count, text[i + 1] == UInt8(ascii: "-") {
                    copy(through: CollectionOfOne(UInt8(ascii: "\n")), from: i + 2)
                } else if c == UInt8(ascii: "/"), i + 1 < text.count, text[i + 1] == UInt8(ascii: "*") {
                    copy(through: "*/".utf8, from: i + 2)
                } else if c == UInt8(ascii: "$"), wasInName {
                    out.append(c)
                    inName = true
                    i += 1
                } else if c == UInt8(ascii: "$"), isDigit(i + 1) {
                    var number = 0
                    var end = i + 1
                    while isDigit(end) {
                        number = number * 10 + Int(text[end] - UInt8(ascii: "0"))
                        end += 1
                    }
                    out.append(c)
                    out.append(contentsOf: String(number + offset).utf8)
                    i = end
                } else if c == UInt8(ascii: "$") {
                    // A dollar quote: $$ or $tag$, closed by the same.
                    var end = i + 1
                    while isTagByte(end, first: end == i + 1) { end += 1 }
                    if end < text.count, text[end] == UInt8(ascii: "$") {
                        copy(through: Array(text[i...end]), from: end + 1)
                    } else {
                        out.append(c)
                        i += 1
                    }
                } else {
                    out.append(c)
                    inName = isTagByte(i, first: !wasInName)
                    i += 1
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Collects literal SQL and bind values.
    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var parameters: [Parameter] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            parameters.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds a value as the next parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            parameters.append(value.postgresParameter)
            sql += "$\(parameters.count)"
        }

        /// Splices another statement in (a subquery, a branch of a UNION), its parameters
        /// renumbered to follow the ones bound so far. Quoted text, quoted names, dollar-quoted
        /// bodies and comments in it are copied as they are.
        public mutating func appendInterpolation(fragment query: Query) {
            sql += Query.renumbered(query.sql, by: parameters.count)
            parameters += query.parameters
        }

        /// Splices SQL text into the statement. Never pass data that came from outside the program.
        public mutating func appendInterpolation(unescaped fragment: String) {
            sql += fragment
        }
    }
}
