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
    }

    @Test("from raw words: the first count bytes in memory order, the rest ignored; over 32 refused")
    func fromRawWords() {
        var raw: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { bytes in for index in 0..<32 { bytes[index] = UInt8(index + 1) } }
        #expect(ReporterHash(raw: raw, count: 32)?.bytes == (1...32).map { UInt8($0) })
        #expect(ReporterHash(raw: raw, count: 3) == ReporterHash([1, 2, 3]))
        #expect(ReporterHash(raw: raw, count: 0) == ReporterHash([UInt8]()))
        #expect(ReporterHash(raw: raw, count: 33) == nil)
    }
}
