import Foundation
import Testing

/// `tipline extract --jsonl`, the contract's line mode, as a process: it needs no database.
@Suite("extract --jsonl")
struct ExtractCommandTests {
    @Test("lines are read as strictly as submit reads them: a member named twice or a trailing comma is refused with why, exit 3")
    func strictLines() async throws {
        let input = [#"{"id":1,"text":"QQ 12345678","text":"QQ 87654321"}"#,
                     #"{"id":2,"text":"QQ 12345678",}"#,
                     #"{"id":"a/b","text":"扣扣：22345678"}"#,
                     "\u{FEFF}"].joined(separator: "\n") + "\n"
        let run = try await Self.extract(input)
        #expect(run.status == .exit(3), "\(run.stderr)")
        #expect(run.stdout == #"{"id":"a/b","contacts":[{"kind":"qq","value":"22345678"}]}"# + "\n", "\(run.stdout)")
        #expect(run.stderr.contains(#"line 1: invalid JSON: the member "text" appears twice in one object"#), "\(run.stderr)")
        #expect(run.stderr.contains("line 2: invalid JSON: a comma before '}'"), "\(run.stderr)")
        #expect(run.stderr.contains("line 4: "), "a byte-order mark after line 1 is not skipped: \(run.stderr)")
    }

    @Test("each line is answered as it arrives, before the input ends")
    func answersAsLinesArrive() async throws {
        let process = try TiplineProcess(["extract", "--jsonl"], databaseURL: nil)
        let input = Pipe()
        process.process.standardInput = input
        try process.start()
        try input.fileHandleForWriting.write(contentsOf: Data((#"{"id":1,"text":"QQ 12345678"}"# + "\n").utf8))
        try await waitUntil("the first line is answered while the input is still open", timeout: 30) {
            process.stdout.contains(#"{"id":1,"contacts":[{"kind":"qq","value":"12345678"}]}"#)
        }
        try input.fileHandleForWriting.write(contentsOf: Data((#"{"id":2,"text":"none"}"# + "\n").utf8))
        try input.fileHandleForWriting.close()
        #expect(try await process.wait(timeout: 30) == .exit(0), "\(process.stderr)")
        #expect(process.stdout.hasSuffix(#"{"id":2,"contacts":[]}"# + "\n"), "\(process.stdout)")
    }

    @Test("plain mode reads one UTF-8 text of at most 16 MiB: more is refused unread, bytes that are not UTF-8 or a UTF-16 file are named, a byte-order mark is dropped")
    func plainModeInput() async throws {
        func plain(_ bytes: Data) async throws -> (status: TiplineProcess.Termination, stdout: String, stderr: String) {
            try await TiplineProcess.run(["extract"], databaseURL: nil, timeout: 60, input: bytes)
        }
        let marked = try await plain(Data([0xEF, 0xBB, 0xBF]) + Data("微信 abc_1234".utf8))
        #expect(marked.status == .exit(0) && marked.stdout == #"[{"kind":"wechat","value":"abc_1234"}]"# + "\n", "\(marked)")
        // A byte more than 16 MiB is refused, not read into memory without end (that exactly the
        // limit is read is `WholeText`'s unit test: extracting 16 MiB in a debug build took a core
        // for most of a minute, and starved the suite's other tests in CI).
        let limit = 16 << 20
        let over = try await plain(Data(repeating: 0x20, count: limit + 1))
        #expect(over.status == .exit(1) && over.stdout.isEmpty, "\(over)")
        #expect(over.stderr == "Error: standard input is longer than 16777216 bytes: not read (one text at most that long)\n", "\(over.stderr)")
        let garbled = try await plain(Data("ad ".utf8) + Data([0xFF]) + Data(" QQ 12345678".utf8))
        #expect(garbled.status == .exit(1) && garbled.stderr.contains("standard input is not valid UTF-8 (first bad byte at offset 3)"), "\(garbled)")
        let wide = try await plain(Data([0xFF, 0xFE]) + Data("Q\0Q\0".utf8))
        #expect(wide.status == .exit(1) && wide.stderr.contains("standard input is UTF-16LE"), "\(wide)")
    }

    /// Runs `tipline extract --jsonl` with `input` on standard input.
    static func extract(_ input: String) async throws -> (status: TiplineProcess.Termination, stdout: String, stderr: String) {
        try await TiplineProcess.run(["extract", "--jsonl"], databaseURL: nil, timeout: 60, input: Data(input.utf8))
    }
}
