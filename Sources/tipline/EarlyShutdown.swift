import ServiceLifecycle
import UnixSignals

/// SIGTERM and SIGINT for a long-running command (`work`, `serve`) from its first line on.
///
/// A `ServiceGroup` traps them only once it runs; before that (options checked, the database
/// reached, the reporter key verified) a signal took its default action and killed the process,
/// which then exited by signal instead of 0. A signal caught here is remembered and passed on to
/// the group once there is one: a group asked to shut down before it runs starts its services and
/// stops them at once.
actor EarlyShutdown {
    private var requested = false
    private var group: ServiceGroup?

    /// Traps SIGTERM and SIGINT from now on; cancel the returned task when the command ends.
    nonisolated func trap() async -> Task<Void, Never> {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        return Task {
            for await _ in signals { await self.request() }
        }
    }

    /// A signal arrived.
    private func request() async {
        requested = true
        await group?.triggerGracefulShutdown()
    }

    /// The group that takes over; told at once if a signal came first.
    func hand(to group: ServiceGroup) async {
        self.group = group
        if requested { await group.triggerGracefulShutdown() }
    }
}
