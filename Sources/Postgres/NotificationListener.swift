import Foundation
import Synchronization

/// A dedicated session that LISTENs on channels and hands notifications to a callback.
///
/// It runs on a thread of its own (LISTEN needs a session connection, so it never goes through a
/// transaction-mode pooler or the `Database` pool). When the connection drops it reconnects with
/// backoff and reports `.reconnected`, because notifications sent meanwhile were lost.
///
/// An owner may also answer notifications on the listening session itself (`answer`): the session
/// that just delivered a notification is awake, and the thread that read it is running, so work
/// done there skips the wake-ups of a hand-over to another thread and another session.
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
    private let answer: (@Sendable (Connection) throws -> Void)?
    private let stopped = Atomic<Bool>(false)
    private let running = Atomic<Bool>(false)
    /// `reconnect()` was asked: the thread leaves its session at its next wake-up (a quarter of a
    /// second at most).
    private let reconnecting = Atomic<Bool>(false)
    /// A pipe whose read end the thread polls beside its session's socket: `stop()` writes to it,
    /// so a wait ends at once instead of at its next timeout (up to a quarter of a second later,
    /// which every `--until-idle` exit and every shutdown used to pay). Nil if no pipe could be
    /// made: then `stop()` is noticed at the next timeout.
    private let wake: (read: Int32, write: Int32)?

    /// Creates a listener; call `start()` to begin.
    ///
    /// `answer`, when given, runs on the listening thread with the listening session after every
    /// wait that brought notifications (after `onEvent` saw them). A connection error it throws
    /// makes the listener reconnect; anything else it must handle itself.
    public init(config: ConnectionConfig, channels: [String], answer: (@Sendable (Connection) throws -> Void)? = nil,
                onEvent: @escaping @Sendable (Event) -> Void) {
        self.config = config
        self.channels = channels
        self.answer = answer
        self.onEvent = onEvent
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
            wake = (ends[0], ends[1])
        } else {
            wake = nil
        }
    }

    deinit {
        if let wake {
            close(wake.read)
            close(wake.write)
        }
    }

    /// Starts the listening thread.
    public func start() {
        running.store(true, ordering: .relaxed)
        let thread = Thread { [self] in
            run()
            running.store(false, ordering: .relaxed)
        }
        thread.name = "tipline-listen"
        thread.start()
    }

    /// Asks the thread to leave its session and open another (after its backoff): the session may
    /// be on a server that no longer takes writes, where no notification of new work comes (the
    /// lanes found it read-only, and followed `target_session_attrs` to another host).
    public func reconnect() {
        reconnecting.store(true, ordering: .relaxed)
    }

    /// Asks the thread to stop; a wait in progress ends at once (an answer in progress is
    /// finished first).
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        if let wake {
            var byte: UInt8 = 1
            _ = write(wake.write, &byte, 1)  // the pipe is never read: once written, every wait returns
        }
    }

    /// Stops the thread and waits, up to `timeout` seconds, until it has ended.
    public func stopAndWait(timeout: Double) async {
        stop()
        let deadline = ContinuousClock.now + .seconds(timeout)
        while running.load(ordering: .relaxed), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    private func run() {
        var backoff = 0.1
        var connectedAt: ContinuousClock.Instant?
        while !stopped.load(ordering: .relaxed) {
            do {
                let connection = try Connection.connect(config)
                for channel in channels { try connection.listen(channel) }
                // A request made while this session was being opened is answered by it (its
                // connect followed target_session_attrs anew).
                reconnecting.store(false, ordering: .relaxed)
                connectedAt = .now
                onEvent(.reconnected)
                while !stopped.load(ordering: .relaxed) {
                    if reconnecting.exchange(false, ordering: .relaxed) { throw ReconnectAsked() }
                    let notifications = try connection.waitForNotifications(timeout: 0.25, wakeUp: wake?.read)
                    for notification in notifications {
                        onEvent(.notification(notification))
                    }
                    if !notifications.isEmpty, let answer, !stopped.load(ordering: .relaxed) {
                        try answer(connection)
                    }
                }
            } catch {
                if !(error is ReconnectAsked) {
                    onEvent(.failed(error as? PostgresError ?? PostgresError(code: .connectionLost, message: "\(error)")))
                }
                // The wait starts short again only after a session that lasted: one that fails at
                // once every time (an answer refused by a read-only server) waits longer each time.
                if let since = connectedAt, ContinuousClock.now - since > .seconds(10) { backoff = 0.1 }
                connectedAt = nil
                sleepInterruptibly(backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }

    /// `reconnect()` ended the session.
    private struct ReconnectAsked: Error {}

    private func sleepInterruptibly(_ seconds: Double) {
        let until = ContinuousClock.now + .seconds(seconds)
        while !stopped.load(ordering: .relaxed), ContinuousClock.now < until {
            guard let wake else {
                Thread.sleep(forTimeInterval: 0.1)
                continue
            }
            let milliseconds = (until - ContinuousClock.now) / .milliseconds(1)
            var descriptor = pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, Int32(max(1, milliseconds.rounded(.up))))
        }
    }
}
