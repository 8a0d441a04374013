/// One extraction over one text: the folded scalars, a cursor, and what was found so far.
///
/// The main loop in `run()` looks at each scalar once and only dispatches when a scalar can
/// start something (a digit form, an ASCII word, a marker's first character, `同`). Everything
/// a handler consumes is skipped, which is how the digits of an e-mail address or of a QQ number
/// after a marker are never read a second time as a phone.
struct Scan {
    /// The folded scalars of the text (see `Fold`).
    let s: [UInt32]
    /// Contacts as found, possibly repeated; `result()` sorts and de-duplicates them.
    var found: [Contact] = []
    /// The last number read, for a `同号` phrase that refers back to it.
    var lastNumber: NumberReading?
    /// Words that start before this index were already checked for an `@` and have none.
    var noEmailBefore = 0
    /// The last run of e-mail local-part characters measured (`localRunEnd`): from where it was
    /// read to its end.
    var localRun = -1 ... -1

    init(_ text: String) {
        var folded: [UInt32] = []
        folded.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            folded.append(Fold.fold(scalar.value))
        }
        s = folded
    }

    /// The scalar at `k`, or 0 outside the text, so look-ahead and look-behind need no checks.
    @inline(__always)
    func at(_ k: Int) -> UInt32 {
        k >= 0 && k < s.count ? s[k] : 0
    }

    /// Whether the scalars from `k` spell `pattern`.
    func matches(_ pattern: [UInt32], at k: Int) -> Bool {
        guard k >= 0, k + pattern.count <= s.count else { return false }
        for (offset, c) in pattern.enumerated() where s[k + offset] != c { return false }
        return true
    }

    /// Records a contact whose value is made of ASCII scalars.
    mutating func emit(_ kind: ContactKind, _ scalars: ArraySlice<UInt32>) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(scalars.count)
        for c in scalars { bytes.append(UInt8(truncatingIfNeeded: c)) }
        found.append(Contact(kind: kind, value: String(decoding: bytes, as: UTF8.self)))
    }

    /// Records a contact whose value is already a string.
    mutating func emit(_ kind: ContactKind, _ value: String) {
        found.append(Contact(kind: kind, value: value))
    }

    /// The contacts found, sorted by kind and value, each once.
    func result() -> [Contact] {
        if found.count < 2 { return found }
        let sorted = found.sorted()
        var unique: [Contact] = [sorted[0]]
        for contact in sorted.dropFirst() where contact != unique[unique.count - 1] {
            unique.append(contact)
        }
        return unique
    }

    /// Scans the whole text once.
    mutating func run() {
        var i = 0
        let n = s.count
        while i < n {
            let c = s[i]
            if c < 0x80 {
                if Scalar.isAlnum(c) {
                    i = Scalar.isAlnum(at(i - 1)) ? wordEnd(from: i) : word(at: i)
                } else if c == Ch.plus, let m = marker(at: i), let end = take(m) {
                    i = end
                } else if c == Ch.underscore, let end = underscoreEmail(at: i) {
                    i = end
                } else {
                    i += 1
                }
                continue
            }
            if c >= 0x3000, Scalar.ideographDigit(c) >= 0 {
                i = bareNumber(at: i)
                continue
            }
            if c == Ch.同 { sameNumber(at: i) }
            if let m = marker(at: i), let end = take(m) {
                i = end
            } else {
                i += 1
            }
        }
    }

    /// An e-mail address whose local part starts with `_` (`_shop@example.com`), read whole: a word
    /// starts only at a letter or digit, which would have dropped the `_`.
    mutating func underscoreEmail(at i: Int) -> Int? {
        Scalar.isLocal(at(i - 1)) ? nil : emailStarting(at: i)
    }

    /// The end of an e-mail address whose local part starts at `i`, if one does. A local part that
    /// leads to no address is not tried again from inside it (`noEmailBefore`).
    mutating func emailStarting(at i: Int) -> Int? {
        guard i >= noEmailBefore, !startsInsideWord(i) else { return nil }
        let localEnd = localPartEnd(from: i)
        if at(localEnd) == Ch.at, let end = email(from: i, at: localEnd) { return end }
        noEmailBefore = localEnd
        return nil
    }

    /// Whether an address starting at `i` would be cut out of a word of another script
    /// (`müller@`, `Zoë_shop@`, `é.abc@`): a letter such as `ü` stands before it, directly or past
    /// the punctuation an address may hold. The whole address is not an ordinary one, and a piece
    /// of it would be a contact the text does not hold.
    func startsInsideWord(_ i: Int) -> Bool {
        var b = i
        while i - b < 64, Scalar.isLocal(at(b - 1)), !Scalar.isAlnum(at(b - 1)) { b -= 1 }
        if at(b - 1) < 0x80 { return false }  // the usual case: a space, punctuation, the text's start
        // Combining marks belong to the letter before them (`nai\u{308}ve`): that letter decides.
        var p = b - 1
        while b - p < 16, Scalar.isMark(at(p)) { p -= 1 }
        return Scalar.isCasedLetter(at(p)) || (p < b - 1 && Scalar.isAlnum(at(p)))
    }

    /// Handles an ASCII letter or digit that starts a word; returns where scanning resumes.
    ///
    /// Order matters: an e-mail address or a link claims its digits before any number rule
    /// sees them, and `wxid_` is a WeChat ID before `wx` could be taken as a marker.
    mutating func word(at i: Int) -> Int {
        if let end = emailStarting(at: i) { return end }
        if let end = link(at: i) { return end }
        if let end = wxid(at: i) { return end }
        if let m = marker(at: i), let end = take(m) { return end }
        if Scalar.isASCIIDigit(s[i]) { return bareNumber(at: i) }
        return wordEnd(from: i)
    }

    /// The end of the ASCII word from `k`. A word that ends in digits also takes the rest of their
    /// run (`abc1 13812345678`, `x86-138-1234-5678`): that run touches a letter before its first
    /// digit, so it is no phone, and no phone may be cut out of it either. A run that ends in an
    /// e-mail address is left alone, so the address is read (`abc1 12345678@qq.com`), and so is one
    /// whose end begins an address (`abc1 2024shop@163.com`).
    mutating func wordEnd(from k: Int) -> Int {
        let end = alnumEnd(from: k)
        guard end > k, Scalar.isASCIIDigit(s[end - 1]) else { return end }
        var first = end - 1
        while first > k, Scalar.isASCIIDigit(s[first - 1]) { first -= 1 }
        let run = digitRun(at: first)
        if let taken = addressTaking(run) { return max(end, taken.address) }
        return startsEmailDomain(at: run.end) ? end : max(end, run.end)
    }

    /// The end of the run of ASCII letters and digits starting at `k`.
    func alnumEnd(from k: Int) -> Int {
        var j = k
        while Scalar.isAlnum(at(j)) { j += 1 }
        return j
    }
}
