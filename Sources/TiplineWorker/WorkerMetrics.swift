import Metrics

/// What a worker records through swift-metrics (`tipline work --metrics-port` exports it in
/// Prometheus format). Without a metrics back end the calls cost next to nothing.
struct WorkerMetrics: Sendable {
    let claimed = Counter(label: WorkerMetricName.claimed)
    let completed = Counter(label: WorkerMetricName.completed)
    let retried = Counter(label: WorkerMetricName.retried)
    let dead = Counter(label: WorkerMetricName.dead)
    let refused = Counter(label: WorkerMetricName.refused)
    let rescuedRetried = Counter(label: WorkerMetricName.rescued, dimensions: [("outcome", "retried")])
    let rescuedDead = Counter(label: WorkerMetricName.rescued, dimensions: [("outcome", "dead")])
    let batchSize = Recorder(label: WorkerMetricName.batchSize, aggregate: true)
    let claimLatency = Metrics.Timer(label: WorkerMetricName.claimDuration)
    let processingLatency = Metrics.Timer(label: WorkerMetricName.processingDuration)
    let queueLag = Metrics.Timer(label: WorkerMetricName.queueLag)
    let inFlight = Gauge(label: WorkerMetricName.inFlight)
    let claimErrors = Counter(label: WorkerMetricName.databaseErrors, dimensions: [("operation", "claim")])
    let heartbeatErrors = Counter(label: WorkerMetricName.databaseErrors, dimensions: [("operation", "heartbeat")])
    let lastHeartbeat = Gauge(label: WorkerMetricName.lastHeartbeat)
}

/// The names of the worker's metrics.
public enum WorkerMetricName {
    /// Jobs this worker claimed (counter).
    public static let claimed = "tipline_worker_jobs_claimed_total"
    /// Jobs completed with an outcome (counter).
    public static let completed = "tipline_worker_jobs_completed_total"
    /// Failed attempts sent back for a retry (counter).
    public static let retried = "tipline_worker_jobs_retried_total"
    /// Jobs that used up their attempts (counter).
    public static let dead = "tipline_worker_jobs_dead_total"
    /// Results discarded because the lease was lost before completion (counter).
    public static let refused = "tipline_worker_jobs_lease_lost_total"
    /// Jobs of silent workers this worker put back or declared dead (counter, `outcome`).
    public static let rescued = "tipline_worker_jobs_rescued_total"
    /// Jobs per claimed batch (histogram).
    public static let batchSize = "tipline_worker_batch_size"
    /// Time of one claim statement (histogram, seconds).
    public static let claimDuration = "tipline_worker_claim_duration_seconds"
    /// Time from claim to committed outcome for a batch (histogram, seconds).
    public static let processingDuration = "tipline_worker_processing_duration_seconds"
    /// Queue lag: time a job waited between becoming ready and being claimed (histogram, seconds).
    public static let queueLag = "tipline_worker_queue_lag_seconds"
    /// Jobs held right now (gauge).
    public static let inFlight = "tipline_worker_jobs_in_flight"
    /// Claims and heartbeats that failed (counter, `operation`).
    public static let databaseErrors = "tipline_worker_database_errors_total"
    /// When the last heartbeat reached the database, in Unix seconds (gauge).
    public static let lastHeartbeat = "tipline_worker_last_heartbeat_timestamp_seconds"

    /// Each metric's `# HELP` text.
    public static let help = [
        claimed: "Jobs this worker claimed.",
        completed: "Jobs this worker completed with an outcome.",
        retried: "Failed attempts this worker sent back for a retry.",
        dead: "Jobs that used up their attempts in this worker.",
        refused: "Results this worker discarded because its lease was lost before the completion.",
        rescued: "Jobs of silent workers this worker put back (outcome retried) or declared dead.",
        batchSize: "Jobs per claimed batch.",
        claimDuration: "Time of one claim statement.",
        processingDuration: "Time from a batch's claim to its committed outcomes.",
        queueLag: "Time a job waited between becoming ready and being claimed.",
        inFlight: "Jobs this worker holds now.",
        databaseErrors: "Claims (operation claim, a drain's checks for an empty queue included) and heartbeats (operation heartbeat) of this worker that failed.",
        lastHeartbeat: "When this worker's last heartbeat reached the database, in Unix seconds: alert when it falls behind.",
    ]
}

/// Histogram buckets suited to the worker's metrics, for the Prometheus back end.
public enum WorkerMetricBuckets {
    /// Latency buckets from 0.5 ms to 10 s: claims and completions take milliseconds.
    public static let durations: [String: [Duration]] = {
        let fine: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)]
        let lag = fine + [.seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(3600)]
        return [WorkerMetricName.claimDuration: fine, WorkerMetricName.processingDuration: fine,
                WorkerMetricName.queueLag: lag]
    }()

    /// Batch-size buckets.
    public static let values: [String: [Double]] = [
        WorkerMetricName.batchSize: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 10_000],
    ]
}
