import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The open connections of one server, shared by the handlers of all its connections.
final class ConnectionCount: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts a new connection in; false (and not counted) when the server is at its limit.
    func admit() -> Bool {
        while true {
            let current = open.load(ordering: .relaxed)
            if current >= limit { return false }
            if open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged { return true }
        }
    }

    func leave() {
        open.subtract(1, ordering: .relaxed)
    }

    /// The most connections a server may hold with the descriptors this process may open: the soft
    /// limit is raised to the hard one first, and `reserved` descriptors are kept back for the
    /// database, the listening socket, logs and the runtime (a process out of descriptors could not
    /// answer anyone, and the runtime's thread pool traps when it cannot get one).
    static func descriptorBound(reserved: Int) -> Int {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return Int.max }
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limits = raised }
        }
        // RLIM_INFINITY is all ones; so large a limit is no bound.
        guard limits.rlim_cur < rlim_t(Int32.max) else { return Int.max }
        return max(1, Int(limits.rlim_cur) - reserved)
    }
}

/// Closes a connection at once when the server already holds its limit: without a limit, clients
/// that open connections and send nothing (or a byte now and then) used every descriptor, and then
/// the server answered nobody and crashed. Counted from the connection's start to its end.
final class ConnectionLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let count: ConnectionCount
    private var admitted = false

    init(count: ConnectionCount) {
        self.count = count
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context: context)
        context.fireChannelActive()
    }

    private func admit(context: ChannelHandlerContext) {
        guard !admitted else { return }
        if count.admit() {
            admitted = true
        } else {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    private func release() {
        if admitted {
            admitted = false
            count.leave()
        }
    }
}
