extension Scan {
    /// The canonical value of `digits` read as `reading`, or nil when they are not one.
    static func value(of digits: ArraySlice<UInt8>, as reading: Reading, plus: Bool) -> String? {
        switch reading {
        case .qq:
            return plus ? nil : qq(digits)
        case .mobile:
            return mobile(digits, plus: plus)
        case .phone:
            if let value = mobile(digits, plus: plus) { return value }
            return international(digits, plus: plus)
        }
    }

    /// A QQ number: 5 to 11 digits, the first not 0.
    static func qq(_ digits: ArraySlice<UInt8>) -> String? {
        guard (5...11).contains(digits.count), digits.first != 0 else { return nil }
        return string(digits)
    }

    /// A Chinese mobile `1[3-9]` + 9 digits, bare or after `+86`, `0086` or `86`.
    static func mobile(_ digits: ArraySlice<UInt8>, plus: Bool) -> String? {
        var rest = digits
        switch digits.count {
        case 11 where !plus:
            break
        case 13 where digits.starts(with: [8, 6]):
            rest = digits.dropFirst(2)
        case 15 where !plus && digits.starts(with: [0, 0, 8, 6]):
            rest = digits.dropFirst(4)
        default:
            return nil
        }
        let second = rest[rest.startIndex + 1]
        guard rest.first == 1, second >= 3 else { return nil }
        return "+86" + string(rest)
    }

    /// Another number: only after an explicit `+` or `00`, first digit 1-9, 8 to 15 digits.
    static func international(_ digits: ArraySlice<UInt8>, plus: Bool) -> String? {
        var rest = digits
        if !plus {
            guard digits.starts(with: [0, 0]) else { return nil }
            rest = digits.dropFirst(2)
        }
        guard (8...15).contains(rest.count), let first = rest.first, first != 0 else { return nil }
        return "+" + string(rest)
    }

    /// The digits as an ASCII string.
    static func string(_ digits: ArraySlice<UInt8>) -> String {
        String(decoding: digits.map { $0 + 0x30 }, as: UTF8.self)
    }
}
