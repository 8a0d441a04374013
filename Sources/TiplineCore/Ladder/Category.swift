/// What an ad offers, read from its words.
public enum Category: String, Sendable, CaseIterable, Codable {
    /// Accounts rented out by the day or month (出租, 日租, 租号).
    case rental
    /// Accounts sold, often in bulk (出售, 批发, 卖号).
    case sale
    /// Accounts bought back (回收, 收号, 高价收).
    case buyback
    /// Personal-data look-ups (信息代查, 开房记录, 户籍查询).
    case lookup
    /// None of the above.
    case other

    /// Keywords per category, in simplified Chinese and lower-case English (text is folded first).
    static let keywords: [(Category, [String])] = [
        (.lookup, ["信息代查", "代查", "开房记录", "开房信息", "户籍", "查档", "机主信息", "通话记录", "行程轨迹",
                   "身份信息查询", "查人", "定位查询", "个人信息查询", "社工库", "lookup", "look up", "background check"]),
        (.buyback, ["回收", "收号", "高价收", "收购", "求购", "长期收", "大量收", "收微信", "收qq", "收v",
                    "buy back", "buyback", "buying accounts", "we buy"]),
        (.rental, ["出租", "租号", "日租", "月租", "周租", "租用", "短租", "长租", "包月", "租赁", "按天",
                   "for rent", "rental", "rent out", "renting"]),
        (.sale, ["出售", "批发", "卖号", "低价售", "转让", "出号", "低价出", "便宜出", "空白号", "成品号", "老号",
                 "for sale", "wholesale", "selling", "sell"]),
    ]

    /// The category of an ad: `lookup` wins outright (a different offence); otherwise the category
    /// with the most keyword hits, ties going to the one mentioned first.
    public static func of(_ text: String) -> Category {
        let folded = fold(text)
        var best: (category: Category, hits: Int, first: Int)?
        for (category, words) in keywords {
            var hits = 0
            var first = Int.max
            for word in words {
                var searchStart = folded.startIndex
                let ascii = word.unicodeScalars.allSatisfy(\.isASCII)
                while let range = folded.range(of: word, from: searchStart) {
                    searchStart = range.upperBound
                    // English keywords count only as whole words ("sell" is not in "seller").
                    if ascii, isLetter(folded, range.lowerBound - 1) || isLetter(folded, range.upperBound) { continue }
                    hits += 1
                    first = min(first, range.lowerBound)
                }
            }
            guard hits > 0 else { continue }
            if category == .lookup { return .lookup }
            if let current = best, current.hits > hits || (current.hits == hits && current.first <= first) {
                continue
            }
            best = (category, hits, first)
        }
        return best?.category ?? .other
    }

    private static func isLetter(_ text: [Character], _ index: Int) -> Bool {
        guard index >= 0, index < text.count else { return false }
        return text[index].isASCII && text[index].isLetter
    }

    /// Lower-cases ASCII, folds full-width letters and maps the traditional characters these
    /// keywords use to simplified ones, so one keyword list serves both scripts.
    static func fold(_ text: String) -> [Character] {
        var out: [Character] = []
        out.reserveCapacity(text.count)
        for scalar in text.unicodeScalars {
            var value = scalar.value
            if value >= 0xFF01, value <= 0xFF5E { value -= 0xFEE0 }
            if value >= 0x41, value <= 0x5A { value += 0x20 }
            if let mapped = traditional[value] { value = mapped }
            out.append(Character(Unicode.Scalar(value) ?? scalar))
        }
        return out
    }

    private static let traditional: [UInt32: UInt32] = {
        let pairs: [(Character, Character)] = [
            ("號", "号"), ("賣", "卖"), ("發", "发"), ("開", "开"), ("錄", "录"), ("戶", "户"), ("購", "购"),
            ("價", "价"), ("資", "资"), ("訊", "讯"), ("讓", "让"), ("賃", "赁"), ("轉", "转"), ("機", "机"),
            ("話", "话"), ("記", "记"), ("詢", "询"), ("個", "个"), ("長", "长"), ("於", "于"), ("軌", "轨"),
            ("跡", "迹"), ("檔", "档"), ("隨", "随"), ("務", "务"), ("庫", "库"), ("員", "员"),
        ]
        var map: [UInt32: UInt32] = [:]
        for (from, to) in pairs { map[from.unicodeScalars.first!.value] = to.unicodeScalars.first!.value }
        return map
    }()
}

extension [Character] {
    /// The first occurrence of `word` at or after `from`.
    func range(of word: String, from: Int) -> Range<Int>? {
        let needle = Array(word)
        guard !needle.isEmpty, count >= needle.count else { return nil }
        var i = from
        while i + needle.count <= count {
            if self[i] == needle[0], Array(self[i..<i + needle.count]) == needle { return i..<i + needle.count }
            i += 1
        }
        return nil
    }
}
