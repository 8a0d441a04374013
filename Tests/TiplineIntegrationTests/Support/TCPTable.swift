import Foundation

/// The kernel's table of TCP sockets (/proc/net/tcp and tcp6), read without touching any socket.
enum TCPTable {
    /// One socket: its local and remote ports, its state (hex as the kernel writes it: `01`
    /// established, `0A` listening) and its inode (what /proc/PID/fd links name `socket:[INODE]`).
    struct Socket {
        var localPort: Int
        var remotePort: Int
        var state: Substring
        var inode: Substring
    }

    static func sockets() -> [Socket] {
        func port(_ field: Substring) -> Int? { field.split(separator: ":").last.flatMap { Int($0, radix: 16) } }
        var sockets: [Socket] = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, let local = port(fields[1]), let remote = port(fields[2]) else { continue }
                sockets.append(Socket(localPort: local, remotePort: remote, state: fields[3], inode: fields[9]))
            }
        }
        return sockets
    }
}
