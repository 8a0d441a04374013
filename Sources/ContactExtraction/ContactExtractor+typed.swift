extension ContactExtractor {
    /// The canonical value of one contact of `kind` as a person may type it when looking a seller
    /// up (`tipline offender wechat:ＡＢＣ_123x`, `telegram:t.me/Acct_Shop`, `site:www.HaoShop.cn:8080`),
    /// read the way an ad is read: the text alone, then after the kind's marker (or, for a site,
    /// after `http://`). Nil when no reading yields a contact of that kind.
    public func canonical(_ kind: ContactKind, typed: String) -> String? {
        let readings: [String] = switch kind {
        case .phone, .email: [typed]
        case .qq: [typed, "QQ " + typed]
        case .wechat: [typed, "微信号：" + typed]
        case .telegram: [typed, "TG " + typed, "TG @" + typed]
        case .site: [typed, "http://" + typed]
        }
        for text in readings {
            if let contact = extract(text).first(where: { $0.kind == kind }) { return contact.value }
        }
        return nil
    }
}
