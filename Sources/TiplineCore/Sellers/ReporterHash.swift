/// A reporter's keyed hash, as `reports.reporter_hash` holds it (32 bytes of HMAC-SHA256), kept
/// inline.
///
/// Levelling a batch interns every reporter of the batch and of the sellers' past reports read for
/// it: as `Data`, each of those 32-byte values was a heap allocation when read, and hashing or
/// comparing one went through `Data`'s storage. Here they are four words, hashed and compared
/// directly. Values up to 32 bytes are held (shorter ones only in tests); equal bytes, equal hashes.
public struct ReporterHash: Hashable, Sendable {
    /// Bytes held at most.
    public static let capacity = 32

    /// The bytes as they lie in memory, zero past `count`.
    private var words: (UInt64, UInt64, UInt64, UInt64)
    private var count: UInt8

    /// The bytes, or nil when there are more than 32.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count <= Self.capacity else { return nil }
        var raw: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { out in
            for (index, byte) in bytes.enumerated() { out[index] = byte }
        }
        self.init(raw: raw, count: bytes.count)
    }

    /// The first `count` bytes of `raw` (32 bytes as they lie in memory: byte `i` of the hash is
    /// byte `i` of the tuple), for a decoder that fills them without allocating. Nil when `count`
    /// is over 32.
    public init?(raw: (UInt64, UInt64, UInt64, UInt64), count: Int) {
        guard count >= 0, count <= Self.capacity else { return nil }
        var raw = raw
        // Bytes past `count` are zero: equal bytes, equal words.
        withUnsafeMutableBytes(of: &raw) { bytes in
            for index in count..<Self.capacity { bytes[index] = 0 }
        }
        words = raw
        self.count = UInt8(count)
    }

    /// How many bytes it holds.
    public var byteCount: Int { Int(count) }

    /// Calls `body` with the bytes, in order, without copying them out.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words) { try body(UnsafeRawBufferPointer(rebasing: $0.prefix(Int(count)))) }
    }

    /// The bytes, in order.
    public var bytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    public static func == (lhs: ReporterHash, rhs: ReporterHash) -> Bool {
        lhs.count == rhs.count && lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1
            && lhs.words.2 == rhs.words.2 && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
        hasher.combine(count)
    }
}
