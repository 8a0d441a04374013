import ContactExtraction
import PropertyBased
import Testing

/// Ways of writing each digit 0-9 that the contract treats as the same digit.
let digitForms: [[String]] = [
    ["0", "０", "〇", "零", "⓪"],
    ["1", "１", "一", "幺", "壹", "①"],
    ["2", "２", "二", "贰", "貳", "②"],
    ["3", "３", "三", "叁", "參", "③"],
    ["4", "４", "四", "肆", "④"],
    ["5", "５", "五", "伍", "⑤"],
    ["6", "６", "六", "陆", "陸", "⑥"],
    ["7", "７", "七", "柒", "⑦"],
    ["8", "８", "八", "捌", "⑧"],
    ["9", "９", "九", "玖", "⑨"],
]

/// Single separators allowed between two digits; gaps are built from one to three of them.
let separatorForms: [String] = [
    " ", "　", "\u{a0}", "-", "－", ".", "．", "_", "＿", "/", "／", "·", "•", "*", "＊",
    "\u{200b}", "\u{200c}", "\u{200d}", "\u{feff}",
]

/// Writes `digits` with the form and gap choices given (indices wrap around).
func disguise(_ digits: [Int], forms: [Int], gaps: [[Int]]) -> String {
    var text = ""
    for (index, digit) in digits.enumerated() {
        let choices = digitForms[digit]
        text += choices[forms[index % forms.count] % choices.count]
        if index < digits.count - 1 {
            for choice in gaps[index % gaps.count] { text += separatorForms[choice % separatorForms.count] }
        }
    }
    return text
}

/// Generators for one mobile's digits and for the way it is disguised.
let mobileTail = Gen.int(in: 0...9).array(of: 9)
let secondDigit = Gen.int(in: 3...9)
let formChoices = Gen.int(in: 0...5).array(of: 1...11)
let gapChoices = Gen.int(in: 0...18).array(of: 0...3).array(of: 1...10)

@Suite("invariants")
struct PropertyTests {
    @Test("separators or zero-width characters inside a phone don't change the result")
    func separatorsInPhone() async {
        await propertyCheck(count: 300, input: secondDigit, mobileTail, gapChoices) { second, tail, gaps in
            let digits = [1, second] + tail
            let gaps = gaps.map { $0.isEmpty ? [0] : $0 }
            let plain = "联系电话：" + digits.map(String.init).joined() + "，非诚勿扰"
            let disguised = "联系电话：" + disguise(digits, forms: [0], gaps: gaps) + "，非诚勿扰"
            #expect(contacts(in: disguised) == contacts(in: plain))
            #expect(contacts(in: plain) == ["phone:+86" + digits.map(String.init).joined()])
        }
    }

    @Test("separators or zero-width characters inside a QQ number don't change the result")
    func separatorsInQQ() async {
        let qqDigits = Gen.int(in: 0...9).array(of: 4...10)
        await propertyCheck(count: 300, input: Gen.int(in: 1...9), qqDigits, gapChoices) { first, rest, gaps in
            let digits = [first] + rest
            let gaps = gaps.map { $0.isEmpty ? [0] : $0 }
            let plain = "收号QQ：" + digits.map(String.init).joined() + "，秒回"
            let disguised = "收号QQ：" + disguise(digits, forms: [0], gaps: gaps) + "，秒回"
            #expect(contacts(in: disguised) == contacts(in: plain))
            #expect(contacts(in: plain) == ["qq:" + digits.map(String.init).joined()])
        }
    }

    @Test("swapping digits for equivalent forms doesn't change the result")
    func digitFormsAreEquivalent() async {
        await propertyCheck(count: 300, input: secondDigit, mobileTail, formChoices, gapChoices) { second, tail, forms, gaps in
            let digits = [1, second] + tail
            let plainPhone = "手机：" + disguise(digits, forms: [0], gaps: gaps) + "。"
            let phone = "手机：" + disguise(digits, forms: forms, gaps: gaps) + "。"
            #expect(contacts(in: phone) == contacts(in: plainPhone))
            #expect(contacts(in: plainPhone) == ["phone:+86" + digits.map(String.init).joined()])
            let qq = Array(digits.prefix(9))
            let plainQQ = "扣扣 " + disguise(qq, forms: [0], gaps: [[]]) + "，"
            let disguisedQQ = "扣扣 " + disguise(qq, forms: forms, gaps: [[]]) + "，"
            #expect(contacts(in: disguisedQQ) == contacts(in: plainQQ))
            #expect(contacts(in: plainQQ) == ["qq:" + qq.map(String.init).joined()])
        }
    }

    @Test("text with no markers and no phone-shaped digit run yields no phone, qq or wechat")
    func noMarkersNoContacts() async {
        // Words that are no marker: no q, t, v or w (which start ASCII markers), no marker ideographs.
        let words = [
            "出租", "账号", "价格", "元", "个", "起", "实名", "老号", "回收", "批发", "代查", "天", "月", "售后",
            "abc", "shop", "hello", "rent", "price", "ok", "abc_def", "acc-123", "%", "¥", "，", "。", "：",
            "！", "(", ")", "【", "】", "\n", "@", ".", "-", "_", "/", "一手", "三天",
        ]
        let token = Gen.int(in: 0...(words.count + 1)).array(of: 1...40)
        let numbers = Gen.int(in: 0...9).array(of: 1...10).array(of: 1...40)
        await propertyCheck(count: 300, input: token, numbers) { picks, runs in
            var text = ""
            for (index, pick) in picks.enumerated() {
                if pick >= words.count {
                    // A digit run of at most 10 digits, not starting 00, fenced off by a word.
                    var run = runs[index % runs.count]
                    if run.first == 0 { run[0] = 5 }
                    text += run.map(String.init).joined() + "个"
                } else {
                    text += words[pick]
                }
            }
            let kinds = ContactExtractor().extract(text).map(\.kind)
            #expect(!kinds.contains(.phone) && !kinds.contains(.qq) && !kinds.contains(.wechat), "\(text.debugDescription)")
        }
    }
}
