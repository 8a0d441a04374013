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
