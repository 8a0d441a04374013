/// A maximal run of digit forms with at most three separators between any two digits.
struct DigitRun {
    /// Scalar index of the first digit.
    var start: Int
    /// Scalar index just after the last digit.
    var end: Int
    /// The digit values, 0-9.
    var digits: [UInt8] = []
    /// Scalar index of each digit, so a trimmed reading knows where it ends.
    var positions: [Int] = []
    /// Digit counts at which a space or `/` separated two groups: where a run may be split.
    var gaps: [Int] = []
    /// Whether any separator stood between two digits.
    var hasSeparator = false
}

extension DigitRun {
    /// The first `count` digits of the run, as a run of their own.
    func prefix(_ count: Int) -> DigitRun {
        var run = DigitRun(start: start, end: positions[count - 1] + 1)
        run.digits = Array(digits.prefix(count))
        run.positions = Array(positions.prefix(count))
        run.gaps = gaps.filter { $0 < count }
        run.hasSeparator = run.positions[count - 1] - start != count - 1
        return run
    }
}

/// The digits a number was finally read as, kept for a `同号` phrase that refers back to it.
struct NumberReading {
    /// Scalar index just after the last digit read.
    var end: Int
    /// The digit values.
    var digits: ArraySlice<UInt8>
    /// Whether a `+` stood right before the first digit.
    var plus: Bool
}

extension Scan {
    /// Reads the digit run starting at `start`, which must be a digit form.
    func digitRun(at start: Int) -> DigitRun {
        var run = DigitRun(start: start, end: start)
        var k = start
        while true {
            let d = Scalar.digit(s[k])
            run.digits.append(UInt8(d))
            run.positions.append(k)
            k += 1
            run.end = k
            // Look past up to three separators for another digit of the same number.
            var j = k
            var wide = false
            while j - k < 4, j < s.count, Scalar.isSeparator(s[j]) {
                if Scalar.isWideSeparator(s[j]) { wide = true }
                j += 1
            }
            guard j - k <= 3, j < s.count, Scalar.digit(s[j]) >= 0 else { break }
            if j > k {
                run.hasSeparator = true
                if wide { run.gaps.append(run.digits.count) }
            }
            k = j
        }
        return run
    }

    /// Whether the run touches an ASCII letter or `_` right after its last digit.
    func gluedAfter(_ run: DigitRun) -> Bool {
        let c = at(run.end)
        return Scalar.isLetter(c) || c == Ch.underscore
    }

    /// Whether the run touches an ASCII letter or `_` right before its first digit.
    func gluedBefore(_ run: DigitRun) -> Bool {
        let c = at(run.start - 1)
        return Scalar.isLetter(c) || c == Ch.underscore
    }

    /// Where an e-mail address that takes the end of `run` starts, and the digits before it, if
    /// any: the digits of an address are read only as that address, and the number ends before it
    /// (`13812345678 2024shop@163.com`, `QQ：12345678 12345678@qq.com`, `138 1234 5678@163.com`:
    /// the address is `5678@163.com`, as an address has no spaces). Nil when no address takes any
    /// of the run, or when one would start before it (the word there reads it, or it starts inside
    /// a word: `josé13812345678@163.com` is no address of ours).
    ///
    /// Digits before the address count only when a space or `/` parts them from it, and are then
    /// read as a list (`readList`): each group must be a number of its own. Otherwise they are the
    /// rest of one number the address cut (`+86 138 1234 5678@163.com`, `一三八…八2024@x.cn`), and
    /// no number: a piece of one would be a contact the text does not hold.
    mutating func addressTaking(_ run: DigitRun) -> (before: DigitRun?, address: Int)? {
        // Most runs (prices, dates, counts) have no `@` after them: settled in a look.
        guard at(localRunEnd(from: run.end)) == Ch.at else { return nil }
        var k = run.end
        while k > run.start, Scalar.isLocal(at(k - 1)) { k -= 1 }
        guard !Scalar.isLocal(at(k - 1)), !startsInsideWord(k) else { return nil }
        // A `-`, `+`, `.` or `%` before its first letter or digit is punctuation.
        while k < run.end, !Scalar.isAlnum(s[k]), s[k] != Ch.underscore { k += 1 }
        guard k < run.end else { return nil }
        let localEnd = localRunEnd(from: k)
        guard at(localEnd - 1) != Ch.dot, startsEmailDomain(at: localEnd) else { return nil }
        let taken = run.positions.firstIndex { $0 >= k } ?? run.digits.count
        return (taken > 0 && run.gaps.contains(taken) ? run.prefix(taken) : nil, k)
    }

    /// Reads the digits before an address (`addressTaking`) as a list split at its spaces and `/`:
    /// every group a number of its own under `reading` (the first as the marker says, as in
    /// `split`), or nothing.
    mutating func readList(_ run: DigitRun, as reading: Reading, plus: Bool) -> Bool {
        let cuts = [0] + run.gaps + [run.digits.count]
        var values: [(ContactKind, String)] = []
        for j in 1..<cuts.count {
            guard let value = partValue(run, from: cuts[j - 1], to: cuts[j], as: reading, plus: plus) else { return false }
            values.append(value)
        }
        for (kind, value) in values { emit(kind, value) }
        lastNumber = NumberReading(end: run.end, digits: run.digits[cuts[cuts.count - 2]...], plus: plus && cuts.count == 2)
        return true
    }

    /// `read`, or `readList` for the digits an address left before it (`addressTaking`).
    mutating func read(_ run: DigitRun, as reading: Reading, plus: Bool, beforeAddress: Bool) -> Bool {
        beforeAddress ? readList(run, as: reading, plus: plus) : read(run, as: reading, plus: plus)
    }

    /// `localPartEnd(from: k)`, remembered for the run of local-part characters it ends: every
    /// number in one such run (`1-a-1-a-…`) asks for the same end, which is then read once, not
    /// once per number.
    mutating func localRunEnd(from k: Int) -> Int {
        if localRun.lowerBound <= k, k <= localRun.upperBound { return localRun.upperBound }
        let end = localPartEnd(from: k)
        localRun = k...end
        return end
    }

    /// Reads a number that no marker claimed: it can only be a phone.
    mutating func bareNumber(at start: Int) -> Int {
        var run = digitRun(at: start)
        var resume = run.end
        var cut = false
        if let taken = addressTaking(run) {
            // The address is read where scanning resumes; an address taking the whole run is
            // the word's, which tried it already.
            guard let before = taken.before else { return taken.address > run.start ? taken.address : run.end }
            run = before
            resume = taken.address
            cut = true
        }
        if gluedBefore(run) || gluedAfter(run) || startsEmailDomain(at: run.end) { return resume }
        let plus = at(start - 1) == Ch.plus
        _ = read(run, as: .phone, plus: plus, beforeAddress: cut)
        return resume
    }

    /// What a number is read as, which depends on the marker before it.
    enum Reading {
        /// No marker, or a `同号` phrase: a Chinese mobile, or an international number after `+`/`00`.
        case phone
        /// After a QQ marker: a QQ number, even when phone-shaped.
        case qq
        /// After a WeChat marker: only a Chinese mobile, read as a phone.
        case mobile
    }

    /// Emits the contact the run stands for under `reading`; returns whether it stood for one.
    ///
    /// A Chinese numeral at either edge of a mixed run is often a word ("一手", "大陸"), so a
    /// reading without it is preferred when valid; a run that is invalid as a whole may still be
    /// a list of numbers split at spaces or `/` ("138… / 139…"), but only when every part is valid.
    mutating func read(_ run: DigitRun, as reading: Reading, plus: Bool) -> Bool {
        let count = run.digits.count
        // Most runs in an ad are prices, dates and counts: too short to be anything.
        guard count >= (reading == .qq ? 5 : 8) else {
            lastNumber = NumberReading(end: run.end, digits: run.digits[...], plus: plus)
            return false
        }
        for range in candidateRanges(run) {
            let digits = run.digits[range]
            let usesPlus = plus && range.lowerBound == 0
            if let value = Self.value(of: digits, as: reading, plus: usesPlus) {
                emit(reading == .qq ? .qq : .phone, value)
                lastNumber = NumberReading(end: run.positions[range.upperBound - 1] + 1, digits: digits, plus: usesPlus)
                return true
            }
        }
        lastNumber = NumberReading(end: run.end, digits: run.digits[...], plus: plus)
        return split(run, as: reading, plus: plus)
    }

    /// The parts of `run`'s digits to read it as, in order: without word-like numerals at its
    /// edges and without a last group that is a time or a count first, the whole run last.
    func candidateRanges(_ run: DigitRun) -> [Range<Int>] {
        let count = run.digits.count
        let lead = wordDigits(run, leading: true)
        var tail = wordDigits(run, leading: false)
        // A last group set apart by a space and followed by a time's colon or a measure word is a
        // time or a count (`QQ：12345678 10:30`, `QQ 12345678 100个`), not the number's end.
        if tail == 0, let lastGap = run.gaps.last, endsInTimeOrCount(run) { tail = count - lastGap }
        var ranges: [Range<Int>] = []
        for range in [min(lead, count - tail)..<(count - tail), 0..<(count - tail), lead..<count] {
            // A word-like lead and a dropped last group may leave nothing between them.
            guard range.lowerBound < range.upperBound, range != 0..<count, !ranges.contains(range) else { continue }
            ranges.append(range)
        }
        return ranges + [0..<count]
    }

    /// Whether what follows the run makes its last group a time or a count: `:` and a digit
    /// (`10:30`), a measure word (`100个`, `50元`), `%` or `点` (`10点`).
    func endsInTimeOrCount(_ run: DigitRun) -> Bool {
        let c = at(run.end)
        if c == Ch.colon || c == 0xFF1A { return Scalar.digit(at(run.end + 1)) >= 0 }
        return Self.wordAfterNumeral.contains(c) || c == 0x25 || c == 0x70B9
    }

    /// Ideographs that, right after a Chinese numeral, make it a word: measure words and the
    /// like (`一手`, `一天`, `三个`, `五折`).
    static let wordAfterNumeral: Set<UInt32> = Set("手天个次对年月日元块折条位张件套周份万千百起批".unicodeScalars.map(\.value))
    /// Ideographs that, right before a Chinese numeral, make it a word (`大陸`, `第一`, `内陆`).
    static let wordBeforeNumeral: Set<UInt32> = Set("大第内".unicodeScalars.map(\.value))

    /// How many Chinese numerals at one edge of a mixed run look like part of a word.
    ///
    /// That is one or two ideographic digits with an ASCII digit on the inside and, outside,
    /// an ideograph that forms a word with them. Kept narrow on purpose: a disguised number may
    /// end in a numeral followed by text (`QQ 1234567八秒回` keeps its `八`).
    func wordDigits(_ run: DigitRun, leading: Bool) -> Int {
        let outside = leading ? at(run.start - 1) : at(run.end)
        let words = leading ? Self.wordBeforeNumeral : Self.wordAfterNumeral
        guard words.contains(outside) else { return 0 }
        let count = run.positions.count
        var n = 0
        while n < count {
            let position = run.positions[leading ? n : count - 1 - n]
            if s[position] < 0x3000 { break }
            n += 1
        }
        return (n >= 1 && n <= 2 && n < count) ? n : 0
    }

    /// Splits an invalid run at its space or `/` gaps into parts that are each valid, if it can,
    /// and emits them; the last part is the number a `同号` phrase after the run refers back to.
    mutating func split(_ run: DigitRun, as reading: Reading, plus: Bool) -> Bool {
        guard let parts = partition(run, as: reading, plus: plus) else { return false }
        for part in parts {
            if let (kind, value) = partValue(run, from: part.lowerBound, to: part.upperBound, as: reading, plus: plus) {
                emit(kind, value)
            }
        }
        let last = parts[parts.count - 1]
        lastNumber = NumberReading(end: run.positions[last.upperBound - 1] + 1, digits: run.digits[last], plus: false)
        return true
    }

    /// The most digits any valid part can have: `00` and an international number of 15.
    static let longestPart = 17

    /// The digit ranges of `run` split at its space or `/` gaps into at least two parts that are
    /// each valid (`partValue`), in order, or nil. Among partitions, each part ends as late as it
    /// can. However many numbers a list holds, only gaps within `longestPart` digits of a cut are
    /// tried, so the work is linear in the run's length.
    func partition(_ run: DigitRun, as reading: Reading, plus: Bool) -> [Range<Int>]? {
        guard !run.gaps.isEmpty else { return nil }
        let cuts = [0] + run.gaps + [run.digits.count]
        // reach[j]: the cut index before the last part of a valid partition ending at cut j.
        var reach = [Int](repeating: -1, count: cuts.count)
        reach[0] = 0
        var nearest = 0  // the first cut within `longestPart` digits of cut j
        for j in 1..<cuts.count {
            while cuts[j] - cuts[nearest] > Self.longestPart { nearest += 1 }
            for k in nearest..<j where reach[k] >= 0 && (k > 0 || j < cuts.count - 1) {
                if partValue(run, from: cuts[k], to: cuts[j], as: reading, plus: plus) != nil {
                    reach[j] = k
                    break
                }
            }
        }
        guard reach[cuts.count - 1] >= 0 else { return nil }
        var parts: [Range<Int>] = []
        var j = cuts.count - 1
        while j > 0 {
            parts.append(cuts[reach[j]]..<cuts[j])
            j = reach[j]
        }
        return parts.reversed()
    }

    /// One part of a split run (digits `from..<to`): the first is read as the marker says; after a
    /// QQ marker a later part may also be a phone (`QQ 12345 13812345678`), since the marker named
    /// only the first. A later QQ must be written without separators (`QQ：12345678 / 87654321`):
    /// `2023.10.01` or `2023 10 01` after a QQ is a date, not a second QQ.
    func partValue(_ run: DigitRun, from: Int, to: Int, as reading: Reading, plus: Bool) -> (ContactKind, String)? {
        let part = run.digits[from..<to]
        let first = from == 0
        if reading == .qq && !first {
            if let phone = Self.value(of: part, as: .phone, plus: false) { return (.phone, phone) }
            guard run.positions[to - 1] - run.positions[from] == to - 1 - from else { return nil }
        }
        guard let value = Self.value(of: part, as: reading, plus: plus && first) else { return nil }
        return (reading == .qq ? .qq : .phone, value)
    }
}
