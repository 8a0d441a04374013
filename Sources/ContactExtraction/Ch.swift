/// Scalar values the scanner compares against, named by the character they stand for.
///
/// The scanner works on folded `UInt32` scalars (see `Fold`), so upper-case ASCII, full-width
/// forms and traditional characters never appear here: only their folded targets do.
enum Ch {
    static let space: UInt32 = 0x20
    static let tab: UInt32 = 0x09
    static let plus: UInt32 = 0x2B
    static let minus: UInt32 = 0x2D
    static let dot: UInt32 = 0x2E
    static let slash: UInt32 = 0x2F
    static let colon: UInt32 = 0x3A
    static let equals: UInt32 = 0x3D
    static let at: UInt32 = 0x40
    static let underscore: UInt32 = 0x5F
    static let star: UInt32 = 0x2A
    static let comma: UInt32 = 0x2C
    static let openParen: UInt32 = 0x28
    static let closeParen: UInt32 = 0x29
    static let openBracket: UInt32 = 0x5B
    static let closeBracket: UInt32 = 0x5D

    static let middleDot: UInt32 = 0xB7
    static let bullet: UInt32 = 0x2022
    static let katakanaDot: UInt32 = 0x30FB
    static let ideographicComma: UInt32 = 0x3001
    static let lenticularOpen: UInt32 = 0x3010
    static let lenticularClose: UInt32 = 0x3011
    static let variationSelector16: UInt32 = 0xFE0F

    static let penguin: UInt32 = 0x1F427
    static let herb: UInt32 = 0x1F33F
    static let airplane: UInt32 = 0x2708
    static let heavyPlus: UInt32 = 0x2795

    static let 号: UInt32 = 0x53F7
    static let 码: UInt32 = 0x7801
    static let 是: UInt32 = 0x662F
    static let 为: UInt32 = 0x4E3A
    static let 鹅: UInt32 = 0x9E45
    static let 电: UInt32 = 0x7535
    static let 报: UInt32 = 0x62A5
    static let 飞: UInt32 = 0x98DE
    static let 机: UInt32 = 0x673A
    static let 卫: UInt32 = 0x536B
    static let 维: UInt32 = 0x7EF4
    static let 群: UInt32 = 0x7FA4
    static let 抠: UInt32 = 0x62A0
    static let 微: UInt32 = 0x5FAE
    static let 威: UInt32 = 0x5A01
    static let 薇: UInt32 = 0x8587
    static let 徽: UInt32 = 0x5FBD
    static let 信: UInt32 = 0x4FE1
    static let 星: UInt32 = 0x661F
    static let 扣: UInt32 = 0x6263
    static let 蔻: UInt32 = 0x853B
    static let 企: UInt32 = 0x4F01
    static let 球: UInt32 = 0x7403
    static let 秋: UInt32 = 0x79CB
    static let 加: UInt32 = 0x52A0
    static let 同: UInt32 = 0x540C
    static let 和: UInt32 = 0x548C
    static let 与: UInt32 = 0x4E0E
    static let 话: UInt32 = 0x8BDD

    static let d: UInt32 = 0x64
    static let i: UInt32 = 0x69
    static let q: UInt32 = 0x71
    static let v: UInt32 = 0x76
    static let x: UInt32 = 0x78
}
