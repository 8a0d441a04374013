/// What a `同号` phrase names before it, read backwards.
enum NamedKind {
    case qq, wechat, phone
}

extension Scan {
    /// Marker spellings that may stand before `同号`, longest first where one ends another.
    static let namedBeforeSameNumber: [(scalars: [UInt32], kind: NamedKind)] = names.map {
        (Array($0.0.unicodeScalars.map(\.value)), $0.1)
    }

    private static let names: [(String, NamedKind)] = [
        ("weixin", .wechat), ("wechat", .wechat), ("微信", .wechat), ("威信", .wechat),
        ("薇信", .wechat), ("徽信", .wechat), ("维信", .wechat), ("卫星", .wechat), ("v信", .wechat),
        ("vx", .wechat), ("wx", .wechat), ("薇", .wechat), ("微", .wechat), ("🌿", .wechat), ("v", .wechat),
        ("qq", .qq), ("q", .qq), ("扣扣", .qq), ("抠抠", .qq), ("蔻蔻", .qq), ("企鹅", .qq),
        ("球球", .qq), ("秋秋", .qq), ("🐧", .qq),
        ("电话", .phone), ("手机", .phone), ("手机号", .phone), ("tel", .phone), ("phone", .phone),
    ]

    /// Whether `c` may join two markers named before `同号` (`QQ/微信同号`, `QQ、微信同号`).
    static func joinsNames(_ c: UInt32) -> Bool {
        c == Ch.space || c == Ch.slash || c == Ch.ideographicComma || c == Ch.和 || c == Ch.与
            || c == 0x26 || c == Ch.plus || c == Ch.comma
    }

    /// Whether `c` may stand between a number and the `同号` phrase after it.
    static func bracketsOrSpace(_ c: UInt32) -> Bool {
        switch c {
        case Ch.space, Ch.tab, Ch.openParen, Ch.closeParen, Ch.openBracket, Ch.closeBracket,
             Ch.lenticularOpen, Ch.lenticularClose, Ch.comma, Ch.ideographicComma:
            true
        default:
            false
        }
    }

    /// Reads a `同号` / `同微` phrase at `i`: one number serves under each marker it names.
    ///
    /// The number is the one right after the phrase (within the filler limit), or else the one
    /// that ends right before it. The phrase never consumes that number: a number after it is
    /// still scanned as usual (which reads any phone in it once more, harmlessly).
    mutating func sameNumber(at i: Int) {
        var namesQQ = false
        var end: Int
        switch at(i + 1) {
        case Ch.号:
            end = i + 2
        case Ch.微:
            end = at(i + 2) == Ch.信 ? i + 3 : i + 2
        default:
            return
        }
        // Walk back over the markers the phrase names.
        var start = i
        var p = i
        while true {
            var q = p
            while q > 0, Self.joinsNames(s[q - 1]), p - q < 3 { q -= 1 }
            guard let named = namedEnding(at: q) else { break }
            if named.kind == .qq { namesQQ = true }
            p = q - named.length
            start = p
        }
        // A number right after the phrase, within the filler limit.
        let after = filler(after: Marker(kind: .qq, end: end)).map(\.end) ?? end
        let c = at(after)
        let plus = c == Ch.plus && Scalar.digit(at(after + 1)) >= 0
        var reading: NumberReading?
        if Scalar.digit(c) >= 0 || plus {
            // The digits of an e-mail address after the phrase are the address's only.
            // Before an address, only one group set apart from it (`QQ同号 12345678 12345678@qq.com`).
            if let (run, _, cut) = numberBeforeAddress(digitRun(at: plus ? after + 1 : after)), !gluedAfter(run), !cut || run.gaps.isEmpty {
                // Read as a number after a marker is (`read`): without a word-like numeral or a
                // time after it (`QQ同号 12345678 10:30`) where that leaves a valid number; a
                // mobile first (`QQ同号 138 1234 5678元` is that mobile, not QQ 1381234).
                let ranges = candidateRanges(run)
                let mobile = ranges.first { Self.mobile(run.digits[$0], plus: plus && $0.lowerBound == 0) != nil }
                let qq = namesQQ ? ranges.first { !(plus && $0.lowerBound == 0) && Self.qq(run.digits[$0]) != nil } : nil
                if let range = mobile ?? qq {
                    let usesPlus = plus && range.lowerBound == 0
                    reading = NumberReading(end: run.positions[range.upperBound - 1] + 1, digits: run.digits[range], plus: usesPlus)
                }
                // A list after the phrase (`QQ同号 13812345678 / 13987654321`, read as `split`
                // reads it): the phrase names its first number.
                if reading == nil,
                   let first = (partition(run, as: .phone, plus: plus) ?? (namesQQ ? partition(run, as: .qq, plus: plus) : nil))?.first {
                    reading = NumberReading(end: run.positions[first.upperBound - 1] + 1, digits: run.digits[first], plus: plus)
                }
            }
        } else if let last = lastNumber {
            // Otherwise the number that ends right before it, past spaces and brackets.
            var q = start
            while q > last.end, start - q < 4, Self.bracketsOrSpace(s[q - 1]) { q -= 1 }
            if q == last.end { reading = last }
        }
        guard let reading else { return }
        if let phone = Self.mobile(reading.digits, plus: reading.plus) { emit(.phone, phone) }
        if namesQQ, !reading.plus, let qq = Self.qq(reading.digits) { emit(.qq, qq) }
    }

    /// The marker named before `同号` that ends at `q`, if any.
    func namedEnding(at q: Int) -> (kind: NamedKind, length: Int)? {
        for named in Self.namedBeforeSameNumber {
            let from = q - named.scalars.count
            guard matches(named.scalars, at: from) else { continue }
            if Scalar.isLetter(named.scalars[0]), Scalar.isAlnum(at(from - 1)) { continue }
            return (named.kind, named.scalars.count)
        }
        return nil
    }
}
