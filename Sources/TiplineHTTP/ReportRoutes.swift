import Hummingbird
import Foundation
import NIOCore
import Logging
import Postgres
import TiplineCore
import TiplineStore

/// `POST /v1/reports` and `GET /v1/reports/{id}`.
struct ReportRoutes: Sendable {
    let database: Database
    let tokens: APITokens
    let reporterKeyCheck: ReporterKeyCheck
    let maxBodyBytes: Int
    let request: ReportRequest
    /// How long one request's database work may take before it answers 503 (`IntakeSettings`).
    let databaseTimeout: Duration

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/reports") { request, context in try await submit(request, context: context) }
        router.get("/v1/reports/{id}") { request, context in try await show(request, context: context) }
    }

    /// 201 with a new id, or 200 with the existing one for a repeated `(source, external_id)`.
    func submit(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let client = try await authenticate(request)
        try ReportRequest.checkContentType(request.headers[.contentType])
        try ReportRequest.checkContentEncoding(request.headers[.contentEncoding])
        try ReportRequest.checkTransferEncoding(request.headers[.transferEncoding])
        // Refuse early when the client says how big it is; the streamed size is checked as well.
        if let length = ReportRequest.declaredLength(request.headers[.contentLength]), length > maxBodyBytes {
            throw APIError.tooLarge(limit: maxBodyBytes)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit: maxBodyBytes)
        }
        let input = try self.request.decode(Array(buffer.readableBytesView), channel: client.channel)
        let logger = context.logger
        let (result, status) = try await bounded { [database, reporterKeyCheck] in
            // A database whose key settings changed since the last check (one replaced under the
            // server) is checked again, and the report stored with what that gives.
            let outcome = try await ReporterKeyChanged.checkingTheKeyAgain(noting: {
                logger.warning("the database's reporter key settings changed since they were checked; checking the key again")
            }) { again in
                let hasher = try await reporterKeyCheck.ensure(database, always: again, logger: logger)
                return try await Intake(database: database, hasher: hasher).submit([input], source: client.source)
            }
            guard let result = outcome.results.first, result.reportID > 0 else { throw APIError.internalError }
            if result.isNew { return (result, "queued") }
            return (result, try await ReportView.find(result.reportID, source: client.source, in: database)?.status ?? "queued")
        }
        if result.isNew {
            context.logger.info("report accepted", metadata: ["report_id": "\(result.reportID)", "source": "\(client.source)"])
            return try JSONBody.response(.created, SubmitResponse(id: result.reportID, status: status, duplicate: false))
        }
        return try JSONBody.response(.ok, SubmitResponse(id: result.reportID, status: status, duplicate: true))
    }

    /// The report's state, only for the source that submitted it: anyone else gets 404, so ids of
    /// other sources cannot even be probed.
    func show(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let client = try await authenticate(request)
        guard let id = context.parameters.get("id", as: Int64.self), id > 0,
              let view = try await bounded({ [database] in try await ReportView.find(id, source: client.source, in: database) })
        else { throw APIError.notFound("no report with this id for your source") }
        return try JSONBody.response(.ok, view)
    }

    private func authenticate(_ request: Request) async throws -> APIClient {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized("missing bearer token (Authorization: Bearer tl_...)")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.unauthorized("the Authorization header must be: Bearer <token>")
        }
        let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
        guard let client = try await bounded({ [tokens] in try await tokens.authenticate(token) }) else {
            throw APIError.unauthorized("invalid or revoked token")
        }
        return client
    }

    /// Database work bounded by `databaseTimeout`: past it the request answers 503
    /// `database_unavailable` (the client retries with the same `external_id`; an insert that
    /// still commits later makes that retry a duplicate, not a second report). A call under way
    /// cannot be interrupted and goes on in the background until the database answers; one still
    /// waiting for a connection is not made (`DatabaseDeadline`, which costs a request no task or
    /// timer of its own).
    private func bounded<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await DatabaseDeadline.within(databaseTimeout) { try await body() }
        } catch is DatabaseDeadlinePassed {
            throw APIError.databaseTimedOut(after: databaseTimeout)
        }
    }
}

/// The answer to `POST /v1/reports`.
struct SubmitResponse: Encodable {
    var id: Int64
    var status: String
    var duplicate: Bool
}
