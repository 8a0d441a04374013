/// Character classes over folded scalars.
enum Scalar {
    /// `a`-`z` (upper case is folded away).
    @inline(__always)
    static func isLetter(_ c: UInt32) -> Bool { (c &- 0x61) < 26 }

    /// `0`-`9` (full-width and circled digits are folded to these).
    @inline(__always)
    static func isASCIIDigit(_ c: UInt32) -> Bool { (c &- 0x30) < 10 }

    /// A letter or an ASCII digit: what glues a marker or a number to a word.
    @inline(__always)
    static func isAlnum(_ c: UInt32) -> Bool { isLetter(c) || isASCIIDigit(c) }

    /// The value of a digit form, or -1. Ideographic forms are in `ideographDigit`.
    @inline(__always)
    static func digit(_ c: UInt32) -> Int {
        if (c &- 0x30) < 10 { return Int(c &- 0x30) }
        if c < 0x3000 { return -1 }
        return ideographDigit(c)
    }

    /// The value of a Chinese or financial digit (`〇零一…九幺`, `壹贰叁…玖`), or -1.
    static func ideographDigit(_ c: UInt32) -> Int {
        switch c {
        case 0x3007, 0x96F6: 0  // 〇 零
        case 0x4E00, 0x5E7A, 0x58F9: 1  // 一 幺 壹
        case 0x4E8C, 0x8D30: 2  // 二 贰
        case 0x4E09, 0x53C1: 3  // 三 叁
        case 0x56DB, 0x8086: 4  // 四 肆
        case 0x4E94, 0x4F0D: 5  // 五 伍
        case 0x516D, 0x9646: 6  // 六 陆
        case 0x4E03, 0x67D2: 7  // 七 柒
        case 0x516B, 0x634C: 8  // 八 捌
        case 0x4E5D, 0x7396: 9  // 九 玖
        default: -1
        }
    }

    /// A separator that may stand between two digits of one number (1 to 3 in a row).
    @inline(__always)
    static func isSeparator(_ c: UInt32) -> Bool {
        switch c {
        case Ch.space, Ch.minus, Ch.dot, Ch.underscore, Ch.slash, Ch.star: true
        case Ch.middleDot, Ch.bullet, Ch.katakanaDot: true
        case 0x200B, 0x200C, 0x200D, 0xFEFF: true  // zero-width
        default: false
        }
    }

    /// A separator that reads as a gap between two numbers, where a too-long run may be split.
    @inline(__always)
    static func isWideSeparator(_ c: UInt32) -> Bool { c == Ch.space || c == Ch.slash }

    /// A CJK ideograph (basic block or extension A).
    @inline(__always)
    static func isIdeograph(_ c: UInt32) -> Bool {
        (c &- 0x4E00) < 0x5200 || (c &- 0x3400) < 0x1A00
    }

    /// A character that may appear in the local part of an e-mail address.
    @inline(__always)
    static func isLocal(_ c: UInt32) -> Bool {
        isAlnum(c) || c == Ch.dot || c == Ch.underscore || c == Ch.minus || c == Ch.plus || c == 0x25
    }

    /// A letter of a cased script other than ASCII (`ü`, `é`, `ж`): inside a word, so an e-mail
    /// address cannot start right after one (`müller@example.de` is no `ller@example.de`).
    /// Ideographs, kana and Thai have no case: an address may follow them directly
    /// (`联系张三zhang@163.com`).
    static func isCasedLetter(_ c: UInt32) -> Bool {
        switch category(c) {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter: true
        default: false
        }
    }

    /// A combining mark (on the letter before it).
    static func isMark(_ c: UInt32) -> Bool {
        switch category(c) {
        case .nonspacingMark, .spacingMark, .enclosingMark: true
        default: false
        }
    }

    /// The general category of a non-ASCII scalar in the blocks where cased letters and marks
    /// lie (below U+2000 and a few above); nil elsewhere: ideographs, kana and CJK punctuation,
    /// the usual neighbours here, are settled without a lookup.
    private static func category(_ c: UInt32) -> Unicode.GeneralCategory? {
        guard c >= 0x80, c < 0x2000 || (0x2C00..<0x2E00).contains(c) || (0xA640..<0xAB70).contains(c) || (0xFE20..<0xFE30).contains(c),
              let scalar = Unicode.Scalar(c) else { return nil }
        return scalar.properties.generalCategory
    }

    /// A character that may appear in a host name.
    @inline(__always)
    static func isHost(_ c: UInt32) -> Bool { isAlnum(c) || c == Ch.dot || c == Ch.minus }

    /// `[a-z0-9_-]`: a WeChat ID character.
    @inline(__always)
    static func isWeChatID(_ c: UInt32) -> Bool { isAlnum(c) || c == Ch.underscore || c == Ch.minus }

    /// `[a-z0-9_]`: a Telegram username character.
    @inline(__always)
    static func isTelegramName(_ c: UInt32) -> Bool { isAlnum(c) || c == Ch.underscore }

    /// A character that may continue a URL after its host (path, query, fragment).
    @inline(__always)
    static func isURLTail(_ c: UInt32) -> Bool {
        if isHost(c) { return true }
        switch c {
        case Ch.slash, Ch.underscore, 0x7E, 0x3F, 0x23, Ch.equals, 0x26, 0x25, Ch.plus, Ch.at, Ch.colon: return true
        default: return false
        }
    }
}
