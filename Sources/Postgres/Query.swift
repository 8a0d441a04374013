/// A SQL statement whose interpolated values are always sent as bind parameters.
///
/// `"SELECT * FROM reports WHERE id = \(id)"` becomes `SELECT * FROM reports WHERE id = $1` with `id`
/// bound, so a value can never change the statement. Raw SQL can only be spliced in through
/// `\(unescaped:)`, which is meant for identifiers and fragments that come from the program itself.
public struct Query: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The SQL text with `$n` placeholders.
    public private(set) var sql: String
    /// The bind values in text format; `nil` is SQL NULL.
    public private(set) var binds: [String?]

    /// Creates a query from SQL text without parameters.
    public init(stringLiteral value: String) {
        sql = value
        binds = []
    }

    /// Creates a query from an interpolation; every value becomes a parameter.
    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    /// Creates a query from SQL text and already-encoded text parameters.
    public init(sql: String, binds: [String?]) {
        self.sql = sql
        self.binds = binds
    }

    public var description: String { sql }

    /// `sql` with every placeholder `$n` outside quotes and comments made `$(n + offset)`.
    static func renumbered(_ sql: String, by offset: Int) -> String {
        let text = Array(sql.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        /// Copies from `i` up to and including the first `terminator` at or after `from`.
        func copy(through terminator: [Unicode.Scalar], from: Int) {
            var end = from
            while end < text.count, !text[end...].starts(with: terminator) { end += 1 }
            end = min(end + terminator.count, text.count)
            out += text[i..<end]
            i = end
        }
        func isDigit(_ k: Int) -> Bool { k < text.count && ("0"..."9").contains(text[k]) }
        func isTagScalar(_ k: Int, first: Bool) -> Bool {
            k < text.count && (text[k].properties.isAlphabetic || text[k] == "_" || (!first && isDigit(k)))
        }
        while i < text.count {
            let c = text[i]
            if c == "'" || c == "\"" {
                copy(through: [c], from: i + 1)  // '' inside a string ends and restarts it: same text
            } else if c == "-", i + 1 < text.count, text[i + 1] == "-" {
                copy(through: ["\n"], from: i + 2)
            } else if c == "/", i + 1 < text.count, text[i + 1] == "*" {
                copy(through: ["*", "/"], from: i + 2)
            } else if c == "$", isDigit(i + 1) {
                var end = i + 1
                while isDigit(end) { end += 1 }
                let number = Int(String(String.UnicodeScalarView(text[(i + 1)..<end])))!
                out += "$\(number + offset)".unicodeScalars
                i = end
            } else if c == "$" {
                // A dollar quote: $$ or $tag$, closed by the same.
                var end = i + 1
                while isTagScalar(end, first: end == i + 1) { end += 1 }
                if end < text.count, text[end] == "$" {
                    copy(through: Array(text[i...end]), from: end + 1)
                } else {
                    out.append(c)
                    i += 1
                }
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(out)
    }

    /// Collects literal SQL and bind values.
    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [String?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds a value as the next parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresText)
            sql += "$\(binds.count)"
        }

        /// Splices another statement in (a subquery, a branch of a UNION), its parameters
        /// renumbered to follow the ones bound so far. Quoted text, quoted names, dollar-quoted
        /// bodies and comments in it are copied as they are.
        public mutating func appendInterpolation(fragment query: Query) {
            sql += Query.renumbered(query.sql, by: binds.count)
            binds += query.binds
        }

        /// Splices SQL text into the statement. Never pass data that came from outside the program.
        public mutating func appendInterpolation(unescaped fragment: String) {
            sql += fragment
        }
    }
}
