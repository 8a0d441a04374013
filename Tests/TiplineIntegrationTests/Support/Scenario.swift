import ContactExtraction
import Foundation
import TiplineCore

/// A reproducible mix of reports: repeat sellers with disguised contacts, many reporters, a few
/// reports linking two sellers, a few with no contact. The expected grouping and levels are
/// computed here independently of the store (union-find over extracted contacts + the ladder).
struct Scenario {
    struct Report {
        var externalID: String
        var channel: String
        var reporter: String
        var text: String
        var reportedAt: Date
    }

    var reports: [Report]

    static let end = Date(timeIntervalSince1970: 1_795_132_800)  // 2026-11-20T00:00:00Z

    static func make(count: Int, sellers: Int, reporters: Int = 400, seed: UInt64, extra: (Int) -> String = { _ in "" }) -> Scenario {
        var rng = SplitMix64(seed: seed)
        func seller() -> Int { Int(pow(Double.random(in: 0..<1, using: &rng), 2.2) * Double(sellers)) }
        var reports: [Report] = []
        for index in 0..<count {
            let s = seller()
            var text: String
            let roll = Int.random(in: 0..<100, using: &rng)
            if roll < 4 {
                text = "群里有人卖号，没有留联系方式，第\(index)条"
            } else {
                text = render(s, style: Int.random(in: 0..<6, using: &rng))
                if roll >= 98 { text += "；另一家 " + render(seller(), style: 0) }
            }
            text += extra(index)
            let reporter = "u_\(Int(pow(Double.random(in: 0..<1, using: &rng), 1.5) * Double(reporters)))"
            let at = end.addingTimeInterval(-Double.random(in: 0..<(90 * 86_400), using: &rng).rounded())
            reports.append(Report(externalID: "s\(seed)-\(index)", channel: index % 3 == 0 ? "hotline" : "app",
                                  reporter: reporter, text: text, reportedAt: at))
        }
        return Scenario(reports: reports)
    }

    static func phone(_ s: Int) -> String { String(13_900_000_000 + s * 7_919) }
    static func qq(_ s: Int) -> String { String(2_000_000 + s * 37) }
    static func wechat(_ s: Int) -> String { "seller_\(s)x" }

    /// One ad of seller `s` in one of several disguises.
    static func render(_ s: Int, style: Int) -> String {
        let p = phone(s)
        switch style {
        case 0: return "出租微信 日租80元 V信: \(wechat(s))"
        case 1: return "空白号18元 100个以上5折 扣扣：\(qq(s))"
        case 2:
            let spaced = "\(p.prefix(3)) \(p.dropFirst(3).prefix(4)) \(p.suffix(4))"
            return "实名微信出售 电话 \(spaced)"
        case 3: return "高价回收微信号 联系 \(p) 或 vx：\(wechat(s))"
        case 4: return "批发QQ号 Q号 \(qq(s)) 微信号：\(wechat(s))"
        default: return "信息代查 开房记录 手机\(p)"
        }
    }

    func jsonl() throws -> String {
        try reports.map { report in
            let object: [String: Any] = [
                "external_id": report.externalID, "channel": report.channel, "reporter": report.reporter,
                "text": report.text, "reported_at": ISO8601DateFormatter().string(from: report.reportedAt),
            ]
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }.joined(separator: "\n") + "\n"
    }

    func inputs() -> [ReportInput] {
        reports.map {
            ReportInput(externalID: $0.externalID, channel: Channel(rawValue: $0.channel)!, reporter: $0.reporter,
                        text: $0.text, reportedAt: $0.reportedAt, platform: nil)
        }
    }

    /// Expected sellers (as sets of external ids) with their final level, and contact links.
    func expected(ladder: Ladder = .default) -> (groups: [Set<String>: Level], links: Int) {
        let extractor = ContactExtractor()
        var parent: [Contact: Contact] = [:]
        func find(_ c: Contact) -> Contact {
            var c = c
            while let p = parent[c], p != c { c = p }
            return c
        }
        var contactsOf: [[Contact]] = []
        var links = 0
        for report in reports {
            let contacts = extractor.extract(report.text)
            links += contacts.count
            contactsOf.append(contacts)
            for c in contacts where parent[c] == nil { parent[c] = c }
            for pair in zip(contacts, contacts.dropFirst()) {
                let a = find(pair.0), b = find(pair.1)
                if a != b { parent[a] = b }
            }
        }
        var members: [Contact: Set<String>] = [:]
        var events: [Contact: [(at: Date, reporter: String)]] = [:]
        for (report, contacts) in zip(reports, contactsOf) {
            guard let first = contacts.first else { continue }
            let root = find(first)
            members[root, default: []].insert(report.externalID)
            events[root, default: []].append((report.reportedAt, report.reporter))
        }
        var groups: [Set<String>: Level] = [:]
        for (root, ids) in members { groups[ids] = ladder.level(for: events[root]!) }
        return (groups, links)
    }
}

/// A small seeded generator so scenarios are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
