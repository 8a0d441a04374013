import ContactExtraction
import Foundation
import Postgres
import Testing
import TiplineCore
@testable import TiplineStore

/// The queue's state changes, in-process against the real database.
@Suite("queue")
struct QueueTests {
    /// The key `tipline submit` and `serve` processes of the tests use too: one database, one key.
    static var key: ReporterKey { WorkerProcessTests.key }

    static func submit(_ texts: [String], to db: TestDatabase, reporters: [String]? = nil) async throws -> [Int64] {
        let inputs = texts.enumerated().map { index, text in
            ReportInput(externalID: "q\(index)", channel: .app, reporter: reporters?[index] ?? "u\(index)", text: text,
                        reportedAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(index) * 60), platform: nil)
        }
        return try await Intake(database: db.database, hasher: try await key.verify(against: db.database)).submit(inputs, source: "t").results.map(\.reportID)
    }

    static func process(_ jobs: [ClaimedJob]) -> [ProcessedReport] {
        jobs.map { ProcessedReport(job: $0, analysis: Analysis(text: $0.body)) }
    }

    /// Submits `texts`, claims them all in one batch under a 30-second lease, and reads them.
    static func claimedBatch(
        _ texts: [String], in db: TestDatabase
    ) async throws -> (queue: Queue, lease: Lease, jobs: [ClaimedJob], batch: [ProcessedReport]) {
        _ = try await submit(texts, to: db)
        let queue = Queue(database: db.database)
        let lease = Lease(owner: UUID(), seconds: 30)
        let jobs = try await queue.claim(limit: 10, lease: lease)
        try #require(jobs.count == texts.count)
        return (queue, lease, jobs, process(jobs))
    }

    /// Completes `batch` while a second session's transaction, after `stage` wrote in it, stays
    /// open: the completion starts once that transaction has written (it has a transaction id), and
    /// the transaction commits once a session waits for a lock (at most 10 s). Returns what `stage`
    /// returned, whether a waiter was seen, and the completion.
    static func complete<T: Sendable>(
        _ batch: [ProcessedReport], lease: Lease, queue: Queue, in db: TestDatabase,
        whileAnotherSession stage: @escaping @Sendable (Connection) throws -> T
    ) async throws -> (staged: T, sawWaiter: Bool, done: Completion) {
        let other = Database(config: ConnectionConfig(conninfo: db.url), maxConnections: 1)
        async let staged: (T, Bool) = other.withConnection { connection in
            try connection.transaction { tx in
                let value = try stage(tx)
                var sawWaiter = false
                for _ in 0..<400 where !sawWaiter {
                    sawWaiter = try tx.query("""
                        SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND backend_type = 'client backend' AND wait_event_type = 'Lock'
                           AND pid <> pg_backend_pid()
                        """).one().decode(Int.self, at: 0) > 0
                    if !sawWaiter { usleep(25_000) }
                }
                return (value, sawWaiter)
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while try await db.int("""
            SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND backend_type = 'client backend' AND backend_xid IS NOT NULL
            """) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(25))
        }
        let done = try await queue.complete(batch, lease: lease)
        let (value, sawWaiter) = try await staged
        await other.shutdown()
        return (value, sawWaiter, done)
    }

    @Test("a claim hands back the reporter's stored hash byte for byte; a stored value that is no hash is an error")
    func claimReadsReporterHash() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit(["V信: hash_reader1 出租"], to: db)
            let stored = try await db.database.query("SELECT reporter_hash FROM reports").one().decode(Data.self, at: 0)
            #expect(stored.count == 32)
            let claimed = try await Queue(database: db.database).claim(limit: 10, lease: Lease(owner: UUID(), seconds: 30))
            try #require(claimed.count == 1)
            #expect(claimed[0].reporterHash.bytes == Array(stored))
            let odd = try await db.database.query("""
                SELECT '\\x0g'::text, '\\xAB01ef'::text, ('\\x' || repeat('00', 33))::text, '\\x0'::text, 'ab01'::text, '\\x'::text
                """).one()
            #expect(throws: PostgresError.self) { try odd.decode(ReporterHash.self, at: 0) }
            #expect(try odd.decode(ReporterHash.self, at: 1).bytes == [0xAB, 0x01, 0xEF])
            for column in 2...4 { #expect(throws: PostgresError.self, "column \(column)") { try odd.decode(ReporterHash.self, at: column) } }
            #expect(try odd.decode(ReporterHash.self, at: 5).bytes == [])
        }
    }

    @Test("a worker whose lease expired cannot complete; the new owner can")
    func expiredLeaseIsFenced() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit(["V信: late_owner1 出租"], to: db)
            let queue = Queue(database: db.database)
            let late = Lease(owner: UUID(), seconds: 0.2)
            let first = try await queue.claim(limit: 10, lease: late)
            try #require(first.count == 1)
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await queue.rescueExpired().retried == 1)
            try await Task.sleep(for: .milliseconds(1100))  // rescued jobs come back within a jittered second
            let owner = Lease(owner: UUID(), seconds: 30)
            let second = try await queue.claim(limit: 10, lease: owner)
            try #require(second.count == 1)
            #expect(second[0].attempt == 2 && second[0].solo)
            let refused = try await queue.complete(Self.process(first), lease: late)
            #expect(refused.completed.isEmpty && refused.refused == [first[0].reportID])
            #expect(try await db.int("SELECT count(*) FROM contacts") == 0, "a refused completion wrote contacts")
            let done = try await queue.complete(Self.process(second), lease: owner)
            #expect(done.completed == [second[0].reportID])
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND attempts = 2") == 1)
        }
    }

    @Test("the same owner holding an older attempt cannot complete the newer one")
    func staleAttemptIsFenced() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit(["扣扣：12345678"], to: db)
            let queue = Queue(database: db.database)
            let lease = Lease(owner: UUID(), seconds: 0.2)
            let first = try await queue.claim(limit: 1, lease: lease)
            try #require(first.count == 1)
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await queue.rescueExpired().retried == 1)
            try await Task.sleep(for: .milliseconds(1100))  // rescued jobs come back within a jittered second
            // The same owner claims the job again: only its attempt tells the two claims apart.
            let longer = Lease(owner: lease.owner, seconds: 30)
            let second = try await queue.claim(limit: 1, lease: longer)
            try #require(second.count == 1 && second[0].attempt == 2 && first[0].attempt == 1)
            let stale = try await queue.complete(Self.process(first), lease: longer)
            #expect(stale.completed.isEmpty && stale.refused == [first[0].reportID])
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'running' AND attempt = 2") == 1)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 0)
            #expect(try await db.int("SELECT count(*) FROM contacts") == 0, "a refused completion wrote contacts")
            #expect(try await queue.complete(Self.process(second), lease: longer).completed == [second[0].reportID])
        }
    }

    @Test("a heartbeat keeps only the listed jobs, and rescues the expired jobs of others in the same statement")
    func heartbeatExtendsListedJobsAndRescuesOthers() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit(["QQ 1234567", "QQ 2345678", "QQ 3456789"], to: db)
            let queue = Queue(database: db.database)
            let alive = Lease(owner: UUID(), seconds: 0.5)
            let jobs = try await queue.claim(limit: 2, lease: alive)
            let silent = Lease(owner: UUID(), seconds: 0.3)
            let other = try await queue.claim(limit: 1, lease: silent)
            try #require(jobs.count == 2 && other.count == 1)
            let kept = jobs[0].reportID
            // The worker heartbeats for one of its two jobs only, past both leases.
            for _ in 0..<4 {
                try await Task.sleep(for: .milliseconds(250))
                _ = try await queue.heartbeat(lease: alive, holding: [kept], processed: 0)
            }
            let beat = try await queue.heartbeat(lease: alive, holding: [kept], processed: 0)
            #expect(beat.extended == 1 && beat.retried == 0 && beat.dead == 0, "\(beat)")
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'") == 1)
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'running' AND report_id = \(kept)") == 1)
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'retrying' AND solo") == 2)
            #expect(beat.soloWaiting, "the heartbeat did not say that jobs to be claimed alone are waiting")
            #expect(try await queue.complete(Self.process([jobs[0]]), lease: alive).completed == [kept])
        }
    }

    @Test("a heartbeat that lands after its worker deregistered leaves the stopped worker's row as the stop wrote it")
    func lateHeartbeatLeavesStoppedWorker() async throws {
        try await TestDatabase.with { db in
            let lease = Lease(owner: UUID(), seconds: 30)
            try await db.database.execute("""
                INSERT INTO workers (id, name, host, pid, concurrency, lease_seconds, batch_size, in_flight, processed,
                                     heartbeat_at, stopped_at)
                VALUES (\(lease.owner.uuidString)::uuid, 'w', 'h', 1, 2, 30, 50, 0, 7,
                        now() - interval '1 minute', now() - interval '1 minute')
                """)
            // A beat taken before the stop (nothing processed yet, two jobs in hand) arriving after it.
            _ = try await Queue(database: db.database).heartbeat(lease: lease, holding: [1, 2], processed: 0)
            #expect(try await db.int("""
                SELECT count(*) FROM workers
                 WHERE processed = 7 AND in_flight = 0 AND heartbeat_at < now() - interval '30 seconds'
                """) == 1, "the late heartbeat rewrote the stopped worker's counts or its last heartbeat")
        }
    }

    @Test("a claim's asynchronous commit does not leak: the session's next transactions wait for their flush")
    func claimLeavesSynchronousCommitOn() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit(["QQ 7654321"], to: db)
            let single = Database(config: ConnectionConfig(conninfo: db.url), maxConnections: 1)
            let jobs = try await Queue(database: single).claim(limit: 1, lease: Lease(owner: UUID(), seconds: 30))
            #expect(jobs.count == 1)
            // The same session (a pool of one): the claim's setting ended with its statement.
            #expect(try await single.query("SELECT current_setting('synchronous_commit')").one().decode(String.self, at: 0) == "on")
            let inTransaction = try await single.transaction { tx in
                try tx.query("SELECT current_setting('synchronous_commit')").one().decode(String.self, at: 0)
            }
            #expect(inTransaction == "on")
            await single.shutdown()
        }
    }

    @Test("in a worker's session the claim takes its batch from the ready index in order, never by sorting the queue")
    func claimNeverSortsTheQueue() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit((0..<300).map { "QQ \(7_000_000 + $0)" }, to: db)
            _ = try await db.database.execute("ANALYZE jobs")
            let claim = Queue.claimQuery(limit: 50, lease: Lease(owner: UUID(), seconds: 30), includeSolo: true)
            // Index scans priced out, as statistics taken while `jobs` was nearly empty once made
            // them look (a growth run's claims then sorted the whole backlog, on disk, for fifty jobs).
            let priced = [("enable_indexscan", "off")]
            let worker = try await Self.plan(of: claim, settings: Queue.workerSessionSettings() + priced, in: db)
            #expect(!worker.contains("Sort"), "\(worker)")
            #expect(worker.contains("Index Scan using jobs_ready_idx"), "\(worker)")
            // The same pricing without the worker's settings does sort: the check above can fail.
            let stock = try await Self.plan(of: claim, settings: priced, in: db)
            #expect(stock.contains("Sort Key: jobs_1.run_at, jobs_1.report_id"), "\(stock)")
        }
    }

    @Test("the fence reaches a batch's jobs by key, not through every running job")
    func fenceReadsJobsByKey() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit((0..<300).map { "QQ \(7_000_000 + $0)" }, to: db)
            // Statistics taken while nothing runs, as after a submit: the lease index looks empty.
            _ = try await db.database.execute("ANALYZE jobs")
            let queue = Queue(database: db.database)
            let leases = (0..<4).map { _ in Lease(owner: UUID(), seconds: 30) }
            var batches: [[ClaimedJob]] = []
            for lease in leases { batches.append(try await queue.claim(limit: 50, lease: lease)) }
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'running'") == 200)
            let fence = Queue.fence(Self.process(batches[0]), lease: leases[0])
            let settings = Queue.workerSessionSettings()
            let plan = try await Self.plan(of: fence, settings: settings, in: db)
            // By key: a plain or a bitmap index scan of the primary key, as the statistics have it.
            #expect(plan.contains("Index Scan using jobs_pkey") || plan.contains("Bitmap Index Scan on jobs_pkey"), "\(plan)")
            #expect(!plan.contains("jobs_lease_idx"), "\(plan)")
            // Naming the state instead, the same statistics send it through every running job's
            // entry in the lease index: the checks above can fail.
            let named = Query(sql: fence.sql.replacingOccurrences(of: "j.lease_expires_at IS NOT NULL", with: "j.state = 'running'"),
                              parameters: fence.parameters)
            #expect(named.sql != fence.sql)
            #expect(try await Self.plan(of: named, settings: settings, in: db).contains("jobs_lease_idx"))
        }
    }

    /// The generic plan (`EXPLAIN (COSTS OFF)`) of `query` in a session of its own with `settings`.
    static func plan(of query: Query, settings: [(String, String)], in db: TestDatabase) async throws -> String {
        let session = Database(config: ConnectionConfig(conninfo: db.url, settings: settings), maxConnections: 1)
        defer { Task { await session.shutdown() } }
        let explain = Query(sql: "EXPLAIN (COSTS OFF) " + query.sql, parameters: query.parameters)
        return try await session.query(explain).map { try $0.decode(String.self, at: 0) }.joined(separator: "\n")
    }

    @Test("scripts/bench runs the Tipline-shape ceiling under the worker's planner settings")
    func benchCeilingUsesWorkerSettings() throws {
        let bench = try ProjectTree.text("scripts/bench.py")
        let line = try #require(bench.split(separator: "\n").first { $0.hasPrefix("WORKER_PGOPTIONS = ") })
        let options = line.dropFirst("WORKER_PGOPTIONS = ".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        let pairs = options.split(separator: " ").filter { $0 != "-c" }.map { option -> String in String(option) }
        // A pgbench session is never idle inside a transaction: the timeout is the worker's alone.
        // Its database is the bench's own, made with the server's defaults: read committed, and no
        // idle-session timeout.
        let worker = Queue.workerSessionSettings()
            .filter { !["idle_in_transaction_session_timeout", "default_transaction_isolation", "idle_session_timeout"].contains($0.0) }
            .map { "\($0.0)=\($0.1)" }
        #expect(pairs == worker)
    }

    @Test("scripts/bench's Tipline-shape ceiling sends the worker's claim and no-contact completion, word for word")
    func benchCeilingUsesWorkerStatements() throws {
        let script = try ProjectTree.text("bench/tipline_claim_complete.pgbench")
        // Compared without whitespace and comments, every parameter (and its cast) made `?`: the
        // worker's `$n`, and what the script puts in their place (pgbench variables, a lease owner
        // made from the client id, a lease of 15 s, solo jobs included).
        func normalized(_ sql: String) -> String {
            var text = sql.split(separator: "\n").map { $0.hasPrefix("--") ? "" : String($0) }.joined(separator: "\n")
            for standIn in ["('00000000-0000-0000-0000-' || lpad(:client_id::text, 12, '0'))", ":batch", ":ids", ":attempts", ":categories"] {
                text = text.replacingOccurrences(of: standIn, with: "?")
            }
            text = text.replacingOccurrences(of: "secs => 15", with: "secs => ?")
                .replacingOccurrences(of: "WHERE solo AND true AND", with: "WHERE solo AND ? AND")
                .replacingOccurrences(of: #"\$[0-9]+"#, with: "?", options: .regularExpression)
                .replacingOccurrences(of: #"\?::[a-z0-9_]+(\[\])?"#, with: "?", options: .regularExpression)
            return text.filter { !$0.isWhitespace }
        }
        let pgbench = normalized(script)
        let lease = Lease(owner: UUID(), seconds: 15)
        // The claim: the script names the worker's UPDATE as a CTE, to keep its ids for the completion.
        let claim = normalized(Queue.claimQuery(limit: 50, lease: lease, includeSolo: true).sql)
        let update = try #require(claim.range(of: "UPDATEjobsj"))
        #expect(pgbench.contains(claim[..<update.lowerBound] + ",claimedAS(" + claim[update.lowerBound...] + ")"))
        let job = ClaimedJob(reportID: 1, attempt: 1, maxAttempts: 5, body: "", reporterHash: ReporterHash([])!, reportedAt: Date())
        let completion = Queue.completionWithoutContacts([ProcessedReport(job: job, analysis: Analysis(text: ""))], lease: lease)
        #expect(pgbench.contains(normalized(completion.sql) + ";"))
    }

    @Test("old completion counters fold into one row per day; recent ones and the totals stay as they were")
    func talliesFoldByDay() async throws {
        try await TestDatabase.with { db in
            try await db.database.execute("""
                INSERT INTO report_tallies (minute, backend, done, rental, sale, other) VALUES
                    (date_trunc('day', now()) - interval '3 days' + interval '10 minutes', 101, 5, 2, 3, 0),
                    (date_trunc('day', now()) - interval '3 days' + interval '20 hours', 102, 7, 0, 0, 7),
                    (date_trunc('day', now()) - interval '3 days', 0, 100, 100, 0, 0),
                    (date_trunc('day', now()) - interval '5 days' + interval '1 minute', 101, 1, 1, 0, 0),
                    (date_trunc('minute', now()), 101, 9, 9, 0, 0)
                """)
            let queue = Queue(database: db.database)
            #expect(try await queue.foldTallies() == 3)
            #expect(try await queue.foldTallies() == 0)
            #expect(try await db.int("SELECT count(*) FROM report_tallies") == 3)
            #expect(try await db.int("SELECT sum(done) FROM report_tallies") == 122)
            let threeDaysAgo = try await db.database.query("""
                SELECT done, rental, sale, other FROM report_tallies
                 WHERE minute = date_trunc('day', now()) - interval '3 days' AND backend = 0
                """).one()
            #expect(try (0..<4).map { try threeDaysAgo.decode(Int.self, at: $0) } == [112, 102, 3, 7])
            #expect(try await db.int("SELECT done FROM report_tallies WHERE minute = date_trunc('day', now()) - interval '5 days'") == 1)
            #expect(try await db.int("SELECT done FROM report_tallies WHERE backend = 101") == 9, "the current minute was folded")
        }
    }

    @Test("a batch with contacts that the fence partly refuses stores the contacts of the reports it kept, and only those")
    func partlyRefusedBatchStoresOnlyItsContacts() async throws {
        try await TestDatabase.with { db in
            let (queue, lease, jobs, batch) = try await Self.claimedBatch(
                ["出租微信 V信: seller_kept1", "空白号18元 扣扣：20000011", "出租微信 V信: seller_stolen9"], in: db)
            try #require(batch.allSatisfy { $0.analysis.contacts.count == 1 })
            let stolen = jobs[2].reportID
            try await db.database.execute("UPDATE jobs SET lease_owner = \(UUID().uuidString)::uuid WHERE report_id = \(stolen)")
            let done = try await queue.complete(batch, lease: lease)
            #expect(done.completed == jobs.prefix(2).map(\.reportID) && done.refused == [stolen])
            let kept = batch.prefix(2).map { $0.analysis.contacts[0].value }
            #expect(try await db.database.query("SELECT value FROM contacts ORDER BY id").map { try $0.decode(String.self, at: 0) }.sorted()
                    == kept.sorted())
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND cardinality(contact_ids) = 1") == 2)
        }
    }

    @Test("a contact whose seller is not stored fails its batch's completion, which writes nothing")
    func danglingOwnerFailsTheCompletion() async throws {
        try await TestDatabase.with { db in
            // No foreign key refuses this row since migration 0009; the completion must not spread its id.
            try await db.database.execute("INSERT INTO contacts (kind, value, offender_id) VALUES ('wechat', 'dangling_owner1', 987654)")
            let (queue, lease, jobs, batch) = try await Self.claimedBatch(["出租微信 V信: dangling_owner1"], in: db)
            try #require(batch[0].analysis.contacts == [Contact(kind: .wechat, value: "dangling_owner1")])
            let error = await #expect(throws: TiplineError.self) { try await queue.complete(batch, lease: lease) }
            #expect(error?.message == "contact wechat:dangling_owner1 names seller 987654, which is not stored")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE offender_id IS NOT NULL OR state = 'done'") == 0)
            #expect(try await db.int("SELECT count(*) FROM escalations") + (try await db.int("SELECT count(*) FROM offenders")) == 0)
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE report_id = \(jobs[0].reportID) AND state = 'running'") == 1)
        }
    }

    @Test("a new contact another batch inserts first is read back under the locks: the report joins that batch's seller")
    func newContactInsertedConcurrently() async throws {
        try await TestDatabase.with { db in
            let (queue, lease, _, batch) = try await Self.claimedBatch(["出租微信 V信: race_seller1 扣扣：34567890"], in: db)
            try #require(batch[0].analysis.contacts.count == 2)
            // Another batch holds the same new contact, inserted and not yet committed, with a seller
            // of its own; it commits once this completion waits for it.
            let (seller, sawWaiter, done) = try await Self.complete(batch, lease: lease, queue: queue, in: db) { tx in
                let seller = try tx.query("INSERT INTO offenders DEFAULT VALUES RETURNING id").one().decode(Int64.self, at: 0)
                try tx.execute("INSERT INTO contacts (kind, value, offender_id) VALUES ('wechat', 'race_seller1', \(seller))")
                return seller
            }
            #expect(sawWaiter, "the completion never waited for the other batch's insert")
            #expect(done.completed == [batch[0].job.reportID])
            #expect(try await db.int("SELECT count(*) FROM reports WHERE offender_id = \(seller) AND state = 'done'") == 1)
            #expect(try await db.int("SELECT count(*) FROM contacts WHERE offender_id = \(seller)") == 2)
            #expect(try await db.int("SELECT count(*) FROM offenders") == 1, "a seller was created for a contact that had one")
            #expect(try await db.int(Checks.danglingReferences) == 0)
        }
    }

    /// The absorbed seller's level decides how the completion locks it: `none` FOR UPDATE, `refer`
    /// (the top of the ladder) FOR SHARE.
    @Test("a seller merged away between the first read and its lock: the contacts are read again, the report goes to the survivor",
          arguments: ["none", "refer"])
    func ownerMergedBeforeItsLock(absorbedLevel: String) async throws {
        try await TestDatabase.with { db in
            let (queue, lease, _, batch) = try await Self.claimedBatch(["出租微信 V信: merged_seller1"], in: db)
            try #require(batch[0].analysis.contacts.count == 1)
            let contact = batch[0].analysis.contacts[0]
            let survivor = try await db.int("INSERT INTO offenders DEFAULT VALUES RETURNING id")
            let absorbed = try await db.int("INSERT INTO offenders (level) VALUES (\(absorbedLevel)) RETURNING id")
            _ = try await db.database.execute("INSERT INTO contacts (kind, value, offender_id) VALUES (\(contact.kind.rawValue), \(contact.value), \(Int64(absorbed)))")
            // Another batch merges the contact's seller into an older one and commits once this
            // completion waits for the absorbed seller's lock: the completion read the contact
            // before the merge, so the lock must tell it that its owner is gone.
            let (_, sawWaiter, done) = try await Self.complete(batch, lease: lease, queue: queue, in: db) { tx in
                try tx.execute("UPDATE offenders SET merged_into = \(Int64(survivor)) WHERE id = \(Int64(absorbed))")
                try tx.execute("UPDATE contacts SET offender_id = \(Int64(survivor)) WHERE offender_id = \(Int64(absorbed))")
            }
            #expect(sawWaiter, "the completion never waited for the merging batch")
            #expect(done.completed == [batch[0].job.reportID])
            #expect(try await db.int("SELECT offender_id FROM reports WHERE id = \(batch[0].job.reportID)") == survivor)
            #expect(try await db.int("SELECT count(*) FROM contacts WHERE offender_id = \(Int64(absorbed))") == 0)
            #expect(try await db.int("SELECT count(*) FROM offenders") == 2, "a seller was created for a contact that had one")
            #expect(try await db.int(Checks.danglingReferences) == 0)
        }
    }

    @Test("a batch absorbing a seller does not wait for the sellers merged into it earlier: one another session holds fails the completion at once, which writes nothing and succeeds once it is free")
    func absorbedSellersEarlierMergesLockedWithoutWaiting() async throws {
        try await TestDatabase.with { db in
            let (queue, lease, jobs, batch) = try await Self.claimedBatch(["出租微信 V信: chain_seller1 扣扣：34567890"], in: db)
            let contacts = batch[0].analysis.contacts
            try #require(contacts.count == 2)
            // Two stored sellers the report links (the older survives), and one merged earlier into
            // the younger, which the merge must point at the survivor.
            let older = Int64(try await db.int("INSERT INTO offenders DEFAULT VALUES RETURNING id"))
            let younger = Int64(try await db.int("INSERT INTO offenders DEFAULT VALUES RETURNING id"))
            let mergedEarlier = Int64(try await db.int("INSERT INTO offenders (merged_into) VALUES (\(younger)) RETURNING id"))
            for (contact, owner) in zip(contacts, [older, younger]) {
                _ = try await db.database.execute(
                    "INSERT INTO contacts (kind, value, offender_id) VALUES (\(contact.kind.rawValue), \(contact.value), \(owner))")
            }
            // Another session holds the earlier-merged seller, as a batch does that read one of its
            // contacts before that merge. Were the completion to wait for it, it would go on once the
            // hold ends and succeed instead of failing.
            let error = await #expect(throws: PostgresError.self) {
                try await db.whileAnotherSessionHolds("SELECT id FROM offenders WHERE id = \(mergedEarlier) FOR UPDATE") {
                    try await queue.complete(batch, lease: lease)
                }
            }
            #expect(error?.sqlState == .lockNotAvailable)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 0)
            #expect(try await db.int("SELECT count(*) FROM offenders WHERE merged_into IS NOT NULL") == 1)
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE report_id = \(jobs[0].reportID) AND state = 'running'") == 1)

            let done = try await queue.complete(batch, lease: lease)
            #expect(done.completed == [jobs[0].reportID])
            #expect(try await db.int("SELECT count(*) FROM offenders WHERE merged_into = \(older)") == 2)
            #expect(try await db.int("SELECT offender_id FROM reports WHERE id = \(jobs[0].reportID)") == Int(older))
            #expect(try await db.int(Checks.danglingReferences) == 0)
        }
    }

    @Test("in a database whose default isolation is repeatable read, a worker's completion still takes a seller changed while it waited")
    func workerSessionsReadCommitted() async throws {
        try await TestDatabase.with { db in
            _ = try await db.database.execute("ALTER DATABASE \(unescaped: db.name) SET default_transaction_isolation = 'repeatable read'")
            let worker = Database(
                config: ConnectionConfig(conninfo: db.url, settings: Queue.workerSessionSettings()), maxConnections: 1)
            defer { Task { await worker.shutdown() } }
            _ = try await Self.submit(["出租微信 V信: iso_seller1"], to: db)
            let queue = Queue(database: worker)
            let lease = Lease(owner: UUID(), seconds: 30)
            let batch = Self.process(try await queue.claim(limit: 10, lease: lease))
            try #require(batch.count == 1 && batch[0].analysis.contacts.count == 1)
            let contact = batch[0].analysis.contacts[0]
            let seller = try await db.int("INSERT INTO offenders DEFAULT VALUES RETURNING id")
            _ = try await db.database.execute("INSERT INTO contacts (kind, value, offender_id) VALUES (\(contact.kind.rawValue), \(contact.value), \(Int64(seller)))")
            // Another batch raises the seller and commits once this completion waits for its lock.
            let (_, sawWaiter, done) = try await Self.complete(batch, lease: lease, queue: queue, in: db) { tx in
                try tx.execute("UPDATE offenders SET level = 'review', updated_at = now() WHERE id = \(Int64(seller))")
            }
            #expect(sawWaiter, "the completion never waited for the other batch")
            #expect(done.completed == [batch[0].job.reportID])
            #expect(try await db.int("SELECT offender_id FROM reports WHERE id = \(batch[0].job.reportID)") == seller)
            #expect(try await worker.query("SHOW transaction_isolation").one().decode(String.self, at: 0) == "read committed")
        }
    }

    @Test("a batch without contacts completes in one statement: only the jobs its lease still holds, each counted once")
    func contactlessBatchIsFenced() async throws {
        try await TestDatabase.with { db in
            let (queue, lease, jobs, batch) = try await Self.claimedBatch(
                ["出租微信号，价格私聊", "收购旧号，懂的来", "这个广告没有联系方式"], in: db)
            try #require(batch.allSatisfy { $0.analysis.contacts.isEmpty })
            // Another worker took over the last job (its lease ran out and it was claimed again).
            let stolen = jobs[2].reportID
            try await db.database.execute("UPDATE jobs SET lease_owner = \(UUID().uuidString)::uuid WHERE report_id = \(stolen)")
            let done = try await queue.complete(batch, lease: lease)
            #expect(done.completed == jobs.prefix(2).map(\.reportID))
            #expect(done.refused == [stolen])
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND outcome = 'no_contact' AND attempts = 1") == 2)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE id = \(stolen) AND state = 'pending' AND outcome IS NULL") == 1)
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE report_id = \(stolen)") == 1, "the refused job was deleted")
            #expect(try await db.int("SELECT sum(done) FROM report_tallies") == 2)
            let categories = batch.prefix(2).map(\.analysis.category.rawValue)
            #expect(try await db.int("""
                SELECT count(*) FROM reports r JOIN unnest(\(jobs.prefix(2).map(\.reportID))::bigint[], \(categories)::text[]) AS v (id, category)
                    ON v.id = r.id AND v.category = r.category
                """) == 2)
            // Completing the same batch again completes nothing and counts nothing.
            let again = try await queue.complete(Array(batch.prefix(2)), lease: lease)
            #expect(again.completed.isEmpty && again.refused.count == 2)
            #expect(try await db.int("SELECT sum(done) FROM report_tallies") == 2)
        }
    }

    @Test("a retried completion tells its own earlier commit from a lost lease")
    func retryRecognisesItsOwnCommit() async throws {
        try await TestDatabase.with { db in
            let (queue, lease, jobs, batch) = try await Self.claimedBatch(
                ["V信: retry_seller1 出租", "扣扣：23456789", "没有联系方式的广告"], in: db)
            // The first completion commits (as one whose connection then broke would have).
            let first = try await queue.complete(Array(batch.prefix(2)), lease: lease)
            try #require(first.completed.count == 2)
            // The third report's lease is lost: rescued and completed by another worker at attempt 2.
            let third = jobs[2].reportID
            try await db.database.execute("""
                UPDATE jobs SET attempt = 2, lease_owner = \(UUID().uuidString)::uuid WHERE report_id = \(third)
                """)
            let retry = try await queue.complete(batch, lease: lease)
            #expect(retry.completed.isEmpty && Set(retry.refused) == Set(jobs.map(\.reportID)))
            let earlier = try await queue.completedEarlier(batch, refused: retry.refused)
            #expect(earlier == jobs.prefix(2).map(\.reportID))
            // Done by someone else at a later attempt is not this batch's work either.
            try await db.database.execute("""
                WITH gone AS (DELETE FROM jobs WHERE report_id = \(third) RETURNING report_id)
                UPDATE reports r SET state = 'done', outcome = 'no_contact', attempts = 2, processed_at = now()
                  FROM gone WHERE r.id = gone.report_id
                """)
            #expect(try await queue.completedEarlier(batch, refused: [third]).isEmpty)
        }
    }

    @Test("a rescue never undoes a completion")
    func rescueAfterCompletionIsNoOp() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit(["vx：abc_12345"], to: db)
            let queue = Queue(database: db.database)
            let lease = Lease(owner: UUID(), seconds: 0.3)
            let jobs = try await queue.claim(limit: 1, lease: lease)
            _ = try await queue.complete(Self.process(jobs), lease: lease)
            try await Task.sleep(for: .milliseconds(400))
            let rescued = try await queue.rescueExpired()
            #expect(rescued.retried == 0 && rescued.dead == 0)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 1)
            #expect(try await queue.isIdle())
        }
    }

    @Test("a failed attempt waits for its backoff, and the last one leaves the report dead with its error")
    func failuresBackOffThenDie() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit(["QQ 5566778"], to: db)
            try await db.database.execute("UPDATE jobs SET max_attempts = 2")
            let queue = Queue(database: db.database)
            let lease = Lease(owner: UUID(), seconds: 30)
            let first = try await queue.claim(limit: 1, lease: lease)
            try #require(first.count == 1)
            // A backoff long enough that even a stalled machine cannot reach its end in this test.
            #expect(try await queue.fail(first[0], error: "boom 1", retryDelay: 60, lease: lease))
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE run_at > now() + interval '50 seconds'") == 1)
            #expect(try await queue.claim(limit: 1, lease: lease).isEmpty, "claimed before its backoff ended")
            // Its backoff over (moved forward rather than waited for), it is claimed again.
            try await db.database.execute("UPDATE jobs SET run_at = now()")
            let second = try await queue.claim(limit: 1, lease: lease)
            try #require(second.count == 1)
            #expect(second[0].attempt == 2)
            #expect(try await queue.fail(second[0], error: "boom 2", retryDelay: 60, lease: lease))
            let row = try await db.database.query("SELECT state, attempts, last_error FROM reports").one()
            #expect(try row.decode(String.self, at: 0) == "dead")
            #expect(try row.decode(Int.self, at: 1) == 2)
            #expect(try row.decode(String.self, at: 2) == "boom 2")
            #expect(try await queue.isIdle())
            // And an administrator can queue it again.
            #expect(try await DeadJobs.retry(db.database, ids: nil) == [second[0].reportID])
            #expect(try await db.int("SELECT count(*) FROM jobs WHERE state = 'queued' AND attempt = 0") == 1)
        }
    }

    @Test("a batch of ads listing thousands of numbers that absorbs a seller with thousands more moves every contact, in the batch or not, to the survivor")
    func largeMergeMovesEveryContact() async throws {
        try await TestDatabase.with { db in
            func numbers(_ range: ClosedRange<Int>) -> String { "出租QQ " + range.map { "QQ\(10_000_000 + $0)" }.joined(separator: " ") }
            // Report 0 makes seller 1 (one number); reports 1-5 seller 2 (20,001 numbers, each report
            // sharing one with the one before); report 6 links them, and reports 7-10 name 16,004
            // of seller 2's numbers again: seller 2 is absorbed with its contacts in the batch and out of it.
            let texts = [numbers(9_999_999...9_999_999)] + (0..<5).map { numbers($0 * 4_000...($0 + 1) * 4_000) }
                + ["QQ19999999 QQ10000000"] + (0..<4).map { numbers($0 * 4_000...($0 + 1) * 4_000) }
            _ = try await Self.submit(texts, to: db)
            let queue = Queue(database: db.database)
            let lease = Lease(owner: UUID(), seconds: 120)
            for limit in [1, 5, 5] {
                let jobs = try await queue.claim(limit: limit, lease: lease)
                try #require(jobs.count == limit)
                #expect(try await queue.complete(Self.process(jobs), lease: lease).completed.count == limit)
            }
            #expect(try await db.int("SELECT count(*) FROM offenders WHERE id = 2 AND merged_into = 1") == 1)
            #expect(try await db.int("SELECT count(*) FROM contacts") == 20_002)
            #expect(try await db.int("SELECT count(*) FROM contacts WHERE offender_id IS DISTINCT FROM 1") == 0)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done' AND offender_id IN (1, 2)") == 11)
        }
    }

    @Test("an escalation is timed when it is written to the outbox, after any wait for the outbox lock: times follow ids")
    func escalationTimedAtItsInsert() async throws {
        try await TestDatabase.with { db in
            let (queue, lease, _, batch) = try await Self.claimedBatch(["QQ 5566778", "扣扣 5566778"], in: db)
            let other = Database(config: ConnectionConfig(conninfo: db.url), maxConnections: 1)
            defer { Task { await other.shutdown() } }
            // Another writer holds the outbox while the completion reaches it, and lets go once it waits.
            let (released, completion) = try await other.withConnection { session in
                try session.transaction { tx in
                    try tx.execute("SELECT pg_advisory_xact_lock(\(EscalationFeed.outboxLock))")
                    let completion = Task { try await queue.complete(batch, lease: lease) }
                    var waited = false
                    for _ in 0..<400 where !waited {
                        waited = try tx.query("""
                            SELECT count(*) FROM pg_locks
                             WHERE locktype = 'advisory' AND NOT granted
                               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                            """).one().decode(Int.self, at: 0) > 0
                        if !waited { usleep(25_000) }
                    }
                    #expect(waited, "the completion never waited for the outbox")
                    return (try tx.query("SELECT clock_timestamp()").one().decode(Date.self, at: 0), completion)
                }
            }
            #expect(try await completion.value.escalations == 1)
            let written = try await db.database.query("SELECT created_at FROM escalations").one().decode(Date.self, at: 0)
            #expect(written > released, "escalation timed \(written), before the outbox was free at \(released)")
        }
    }

    @Test("a batch is completed in consecutive parts of at most the contact limit; a report over it is a part of its own")
    func completionParts() async throws {
        try await TestDatabase.with { db in
            func numbers(_ count: Int, from start: Int) -> String { (0..<count).map { "QQ\(20_000_000 + start + $0)" }.joined(separator: " ") }
            let sizes = [3, 4, 0, 9, 2, 2]
            var start = 0
            let texts = sizes.map { size in
                defer { start += size }
                return size == 0 ? "no contact here" : numbers(size, from: start)
            }
            let (_, _, _, batch) = try await Self.claimedBatch(texts, in: db)
            let ordered = batch.sorted { $0.job.reportID < $1.job.reportID }
            #expect(ordered.map(\.analysis.contacts.count) == sizes)
            let parts = Queue.completionParts(ordered, limit: 8)
            #expect(parts.map { $0.map(\.analysis.contacts.count) } == [[3, 4, 0], [9], [2, 2]])
            #expect(parts.flatMap { $0 }.map(\.job.reportID) == ordered.map(\.job.reportID))
            #expect(Queue.completionParts(ordered).count == 1, "a batch within the limit was split")
        }
    }

    @Test("a report linking two sellers merges them into the lower id, and merged ids still resolve")
    func mergeKeepsLowestID() async throws {
        try await TestDatabase.with { db in
            _ = try await Self.submit(["V信: seller_aaa1", "扣扣：7788990"], to: db)
            let queue = Queue(database: db.database)
            let lease = Lease(owner: UUID(), seconds: 30)
            _ = try await queue.complete(Self.process(try await queue.claim(limit: 1, lease: lease)), lease: lease)
            _ = try await queue.complete(Self.process(try await queue.claim(limit: 1, lease: lease)), lease: lease)
            #expect(try await db.int("SELECT count(*) FROM offenders") == 2)
            let inputs = [ReportInput(externalID: "link", channel: .app, reporter: "u9", text: "微信号：seller_aaa1 QQ 7788990",
                                      reportedAt: Date(timeIntervalSince1970: 1_790_001_000), platform: nil)]
            _ = try await Intake(database: db.database, hasher: try await Self.key.verify(against: db.database)).submit(inputs, source: "t")
            _ = try await queue.complete(Self.process(try await queue.claim(limit: 1, lease: lease)), lease: lease)
            let survivors = try await db.database.query("SELECT id FROM offenders WHERE merged_into IS NULL")
            #expect(survivors.count == 1)
            let survivor = try survivors.one().decode(Int64.self, at: 0)
            #expect(try await db.int("SELECT min(id)::int FROM offenders") == Int(survivor))
            // The first report still names the absorbed offender, which resolves to the survivor.
            #expect(try await db.int("""
                SELECT count(DISTINCT coalesce(o.merged_into, o.id)) FROM reports r JOIN offenders o ON o.id = r.offender_id
                """) == 1)
            #expect(try await db.int("SELECT count(DISTINCT offender_id) FROM contacts") == 1)
            // 3 distinct reporters within the window: restrict.
            #expect(try await db.database.query("SELECT level FROM offenders WHERE id = \(survivor)").one().decode(String.self, at: 0) == "restrict")
            let merged = try await db.database.query("SELECT id FROM offenders WHERE merged_into IS NOT NULL").one().decode(Int64.self, at: 0)
            #expect(try await OffenderView.find(String(merged), in: db.database)?.id == survivor)
            #expect(try await OffenderView.find("qq:7788990", in: db.database)?.id == survivor)
        }
    }

    @Test("new sellers beside a stored one get ids in creation order, none wasted; one absorbed within the batch keeps no report")
    func newSellersBesideStoredOne() async throws {
        try await TestDatabase.with { db in
            // A stored seller, then a batch that locks it (and reads its history) while creating two
            // new sellers, the second absorbed into the first by the batch's last report.
            _ = try await Self.submit(
                ["V信: stored_one1", "扣扣：5566778", "V信: stored_one1", "V信: fresh_bbb2", "微信号：fresh_bbb2 QQ 5566778"], to: db)
            let queue = Queue(database: db.database)
            let lease = Lease(owner: UUID(), seconds: 30)
            _ = try await queue.complete(Self.process(try await queue.claim(limit: 1, lease: lease)), lease: lease)
            let stored = try await db.int("SELECT min(id)::int FROM offenders")
            let jobs = try await queue.claim(limit: 10, lease: lease)
            try #require(jobs.count == 4)
            let completion = try await queue.complete(Self.process(jobs), lease: lease)
            #expect(completion.completed.count == 4 && completion.refused.isEmpty)
            let rows = try await db.database.query("SELECT id, merged_into, level FROM offenders WHERE id > \(stored) ORDER BY id")
            try #require(rows.count == 2)
            let first = try rows[0].decode(Int64.self, at: 0)
            #expect(first == Int64(stored) + 1)
            #expect(try rows[0].decodeIfPresent(Int64.self, at: 1) == nil)
            #expect(try rows[1].decode(Int64.self, at: 0) == first + 1)
            #expect(try rows[1].decodeIfPresent(Int64.self, at: 1) == first)
            // Three reports by three reporters land on the new seller: restrict; two on the stored one: review.
            #expect(try rows[0].decode(String.self, at: 2) == "restrict")
            #expect(try await db.database.query("SELECT level FROM offenders WHERE id = \(stored)").one().decode(String.self, at: 0) == "review")
            // The batch's reports land on the survivor itself, the absorbed one's among them.
            #expect(try await db.int("SELECT count(*)::int FROM reports WHERE offender_id = \(first)") == 3)
            // Exactly the ids used were drawn from the sequence.
            #expect(try await db.int("SELECT last_value::int FROM offenders_id_seq") == Int(first) + 1)
        }
    }
}
