import Testing
import TiplineCore

@Suite("Reporter hashes")
struct ReporterHashTests {
    @Test("up to 32 bytes are held and given back in order; more are refused")
    func holdsUpTo32Bytes() {
        let full = (0..<32).map { UInt8($0 * 7 + 1) }
        #expect(ReporterHash(full)?.bytes == full)
        #expect(ReporterHash([UInt8]())?.bytes == [])
        #expect(ReporterHash([0xFF, 0, 0x80])?.bytes == [0xFF, 0, 0x80])
        #expect(ReporterHash(full + [0]) == nil)
        #expect(ReporterHash(count: 33) { _ in 0 } == nil)
        #expect(ReporterHash(count: 2) { $0 == 1 ? nil : 0 } == nil)
    }

    @Test("equal bytes are equal and hash alike; any byte, or the length alone, tells two apart")
    func equalityFollowsTheBytes() {
        let base = (0..<32).map { UInt8($0) }
        var seen: Set<ReporterHash> = [ReporterHash(base)!]
        #expect(seen.contains(ReporterHash(base)!))
        for index in base.indices {
            var changed = base
            changed[index] ^= 0x01
            #expect(seen.insert(ReporterHash(changed)!).inserted, "byte \(index)")
        }
        // Zero bytes at the end still count: [], [0] and [0, 0] are three reporters.
        #expect(Set([ReporterHash([])!, ReporterHash([0])!, ReporterHash([0, 0])!]).count == 3)
    }
}
