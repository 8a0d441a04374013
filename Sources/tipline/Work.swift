import ArgumentParser
import Foundation
import Logging
import Postgres
import ServiceLifecycle
import UnixSignals
import TiplineStore
import TiplineWorker

struct Work: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process queued reports; run as many of these as you like, on any hosts.",
        discussion: """
            Each lane claims a batch with FOR UPDATE SKIP LOCKED, reads the ads, groups reports by seller,
            escalates repeat sellers and completes the batch in one transaction. A heartbeat keeps the
            leases; jobs of a worker that went silent are rescued by the others after --lease seconds.
            LISTEN/NOTIFY wakes idle workers (it needs a session connection: not through a
            transaction-mode pooler), with a poll every --poll seconds as a fallback.

            SIGTERM or SIGINT: stop claiming, finish the batches in hand, exit 0.
            """
    )

    @Option(help: "Batches processed at once (each with its own database connection).")
    var concurrency: Int = 2
    @Option(help: "Most jobs claimed and completed together.")
    var batch: Int = 50
    @Flag(help: "Exit 0 once no job is queued, running or waiting for a retry.")
    var untilIdle = false
    @Option(help: "Name shown in `tipline status` (default host:pid).")
    var name: String?
    @Option(help: "Lease in seconds: a worker silent this long loses its jobs to the others.")
    var lease: Double = 15
    @Option(help: "Fallback poll interval in seconds when no notification arrives.")
    var poll: Double = 5
    @Option(name: .customLong("retry-base"), help: "Delay in seconds after a first failed attempt (doubles each time, with jitter).")
    var retryBase: Double = 2
    @Flag(name: .customLong("fault-injection"), help: .hidden)
    var faultInjection = false
    /// Queue-only benchmark mode (scripts/bench): complete jobs without reading the ads.
    @Flag(name: .customLong("noop"), help: .hidden)
    var noop = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var log: LogOptions

    func validate() throws {
        if !(1...256).contains(concurrency) { throw ValidationError("--concurrency must be between 1 and 256") }
        if !(1...10_000).contains(batch) { throw ValidationError("--batch must be between 1 and 10000") }
        if !(lease >= 1 && lease <= 3600) { throw ValidationError("--lease must be between 1 and 3600 seconds") }
        if !(poll > 0 && poll <= 3600) { throw ValidationError("--poll must be between 0 and 3600 seconds") }
        if !(retryBase >= 0 && retryBase <= 3600) { throw ValidationError("--retry-base must be between 0 and 3600 seconds") }
    }

    func run() async throws {
        let key = try ReporterKey.fromEnvironment()
        var options = WorkerOptions(name: name)
        options.concurrency = concurrency
        options.batchSize = batch
        options.untilIdle = untilIdle
        options.leaseSeconds = lease
        options.pollSeconds = poll
        options.retryBaseSeconds = retryBase
        options.noop = noop
        options.faultInjection = faultInjection || ProcessInfo.processInfo.environment["TIPLINE_FAULT_INJECTION"] == "1"
        let logger = log.logger("tipline.worker")
        // A worker stopped mid-transaction (SIGSTOP, a partition) must not hold row locks forever:
        // PostgreSQL ends such a session and the jobs are rescued once their lease runs out.
        let idleTimeout = String(Int(max(lease * 2, 5) * 1000))
        let settings = [("idle_in_transaction_session_timeout", idleTimeout)]
        try await connection.withDatabase(
            application: "tipline-worker", maxConnections: concurrency + 1, settings: settings
        ) { database in
            let worker = Worker(database: database, listenConfig: connection.config(application: "tipline-listen"),
                                options: options, logger: logger, prepare: { try await key.verify(against: $0) })
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            try await group.run()
        }
    }
}
