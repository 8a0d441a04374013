import ContactExtraction
import Testing

@Suite("qq rule")
struct QQRuleTests {
    @Test("every QQ marker takes the number after it", arguments: [
        "QQ 12345678", "qq12345678", "Q12345678", "Q 1234 5678", "Q号12345678", "扣扣：12345678",
        "抠抠 12345678", "蔻蔻12345678", "企鹅 12345678", "企鵝 12345678", "🐧 12345678", "球球 12345678",
        "秋秋 12345678", "ＱＱ：１２３４５６７８", "QQ号码：12345678", "QQ ID: 12345678",
    ])
    func markers(text: String) {
        #expect(contacts(in: text) == ["qq:12345678"])
    }

    @Test("a QQ number has 5 to 11 digits and does not start with 0")
    func length() {
        #expect(contacts(in: "QQ 12345") == ["qq:12345"])
        #expect(contacts(in: "QQ 12345678901") == ["qq:12345678901"])
        #expect(contacts(in: "QQ 1234").isEmpty)
        #expect(contacts(in: "QQ 123456789012").isEmpty)
        #expect(contacts(in: "QQ 012345678").isEmpty)
    }

    @Test("a phone-shaped number after a QQ marker is only a qq")
    func phoneShaped() {
        #expect(contacts(in: "QQ：13812345678") == ["qq:13812345678"])
    }

    @Test("QQ group numbers are no contact of any kind", arguments: [
        "QQ群：123456789", "Q群 12345678", "群号：12345678", "QQ群号 13812345678", "QQ羣 12345678",
    ])
    func groups(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("a date or time after a QQ number is no second QQ: the run is one number, too long for any rule", arguments: [
        "QQ:5201314 2023.10.01更新", "QQ：123456 2023 10 01", "QQ 12345678 2023-10-01", "QQ 12345678 2023/10/01",
    ])
    func dateAfterQQ(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("a time or a count set apart after a number is not part of it", arguments: [
        ("QQ：12345678 10:30", "qq:12345678"), ("QQ 12345678 100个", "qq:12345678"), ("QQ 1234 5678 50元", "qq:12345678"),
        ("QQ 12345678 10点", "qq:12345678"), ("138 1234 5678 10:30", "phone:+8613812345678"),
    ])
    func timeOrCountAfter(text: String, expected: String) {
        #expect(contacts(in: text) == [expected])
    }

    @Test("a word-like numeral lead and a dropped count that leave nothing between them yield nothing (this crashed)", arguments: [
        "大一 二3456789个", "第一 二3-4567-8901个", "内一/二34567890元", "QQ 大一 二3456789个",
    ])
    func leadAndCountMeet(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("with a word-like lead and a count after a gap, the rest is still read")
    func leadAndCountAround() {
        #expect(contacts(in: "大一 13812345678个") == ["phone:+8613812345678"])
    }

    @Test("a list of QQ numbers each written without separators is still read")
    func listOfQQs() {
        #expect(contacts(in: "QQ：12345678 / 87654321") == ["qq:12345678", "qq:87654321"])
        #expect(contacts(in: "QQ 1234 5678 / 87654321") == ["qq:12345678", "qq:87654321"])
        #expect(contacts(in: "QQ 12345 138-1234-5678") == ["phone:+8613812345678", "qq:12345"])
    }

    @Test("an @ that starts no e-mail address does not hide the number before it")
    func loneAtSign() {
        #expect(contacts(in: "扣扣12345678@") == ["qq:12345678"])
        #expect(contacts(in: "QQ 12345678@张先生") == ["qq:12345678"])
    }

    @Test("a qq.com address with a digit local part is also a qq")
    func qqMail() {
        #expect(contacts(in: "12345678@qq.com") == ["qq:12345678", "email:12345678@qq.com"])
        #expect(contacts(in: "abc@qq.com") == ["email:abc@qq.com"])
    }

    @Test("a marker glued to a word on the left or a letter on the right is no marker", arguments: [
        "FAQ 12345", "abcqq 12345678", "qqabc 12345678", "8QQ 12345678",
    ])
    func gluedMarker(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("a number glued to Q counts only without separators")
    func singleQ() {
        #expect(contacts(in: "2026年Q1 2024").isEmpty)
        #expect(contacts(in: "Q1 2345678").isEmpty)
    }

    @Test("more than four filler characters or a line break cut a marker off", arguments: [
        "QQ 号码 是 12345678", "QQ：：：：：12345678", "QQ\n12345678", "QQ\u{200b}12345678",
    ])
    func fillerLimit(text: String) {
        #expect(contacts(in: text).isEmpty)
    }
}
