/// A Tipline failure with a code the CLI and HTTP layer can map, and a one-line message.
public struct TiplineError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// Missing or invalid configuration (keys, options).
        public static let configuration = Code(name: "configuration")
        /// Bad input from the user.
        public static let invalidInput = Code(name: "invalid input")
        /// Something asked for does not exist.
        public static let notFound = Code(name: "not found")
        /// The database schema is older or newer than this binary.
        public static let schema = Code(name: "schema")
        public var description: String { name }
    }

    /// What kind of failure.
    public var code: Code
    /// A one-line explanation.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
