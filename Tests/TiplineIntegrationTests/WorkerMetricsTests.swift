import Foundation
import Postgres
import Testing
import TiplineWorker

/// `tipline work --metrics-port`: a real worker process scraped over HTTP while it works.
@Suite("worker metrics", .serialized)
struct WorkerMetricsTests {
    /// The unlabelled samples of a Prometheus text page (`name value`), and labelled ones by their full key.
    static func samples(_ page: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in page.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    /// The port a worker started with `--metrics-port 0` prints (`metrics on http://127.0.0.1:PORT/metrics`).
    static func metricsPort(of worker: TiplineProcess) async throws -> Int {
        var port = 0
        try await waitUntil("the worker prints its metrics address", timeout: 30) {
            guard let line = worker.stdout.split(separator: "\n").first(where: { $0.hasPrefix("metrics on http://127.0.0.1:") }) else {
                return false
            }
            port = Int(line.split(separator: ":").last?.split(separator: "/").first ?? "") ?? 0
            return port > 0
        }
        return port
    }

    @Test("a worker exports claimed, completed, retried and dead counts, batch sizes and latency histograms")
    func workerExportsPrometheusMetrics() async throws {
        try await TestDatabase.with { db in
            // 30 reports, two of which fail every attempt (5 attempts: 4 retries, then dead).
            let scenario = Scenario.make(count: 30, sellers: 8, seed: 5) { $0 == 3 || $0 == 17 ? " " + FaultMarker.fail : "" }
            try await WorkerProcessTests.submit(scenario, to: db)
            let started = Date()
            let worker = try WorkerProcessTests.worker(
                db, ["--metrics-port", "0", "--fault-injection", "--retry-base", "0", "--batch", "10", "--poll", "0.2"],
                name: "metered")
            try worker.start()
            let port = try await Self.metricsPort(of: worker)
            var page = ""
            // In flight goes down just after a batch's counts go up: both are waited for.
            try await waitUntil("every job is completed or dead, and none in flight", timeout: 60) {
                let reply = try await RawHTTP.send(port: port, "GET", "/metrics")
                page = reply.text
                let values = Self.samples(page)
                return values[WorkerMetricName.completed] == 28 && values[WorkerMetricName.dead] == 2 && values[WorkerMetricName.inFlight] == 0
            }
            let values = Self.samples(page)
            #expect(values[WorkerMetricName.retried] == 8, "\(page)")
            // 28 good claims + 2 × 5 attempts of the failing ones.
            #expect(values[WorkerMetricName.claimed] == 38, "\(page)")
            #expect(values[WorkerMetricName.refused] == 0)
            #expect(values[WorkerMetricName.inFlight] == 0)
            #expect(values[WorkerMetricName.batchSize + "_sum"] == 38)
            #expect((values[WorkerMetricName.batchSize + "_count"] ?? 0) >= 4, "batches of at most 10")
            #expect(values[WorkerMetricName.queueLag + "_count"] == 38)
            #expect((values[WorkerMetricName.claimDuration + "_count"] ?? 0) >= 4)
            #expect((values[WorkerMetricName.processingDuration + "_count"] ?? 0) >= 4)
            #expect(values[WorkerMetricName.claimDuration + #"_bucket{le="+Inf"}"#] == values[WorkerMetricName.claimDuration + "_count"])
            #expect(page.contains(WorkerMetricName.processingDuration + #"_bucket{le="0.001"}"#), "fine latency buckets")
            #expect(page.contains(#"tipline_worker_jobs_rescued_total{outcome="retried"} 0"#))
            #expect(page.contains(#"tipline_worker_database_errors_total{operation="claim"} 0"#), "\(page)")
            #expect(page.contains(#"tipline_worker_database_errors_total{operation="heartbeat"} 0"#), "\(page)")
            let beat = values[WorkerMetricName.lastHeartbeat] ?? 0
            #expect(beat >= started.timeIntervalSince1970 - 1 && beat <= Date().timeIntervalSince1970 + 1, "last heartbeat \(beat)")
            // Every metric says what it counts, on the line before its TYPE line.
            for (name, help) in WorkerMetricName.help {
                #expect(page.contains("# HELP \(name) \(help)\n# TYPE \(name) "), "\(name): \(page)")
            }
            // Nothing in the metrics names a report or a reporter.
            #expect(!page.contains(scenario.reports[0].text.prefix(12)))
            #expect(try await RawHTTP.send(port: port, "GET", "/healthz").status == 200)
            #expect(try await RawHTTP.send(port: port, "GET", "/v1/reports").status == 404, "only metrics are served")
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: 30) == .exit(0), "stderr: \(worker.stderr.suffix(2000))")
        }
    }

    @Test("failed claims and heartbeats are counted, and the last heartbeat's time stops moving while they fail")
    func databaseErrorsAreCounted() async throws {
        try await TestDatabase.with { db in
            let role = try await RoleTests.login("tipline_worker", in: db)
            let worker = try TiplineProcess(
                ["work", "--name", "cut-off", "--log-level", "notice", "--metrics-port", "0", "--poll", "0.2", "--lease", "1.5"],
                databaseURL: role.url)
            try worker.start()
            let port = try await Self.metricsPort(of: worker)
            var values: [String: Double] = [:]
            try await waitUntil("a first heartbeat", timeout: 30) {
                values = Self.samples(try await RawHTTP.send(port: port, "GET", "/metrics").text)
                return (values[WorkerMetricName.lastHeartbeat] ?? 0) > 0
            }
            // Its role loses its grants: every claim and heartbeat fails from now on.
            let admin = Database(config: ConnectionConfig(conninfo: try TestDatabase.adminURL), maxConnections: 1)
            defer { Task { await admin.shutdown() } }
            try await admin.execute(Query(sql: "REVOKE tipline_worker FROM \(role.name)", binds: []))
            let revoked = Date().timeIntervalSince1970
            let claims = WorkerMetricName.databaseErrors + #"{operation="claim"}"#
            let beats = WorkerMetricName.databaseErrors + #"{operation="heartbeat"}"#
            try await waitUntil("failed claims and heartbeats counted", timeout: 60) {
                values = Self.samples(try await RawHTTP.send(port: port, "GET", "/metrics").text)
                return (values[claims] ?? 0) >= 2 && (values[beats] ?? 0) >= 2
            }
            #expect((values[WorkerMetricName.lastHeartbeat] ?? .infinity) < revoked + 1, "\(values)")
            worker.signal(SIGTERM)
            _ = try await worker.wait(timeout: 60)
        }
    }

    @Test("without --metrics-port a worker opens no port, and a bad port is refused with a clear message")
    func metricsAreOptIn() async throws {
        let refused = try await TiplineProcess.run(["work", "--metrics-port", "70000"], databaseURL: nil)
        #expect(refused.status == .exit(64))
        #expect(refused.stderr.contains("--metrics-port must be between 0 and 65535"), "\(refused.stderr)")
        try await TestDatabase.with { db in
            // Each worker runs until it listens for jobs (its start-up done), then its listening
            // sockets are read from /proc. With --metrics-port 0 there is one (the check can see it).
            for (arguments, name) in [([String](), "quiet"), (["--metrics-port", "0"], "metered")] {
                let worker = try WorkerProcessTests.worker(db, arguments, name: name)
                try worker.start()
                try await waitUntil("worker \(name) listens for jobs") {
                    try await db.int("""
                        SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND application_name = 'tipline-listen'
                        """) == 1
                }
                let ports = Self.listeningPorts(of: worker.process.processIdentifier)
                #expect(ports.isEmpty == arguments.isEmpty, "worker \(name) listens on TCP ports \(ports)")
                #expect(worker.stdout.contains("metrics on") == !arguments.isEmpty, "\(worker.stdout)")
                worker.signal(SIGTERM)
                #expect(try await worker.wait(timeout: 60) == .exit(0))
            }
        }
    }

    /// The TCP ports process `pid` listens on: its sockets (from /proc/PID/fd) that the kernel's
    /// table lists as listening.
    static func listeningPorts(of pid: Int32) -> [Int] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        let inodes = Set(fds.compactMap { fd -> Substring? in
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                  link.hasPrefix("socket:[") else { return nil }
            return link.dropFirst(8).dropLast()
        })
        return TCPTable.sockets().filter { $0.state == "0A" && inodes.contains($0.inode) }.map(\.localPort)
    }
}
