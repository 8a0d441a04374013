// Benchmark (not a test): how fast ContactExtractor reads a realistic corpus on one core.
//
// Usage: tipline-bench-extract [megabytes]   (default 32)
// Builds a corpus of ads from templates filled with varied contacts and distractors, then runs the
// extractor over every ad three times and prints the median throughput in MB/s and ads/s. Then
// it reads texts of the longest size a report may have (64 KiB) made of one short piece repeated,
// shapes that once made the scan quadratic, and prints the time each takes.
import ContactExtraction

/// A small deterministic PRNG (SplitMix64), so every run measures the same corpus.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Ad templates in the voice of rental, sale, buyback and lookup posts.
let templates: [String] = [
    "【出租微信】实名老号，{YEAR}年注册，日租{N}元，月租{N}0元，押金{N}。{DATE}前下单9折！联系：{PHONE}",
    "高价回收QQ号！8位靓号{N}元起，7位面议。扣扣：{QQ} 或 V信：{WX}",
    "批发微信号 {N}个起批 成功率{PCT}% 售后48小时 有意者加vx：{WX}",
    "信息代查：身份证 {IDCARD} 开房 户籍 一条{N} 飞机 @{TG}",
    "订单号{ORDER} 已发货，快递单号SF{ORDER}，有问题联系微信 {WX}",
    "Renting verified WeChat accounts, ${N}/day, 3 days minimum. WhatsApp +1 415 555 {N4} or email {WX}@acctshop.net",
    "Aged QQ accounts for sale, {YEAR}-2018 batch, {N}+ in stock. Order at https://www.AcctShop.net/qq?id={N} or t.me/{TG}",
    "出售微信號，實名認證，價格私聊。微信號：{WX} 電話：{PHONE}",
    "急收QQ微信老号，电话{PHONE_SPACED}，打不通请发短信到{PHONE_FIN}",
    "专业代注册微信/QQ/TG，价格：微信{N}元/个，QQ {N}元/个。客服QQ：{QQ} 微信：{WX} TG：@{TG} 官网 www.{WX}.com",
    "本店长期出售各类社交账号，实名认证，稳定不封，支持批量采购。一百个以上九折，五百个以上八折，售后七天包换，欢迎咨询。",
    "Bulk accounts available now. Verified, aged 2-5 years, {PCT}% success rate, replacement within 24 hours. Minimum order {N} units.",
    "{PHONE_CN}（QQ微信同号）代查开房记录，{DATE} {TIME} 前有效",
    "QQ：{QQ_ZW} 🐧号 {QQ} ✈️ @{TG} 邮箱 {QQ}@qq.com",
    "上新时间 {DATE} {TIME}，首批 {N} 个，单价 ¥{N}，满 {N} 个以上 5 折。库存 {N} 个号，编号 {ORDER}",
]

func digits(_ count: Int, _ rng: inout SplitMix) -> String {
    String((0..<count).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
}

func fill(_ template: String, _ rng: inout SplitMix) -> String {
    let phone = "1\(Int.random(in: 3...9, using: &rng))" + digits(9, &rng)
    let chinese = Array("零一二三四五六七八九"), financial = Array("零壹贰叁肆伍陆柒捌玖")
    let spaced = "\(phone.prefix(3)) \(phone.dropFirst(3).prefix(4)) \(phone.suffix(4))"
    let qq = "\(Int.random(in: 1...9, using: &rng))" + digits(Int.random(in: 4...10, using: &rng), &rng)
    let letters = Array("abcdefghijklmnopqrstuvwxyz")
    let wx = String((0..<6).map { _ in letters.randomElement(using: &rng)! }) + "_" + digits(3, &rng)
    let replacements: [(String, String)] = [
        ("{PHONE_SPACED}", spaced),
        ("{PHONE_FIN}", String(phone.map { financial[Int(String($0))!] })),
        ("{PHONE_CN}", String(phone.map { chinese[Int(String($0))!] })),
        ("{PHONE}", phone),
        ("{QQ_ZW}", qq.map(String.init).joined(separator: "\u{200b}")),
        ("{QQ}", qq),
        ("{WX}", wx),
        ("{TG}", wx.replacingOccurrences(of: "-", with: "_")),
        ("{IDCARD}", "110105" + digits(12, &rng)),
        ("{ORDER}", digits(15, &rng)),
        ("{YEAR}", "20\(Int.random(in: 10...24, using: &rng))"),
        ("{DATE}", "2024年\(Int.random(in: 1...12, using: &rng))月\(Int.random(in: 1...28, using: &rng))日"),
        ("{TIME}", "\(Int.random(in: 10...23, using: &rng)):30"),
        ("{PCT}", "\(Int.random(in: 80...99, using: &rng))"),
        ("{N4}", digits(4, &rng)),
    ]
    var text = template
    for (key, value) in replacements { text = text.replacingOccurrences(of: key, with: value) }
    while let range = text.range(of: "{N}") {
        text.replaceSubrange(range, with: "\(Int.random(in: 1...999, using: &rng))")
    }
    return text
}

extension String {
    /// Foundation-free replace, so the benchmark links nothing but the extractor.
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Index>? {
        guard let first = target.first else { return nil }
        var index = startIndex
        while let found = self[index...].firstIndex(of: first) {
            if self[found...].hasPrefix(target) {
                return found..<self.index(found, offsetBy: target.count)
            }
            index = self.index(after: found)
        }
        return nil
    }
}

extension String {
    func range(of target: String) -> Range<Index>? { self[...].range(of: target) }
}

let megabytes = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 32 : 32
var rng = SplitMix(state: 2024)
var ads: [String] = []
var bytes = 0
while bytes < megabytes * 1_000_000 {
    let ad = fill(templates[ads.count % templates.count], &rng)
    bytes += ad.utf8.count
    ads.append(ad)
}
print("corpus: \(ads.count) ads, \(bytes) bytes (\(bytes / max(ads.count, 1)) bytes/ad)")

let extractor = ContactExtractor()
var seconds: [Double] = []
var found = 0
for run in 1...3 {
    found = 0
    let clock = ContinuousClock()
    let elapsed = clock.measure {
        for ad in ads { found &+= extractor.extract(ad).count }
    }
    let s = elapsed / .seconds(1)
    seconds.append(s)
    print("run \(run): \(s) s, \(Double(bytes) / 1e6 / s) MB/s, \(Double(ads.count) / s) ads/s")
}
let median = seconds.sorted()[1]
print("contacts found: \(found)")
print("median: \(Double(bytes) / 1e6 / median) MB/s, \(Int(Double(ads.count) / median)) ads/s")

// Adversarial shapes: a report's text is at most 64 KiB; each of these is one piece repeated to
// that size. A linear scan reads them at about the corpus's rate; a quadratic one took seconds.
let shapes = ["vx-", "wx-", "weixin-", "www.a1.", "t.me.", "vx-abcdef.", "TG @a", "a.", "1 ", "QQ 1", "微信 a", "@a.", "_a@", "1-a-", "1-a-@"]
for piece in shapes {
    let text = String(repeating: piece, count: 65_536 / piece.utf8.count)
    var times: [Double] = []
    for _ in 1...3 {
        let elapsed = ContinuousClock().measure { found &+= extractor.extract(text).count }
        times.append(elapsed / .seconds(1))
    }
    let median = times.sorted()[1]
    let shape = "\"\(piece)\" x \(65_536 / piece.utf8.count)"
    print("64 KiB of \(shape): \(Double(Int(median * 100_000)) / 100) ms, \(Int(Double(text.utf8.count) / 1e6 / median)) MB/s")
}
