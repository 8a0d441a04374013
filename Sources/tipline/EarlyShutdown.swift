import Foundation
import Logging
import NIOCore
import Postgres
import ServiceLifecycle
import UnixSignals

/// SIGTERM, SIGINT and SIGHUP for a long-running command (`work`, `serve`) from its first line on,
/// and the service group that runs it. Each shuts the command down gracefully: SIGHUP is what a
/// closed terminal or SSH session sends, and by default it killed a worker mid-batch (its jobs
/// then waited out their leases, an attempt used). A process started with SIGHUP ignored (`nohup`)
/// keeps ignoring it: that is what its operator asked for. SIGPIPE is ignored: a log reader that
/// goes away must not kill the process (log lines are then dropped).
///
/// A `ServiceGroup` traps them only once it runs; before that (options checked, the database
/// reached, for serve the reporter key verified) a signal took its default action and killed the process,
/// which then exited by signal instead of 0. A signal caught here is remembered and passed on to
/// the group once there is one: a group asked to shut down before it runs starts its services and
/// stops them at once.
///
/// A signal that comes a second or more after the first (an operator's second Ctrl-C or `kill`)
/// ends the process at once, with `forcedStatus`, without waiting for the graceful shutdown, which
/// may wait for a database call for long (`work`: up to its lease and ten seconds). Two signals
/// within a second are one request: a terminal's Ctrl-C reaches the whole process group, and a
/// parent script may pass it on as SIGTERM.
actor EarlyShutdown {
    /// Trapped here from the start, and the group's graceful-shutdown signals.
    private static let signals: [UnixSignal] = [.sigterm, .sigint] + (Output.isIgnored(SIGHUP) ? [] : [.sighup])

    private var requested = false
    private var group: ServiceGroup?
    /// When the first signal came.
    private var firstSignal: ContinuousClock.Instant?
    /// The exit status after a second signal, and what is said first (on stderr).
    private let forcedStatus: Int32
    private let forcedNote: String

    init(forcedStatus: Int32, forcedNote: String) {
        self.forcedStatus = forcedStatus
        self.forcedNote = forcedNote
    }

    /// Traps the signals from now on; cancel the returned task when the command ends.
    nonisolated func trap() async -> Task<Void, Never> {
        Output.ignoreBrokenPipes()
        let signals = await UnixSignalsSequence(trapping: Self.signals)
        return Task {
            for await _ in signals { await self.request() }
        }
    }

    /// Whether a signal has come.
    var isRequested: Bool { requested }

    /// Runs `body`, a start-up step that may wait long for the database (`serve`'s key check on a
    /// server that accepts connections but never answers), and returns what it returns, unless a
    /// signal comes first: then it returns nil at once and leaves the step behind (a blocked libpq call cannot be
    /// interrupted; the pool abandons it at exit). Without this a signal waited for the step's
    /// `connect_timeout`, by default for ever.
    nonisolated func unlessRequested<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        let requested: @Sendable () async -> Void = { [self] in
            while await !isRequested {
                guard (try? await Task.sleep(for: .milliseconds(50))) != nil else { return }
            }
        }
        return try await unlessFirst(requested, body)
    }

    /// A signal arrived.
    private func request() async {
        let now = ContinuousClock.now
        if let firstSignal, now - firstSignal >= .seconds(1) {
            Output.errorLine(forcedNote)
            exit(forcedStatus)
        }
        if firstSignal == nil { firstSignal = now }
        requested = true
        await group?.triggerGracefulShutdown()
    }

    /// Runs `body`, a command that goes on until it is interrupted (`status --watch`, `escalations
    /// --follow`), until it ends or one of the signals comes: then it is cancelled where it waits and
    /// the command ends normally (exit 0), as `work` and `serve` do, instead of dying by the signal
    /// (exit 130 or 143, perhaps mid-line).
    ///
    /// A database call already running cannot be interrupted (one waiting for a lock a migration
    /// holds may wait long): after the signal the signals take their default action again, so a
    /// second one ends the process at once, and after `grace` the process exits without the call.
    static func untilSignalled(grace: Duration = .seconds(3), _ body: sending @escaping () async throws -> Void) async throws {
        let trapped = await UnixSignalsSequence(trapping: signals)
        let work = Task { try await body() }
        let watcher = Task {
            var arrived = trapped.makeAsyncIterator()
            guard await arrived.next() != nil else { return }
            work.cancel()
            for trapped in signals { signal(trapped.rawValue, SIG_DFL) }
            // Cancelled when the work ends in time (below).
            guard (try? await Task.sleep(for: grace)) != nil else { return }
            Output.errorLine("note: a database call had not returned \(grace.components.seconds) s after the signal; exiting without it")
            exit(0)
        }
        defer { watcher.cancel() }
        do {
            try await work.value
        } catch is CancellationError where work.isCancelled {
            return
        }
    }

    /// Runs `services` in a group that shuts down gracefully on the same signals, told at once if
    /// one came first.
    func run(_ services: [ServiceGroupConfiguration.ServiceConfiguration], logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: Self.signals, logger: logger))
        self.group = group
        if requested { await group.triggerGracefulShutdown() }
        try await group.run()
    }
}

/// A listening socket that could not be opened: which address, for which option, and why (NIO's
/// own error names neither the address nor the port).
struct ListenFailure: Error, CustomStringConvertible {
    let description: String

    /// Runs `body`, turning a failure to bind `host:port` into an error that says so.
    static func naming<T>(host: String, port: Int, option: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as IOError where [EADDRINUSE, EADDRNOTAVAIL, EACCES].contains(error.errnoCode) {
            throw ListenFailure(description: "cannot listen on \(hostPort(host, port)) (\(option)): \(String(cString: strerror(error.errnoCode)))")
        } catch let error as SocketAddressError.UnknownHost {
            throw ListenFailure(description: "cannot listen on \(hostPort(host, port)) (\(option)): no such host or address "
                + "(\(error.errorDescription)); give an address of this machine, e.g. 127.0.0.1 or ::1")
        }
    }
}

/// `host:port` as it stands in a URL or a message: an IPv6 address in brackets (`[::1]:8080`).
func hostPort(_ host: String, _ port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}
