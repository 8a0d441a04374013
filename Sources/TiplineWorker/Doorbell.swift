import Synchronization

/// Wakes idle worker lanes: rung by LISTEN/NOTIFY, by a lane that found a full batch, and on
/// shutdown. A ring that happens while a lane is busy is not lost: the lane's next wait returns at once.
final class Doorbell: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<Void, Never>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var rings: UInt64 = 0
        var nextWaiter = 0
        var waiters: [Int: Waiter] = [:]
    }

    private let state = Mutex(State())

    /// How many times the bell has rung; pass it to `wait(after:timeout:)`.
    var rings: UInt64 { state.withLock { $0.rings } }

    /// True while at least one lane waits.
    var hasWaiters: Bool { state.withLock { !$0.waiters.isEmpty } }

    /// Wakes the lane that has waited longest: one new job needs one claim (a second lane woken
    /// for it would only find it taken). A lane that claims a full batch rings again, so a burst
    /// wakes the lanes one after another; lanes that are busy see the ring when they next wait.
    func ring() {
        let woken = state.withLock { state -> Waiter? in
            state.rings &+= 1
            guard let oldest = state.waiters.keys.min() else { return nil }
            return state.waiters.removeValue(forKey: oldest)
        }
        resume(woken.map { [$0] } ?? [])
    }

    /// Wakes every waiting lane (shutdown, the end of an isolated job, a reconnected LISTEN session).
    func ringAll() {
        let woken = state.withLock { state -> [Waiter] in
            state.rings &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        resume(woken)
    }

    /// Returns when the bell rings after `seen`, after `timeout` seconds, or on cancellation.
    func wait(after seen: UInt64, timeout: Double) async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let parked = state.withLock { state -> Bool in
                    guard state.rings == seen else { return false }
                    state.waiters[id] = Waiter(continuation: continuation, timer: nil)
                    return true
                }
                guard parked else { return continuation.resume() }
                let timer = Task { [self] in
                    try? await Task.sleep(for: .seconds(timeout))
                    if !Task.isCancelled { wake(id) }
                }
                // Kept so that a ring cancels it; if the ring came first, the timer only finds no one.
                state.withLock { $0.waiters[id]?.timer = timer }
            }
        } onCancel: {
            wake(id)
        }
    }

    private func wake(_ id: Int) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        resume(waiter.map { [$0] } ?? [])
    }

    private func resume(_ waiters: [Waiter]) {
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }
}
