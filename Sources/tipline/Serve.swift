import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import Postgres
import ServiceLifecycle
import TiplineHTTP
import TiplineStore

/// `tipline serve`: the HTTP intake for apps and the hotline system.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accept reports over HTTP (POST /v1/reports) with bearer tokens.",
        discussion: """
            Routes: POST /v1/reports, GET /v1/reports/{id}, GET /healthz, GET /readyz, GET /metrics. \
            Clients authenticate with `Authorization: Bearer TOKEN` (see `tipline token create`). \
            Errors are JSON: {"error": {"code", "message", "field"}}. The API is described in openapi.yaml.

            Listens on 127.0.0.1 by default; put a TLS-terminating proxy in front before widening --host. \
            Prints `listening on http://HOST:PORT` once it accepts connections (--port 0 picks a free port). \
            SIGTERM, SIGINT or SIGHUP: stop accepting, finish the requests in hand, exit 0; a second \
            signal a second or more after the first exits at once, with status 75.

            Needs TIPLINE_REPORTER_KEY, the key the database's reporters were hashed with (the same \
            on every host): a server with another key, or none, refuses to start.
            """
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8080
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted (413 above it). The default holds any valid report, its text escaped character by character.")
    var maxBodyBytes = 524_288
    @Option(name: .customLong("db-connections"), help: "Database connections (and threads) for requests.")
    var dbConnections = 4
    @Option(name: .customLong("body-timeout"), help: "Seconds a request's body may take to arrive, from its head to its end (1-3600; 408 after it), however steadily it trickles.")
    var bodyTimeout: Double = 60
    @Option(name: .customLong("max-connections"), help: "Most client connections open at once (1-1000000; one more is closed when accepted; lowered to what the descriptor limit allows).")
    var maxConnections = 1024
    @Option(name: .customLong("idle-timeout"), help: "Seconds a connection may send nothing (mid-request or between requests) before it is closed.")
    var idleTimeout: Double = 30
    @Option(name: .customLong("db-timeout"), help: """
        Seconds a request waits for the database before it answers 503 database_unavailable (clients retry \
        with the same external_id); also the sessions' statement_timeout.
        """)
    var dbTimeout: Double = 10

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var log: LogOptions

    func validate() throws {
        if !(0...65_535).contains(port) { throw ValidationError("--port must be between 0 and 65535") }
        if !(1_024...(64 << 20)).contains(maxBodyBytes) { throw ValidationError("--max-body-bytes must be between 1024 and 67108864") }
        if !(1...64).contains(dbConnections) { throw ValidationError("--db-connections must be between 1 and 64") }
        if !(1...3600).contains(bodyTimeout) { throw ValidationError("--body-timeout must be between 1 and 3600") }
        if !(1...1_000_000).contains(maxConnections) { throw ValidationError("--max-connections must be between 1 and 1000000") }
        if !(idleTimeout >= 0.1 && idleTimeout <= 3600) { throw ValidationError("--idle-timeout must be between 0.1 and 3600 seconds") }
        if !(dbTimeout >= 0.1 && dbTimeout <= 3600) { throw ValidationError("--db-timeout must be between 0.1 and 3600 seconds") }
    }

    func run() async throws {
        // A signal while the server is still starting (a database slow to answer the key check)
        // stops it cleanly too (see EarlyShutdown).
        // 75 (EX_TEMPFAIL), as `work` after a shutdown it could not finish.
        let early = EarlyShutdown(
            forcedStatus: 75, forcedNote: "a second signal: exiting now, without waiting for the requests in hand (exit 75)")
        let trap = await early.trap()
        defer { trap.cancel() }
        let key = try ReporterKey.fromEnvironment()
        let logger = log.logger("tipline.http")
        let registry = MetricsExport.bootstrap(help: HTTPMetricName.help)
        var settings = IntakeSettings()
        settings.host = host
        settings.port = port
        settings.maxBodyBytes = maxBodyBytes
        settings.maxConnections = maxConnections
        settings.bodyTimeout = .milliseconds(Int64(bodyTimeout * 1000))
        settings.reservedDescriptors = 64 + 2 * dbConnections
        settings.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        settings.databaseTimeout = .milliseconds(Int64(dbTimeout * 1000))
        let listening = settings
        // The server ends a statement (or a lock wait) that outlasts the request waiting for it;
        // a backend that stops answering altogether is left behind by the request's own deadline.
        let sessions = Intake.sessionSettings + [("statement_timeout", "\(Int(dbTimeout * 1000))ms")]
        // While the database is down, requests answer 503 from the last failure to connect for up to
        // a second instead of each opening a connection.
        try await connection.withDatabase(application: "tipline-serve", maxConnections: dbConnections, settings: sessions,
                                          connectBackoff: .seconds(1)) { database in
            var verified: ReporterHasher?
            do {
                // The check's hasher is the server's until its first re-check (`ReporterKeyCheck`).
                verified = try await early.unlessRequested({ try await key.verify(against: database) })
                guard verified != nil else {
                    logger.notice("stopped while starting: a signal came while the database was checked")
                    // The check's call, blocked on a server that does not answer, is left behind at
                    // once (the pool's shutdown would wait 10 s for it): it changes nothing.
                    database.abandon()
                    return
                }
            } catch let error as PostgresError where error.isConnectionProblem {
                // Start anyway: /healthz and /readyz must answer while the database is down; the
                // key is checked again before the first report is stored.
                logger.warning("database unreachable at start-up; serving 503 until it is back", metadata: ["error": "\(error)"])
            } catch let error as TiplineError where error.code == .schema {
                // Not migrated yet, or not to this binary's schema (serve may start before `tipline
                // migrate` in a deployment): /readyz says migrations_pending until it is.
                logger.warning("\(error.message); serving 503 until it is")
            }
            let app = buildApplication(
                database: database, reporterKey: key, verified: verified, registry: registry, settings: settings,
                logger: logger
            ) { channel in
                let port = channel.localAddress?.port ?? listening.port
                // Scripts and tests wait for this line to learn the port (with --port 0).
                // (A standard output that cannot be written does not stop the server: it is logged.)
                do { try Output.line("listening on http://\(hostPort(listening.host, port))") } catch {
                    logger.warning("could not announce the port on standard output", metadata: ["error": "\(error)"])
                }
            }
            try await ListenFailure.naming(host: host, port: port, option: "--host, --port") {
                try await early.run([.init(service: app)], logger: logger)
            }
        }
    }
}
