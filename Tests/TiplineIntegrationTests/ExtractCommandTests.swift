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

    /// Runs `tipline extract --jsonl` with `input` on standard input.
    static func extract(_ input: String) async throws -> (status: TiplineProcess.Termination, stdout: String, stderr: String) {
        try await TiplineProcess.run(["extract", "--jsonl"], databaseURL: nil, timeout: 60, input: Data(input.utf8))
    }
}
