import Foundation
import Postgres
import Testing
import TiplineCore
import TiplineStore
import TiplineWorker

/// Real `tipline work` processes, real signals, one real PostgreSQL.
@Suite("worker processes", .serialized)
struct WorkerProcessTests {
    static let key = try! ReporterKey(secret: ProcessInfo.processInfo.environment["TIPLINE_REPORTER_KEY"] ?? "test-reporter-key-0123456789abcdef")

    static func submit(_ scenario: Scenario, to db: TestDatabase) async throws {
        let intake = Intake(database: db.database, hasher: try await key.verify(against: db.database))
        let inputs = scenario.inputs()
        for start in stride(from: 0, to: inputs.count, by: 2000) {
            _ = try await intake.submit(Array(inputs[start..<min(start + 2000, inputs.count)]), source: "test")
        }
    }

    /// A worker process on `db` (through `url` instead, when given).
    static func worker(_ db: TestDatabase, _ extra: [String] = [], name: String, environment: [String: String] = [:],
                       url: String? = nil) throws -> TiplineProcess {
        try TiplineProcess(["work", "--name", name, "--log-level", "notice"] + extra, databaseURL: url ?? db.url, environment: environment)
    }

    @Test("two worker processes drain 10,000 reports, each applied exactly once")
    func twoWorkersDrainTenThousand() async throws {
        try await TestDatabase.with { db in
            let scenario = Scenario.make(count: 10_000, sellers: 600, seed: 42)
            try await Self.submit(scenario, to: db)
            // Both start-ups are held until both processes are up, then let go together: a second
            // process a loaded machine started seconds late could find the queue drained already.
            let release = FaultRelease()
            let workers = try (1...2).map {
                try Self.worker(db, ["--until-idle", "--concurrency", "2", "--batch", "50", "--fault-injection"], name: "w\($0)",
                                environment: release.startHeldEnvironment)
            }
            for worker in workers { try worker.start() }
            for worker in workers { try await worker.waitUntilCatching(SIGTERM) }
            release.open()
            for worker in workers {
                let status = try await worker.wait(timeout: 600)
                #expect(status == .exit(0), "worker stderr: \(worker.stderr.suffix(2000))")
            }
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
            // Both processes did part of the work.
            let perWorker = try await db.database.query("SELECT name, processed FROM workers ORDER BY name")
            #expect(perWorker.count == 2)
            #expect(try perWorker.allSatisfy { try $0.decode(Int.self, at: 1) > 0 }, "one worker did nothing")
        }
    }

    @Test("ads listing thousands of numbers each are completed in parts, all of them, into one seller")
    func manyContactsCompleteInParts() async throws {
        try await TestDatabase.with { db in
            // Twelve ads of 2,500 numbers, each sharing one with the one before: 30,000 contacts in a
            // batch of twelve, over the 10,000 one completion takes.
            let texts = (0..<12).map { ad in (0...2_500).map { "QQ\(30_000_000 + ad * 2_500 + $0)" }.joined(separator: " ") }
            _ = try await QueueTests.submit(texts, to: db)
            let drain = try await TiplineProcess.run(["work", "--until-idle", "--concurrency", "1", "--batch", "50"], databaseURL: db.url)
            #expect(drain.status == .exit(0), "\(drain.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 12)
            #expect(try await db.int("SELECT count(*) FROM contacts") == 30_001)
            #expect(try await db.int("SELECT count(*) FROM offenders WHERE merged_into IS NULL") == 1)
            #expect(try await db.int("SELECT count(*) FROM contacts c JOIN offenders o ON o.id = c.offender_id WHERE o.merged_into IS NULL") == 30_001)
        }
    }

    @Test("a stopped worker's jobs are rescued after its lease, and its late completion is refused")
    func stoppedWorkerIsFencedOut() async throws {
        try await TestDatabase.with { db in
            // It holds its batch until released (however slowly the machine runs, it is frozen there);
            // the rescuer, given no release file, does not hold.
            let scenario = Scenario.make(count: 40, sellers: 10, seed: 7) { $0 == 0 ? " " + FaultMarker.held : "" }
            try await Self.submit(scenario, to: db)
            let faults = ["--fault-injection", "--lease", "2", "--batch", "100", "--concurrency", "1"]
            let release = FaultRelease()
            let stalled = try Self.worker(db, faults, name: "stalled", environment: release.environment)
            try stalled.start()
            // Wait until it holds the whole batch, then freeze it.
            try await waitUntil("the first worker claims the batch") {
                try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'") == 40
            }
            stalled.signal(SIGSTOP)
            let rescuer = try Self.worker(db, faults + ["--until-idle"], name: "rescuer")
            try rescuer.start()
            #expect(try await rescuer.wait(timeout: 120) == .exit(0), "rescuer stderr: \(rescuer.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND attempts = 2") == 40)
            // Let the stalled worker resume: its completion must be refused, and change nothing.
            let before = try await Checks.written(db)
            stalled.signal(SIGCONT)
            release.open()
            try await waitUntil("the resumed worker reports its lease lost", timeout: 60) {
                stalled.stderr.contains("lease lost before completion")
            }
            stalled.signal(SIGTERM)
            #expect(try await stalled.wait(timeout: 60) == .exit(0), "stalled stderr: \(stalled.stderr.suffix(2000))")
            #expect(try await Checks.written(db) == before, "the refused completion wrote something")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    /// Submits `scenario` (one report marked `FaultMarker.locked`) and starts a one-lane worker with
    /// fault injection and `arguments`; returns once it waits inside that batch's completion, its
    /// sellers locked, with what lets it go on.
    static func waitingInsideACompletion(
        _ scenario: Scenario, _ db: TestDatabase, _ arguments: [String], name: String
    ) async throws -> (TiplineProcess, FaultRelease) {
        try await Self.submit(scenario, to: db)
        let release = FaultRelease()
        let worker = try Self.worker(db, ["--fault-injection", "--concurrency", "1"] + arguments, name: name, environment: release.environment)
        try worker.start()
        // The worker says so with a file: the server ends its session after 5 s idle in the
        // transaction, a window a loaded machine's polling could miss.
        try await waitUntil("the worker waits inside its completion") { release.isAwaited }
        return (worker, release)
    }

    @Test("a worker frozen inside a completion holds its sellers for seconds, not for its lease: another worker goes on")
    func frozenInsideCompletion() async throws {
        try await TestDatabase.with { db in
            // Report 0's batch waits inside its completion's transaction, its sellers locked and its
            // new contacts inserted; every other batch names some of the same twenty sellers.
            let scenario = Scenario.make(count: 1_000, sellers: 20, seed: 23) { $0 == 0 ? " " + FaultMarker.locked : "" }
            let (frozen, release) = try await Self.waitingInsideACompletion(
                scenario, db, ["--lease", "300", "--batch", "100"], name: "frozen")
            frozen.signal(SIGSTOP)
            let other = try Self.worker(db, ["--lease", "300", "--batch", "50", "--concurrency", "2"], name: "other")
            try other.start()
            // The server ends the frozen session after 5 s idle in its transaction, and its locks go
            // with it: the other worker completes all but the frozen batch, long before a lease
            // (300 s here) would have run out.
            try await waitUntil("the other worker completes every report but the frozen worker's 100", timeout: 90) {
                try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 900
            }
            // Let go, the frozen worker finds its session gone, and completes its batch on a new one
            // (its lease still holds).
            frozen.signal(SIGCONT)
            release.open()
            try await waitUntil("the frozen worker completes its own batch", timeout: 90) {
                try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 1_000
            }
            frozen.signal(SIGTERM)
            other.signal(SIGTERM)
            #expect(try await frozen.wait(timeout: 60) == .exit(0), "frozen stderr: \(frozen.stderr.suffix(2000))")
            #expect(try await other.wait(timeout: 60) == .exit(0), "other stderr: \(other.stderr.suffix(2000))")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    @Test("jobs whose completion could not reach the database are rescued once it answers, not after their lease")
    func abandonedJobsGoBackOnceTheDatabaseAnswers() async throws {
        try await TestDatabase.with { db in
            // Report 0's batch waits inside its completion until released; the database then turns
            // every connection away, so the completion's retries run out.
            let scenario = Scenario.make(count: 20, sellers: 5, seed: 41) { $0 == 0 ? " " + FaultMarker.locked : "" }
            let (worker, release) = try await Self.waitingInsideACompletion(
                scenario, db, ["--lease", "120", "--batch", "20"], name: "cut-off")
            try await DrainGiveUpTests.door(db, open: false)
            release.open()
            try await waitUntil("the completion gives up", timeout: 90) {
                worker.stderr.contains("database unreachable while completing")
            }
            try await DrainGiveUpTests.door(db, open: true)
            // Their leases ended and rescued at once, claimed again and done, long before the lease
            // (120 s) would have run out.
            try await waitUntil("every report is done", timeout: 60) {
                (try? await db.int("SELECT count(*) FROM reports WHERE state = 'done'")) == 20
            }
            #expect(worker.stderr.contains("ended the leases of the jobs this worker could not finish"), "\(worker.stderr.suffix(2000))")
            // Each was claimed once more: the attempt that could not complete counts.
            #expect(try await db.int("SELECT count(*) FROM reports WHERE attempts = 2") == 20)
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 60) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    @Test("jobs of a claim that committed though its answer was lost are rescued at the next heartbeat, not after their lease")
    func lostClaimAnswer() async throws {
        try await TestDatabase.with { db in
            // The first claim of report 0 acts as if its answer were lost (test-only fault
            // injection): its twenty jobs stay under the worker's lease, in no lane's hands.
            let scenario = Scenario.make(count: 20, sellers: 5, seed: 47) { $0 == 0 ? " " + FaultMarker.lostClaim : "" }
            try await Self.submit(scenario, to: db)
            // No fallback poll: a claim the stop below cut off would be a loss of its own (the
            // rescue's notification wakes the lane).
            let worker = try Self.worker(db, ["--fault-injection", "--concurrency", "1", "--batch", "20", "--lease", "120", "--poll", "3600"],
                                         name: "lost-answer")
            try worker.start()
            // Long before the lease (120 s) would have run out.
            try await waitUntil("every report is done", timeout: 60) {
                (try? await db.int("SELECT count(*) FROM reports WHERE state = 'done'")) == 20
            }
            #expect(worker.stderr.contains("fault injection: dropping a claim's answer"), "\(worker.stderr.suffix(2000))")
            #expect(worker.stderr.contains("ended the leases of the jobs this worker could not finish"), "\(worker.stderr.suffix(2000))")
            // The lost claim's attempt counts.
            #expect(try await db.int("SELECT count(*) FROM reports WHERE attempts = 2") == 20)
            // Nothing of it is left under the worker's lease (said once a sweep came after the time
            // a lost claim is given to end on the server): a stop without the database is a clean
            // one (exit 0), not one that leaves jobs to their leases (75).
            try await waitUntil("the worker has nothing stray", timeout: 60) {
                worker.stderr.contains("every job this worker could not finish is back in the queue")
            }
            try await DrainGiveUpTests.door(db, open: false)
            worker.signal(SIGTERM)
            let status = try await worker.wait(timeout: 60)
            try await DrainGiveUpTests.door(db, open: true)
            #expect(status == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    @Test("a job one batch failed and another lane claimed again keeps its lease while that lane holds it, after the first batch ends")
    func failedJobClaimedAgainKeepsItsLease() async throws {
        try await TestDatabase.with { db in
            // Report 0 fails its first attempt, and the batch of its second waits for the release;
            // report 1 keeps the first batch 3 s longer, so that it ends while another lane holds
            // report 0 again.
            let scenario = Scenario.make(count: 2, sellers: 1, seed: 53) {
                $0 == 0 ? " " + FaultMarker.failFirst + " " + FaultMarker.held : " " + FaultMarker.slow
            }
            try await Self.submit(scenario, to: db)
            let release = FaultRelease()
            let worker = try Self.worker(db, ["--fault-injection", "--concurrency", "2", "--batch", "2", "--lease", "6",
                                              "--retry-base", "0", "--poll", "0.2"], name: "again", environment: release.environment)
            try worker.start()
            let again = "FROM jobs WHERE report_id = (SELECT id FROM reports WHERE external_id = 's53-0') AND attempt = 2 AND state = 'running'"
            try await waitUntil("another lane holds report 0's second attempt") {
                try await db.int("SELECT count(*) \(unescaped: again)") == 1
            }
            try await waitUntil("the first batch is done") {
                try await db.int("SELECT count(*) FROM reports WHERE external_id = 's53-1' AND state = 'done'") == 1
            }
            // The heartbeat goes on extending the lease of the job the second lane holds, well past
            // the first batch's end (two leases of 6 s and more), or the rescue takes it from that
            // lane. (A lease of 6 s: heartbeats every 2 s, so a loaded machine's late beat is no loss.)
            let extended = """
                SELECT count(*) \(again)
                   AND lease_expires_at > (SELECT processed_at + interval '13 seconds' FROM reports WHERE external_id = 's53-1')
                """
            try await waitUntil("its lease is extended past two leases after the first batch, or it is taken away", timeout: 90) {
                let kept = try await db.int(Query(sql: extended, binds: [])) == 1
                if kept { return true }
                return try await db.int("SELECT count(*) \(unescaped: again)") == 0
            }
            #expect(try await db.int(Query(sql: extended, binds: [])) == 1, "\(worker.stderr.suffix(2000))")
            release.open()
            try await waitUntil("report 0 is done") {
                try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 2
            }
            #expect(try await db.int("SELECT attempts FROM reports WHERE external_id = 's53-0'") == 2)
            #expect(!worker.stderr.contains("lease lost"), "\(worker.stderr.suffix(2000))")
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 60) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    @Test("more expired leases than one rescue takes (1,000) are all taken back at once, not a heartbeat interval apart")
    func rescuesBeyondOneLimitAtOnce() async throws {
        try await TestDatabase.with { db in
            try await Self.submit(Scenario.make(count: 2_500, sellers: 50, seed: 43), to: db)
            // As a crashed worker leaves them: running, under a lease that ran out.
            _ = try await db.database.execute("""
                UPDATE jobs SET state = 'running', attempt = 1, lease_owner = '00000000-0000-4000-8000-000000000001',
                                lease_expires_at = now() - interval '1 second'
                """)
            // A heartbeat every 100 s (a third of the lease): a second rescue would come that late.
            let worker = try Self.worker(db, ["--lease", "300"], name: "rescuer")
            try worker.start()
            try await waitUntil("every expired lease is taken back", timeout: 60) {
                try await db.int("SELECT count(*) FROM jobs WHERE lease_owner = '00000000-0000-4000-8000-000000000001'") == 0
            }
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 120) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
        }
    }

    @Test("a database's idle_session_timeout does not end a worker's listening session")
    func idleSessionTimeoutIsTheWorkersOwn() async throws {
        try await TestDatabase.with { db in
            _ = try await db.database.execute("ALTER DATABASE \(unescaped: db.name) SET idle_session_timeout = '1s'")
            let worker = try Self.worker(db, ["--poll", "3600"], name: "listener")
            try worker.start()
            let listening: Query = """
                SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tipline-listen'
                """
            try await waitUntil("the worker listens") { try await db.int(listening) != 0 }
            let session = try await db.int(listening)
            try await Task.sleep(for: .seconds(3))
            let scenario = Scenario.make(count: 1, sellers: 1, seed: 5)
            try await Self.submit(scenario, to: db)
            try await waitUntil("the report is done", timeout: 30) {
                try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 1
            }
            #expect(try await db.int(listening) == session, "the listening session was ended and replaced")
            #expect(!worker.stderr.contains("LISTEN session failed"), "\(worker.stderr.suffix(2000))")
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 60) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
        }
    }

    @Test("SIGKILL of a worker mid-batch loses nothing")
    func killedWorkerLosesNothing() async throws {
        try await TestDatabase.with { db in
            // The victim holds its batch until it is killed (never released); the survivor, given no
            // release file, does not hold.
            let scenario = Scenario.make(count: 300, sellers: 40, seed: 11) { $0 == 5 ? " " + FaultMarker.held : "" }
            try await Self.submit(scenario, to: db)
            let faults = ["--fault-injection", "--lease", "2", "--batch", "300", "--concurrency", "1"]
            let victim = try Self.worker(db, faults, name: "victim", environment: FaultRelease().environment)
            try victim.start()
            try await waitUntil("the victim claims the batch") {
                try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'") > 0
            }
            victim.signal(SIGKILL)
            #expect(try await victim.wait() == .signal(SIGKILL))
            let survivor = try Self.worker(db, faults + ["--until-idle"], name: "survivor")
            try survivor.start()
            #expect(try await survivor.wait(timeout: 120) == .exit(0), "survivor stderr: \(survivor.stderr.suffix(2000))")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    @Test("a report that always fails ends dead after max attempts with its error; the others finish")
    func poisonReportDies() async throws {
        try await TestDatabase.with { db in
            let scenario = Scenario.make(count: 200, sellers: 30, seed: 3) { $0 == 17 ? " " + FaultMarker.fail : "" }
            try await Self.submit(scenario, to: db)
            let worker = try Self.worker(db, ["--fault-injection", "--until-idle", "--retry-base", "0.05"], name: "w")
            try worker.start()
            #expect(try await worker.wait(timeout: 120) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            let dead = try await db.database.query("SELECT external_id, attempts, last_error FROM reports WHERE state = 'dead'")
            #expect(dead.count == 1)
            #expect(try dead.first?.decode(String.self, at: 0) == "s3-17")
            #expect(try dead.first?.decode(Int.self, at: 1) == 5)
            #expect(try dead.first?.decode(String.self, at: 2).contains("fault injection") == true)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 199)
            // The status screen says it needs an administrator, and why.
            let screen = try await TiplineProcess.run(["status"], databaseURL: db.url)
            #expect(screen.stdout.contains("NEEDS ATTENTION") && screen.stdout.contains("1 dead report (every attempt failed)"), "\(screen.stdout)")
            let object = try await ExportTests.statusObject(db)
            #expect(object["healthy"] as? Bool == false)
            #expect((object["attention"] as? [String])?.count == 1)
        }
    }

    @Test("a retry is claimed when its delay is over, not at the next poll")
    func retryOnTime() async throws {
        try await TestDatabase.with { db in
            _ = try await QueueTests.submit(["出租微信 V信: retry_seller1 " + FaultMarker.fail], to: db)
            // Four retries of at most 0.3, 0.6, 1.2 and 2.4 s; the poll (60 s) would take minutes.
            let worker = try Self.worker(db, ["--fault-injection", "--retry-base", "0.2", "--poll", "60"], name: "retry")
            try worker.start()
            try await waitUntil("the report is dead after five attempts", timeout: 30) {
                try await db.int("SELECT count(*) FROM reports WHERE state = 'dead' AND attempts = 5") == 1
            }
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 30) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            // Every failed attempt counts, not the one report they were all of.
            #expect(try await Self.recentFailures(db) == 5)
        }
    }

    @Test("a worker starting beside jobs whose lease ran out takes them back at once, not a third of its lease later")
    func rescueAtStart() async throws {
        try await TestDatabase.with { db in
            try await Self.orphanThreeJobs(db)
            try await Self.drainWithALongLease(db)
        }
    }

    /// Three reports whose jobs a worker killed a minute ago left `running` with an expired lease.
    static func orphanThreeJobs(_ db: TestDatabase) async throws {
        _ = try await QueueTests.submit(["V信: orphan_seller1", "V信: orphan_seller2", "扣扣：77889900"], to: db)
        try await db.database.execute("""
            UPDATE jobs SET state = 'running', attempt = 1, lease_owner = gen_random_uuid(), lease_expires_at = now() - interval '1 minute'
            """)
    }

    /// Drains with `--lease 600` (a first heartbeat 200 s after start, were it not at once): within
    /// 60 s, every report done on its second attempt.
    static func drainWithALongLease(_ db: TestDatabase) async throws {
        let drain = try await TiplineProcess.run(["work", "--until-idle", "--lease", "600"], databaseURL: db.url, timeout: 60)
        #expect(drain.status == .exit(0), "\(drain.stderr.suffix(1500))")
        #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND attempts = 2") == 3)
    }

    @Test("a solo claim whose snapshot came before the first heartbeat's rescue does not hide the rescued jobs")
    func rescueRacingTheFirstClaim() async throws {
        try await TestDatabase.with { db in
            try await Self.orphanThreeJobs(db)
            // A handshake in this test database (triggers, test only) forces the interleaving: the
            // first claim takes an advisory lock as it starts (its snapshot taken), the first
            // heartbeat waits for that lock before it rescues, and the claim answers only once the
            // rescue has committed. So the claim looks before the rescue and answers (no solo job)
            // after the heartbeat said one is waiting. test_race records that it happened.
            try await db.database.execute("CREATE SEQUENCE test_claims")
            try await db.database.execute("CREATE SEQUENCE test_beats")
            try await db.database.execute("CREATE TABLE test_race (claim_seen_by_heartbeat boolean)")
            // A statement-level trigger running `body` (PL/pgSQL) when `condition` holds.
            func trigger(_ name: String, _ timing: String, on table: String, when condition: String, _ body: String) async throws {
                try await db.database.execute(Query(sql: """
                    CREATE FUNCTION \(name)() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
                    BEGIN
                        IF \(condition) THEN
                            \(body)
                        END IF;
                        RETURN NULL;
                    END
                    $$
                    """, binds: []))
                try await db.database.execute(Query(
                    sql: "CREATE TRIGGER \(name) \(timing) UPDATE ON \(table) FOR EACH STATEMENT EXECUTE FUNCTION \(name)()", binds: []))
            }
            try await trigger("test_claim_starts", "BEFORE", on: "jobs",
                              when: "current_query() LIKE '%no_flush_wait%' AND nextval('test_claims') = 1", "PERFORM pg_advisory_lock(4242);")
            try await trigger("test_claim_answers", "AFTER", on: "jobs", when: """
                current_query() LIKE '%no_flush_wait%' AND EXISTS (
                    SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND pid = pg_backend_pid() AND granted)
                """, """
                FOR i IN 1..2000 LOOP  -- up to 20 s for the rescue to commit
                    EXIT WHEN EXISTS (SELECT 1 FROM jobs WHERE solo);
                    PERFORM pg_sleep(0.01);
                END LOOP;
                PERFORM pg_advisory_unlock(4242);
                """)
            try await trigger("test_heartbeat_waits", "BEFORE", on: "workers",
                              when: "current_query() LIKE '%WITH me AS (%' AND nextval('test_beats') = 1", """
                FOR i IN 1..2000 LOOP  -- up to 20 s for the first claim to start
                    IF NOT pg_try_advisory_lock_shared(4242) THEN
                        INSERT INTO test_race VALUES (true);
                        RETURN NULL;
                    END IF;
                    PERFORM pg_advisory_unlock_shared(4242);
                    PERFORM pg_sleep(0.01);
                END LOOP;
                """)
            try await Self.drainWithALongLease(db)
            #expect(try await db.int("SELECT count(*)::int FROM test_race") == 1, "the first claim did not start before the first rescue")
        }
    }

    /// `recent_failures` of `tipline status --json`.
    static func recentFailures(_ db: TestDatabase) async throws -> Int? {
        try await ExportTests.statusObject(db)["recent_failures"] as? Int
    }

    @Test("a report that crashes its worker every time ends dead, and the reports claimed with it finish")
    func crashingReportDies() async throws {
        try await TestDatabase.with { db in
            let scenario = Scenario.make(count: 120, sellers: 20, seed: 5) { $0 == 3 ? " " + FaultMarker.crash : "" }
            try await Self.submit(scenario, to: db)
            var crashes = 0
            for round in 0..<15 {
                let worker = try Self.worker(db, ["--fault-injection", "--until-idle", "--lease", "1", "--batch", "20"], name: "r\(round)")
                try worker.start()
                let status = try await worker.wait(timeout: 120)
                if status == .exit(0) { break }
                #expect(status == .signal(SIGKILL), "unexpected end: \(status) \(worker.stderr.suffix(1000))")
                crashes += 1
                try await Task.sleep(for: .seconds(1.2))  // let the lease run out
            }
            #expect(crashes == 5, "the crashing report should be attempted exactly max_attempts times")
            let dead = try await db.database.query("SELECT external_id, attempts, last_error FROM reports WHERE state = 'dead'")
            #expect(dead.count == 1)
            #expect(try dead.first?.decode(String.self, at: 0) == "s5-3")
            #expect(try dead.first?.decode(String.self, at: 2).contains("lease expired") == true)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 119)
            // Every lease that ran out and was taken back is a failed attempt: the crashing report's
            // five, and those of the reports claimed with it. Each report's attempts but a successful
            // last one failed.
            let failed = try await db.int("SELECT sum(attempts)::int - count(*) FILTER (WHERE state = 'done')::int FROM reports")
            #expect(failed >= 5)
            #expect(try await Self.recentFailures(db) == failed)
        }
    }

    /// Logs every job as its completion's fence deletes it (test databases only): its worker,
    /// whether it was to be claimed alone, and when it was claimed and fenced.
    static func logJobSpans(in db: TestDatabase) async throws {
        _ = try await db.database.execute("""
            CREATE TABLE job_spans (report_id bigint, owner uuid, solo boolean, claimed timestamptz, fenced timestamptz)
            """)
        _ = try await db.database.execute("""
            CREATE FUNCTION log_job_span() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO job_spans VALUES (OLD.report_id, OLD.lease_owner, OLD.solo, OLD.claimed_at, clock_timestamp());
                RETURN NULL;
            END $$
            """)
        _ = try await db.database.execute("CREATE TRIGGER log_job_span AFTER DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION log_job_span()")
    }

    @Test("a job to be claimed alone runs with nothing else in its process, however many lanes it has")
    func soloJobsRunAlone() async throws {
        try await TestDatabase.with { db in
            // Four reports that take three seconds each, as if they might have crashed their last
            // worker (`solo`), among sixty ordinary ones.
            let scenario = Scenario.make(count: 64, sellers: 10, seed: 11) { $0 < 4 ? " " + FaultMarker.slow : "" }
            try await Self.submit(scenario, to: db)
            let marked = try await db.database.execute("""
                UPDATE jobs SET solo = true WHERE report_id IN (SELECT id FROM reports WHERE body LIKE '%tipline-fault:slow%')
                """)
            try #require(marked == 4)
            try await Self.logJobSpans(in: db)
            let worker = try Self.worker(db, ["--fault-injection", "--until-idle", "--concurrency", "4", "--batch", "10"], name: "w")
            try worker.start()
            #expect(try await worker.wait(timeout: 120) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 64)
            #expect(try await db.int("SELECT count(*) FROM job_spans WHERE solo") == 4)
            // From its claim to its fence, a solo job was the only job its worker held.
            let overlapping = try await db.int("""
                SELECT count(*) FROM job_spans a JOIN job_spans b
                    ON a.owner = b.owner AND a.report_id <> b.report_id AND a.claimed < b.fenced AND b.claimed < a.fenced
                 WHERE a.solo
                """)
            #expect(overlapping == 0, "jobs held beside a solo job")
        }
    }

    @Test("jobs to be claimed alone that turn up during a backlog are taken within seconds, not after it")
    func soloJobsNotLeftBehindABacklog() async throws {
        try await TestDatabase.with { db in
            let scenario = Scenario.make(count: 30_000, sellers: 2_000, seed: 12)
            try await Self.submit(scenario, to: db)
            let worker = try Self.worker(db, ["--until-idle", "--concurrency", "6", "--lease", "2"], name: "w")
            try worker.start()
            // Once the drain is under way, three of the last jobs in the queue become solo, as jobs
            // rescued from a crashed worker do.
            let deadline = ContinuousClock.now + .seconds(120)
            while try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") < 1_000, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let marked = try await db.database.execute("""
                UPDATE jobs SET solo = true
                 WHERE report_id IN (SELECT report_id FROM jobs WHERE state = 'queued' ORDER BY report_id DESC LIMIT 3)
                """)
            try #require(marked == 3)
            let solo = try await db.database.query("SELECT report_id FROM jobs WHERE solo").map { try $0.decode(Int64.self, at: 0) }
            #expect(try await worker.wait(timeout: 300) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 30_000)
            // Ordinary claims never take solo jobs: left to them, these would wait for a moment with
            // nothing in flight, which a backlog never leaves.
            let after = try await db.int("""
                SELECT count(*) FROM reports
                 WHERE processed_at > (SELECT max(processed_at) FROM reports WHERE id = ANY(\(solo)::bigint[]))
                """)
            #expect(after >= 2_000, "only \(after) reports were done after the last solo job")
        }
    }

    @Test("a notification that finds a lane idle is answered on the listening session, and the lanes still take a backlog")
    func listeningSessionAnswers() async throws {
        try await TestDatabase.with { db in
            let worker = try Self.worker(db, ["--concurrency", "2", "--batch", "10"], name: "idle")
            try worker.start()
            let listening = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tipline-listen'"
            try await waitUntil("the worker listens") { try await db.database.query(Query(sql: listening, binds: [])).count == 1 }
            let listener = try await db.int(Query(sql: listening, binds: []))
            // The lanes' first claims at start find nothing; then they wait for the bell. Until both
            // wait (a loaded machine may take a while), a notification rings for a lane instead: so
            // reports go one at a time (each its own transaction and NOTIFY) until one is answered
            // on the listening session. Completions count in the tally row of the session that
            // committed them.
            var sent = 0
            var answered = 0
            while answered == 0, sent < 20 {
                try await Task.sleep(for: .milliseconds(500))
                sent += 1
                try await Self.submit(Scenario.make(count: 1, sellers: 1, seed: 100 + UInt64(sent)), to: db)
                try await waitUntil("\(sent) reports done") { try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == sent }
                answered = try await db.int("SELECT coalesce(sum(done), 0)::int FROM report_tallies WHERE backend = \(listener)")
            }
            #expect(answered == 1, "none of \(sent) reports sent one at a time to an idle worker was answered on its listening session")
            // A backlog larger than a batch (one notification): the listening session answers at most
            // one batch of it (10), and its full claim rings for the lanes, which drain the rest.
            let byListenerBefore = try await db.int("SELECT coalesce(sum(done), 0)::int FROM report_tallies WHERE backend = \(listener)")
            try await Self.submit(Scenario.make(count: 500, sellers: 40, seed: 6), to: db)
            try await waitUntil("all reports done") { try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 500 + sent }
            let byListener = try await db.int("SELECT coalesce(sum(done), 0)::int FROM report_tallies WHERE backend = \(listener)")
            #expect(byListener - byListenerBefore <= 10, "the listening session completed \(byListener - byListenerBefore) of the backlog")
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 30) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM jobs") == 0)
        }
    }

    @Test("SIGTERM, SIGINT and SIGHUP stop claiming, finish the batch in hand and exit 0", arguments: [SIGTERM, SIGINT, SIGHUP])
    func signalDrains(_ signal: Int32) async throws {
        try await TestDatabase.with { db in
            // Its first batch is held until the signal asks it to stop.
            let scenario = Scenario.make(count: 200, sellers: 30, seed: 9) { $0 == 0 ? " " + FaultMarker.held : "" }
            try await Self.submit(scenario, to: db)
            let worker = try Self.worker(db, ["--fault-injection", "--batch", "20", "--concurrency", "1"], name: "t",
                                         environment: FaultRelease().environment)
            try worker.start()
            try await waitUntil("the worker holds a batch") {
                try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'") == 20
            }
            worker.signal(signal)
            #expect(try await worker.wait(timeout: 30) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            // The batch in hand was completed, nothing more was claimed, nothing is left running.
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 20)
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'") == 0)
            #expect(try await db.int("SELECT count(*) FROM workers WHERE stopped_at IS NOT NULL") == 1)
        }
    }

    @Test("SIGTERM while a batch waits on the database for good: the worker exits 75 after its lease and ten seconds, and another worker does the report")
    func shutdownThatCannotFinishExits() async throws {
        try await TestDatabase.with { db in
            let seller = try await Self.reportOfAStoredSeller(db)
            let status = try await db.whileAnotherSessionHolds("SELECT id FROM offenders WHERE id = \(seller) FOR UPDATE") {
                let worker = try Self.worker(db, ["--until-idle", "--lease", "2"], name: "stuck")
                try worker.start()
                try await worker.waitUntilCatching(SIGTERM)
                try await Self.waitForTheLock(worker, db)
                worker.signal(SIGTERM)
                // Without a bound it would wait for as long as the lock is held (up to a minute here).
                return try await worker.wait(timeout: 40)
            }
            #expect(status == .exit(Worker.shutdownTimedOutStatus))
            // Its lease runs out; another worker rescues the job and does the report.
            let after = try await TiplineProcess.run(["work", "--until-idle", "--lease", "2"], databaseURL: db.url)
            #expect(after.status == .exit(0), "\(after.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND offender_id = \(seller)") == 1)
        }
    }

    @Test("a second SIGTERM, a second or more after the first, ends a shutdown that waits on the database at once: exit 75, and another worker does the report")
    func secondSignalEndsTheShutdown() async throws {
        try await TestDatabase.with { db in
            let seller = try await Self.reportOfAStoredSeller(db)
            let (status, waited) = try await db.whileAnotherSessionHolds("SELECT id FROM offenders WHERE id = \(seller) FOR UPDATE") {
                // A lease of 60 s: the watchdog would end the shutdown after 70 s.
                let worker = try Self.worker(db, ["--until-idle", "--lease", "60"], name: "stuck")
                try worker.start()
                try await worker.waitUntilCatching(SIGTERM)
                try await Self.waitForTheLock(worker, db)
                worker.signal(SIGTERM)
                try await Task.sleep(for: .milliseconds(1_500))
                #expect(worker.process.isRunning, "the first signal alone ended the shutdown: \(worker.stderr.suffix(2000))")
                let second = ContinuousClock.now
                worker.signal(SIGTERM)
                let status = try await worker.wait(timeout: 30)
                #expect(worker.stderr.contains("a second signal: exiting now"), "\(worker.stderr.suffix(2000))")
                return (status, ContinuousClock.now - second)
            }
            #expect(status == .exit(Worker.shutdownTimedOutStatus))
            #expect(waited < .seconds(20), "the second signal waited \(waited)")
            // Its lease runs out; another worker rescues the job and does the report.
            _ = try await db.database.execute("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'")
            let after = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            #expect(after.status == .exit(0), "\(after.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND offender_id = \(seller)") == 1)
        }
    }

    @Test("SIGTERM while a batch waits on the database: the worker finishes the batch once the lock goes (a second later), exit 0")
    func shutdownWaitsForTheBatch() async throws {
        try await TestDatabase.with { db in
            let seller = try await Self.reportOfAStoredSeller(db)
            let worker = try Self.worker(db, ["--until-idle", "--lease", "2"], name: "finishing")
            try await db.whileAnotherSessionHolds("SELECT id FROM offenders WHERE id = \(seller) FOR UPDATE") {
                try worker.start()
                try await worker.waitUntilCatching(SIGTERM)
                try await Self.waitForTheLock(worker, db)
                worker.signal(SIGTERM)
                try await Task.sleep(for: .seconds(1))
            }
            #expect(try await worker.wait(timeout: 40) == .exit(0), "\(worker.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND offender_id = \(seller) AND attempts = 1") == 1)
        }
    }

    /// A stored seller and one report naming its contact; returns the seller's id. While another
    /// session holds the seller's row, a worker's completion of the report waits for that lock (its
    /// first lock round waits) as long as it is held.
    static func reportOfAStoredSeller(_ db: TestDatabase) async throws -> Int64 {
        let seller = Int64(try await db.int("INSERT INTO offenders DEFAULT VALUES RETURNING id"))
        _ = try await db.database.execute("INSERT INTO contacts (kind, value, offender_id) VALUES ('wechat', 'stuck_seller1', \(seller))")
        _ = try await QueueTests.submit(["出租微信 V信: stuck_seller1"], to: db)
        return seller
    }

    /// Waits until the worker's session waits for a lock (its completion, behind the test's).
    static func waitForTheLock(_ worker: TiplineProcess, _ db: TestDatabase) async throws {
        try await waitUntil("the worker's completion waits for the lock") {
            try await db.int("""
                SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'tipline-worker' AND wait_event_type = 'Lock'
                """) > 0
        }
    }

    @Test("SIGTERM while the worker is still starting stops it cleanly: exit 0, nothing claimed")
    func sigtermWhileStarting() async throws {
        try await TestDatabase.with { db in
            try await Self.submit(Scenario.make(count: 20, sellers: 5, seed: 3), to: db)
            // The start-up is held (tests only) before the service group exists, until released.
            let release = FaultRelease()
            let worker = try TiplineProcess(["work", "--name", "early", "--fault-injection", "--log-level", "info"],
                                            databaseURL: db.url, environment: release.startHeldEnvironment)
            try worker.start()
            // Caught while the start-up is held, not only once the service group runs.
            try await worker.waitUntilCatching(SIGTERM)
            worker.signal(SIGTERM)
            release.open()
            #expect(try await worker.wait(timeout: 30) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 0)
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'queued'") == 20)
        }
    }

    @Test("SIGTERM while the worker waits for a server that never answers exits 0 at once, not after connect_timeout")
    func sigtermWhileTheServerHangs() async throws {
        // A socket that listens but never answers: the kernel completes the connection, and libpq
        // waits for the server's first message until connect_timeout (120 s here).
        let (listener, port) = try RawHTTP.listener()
        defer { close(listener) }
        let worker = try TiplineProcess(["work", "--name", "hung", "--log-level", "info"],
                                        databaseURL: "postgresql://tipline@127.0.0.1:\(port)/tipline?connect_timeout=120")
        try worker.start()
        // The worker's connection is open, and waits inside libpq.
        try await waitUntil("the worker connects to the silent server", timeout: 60) {
            TCPTable.sockets().contains { $0.remotePort == port && $0.state == "01" }
        }
        try await worker.waitUntilCatching(SIGTERM)
        worker.signal(SIGTERM)
        // Its pool waits up to 10 s for the blocked call before the process exits without it.
        #expect(try await worker.wait(timeout: 40) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
        #expect(worker.stderr.contains("the worker stopped before it started"), "stderr: \(worker.stderr.suffix(2000))")
    }
}

@Suite("worker start-up against a database that turns it away")
struct WorkerRefusedTests {
    @Test("a drain pointed at a database that does not exist stops at once with the server's reason; a service keeps trying and says so")
    func missingDatabase() async throws {
        let url = try TestDatabase.url(for: "tipline_missing_\(UUID().uuidString.prefix(8).lowercased())")
        let drain = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: url, timeout: 30)
        #expect(drain.status == .exit(1), "stderr: \(drain.stderr.suffix(2000))")
        #expect(drain.stderr.contains("cannot connect to the database") && drain.stderr.contains("does not exist"), "\(drain.stderr.suffix(2000))")

        let service = try TiplineProcess(["work", "--name", "refused"], databaseURL: url)
        try service.start()
        try await waitUntil("the service logs the refusal", timeout: 30) {
            service.stderr.contains("the database refused the connection, or its settings are invalid; retrying")
        }
        service.signal(SIGTERM)
        #expect(try await service.wait(timeout: 30) == .exit(0), "stderr: \(service.stderr.suffix(2000))")
    }
}

extension WorkerRefusedTests {
    @Test("a drain with connection settings libpq refuses, or with a role that may not log in or connect, stops at once")
    func invalidSettings() async throws {
        try await TestDatabase.with { db in
            let role = "t_role_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
            _ = try await db.database.execute(Query(sql: "CREATE ROLE \(role)", binds: []))
            var withRole = URLComponents(string: db.url)!
            withRole.user = role
            let urls = [db.url + (db.url.contains("?") ? "&" : "?") + "foo=bar", withRole.string!]
            for (url, reason) in zip(urls, [#"invalid URI query parameter: "foo""#, "is not permitted to log in"]) {
                // Without the fix it waited out --give-up-after (60 s) and blamed reachability.
                let drain = try await TiplineProcess.run(["work", "--until-idle", "--give-up-after", "60"], databaseURL: url, timeout: 30)
                #expect(drain.status == .exit(1), "stderr: \(drain.stderr.suffix(2000))")
                #expect(drain.stderr.contains("cannot connect to the database (check --database-url, DATABASE_URL or the PG* variables)")
                        && drain.stderr.contains(reason), "\(drain.stderr.suffix(2000))")
            }
            _ = try await db.database.execute(Query(sql: "DROP ROLE \(role)", binds: []))
        }
    }

    @Test("a drain whose every claim fails (its role's grants taken away mid-drain) gives up after --give-up-after, with exit 1 and the reason")
    func drainGivesUpOnFailingClaims() async throws {
        try await TestDatabase.with { db in
            // The drain holds its second batch (report 10's) until released: the grants go meanwhile.
            try await WorkerProcessTests.submit(
                Scenario.make(count: 30, sellers: 5, seed: 31) { $0 == 10 ? " " + FaultMarker.held : "" }, to: db)
            let role = try await RoleTests.login("tipline_worker", in: db)
            let release = FaultRelease()
            let drain = try TiplineProcess(
                ["work", "--until-idle", "--give-up-after", "2", "--batch", "10", "--concurrency", "1", "--log-level", "notice",
                 "--fault-injection"],
                databaseURL: role.url, environment: release.environment)
            try drain.start()
            try await waitUntil("the drain completes a batch and holds the next") {
                let done = try await db.int("SELECT count(*) FROM reports WHERE state = 'done'")
                let running = try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'")
                return done == 10 && running == 10
            }
            let admin = Database(config: ConnectionConfig(conninfo: try TestDatabase.adminURL), maxConnections: 1)
            defer { Task { await admin.shutdown() } }
            try await admin.execute(Query(sql: "REVOKE tipline_worker FROM \(role.name)", binds: []))
            release.open()
            // Before, it retried for as long as it ran: only a connection problem counted.
            #expect(try await drain.wait(timeout: 60) == .exit(1), "stderr: \(drain.stderr.suffix(2000))")
            #expect(drain.stderr.contains("every claim failed for 2 s, so the drain gives up (--give-up-after)"), "\(drain.stderr.suffix(2000))")
            #expect(drain.stderr.contains("permission denied"), "\(drain.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 10)
        }
    }

    @Test("a worker started while the database only reads waits until it takes writes; a drain gives up after --give-up-after")
    func startedWhileReadOnly() async throws {
        try await TestDatabase.with { db in
            let scenario = Scenario.make(count: 20, sellers: 5, seed: 59)
            try await WorkerProcessTests.submit(scenario, to: db)
            try await db.database.execute(Query(sql: "ALTER DATABASE \(db.name) SET default_transaction_read_only = on", binds: []))
            let started = ContinuousClock.now
            let drain = try await TiplineProcess.run(["work", "--until-idle", "--give-up-after", "3"], databaseURL: db.url)
            #expect(drain.status == .exit(1), "\(drain.stderr.suffix(2000))")
            #expect(ContinuousClock.now - started >= .seconds(3), "gave up before --give-up-after")
            #expect(drain.stderr.contains("read-only transaction"), "\(drain.stderr.suffix(2000))")
            // A service waits: it is still running seconds later, and works once writes come back.
            let worker = try WorkerProcessTests.worker(db, [], name: "waits")
            try worker.start()
            try await waitUntil("the worker says it waits for writes", timeout: 30) {
                worker.stderr.contains("the database only reads")
            }
            try await Task.sleep(for: .seconds(2))
            #expect(worker.process.isRunning, "stderr: \(worker.stderr.suffix(2000))")
            try await db.database.execute(Query(sql: "ALTER DATABASE \(db.name) RESET default_transaction_read_only", binds: []))
            try await waitUntil("every report is done", timeout: 60) {
                try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 20
            }
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 60) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    @Test("--give-up-after without --until-idle is a usage error")
    func giveUpNeedsADrain() async throws {
        let run = try await TiplineProcess.run(["work", "--give-up-after", "5"], databaseURL: nil, timeout: 30)
        #expect(run.status == .exit(64), "\(run.stderr)")
        #expect(run.stderr.contains("--give-up-after applies only with --until-idle"), "\(run.stderr)")
    }

    @Test("a worker on a database that only reads is told so, with the way to the primary")
    func readOnlyDatabase() async throws {
        try await TestDatabase.with { db in
            try await db.database.execute(Query(sql: "ALTER DATABASE \(db.name) SET default_transaction_read_only = on", binds: []))
            // A drain waits for writes as for an outage (a switch of primary takes seconds), then says why.
            let run = try await TiplineProcess.run(["work", "--until-idle", "--give-up-after", "1"], databaseURL: db.url, timeout: 60)
            #expect(run.status == .exit(1), "\(run.stderr)")
            #expect(run.stderr.contains("the database only reads") && run.stderr.contains("target_session_attrs=read-write"), "\(run.stderr)")
        }
    }

    @Test("a poll under a tenth of a second, a blank or overlong name, and --noop without TIPLINE_ALLOW_NOOP=1 are usage errors")
    func workUsageErrors() async throws {
        for (arguments, message) in [(["--poll", "0.000000001"], "--poll must be between 0.1 and 3600"),
                                     (["--name", ""], "--name must be 1-100 characters"),
                                     (["--name", "  "], "--name must be 1-100 characters"),
                                     (["--name", String(repeating: "w", count: 101)], "--name must be 1-100 characters"),
                                     (["--noop"], "Set TIPLINE_ALLOW_NOOP=1 to run it")] {
            // Whatever the shell running the suite exported.
            let run = try await TiplineProcess.run(["work"] + arguments, databaseURL: nil, environment: ["TIPLINE_ALLOW_NOOP": ""], timeout: 30)
            #expect(run.status == .exit(64), "\(arguments.joined(separator: " ").prefix(40)): \(run.stderr)")
            #expect(run.stderr.contains(message), "\(arguments.joined(separator: " ").prefix(40)): \(run.stderr)")
        }
    }
}

@Suite("worker logs and listening ports")
struct WorkerLogTests {
    @Test("a log that cannot be written (a full disk, a reader that went away) neither crashes nor stops a drain", arguments: ["json", "text"])
    func unwritableLog(_ format: String) async throws {
        try await TestDatabase.with { db in
            try await WorkerProcessTests.submit(Scenario.make(count: 60, sellers: 10, seed: 5), to: db)
            // Standard error on a full disk (JSON lines trapped in FileHandle.write).
            let full = try TiplineProcess(["work", "--until-idle", "--batch", "20", "--log-format", format, "--log-level", "debug"],
                                          databaseURL: db.url)
            full.process.standardError = FileHandle(forWritingAtPath: "/dev/full")!
            try full.start()
            #expect(try await full.wait(timeout: 60) == .exit(0))
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 60)
            // Standard error a pipe whose reader has gone (SIGPIPE killed the worker).
            let more = Scenario.make(count: 40, sellers: 8, seed: 6)
            try await WorkerProcessTests.submit(more, to: db)
            let closed = try TiplineProcess(["work", "--until-idle", "--batch", "20", "--log-format", format, "--log-level", "debug"],
                                            databaseURL: db.url)
            try closed.startWithStderrReaderGone()
            #expect(try await closed.wait(timeout: 60) == .exit(0))
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 100)
        }
    }

    @Test("text log lines are one line each, libpq's multi-line messages included")
    func oneLinePerEvent() async throws {
        // Connection refused at port 1: libpq's message has a line break and a tab.
        let service = try TiplineProcess(["work", "--name", "oneline"], databaseURL: "postgresql://postgres@127.0.0.1:1/none")
        try service.start()
        try await waitUntil("the worker logs the outage", timeout: 30) { service.stderr.contains("database unreachable; retrying") }
        service.signal(SIGTERM)
        #expect(try await service.wait(timeout: 30) == .exit(0))
        let lines = service.stderr.split(separator: "\n")
        #expect(lines.contains { $0.contains("Is the server running on that host") }, "\(service.stderr.suffix(2000))")
        // Every line is an event: it starts with its timestamp.
        #expect(lines.allSatisfy { $0.hasPrefix("20") && !$0.contains("\t") }, "\(service.stderr.suffix(2000))")
    }

    @Test("a worker warns at start when its lanes may not all get a connection; a superuser is held to no role or database limit")
    func connectionsShort() async throws {
        try await TestDatabase.with { db in
            let worker = try await RoleTests.login("tipline_worker", in: db)
            _ = try await db.database.execute(Query(sql: "ALTER ROLE \(worker.name) CONNECTION LIMIT 8", binds: []))
            try await WorkerProcessTests.submit(Scenario.make(count: 30, sellers: 5, seed: 8), to: db)
            let roomy = try await TiplineProcess.run(["work", "--until-idle", "--concurrency", "2"], databaseURL: worker.url)
            #expect(roomy.status == .exit(0), "\(roomy.stderr.suffix(2000))")
            #expect(!roomy.stderr.contains("may need more database connections"), "\(roomy.stderr.suffix(2000))")
            try await WorkerProcessTests.submit(Scenario.make(count: 30, sellers: 5, seed: 9), to: db)
            let short = try await TiplineProcess.run(["work", "--until-idle", "--concurrency", "8"], databaseURL: worker.url)
            #expect(short.status == .exit(0), "\(short.stderr.suffix(2000))")
            #expect(short.stderr.contains("may need more database connections than are left") && short.stderr.contains("needed=10"),
                    "\(short.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 60)
            // The test's own user is a superuser: a database limit does not hold it, so no warning.
            try await WorkerProcessTests.submit(Scenario.make(count: 30, sellers: 5, seed: 10), to: db)
            _ = try await db.database.execute(Query(sql: "ALTER DATABASE \(db.name) CONNECTION LIMIT 4", binds: []))
            let superuser = try await TiplineProcess.run(["work", "--until-idle", "--concurrency", "8"], databaseURL: db.url)
            _ = try await db.database.execute(Query(sql: "ALTER DATABASE \(db.name) CONNECTION LIMIT -1", binds: []))
            #expect(superuser.status == .exit(0), "\(superuser.stderr.suffix(2000))")
            #expect(!superuser.stderr.contains("may need more database connections"), "\(superuser.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 90)
        }
    }

    @Test("a worker started with SIGHUP ignored (nohup) keeps ignoring it")
    func nohupKeepsWorking() async throws {
        try await TestDatabase.with { db in
            let worker = try TiplineProcess(["work", "--name", "nohup"], databaseURL: db.url)
            worker.process.arguments = [worker.process.executableURL!.path] + worker.arguments
            worker.process.executableURL = URL(fileURLWithPath: "/usr/bin/nohup")
            try worker.start()
            try await worker.waitUntilCatching(SIGTERM)
            worker.signal(SIGHUP)
            try await WorkerProcessTests.submit(Scenario.make(count: 20, sellers: 5, seed: 11), to: db)
            try await waitUntil("the worker does the reports submitted after the hang-up", timeout: 30) {
                try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 20
            }
            #expect(worker.process.isRunning)
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 30) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
        }
    }

    @Test("a metrics port already in use, or a host that names nothing: exit 1 naming the address and the port")
    func metricsPortInUse() async throws {
        try await TestDatabase.with { db in
            let first = try TiplineProcess(["work", "--name", "first", "--metrics-port", "0"], databaseURL: db.url)
            try first.start()
            try await waitUntil("the first worker announces its metrics port", timeout: 30) { first.stdout.contains("/metrics") }
            let port = try #require(first.stdout.split(separator: ":").last?.split(separator: "/").first.flatMap { Int($0) })
            let second = try await TiplineProcess.run(["work", "--name", "second", "--metrics-port", String(port)], databaseURL: db.url, timeout: 30)
            #expect(second.status == .exit(1))
            #expect(second.stderr.contains("Error: cannot listen on 127.0.0.1:\(port) (--metrics-host, --metrics-port): Address already in use"),
                    "\(second.stderr)")
            first.signal(SIGTERM)
            #expect(try await first.wait(timeout: 30) == .exit(0))
            // A host that names nothing is said so, with the option, not as the resolver's error type.
            let nowhere = try await TiplineProcess.run(["work", "--metrics-host", "not a host", "--metrics-port", "0"], databaseURL: db.url, timeout: 30)
            #expect(nowhere.status == .exit(1))
            #expect(nowhere.stderr.contains("Error: cannot listen on not a host:0 (--metrics-host, --metrics-port): no such host or address ("),
                    "\(nowhere.stderr)")
        }
    }
}

@Suite("a drain whose database stays out of reach")
struct DrainGiveUpTests {
    @Test("a drain that never reaches its server gives up after --give-up-after seconds with exit 1")
    func serverDown() async throws {
        // Nothing listens on port 1: every connection attempt is refused by the host, not the server.
        let started = Date()
        let drain = try await TiplineProcess.run(["work", "--until-idle", "--give-up-after", "2"],
                                                 databaseURL: "postgresql://postgres@127.0.0.1:1/tipline", timeout: 60)
        #expect(drain.status == .exit(1), "stderr: \(drain.stderr.suffix(2000))")
        #expect(drain.stderr.contains("no connection for 2 s, so the drain gives up"), "\(drain.stderr.suffix(2000))")
        #expect(Date().timeIntervalSince(started) >= 2)
    }

    @Test("a drain pointed at a server that accepts connections but never answers gives up after --give-up-after, with exit 1")
    func serverNeverAnswers() async throws {
        let (listener, port) = try RawHTTP.listener()
        defer { close(listener) }
        let drain = try await TiplineProcess.run(["work", "--until-idle", "--give-up-after", "2"],
                                                 databaseURL: "postgresql://tipline@127.0.0.1:\(port)/tipline?connect_timeout=120", timeout: 60)
        #expect(drain.status == .exit(1), "stderr: \(drain.stderr.suffix(2000))")
        #expect(drain.stderr.contains("the database has not answered for 2 s"), "\(drain.stderr.suffix(2000))")
    }

    @Test("a drain whose server stops answering mid-batch gives up after --give-up-after, and a later drain does every report once")
    func serverSilentMidDrain() async throws {
        try await TestDatabase.with { db in
            // --give-up-after longer than libpq's connect_timeout (10 s): a check that must connect
            // fails to before the limit, and that is no answer either.
            let (scenario, drain, release, proxy) = try await Self.heldBehindFrozenRelay(
                db, count: 20, seed: 8, ["--until-idle", "--give-up-after", "12", "--lease", "4"], name: "unanswered")
            defer { proxy.close() }
            release.open()
            let status = try await drain.wait(timeout: 90)
            proxy.close()
            #expect(status == .exit(1), "stderr: \(drain.stderr.suffix(2000))")
            #expect(drain.stderr.contains("the database has not answered for 12 s"), "\(drain.stderr.suffix(2000))")
            // Its jobs come back once their lease runs out.
            let rescuer = try WorkerProcessTests.worker(db, ["--until-idle", "--fault-injection", "--lease", "4"], name: "rescuer")
            try rescuer.start()
            #expect(try await rescuer.wait(timeout: 120) == .exit(0), "rescuer stderr: \(rescuer.stderr.suffix(2000))")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    @Test("SIGTERM to a drain whose server stopped answering ends after --give-up-after with 75, not after its lease and ten seconds")
    func sigtermWhileTheServerIsSilent() async throws {
        try await TestDatabase.with { db in
            let (_, drain, _, proxy) = try await Self.heldBehindFrozenRelay(
                db, count: 10, seed: 9, ["--until-idle", "--give-up-after", "3", "--lease", "120"], name: "silenced")
            defer { proxy.close() }
            drain.signal(SIGTERM)  // the stop ends the hold: the completion then waits on the silent relay
            let started = ContinuousClock.now
            let status = try await drain.wait(timeout: 90)
            proxy.close()
            #expect(status == .exit(75), "stderr: \(drain.stderr.suffix(2000))")
            #expect(drain.stderr.contains("shutdown cannot finish: the database has not answered for 3 s"), "\(drain.stderr.suffix(2000))")
            // Long before the shutdown's own bound, 130 s.
            #expect(ContinuousClock.now - started < .seconds(60))
        }
    }

    @Test("a drain that loses its database mid-batch gives up, and a later drain does every report once")
    func databaseLostMidDrain() async throws {
        try await TestDatabase.with { db in
            let (scenario, drain, release) = try await Self.heldBatch(
                db, count: 40, seed: 5, ["--until-idle", "--give-up-after", "3", "--lease", "4"], name: "lost")
            // Frozen while it holds the batch: the door shuts, its sessions end, then it goes on.
            drain.signal(SIGSTOP)
            try await Self.door(db, open: false)
            drain.signal(SIGCONT)
            release.open()
            let status = try await drain.wait(timeout: 120)
            try await Self.door(db, open: true)
            #expect(status == .exit(1), "stderr: \(drain.stderr.suffix(2000))")
            #expect(drain.stderr.contains("so the drain gives up"), "\(drain.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 0)
            #expect(try await db.int("SELECT count(*) FROM jobs") == 40)
            // Its jobs come back once their lease runs out.
            let rescuer = try WorkerProcessTests.worker(db, ["--until-idle", "--fault-injection", "--lease", "4"], name: "rescuer")
            try rescuer.start()
            #expect(try await rescuer.wait(timeout: 120) == .exit(0), "rescuer stderr: \(rescuer.stderr.suffix(2000))")
            try await Checks.drainedExactlyOnce(db, scenario: scenario)
        }
    }

    @Test("SIGTERM while the database is gone mid-batch: the worker says its jobs wait for their leases and exits 75, not 0")
    func stopWithJobsLeftToLeases() async throws {
        try await TestDatabase.with { db in
            // A lease long enough that the shutdown watchdog (lease + 10 s) is not what ends it.
            let (_, worker, _) = try await Self.heldBatch(db, count: 10, seed: 6, ["--lease", "60"], name: "stranded")
            worker.signal(SIGSTOP)
            try await Self.door(db, open: false)
            worker.signal(SIGCONT)
            // The stop ends the hold: the batch's completion then finds no database.
            worker.signal(SIGTERM)
            let status = try await worker.wait(timeout: 120)
            try await Self.door(db, open: true)
            #expect(status == .exit(75), "stderr: \(worker.stderr.suffix(2000))")
            #expect(worker.stderr.contains("stopped with jobs it could not give back"), "\(worker.stderr.suffix(2000))")
            #expect(!worker.stderr.contains("shutdown did not finish"), "\(worker.stderr.suffix(2000))")
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'") == 10)
        }
    }

    @Test("jobs lost in an earlier outage and done since do not make a later stop without the database exit 75")
    func earlierOutageIsNotHeld() async throws {
        try await TestDatabase.with { db in
            // No fallback poll: a claim whose answer the second shutdown cut off would count as jobs
            // that may be under its lease (exit 75). Its lanes wake by notification alone (the
            // heartbeat's rescue sends one), so at that shutdown, once every report is done, no
            // lane has a claim in flight.
            let (_, worker, release) = try await Self.heldBatch(
                db, count: 10, seed: 7, ["--lease", "3", "--poll", "3600"], name: "recovered")
            worker.signal(SIGSTOP)
            try await Self.door(db, open: false)
            worker.signal(SIGCONT)
            release.open()
            try await waitUntil("the completion is lost", timeout: 90) { worker.stderr.contains("database unreachable while completing") }
            let lost = ContinuousClock.now
            try await Self.door(db, open: true)
            // Its leases run out; the worker's own heartbeat takes them back and its lanes do them.
            try await waitUntil("every report is done", timeout: 90) {
                try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 10
            }
            // The later stop comes more than a lease (3 s) after the loss: only that long may the
            // jobs it could not complete still be under its lease, for all the worker can know.
            try await Task.sleep(until: lost + .seconds(5), clock: .continuous)
            try await Self.door(db, open: false)
            worker.signal(SIGTERM)
            let status = try await worker.wait(timeout: 60)
            try await Self.door(db, open: true)
            #expect(status == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
            #expect(!worker.stderr.contains("stopped with jobs it could not give back"), "\(worker.stderr.suffix(2000))")
        }
    }

    /// Submits `count` reports of one batch, the first marked `FaultMarker.held`, starts a one-lane
    /// worker with `arguments` (and fault injection) and waits until it holds them all: it then
    /// waits to complete them until the release returned is opened (or it is asked to stop).
    static func heldBatch(_ db: TestDatabase, count: Int, seed: UInt64, _ arguments: [String],
                          name: String, url: String? = nil) async throws -> (Scenario, TiplineProcess, FaultRelease) {
        let scenario = Scenario.make(count: count, sellers: max(1, count / 4), seed: seed) { $0 == 0 ? " " + FaultMarker.held : "" }
        try await WorkerProcessTests.submit(scenario, to: db)
        let release = FaultRelease()
        let worker = try WorkerProcessTests.worker(
            db, arguments + ["--fault-injection", "--batch", "100", "--concurrency", "1"], name: name, environment: release.environment, url: url)
        try worker.start()
        try await waitUntil("the worker claims the batch") {
            try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'") == count
        }
        return (scenario, worker, release)
    }

    /// `heldBatch` through a relay to `db` that then stops passing bytes, keeping every connection
    /// open: the drain's calls neither return nor fail, as with a server stopped by SIGSTOP. The
    /// caller closes the relay.
    static func heldBehindFrozenRelay(_ db: TestDatabase, count: Int, seed: UInt64, _ arguments: [String], name: String)
        async throws -> (Scenario, TiplineProcess, FaultRelease, FreezingProxy) {
        let proxy = try await FreezingProxy(to: db)
        do {
            let (scenario, drain, release) = try await heldBatch(db, count: count, seed: seed, arguments, name: name, url: proxy.url(for: db))
            proxy.freeze()
            return (scenario, drain, release, proxy)
        } catch {
            proxy.close()
            throw error
        }
    }

    /// Opens the test database to new connections again, or shuts it and ends its sessions (as a
    /// restart or a network cut would, on this database alone).
    static func door(_ db: TestDatabase, open: Bool) async throws {
        let admin = Database(config: ConnectionConfig(conninfo: try TestDatabase.adminURL), maxConnections: 1)
        do {
            try await admin.execute(Query(sql: "ALTER DATABASE \(db.name) ALLOW_CONNECTIONS \(open ? "true" : "false")", binds: []))
            if !open { _ = try await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(db.name)") }
        } catch {
            await admin.shutdown()
            throw error
        }
        await admin.shutdown()
    }
}

/// Polls `condition` every 50 ms; fails after `timeout` seconds, naming what it waited for.
func waitUntil(_ what: String, timeout: Double = 60, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while try await !condition() {
        if Date() > deadline { throw TestSetupError("timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}
