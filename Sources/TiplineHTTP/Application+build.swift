public import Hummingbird
public import Logging
public import Postgres
public import Prometheus
public import TiplineStore
public import NIOCore
import TiplineCore

/// How the intake server is set up.
public struct IntakeSettings: Sendable {
    /// Address to listen on (loopback by default: put a TLS proxy in front to widen it).
    public var host = "127.0.0.1"
    /// Port; 0 picks a free one (reported through `onServerRunning`).
    public var port = 8080
    /// Largest request body accepted, in bytes (413 above it). A text at its own limit (64 KiB)
    /// can take six times that once a JSON writer escapes it (`\u0001`, or `\u51fa` for three
    /// bytes): 512 KiB holds any valid report however it is written.
    public var maxBodyBytes = 524_288
    /// A connection on which nothing arrives for this long is closed: one that never finishes its
    /// headers or its body, or sits idle between requests; so is one whose answers stay unsent this
    /// long because its client stopped reading. Without it such connections stayed open for ever,
    /// used up descriptors and held a shutdown.
    public var idleTimeout: TimeAmount = .seconds(30)
    /// How long a request waits for its database work (the token, the insert, the report's state)
    /// before it answers 503 `database_unavailable`: a backend that stops answering (a stopped
    /// process, a network that drops packets without a reset) would otherwise hold the request,
    /// and the server's shutdown with it, for as long as it lasts.
    public var databaseTimeout: Duration = .seconds(10)
    /// Most client connections open at once; one more is closed as soon as it is accepted. Lowered
    /// to what the process's descriptor limit allows (after raising its soft limit to the hard one),
    /// keeping some back for the database and the runtime.
    public var maxConnections = 1024
    /// Descriptors kept back from `maxConnections` for everything else the process opens.
    public var reservedDescriptors = 64
    /// Longest a request's body may take to arrive, from its head to its end (408 after it).
    public var bodyTimeout: TimeAmount = .seconds(60)

    /// The defaults.
    public init() {}
}

/// Routes and middleware of the intake API, without a server: testable in-process.
/// `verified` is the hasher a key check that just passed gave (`ReporterKey.verify(against:)`), so
/// that the first report does not check again.
public func buildRouter(
    database: Database, reporterKey: ReporterKey, verified: ReporterHasher? = nil, registry: PrometheusCollectorRegistry, maxBodyBytes: Int,
    databaseTimeout: Duration = .seconds(10)
) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    // Metrics outermost, so they see the status the error middleware chose.
    router.add(middleware: RequestMetricsMiddleware())
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: HostRuleMiddleware())
    let reporterKeyCheck = ReporterKeyCheck(key: reporterKey, verified: verified)
    HealthRoutes(database: database, reporterKeyCheck: reporterKeyCheck).register(on: router)
    MetricsEndpoint(registry: registry).register(on: router)
    // Field limits are the validator's; a body limit below the text limit would make them moot, so
    // the body limit is what bounds memory per request.
    ReportRoutes(database: database, tokens: APITokens(database: database), reporterKeyCheck: reporterKeyCheck,
                 maxBodyBytes: maxBodyBytes, request: ReportRequest(validator: ReportValidator()), databaseTimeout: databaseTimeout)
        .register(on: router)
    refuseOtherMethods(on: router, paths: [
        ("/v1/reports", [.post]), ("/v1/reports/{id}", [.get]), ("/healthz", [.get]), ("/readyz", [.get]), ("/metrics", [.get]),
    ])
    return router
}

/// Another method on a known path gets 405 with the methods it takes (`Allow`), not a 404 that
/// says the path does not exist.
func refuseOtherMethods(on router: Router<BasicRequestContext>, paths: [(RouterPath, [HTTPRequest.Method])]) {
    for (path, allow) in paths {
        for method in [HTTPRequest.Method.get, .head, .post, .put, .patch, .delete, .options, .trace] where !allow.contains(method) {
            router.on(path, method: method) { _, _ -> Response in throw APIError.methodNotAllowed(method, allow: allow) }
        }
    }
}

/// The intake server as a service, ready for `runService()` or a `ServiceGroup`.
public func buildApplication(
    database: Database, reporterKey: ReporterKey, verified: ReporterHasher? = nil, registry: PrometheusCollectorRegistry,
    settings: IntakeSettings, logger: Logger, onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let bound = ConnectionCount.descriptorBound(reserved: settings.reservedDescriptors)
    if bound < settings.maxConnections {
        logger.notice("connections limited by the process's descriptor limit",
                      metadata: ["max_connections": "\(bound)", "asked": "\(settings.maxConnections)"])
    }
    let connections = ConnectionCount(limit: min(settings.maxConnections, bound))
    // A body refused before it is read is dropped up to 16 MiB (twice the largest body accepted,
    // if more), then the connection is closed: a client that began a large upload before it read
    // the refusal may finish it, and none can stream into the server for ever.
    let drainLimit = max(16 << 20, 2 * settings.maxBodyBytes)
    return Application(
        router: buildRouter(database: database, reporterKey: reporterKey, verified: verified, registry: registry, maxBodyBytes: settings.maxBodyBytes,
                            databaseTimeout: settings.databaseTimeout),
        server: .intakeHTTP1(configuration: .init(
            additionalChannelHandlers: [ConnectionLimitHandler(count: connections),
                                        StalledReaderHandler(timeout: settings.idleTimeout),
                                        EarlyResponseHandler(drainLimit: drainLimit, bodyTimeout: settings.bodyTimeout),
                                        ContinueHandler(maxBodyBytes: settings.maxBodyBytes)],
            idleTimeout: settings.idleTimeout)),
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "tipline"),
        onServerRunning: onServerRunning,
        logger: logger)
}

/// A metrics-only server for processes without an API (`tipline work --metrics-port`):
/// `GET /metrics` in Prometheus text format and `GET /healthz`.
public func buildMetricsApplication(
    registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger,
    onServerRunning: @escaping @Sendable (any NIOCore.Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router(context: BasicRequestContext.self)
    MetricsEndpoint(registry: registry).register(on: router)
    router.get("/healthz") { _, _ in try JSONBody.response(.ok, ["status": "ok"]) }
    refuseOtherMethods(on: router, paths: [("/healthz", [.get]), ("/metrics", [.get])])
    return Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: .seconds(30))),
        configuration: .init(address: .hostname(host, port: port), serverName: "tipline-worker"),
        onServerRunning: onServerRunning,
        logger: logger)
}
