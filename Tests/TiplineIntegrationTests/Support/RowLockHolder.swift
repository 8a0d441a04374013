import Foundation
import Postgres
import Synchronization

extension TestDatabase {
    /// Runs `body` while a second session's transaction holds the row locks `lock` takes (a
    /// `SELECT ... FOR UPDATE`), as a concurrent batch would. The lock is taken before `body` starts
    /// and let go once it returns, or after a minute: a body that waits for the lock then goes on,
    /// and fails whatever it asserts about not waiting. No fixed delay is guessed, so a loaded
    /// machine cannot end the hold before `body` reaches the lock.
    func whileAnotherSessionHolds<T: Sendable>(_ lock: Query, _ body: () async throws -> T) async throws -> T {
        let state = HolderState()
        let other = Database(config: ConnectionConfig(conninfo: url), maxConnections: 1)
        let holder = Task {
            defer { state.update { $0.ended = true } }
            try await other.transaction { tx in
                _ = try tx.query(lock)
                state.update { $0.locked = true }
                let deadline = Date().addingTimeInterval(60)
                while !state.read(\.released), Date() < deadline { usleep(10_000) }
            }
        }
        while !state.read(\.locked), !state.read(\.ended) {
            try await Task.sleep(for: .milliseconds(10))
        }
        guard state.read(\.locked) else {
            try await holder.value  // its error says why the lock was not taken
            await other.shutdown()
            throw TestSetupError("the second session ended without taking its lock")
        }
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        state.update { $0.released = true }
        try await holder.value
        await other.shutdown()
        return try result.get()
    }
}

/// What the holding session has done, shared with the test's task.
private final class HolderState: Sendable {
    struct Flags { var locked = false, released = false, ended = false }
    private let flags = Mutex(Flags())

    func update(_ change: (inout Flags) -> Void) { flags.withLock { change(&$0) } }
    func read(_ flag: KeyPath<Flags, Bool>) -> Bool { flags.withLock { $0[keyPath: flag] } }
}
