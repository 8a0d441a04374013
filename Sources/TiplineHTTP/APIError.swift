public import Hummingbird
import Foundation

/// A failure answered to an HTTP client as `{"error": {"code", "message", "field"}}`.
///
/// Messages say what is wrong with the request in words a client developer can act on; they never
/// carry report text, reporter identities or server internals.
public struct APIError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    /// The HTTP status answered.
    public var status: HTTPResponse.Status
    /// A stable, machine-readable code (`validation_failed`, `unauthorized`...).
    public var code: String
    /// What is wrong, in one line.
    public var message: String
    /// The request field at fault, when there is one.
    public var field: String?
    /// For 405: the methods the path takes (the `Allow` header).
    public var allow: [HTTPRequest.Method] = []

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, code: String, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if !allow.isEmpty { headers[.allow] = allow.map(\.rawValue).joined(separator: ", ") }
        return try JSONBody.response(status, ErrorEnvelope(error: .init(code: code, message: message, field: field)),
                                     headers: headers)
    }
}

extension APIError {
    /// 400: the body could not be read as JSON.
    static func malformed(_ message: String) -> APIError { APIError(.badRequest, code: "malformed_request", message) }
    /// 401: no usable bearer token.
    static func unauthorized(_ message: String) -> APIError { APIError(.unauthorized, code: "unauthorized", message) }
    /// 404: nothing here for this client.
    static func notFound(_ message: String = "not found") -> APIError { APIError(.notFound, code: "not_found", message) }
    /// 405: the path exists, the method does not.
    static func methodNotAllowed(_ method: HTTPRequest.Method, allow: [HTTPRequest.Method]) -> APIError {
        var error = APIError(.methodNotAllowed, code: "method_not_allowed",
                             "\(method.rawValue) is not accepted here; use \(allow.map(\.rawValue).joined(separator: " or "))")
        error.allow = allow
        return error
    }
    /// 413: the body is over the limit.
    static func tooLarge(limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "body_too_large", "request body is over the limit of \(limit) bytes")
    }
    /// 415: not JSON.
    static func unsupportedMediaType(_ message: String) -> APIError {
        APIError(.unsupportedMediaType, code: "unsupported_media_type", message)
    }
    /// 422: well-formed JSON whose fields are not a valid report.
    static func invalid(field: String?, _ message: String) -> APIError {
        APIError(.unprocessableContent, code: "validation_failed", message, field: field)
    }
    /// 501: a transfer coding the server cannot undo.
    static func notImplemented(_ message: String) -> APIError {
        APIError(.notImplemented, code: "not_implemented", message)
    }
    /// 503: the database cannot be reached.
    static let databaseUnavailable = APIError(.serviceUnavailable, code: "database_unavailable",
                                              "the database is unreachable; retry later")
    /// 503: the database refuses writes for now (a standby, or `default_transaction_read_only`).
    static let databaseReadOnly = APIError(.serviceUnavailable, code: "database_unavailable",
                                           "the database only reads for now (a standby, or default_transaction_read_only is on); retry later with the same external_id")
    /// 503: the database did not answer a request's work within the server's `--db-timeout`.
    static func databaseTimedOut(after limit: Duration) -> APIError {
        APIError(.serviceUnavailable, code: "database_unavailable",
                 "the database did not answer within \(limit); retry later with the same external_id")
    }
    /// 503: the database is not at this server's schema (by default: it lacks its tables or columns,
    /// it is not migrated yet); `message` says how, when known.
    static func migrationsPending(
        _ message: String = "the database is not migrated to this server's schema yet (run tipline migrate); retry later"
    ) -> APIError {
        APIError(.serviceUnavailable, code: "migrations_pending", message)
    }
    /// 500: anything else; details go to the log, not to the client.
    static let internalError = APIError(.internalServerError, code: "internal_error", "internal error")
}

/// The JSON shape of every error response.
struct ErrorEnvelope: Encodable {
    struct Body: Encodable {
        var code: String
        var message: String
        var field: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(code, forKey: .code)
            try container.encode(message, forKey: .message)
            try container.encode(field, forKey: .field)  // explicit null: the field is always present
        }

        enum CodingKeys: String, CodingKey { case code, message, field }
    }

    var error: Body
}

/// Builds JSON responses.
enum JSONBody {
    static let contentType = "application/json; charset=utf-8"

    /// `value` as the JSON every response carries: keys sorted, slashes as they are.
    static func bytes(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    static func response(_ status: HTTPResponse.Status, _ value: some Encodable, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try bytes(value))))
    }
}
