import ArgumentParser
import Foundation
import Logging
import NIOCore
import Postgres
import ServiceLifecycle
import TiplineHTTP
import TiplineStore
import TiplineWorker

struct Work: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process queued reports; run as many of these as you like, on any hosts.",
        discussion: """
            Each lane claims a batch with FOR UPDATE SKIP LOCKED, reads the ads, groups reports by seller, \
            escalates repeat sellers and completes the batch in one transaction. A heartbeat keeps the \
            leases; jobs of a worker that went silent are rescued by the others after --lease seconds. \
            LISTEN/NOTIFY wakes idle workers (it needs a session connection: not through a \
            transaction-mode pooler), with a poll every --poll seconds as a fallback.

            An unreachable database is retried with backoff (a restart or a failover costs a few \
            seconds, nothing else). A worker without --until-idle keeps retrying for as long as it \
            runs. A drain (--until-idle) that has not reached the database, whose every claim has \
            failed (a read-only server, a revoked grant), or whose database has answered nothing at \
            all (a stopped server, a network that drops packets), for --give-up-after seconds stops \
            with exit status 1; one whose connection settings are invalid, or that the \
            server turns away (no such database or role, a role that may not log in or connect, failed \
            authentication, no pg_hba.conf entry, SSL required but not offered), stops at once, also \
            with status 1. Jobs it held go back to the queue.

            With --metrics-port, GET /metrics on that port (127.0.0.1 unless --metrics-host) serves \
            Prometheus metrics: jobs claimed, completed, retried, dead and rescued; batch sizes; claim, \
            processing and queue-lag histograms; failed claims and heartbeats, and the time of the last \
            heartbeat that reached the database. It prints `metrics on http://HOST:PORT/metrics` once \
            listening (--metrics-port 0 picks a free port).

            SIGTERM, SIGINT or SIGHUP: stop claiming, finish the batches in hand, exit 0. A shutdown still \
            waiting for the database after --lease + 10 seconds (a call that never returns; a drain: \
            once its database has answered nothing for --give-up-after seconds) exits with status \
            75 instead; the jobs it held go back to the queue when their leases run out. So \
            does a stop that cannot reach the database while jobs it could not complete (the database \
            lost meanwhile) may still be under its lease, and a second signal a second or more after \
            the first, which exits at once.

            Needs no reporter key (TIPLINE_REPORTER_KEY is not read): a worker sees reporters only \
            as the hashes intake stored, so the key stays on the hosts that run submit and serve.
            """
    )

    @Option(help: "Batches processed at once (1-256; each with its own database connection). Lanes of all workers share the database's cores: about twice its cores in all is a good start.")
    var concurrency: Int = 2
    @Option(help: "Most jobs claimed and completed together (1-10000).")
    var batch: Int = 50
    @Flag(help: "Exit 0 once no job is queued, running or waiting for a retry.")
    var untilIdle = false
    @Option(name: .customLong("give-up-after"), help: "With --until-idle: exit 1 once the database has been unreachable, every claim has failed (a read-only server, a revoked grant), or the database has answered nothing, this many seconds in a row (1-86400; default 120).")
    var giveUpAfter: Double?
    @Option(help: "Name shown in `tipline status` (1-100 characters; default host:pid).")
    var name: String?
    @Option(help: "Lease in seconds (1-3600): a worker silent this long loses its jobs to the others.")
    var lease: Double = 15
    @Option(help: "Fallback poll interval in seconds when no notification arrives (0.1-3600).")
    var poll: Double = 5
    @Option(name: .customLong("retry-base"), help: "Delay in seconds after a first failed attempt (doubles each time, with jitter, up to 600 s: no retry waits longer; 0-3600, 0 retries at once).")
    var retryBase: Double = 2
    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics on this port (off when not given; 0 picks one).")
    var metricsPort: Int?
    @Option(name: .customLong("metrics-host"), help: "Address the metrics endpoint listens on.")
    var metricsHost = "127.0.0.1"
    @Flag(name: .customLong("fault-injection"), help: .hidden)
    var faultInjection = false
    /// Queue-only benchmark mode (scripts/bench): complete jobs without reading the ads. It marks
    /// real reports done without contacts for good, so it runs only with `TIPLINE_ALLOW_NOOP=1`.
    @Flag(name: .customLong("noop"), help: .hidden)
    var noop = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var log: LogOptions

    func validate() throws {
        if !(1...256).contains(concurrency) { throw ValidationError("--concurrency must be between 1 and 256") }
        if !(1...10_000).contains(batch) { throw ValidationError("--batch must be between 1 and 10000") }
        if !(lease >= 1 && lease <= 3600) { throw ValidationError("--lease must be between 1 and 3600 seconds") }
        // Below a tenth of a second an idle worker would spend the database on empty polls.
        if !(poll >= 0.1 && poll <= 3600) { throw ValidationError("--poll must be between 0.1 and 3600 seconds") }
        if !(retryBase >= 0 && retryBase <= 3600) { throw ValidationError("--retry-base must be between 0 and 3600 seconds") }
        if let giveUpAfter {
            if !untilIdle { throw ValidationError("--give-up-after applies only with --until-idle (a worker without it retries for as long as it runs)") }
            if !(giveUpAfter >= 1 && giveUpAfter <= 86_400) { throw ValidationError("--give-up-after must be between 1 and 86400 seconds") }
        }
        if let metricsPort, !(0...65_535).contains(metricsPort) { throw ValidationError("--metrics-port must be between 0 and 65535") }
        if let name, name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || name.count > 100 {
            throw ValidationError("--name must be 1-100 characters, not blank (it is how `tipline status` shows this worker)")
        }
        if noop, ProcessInfo.processInfo.environment["TIPLINE_ALLOW_NOOP"] != "1" {
            throw ValidationError("""
                --noop completes every report it claims as no_contact without reading it, for good: it is \
                scripts/bench's queue-only mode, for a benchmark's database. Set TIPLINE_ALLOW_NOOP=1 to run it.
                """)
        }
    }

    func run() async throws {
        // A signal while the worker is still starting stops it cleanly too (see EarlyShutdown).
        let early = EarlyShutdown(
            forcedStatus: Worker.shutdownTimedOutStatus,
            forcedNote: "a second signal: exiting now, without waiting for the batches in hand; the jobs still held go back to the queue when their leases run out (exit \(Worker.shutdownTimedOutStatus))")
        let trap = await early.trap()
        defer { trap.cancel() }
        var options = WorkerOptions(name: name)
        options.concurrency = concurrency
        options.batchSize = batch
        options.untilIdle = untilIdle
        options.giveUpSeconds = giveUpAfter ?? 120
        options.leaseSeconds = lease
        options.pollSeconds = poll
        options.retryBaseSeconds = retryBase
        options.noop = noop
        options.faultInjection = faultInjection || ProcessInfo.processInfo.environment["TIPLINE_FAULT_INJECTION"] == "1"
        options.faultReleaseFile = ProcessInfo.processInfo.environment["TIPLINE_FAULT_RELEASE_FILE"]
        // Tests only: hold the start-up here, before the service group exists, until the release
        // file exists, so that a signal can be sent into it.
        if options.faultInjection, ProcessInfo.processInfo.environment["TIPLINE_FAULT_START_HOLD"] == "1",
           let release = options.faultReleaseFile {
            await FaultMarker.waitForRelease(release) { false }
        }
        let logger = log.logger("tipline.worker")
        let registry = metricsPort == nil ? nil
            : MetricsExport.bootstrap(durationBuckets: WorkerMetricBuckets.durations, valueBuckets: WorkerMetricBuckets.values,
                                    help: WorkerMetricName.help)
        let settings = Queue.workerSessionSettings()
        let leftJobsToLeases = try await connection.withDatabase(
            application: "tipline-worker", maxConnections: concurrency + 1, settings: settings
        ) { database in
            let worker = Worker(database: database, listenConfig: connection.config(application: "tipline-listen", settings: settings),
                                options: options, logger: logger, prepare: { database in
                                    try await Migrator().requireCurrent(database)
                                })
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup),
            ]
            if let registry, let metricsPort {
                let host = metricsHost
                let server = buildMetricsApplication(registry: registry, host: host, port: metricsPort, logger: logger) { channel in
                    let port = channel.localAddress?.port ?? metricsPort
                    do { try Output.line("metrics on http://\(hostPort(host, port))/metrics") } catch {
                        logger.warning("could not announce the metrics port on standard output", metadata: ["error": "\(error)"])
                    }
                }
                services.append(.init(service: server))
            }
            try await ListenFailure.naming(host: metricsHost, port: metricsPort ?? 0, option: "--metrics-host, --metrics-port") {
                try await early.run(services, logger: logger)
            }
            return worker.leftJobsToLeases
        }
        // Jobs it could not give back wait for their leases: not the clean stop that exit 0 says.
        if leftJobsToLeases { throw ExitCode(Worker.shutdownTimedOutStatus) }
    }
}
