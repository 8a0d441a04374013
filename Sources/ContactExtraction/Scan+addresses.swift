extension Scan {
    static let http: [UInt32] = Array("http://".unicodeScalars.map(\.value))
    static let https: [UInt32] = Array("https://".unicodeScalars.map(\.value))
    static let www: [UInt32] = Array("www.".unicodeScalars.map(\.value))
    static let tMe: [UInt32] = Array("t.me".unicodeScalars.map(\.value))
    static let telegramMe: [UInt32] = Array("telegram.me".unicodeScalars.map(\.value))
    static let wxidPrefix: [UInt32] = Array("wxid_".unicodeScalars.map(\.value))
    static let qqCom: [UInt32] = Array("qq.com".unicodeScalars.map(\.value))

    /// The end of the run of e-mail local-part characters starting at `k`.
    func localPartEnd(from k: Int) -> Int {
        var j = k
        while Scalar.isLocal(at(j)) { j += 1 }
        return j
    }

    /// The longest host name DNS allows, in characters.
    static let maxHost = 253

    /// The end of the host starting at `k`, without trailing dots or hyphens; `k` itself (no host)
    /// when the run of host characters is longer than a host name may be. Reading stops there, so
    /// that a long run (`www.a1.www.a1.…`, `t.me.t.me.…`) costs each link tried inside it a bounded
    /// look, not one as long as the run.
    func hostEnd(from k: Int) -> Int {
        var j = k
        while Scalar.isHost(at(j)) {
            j += 1
            if j - k > Self.maxHost { return k }
        }
        while j > k, at(j - 1) == Ch.dot || at(j - 1) == Ch.minus { j -= 1 }
        return j
    }

    /// Whether `s[from..<to]` is a host name: dot-separated labels, the last of 2+ letters.
    func isHostName(_ from: Int, _ to: Int) -> Bool {
        var labels = 0
        var labelStart = from
        for k in from...to {
            if k == to || s[k] == Ch.dot {
                guard k > labelStart, s[labelStart] != Ch.minus, s[k - 1] != Ch.minus else { return false }
                labels += 1
                if k == to {
                    guard k - labelStart >= 2 else { return false }
                    for j in labelStart..<k where !Scalar.isLetter(s[j]) { return false }
                }
                labelStart = k + 1
            }
        }
        return labels >= 2
    }

    /// Whether the text before `i` ends a host (`x-`, `a.`, `xn--`): a letter or digit, then `-` or
    /// `.` (up to a few of them) right before `i`.
    func endsHost(before i: Int) -> Bool {
        var b = i
        while i - b < 4, at(b - 1) == Ch.dot || at(b - 1) == Ch.minus { b -= 1 }
        return b < i && Scalar.isAlnum(at(b - 1))
    }

    /// Whether `k` holds an `@` followed by an e-mail domain: digits right before it belong to an
    /// address (`138 1234 5678@163.com`), while a lone `@` (`13812345678@张先生`) takes nothing.
    func startsEmailDomain(at k: Int) -> Bool {
        guard at(k) == Ch.at else { return false }
        let end = hostEnd(from: k + 1)
        return end > k + 1 && isHostName(k + 1, end)
    }

    /// Reads an e-mail address whose local part is `s[from..<atSign]`; returns its end.
    mutating func email(from: Int, at atSign: Int) -> Int? {
        guard atSign > from, s[atSign - 1] != Ch.dot else { return nil }
        let domainEnd = hostEnd(from: atSign + 1)
        guard domainEnd > atSign + 1, isHostName(atSign + 1, domainEnd) else { return nil }
        emit(.email, s[from..<domainEnd])
        // The digit local part of a qq.com address is also that QQ number.
        if domainEnd - atSign - 1 == Self.qqCom.count, matches(Self.qqCom, at: atSign + 1) {
            var digits: [UInt8] = []
            for c in s[from..<atSign] {
                guard Scalar.isASCIIDigit(c) else { return domainEnd }
                digits.append(UInt8(c - 0x30))
            }
            if let value = Self.qq(digits[...]) { emit(.qq, value) }
        }
        return domainEnd
    }

    /// Reads a link at `i`: `http(s)://`, a bare `www.` host, or a `t.me/` Telegram link.
    mutating func link(at i: Int) -> Int? {
        let c = s[i]
        guard c == 0x68 || c == 0x77 || c == 0x74 else { return nil }  // h w t
        var hostStart = i
        if matches(Self.https, at: i) {
            hostStart = i + Self.https.count
        } else if matches(Self.http, at: i) {
            hostStart = i + Self.http.count
        } else if !matches(Self.www, at: i) && !matches(Self.tMe, at: i) && !matches(Self.telegramMe, at: i) {
            return nil
        } else if endsHost(before: i) {
            // Inside a longer host (`x-www.haoshop.cn`, `a.www.haoshop.cn`): not a bare `www.` host
            // or a `t.me` link, and `haoshop.cn` would be another domain than the one written.
            // (`网址-www.haoshop.cn`: the dash is punctuation.)
            return nil
        }
        if hostStart > i {
            // User information before the host (`http://user:pass@shop.cn/`) is skipped.
            var j = hostStart
            while j - hostStart < 64, Scalar.isLocal(at(j)) || at(j) == Ch.colon { j += 1 }
            if at(j) == Ch.at, j > hostStart { hostStart = j + 1 }
        }
        let hostEnd = hostEnd(from: hostStart)
        guard hostEnd > hostStart else { return nil }
        guard isHostName(hostStart, hostEnd) else {
            // `http://1.2.3.4/item?id=13812345678`: no site, but the digits of its address, port,
            // path and query are the URL's, not contacts.
            return hostStart == i ? nil : urlTailEnd(from: hostEnd)
        }
        var host = hostStart
        if matches(Self.www, at: host) { host += Self.www.count }
        let bare = hostStart == i
        if isTelegramHost(host, hostEnd) {
            // A Telegram link names a user, and is not a site.
            guard at(hostEnd) == Ch.slash else { return nil }
            var j = hostEnd + 1
            // `t.me/s/NAME` is the public preview of NAME's channel.
            if at(j) == 0x73, at(j + 1) == Ch.slash { j += 2 }
            let nameStart = j
            if Scalar.isLetter(at(j)) {
                while Scalar.isTelegramName(at(j)) { j += 1 }
                let name = Self.ascii(s[nameStart..<j])
                if (5...32).contains(j - nameStart), !Self.telegramServicePaths.contains(name), !Self.markerWords.contains(name) {
                    emit(.telegram, s[nameStart..<j])
                }
            }
            return urlTailEnd(from: j)
        }
        // Without a scheme only a `www.` host counts, and it needs a name after `www.`.
        if bare && (host == hostStart || !isHostName(host, hostEnd)) { return nil }
        guard isHostName(host, hostEnd) else { return nil }
        if !Self.isSharedHost(Self.ascii(s[host..<hostEnd])) { emit(.site, s[host..<hostEnd]) }
        return urlTailEnd(from: hostEnd)
    }

    /// Paths of `t.me` links that name no user: invitations (`joinchat/HASH`), sticker and emoji
    /// sets, themes, folders, sharing, proxies, log-in and service pages. Two unrelated invitation
    /// links must not make one seller `joinchat`.
    static let telegramServicePaths: Set<String> = [
        "joinchat", "addstickers", "addemoji", "addtheme", "addlist", "setlanguage", "share", "proxy", "socks",
        "login", "confirmphone", "contact", "boost", "invoice", "giftcode",
    ]

    /// Platforms that many unrelated sellers link to (marketplaces, social networks, link
    /// shorteners): a link to one of them (or a subdomain, `item.taobao.com`) names the platform,
    /// not the seller, so it is no `site`. Otherwise every seller with a Taobao listing would merge.
    static let sharedHosts: Set<String> = [
        "taobao.com", "tmall.com", "jd.com", "1688.com", "pinduoduo.com", "yangkeduo.com", "goofish.com", "xianyu.com",
        "alipay.com", "qq.com", "wechat.com", "weibo.com", "weibo.cn", "douyin.com", "kuaishou.com", "bilibili.com",
        "b23.tv", "xiaohongshu.com", "xhslink.com", "zhihu.com", "baidu.com", "douban.com", "t.cn", "url.cn", "dwz.cn",
        "github.com", "google.com", "youtube.com", "youtu.be", "facebook.com", "twitter.com", "x.com", "instagram.com",
        "tiktok.com", "telegram.org", "t.co", "bit.ly",
    ]

    /// Whether `host` (lower-cased, without `www.`) is one of `sharedHosts` or under one.
    static func isSharedHost(_ host: String) -> Bool {
        var rest = host[...]
        while true {
            if sharedHosts.contains(String(rest)) { return true }
            guard let dot = rest.firstIndex(of: ".") else { return false }
            rest = rest[rest.index(after: dot)...]
        }
    }

    /// ASCII scalars as a string.
    static func ascii(_ scalars: ArraySlice<UInt32>) -> String {
        String(decoding: scalars.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
    }

    /// Whether `s[from..<to]` is `t.me` or `telegram.me`.
    func isTelegramHost(_ from: Int, _ to: Int) -> Bool {
        (to - from == Self.tMe.count && matches(Self.tMe, at: from))
            || (to - from == Self.telegramMe.count && matches(Self.telegramMe, at: from))
    }

    /// The end of a URL's port, path, query and fragment after its host, so that digits in
    /// them (`/item/13812345678`) are never read as contacts.
    func urlTailEnd(from k: Int) -> Int {
        let c = at(k)
        guard c == Ch.colon || c == Ch.slash || c == 0x3F || c == 0x23 else { return k }
        if c == Ch.colon && !Scalar.isASCIIDigit(at(k + 1)) { return k }
        var j = k + 1
        while Scalar.isURLTail(at(j)) { j += 1 }
        return j
    }

    /// Reads a `wxid_` token at `k`: a WeChat ID with or without a marker.
    mutating func wxid(at k: Int) -> Int? {
        guard s[k] == 0x77, matches(Self.wxidPrefix, at: k) else { return nil }
        // Inside a longer token (`abc-wxid_…`, `abc_wxid_…`) it is no token of its own; after
        // punctuation that follows no letter or digit (`联系-wxid_…`) it is.
        var before = k - 1
        while at(before) == Ch.underscore || at(before) == Ch.minus { before -= 1 }
        guard before == k - 1 || !Scalar.isAlnum(at(before)) else { return nil }
        var j = k + Self.wxidPrefix.count
        while Scalar.isWeChatID(at(j)) { j += 1 }
        if (4...20).contains(j - k - Self.wxidPrefix.count) { emit(.wechat, s[k..<j]) }
        return j
    }
}
