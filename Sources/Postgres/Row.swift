public import Foundation

/// A value that can be read from a text-format result column.
public protocol PostgresDecodable: Sendable {
    /// Parses PostgreSQL's text output; `nil` when it does not fit this type.
    init?(postgresText: Substring)
}

extension String: PostgresDecodable {
    public init?(postgresText: Substring) { self = String(postgresText) }
}

extension Int: PostgresDecodable {
    public init?(postgresText: Substring) { self.init(postgresText) }
}

extension Int64: PostgresDecodable {
    public init?(postgresText: Substring) { self.init(postgresText) }
}

extension Int32: PostgresDecodable {
    public init?(postgresText: Substring) { self.init(postgresText) }
}

extension Double: PostgresDecodable {
    public init?(postgresText: Substring) { self.init(postgresText) }
}

extension Bool: PostgresDecodable {
    public init?(postgresText: Substring) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension Date: PostgresDecodable {
    public init?(postgresText: Substring) {
        guard let date = PostgresTimestamp.parse(postgresText) else { return nil }
        self = date
    }
}

extension Data: PostgresDecodable {
    public init?(postgresText: Substring) {
        guard postgresText.hasPrefix("\\x"), let data = PostgresHex.decode(postgresText.dropFirst(2)) else {
            return nil
        }
        self = data
    }
}

/// One row of a result, copied out of libpq so it outlives the `PGresult`.
public struct Row: Sendable {
    /// Column names, shared by every row of a result.
    let columns: ColumnIndex
    /// Text values; `nil` is SQL NULL.
    @usableFromInline let values: [String?]

    init(columns: ColumnIndex, values: [String?]) {
        self.columns = columns
        self.values = values
    }

    /// The number of columns.
    public var count: Int { values.count }

    // `decode` and `decodeIfPresent` are inlinable so that each caller gets them specialised for
    // its type: the generic entry points looked up `Optional<T>`'s metadata on every call (5% of
    // a worker's CPU, which decodes about 40 values per report). Their errors are built out of line.

    /// Decodes column `index`, failing on NULL or on a value of the wrong shape.
    @inlinable
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at index: Int) throws -> T {
        guard let value = try decodeIfPresent(type, at: index) else { throw nullError(at: index, expected: T.self) }
        return value
    }

    /// Decodes column `index`, giving `nil` for SQL NULL.
    @inlinable
    public func decodeIfPresent<T: PostgresDecodable>(_ type: T.Type = T.self, at index: Int) throws -> T? {
        guard index < values.count else { throw missingError(at: index) }
        guard let text = values[index] else { return nil }
        guard let value = T(postgresText: Substring(text)) else { throw shapeError(at: index, expected: T.self) }
        return value
    }

    @usableFromInline
    func nullError(at index: Int, expected: Any.Type) -> PostgresError {
        PostgresError(code: .decodingFailed, message: "column \(columns.names[index]) is NULL, expected \(expected)")
    }

    @usableFromInline
    func missingError(at index: Int) -> PostgresError {
        PostgresError(code: .decodingFailed, message: "no column \(index) in a row of \(values.count)")
    }

    @usableFromInline
    func shapeError(at index: Int, expected: Any.Type) -> PostgresError {
        PostgresError(code: .decodingFailed, message: "column \(columns.names[index]) is not a valid \(expected)")
    }

    /// Decodes the column called `name`.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, _ name: String) throws -> T {
        try decode(type, at: columns.index(of: name))
    }

    /// Decodes the column called `name`, giving `nil` for SQL NULL.
    public func decodeIfPresent<T: PostgresDecodable>(_ type: T.Type = T.self, _ name: String) throws -> T? {
        try decodeIfPresent(type, at: columns.index(of: name))
    }
}

/// Column names of a result and a lookup by name.
final class ColumnIndex: Sendable {
    let names: [String]
    private let positions: [String: Int]

    init(names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        for (index, name) in names.enumerated() where positions[name] == nil { positions[name] = index }
        self.positions = positions
    }

    func index(of name: String) throws -> Int {
        guard let index = positions[name] else {
            throw PostgresError(code: .decodingFailed, message: "no column named \(name)")
        }
        return index
    }
}

/// The rows a statement returned and the number of rows it affected.
public struct QueryResult: Sendable, RandomAccessCollection {
    /// The rows, in the order the server sent them.
    public let rows: [Row]
    /// Rows affected by INSERT/UPDATE/DELETE (or returned by SELECT).
    public let affectedRows: Int

    public var startIndex: Int { rows.startIndex }
    public var endIndex: Int { rows.endIndex }
    public subscript(position: Int) -> Row { rows[position] }

    /// The single row, or an error naming the statement when there is none.
    public func one() throws -> Row {
        guard let row = rows.first else {
            throw PostgresError(code: .noRows, message: "statement returned no row")
        }
        return row
    }
}
