/// The filler read between a marker and its value.
struct Filler {
    /// Scalar index where the value starts.
    var end: Int
    /// Filler characters counted (`ID` counts as one, a `V:` colon as none).
    var count: Int
    /// Whether it holds `:` `=` `号` `是` `为` (or the marker was `V:`): a letters-only ID needs one.
    var announces: Bool
    /// Whether it holds `@` (allowed only after a Telegram marker).
    var hasAt: Bool
}

extension Scan {
    /// Reads at most four filler characters after a marker, all on one line.
    func filler(after m: Marker) -> Filler? {
        var f = Filler(end: m.end, count: 0, announces: m.endsInColon, hasAt: false)
        while true {
            let c = at(f.end)
            switch c {
            case Ch.space, Ch.tab, Ch.minus, Ch.码:
                f.end += 1
            case Ch.colon, Ch.equals, Ch.号, Ch.是, Ch.为:
                f.announces = true
                f.end += 1
            case Ch.at where m.kind == .telegram:
                f.hasAt = true
                f.end += 1
            case Ch.i where isIDFiller(at: f.end, after: m.kind):
                f.end += 2
            default:
                return f
            }
            f.count += 1
            if f.count > 4 { return nil }
        }
    }

    /// Whether the word `ID` at `k` is filler after a marker of `kind` rather than the start of
    /// the value itself (`idol_2023`): nothing that continues an ID follows it (a letter, `_`, `-`,
    /// or a digit, which after a QQ marker starts the number instead: `QQID12345678`).
    func isIDFiller(at k: Int, after kind: Marker.Kind) -> Bool {
        guard at(k) == Ch.i, at(k + 1) == Ch.d else { return false }
        let after = at(k + 2)
        if Scalar.isLetter(after) || after == Ch.underscore || after == Ch.minus { return false }
        return !Scalar.isASCIIDigit(after) || kind == .qq || kind == .qqGroup
    }

    /// Reads the value after marker `m`; returns where scanning resumes if the marker took one.
    ///
    /// A marker that takes nothing returns nil, and the text after it is scanned as usual.
    mutating func take(_ m: Marker) -> Int? {
        guard let f = filler(after: m) else { return nil }
        let k = f.end
        let c = at(k)
        switch m.kind {
        case .qqGroup:
            // A group number is no contact, but it must not be read as a phone either (nor take
            // an address after it).
            guard Scalar.digit(c) >= 0 else { return nil }
            let run = digitRun(at: k)
            guard let taken = addressTaking(run) else { return run.end }
            return taken.before == nil ? nil : taken.address
        case .qq:
            guard Scalar.digit(c) >= 0 else { return nil }
            guard let (run, resume, cut) = numberBeforeAddress(digitRun(at: k)) else { return nil }
            if gluedAfter(run) || startsEmailDomain(at: run.end) { return nil }
            if m.singleQ && f.count == 0 && run.hasSeparator { return nil }
            return read(run, as: .qq, plus: false, beforeAddress: cut) ? resume : nil
        case .wechat:
            return weChatValue(at: k, filler: f)
        case .telegram:
            guard f.hasAt else { return nil }
            return telegramName(at: k)
        }
    }

    /// Reads a WeChat value at `k`: a `wxid_` token, an ID, or a Chinese mobile (read as a phone).
    mutating func weChatValue(at k: Int, filler f: Filler) -> Int? {
        let c = at(k)
        let plus = c == Ch.plus && Scalar.digit(at(k + 1)) >= 0
        if Scalar.digit(c) >= 0 || plus {
            guard let (run, resume, cut) = numberBeforeAddress(digitRun(at: plus ? k + 1 : k)) else { return nil }
            if gluedAfter(run) { return nil }
            return read(run, as: .mobile, plus: plus, beforeAddress: cut) ? resume : nil
        }
        guard Scalar.isLetter(c) else { return nil }
        // A full `wxid_` token may exceed 20 characters; a short one is still read as an ID below.
        if let end = wxid(at: k), end > k + Self.wxidPrefix.count + 3 { return end }
        // Reading stops one character past the longest ID: a longer run yields nothing, and reading
        // it whole at every marker inside it (`vx-vx-vx-…`) would take time quadratic in its length.
        var j = k
        var lettersOnly = true
        while j - k <= 20, Scalar.isWeChatID(at(j)) {
            if !Scalar.isLetter(s[j]) { lettersOnly = false }
            j += 1
        }
        guard (6...20).contains(j - k) else { return nil }
        if let end = addressAfterValue(at: k, end: j) { return end }
        if lettersOnly && !f.announces { return nil }
        if Self.markerWords.contains(Self.ascii(s[k..<j])) { return nil }
        emit(.wechat, s[k..<j])
        return j
    }

    /// A marker's number: `run`, or the digits before an e-mail address that takes its end (the
    /// address is then read where scanning resumes, `resume`; the digits are a list, `cut`); nil
    /// when an address takes all of it (`微信：13812345678@163.com` is that address, not a phone)
    /// or what it leaves is no number of its own.
    mutating func numberBeforeAddress(_ run: DigitRun) -> (run: DigitRun, resume: Int, cut: Bool)? {
        guard let taken = addressTaking(run) else { return (run, run.end, false) }
        guard let before = taken.before else { return nil }
        return (before, taken.address, true)
    }

    /// Reads a Telegram username at `k` (after `@`): 5 to 32 of `[a-z0-9_]`, first a letter.
    mutating func telegramName(at k: Int) -> Int? {
        guard Scalar.isLetter(at(k)) else { return nil }
        var j = k
        while j - k <= 32, Scalar.isTelegramName(at(j)) { j += 1 }
        guard (5...32).contains(j - k) else { return nil }
        if let end = addressAfterValue(at: k, end: j) { return end }
        if Self.markerWords.contains(Self.ascii(s[k..<j])) { return nil }
        emit(.telegram, s[k..<j])
        return j
    }

    /// An e-mail address that a value ending at `end` turns out to begin (`abc123@qq.com`,
    /// `abc.shop@example.com` after a marker): it is read as that address, and its end returned.
    /// An `@` or `.` that starts no address only ends the value (`微信：abc_123x@张先生`).
    mutating func addressAfterValue(at k: Int, end: Int) -> Int? {
        let c = at(end)
        guard c == Ch.at || c == Ch.dot || c == Ch.plus || c == 0x25 else { return nil }
        return emailStarting(at: k)
    }

    /// The ASCII spellings of markers, which are never a value of their own (`微信号：weixin`,
    /// `TG: @telegram`, `t.me/telegram`): CONTACTS.md's "the markers themselves" must not match.
    static let markerWords: Set<String> = ["weixin", "wechat", "telegram"]
}
