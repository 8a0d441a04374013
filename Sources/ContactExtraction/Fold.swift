/// The folding applied to every scalar before scanning, so that each rule is written once.
///
/// Folding keeps one scalar per scalar (indices stay aligned with the text) and maps:
/// upper-case ASCII to lower-case (every canonical value is lower-cased anyway); full-width
/// ASCII to ASCII; every width of space to U+0020; full-width and circled digits to ASCII digits;
/// hyphen-like dashes to `-`; and the traditional characters the contract names to simplified.
enum Fold {
    /// Folds one scalar value.
    @inline(__always)
    static func fold(_ c: UInt32) -> UInt32 {
        if c < 0x80 {
            return (c &- 0x41) < 26 ? c | 0x20 : c
        }
        return foldWide(c)
    }

    static func foldWide(_ c: UInt32) -> UInt32 {
        switch c {
        case 0xFF01...0xFF5E:
            return fold(c - 0xFEE0)
        case 0x3000, 0x00A0, 0x2000...0x200A, 0x202F, 0x205F:
            return Ch.space
        case 0x2460...0x2468:  // ①-⑨
            return 0x31 + (c - 0x2460)
        case 0x24EA:  // ⓪
            return 0x30
        case 0x2010...0x2013, 0x2212, 0xFE63:
            return Ch.minus
        case 0xFF65:  // half-width katakana middle dot
            return Ch.katakanaDot
        case 0x865F: return Ch.号  // 號
        case 0x78BC: return Ch.码  // 碼
        case 0x70BA: return Ch.为  // 為
        case 0x9D5D: return Ch.鹅  // 鵝
        case 0x96FB: return Ch.电  // 電
        case 0x5831: return Ch.报  // 報
        case 0x98DB: return Ch.飞  // 飛
        case 0x6A5F: return Ch.机  // 機
        case 0x7D19: return 0x7EB8  // 紙 -> 纸
        case 0x885B: return Ch.卫  // 衛
        case 0x7DAD: return Ch.维  // 維
        case 0x7FA3: return Ch.群  // 羣
        case 0x6473: return Ch.抠  // 摳
        case 0x8CB3: return 0x8D30  // 貳 -> 贰
        case 0x53C3: return 0x53C1  // 參 -> 叁
        case 0x9678: return 0x9646  // 陸 -> 陆
        case 0x8A71: return Ch.话  // 話
        default:
            return c
        }
    }
}
