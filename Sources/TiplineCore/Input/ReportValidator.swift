public import Foundation

/// Turns loosely typed fields (from JSON, CSV or HTTP) into a `ReportInput`, or says exactly what is wrong.
public struct ReportValidator: Sendable {
    /// The limits enforced.
    public var limits: ReportLimits

    /// The fields a report has (JSON members, CSV columns); others are ignored in files and refused
    /// over HTTP.
    public static let fieldNames: Set<String> = ["external_id", "channel", "reporter", "text", "reported_at", "platform"]

    /// Creates a validator.
    public init(limits: ReportLimits = ReportLimits()) {
        self.limits = limits
    }

    /// Validates one record. `fields` maps column names to values as decoded (String, NSNumber, NSNull...).
    public func validate(_ fields: [String: Any], now: Date = Date()) -> Result<ReportInput, InputError> {
        do {
            // The idempotency key is compared byte for byte by PostgreSQL but by canonical
            // equivalence by Swift: in NFC, the same id typed with combining accents is one key.
            let externalID = try requiredString(fields, "external_id", max: limits.externalID, nfc: true)
            let channelText = try requiredString(fields, "channel", max: 32)
            guard let channel = Channel(rawValue: channelText) else {
                // The value is not repeated (on a terminal, in a rejects file, in a response): in a
                // file whose columns are out of place, it may be a reporter's identity. Only a
                // known channel in other letters is named.
                if let known = Channel(rawValue: channelText.lowercased()) {
                    throw InputError(field: "channel", "unknown channel \"\(channelText)\" (channels are lower case: \(known.rawValue))")
                }
                throw InputError(field: "channel", "unknown channel, expected app or hotline (the value is not shown: "
                    + "a column out of place may hold a reporter's identity)")
            }
            let reporter = Self.canonicalReporter(
                try requiredString(fields, "reporter", max: limits.reporter, nfc: true), channel: channel)
            let text = try requiredString(fields, "text", max: limits.text, trim: false)
            guard !text.allSatisfy(\.isWhitespace) else { throw InputError(field: "text", "is empty") }
            let platform = try optionalString(fields, "platform", max: limits.platform)
            var reportedAt: Date?
            if let raw = try optionalString(fields, "reported_at", max: 64) {
                guard let date = ISO8601.parse(raw) else {
                    if ISO8601.parse(raw + "Z") != nil {
                        throw InputError(field: "reported_at", "\"\(raw)\" has no time zone: add the offset it was "
                            + "written in (e.g. 2026-10-03T14:22:05+08:00), or Z for UTC")
                    }
                    // Not repeated, like an unknown channel: it may be another column's identity.
                    throw InputError(field: "reported_at", "is not an ISO 8601 date-time, e.g. 2026-10-03T14:22:05+08:00 "
                        + "(the value is not shown: a column out of place may hold a reporter's identity)")
                }
                if date > now.addingTimeInterval(limits.futureSkew) {
                    throw InputError(field: "reported_at", "\(raw) is in the future")
                }
                if date < limits.earliest { throw InputError(field: "reported_at", "\(raw) is before 2000") }
                reportedAt = date
            }
            return .success(ReportInput(
                externalID: externalID, channel: channel, reporter: reporter, text: text,
                reportedAt: reportedAt, platform: platform))
        } catch let error as InputError {
            return .failure(error)
        } catch {
            return .failure(InputError(field: nil, "\(error)"))
        }
    }

    /// One caller, one identity: a hotline caller's number written with spaces, dashes, brackets,
    /// full-width digits or a `+86`/`0086` prefix (`+86 138 1234 5678`, `138-1234-5678`,
    /// `0086 13812345678`) is the same reporter, so it is counted once among distinct reporters.
    /// A Chinese mobile becomes `+86` and its 11 digits; another number keeps `+` and its digits
    /// (`00` read as `+`), or its digits alone. Anything that is not a number, and every app user
    /// id, is kept as given (in NFC).
    static func canonicalReporter(_ reporter: String, channel: Channel) -> String {
        guard channel == .hotline else { return reporter }
        var digits = ""
        var plus = false
        for scalar in reporter.unicodeScalars {
            switch scalar.value {
            case 0x30...0x39: digits.unicodeScalars.append(scalar)
            case 0xFF10...0xFF19: digits.unicodeScalars.append(Unicode.Scalar(scalar.value - 0xFF10 + 0x30)!)
            case 0x2B, 0xFF0B:
                guard digits.isEmpty, !plus else { return reporter }
                plus = true
            case 0x20, 0x2D, 0x2E, 0x28, 0x29, 0xA0, 0x3000, 0xFF0D, 0xFF08, 0xFF09: continue
            default: return reporter
            }
        }
        guard digits.count >= 5 else { return reporter }
        if !plus, digits.hasPrefix("00") {
            plus = true
            digits.removeFirst(2)
        }
        if plus { return "+" + digits }
        if digits.count == 11, digits.hasPrefix("1") { return "+86" + digits }
        if digits.count == 13, digits.hasPrefix("861") { return "+" + digits }
        return digits
    }

    private func requiredString(_ fields: [String: Any], _ name: String, max: Int, trim: Bool = true, nfc: Bool = false) throws -> String {
        guard let value = try optionalString(fields, name, max: max, trim: trim, nfc: nfc) else {
            throw InputError(field: name, "is required")
        }
        return value
    }

    private func optionalString(_ fields: [String: Any], _ name: String, max: Int, trim: Bool = true, nfc: Bool = false) throws -> String? {
        guard let raw = fields[name], !(raw is NSNull) else { return nil }
        guard var value = raw as? String else {
            throw InputError(field: name, "must be a string, not \(Self.jsonKind(raw))")
        }
        // Trimmed fields are one-line values (ids, names, numbers): a line break or other blank at
        // either end (a spreadsheet cell's CRLF, a trailing newline) is no part of them, or one
        // reporter could count as several; inside them a control character or line separator is
        // refused, not kept. The value is not shown: it may be a reporter's identity.
        if trim {
            value = value.trimmingCharacters(in: .whitespacesAndNewlines)
            if let control = value.unicodeScalars.first(where: { $0.value != 0 && Self.breaksALine($0) }) {
                throw InputError(field: name, "contains a control character or line break (U+\(Self.hex(control))) inside it")
            }
        }
        let given = value.utf8.count
        if nfc { value = value.precomposedStringWithCanonicalMapping }
        if value.isEmpty { return trim ? nil : value }
        if value.utf8.count > max {
            // The limit is on the stored form: NFC can make a value longer than it was sent.
            let form = value.utf8.count == given ? "" : " once in Unicode's composed form (NFC), \(given) before it"
            throw InputError(field: name, "is \(value.utf8.count) bytes long\(form) (limit \(max))")
        }
        if value.unicodeScalars.contains("\u{0}") { throw InputError(field: name, "contains a NUL character") }
        return value
    }

    /// A control character (C0, DEL, C1) or a line or paragraph separator: never part of a one-line value.
    private static func breaksALine(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }

    private static func hex(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The class JSONSerialization gives `true` and `false` (an NSNumber subclass).
    private static let booleanType = type(of: NSNumber(value: true))

    /// What kind of JSON value `value` (as JSONSerialization gives it) is, with its article.
    static func jsonKind(_ value: Any) -> String {
        switch value {
        case is NSNull: "null"
        // Not `is Bool`: JSON's 0 and 1 bridge to Bool too.
        case let number as NSNumber where type(of: number) == booleanType: "a boolean"
        case is NSNumber: "a number"
        case is String: "a string"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: String(describing: type(of: value))
        }
    }
}
