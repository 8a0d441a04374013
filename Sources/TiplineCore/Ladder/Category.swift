import Foundation

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
        var hits = [Int](repeating: 0, count: keywords.count)
        var first = [Int](repeating: Int.max, count: keywords.count)
        // Where each keyword may next be found: occurrences of one keyword never overlap.
        var nextAllowed = [Int](repeating: 0, count: matchers.count)
        let (lists, slots) = startingWith
        for start in folded.indices {
            let scalar = folded[start]
            guard scalar < 0x10000, case let slot = Int(slots[Int(scalar)]), slot >= 0 else { continue }
            for index in lists[slot] where start >= nextAllowed[index] {
                let matcher = matchers[index]
                let end = start + matcher.scalars.count
                guard end <= folded.count, folded[start..<end].elementsEqual(matcher.scalars) else { continue }
                nextAllowed[index] = end
                // English keywords count only as whole words ("sell" is not in "seller").
                if matcher.ascii, isLetter(folded, start - 1) || isLetter(folded, end) { continue }
                hits[matcher.category] += 1
                first[matcher.category] = min(first[matcher.category], start)
            }
        }
        var best: (category: Category, hits: Int, first: Int)?
        for (index, (category, _)) in keywords.enumerated() where hits[index] > 0 {
            if category == .lookup { return .lookup }
            if let current = best, current.hits > hits[index] || (current.hits == hits[index] && current.first <= first[index]) {
                continue
            }
            best = (category, hits[index], first[index])
        }
        return best?.category ?? .other
    }

    /// One keyword, folded, with the position of its category in `keywords`.
    private struct Matcher {
        var category: Int
        var scalars: [UInt32]
        var ascii: Bool
    }

    private static let matchers: [Matcher] = keywords.enumerated().flatMap { index, entry in
        entry.1.map { word in
            Matcher(category: index, scalars: fold(word), ascii: word.unicodeScalars.allSatisfy(\.isASCII))
        }
    }

    /// Keywords by their first scalar: the text is read once, each position against the few
    /// keywords that can start there. `slots` holds, for every scalar of the Basic Multilingual
    /// Plane (where every keyword starts), the position of its list in `lists`, or -1: an array read
    /// per scalar of every ad, where a dictionary would hash each one.
    private static let startingWith: (lists: [[Int]], slots: [Int16]) = {
        var lists: [[Int]] = []
        var slots = [Int16](repeating: -1, count: 0x10000)
        for (index, matcher) in matchers.enumerated() {
            let scalar = Int(matcher.scalars[0])
            precondition(scalar < 0x10000, "a keyword starts outside the Basic Multilingual Plane")
            if slots[scalar] < 0 {
                slots[scalar] = Int16(lists.count)
                lists.append([])
            }
            lists[Int(slots[scalar])].append(index)
        }
        return (lists, slots)
    }()

    private static func isLetter(_ text: [UInt32], _ index: Int) -> Bool {
        guard index >= 0, index < text.count else { return false }
        return (0x61...0x7A).contains(text[index])
    }

    /// Lower-cases ASCII, folds full-width letters, maps CJK compatibility ideographs to the
    /// ideographs they are canonically equal to, and maps the traditional characters these
    /// keywords use to simplified ones, so one keyword list serves both scripts.
    static func fold(_ text: String) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            var value = scalar.value
            if value >= 0xFF01, value <= 0xFF5E { value -= 0xFEE0 }
            if value >= 0x41, value <= 0x5A { value += 0x20 }
            if (0xF900...0xFAFF).contains(value) || (0x2F800...0x2FA1F).contains(value),
               let canonical = String(scalar).decomposedStringWithCanonicalMapping.unicodeScalars.first {
                value = canonical.value
            }
            if value < 0x10000, case let mapped = traditional[Int(value)], mapped != 0 { value = UInt32(mapped) }
            out.append(value)
        }
        return out
    }

    /// The simplified form of each traditional character the keywords use, by scalar (0: none).
    private static let traditional: [UInt16] = {
        let pairs: [(Character, Character)] = [
            ("號", "号"), ("賣", "卖"), ("發", "发"), ("開", "开"), ("錄", "录"), ("戶", "户"), ("購", "购"),
            ("價", "价"), ("資", "资"), ("訊", "讯"), ("讓", "让"), ("賃", "赁"), ("轉", "转"), ("機", "机"),
            ("話", "话"), ("記", "记"), ("詢", "询"), ("個", "个"), ("長", "长"), ("於", "于"), ("軌", "轨"),
            ("跡", "迹"), ("檔", "档"), ("隨", "随"), ("務", "务"), ("庫", "库"), ("員", "员"),
        ]
        var map = [UInt16](repeating: 0, count: 0x10000)
        for (from, to) in pairs { map[Int(from.unicodeScalars.first!.value)] = UInt16(to.unicodeScalars.first!.value) }
        return map
    }()
}
