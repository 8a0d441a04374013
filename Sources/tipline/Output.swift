import Foundation
import TiplineHTTP

/// Standard output that fails loudly: a write that does not reach it (a full disk, a closed pipe
/// with SIGPIPE ignored) is an error, with exit status 1, instead of a trap in `FileHandle` or an
/// exit 0 with the output lost (as `print`'s buffer, written at exit, did). Unbuffered: every
/// command writes through it, lines at once, `BufferedOutput` for long streams.
enum Output {
    /// Writes `data` at once.
    static func write(_ data: Data) throws {
        try write(data, to: STDOUT_FILENO)
    }

    /// Writes `text` to standard error at once. A standard error that cannot be written (a full
    /// disk, a closed pipe) loses the text: there is nowhere left to say so, and `FileHandle`
    /// would trap.
    static func error(_ text: String) {
        try? write(Data(text.utf8), to: STDERR_FILENO)
    }

    /// `text` and a line break on standard error, as `error(_:)`.
    static func errorLine(_ text: String) {
        error(text + "\n")
    }

    /// From now on a write to a pipe whose reader has gone fails (EPIPE) instead of killing the
    /// process: for commands that write to stderr or a file while they work (`work`, `serve`,
    /// `submit`, `status --watch`), whose work must not end with a log reader.
    static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Whether `signal` is ignored (as `nohup` leaves SIGHUP for the program it starts).
    static func isIgnored(_ signal: Int32) -> Bool {
        var current = sigaction()
        guard sigaction(signal, nil, &current) == 0 else { return false }
        return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    }

    /// Writes all of `data` to the open file `descriptor`, or throws why not.
    static func write(_ data: Data, to descriptor: Int32) throws {
        if let code = writeAll(data, to: descriptor) { throw OutputError(code: code) }
    }

    /// Writes `line` and a line break at once.
    static func line(_ line: String) throws {
        try write(Data((line + "\n").utf8))
    }
}

/// Standard output could not be written.
struct OutputError: Error, CustomStringConvertible {
    let code: Int32
    var description: String { "cannot write the output: \(String(cString: strerror(code)))" }
}

/// Standard output in 64 KiB writes.
final class BufferedOutput {
    private var buffer = Data()

    func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { try flush() }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        try Output.write(buffer)
    }
}
