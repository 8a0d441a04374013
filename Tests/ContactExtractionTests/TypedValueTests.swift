import ContactExtraction
import Testing

@Suite("typed values")
struct TypedValueTests {
    @Test("a value typed in any form an ad may use gives the value extraction stores", arguments: [
        (ContactKind.wechat, "ＣＨＡＩＮ_aaaa1", "chain_aaaa1"), (.wechat, "Abc_123x", "abc_123x"), (.wechat, "zhangsan", "zhangsan"),
        (.wechat, "wxid_AbCd1234", "wxid_abcd1234"),
        (.telegram, "@Odd_Seller", "odd_seller"), (.telegram, "＠odd_seller", "odd_seller"), (.telegram, "Odd_Seller", "odd_seller"),
        (.telegram, "t.me/Odd_Seller", "odd_seller"), (.telegram, "https://t.me/Odd_Seller", "odd_seller"),
        (.site, "https://www.OddShop.cn/x", "oddshop.cn"), (.site, "oddshop.cn:8080", "oddshop.cn"),
        (.site, "www.oddshop.cn", "oddshop.cn"), (.site, "OddShop.cn", "oddshop.cn"),
        (.email, "Shop@Example.COM", "shop@example.com"),
        (.qq, "９０００００01", "90000001"), (.qq, "玖零零零零零零壹", "90000001"), (.qq, "9000 0001", "90000001"),
        (.qq, "12345678@qq.com", "12345678"),
        (.phone, "壹叁玖零零零零零零零壹", "+8613900000001"), (.phone, "008613900000001", "+8613900000001"),
        (.phone, "+86 139 0000 0001", "+8613900000001"),
    ])
    func canonical(kind: ContactKind, typed: String, stored: String) {
        #expect(ContactExtractor().canonical(kind, typed: typed) == stored)
    }

    @Test("a value no reading accepts as that kind has no canonical form", arguments: [
        (ContactKind.wechat, "ab"), (.wechat, "13812345678"), (.telegram, "ab"), (.site, "not a host"), (.qq, "0123"),
        (.email, "shop@"), (.phone, "12345"),
    ])
    func none(kind: ContactKind, typed: String) {
        #expect(ContactExtractor().canonical(kind, typed: typed) == nil)
    }
}
