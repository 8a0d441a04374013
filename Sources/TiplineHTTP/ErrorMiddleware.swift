import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Postgres
import TiplineStore

/// Turns every failure into the JSON error shape, so clients parse one format whatever went wrong:
/// unknown routes, framework errors, database outages and an unmigrated database (503) and bugs (500, details only in the log).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as PostgresError where error.isTransient || error.code == .shutDown || error.sqlState == .readOnlySQLTransaction
                                                || (error.sqlState?.rawValue.hasPrefix("53") == true && error.sqlState?.rawValue != "53400") {
            // Worth the client's retry with the same external_id: a database out of reach (a lost
            // connection, the pool shut down), a statement the server ended at the session's
            // statement_timeout (= --db-timeout) or an administrator cancelled, a lock that could
            // not be had, a database that only reads for now (a standby, or
            // default_transaction_read_only), one short of disk, memory or connections (not a
            // configured limit, 53400, which the same request meets again).
            context.logger.warning("database unavailable", metadata: ["error": "\(error)"])
            throw error.sqlState == .readOnlySQLTransaction ? APIError.databaseReadOnly : APIError.databaseUnavailable
        } catch let error as PostgresError where error.sqlState == .undefinedTable || error.sqlState == .undefinedColumn {
            // A table or column missing: the database is not migrated (yet) to this server's schema.
            context.logger.warning("database not migrated", metadata: ["error": "\(error)"])
            throw APIError.migrationsPending()
        } catch let error as TiplineError where error.code == .schema {
            // The key check found the database short of this server's schema (or past it).
            context.logger.warning("database not at this server's schema", metadata: ["error": "\(error.message)"])
            throw APIError.migrationsPending(error.message)
        } catch let error as HTTPError {
            throw APIError(error.status, code: Self.code(for: error.status), error.body ?? Self.message(for: error.status))
        } catch let error as any HTTPResponseError {
            throw APIError(error.status, code: Self.code(for: error.status), Self.message(for: error.status))
        } catch let error as HTTPParserError {
            // Typically the client closed the connection before its body was complete: its fault,
            // not ours, so neither an error in the log nor a 5xx in the metrics.
            context.logger.info("malformed or unfinished request", metadata: ["error": "\(error)"])
            throw APIError(.badRequest, code: "malformed_request", "the request ended early or is not valid HTTP")
        } catch let error as IOError where error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
            // The client reset the connection mid-request (a FIN instead is an unfinished request,
            // above): its doing, as a hang-up is.
            context.logger.info("the client reset the connection mid-request", metadata: ["error": "\(error)"])
            throw APIError(.badRequest, code: "malformed_request", "the request ended early or is not valid HTTP")
        } catch {
            // PostgresError's description is terse and never holds bind values (report data).
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            throw APIError.internalError
        }
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .contentTooLarge: "body_too_large"
        case .badRequest: "malformed_request"
        default: "http_\(status.code)"
        }
    }

    static func message(for status: HTTPResponse.Status) -> String {
        status == .notFound ? "no such route" : status.reasonPhrase
    }
}
