import Foundation
import Postgres
import Synchronization

/// A TCP relay in front of the test server that can stop passing bytes without closing anything:
/// to its clients, a server that stopped answering (SIGSTOP) or a network that drops packets
/// without a word. Each connection is relayed by two threads of its own, never by the cooperative
/// pool. `close()` ends it all.
final class FreezingProxy: Sendable {
    /// The loopback port clients connect to.
    let port: Int
    private let listener: Int32
    private let upstream: (host: String, port: Int)
    private let state = Mutex<(frozen: Bool, closed: Bool, sockets: [Int32])>((false, false, []))
    /// Signalled once the accept loop has returned: only then may the listener's number be given
    /// back (closed), or the loop could accept on another test's socket that took the number.
    private let acceptEnded = DispatchSemaphore(value: 0)

    /// A relay to the server `db` is on, found by asking it (its address, or loopback when the
    /// session came through a unix socket).
    init(to db: TestDatabase) async throws {
        let row = try await db.database.query(
            "SELECT coalesce(host(inet_server_addr()), '127.0.0.1'), current_setting('port')::int").one()
        upstream = (try row.decode(String.self, at: 0), try row.decode(Int.self, at: 1))
        (listener, port) = try RawHTTP.listener(backlog: 64)
        Thread.detachNewThread { [self] in
            acceptLoop()
            acceptEnded.signal()
        }
    }

    /// `db`'s URL with the relay's address in place of the server's.
    func url(for db: TestDatabase) -> String {
        if var components = URLComponents(string: db.url), components.scheme != nil {
            components.host = "127.0.0.1"
            components.port = port
            components.queryItems = components.queryItems?.filter { !["host", "hostaddr", "port"].contains($0.name) }
            return components.string!
        }
        return db.url + " host=127.0.0.1 hostaddr=127.0.0.1 port=\(port)"
    }

    /// From now on no byte passes, either way; every connection stays open.
    func freeze() { state.withLock { $0.frozen = true } }

    /// Closes the listener and ends every connection; once only (a test calls it, its `defer`
    /// and `deinit` again). A descriptor closed twice would close whatever another test opened
    /// under its number meanwhile. The relayed connections are shut down, not closed, for the
    /// same reason: their threads may still be reading them.
    func close() {
        guard let sockets = state.withLock({ state -> [Int32]? in
            guard !state.closed else { return nil }
            state.closed = true
            return state.sockets
        }) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        acceptEnded.wait()
        Glibc.close(listener)
        for fd in sockets { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    deinit { close() }

    private var closed: Bool { state.withLock { $0.closed } }
    private var frozen: Bool { state.withLock { $0.frozen } }

    private func acceptLoop() {
        while !closed {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            guard let server = try? connectUpstream() else {
                Glibc.close(client)
                continue
            }
            state.withLock { $0.sockets += [client, server] }
            Thread.detachNewThread { [self] in relay(from: client, to: server) }
            Thread.detachNewThread { [self] in relay(from: server, to: client) }
        }
    }

    private func connectUpstream() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSetupError("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(upstream.port).bigEndian
        address.sin_addr.s_addr = inet_addr(upstream.host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            Glibc.close(fd)
            throw TestSetupError("cannot connect to \(upstream.host):\(upstream.port) (errno \(errno))")
        }
        return fd
    }

    /// Copies `source` to `target` until either closes; while frozen, reads nothing and holds
    /// what was read.
    private func relay(from source: Int32, to target: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        defer { shutdown(target, Int32(SHUT_WR)) }
        while !closed {
            var ready = pollfd(fd: source, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 50) >= 0 || errno == EINTR else { return }
            if frozen || ready.revents == 0 { continue }
            let count = read(source, &buffer, buffer.count)
            guard count > 0 else { return }
            var sent = 0
            while sent < count {
                if closed { return }
                if frozen {
                    usleep(50_000)
                    continue
                }
                let written = buffer.withUnsafeBytes { write(target, $0.baseAddress! + sent, count - sent) }
                guard written > 0 else { return }
                sent += written
            }
        }
    }
}
