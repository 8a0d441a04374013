import Foundation
public import Logging
public import Postgres
public import ServiceLifecycle
import Metrics
import Synchronization
import TiplineCore
public import TiplineStore

/// A worker process: lanes that claim, process and complete batches; a heartbeat that keeps their
/// leases and rescues jobs whose workers went silent; a LISTEN session that wakes idle lanes.
///
/// A notification that finds a lane idle is answered on the LISTEN session itself, on behalf of
/// that lane: the session that delivered it is awake and its thread is running, so the claim, the
/// reading and the completion start at once, without handing the work to another thread and
/// waking another session (about 0.45 ms of the 2-2.5 ms from a submit's commit to its outcome's,
/// measured at 50 reports/s). A busy worker's lanes take notifications as before.
///
/// On graceful shutdown (SIGTERM/SIGINT through `ServiceGroup`) lanes stop claiming, finish the
/// batch in hand, release anything left, and `run()` returns.
public final class Worker: Service, Sendable {
    /// The options it runs with.
    public let options: WorkerOptions
    /// This process's lease identity.
    public let lease: Lease
    private let database: Database
    private let queue: Queue
    private let listenConfig: ConnectionConfig
    private let logger: Logger
    private let doorbell = Doorbell()
    private let stopping = Atomic<Bool>(false)
    private let inFlight = Atomic<Int>(0)
    /// The jobs this process holds right now, by report id, with how many of its batches hold each
    /// (a job one batch recorded as failed may be claimed again by another before the first batch
    /// is finished); only these get their leases extended.
    private let held = Mutex<[Int64: Int]>([:])
    /// The LISTEN session's listener, once started (`foundReadOnly`).
    private let listening = Mutex<NotificationListener?>(nil)
    /// Claims under way whose jobs are not in `held` yet: the heartbeat's `endStrayLeases` waits
    /// for none to be left (and none starts meanwhile, `sweeping`) before it reads `held`.
    private let claiming = Atomic<Int>(0)
    /// Set while the heartbeat ends the leases of this worker's jobs that no lane holds: no claim starts.
    private let sweeping = Atomic<Bool>(false)
    /// When the retries this worker recorded become ready to claim (see `idleWait`).
    private let retriesDue = Mutex<[ContinuousClock.Instant]>([])
    private let processed = Atomic<Int>(0)
    /// Jobs this worker let go of without a word to the database (a completion or a failure that
    /// could not reach it, a claim that may have committed though its answer was lost).
    private struct Strays {
        /// Until when such a job may still be under its lease: a lease is extended only for jobs
        /// in hand, so it ends within one lease of the loss. Nil once the heartbeat ended them all.
        var until: ContinuousClock.Instant?
        /// Losses whose jobs are still in `held` (their batch is not finished yet).
        var unnoted = 0
        /// Losses noted once their jobs had left `held`, and how many of them the heartbeat has
        /// dealt with (`endStrayLeases`): it ends the leases of this worker's jobs that no lane
        /// holds, and its rescue right after takes them back.
        var noted = 0
        var ended = 0
        /// A claim whose answer was lost may still be running on the server until about then (it
        /// commits once it ends, unless the server saw the client go first): a sweep before that
        /// may not see its jobs yet, so it does not count as the last.
        var settled: ContinuousClock.Instant?
    }
    /// How long a lost claim is given to end on the server (`Strays.settled`).
    private static let lostClaimSettles = Duration.seconds(5)
    private let strays = Mutex(Strays())
    private let leftHeld = Atomic<Bool>(false)
    /// The worker's row is in `workers` (`register`).
    private let registered = Atomic<Bool>(false)
    /// The worker stopped while jobs it could not complete may still be under its lease, and it
    /// could not reach the database to give them back: they return to the queue when their leases
    /// run out. `tipline work` exits `shutdownTimedOutStatus` then, not 0, which says every batch
    /// in hand was finished.
    public var leftJobsToLeases: Bool { leftHeld.load(ordering: .relaxed) }
    /// Set while one lane makes room for, claims and processes a job whose last worker died
    /// (`solo`): no other claim starts, in any lane or on the listening session.
    private let isolating = Atomic<Bool>(false)
    /// Claims under way and batches in hand, of the lanes and the listening session: the lane that
    /// isolates waits for none to be left before it claims a solo job.
    private let busy = Atomic<Int>(0)
    /// A solo job may be waiting (the heartbeat says so; true at start, for jobs of a worker that
    /// crashed before this one started): the next lane free makes room and claims it alone.
    /// Ordinary claims never take solo jobs, so without this they would wait behind any backlog.
    /// Raised by every heartbeat that sees one (`soloSeen` > `soloCleared`); lowered by the lane
    /// whose solo claim found none, to the count it read before claiming, so that a heartbeat whose
    /// rescue committed after that claim's snapshot keeps it raised (the first heartbeat runs as
    /// the lanes make their first claims).
    private let soloSeen = Atomic<Int>(1)
    private let soloCleared = Atomic<Int>(0)
    private var soloWanted: Bool {
        soloSeen.load(ordering: .sequentiallyConsistent) > soloCleared.load(ordering: .sequentiallyConsistent)
    }
    /// Armed by a shutdown request, cancelled once the worker stopped (`shutdownTimedOutStatus`).
    private let watchdog = Mutex<Task<Void, Never>?>(nil)

    /// The exit status of a worker whose shutdown did not finish within `--lease` + 10 seconds
    /// (`EX_TEMPFAIL`): a database call that never returned. Its jobs go back to the queue when
    /// their leases run out, and the fence refuses any write of theirs that arrives after.
    public static let shutdownTimedOutStatus: Int32 = 75
    private let retry: RetryPolicy
    private let metrics = WorkerMetrics()
    /// When the database was last found unreachable with no success since (nil: reachable), and
    /// the error a drain gave up with (`giveUpSeconds`).
    private let outage = Mutex<(since: ContinuousClock.Instant?, gaveUp: DrainGaveUp?)>((nil, nil))
    /// When the database last answered a call (for a drain: `watchForSilence`).
    private let lastAnswer = Mutex<ContinuousClock.Instant>(.now)

    /// Checks run once the database is reachable, before the worker registers (the schema version).
    private let prepare: @Sendable (Database) async throws -> Void

    /// Creates a worker over `database`; `listenConfig` opens its dedicated LISTEN session.
    public init(database: Database, listenConfig: ConnectionConfig, options: WorkerOptions, logger: Logger,
                prepare: @escaping @Sendable (Database) async throws -> Void = { _ in }) {
        self.prepare = prepare
        self.options = options
        self.database = database
        self.queue = Queue(database: database)
        self.listenConfig = listenConfig
        self.lease = Lease(owner: UUID(), seconds: options.leaseSeconds)
        var logger = logger
        logger[metadataKey: "worker"] = "\(options.name)"
        self.logger = logger
        self.retry = RetryPolicy(base: options.retryBaseSeconds, cap: options.retryCapSeconds)
    }

    /// Reports processed by this process so far.
    public var processedCount: Int { processed.load(ordering: .relaxed) }

    public func run() async throws {
        answered()
        let silence = options.untilIdle ? Task { await watchForSilence() } : nil
        defer { silence?.cancel() }
        // Inside the service, so that SIGTERM is already handled while the database is slow to answer:
        // a shutdown during start-up ends the wait and the worker exits cleanly without work. A call
        // blocked on a server that accepts connections but never answers cannot be cancelled (libpq
        // waits for its connect_timeout, by default for ever): it is left behind, as the process exits.
        do {
            let started: Bool? = try await unlessFirst({ try? await gracefulShutdown() }) {
                try await cancelWhenGracefulShutdown { try await self.register() }
                return true
            }
            guard started != nil else { throw CancellationError() }
        } catch is CancellationError {
            // A registration left behind does not retry, and one that gets through deregisters.
            stopping.store(true, ordering: .sequentiallyConsistent)
            logger.info("the worker stopped before it started (a shutdown was requested, or another part of the process failed)")
            if registered.load(ordering: .sequentiallyConsistent) {
                _ = try? await withDeadline(.seconds(5)) { await self.deregister() }
            }
            return
        }
        if Task.isShuttingDownGracefully {
            _ = await deregister()
            return
        }
        let listener = NotificationListener(config: listenConfig, channels: [Queue.jobsChannel], answer: { [self] connection in
            try answer(on: connection)
        }) { [doorbell, logger] event in
            switch event {
            case .notification:
                break  // `answer` takes it, or rings for a lane
            case .reconnected:
                doorbell.ringAll()  // notifications sent while it was away are lost: every lane looks
            case .failed(let error):
                logger.warning("LISTEN session failed; reconnecting", metadata: ["error": "\(error)"])
            }
        }
        listener.start()
        listening.withLock { $0 = listener }
        let heartbeat = Task { await heartbeatLoop() }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for lane in 0..<options.concurrency {
                    group.addTask { await self.laneLoop(lane) }
                }
            }
        } onGracefulShutdown: { [self] in
            logger.info("shutdown requested: no new claims, finishing the batches in hand")
            stopping.store(true, ordering: .relaxed)
            doorbell.ringAll()
            armWatchdog()
        }
        // A batch the listening session is answering, or one it handed to the lanes' path, is
        // finished before the worker leaves (deregistering releases whatever is still held).
        await listener.stopAndWait(timeout: options.leaseSeconds)
        let deadline = ContinuousClock.now + .seconds(options.leaseSeconds)
        while inFlight.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        // The heartbeat kept the leases of the batches finished above. Its last beat is waited for
        // (within a few seconds: a database that stopped answering must not hold the exit), so that
        // it is not sent after the stop; one that is changes nothing (`Queue.heartbeat`).
        heartbeat.cancel()
        _ = try? await withDeadline(.seconds(5)) { await heartbeat.value }
        let released = await deregister()
        watchdog.withLock { $0?.cancel() }
        if let gaveUp = outage.withLock({ $0.gaveUp }) {
            let last: String = if case .failing(let error) = gaveUp.reason { "\(error)" } else { "no answer" }
            logger.error(gaveUp.isConnectionProblem ? "database unreachable for too long; the drain gives up"
                                                    : "claims failed for too long; the drain gives up",
                         metadata: ["error": "\(last)"])
            throw gaveUp
        }
        let now = ContinuousClock.now
        if !released, let until = strays.withLock({ $0.until }), until > now {
            leftHeld.store(true, ordering: .relaxed)
            let seconds = Int((until - now).components.seconds) + 1
            logger.error("stopped with jobs it could not give back (the database is unreachable); they go back to the queue when their leases run out",
                         metadata: ["within": "\(seconds)s", "status": "\(Self.shutdownTimedOutStatus)"])
        }
        logger.info("worker stopped", metadata: ["processed": "\(processedCount)"])
    }

    /// Notes a connection problem or a failed claim. A drain (`--until-idle`) that has not claimed
    /// from the database for `giveUpSeconds` stops: no new claims, and `run` throws once the batches
    /// in hand are done with. The error it gives up with, once it does.
    private func unreachable(_ error: PostgresError) -> DrainGaveUp? {
        guard options.untilIdle else { return nil }
        answered()  // a refusal or an error is an answer: this outage is counted here, not as silence
        let now = ContinuousClock.now
        let gaveUp = outage.withLock { outage -> DrainGaveUp? in
            let since = outage.since ?? now
            outage.since = since
            if outage.gaveUp == nil, now - since >= .seconds(options.giveUpSeconds) {
                outage.gaveUp = DrainGaveUp(seconds: options.giveUpSeconds, reason: .failing(error))
            }
            return outage.gaveUp
        }
        if gaveUp != nil {
            stopping.store(true, ordering: .relaxed)
            doorbell.ringAll()
        }
        return gaveUp
    }

    /// Notes that the database answered a claim: an outage, if any, is over.
    private func reachable() {
        guard options.untilIdle else { return }
        answered()
        outage.withLock { $0.since = nil }
    }

    /// Notes that the database answered a call, whatever the answer (`watchForSilence`).
    private func answered() {
        guard options.untilIdle else { return }
        let now = ContinuousClock.now
        lastAnswer.withLock { $0 = now }
    }

    /// A drain's guard against a database that stops answering without a word (a server stopped
    /// by SIGSTOP, a network that drops packets): its calls neither return nor fail, so no outage
    /// is ever counted, and the drain would wait for ever. Once nothing has answered for two
    /// seconds, it asks the server a trivial question and waits `giveUpSeconds` for its answer
    /// (however long the silence before, so that a short limit on a loaded machine still gives it
    /// that long); when none comes, and nothing else answered meanwhile, the drain gives up at once
    /// with exit status 1: the calls it waits on cannot be interrupted. Its jobs go back to the queue when
    /// their leases run out. A server that turns connections away is an outage, counted as before.
    private func watchForSilence() async {
        // A connection of its own: the lanes' pool may be busy, or held by calls that never return.
        let probe = Database(config: database.config, maxConnections: 1)
        await watchForSilence(probing: probe)
        _ = await probe.shutdown(waitingAtMost: .seconds(1))
    }

    private func watchForSilence(probing probe: Database) async {
        let limit = Duration.seconds(options.giveUpSeconds)
        while !Task.isCancelled {
            guard (try? await Task.sleep(for: .seconds(1))) != nil else { return }
            let last = lastAnswer.withLock { $0 }
            guard ContinuousClock.now - last >= .seconds(2) else { continue }
            guard await !isSilent(probe, for: limit, since: last) else { break }
        }
        guard !Task.isCancelled else { return }
        if Task.isShuttingDownGracefully {
            // A shutdown asked for by a signal would wait for its bound (`armWatchdog`: the lease and
            // ten seconds) for calls that the silence shows will not return: it ends now, as there.
            logger.critical("shutdown cannot finish: the database has not answered for \(limit.components.seconds) s; exiting now, and the jobs still held go back to the queue when their leases run out",
                            metadata: ["status": "\(Self.shutdownTimedOutStatus)"])
            exit(Self.shutdownTimedOutStatus)
        }
        let gaveUp = DrainGaveUp(seconds: options.giveUpSeconds, reason: .silent)
        logger.critical("\(gaveUp)", metadata: ["status": "1"])
        exit(1)
    }

    /// Asks `probe` a trivial question, again and again, for `limit`: true when neither it nor any
    /// other call (`lastAnswer` past `last`) was answered by the server in that time. A connection
    /// that could not be made is no answer (libpq's `connect_timeout` to a silent server ends
    /// before a long limit does); the server's own error is one.
    private func isSilent(_ probe: Database, for limit: Duration, since last: ContinuousClock.Instant) async -> Bool {
        let start = ContinuousClock.now
        while !Task.isCancelled {
            let left = limit - (ContinuousClock.now - start)
            guard left > .zero else { break }
            do {
                _ = try await DatabaseDeadline.within(left) { try await probe.execute("SELECT 1") }
                answered()
                return false
            } catch is DatabaseDeadlinePassed {
                break
            } catch let error as PostgresError where !error.isConnectionProblem {
                answered()  // the server answered, with an error
                return false
            } catch {
                if lastAnswer.withLock({ $0 }) > last { return false }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        return !Task.isCancelled && lastAnswer.withLock { $0 } <= last
    }

    /// A lane blocked in a database call that never returns (a hung server, a network that drops
    /// packets without a word, a lock held elsewhere for good) would hold the shutdown forever:
    /// libpq has no timeout of its own there. After a lease and ten seconds more, the process exits.
    private func armWatchdog() {
        let seconds = options.leaseSeconds + 10
        let logger = logger
        watchdog.withLock { watchdog in
            guard watchdog == nil else { return }
            watchdog = Task.detached {
                do { try await Task.sleep(for: .seconds(seconds)) } catch { return }  // the worker stopped in time
                logger.critical("shutdown did not finish: a database call has not returned; exiting now, and the jobs still held go back to the queue when their leases run out",
                                metadata: ["waited": "\(seconds)s", "status": "\(Self.shutdownTimedOutStatus)"])
                exit(Self.shutdownTimedOutStatus)
            }
        }
    }

    // MARK: - Lanes

    private func laneLoop(_ lane: Int) async {
        var backoff = 0.1
        while !stopping.load(ordering: .relaxed), !Task.isCancelled {
            let seen = doorbell.rings
            // Set when this lane holds `isolating` (and counts in `busy`) until the end of this turn.
            var isolated = false
            do {
                if isolating.load(ordering: .sequentiallyConsistent) || sweeping.load(ordering: .sequentiallyConsistent) {
                    await doorbell.wait(after: seen, timeout: 0.2)
                    continue
                }
                // Read before the claim (and its snapshot): a later heartbeat's sighting outlives it.
                let soloSeenBefore = soloSeen.load(ordering: .sequentiallyConsistent)
                if soloWanted,
                   isolating.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
                    // Make room: no claim starts now, and the batches in hand finish first.
                    isolated = true
                    while busy.load(ordering: .sequentiallyConsistent) > 0, !stopping.load(ordering: .relaxed) {
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                    if stopping.load(ordering: .relaxed) {
                        isolating.store(false, ordering: .sequentiallyConsistent)
                        continue
                    }
                    busy.add(1, ordering: .sequentiallyConsistent)
                    // A sweep of stray leases is short: wait it out.
                    var entered = enterClaiming()
                    while !entered, !stopping.load(ordering: .relaxed) {
                        try? await Task.sleep(for: .milliseconds(5))
                        entered = enterClaiming()
                    }
                    guard entered else {
                        leave(isolated: true)
                        continue
                    }
                } else if !enterClaim() {
                    continue  // a lane began isolating, or the heartbeat sweeping, meanwhile
                }
                let jobs: [ClaimedJob]
                let claimStart = ContinuousClock.now
                do {
                    jobs = try await queue.claim(limit: options.batchSize, lease: lease, includeSolo: isolated)
                    try injectLostClaimIfAsked(jobs)
                } catch {
                    claimFailed(error)
                    leave(isolated: isolated)
                    throw error
                }
                began(jobs)
                let claimed = ContinuousClock.now
                metrics.claimLatency.record(duration: claimed - claimStart)
                backoff = 0.1
                reachable()
                let solo = jobs.contains(where: \.solo)
                if isolated, !solo {
                    // No solo job was ready: an ordinary batch (or none), and no more isolating until
                    // the heartbeat sees one waiting.
                    soloCleared.store(soloSeenBefore, ordering: .sequentiallyConsistent)
                    isolating.store(false, ordering: .sequentiallyConsistent)
                    isolated = false
                    doorbell.ringAll()
                }
                if jobs.isEmpty {
                    leave(isolated: isolated)
                    // A batch still in flight in this process is a job not finished: no need to ask
                    // (the question scans `jobs`, full of dead rows at the end of a drain).
                    if options.untilIdle, inFlight.load(ordering: .relaxed) == 0, try await queue.isIdle() {
                        stopping.store(true, ordering: .relaxed)
                        doorbell.ringAll()
                        return
                    }
                    await doorbell.wait(after: seen, timeout: idleWait(lane))
                    continue
                }
                // A full batch suggests more is waiting: wake the idle lanes.
                if jobs.count == options.batchSize, !isolated { doorbell.ring() }
                let lost = await process(jobs)
                finished(jobs, claimedAt: claimed, lettingGo: lost)
                leave(isolated: isolated)
                if isolated {
                    // Another solo job may be waiting: the next lane free isolates again.
                    doorbell.ringAll()
                } else if jobs.count < options.batchSize, !options.untilIdle {
                    // The claim took everything ready then: a job that arrived since has rung the
                    // bell (`seen` is from before the claim), so wait for it instead of claiming
                    // nothing at once (half of all claims at a trickle).
                    await doorbell.wait(after: seen, timeout: idleWait(lane))
                }
            } catch {
                // A drain gives up on claims that keep failing for any reason (a read-only server
                // after a failover that did not finish, a revoked grant), as on an outage.
                if let error = error as? PostgresError, unreachable(error) != nil { return }
                foundReadOnly(error)
                metrics.claimErrors.increment()
                logger.warning("claim failed; backing off", metadata: ["error": "\(error)", "lane": "\(lane)"])
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(backoff * 2, 5)
            }
        }
    }

    /// Answers a notification on the listening session (its thread, its connection): when a lane
    /// is idle, claims a batch (never a job claimed alone after a crash: those are the lanes'),
    /// reads it and completes it there. Otherwise, or when the claim was full (more may be waiting),
    /// it rings for a lane. A batch whose completion fails, or one carrying fault-injection markers,
    /// goes the lanes' way (`process`: retries, then job by job); a connection error is rethrown
    /// after that, so that the listener reconnects. (The idle lane may wake on its poll timer
    /// meanwhile: then one batch more than `--concurrency` is in flight for a moment, on the
    /// listening session's own connection.)
    private func answer(on connection: Connection) throws {
        guard !stopping.load(ordering: .relaxed), doorbell.hasWaiters, enterClaim() else {
            doorbell.ring()
            return
        }
        let claimStart = ContinuousClock.now
        let jobs: [ClaimedJob]
        do {
            jobs = try Queue.claim(limit: options.batchSize, lease: lease, includeSolo: false, on: connection)
            try injectLostClaimIfAsked(jobs)
        } catch {
            claimFailed(error)
            metrics.claimErrors.increment()
            leave(isolated: false)
            doorbell.ring()  // nothing was claimed: a lane takes the notification
            throw error
        }
        let claimed = ContinuousClock.now
        metrics.claimLatency.record(duration: claimed - claimStart)
        answered()
        began(jobs)
        guard !jobs.isEmpty else {
            leave(isolated: false)
            return
        }
        if jobs.count == options.batchSize { doorbell.ring() }
        var failure: (any Error)?
        var left = jobs  // not yet completed: a part that fails leaves them to the lanes' path
        if !options.faultInjection || !jobs.contains(where: { FaultMarker.isMarked($0.body) }) {
            do {
                for part in Queue.completionParts(jobs.map { ProcessedReport(job: $0, analysis: analyze($0)) }) {
                    record(try Queue.complete(part, lease: lease, using: connection))
                    answered()
                    left.removeFirst(part.count)
                }
                finished(jobs, claimedAt: claimed, lettingGo: 0)
                leave(isolated: false)
                return
            } catch {
                failure = error
            }
        }
        Task { [left] in
            let lost = await process(left)
            finished(jobs, claimedAt: claimed, lettingGo: lost)
            leave(isolated: false)
        }
        if let failure = failure as? PostgresError, failure.isConnectionProblem { throw failure }
    }

    /// Counts a claim about to start in `busy` and `claiming`, unless a lane is isolating or the
    /// heartbeat sweeping (then nothing starts). Counted first and checked after, so that the
    /// isolating lane and the heartbeat, which set their flags first and then wait for the counts
    /// to empty, see every claim that did not see their flag.
    private func enterClaim() -> Bool {
        busy.add(1, ordering: .sequentiallyConsistent)
        guard !isolating.load(ordering: .sequentiallyConsistent), enterClaiming() else {
            busy.subtract(1, ordering: .sequentiallyConsistent)
            return false
        }
        return true
    }

    /// Counts a claim about to start in `claiming`, unless the heartbeat is sweeping stray leases.
    private func enterClaiming() -> Bool {
        claiming.add(1, ordering: .sequentiallyConsistent)
        guard !sweeping.load(ordering: .sequentiallyConsistent) else {
            claiming.subtract(1, ordering: .sequentiallyConsistent)
            return false
        }
        return true
    }

    /// A claim failed. One whose answer was lost (not one that never reached the server) may have
    /// committed: its jobs are under this worker's lease, in no lane's hands.
    private func claimFailed(_ error: any Error) {
        claiming.subtract(1, ordering: .sequentiallyConsistent)
        if let error = error as? PostgresError, error.code == .connectionLost { letGo(stillHeld: false) }
    }

    /// The end of a claim and of its batch, if any: out of `busy`, and out of isolation for the
    /// lane that isolated.
    private func leave(isolated: Bool) {
        busy.subtract(1, ordering: .sequentiallyConsistent)
        if isolated { isolating.store(false, ordering: .sequentiallyConsistent) }
    }

    /// Bookkeeping once a claim returns: counters, the jobs whose leases the heartbeat extends,
    /// and the claim out of `claiming`.
    private func began(_ jobs: [ClaimedJob]) {
        defer { claiming.subtract(1, ordering: .sequentiallyConsistent) }
        guard !jobs.isEmpty else { return }
        metrics.claimed.increment(by: jobs.count)
        metrics.batchSize.record(jobs.count)
        for job in jobs { metrics.queueLag.recordSeconds(job.waitedSeconds) }
        metrics.inFlight.record(inFlight.add(jobs.count, ordering: .relaxed).newValue)
        held.withLock { held in for job in jobs { held[job.reportID, default: 0] += 1 } }
    }

    /// Bookkeeping once a batch is done with, whatever became of it. `lettingGo`: how many times
    /// it let jobs go (`letGo(stillHeld: true)`): they wait for the heartbeat, now that they are
    /// out of `held` (`endStrayLeases`).
    private func finished(_ jobs: [ClaimedJob], claimedAt claimed: ContinuousClock.Instant, lettingGo: Int) {
        metrics.processingLatency.record(duration: ContinuousClock.now - claimed)
        held.withLock { held in
            for job in jobs {
                if let count = held[job.reportID], count > 1 { held[job.reportID] = count - 1 } else { held[job.reportID] = nil }
            }
        }
        metrics.inFlight.record(inFlight.subtract(jobs.count, ordering: .relaxed).newValue)
        if lettingGo > 0 {
            // Their leases were extended while the batch held them: one more lease from now.
            let until = ContinuousClock.now + .seconds(options.leaseSeconds)
            strays.withLock { strays in
                strays.unnoted -= lettingGo
                strays.noted += 1
                strays.until = max(strays.until ?? until, until)
            }
        }
    }

    /// What the domain reads in a report (nothing with `--noop`).
    private func analyze(_ job: ClaimedJob) -> Analysis {
        options.noop ? Self.emptyAnalysis : Analysis(text: job.body)
    }

    /// How long an idle lane waits for the bell before it claims anyway. Lane 0 is the polling
    /// fallback (jobs whose retry time came, rescued jobs); the others rely on the bell and poll rarely.
    /// A retry this worker recorded shortens the wait to its time; one whose time has come ends
    /// it at once (and is forgotten: the claim that follows finds it ready).
    private func idleWait(_ lane: Int) -> Double {
        let poll = options.untilIdle ? min(options.pollSeconds, 0.5) : (lane == 0 ? options.pollSeconds : options.pollSeconds * 6)
        let now = ContinuousClock.now
        let next = retriesDue.withLock { due -> ContinuousClock.Instant? in
            guard !due.isEmpty else { return nil }
            if due.contains(where: { $0 <= now }) {
                due.removeAll { $0 <= now }
                return now
            }
            return due.min()
        }
        guard let next else { return poll }
        return min(poll, max(0, (next - now) / .seconds(1)))
    }

    /// Reads every ad, then completes the batch in one transaction (in parts, for ads with
    /// thousands of contacts: `Queue.completionParts`). A part that fails as a whole is retried job
    /// by job, so one bad report only costs its own attempt. Returns how many times it let jobs go
    /// without a word to the database (it could not reach it, `letGo`): their leases end at the
    /// next heartbeat once the batch is out of `held` (`finished`).
    private func process(_ jobs: [ClaimedJob]) async -> Int {
        var lost = 0
        var ready: [ProcessedReport] = []
        for job in jobs {
            do {
                try injectFaultIfAsked(job)
                ready.append(ProcessedReport(job: job, analysis: analyze(job)))
            } catch {
                if await !recordFailure(job, error: "\(error)") { lost += 1 }
            }
        }
        guard !ready.isEmpty else { return lost }
        if options.faultInjection, let pause = ready.compactMap({ FaultMarker.pause(in: $0.job.body) }).max() {
            try? await Task.sleep(for: .seconds(pause))
        }
        if options.faultInjection, let release = options.faultReleaseFile, ready.contains(where: { $0.job.body.contains(FaultMarker.held) }) {
            await FaultMarker.waitForRelease(release) { self.stopping.load(ordering: .relaxed) }
        }
        var given = 0  // reports of the parts before this one
        for part in Queue.completionParts(ready) {
            defer { given += part.count }
            do {
                try await completeWithRetry(part)
            } catch let error as PostgresError where error.isConnectionProblem {
                logger.warning("database unreachable while completing; the jobs go back to the queue once it answers (or when their leases run out)",
                               metadata: ["error": "\(error)", "count": "\(ready.count - given)"])
                // This part and the ones after it stay under this worker's lease, until the
                // heartbeat ends it.
                letGo(stillHeld: true)
                return lost + 1
            } catch {
                guard part.count > 1 else {
                    if await !recordFailure(part[0].job, error: "\(error)") { lost += 1 }
                    continue
                }
                logger.warning("batch failed; completing its jobs one by one", metadata: ["error": "\(error)"])
                for report in part {
                    do {
                        try await completeWithRetry([report])
                    } catch let error as PostgresError where error.isConnectionProblem {
                        letGo(stillHeld: true)
                        lost += 1
                    } catch {
                        if await !recordFailure(report.job, error: "\(error)") { lost += 1 }
                    }
                }
            }
        }
        return lost
    }

    /// What `--noop` records for every job: no contacts, so the completion writes only the outcome
    /// and deletes the job.
    private static let emptyAnalysis = Analysis(text: "")

    private func completeWithRetry(_ batch: [ProcessedReport]) async throws {
        var attempt = 0
        var delay = 0.05
        while true {
            attempt += 1
            do {
                var done = try await queue.complete(batch, lease: lease, whileLocked: frozenWhileLocked(batch))
                answered()
                if !done.refused.isEmpty {
                    // An attempt before (a retry here, or the listening session's) may have committed
                    // as its connection broke. Checked only for refused reports, which are rare.
                    let earlier = Set(try await queue.completedEarlier(batch, refused: done.refused))
                    if !earlier.isEmpty {
                        logger.info("completed by the attempt whose connection broke during its commit",
                                    metadata: ["count": "\(earlier.count)"])
                        done.completed += done.refused.filter { earlier.contains($0) }
                        done.refused.removeAll { earlier.contains($0) }
                    }
                }
                record(done)
                return
            } catch let error as PostgresError where error.isTransient && attempt < 8 {
                // Deadlocks and serialization failures roll back whole; a lost connection is retried
                // after reconnecting. Either way the fence makes the retry safe.
                logger.debug("completion retried", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                try await Task.sleep(for: .seconds(delay * Double.random(in: 0.5..<1.5)))
                delay = min(delay * 2, 2)
            }
        }
    }

    /// With fault injection, for a batch holding `FaultMarker.locked`: a wait for the release file
    /// inside the completion's transaction, its sellers locked.
    private func frozenWhileLocked(_ batch: [ProcessedReport]) -> (@Sendable () -> Void)? {
        guard options.faultInjection, let release = options.faultReleaseFile,
              batch.contains(where: { $0.job.body.contains(FaultMarker.locked) }) else { return nil }
        return { FaultMarker.blockUntilReleased(release) { self.stopping.load(ordering: .relaxed) } }
    }

    /// Counts a completion, and warns about reports whose lease was lost.
    private func record(_ done: Completion) {
        processed.add(done.completed.count, ordering: .relaxed)
        metrics.completed.increment(by: done.completed.count)
        metrics.refused.increment(by: done.refused.count)
        if !done.refused.isEmpty {
            logger.warning("lease lost before completion; results discarded", metadata: [
                "count": "\(done.refused.count)", "reports": "\(done.refused.prefix(10))\(done.refused.count > 10 ? "..." : "")",
            ])
        }
    }

    /// Records a failed attempt (a retry, or dead). False when it could not reach the database:
    /// the job waits for the heartbeat to end its lease (`process`).
    private func recordFailure(_ job: ClaimedJob, error: String) async -> Bool {
        let delay = retry.delay(afterAttempt: job.attempt, unit: Double.random(in: 0..<1))
        do {
            let kept = try await queue.fail(job, error: error, retryDelay: delay, lease: lease)
            answered()
            let final = job.attempt >= job.maxAttempts
            if kept, !final {
                // Nothing announces a retry whose time has come: an idle lane wakes for it then,
                // instead of at the next poll (every --poll seconds, a retry base of 0.2 s waited 5).
                // Just after the time the database recorded (its now() was before this returned).
                let due = ContinuousClock.now + .seconds(delay + 0.02)
                retriesDue.withLock { times in
                    times.append(due)
                    // A busy worker does not idle to forget past times: bounded here (a retry left
                    // out is found by the next poll, as before).
                    if times.count > 1024 {
                        let now = ContinuousClock.now
                        times.removeAll { $0 <= now }
                        if times.count > 1024 { times = Array(times.sorted().prefix(1024)) }
                    }
                }
            }
            if kept { (final ? metrics.dead : metrics.retried).increment() } else { metrics.refused.increment() }
            logger.warning(final ? "job is dead" : "job failed; will retry", metadata: [
                "report": "\(job.reportID)", "attempt": "\(job.attempt)", "error": "\(error.prefix(200))",
                "fenced": "\(!kept)",
            ])
            return true
        } catch {
            letGo(stillHeld: true)
            logger.warning("could not record a failure; the job will be retried once the database answers (or when its lease runs out)",
                           metadata: ["report": "\(job.reportID)", "error": "\(error)"])
            return false
        }
    }

    /// Test-only fault injection, off unless `--fault-injection` / TIPLINE_FAULT_INJECTION=1.
    private func injectFaultIfAsked(_ job: ClaimedJob) throws {
        guard options.faultInjection else { return }
        if job.body.contains(FaultMarker.crash) {
            logger.critical("fault injection: crashing on request", metadata: ["report": "\(job.reportID)"])
            kill(getpid(), SIGKILL)
        }
        if job.body.contains(FaultMarker.fail) {
            throw TiplineError(.invalidInput, "fault injection: this report always fails")
        }
        if job.attempt == 1, job.body.contains(FaultMarker.failFirst) {
            throw TiplineError(.invalidInput, "fault injection: this report fails its first attempt")
        }
    }

    /// Test-only: a claim holding `FaultMarker.lostClaim` at its first attempt acts as if its
    /// answer were lost after it committed.
    private func injectLostClaimIfAsked(_ jobs: [ClaimedJob]) throws {
        guard options.faultInjection, jobs.contains(where: { $0.attempt == 1 && $0.body.contains(FaultMarker.lostClaim) }) else { return }
        logger.critical("fault injection: dropping a claim's answer", metadata: ["count": "\(jobs.count)"])
        throw PostgresError(code: .connectionLost, message: "fault injection: the claim's answer was lost")
    }

    // MARK: - Heartbeat, rescue, registry

    private func heartbeatLoop() async {
        var lastFold = ContinuousClock.now - .seconds(3600)
        // The first beat at once, the wait after each: jobs whose lease ran out while no worker was
        // live go back to the queue now, not a third of this worker's lease later (200 s with --lease 600).
        while !Task.isCancelled {
            var more = false  // a rescue took all it may, or stray leases were just ended
            var beat = false
            do {
                let rescued = try await queue.heartbeat(lease: lease, holding: held.withLock { Array($0.keys) }, processed: processedCount)
                answered()
                metrics.lastHeartbeat.record(Date().timeIntervalSince1970)
                if rescued.soloWaiting { soloSeen.add(1, ordering: .sequentiallyConsistent) }
                metrics.rescuedRetried.increment(by: rescued.retried)
                metrics.rescuedDead.increment(by: rescued.dead)
                more = rescued.retried + rescued.dead >= Queue.rescueLimit
                if rescued.retried + rescued.dead > 0 {
                    logger.notice("rescued jobs whose lease ran out",
                                  metadata: ["retried": "\(rescued.retried)", "dead": "\(rescued.dead)"])
                    doorbell.ringAll()
                }
                beat = true
            } catch {
                foundReadOnly(error)
                metrics.heartbeatErrors.increment()
                logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
            }
            // Once the database answers the beat (on a connection it just used), jobs this worker let
            // go of get their leases ended, and the beat right after rescues them.
            if beat {
                do {
                    if try await endStrayLeases() { more = true }
                } catch {
                    logger.warning("could not end the leases of the jobs this worker could not finish", metadata: ["error": "\(error)"])
                }
            }
            // Every ten minutes, fold old completion counters into one row per day.
            if ContinuousClock.now - lastFold > .seconds(600) {
                lastFold = .now
                do {
                    try await queue.foldTallies()
                } catch {
                    logger.warning("folding old completion counters failed", metadata: ["error": "\(error)"])
                }
            }
            // The next beat, or within a second once jobs were let go (`strays`); at once after a
            // rescue that took as many as it may, or once stray leases were ended.
            if more { continue }
            let next = ContinuousClock.now + .seconds(options.heartbeatSeconds)
            repeat {
                try? await Task.sleep(for: .seconds(min(1, options.heartbeatSeconds)))
            } while ContinuousClock.now < next && !strays.withLock({ $0.noted > $0.ended }) && !Task.isCancelled
        }
    }

    private func register() async throws {
        var backoff = 0.2
        while true {
            do {
                try await prepare(database)
                // ON CONFLICT: an attempt whose connection broke after its commit left the row.
                try await database.execute("""
                    INSERT INTO workers (id, name, host, pid, concurrency, batch_size, lease_seconds)
                    VALUES (\(lease.owner.uuidString), \(options.name), \(ProcessInfo.processInfo.hostName),
                            \(Int(ProcessInfo.processInfo.processIdentifier)), \(options.concurrency), \(options.batchSize), \(options.leaseSeconds))
                    ON CONFLICT (id) DO NOTHING
                    """)
                registered.store(true, ordering: .sequentiallyConsistent)
                if stopping.load(ordering: .sequentiallyConsistent) {
                    _ = await deregister()  // the start-up was given up meanwhile (`run`)
                    throw CancellationError()
                }
                reachable()
                logger.info("worker started", metadata: [
                    "concurrency": "\(options.concurrency)", "batch": "\(options.batchSize)", "lease": "\(options.leaseSeconds)s",
                ])
                await warnIfConnectionsShort()
                return
            } catch let error as PostgresError
                        where (error.isConnectionProblem || error.sqlState == .readOnlySQLTransaction) && !stopping.load(ordering: .relaxed) {
                // Invalid connection settings, or a server that turns the connection away (no such
                // database, a wrong password), are a configuration error: a drain (--until-idle)
                // stops with it, a service keeps trying in case the database is created or the
                // password fixed, saying so loudly. A server out of reach, or one that only reads
                // (a standby, a primary made read-only for a switch), is an outage: a drain counts
                // it (`--give-up-after`), a service waits for it, as claims do.
                if error.isRefusedConnection {
                    if options.untilIdle { throw error }
                    logger.error("the database refused the connection, or its settings are invalid; retrying (check --database-url, DATABASE_URL or the PG* variables)", metadata: ["error": "\(error)"])
                } else {
                    if let gaveUp = unreachable(error) { throw gaveUp }
                    logger.warning(error.isConnectionProblem ? "database unreachable; retrying"
                                       : "the database only reads (a standby, or default_transaction_read_only); retrying until it takes writes",
                                   metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: .seconds(backoff))
                backoff = min(backoff * 2, 5)
            }
        }
    }

    /// Warns when this worker's connections (one per lane, the LISTEN session and the heartbeat's)
    /// may not fit in what the server, the database or the role still allows: lanes that cannot
    /// connect retry for ever, and every other client (intake, administrators) is refused while
    /// the worker holds the rest.
    private func warnIfConnectionsShort() async {
        let needed = options.concurrency + 2
        // A superuser may use the reserved slots and is held to no database or role limit.
        guard let row = try? await database.query("""
            WITH me AS (SELECT rolsuper AS super FROM pg_roles WHERE rolname = current_user)
            SELECT min(free)::int FROM (
                SELECT current_setting('max_connections')::int
                       - CASE WHEN me.super THEN 0
                              ELSE current_setting('superuser_reserved_connections')::int
                                   + coalesce(current_setting('reserved_connections', true)::int, 0) END
                       - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS free
                  FROM me
                UNION ALL
                SELECT d.datconnlimit - (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid)
                  FROM pg_database d, me WHERE d.datname = current_database() AND d.datconnlimit >= 0 AND NOT me.super
                UNION ALL
                SELECT r.rolconnlimit - (SELECT count(*) FROM pg_stat_activity a WHERE a.usesysid = r.oid)
                  FROM pg_roles r, me WHERE r.rolname = current_user AND r.rolconnlimit >= 0 AND NOT me.super
            ) limits
            """).first,
            let free = try? row.decode(Int.self, at: 0)
        else { return }
        // The connection this asks on is already counted among those in use.
        let available = free + 1
        if needed > available {
            logger.warning(
                "this worker may need more database connections than are left: lanes that cannot connect retry, and other clients may be refused; lower --concurrency or raise the server's limits",
                metadata: ["needed": "\(needed)", "available": "\(max(available, 0))"])
        }
    }

    /// A call found the database read-only: the pool has dropped its session, and its next one may
    /// reach another host (the new primary, with `target_session_attrs=read-write`). The LISTEN
    /// session, which is not pooled, is moved too: on a server that no longer takes writes, no
    /// notification of new work comes, and wake-ups would fall back to polling (`--poll`).
    private func foundReadOnly(_ error: any Error) {
        guard (error as? PostgresError)?.sqlState == .readOnlySQLTransaction else { return }
        listening.withLock { $0 }?.reconnect()
    }

    /// Jobs were just let go of without a word to the database: their leases may run for one more
    /// lease. `stillHeld`: they are in `held` until their batch is finished (which notes them then);
    /// otherwise (a lost claim's) the next heartbeat may end them at once.
    private func letGo(stillHeld: Bool) {
        let until = ContinuousClock.now + .seconds(options.leaseSeconds)
        strays.withLock { strays in
            strays.until = max(strays.until ?? until, until)
            if stillHeld {
                strays.unnoted += 1
            } else {
                strays.noted += 1
                let settled = ContinuousClock.now + Self.lostClaimSettles
                strays.settled = max(strays.settled ?? settled, settled)
            }
        }
    }

    /// Once jobs were let go (`strays`), ends the leases of this worker's jobs that no lane holds,
    /// so that the heartbeat's rescue right after takes them back instead of leaving them to their
    /// lease (five minutes with `--lease 300`). No claim starts meanwhile, and the claims under way
    /// are waited for: a claim's jobs are in no lane's hands until it returns. A beat that cannot
    /// do so (a claim that does not return, a row still locked by a transaction the server has not
    /// ended yet, a lost claim the server may not have finished) leaves it to the next, a second
    /// later, until the leases have run out anyway. Whether it ended any.
    private func endStrayLeases() async throws -> Bool {
        let now = ContinuousClock.now
        guard let noted = strays.withLock({ strays -> Int? in
            guard strays.noted > strays.ended else { return nil }
            if let until = strays.until, until <= now {
                strays.ended = strays.noted  // run out: the rescue takes them back as it is
                return nil
            }
            return strays.noted
        }) else { return false }
        sweeping.store(true, ordering: .sequentiallyConsistent)
        defer {
            sweeping.store(false, ordering: .sequentiallyConsistent)
            doorbell.ringAll()
        }
        // Claims take milliseconds; one that does not return (a connection gone silent) is not
        // waited for long, so that the lanes are held up a fifth of a second at most.
        let deadline = ContinuousClock.now + .milliseconds(200)
        while claiming.load(ordering: .sequentiallyConsistent) > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(2))
        }
        let swept = try await queue.endStrayLeases(lease: lease, holding: held.withLock { Array($0.keys) })
        if swept.ended > 0 {
            logger.notice("ended the leases of the jobs this worker could not finish, for a rescue now", metadata: ["count": "\(swept.ended)"])
        }
        let cleared = strays.withLock { strays -> Bool in
            // A lost claim that settled before this sweep began is in its snapshot.
            guard swept.ended == swept.found, (strays.settled ?? now) <= now else { return false }
            strays.ended = max(strays.ended, noted)
            // Nothing let go since, and none waiting in a batch: no job of this worker's is stray.
            guard strays.noted == noted, strays.unnoted == 0 else { return false }
            strays.until = nil
            return true
        }
        if cleared { logger.notice("every job this worker could not finish is back in the queue") }
        return swept.ended > 0
    }

    /// Whether it reached the database: every job still held went back.
    private func deregister() async -> Bool {
        do {
            // Jobs still held (a completion that could not reach the database) go back at once
            // instead of waiting for their lease to run out.
            try await database.transaction { [lease, processedCount] tx in
                try tx.execute("""
                    UPDATE jobs SET state = 'retrying', run_at = now(), lease_owner = NULL, lease_expires_at = NULL
                     WHERE lease_owner = \(lease.owner.uuidString) AND state = 'running'
                    """)
                try tx.execute("""
                    UPDATE workers SET stopped_at = now(), in_flight = 0, heartbeat_at = now(), processed = \(processedCount)
                     WHERE id = \(lease.owner.uuidString)
                    """)
            }
            return true
        } catch {
            logger.warning("could not deregister", metadata: ["error": "\(error)"])
            return false
        }
    }
}

/// A drain (`--until-idle`) stopped because the database stayed unreachable, or its claims kept
/// failing, for `seconds`.
public struct DrainGaveUp: Error, CustomStringConvertible {
    /// Why a drain stopped trying.
    public enum Reason: Sendable {
        /// Every call failed for the limit; the last error seen (a connection problem, or the
        /// server's refusal of every claim).
        case failing(PostgresError)
        /// The database answered nothing at all for the limit: calls neither returned nor failed.
        case silent
    }

    /// The limit that ran out (`WorkerOptions.giveUpSeconds`).
    public var seconds: Double
    public var reason: Reason

    /// Whether the settings to connect with may explain it (every failure was a connection problem).
    public var isConnectionProblem: Bool {
        switch reason {
        case .failing(let last): last.isConnectionProblem
        case .silent: true
        }
    }

    public var description: String {
        let limit = seconds == seconds.rounded() ? "\(Int(seconds))" : "\(seconds)"
        switch reason {
        case .silent:
            return "the database has not answered for \(limit) s (a server that stopped, or a network that drops packets "
                + "without a word), so the drain gives up (--give-up-after); the jobs it holds go back to the queue when their leases run out"
        case .failing(let last) where last.isConnectionProblem:
            return "cannot reach the database: no connection for \(limit) s, so the drain gives up (--give-up-after); last error: \(last.message)"
        case .failing(let last):
            return "every claim failed for \(limit) s, so the drain gives up (--give-up-after); last error: \(last)"
        }
    }
}

/// Markers that make a report fail or crash its worker when fault injection is enabled.
public enum FaultMarker {
    /// Processing this report throws, every time.
    public static let fail = "[[tipline-fault:fail]]"
    /// Processing this report throws at its first attempt only.
    public static let failFirst = "[[tipline-fault:fail-first]]"
    /// Processing this report kills the worker process (SIGKILL), every time.
    public static let crash = "[[tipline-fault:crash]]"
    /// The batch holding this report waits 3 seconds between reading and completing (to stop or
    /// kill a worker while it holds a lease).
    public static let slow = "[[tipline-fault:slow]]"

    /// The batch holding this report waits before completing until the file named by
    /// `TIPLINE_FAULT_RELEASE_FILE` exists (not at all without that variable), the worker is asked
    /// to stop, or ten minutes pass: a test freezes the worker while it holds the lease, does what it needs
    /// (shuts the database, say), then releases it, however slowly the machine ran until then.
    public static let held = "[[tipline-fault:held]]"

    /// Like `held`, but the batch waits inside its completion's transaction, with its sellers locked
    /// and its new contacts inserted: a test freezes the worker there (SIGSTOP) to see what a
    /// worker frozen mid-transaction costs the others.
    public static let locked = "[[tipline-fault:locked]]"

    /// The first claim that takes this report acts as if its answer were lost once it committed:
    /// its jobs stay claimed under the worker's lease, in no lane's hands.
    public static let lostClaim = "[[tipline-fault:lost-claim]]"

    /// `waitForRelease` for a caller that may not suspend (inside a completion's transaction). It
    /// first creates `path` + `.waiting`, so that a test knows it waits there.
    static func blockUntilReleased(_ path: String, stopped: () -> Bool) {
        _ = FileManager.default.createFile(atPath: path + ".waiting", contents: nil)
        let deadline = ContinuousClock.now + holdLimit
        while !isReleased(path, before: deadline, stopped: stopped) { usleep(20_000) }
    }

    /// Waits until `path` exists, `stopped()`, the task is cancelled, or ten minutes pass (`held`).
    public static func waitForRelease(_ path: String, stopped: () -> Bool) async {
        let deadline = ContinuousClock.now + holdLimit
        while !isReleased(path, before: deadline, stopped: stopped), !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The longest a marked batch is held.
    private static let holdLimit = Duration.seconds(600)

    /// Whether a hold is over: `path` exists, `stopped()`, or `deadline` has passed.
    private static func isReleased(_ path: String, before deadline: ContinuousClock.Instant, stopped: () -> Bool) -> Bool {
        FileManager.default.fileExists(atPath: path) || stopped() || ContinuousClock.now >= deadline
    }

    /// How long a batch holding `body` waits before completing: 3 s for `slow`.
    static func pause(in body: String) -> Int? {
        body.contains(slow) ? 3 : nil
    }

    /// True when `body` carries any of the markers.
    static func isMarked(_ body: String) -> Bool {
        body.contains("[[tipline-fault:")
    }
}
