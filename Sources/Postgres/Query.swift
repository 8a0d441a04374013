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

        /// Splices SQL text into the statement. Never pass data that came from outside the program.
        public mutating func appendInterpolation(unescaped fragment: String) {
            sql += fragment
        }
    }
}
