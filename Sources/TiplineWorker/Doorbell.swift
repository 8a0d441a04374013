import Synchronization

/// Wakes idle worker lanes: rung by LISTEN/NOTIFY, by a lane that found a full batch, and on
/// shutdown. A ring that happens while a lane is busy is not lost: the lane's next wait returns at once.
final class Doorbell: Sendable {
    private struct State {
        var rings: UInt64 = 0
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    /// How many times the bell has rung; pass it to `wait(after:timeout:)`.
    var rings: UInt64 { state.withLock { $0.rings } }

    /// Wakes every waiting lane.
    func ring() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.rings &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiting { waiter.resume() }
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
                    state.waiters[id] = continuation
                    return true
                }
                guard parked else { return continuation.resume() }
                Task { [self] in
                    try? await Task.sleep(for: .seconds(timeout))
                    wake(id)
                }
            }
        } onCancel: {
            wake(id)
        }
    }

    private func wake(_ id: Int) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume()
    }
}
