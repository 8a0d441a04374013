import ContactExtraction
import Testing

@Suite("wechat rule")
struct WeChatRuleTests {
    @Test("every WeChat marker takes the ID after it", arguments: [
        "微信 abc_123x", "威信 abc_123x", "薇信 abc_123x", "徽信 abc_123x", "维信 abc_123x", "維信 abc_123x",
        "卫星 abc_123x", "衛星 abc_123x", "V信: Abc_123x", "VX abc_123x", "vx：abc_123x", "WX abc_123x",
        "weixin abc_123x", "WeChat abc_123x", "薇 abc_123x", "➕薇 abc_123x", "🌿 abc_123x", "➕V abc_123x",
        "+V abc_123x", "加V abc_123x", "V:abc_123x", "V：abc_123x", "WeChat ID: abc_123x", "微信號：abc_123x",
    ])
    func markers(text: String) {
        #expect(contacts(in: text) == ["wechat:abc_123x"])
    }

    @Test("an ID of letters only needs a colon, =, 号, 是 or 为 before it")
    func lettersOnly() {
        #expect(contacts(in: "微信号：zhangsan") == ["wechat:zhangsan"])
        #expect(contacts(in: "V: zhangsan") == ["wechat:zhangsan"])
        #expect(contacts(in: "微信是zhangsan") == ["wechat:zhangsan"])
        #expect(contacts(in: "WeChat accounts for rent").isEmpty)
        #expect(contacts(in: "加V zhangsan").isEmpty)
    }

    @Test("an ID has 6 to 20 characters and a longer run yields nothing")
    func length() {
        #expect(contacts(in: "微信 abc123") == ["wechat:abc123"])
        #expect(contacts(in: "微信 abc12").isEmpty)
        #expect(contacts(in: "微信 abcdefghij0123456789") == ["wechat:abcdefghij0123456789"])
        #expect(contacts(in: "微信 abcdefghij01234567890").isEmpty)
        #expect(contacts(in: "微信 1abc23456").isEmpty)
    }

    @Test("a marker glued to `id` and more ID characters is no marker: `id` is filler only before a break", arguments: [
        "vxid_abc123", "wxid123456", "weixinid123456", "WeChatid-abc123", "abc-wxid_abcd1234",
    ])
    func gluedID(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("a wxid_ token after punctuation that follows no letter or digit is read whole")
    func wxidAfterPunctuation() {
        #expect(contacts(in: "联系-wxid_abcd1234") == ["wechat:wxid_abcd1234"])
        #expect(contacts(in: "备注_wxid_abcd1234") == ["wechat:wxid_abcd1234"])
        #expect(contacts(in: "（--wxid_abcd1234）") == ["wechat:wxid_abcd1234"])
    }

    @Test("a marker's own word is no ID", arguments: ["微信号：weixin", "V: wechat", "vx：WeChat", "加V weixin"])
    func markerWordIsNoID(text: String) {
        #expect(contacts(in: text).isEmpty)
    }

    @Test("an @ or a dot that starts no e-mail address ends the ID; one that does leaves the address whole")
    func idBeforeAtOrDot() {
        #expect(contacts(in: "微信：abc_123x@张先生") == ["wechat:abc_123x"])
        #expect(contacts(in: "微信：abc_123x.QQ：12345678") == ["qq:12345678", "wechat:abc_123x"])
        #expect(contacts(in: "微信：abc_123x. 谢谢") == ["wechat:abc_123x"])
        #expect(contacts(in: "vx: abc.shop@example.com") == ["email:abc.shop@example.com"])
        #expect(contacts(in: "微信 abc123@163.com") == ["email:abc123@163.com"])
    }

    @Test("an emoji marker counts with its presentation selector (U+FE0F) too")
    func emojiSelector() {
        #expect(contacts(in: "🌿\u{FE0F} abc_123x") == ["wechat:abc_123x"])
        #expect(contacts(in: "➕\u{FE0F}V abc_123x") == ["wechat:abc_123x"])
        #expect(contacts(in: "🐧\u{FE0F} 12345678") == ["qq:12345678"])
        #expect(contacts(in: "✈\u{FE0F} @acct_shop") == ["telegram:acct_shop"])
    }

    @Test("a valid mobile after a WeChat marker is a phone instead")
    func mobile() {
        #expect(contacts(in: "微信：13812345678") == ["phone:+8613812345678"])
        #expect(contacts(in: "vx13812345678") == ["phone:+8613812345678"])
        #expect(contacts(in: "微信 12345678").isEmpty)
    }

    @Test("a wxid_ token is a WeChat ID with or without a marker")
    func wxid() {
        #expect(contacts(in: "wxid_abc1234") == ["wechat:wxid_abc1234"])
        #expect(contacts(in: "微信：wxid_Abcd1234efgh5678ijkl") == ["wechat:wxid_abcd1234efgh5678ijkl"])
        #expect(contacts(in: "wxid_abc").isEmpty)
    }

    @Test("a marker glued to a letter on the right yields nothing", arguments: ["vxabc123", "➕Vxun_3060"])
    func glued(text: String) {
        #expect(contacts(in: text).isEmpty)
    }
}

@Suite("same-number phrases")
struct SameNumberRuleTests {
    @Test("a number after a same-number phrase is read under each marker named")
    func after() {
        #expect(contacts(in: "QQ微信同号 13812345678") == ["phone:+8613812345678", "qq:13812345678"])
        #expect(contacts(in: "微信QQ同号：28739347") == ["qq:28739347"])
        #expect(contacts(in: "微信同号 13812345678") == ["phone:+8613812345678"])
    }

    @Test("without a number after it the phrase refers to the number right before it")
    func before() {
        #expect(contacts(in: "138 1234 5678（QQ同号）") == ["phone:+8613812345678", "qq:13812345678"])
        #expect(contacts(in: "28739347 QQ同号") == ["qq:28739347"])
        #expect(contacts(in: "QQ同号").isEmpty)
    }

    @Test("beside a list the phrase names the list's nearest number: its first after the phrase, its last before it")
    func besideAList() {
        #expect(contacts(in: "QQ同号 13812345678 / 13987654321")
                == ["phone:+8613812345678", "phone:+8613987654321", "qq:13812345678"])
        #expect(contacts(in: "13812345678 / 13987654321 QQ同号")
                == ["phone:+8613812345678", "phone:+8613987654321", "qq:13987654321"])
        #expect(contacts(in: "QQ同号 12345678 / 87654321") == ["qq:12345678"])
        #expect(contacts(in: "QQ：12345678 / 87654321（QQ同号）") == ["qq:12345678", "qq:87654321"])
    }

    @Test("the number after the phrase is read as after a marker: a time, a count or a word-like numeral after it is no part of it")
    func timeOrCountAfter() {
        #expect(contacts(in: "QQ同号 12345678 10:30") == ["qq:12345678"])
        #expect(contacts(in: "QQ同号 12345678 100个") == ["qq:12345678"])
        #expect(contacts(in: "QQ同号 13812345678一手") == ["phone:+8613812345678", "qq:13812345678"])
        // A mobile is preferred to a shorter QQ left by dropping a last group before a measure word.
        #expect(contacts(in: "QQ同号 138 1234 5678元") == ["phone:+8613812345678", "qq:13812345678"])
    }
}
