import Foundation
import Testing

/// A reply read off the wire.
struct HTTPReply: Sendable {
    var status: Int
    var headers: [String: String]  // lower-cased names
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    /// The body as a JSON object (empty when it is not one).
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    /// `error.code`, `error.field` and `error.message` of an error body.
    var error: (code: String?, field: String?, message: String?) {
        let error = json["error"] as? [String: Any] ?? [:]
        return (error["code"] as? String, error["field"] as? String, error["message"] as? String)
    }
}

/// A minimal HTTP/1.1 client over a POSIX socket, so tests control every byte sent (invalid UTF-8,
/// missing headers, chunked bodies, a 10 MB body) without an HTTP library's opinions.
enum RawHTTP {
    static func send(port: Int, _ method: String, _ path: String, headers: [String: String] = [:],
                     body: [UInt8] = [], chunked: Bool = false) async throws -> HTTPReply {
        try await offPool { try exchange(port: port, method, path, headers: headers, body: body, chunked: chunked) }
    }

    /// Runs blocking socket calls on a thread of their own, never on the cooperative pool: on two
    /// cores that pool has two threads, and a test blocked in `poll` on one of them for seconds
    /// stalls every other test's polling, sleeps and replies with it.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
        }
    }

    /// `offPool` for work that cannot fail.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: work()) }
        }
    }

    static func json(port: Int, _ method: String, _ path: String, token: String?, _ object: [String: Any]) async throws -> HTTPReply {
        let body = Array(try JSONSerialization.data(withJSONObject: object))
        return try await send(port: port, method, path, headers: jsonHeaders(token), body: body)
    }

    static func jsonHeaders(_ token: String?) -> [String: String] {
        var headers = ["Content-Type": "application/json"]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return headers
    }

    /// A socket listening on a free loopback port (the caller closes it): a "server" that completes
    /// connections and says nothing, or whose connections a test accepts itself.
    static func listener(backlog: Int32 = 8) throws -> (fd: Int32, port: Int) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw TestSetupError("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, backlog) == 0
                && getsockname(listener, $0, &length) == 0 }
        }
        guard bound else {
            close(listener)
            throw TestSetupError("cannot listen on 127.0.0.1 (errno \(errno))")
        }
        return (listener, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A raw connection to the server (the caller closes it), for requests sent in part.
    static func open(port: Int) async throws -> Int32 {
        try await offPool { try openNow(port: port) }
    }

    private static func openNow(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSetupError("socket failed") }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw TestSetupError("connect to 127.0.0.1:\(port) failed (errno \(errno))")
        }
        return fd
    }

    /// Writes bytes on a raw connection.
    static func write(_ fd: Int32, _ text: String) async throws {
        let bytes = Array(text.utf8)
        try await offPool { try writeAll(fd, bytes) }
    }

    /// Whether the server closes `fd` within `timeout` seconds (whatever it sends first is read and dropped).
    static func closedByServer(_ fd: Int32, within timeout: Double) async -> Bool {
        await offPool { closedByServerNow(fd, within: timeout) }
    }

    private static func closedByServerNow(_ fd: Int32, within timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 200) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return true }
        }
        return false
    }

    /// Whether the server still holds its end of the connection `fd` made to `serverPort` open:
    /// the kernel lists it as established (/proc/net/tcp, tcp6). A server that closed it is gone
    /// from the list (reset) or shows FIN-WAIT, even while its FIN waits behind answers the client
    /// never read, which keeps the client's own end established.
    static func serverSideOpen(_ fd: Int32, serverPort: Int) -> Bool {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return false }
        let clientPort = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        return TCPTable.sockets().contains { $0.localPort == serverPort && $0.remotePort == clientPort && $0.state == "01" }
    }

    /// Whether `fd` has something to read (or has ended) within `timeout` seconds.
    static func readable(_ fd: Int32, within timeout: Double) async -> Bool {
        await offPool {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&descriptor, 1, Int32(timeout * 1000)) > 0
        }
    }

    /// The head of the next reply on `fd` (status line and headers, up to the blank line), or nil
    /// when none arrives within `timeout` seconds. For replies without a body (`100 Continue`).
    static func head(_ fd: Int32, within timeout: Double) async -> String? {
        await offPool { headNow(fd, within: timeout) }
    }

    private static func headNow(_ fd: Int32, within timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var data: [UInt8] = []
        var byte: UInt8 = 0
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            guard recv(fd, &byte, 1, 0) == 1 else { return nil }
            data.append(byte)
            if data.suffix(4) == [13, 10, 13, 10] { return String(decoding: data, as: UTF8.self) }
        }
        return nil
    }

    /// Exactly `count` bytes from `fd` (a body whose head `head(_:within:)` read), nothing past them.
    static func read(_ fd: Int32, count: Int) async throws -> [UInt8] {
        try await offPool { try readNow(fd, count: count) }
    }

    private static func readNow(_ fd: Int32, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw TestSetupError("connection ended after \(got) of \(count) bytes") }
            got += n
        }
        return bytes
    }

    /// Writes bytes on a raw connection.
    static func write(_ fd: Int32, _ bytes: [UInt8]) async throws {
        try await offPool { try writeAll(fd, bytes) }
    }

    /// The next whole reply on a raw connection.
    static func reply(_ fd: Int32) async throws -> HTTPReply {
        try await offPool { try readReply(fd) }
    }

    private static func exchange(port: Int, _ method: String, _ path: String, headers: [String: String],
                                 body: [UInt8], chunked: Bool) throws -> HTTPReply {
        let fd = try openNow(port: port)
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var payload = body
        if chunked {
            // A test may name codings before the chunking itself ("gzip, chunked").
            if !headers.keys.contains(where: { $0.lowercased() == "transfer-encoding" }) { head += "Transfer-Encoding: chunked\r\n" }
            payload = []
            var index = 0
            while index < body.count {
                let piece = body[index..<min(index + 16_384, body.count)]
                payload += Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Array("\r\n".utf8)
                index += piece.count
            }
            payload += Array("0\r\n\r\n".utf8)
        } else if !body.isEmpty || method == "POST" {
            if headers.keys.contains(where: { $0.lowercased() == "content-length" }) == false {
                head += "Content-Length: \(body.count)\r\n"
            }
        }
        head += "\r\n"
        // The server reads and drops a refused body up to 16 MiB before it closes the connection,
        // so writing all of it and then reading the reply works even for a 10 MB body answered with 413.
        try writeAll(fd, Array(head.utf8) + payload)
        return try readReply(fd)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestSetupError("send failed after \(sent) bytes (errno \(errno))") }
            sent += n
        }
    }

    private static func readReply(_ fd: Int32) throws -> HTTPReply {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var headerEnd: Int?
        var expected: Int?
        while true {
            if let end = headerEnd, let length = expected, data.count >= end + length { break }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 {
                if headerEnd != nil, expected == nil { break }  // no length: the body ends with the connection
                throw TestSetupError("connection ended before a full reply (errno \(errno)): \(String(decoding: data, as: UTF8.self))")
            }
            data += buffer[0..<n]
            if headerEnd == nil, let range = findCRLFCRLF(data) {
                headerEnd = range
                let head = String(decoding: data[0..<range], as: UTF8.self)
                for line in head.split(separator: "\r\n").dropFirst() {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    if parts.count == 2, parts[0].lowercased() == "content-length" {
                        expected = Int(parts[1].trimmingCharacters(in: .whitespaces))
                    }
                }
            }
        }
        let end = headerEnd!
        let head = String(decoding: data[0..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        let body = Array(data[end...].prefix(expected ?? data.count))
        return HTTPReply(status: Int(statusParts[1]) ?? 0, headers: headers, body: body)
    }

    private static func findCRLFCRLF(_ data: [UInt8]) -> Int? {
        guard data.count >= 4 else { return nil }
        for i in 0...(data.count - 4) where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 {
            return i + 4
        }
        return nil
    }
}

/// A running `tipline serve` on 127.0.0.1 with a free port, against a test database.
final class IntakeServer: @unchecked Sendable {
    let process: TiplineProcess
    let port: Int
    let databaseURL: String

    private init(process: TiplineProcess, port: Int, databaseURL: String) {
        self.process = process
        self.port = port
        self.databaseURL = databaseURL
    }

    /// Starts the server and waits for its `listening on` line: at most two minutes, a bound for a
    /// server that never starts, not a measure of its speed (a full test run starts hundreds of
    /// processes at once on two cores: servers that logged they were listening had not printed the
    /// line within 30 s, and a test of a pure function took 5 s).
    static func start(databaseURL: String, arguments: [String] = [], environment: [String: String] = [:]) async throws -> IntakeServer {
        let process = try TiplineProcess(["serve", "--port", "0"] + arguments, databaseURL: databaseURL, environment: environment)
        try process.start()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let line = process.stdout.split(separator: "\n").first(where: { $0.hasPrefix("listening on http://") }),
               let port = line.split(separator: ":").last.flatMap({ Int($0) }) {
                return IntakeServer(process: process, port: port, databaseURL: databaseURL)
            }
            guard process.process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.signal(SIGKILL)
        throw TestSetupError("tipline serve did not start\nstderr: \(process.stderr.suffix(2000))")
    }

    /// Stops the server with SIGTERM and checks it exits 0.
    func stop(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: 30) == .exit(0), "serve did not exit cleanly", sourceLocation: sourceLocation)
    }

    /// Makes a token with the real CLI and returns it.
    func token(source: String, channel: String = "app") async throws -> String {
        try await Self.token(databaseURL: databaseURL, source: source, channel: channel)
    }

    static func token(databaseURL: String, source: String, channel: String = "app") async throws -> String {
        let run = try await TiplineProcess.run(["token", "create", "--source", source, "--channel", channel], databaseURL: databaseURL)
        guard run.status == .exit(0) else { throw TestSetupError("token create failed: \(run.stderr)") }
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func send(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = [], chunked: Bool = false) async throws -> HTTPReply {
        try await RawHTTP.send(port: port, method, path, headers: headers, body: body, chunked: chunked)
    }

    func post(_ object: [String: Any], token: String?) async throws -> HTTPReply {
        try await RawHTTP.json(port: port, "POST", "/v1/reports", token: token, object)
    }

    func get(_ path: String, token: String? = nil) async throws -> HTTPReply {
        try await send("GET", path, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }

    /// Runs `body` with a server on a fresh database and stops the server afterwards.
    static func with(arguments: [String] = [], _ body: (TestDatabase, IntakeServer) async throws -> Void) async throws {
        try await TestDatabase.with { db in
            try await running(databaseURL: db.url, arguments: arguments) { server in try await body(db, server) }
        }
    }

    /// Runs `body` with a server on `databaseURL`, then stops it (cleanly, or with SIGKILL when `body` threw).
    static func running(databaseURL: String, arguments: [String] = [], environment: [String: String] = [:],
                        _ body: (IntakeServer) async throws -> Void) async throws {
        let server = try await IntakeServer.start(databaseURL: databaseURL, arguments: arguments, environment: environment)
        do {
            try await body(server)
            try await server.stop()
        } catch {
            server.process.signal(SIGKILL)
            throw error
        }
    }
}

/// A valid report body.
func sampleReport(_ externalID: String, text: String = "出租微信 日租80元 V信: seller_1x", reporter: String = "u_1") -> [String: Any] {
    ["external_id": externalID, "channel": "app", "reporter": reporter, "text": text]
}
