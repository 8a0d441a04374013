import Hummingbird
import Foundation
import Logging
import Metrics

/// Counts requests and records their latency by route, method and status (as
/// `tipline_http_requests_total` and `tipline_http_request_duration_seconds`), and logs one line per
/// request: method, route, status and duration — never bodies, which hold report text and reporters.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let status: HTTPResponse.Status
        let result: Result<Response, any Error>
        do {
            let response = try await next(request, context)
            status = response.status
            result = .success(response)
        } catch {
            status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            result = .failure(error)
        }
        let elapsed = ContinuousClock.now - start
        // The route template (`/v1/reports/{id}`), not the path, so that labels stay few.
        let route = context.endpointPath ?? "unmatched"
        let dimensions = [("route", route), ("method", request.method.rawValue), ("status", String(status.code))]
        Counter(label: HTTPMetricName.requests, dimensions: dimensions).increment()
        Metrics.Timer(label: HTTPMetricName.requestDuration, dimensions: [("route", route), ("method", request.method.rawValue)])
            .record(duration: elapsed)
        context.logger.info("request", metadata: [
            "method": "\(request.method.rawValue)", "route": "\(route)", "status": "\(status.code)",
            "ms": "\((elapsed / .microseconds(1)).rounded(.down) / 1000)",
        ])
        return try result.get()
    }
}

/// The names of the HTTP intake's metrics, and their `# HELP` texts.
public enum HTTPMetricName {
    static let requests = "tipline_http_requests_total"
    static let requestDuration = "tipline_http_request_duration_seconds"

    public static let help = [
        requests: "Requests answered, by route template, method and status.",
        requestDuration: "Time from a request's arrival to its response, by route template and method.",
    ]
}
