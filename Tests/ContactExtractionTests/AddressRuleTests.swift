import ContactExtraction
import Foundation
import Testing

@Suite("telegram, email and site rules")
struct AddressRuleTests {
    @Test("a t.me or telegram.me link names a Telegram user and is not a site", arguments: [
        "t.me/Acct_Shop", "https://t.me/acct_shop", "telegram.me/acct_shop", "https://www.t.me/acct_shop",
    ])
    func telegramLink(text: String) {
        #expect(contacts(in: text) == ["telegram:acct_shop"])
    }

    @Test("an @name right after a Telegram marker is a Telegram user", arguments: [
        "TG: @acct_shop", "飞机 @acct_shop", "纸飞机@acct_shop", "電報 @acct_shop", "✈️ @acct_shop", "telegram @Acct_Shop",
    ])
    func telegramMarker(text: String) {
        #expect(contacts(in: text) == ["telegram:acct_shop"])
    }

    @Test("a Telegram name needs @, a marker, and 5 to 32 characters", arguments: [
        "@acct_shop", "TG: acct_shop", "TG @abcd", "TG    @acct_shop",
    ])
    func telegramLimits(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("a marker's own word is no Telegram name", arguments: ["TG: @telegram", "t.me/telegram", "飞机 @Telegram"])
    func markerWordIsNoName(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("an @ that starts no e-mail address ends a Telegram name")
    func nameBeforeAt() {
        #expect(contacts(in: "TG: @acct_shop@") == ["telegram:acct_shop"])
        #expect(contacts(in: "TG: @acct_shop@张先生") == ["telegram:acct_shop"])
    }

    @Test("an e-mail address is lower-cased and its digits are not a phone")
    func email() {
        #expect(contacts(in: "Shop@Example.COM") == ["email:shop@example.com"])
        #expect(contacts(in: "18812345678@163.com") == ["email:18812345678@163.com"])
        #expect(contacts(in: "abc@def").isEmpty)
    }

    @Test("an address after a number keeps its digits, and the number before it is read on its own", arguments: [
        ("QQ：12345678 12345678@QQ.COM", ["email:12345678@qq.com", "qq:12345678"]),
        ("电话 13812345678 2024shop@163.com", ["email:2024shop@163.com", "phone:+8613812345678"]),
        ("13812345678 13812345678@163.com", ["email:13812345678@163.com", "phone:+8613812345678"]),
        ("价格 50 12345678@qq.com", ["email:12345678@qq.com", "qq:12345678"]),
        ("电话13812345678 88888@qq.com", ["email:88888@qq.com", "phone:+8613812345678", "qq:88888"]),
        ("联系：13812345678 / 13812345678@163.com", ["email:13812345678@163.com", "phone:+8613812345678"]),
        ("QQ群：12345678 12345678@qq.com", ["email:12345678@qq.com", "qq:12345678"]),
        ("abc1 2024shop@163.com", ["email:2024shop@163.com"]),
        // An address has no spaces: the digits before the last one are a number of their own (too short here).
        ("138 1234 5678@163.com", ["email:5678@163.com"]),
        ("138-1234-5678@163.com", ["email:138-1234-5678@163.com"]),
        ("13812345678 13987654321 2024shop@163.com", ["email:2024shop@163.com", "phone:+8613812345678", "phone:+8613987654321"]),
        ("QQ同号 12345678 12345678@qq.com", ["email:12345678@qq.com", "qq:12345678"]),
        // What an address leaves of one number is no number: each group before it must be one of its own.
        ("+86 138 1234 5678@163.com", ["email:5678@163.com"]),
        ("微信 +86 138 1234 5678@x.cn", ["email:5678@x.cn"]),
        ("QQ 138 1234 5678@x.cn", ["email:5678@x.cn"]),
        ("QQ同号 138 1234 5678@x.cn", ["email:5678@x.cn"]),
        ("一三八一二三四五六七八2024@x.cn", ["email:2024@x.cn"]),
    ])
    func addressAfterNumber(text: String, expected: [String]) {
        #expect(contacts(in: text).sorted() == expected.sorted())
    }

    @Test("the digits of an address after a WeChat marker or a 同号 phrase are the address's only", arguments: [
        ("微信：13812345678@163.com", ["email:13812345678@163.com"]),
        ("VX: 13812345678@qq.com", ["email:13812345678@qq.com", "qq:13812345678"]),
        ("QQ同号 13812345678@163.com", ["email:13812345678@163.com"]),
        ("微信同号 13812345678@163.com", ["email:13812345678@163.com"]),
    ])
    func addressAfterMarker(text: String, expected: [String]) {
        #expect(contacts(in: text).sorted() == expected.sorted())
    }

    @Test("an address is never cut out of a word of another script: the whole address or nothing", arguments: [
        "m\u{FC}ller@example.de", "na\u{EF}ve@example.com", "Zo\u{EB}_shop@example.com", "\u{E9}.abc@y.com",
        "jos\u{E9}13812345678@163.com", "caf\u{E9}12345678@qq.com", "nai\u{308}ve@example.com",
    ])
    func addressInsideWord(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("an address may follow a script without case directly: ideographs, Thai with its marks")
    func addressAfterIdeographs() {
        #expect(contacts(in: "联系张三zhang@163.com") == ["email:zhang@163.com"])
        #expect(contacts(in: "ติดต่อ ที่shop@x.cn") == ["email:shop@x.cn"])
    }

    @Test("an address whose local part starts with _ is read whole")
    func underscoreLocalPart() {
        #expect(contacts(in: "邮箱：_shop@example.com") == ["email:_shop@example.com"])
        #expect(contacts(in: "_Shop_1@Example.com") == ["email:_shop_1@example.com"])
        #expect(contacts(in: "shop@example.com _shop@example.com") == ["email:_shop@example.com", "email:shop@example.com"])
    }

    @Test("a www. host or t.me link inside a longer host is neither: the domain written is another one")
    func linkInsideHost() {
        #expect(contacts(in: "x-www.haoshop.cn").isEmpty)
        #expect(contacts(in: "a.www.haoshop.cn").isEmpty)
        #expect(contacts(in: "x.t.me/abcdef").isEmpty)
        #expect(contacts(in: "xn--www.haoshop.cn").isEmpty)
        #expect(contacts(in: "x--t.me/abcdef").isEmpty)
        // A dash after a word of another script is punctuation.
        #expect(contacts(in: "网址-www.haoshop.cn") == ["site:haoshop.cn"])
    }

    @Test("a site is the URL's host without www. or port")
    func site() {
        #expect(contacts(in: "https://www.HaoShop.cn/buy?id=3") == ["site:haoshop.cn"])
        #expect(contacts(in: "http://haoshop.cn:8080/x") == ["site:haoshop.cn"])
        #expect(contacts(in: "www.acct-market.com") == ["site:acct-market.com"])
        #expect(contacts(in: "haoshop.cn").isEmpty)
    }

    @Test("user information before a URL's host is skipped, and is no e-mail address")
    func userInfo() {
        #expect(contacts(in: "http://user@HaoShop.cn/") == ["site:haoshop.cn"])
        #expect(contacts(in: "https://user:pass@www.haoshop.cn:8080/x") == ["site:haoshop.cn"])
    }

    @Test("a link to a shared platform (marketplace, social network, shortener) is no seller's site")
    func sharedPlatforms() {
        #expect(contacts(in: "https://item.taobao.com/item.htm?id=13812345678 V信: abc_123x") == ["wechat:abc_123x"])
        #expect(contacts(in: "https://mp.weixin.qq.com/s/abc www.weibo.com/u/1 http://t.cn/A6x") .isEmpty)
        #expect(contacts(in: "https://taobao.com.haoshop.cn/") == ["site:taobao.com.haoshop.cn"])
        #expect(contacts(in: "https://mytaobao.com/") == ["site:mytaobao.com"])
    }

    @Test("a t.me link that names no user (an invitation, stickers, sharing) is no Telegram contact; t.me/s/NAME is NAME")
    func telegramServiceLinks() {
        #expect(contacts(in: "https://t.me/joinchat/AAAAAEkz1Q0abcdef").isEmpty)
        #expect(contacts(in: "t.me/addstickers/Cats_pack t.me/share/url?url=x").isEmpty)
        #expect(contacts(in: "https://t.me/s/acct_shop") == ["telegram:acct_shop"])
        #expect(contacts(in: "t.me/shop_acct") == ["telegram:shop_acct"])
    }

    @Test("a URL with an IP address is no site, and the digits in it are no contacts")
    func ipURL() {
        #expect(contacts(in: "http://1.2.3.4/item?id=13812345678").isEmpty)
        #expect(contacts(in: "https://10.0.0.1:8080/13812345678 QQ 12345678") == ["qq:12345678"])
    }

    @Test("contacts are unique, sorted by kind then value, and encode as kind and value")
    func output() throws {
        let found = ContactExtractor().extract("t.me/zzzzz 13812345678 qq12345，13812345678 a@b.cn")
        #expect(found.map(\.kind) == [.phone, .qq, .telegram, .email])
        #expect(found == found.sorted())
        let json = try JSONEncoder().encode(Contact(kind: .qq, value: "12345"))
        let decoded = try JSONDecoder().decode([String: String].self, from: json)
        #expect(decoded == ["kind": "qq", "value": "12345"])
    }
}
