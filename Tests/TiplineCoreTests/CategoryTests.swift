import ContactExtraction
import Foundation
import Testing
@testable import TiplineCore

@Suite("Category")
struct CategoryTests {
    @Test("an ad renting accounts by the day is rental")
    func rental() {
        #expect(Category.of("出租微信 日租80元") == .rental)
    }

    @Test("an ad selling accounts in bulk is sale")
    func sale() {
        #expect(Category.of("批发QQ号 100个以上5折") == .sale)
    }

    @Test("an ad buying accounts back is buyback")
    func buyback() {
        #expect(Category.of("高价回收微信号") == .buyback)
    }

    @Test("an ad offering personal-data look-ups is lookup")
    func lookup() {
        #expect(Category.of("信息代查 开房记录") == .lookup)
    }

    @Test("lookup wins even when sale words outnumber it")
    func lookupWins() {
        #expect(Category.of("出售 出售 批发 卖号 信息代查") == .lookup)
        #expect(Category.of("出售微信号，另有开房记录") == .lookup)
    }

    @Test("traditional characters are read like simplified ones")
    func traditional() {
        #expect(Category.of("出售微信號") == .sale)
        #expect(Category.of("高價收購QQ號") == .buyback)
        #expect(Category.of("開房記錄查詢") == .lookup)
    }

    @Test("English ads are categorised case-insensitively")
    func english() {
        #expect(Category.of("WeChat accounts for rent") == .rental)
        #expect(Category.of("QQ accounts FOR SALE, wholesale prices") == .sale)
        #expect(Category.of("We buy WeChat accounts") == .buyback)
        #expect(Category.of("Background check on anyone") == .lookup)
    }

    @Test("an ad with no keyword is other")
    func other() {
        #expect(Category.of("今天天气不错，加我聊天") == .other)
        #expect(Category.of("hello world") == .other)
        #expect(Category.of("") == .other)
    }

    @Test("full-width letters are folded before matching")
    func fullWidth() {
        #expect(Category.of("ＷＨＯＬＥＳＡＬＥ ＱＱ") == .sale)
        #expect(Category.of("ＲＥＮＴＡＬ ｗｅｃｈａｔ") == .rental)
        #expect(Category.fold("ＡＢｃ") == "abc".unicodeScalars.map(\.value))
    }

    @Test("the category with the most keyword hits wins")
    func mostHits() {
        // One sale word against two rental words.
        #expect(Category.of("批发 日租 月租") == .rental)
        // Two buyback words against one rental word.
        #expect(Category.of("出租 回收 求购") == .buyback)
    }

    @Test("on a tie the category mentioned first wins")
    func tieGoesToFirst() {
        #expect(Category.of("租号 转让") == .rental)
        #expect(Category.of("转让 租号") == .sale)
    }

    @Test("analysing an ad reads its contacts and its category together")
    func analysis() {
        let analysis = Analysis(text: "出租微信 日租80元 QQ 12345678")
        #expect(analysis.category == .rental)
        #expect(analysis.contacts == [Contact(kind: .qq, value: "12345678")])
    }
}

/// The first, Character-based reading of the categories, kept as the reference the scalar one
/// must agree with.
private func referenceCategory(_ text: String) -> Category {
    let folded = text.unicodeScalars.map { scalar -> Character in
        let value = Category.fold(String(scalar))[0]
        return Character(Unicode.Scalar(value) ?? scalar)
    }
    func isLetter(_ index: Int) -> Bool {
        index >= 0 && index < folded.count && folded[index].isASCII && folded[index].isLetter
    }
    func range(of word: [Character], from: Int) -> Range<Int>? {
        var i = from
        while i + word.count <= folded.count {
            if Array(folded[i..<i + word.count]) == word { return i..<i + word.count }
            i += 1
        }
        return nil
    }
    var best: (category: Category, hits: Int, first: Int)?
    for (category, words) in Category.keywords {
        var hits = 0
        var first = Int.max
        for word in words {
            let needle = Array(word)
            let ascii = word.unicodeScalars.allSatisfy(\.isASCII)
            var from = 0
            while let found = range(of: needle, from: from) {
                from = found.upperBound
                if ascii, isLetter(found.lowerBound - 1) || isLetter(found.upperBound) { continue }
                hits += 1
                first = min(first, found.lowerBound)
            }
        }
        guard hits > 0 else { continue }
        if category == .lookup { return .lookup }
        if let current = best, current.hits > hits || (current.hits == hits && current.first <= first) { continue }
        best = (category, hits, first)
    }
    return best?.category ?? .other
}

@Suite("Category against its reference")
struct CategoryReferenceTests {
    @Test("the single-pass reading agrees with the keyword-by-keyword reference on 5,000 random ads")
    func agreesWithReference() {
        var generator = SplitMix64(seed: 0xCA7E)
        let pieces = Category.keywords.flatMap(\.1) + ["sel", "ler", "s", " ", "，", "微信", "號", "賣", "ＲＥＮＴ", "a", "出", "收",
                                                       "\u{F934}", "QQ 12345", "租租", "回回收"]
        for _ in 0..<5_000 {
            let text = (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            #expect(Category.of(text) == referenceCategory(text), "\(text)")
        }
    }

    @Test("CJK compatibility ideographs read as the ideographs they are canonically equal to")
    func compatibilityIdeographs() {
        #expect(Category.of("\u{F934}号出手") == .sale)  // 老号 written with U+F934
    }
}
