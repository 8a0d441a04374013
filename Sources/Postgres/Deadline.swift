import Foundation
import Synchronization

/// `body`'s result, or nil when it takes longer than `limit`. The body goes on in the background
/// (a blocking database call cannot be interrupted); only the caller stops waiting for it. Used
/// for a request's database work, readiness, and closing a pool whose calls may never return.
public func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await unlessFirst({ try? await Task.sleep(for: limit) }, body)
}

/// `body`'s result, or nil when `stop` returns first (a deadline, a signal). The body goes on in
/// the background (a blocking database call cannot be interrupted); only the caller stops waiting
/// for it. `stop` is cancelled once the body has answered, and must then return.
public func unlessFirst<T: Sendable>(
    _ stop: @escaping @Sendable () async -> Void, _ body: @escaping @Sendable () async throws -> T
) async throws -> T? {
    let (stream, continuation) = AsyncStream<Result<T, any Error>?>.makeStream(bufferingPolicy: .bufferingNewest(1))
    Task {
        do { continuation.yield(.success(try await body())) } catch { continuation.yield(.failure(error)) }
        continuation.finish()
    }
    let stopper = Task {
        await stop()
        continuation.yield(nil)
        continuation.finish()
    }
    defer { stopper.cancel() }
    var iterator = stream.makeAsyncIterator()
    guard let first = await iterator.next(), let outcome = first else { return nil }
    return try outcome.get()
}

/// A deadline for every database call (`Database.withConnection`) the current task makes inside
/// `DatabaseDeadline.within(_:_:)`: a call still waiting at the deadline (for a pool thread, or for
/// the server) throws `DatabaseDeadlinePassed` then, and goes on in the background as any blocking
/// call must, while one that has not started by then never starts. Unlike `withDeadline`, it
/// costs a call no task or timer of its own: one sweeper checks every pending deadline a few times
/// a second (so a call may overrun its deadline by up to `DatabaseDeadline.granularity`). For
/// request handlers, which give every call the same deadline.
public enum DatabaseDeadline {
    /// The deadline of the current task's database calls, if any.
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// How often pending deadlines are checked.
    public static let granularity: Duration = .milliseconds(100)

    /// Runs `body` with every database call in it bounded by now + `limit` (or an earlier deadline
    /// already in force).
    public static func within<T>(_ limit: Duration, _ body: () async throws -> T) async rethrows -> T {
        var deadline = ContinuousClock.now + limit
        if let outer = current, outer < deadline { deadline = outer }
        return try await $current.withValue(deadline) { try await body() }
    }
}

/// A database call that had not answered by its `DatabaseDeadline`.
public struct DatabaseDeadlinePassed: Error, CustomStringConvertible {
    public var description: String { "the database did not answer before the deadline" }
}

/// The pending deadlines of calls made under `DatabaseDeadline`, and the one thread that checks
/// them. A thread of its own, not a task: a cooperative pool kept busy (blocking calls, a burst of
/// work) must not keep a deadline from passing. It waits on its condition while nothing is pending.
final class DeadlineSweeper: @unchecked Sendable {
    static let shared = DeadlineSweeper()

    /// Guards everything below.
    private let condition = NSCondition()
    private var pending: [UInt64: (deadline: ContinuousClock.Instant, expire: @Sendable () -> Void)] = [:]
    private var nextID: UInt64 = 0
    private var started = false

    /// Registers `expire`, called once `deadline` has passed unless `cancel` is called first with
    /// the id returned.
    func add(deadline: ContinuousClock.Instant, expire: @escaping @Sendable () -> Void) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        nextID += 1
        pending[nextID] = (deadline, expire)
        if !started {
            started = true
            let thread = Thread { [self] in sweep() }
            thread.name = "tipline-deadlines"
            thread.start()
        }
        condition.signal()
        return nextID
    }

    func cancel(_ id: UInt64) {
        condition.lock()
        pending.removeValue(forKey: id)
        condition.unlock()
    }

    /// Every `granularity`, while any is pending, expires those whose deadline passed.
    private func sweep() {
        let pause = DatabaseDeadline.granularity / .seconds(1)
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            condition.unlock()
            Thread.sleep(forTimeInterval: pause)
            condition.lock()
            let now = ContinuousClock.now
            let due = pending.filter { $0.value.deadline <= now }
            for id in due.keys { pending.removeValue(forKey: id) }
            condition.unlock()
            for entry in due.values { entry.expire() }
        }
    }
}

/// Resumes a continuation once: with the first of a result and an expiry.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    /// Whether it was still waiting (and now is not).
    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        guard let waiting = continuation.withLock({ value -> CheckedContinuation<T, any Error>? in
            defer { value = nil }
            return value
        }) else { return false }
        waiting.resume(with: result)
        return true
    }

    /// Whether a result was already given.
    var isResumed: Bool { continuation.withLock { $0 == nil } }
}
