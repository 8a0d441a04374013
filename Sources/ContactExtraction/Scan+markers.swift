/// A marker found in the text: a word that says which kind of contact follows it.
struct Marker {
    /// What the marker announces.
    enum Kind {
        case qq
        /// `QQ群`, `Q群`, `群号`: the number that follows is a group's and is no contact at all.
        case qqGroup
        case wechat
        case telegram
    }

    var kind: Kind
    /// Scalar index just after the marker.
    var end: Int
    /// The marker ends in a colon (`V:`), which counts as filler for the letters-only rule.
    var endsInColon = false
    /// The marker is the single letter `Q`, whose glued numbers may not contain separators.
    var singleQ = false
}

extension Scan {
    /// ASCII spellings of markers, tried longest first where one is a prefix of another.
    static let weixin: [UInt32] = Array("weixin".unicodeScalars.map(\.value))
    static let wechat: [UInt32] = Array("wechat".unicodeScalars.map(\.value))
    static let telegram: [UInt32] = Array("telegram".unicodeScalars.map(\.value))

    /// Whether a marker's ASCII letters starting at `k` are not glued to a word on the left.
    @inline(__always)
    func freeLeft(_ k: Int) -> Bool { !Scalar.isAlnum(at(k - 1)) }

    /// Whether the ASCII letters of a marker of `kind` ending before `k` are not glued to a letter
    /// on the right.
    ///
    /// The filler word `ID` may follow directly (`WeChatID: abc_123`), read as `filler` reads it:
    /// `vxid_abc123` is a marker glued to a word, not `vx`, `ID` and a value.
    func freeRight(_ k: Int, _ kind: Marker.Kind) -> Bool {
        !Scalar.isLetter(at(k)) || isIDFiller(at: k, after: kind)
    }

    /// The marker starting at `i`, if any.
    func marker(at i: Int) -> Marker? {
        let c = s[i]
        let next = at(i + 1)
        switch c {
        case Ch.q:
            guard freeLeft(i) else { return nil }
            let end = next == Ch.q ? i + 2 : i + 1
            if at(end) == Ch.群 { return Marker(kind: .qqGroup, end: end + 1) }
            guard freeRight(end, .qq) else { return nil }
            return Marker(kind: .qq, end: end, singleQ: end == i + 1)
        case Ch.v:
            guard freeLeft(i) else { return nil }
            if next == Ch.x, freeRight(i + 2, .wechat) { return Marker(kind: .wechat, end: i + 2) }
            if next == Ch.信 { return Marker(kind: .wechat, end: i + 2) }
            if next == Ch.colon { return Marker(kind: .wechat, end: i + 2, endsInColon: true) }
            return nil
        case 0x77:  // w
            guard freeLeft(i) else { return nil }
            if next == Ch.x, freeRight(i + 2, .wechat) { return Marker(kind: .wechat, end: i + 2) }
            for word in [Self.weixin, Self.wechat] where matches(word, at: i) && freeRight(i + 6, .wechat) {
                return Marker(kind: .wechat, end: i + 6)
            }
            return nil
        case 0x74:  // t
            guard freeLeft(i) else { return nil }
            if next == 0x67, freeRight(i + 2, .telegram) { return Marker(kind: .telegram, end: i + 2) }
            if matches(Self.telegram, at: i), freeRight(i + 8, .telegram) { return Marker(kind: .telegram, end: i + 8) }
            return nil
        case Ch.plus, Ch.heavyPlus, Ch.加:
            // `+V`, `➕V` (also `➕` with its emoji presentation selector), `加V`; `➕薇` is found at `薇`.
            let v = c == Ch.heavyPlus && next == Ch.variationSelector16 ? i + 2 : i + 1
            guard at(v) == Ch.v, freeRight(v + 1, .wechat) else { return nil }
            return Marker(kind: .wechat, end: v + 1)
        case Ch.微, Ch.威, Ch.徽, Ch.维:
            return next == Ch.信 ? Marker(kind: .wechat, end: i + 2) : nil
        case Ch.薇:
            return Marker(kind: .wechat, end: next == Ch.信 ? i + 2 : i + 1)
        case Ch.卫:
            return next == Ch.星 ? Marker(kind: .wechat, end: i + 2) : nil
        case Ch.herb:
            return Marker(kind: .wechat, end: emojiEnd(i))
        case Ch.扣, Ch.抠, Ch.蔻, Ch.球, Ch.秋:
            return next == c ? qqMarker(end: i + 2) : nil
        case Ch.企:
            return next == Ch.鹅 ? qqMarker(end: i + 2) : nil
        case Ch.penguin:
            return qqMarker(end: emojiEnd(i))
        case Ch.电:
            return next == Ch.报 ? Marker(kind: .telegram, end: i + 2) : nil
        case Ch.飞:
            return next == Ch.机 ? Marker(kind: .telegram, end: i + 2) : nil
        case Ch.airplane:
            return Marker(kind: .telegram, end: emojiEnd(i))
        case Ch.群:
            return next == Ch.号 ? Marker(kind: .qqGroup, end: i + 2) : nil
        default:
            return nil
        }
    }

    /// The end of the emoji at `i`, with the emoji presentation selector (U+FE0F) that often
    /// follows it (`🐧️`, `🌿️`, `✈️`).
    func emojiEnd(_ i: Int) -> Int {
        at(i + 1) == Ch.variationSelector16 ? i + 2 : i + 1
    }

    /// A QQ marker ending at `end`, or a group marker when `群` follows (`企鹅群`).
    func qqMarker(end: Int) -> Marker {
        at(end) == Ch.群 ? Marker(kind: .qqGroup, end: end + 1) : Marker(kind: .qq, end: end)
    }
}
