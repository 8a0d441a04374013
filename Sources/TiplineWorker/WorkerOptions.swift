import Foundation

/// How a worker process runs.
public struct WorkerOptions: Sendable {
    /// Shown in `tipline status`; defaults to host:pid.
    public var name: String
    /// Batches processed at once (each lane has its own connection).
    public var concurrency: Int = 2
    /// Most jobs claimed by one lane at a time (claimed and completed in one statement each).
    public var batchSize: Int = 50
    /// Exit once nothing is queued, running or waiting for a retry.
    public var untilIdle = false
    /// With `untilIdle`: how long the database may stay unreachable (no connection made, every
    /// claim failing on a lost connection) before the drain gives up and fails. A service retries
    /// for ever.
    public var giveUpSeconds: Double = 120
    /// Lease length in seconds; a worker silent this long loses its jobs to others.
    public var leaseSeconds: Double = 15
    /// Fallback poll interval for idle workers, in seconds (LISTEN/NOTIFY normally wakes them).
    public var pollSeconds: Double = 5
    /// Delay after a first failed attempt, in seconds (doubles each time, with jitter).
    public var retryBaseSeconds: Double = 2
    /// Longest retry delay, in seconds.
    public var retryCapSeconds: Double = 600
    /// Enables the fault-injection markers (tests only; see README).
    public var faultInjection = false
    /// With fault injection: the file whose existence releases a batch holding `FaultMarker.held`
    /// (`TIPLINE_FAULT_RELEASE_FILE`); without one, such a batch is not held.
    public var faultReleaseFile: String?
    /// Completes claimed jobs without reading their ads (outcome `no_contact`, no grouping), through
    /// the same fenced completion: a queue-only benchmark (`scripts/bench`), never for production.
    public var noop = false

    /// Heartbeats come three times per lease, so two can be missed without losing the lease.
    public var heartbeatSeconds: Double { max(0.2, leaseSeconds / 3) }

    /// Creates options with a default name.
    public init(name: String? = nil) {
        self.name = name ?? "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }
}
