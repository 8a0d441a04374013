/// `body`'s result, or nil when it takes longer than `limit`. The body goes on in the background
/// (a blocking database call cannot be interrupted); only the caller stops waiting for it. Used
/// for a request's database work, readiness, and closing a pool whose calls may never return.
public func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    let (stream, continuation) = AsyncStream<Result<T, any Error>?>.makeStream(bufferingPolicy: .bufferingNewest(1))
    Task {
        do { continuation.yield(.success(try await body())) } catch { continuation.yield(.failure(error)) }
        continuation.finish()
    }
    let timer = Task {
        try? await Task.sleep(for: limit)
        continuation.yield(nil)
        continuation.finish()
    }
    defer { timer.cancel() }
    var iterator = stream.makeAsyncIterator()
    guard let first = await iterator.next(), let outcome = first else { return nil }
    return try outcome.get()
}
