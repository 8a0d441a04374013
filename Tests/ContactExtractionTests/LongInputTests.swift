import ContactExtraction
import Testing

/// Texts of the longest size a report may have (64 KiB), made of one piece repeated: shapes that
/// once made the scan quadratic (each marker or link start inside a long run read the whole rest
/// of it again: about a second for one such text). These tests pin what such texts yield; how long
/// they take is measured by `tipline-bench-extract` (BENCHMARKS.md), not asserted here.
@Suite("long inputs")
struct LongInputTests {
    static func repeated(_ piece: String) -> String {
        String(repeating: piece, count: 65_536 / piece.utf8.count)
    }

    @Test("runs of markers, links and hosts", arguments: [
        ("vx-", "wechat:vx-vx-vx-vx-vx-vx-"), ("wx-", "wechat:wx-wx-wx-wx-wx-wx-"), ("weixin-", "wechat:weixin-weixin-"),
        ("www.a1.", nil), ("t.me.", nil), ("vx-abcdef.", nil), ("TG @a", nil),
        // Every number in one run of address characters asks where it ends (is an address next?).
        ("1-a-", nil), ("1-a-@", nil),
    ] as [(String, String?)])
    func repeatedPieces(piece: String, last: String?) {
        // Inside a longer ID run a marker's value is the rest of the run: only the last few
        // markers have one short enough.
        #expect(contacts(in: Self.repeated(piece)) == (last.map { [$0] } ?? []))
    }

    @Test("a host longer than DNS allows (253 characters) is no site")
    func longHost() {
        #expect(contacts(in: "https://" + Self.repeated("a.") + "cn").isEmpty)
        #expect(contacts(in: "https://" + String(repeating: "a.", count: 125) + "cn") == ["site:" + String(repeating: "a.", count: 125) + "cn"])
        #expect(contacts(in: "https://" + String(repeating: "a.", count: 126) + "cn").isEmpty)
    }
}
