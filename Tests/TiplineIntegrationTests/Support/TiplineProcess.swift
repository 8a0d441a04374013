import Foundation
import Testing

/// A real `tipline` process, with its output captured to files (pipes could fill and block it).
final class TiplineProcess: @unchecked Sendable {
    let process = Process()
    let arguments: [String]
    private let outURL: URL
    private let errURL: URL

    /// The binary `scripts/test` built.
    static var binary: String {
        get throws {
            if let path = ProcessInfo.processInfo.environment["TIPLINE_BIN"], FileManager.default.isExecutableFile(atPath: path) {
                return path
            }
            // `swift test` puts the test bundle next to the binary.
            let candidate = ProjectTree.root.appendingPathComponent(".build/debug/tipline").path
            guard FileManager.default.isExecutableFile(atPath: candidate) else {
                throw TestSetupError("tipline binary not found: run the suite with scripts/test (sets TIPLINE_BIN)")
            }
            return candidate
        }
    }

    init(_ arguments: [String], databaseURL: String?, environment extra: [String: String] = [:]) throws {
        self.arguments = arguments
        process.executableURL = URL(fileURLWithPath: try Self.binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = databaseURL
        if environment["TIPLINE_REPORTER_KEY"] == nil { environment["TIPLINE_REPORTER_KEY"] = "test-reporter-key-0123456789abcdef" }
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        let dir = FileManager.default.temporaryDirectory
        outURL = dir.appendingPathComponent("tipline-\(UUID().uuidString).out")
        errURL = dir.appendingPathComponent("tipline-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
    }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }

    var pid: Int32 { process.processIdentifier }
    var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    func start() throws { try process.run() }

    /// Starts with standard error a pipe whose reader has already gone: every write to it fails
    /// (EPIPE), or kills the process with SIGPIPE where that is not ignored.
    func startWithStderrReaderGone() throws {
        let pipe = Pipe()
        process.standardError = pipe.fileHandleForWriting
        try pipe.fileHandleForReading.close()
        try start()
        try pipe.fileHandleForWriting.close()
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits until the process catches `signal` (its handler is installed, per /proc/PID/status), so
    /// that a test sending it exercises the program's handling and not the first moments of a
    /// process that has not reached its own code yet. UnixSignalsSequence first sets the signal to
    /// be ignored and then installs its handler: a signal sent between the two is lost, so being
    /// ignored is not enough.
    func waitUntilCatching(_ signal: Int32, timeout: Double = 30) async throws {
        let bit = UInt64(1) << UInt64(signal - 1)
        try await waitUntil("process \(pid) catches signal \(signal)", timeout: timeout) {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
            return status.split(separator: "\n").contains { line in
                line.hasPrefix("SigCgt:") && (UInt64(line.split(separator: "\t").last ?? "", radix: 16) ?? 0) & bit != 0
            }
        }
    }

    /// Waits for exit; fails the test (and kills the process) after `timeout` seconds.
    @discardableResult
    func wait(timeout: Double = 120) async throws -> Termination {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                kill(process.processIdentifier, SIGKILL)
                throw TestSetupError("`tipline \(arguments.joined(separator: " "))` did not exit within \(timeout)s\nstderr: \(stderr.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationReason == .uncaughtSignal ? .signal(process.terminationStatus) : .exit(process.terminationStatus)
    }

    enum Termination: Equatable {
        case exit(Int32)
        case signal(Int32)
    }

    /// Runs `script` with `/bin/sh -c`, where `"$0"` is the tipline binary: for arguments that are
    /// not UTF-8, which `Process` cannot pass (`"$(printf '\\377')"` makes the byte).
    static func runInShell(_ script: String, databaseURL: String?, timeout: Double = 120) async throws -> (status: Termination, stdout: String, stderr: String) {
        let process = try TiplineProcess(["-c", script, try binary], databaseURL: databaseURL)
        process.process.executableURL = URL(fileURLWithPath: "/bin/sh")
        try process.start()
        let status = try await process.wait(timeout: timeout)
        return (status, process.stdout, process.stderr)
    }

    /// Runs `tipline ARGS...` to completion (standard output to `stdoutPath` instead of being
    /// captured, when given: `/dev/full` for a disk that is full).
    /// `stdoutHandle` instead: standard output to that (the write end of a pipe whose reader has gone).
    /// `input`: written to standard input through a pipe, which is then closed (otherwise it reads
    /// an empty file).
    static func run(_ arguments: [String], databaseURL: String?, environment: [String: String] = [:],
                    timeout: Double = 120, input: Data? = nil, stdoutPath: String? = nil,
                    stdoutHandle: FileHandle? = nil) async throws -> (status: Termination, stdout: String, stderr: String) {
        let process = try TiplineProcess(arguments, databaseURL: databaseURL, environment: environment)
        let pipe = input.map { _ in Pipe() }
        if let pipe { process.process.standardInput = pipe }
        if let stdoutPath {
            guard let handle = FileHandle(forWritingAtPath: stdoutPath) else { throw TestSetupError("cannot open \(stdoutPath)") }
            process.process.standardOutput = handle
        } else if let stdoutHandle {
            process.process.standardOutput = stdoutHandle
        }
        try process.start()
        if let pipe, let input {
            try pipe.fileHandleForWriting.write(contentsOf: input)
            try pipe.fileHandleForWriting.close()
        }
        let status = try await process.wait(timeout: timeout)
        return (status, process.stdout, process.stderr)
    }
}
