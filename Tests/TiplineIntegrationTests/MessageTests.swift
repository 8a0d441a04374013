import Testing
@testable import tipline

@Suite("messages")
struct MessageTests {
    @Test("a long reason repeated on every retry is cut at a word, and says so")
    func shortenedAtAWord() {
        let libpq = "connection to server at \"127.0.0.1\", port 55432 failed: FATAL: the database system is shutting down; "
            + "the server is processing its shutdown and accepts no connections"
        let short = shortened(libpq)
        #expect(short.count <= 121)
        #expect(short.hasSuffix("…"))
        #expect(libpq.hasPrefix(String(short.dropLast())))
        #expect(libpq.split(separator: " ").contains(short.dropLast().split(separator: " ").last!), "cut inside a word: \(short)")
        #expect(shortened("server closed the connection") == "server closed the connection")
    }
}
