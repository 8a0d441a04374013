public import Foundation
import Synchronization

/// A dedicated session that LISTENs on channels and hands notifications to a callback.
///
/// It runs on a thread of its own (LISTEN needs a session connection, so it never goes through a
/// transaction-mode pooler or the `Database` pool). When the connection drops it reconnects with
/// backoff and reports `.reconnected`, because notifications sent meanwhile were lost.
public final class NotificationListener: Sendable {
    /// What the listener tells its owner.
    public enum Event: Sendable {
        /// A notification arrived.
        case notification(PostgresNotification)
        /// The session was (re)established; anything sent while it was down was missed.
        case reconnected
        /// Connecting or listening failed; the listener retries by itself.
        case failed(PostgresError)
    }

    private let config: ConnectionConfig
    private let channels: [String]
    private let onEvent: @Sendable (Event) -> Void
    private let stopped = Atomic<Bool>(false)

    /// Creates a listener; call `start()` to begin.
    public init(config: ConnectionConfig, channels: [String], onEvent: @escaping @Sendable (Event) -> Void) {
        self.config = config
        self.channels = channels
        self.onEvent = onEvent
    }

    /// Starts the listening thread.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "tipline-listen"
        thread.start()
    }

    /// Asks the thread to stop; it notices within a quarter of a second.
    public func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    private func run() {
        var backoff = 0.1
        while !stopped.load(ordering: .relaxed) {
            do {
                let connection = try Connection.connect(config)
                for channel in channels { try connection.listen(channel) }
                backoff = 0.1
                onEvent(.reconnected)
                while !stopped.load(ordering: .relaxed) {
                    for notification in try connection.waitForNotifications(timeout: 0.25) {
                        onEvent(.notification(notification))
                    }
                }
            } catch let error as PostgresError {
                onEvent(.failed(error))
                sleepInterruptibly(backoff)
                backoff = min(backoff * 2, 5)
            } catch {
                onEvent(.failed(PostgresError(code: .connectionLost, message: "\(error)")))
                sleepInterruptibly(backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }

    private func sleepInterruptibly(_ seconds: Double) {
        var left = seconds
        while left > 0, !stopped.load(ordering: .relaxed) {
            Thread.sleep(forTimeInterval: min(left, 0.1))
            left -= 0.1
        }
    }
}
