import ContactExtraction
import Testing

@Suite("phone rule")
struct PhoneRuleTests {
    @Test("a plain Chinese mobile is read as +86 and its 11 digits")
    func plainMobile() {
        #expect(contacts(in: "电话13812345678") == ["phone:+8613812345678"])
    }

    @Test("a mobile after +86, 0086 or 86 is read the same", arguments: [
        "+86 138 1234 5678", "+86-138-1234-5678", "0086 13812345678", "86 13812345678", "8613812345678",
    ])
    func prefixedMobile(text: String) {
        #expect(contacts(in: text) == ["phone:+8613812345678"])
    }

    @Test("a phone written in financial digits is read")
    func financialDigits() {
        #expect(contacts(in: "壹叁捌壹贰叁肆伍陆柒捌") == ["phone:+8613812345678"])
        #expect(contacts(in: "壹叁捌壹貳參肆伍陸柒捌") == ["phone:+8613812345678"])
    }

    @Test("a phone written in Chinese, circled or full-width digits is read", arguments: [
        "一三八一二三四五六七八", "幺三八幺二三四五六七八", "①③⑧①②③④⑤⑥⑦⑧", "１３８１２３４５６７８", "138一二三四５６７８",
    ])
    func otherDigitForms(text: String) {
        #expect(contacts(in: text) == ["phone:+8613812345678"])
    }

    @Test("another number needs an explicit + or 00 and 8 to 15 digits")
    func international() {
        #expect(contacts(in: "+86 10 1234 5678") == ["phone:+861012345678"])
        #expect(contacts(in: "0044 20 7946 0958") == ["phone:+442079460958"])
        #expect(contacts(in: "4155550100").isEmpty)
        #expect(contacts(in: "+1234567").isEmpty)
        #expect(contacts(in: "+1234567890123456").isEmpty)
        #expect(contacts(in: "+0123456789").isEmpty)
    }

    @Test("a phone is never cut out of a longer run", arguments: [
        "138123456789", "13812345678 9", "110105199003071234", "1381234567890123",
    ])
    func longerRun(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("a mobile whose second digit is 0-2 is not a phone")
    func secondDigit() {
        #expect(contacts(in: "12812345678").isEmpty)
        #expect(contacts(in: "10012345678").isEmpty)
    }

    @Test("an @ that starts no e-mail address does not hide the phone before it; digits that end in an address are no phone")
    func atSign() {
        #expect(contacts(in: "电话：13812345678@") == ["phone:+8613812345678"])
        #expect(contacts(in: "电话13812345678@张先生") == ["phone:+8613812345678"])
        #expect(contacts(in: "138 1234 5678@163.com") == ["email:5678@163.com"])
    }

    @Test("a list of complete phones split by spaces or slashes yields each phone")
    func listOfPhones() {
        #expect(contacts(in: "13812345678 / 13987654321") == ["phone:+8613812345678", "phone:+8613987654321"])
    }

    @Test("a list is read whatever its length: sixteen numbers, six grouped ones, a thousand")
    func longLists() {
        let sixteen = (1...16).map { 13_900_000_000 + $0 }
        #expect(contacts(in: sixteen.map(String.init).joined(separator: " ")) == sixteen.map { "phone:+86\($0)" })
        let grouped = ["138 1234 5678", "139 8765 4321", "137 1111 2222", "136 1111 2222", "135 1111 2222", "134 1111 2222"]
        #expect(contacts(in: grouped.joined(separator: " / ")) == grouped.map { "phone:+86" + $0.filter(\.isNumber) }.sorted())
        let thousand = (1...1000).map { 13_900_000_000 + $0 }
        #expect(contacts(in: thousand.map(String.init).joined(separator: " ")).count == 1000)
        // The longest part any rule takes, 17 digits (`00` and 15), is still found in a list.
        #expect(contacts(in: "00-1234-5678-9012-345 13812345678") == ["phone:+123456789012345", "phone:+8613812345678"])
        // One part that no rule takes still leaves the whole list unread.
        #expect(contacts(in: (sixteen.map(String.init) + ["12345"]).joined(separator: " ")).isEmpty)
    }
}

@Suite("digits and separators")
struct SeparatorRuleTests {
    @Test("one to three separators between digits are dropped", arguments: [
        "138 1234 5678", "138-1234-5678", "138.1234.5678", "138_1234_5678", "138/1234/5678",
        "138·1234·5678", "138•1234•5678", "138*1234*5678", "138－1234．5678", "138　1234\u{a0}5678",
        "138 - 1234 - 5678", "138\u{200b}1234\u{200c}5678", "138\u{200d}1234\u{feff}5678",
    ])
    func separators(text: String) {
        #expect(contacts(in: text) == ["phone:+8613812345678"])
    }

    @Test("four separators end a number")
    func fourSeparators() {
        #expect(contacts(in: "138 -- 1234 -- 5678").isEmpty)
    }

    @Test("a line break ends a number")
    func lineBreak() {
        #expect(contacts(in: "138 1234\n5678").isEmpty)
        #expect(contacts(in: "138 1234\r\n5678").isEmpty)
    }

    @Test("a digit run touching an ASCII letter or underscore is not a phone", arguments: [
        "shop_13812345678", "abc13812345678", "13812345678abc", "13812345678_", "ａｂｃ13812345678",
    ])
    func glued(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("no phone is cut out of a run whose first digits touch a letter", arguments: [
        "abc1 13812345678", "Q1 13812345678", "QQ1 13812345678", "v2 13812345678", "x86-138-1234-5678", "No1 138 1234 5678",
    ])
    func gluedRunIsNotCut(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("a word ending in digits does not hide a phone set apart from it by a non-separator")
    func wordThenPhone() {
        #expect(contacts(in: "abc1，13812345678") == ["phone:+8613812345678"])
        #expect(contacts(in: "Top10 QQ 12345678") == ["qq:12345678"])
        // An address after such a word is still read (its digits are the address's).
        #expect(contacts(in: "abc1 12345678@qq.com") == ["qq:12345678", "email:12345678@qq.com"])
        #expect(contacts(in: "abc1 13812345678@163.com") == ["email:13812345678@163.com"])
    }

    @Test("a Chinese numeral that starts a word after a number is not part of it")
    func numeralWord() {
        #expect(contacts(in: "13812345678一手") == ["phone:+8613812345678"])
        #expect(contacts(in: "QQ：12345678 一手") == ["qq:12345678"])
    }
}
