public import Foundation

/// A value that can be read from a text-format result column.
public protocol PostgresDecodable: Sendable {
    /// Parses PostgreSQL's text output, given as its UTF-8 bytes; `nil` when it does not fit this type.
    init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>)
}

extension String: PostgresDecodable {
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) { self = String(decoding: bytes, as: UTF8.self) }
}

extension Int: PostgresDecodable {}
extension Int64: PostgresDecodable {}
extension Int32: PostgresDecodable {}

extension Double: PostgresDecodable {
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) { self.init(String(decoding: bytes, as: UTF8.self)) }
}

extension Bool: PostgresDecodable {
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) {
        switch String(decoding: bytes, as: UTF8.self) {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension Date: PostgresDecodable {
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) {
        guard let date = PostgresTimestamp.parse(bytes) else { return nil }
        self = date
    }
}

extension Data: PostgresDecodable {
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) {
        guard let digits = PostgresHex.byteaDigits(bytes), let data = PostgresHex.decode(digits) else { return nil }
        self = data
    }
}

extension PostgresDecodable where Self: FixedWidthInteger {
    /// Decimal integers as PostgreSQL writes them: an optional sign and digits, within the type's range.
    public init?(postgresBytes bytes: UnsafeBufferPointer<UInt8>) {
        var index = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative || bytes.first == UInt8(ascii: "+") { index = 1 }
        guard index < bytes.count else { return nil }
        var value: Self = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            // Accumulated towards the sign, so that the type's minimum is reachable.
            let (next, overflowB) = negative
                ? shifted.subtractingReportingOverflow(Self(digit)) : shifted.addingReportingOverflow(Self(digit))
            guard !overflowA, !overflowB else { return nil }
            value = next
            index += 1
        }
        self = value
    }
}

/// The values of a result, copied out of libpq into one buffer so that they outlive the
/// `PGresult`: one allocation per result, where a `String` per value and an array per row cost
/// the worker a tenth of its time.
@usableFromInline
final class ResultStorage: Sendable {
    /// Column names, shared by every row.
    let columns: ColumnIndex
    @usableFromInline let fieldCount: Int
    let rowCount: Int
    /// Every non-NULL value's text, one after another.
    @usableFromInline let bytes: [UInt8]
    /// Each value's start in `bytes` (row by row, column by column), -1 for NULL, and its end.
    @usableFromInline let starts: [Int]
    @usableFromInline let ends: [Int]

    init(columns: ColumnIndex, fieldCount: Int, rowCount: Int, bytes: [UInt8], starts: [Int], ends: [Int]) {
        self.columns = columns
        self.fieldCount = fieldCount
        self.rowCount = rowCount
        self.bytes = bytes
        self.starts = starts
        self.ends = ends
    }
}

/// One row of a result.
public struct Row: Sendable {
    @usableFromInline let storage: ResultStorage
    /// The row's position in its result.
    @usableFromInline let index: Int

    init(storage: ResultStorage, index: Int) {
        self.storage = storage
        self.index = index
    }

    /// The number of columns.
    public var count: Int { storage.fieldCount }

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
    public func decodeIfPresent<T: PostgresDecodable>(_ type: T.Type = T.self, at column: Int) throws -> T? {
        guard column >= 0, column < storage.fieldCount else { throw missingError(at: column) }
        let cell = index * storage.fieldCount + column
        let start = storage.starts[cell]
        guard start >= 0 else { return nil }
        let end = storage.ends[cell]
        let value = storage.bytes.withUnsafeBufferPointer { T(postgresBytes: UnsafeBufferPointer(rebasing: $0[start..<end])) }
        guard let value else { throw shapeError(at: column, expected: T.self) }
        return value
    }

    @usableFromInline
    func nullError(at index: Int, expected: Any.Type) -> PostgresError {
        PostgresError(code: .decodingFailed, message: "column \(storage.columns.names[index]) is NULL, expected \(expected)")
    }

    @usableFromInline
    func missingError(at index: Int) -> PostgresError {
        PostgresError(code: .decodingFailed, message: "no column \(index) in a row of \(storage.fieldCount)")
    }

    @usableFromInline
    func shapeError(at index: Int, expected: Any.Type) -> PostgresError {
        PostgresError(code: .decodingFailed, message: "column \(storage.columns.names[index]) is not a valid \(expected)")
    }

    /// Decodes the column called `name`.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, _ name: String) throws -> T {
        try decode(type, at: storage.columns.index(of: name))
    }

    /// Decodes the column called `name`, giving `nil` for SQL NULL.
    public func decodeIfPresent<T: PostgresDecodable>(_ type: T.Type = T.self, _ name: String) throws -> T? {
        try decodeIfPresent(type, at: storage.columns.index(of: name))
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
    let storage: ResultStorage
    /// Rows affected by INSERT/UPDATE/DELETE (or returned by SELECT).
    public let affectedRows: Int

    init(storage: ResultStorage, affectedRows: Int) {
        self.storage = storage
        self.affectedRows = affectedRows
    }

    /// The rows, in the order the server sent them.
    public var rows: [Row] { Array(self) }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.rowCount }
    public subscript(position: Int) -> Row {
        precondition(position >= 0 && position < storage.rowCount, "row \(position) of \(storage.rowCount)")
        return Row(storage: storage, index: position)
    }

    /// The single row, or an error naming the statement when there is none.
    public func one() throws -> Row {
        guard let row = first else {
            throw PostgresError(code: .noRows, message: "statement returned no row")
        }
        return row
    }
}
