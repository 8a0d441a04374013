import Logging
import ServiceLifecycle
import UnixSignals

/// SIGTERM and SIGINT for a long-running command (`work`, `serve`) from its first line on, and the
/// service group that runs it.
///
/// A `ServiceGroup` traps them only once it runs; before that (options checked, the database
/// reached, the reporter key verified) a signal took its default action and killed the process,
/// which then exited by signal instead of 0. A signal caught here is remembered and passed on to
/// the group once there is one: a group asked to shut down before it runs starts its services and
/// stops them at once.
actor EarlyShutdown {
    /// Trapped here from the start, and the group's graceful-shutdown signals.
    private static let signals: [UnixSignal] = [.sigterm, .sigint]

    private var requested = false
    private var group: ServiceGroup?

    /// Traps the signals from now on; cancel the returned task when the command ends.
    nonisolated func trap() async -> Task<Void, Never> {
        let signals = await UnixSignalsSequence(trapping: Self.signals)
        return Task {
            for await _ in signals { await self.request() }
        }
    }

    /// A signal arrived.
    private func request() async {
        requested = true
        await group?.triggerGracefulShutdown()
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
