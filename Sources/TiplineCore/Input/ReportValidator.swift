public import Foundation

/// Turns loosely typed fields (from JSON, CSV or HTTP) into a `ReportInput`, or says exactly what is wrong.
public struct ReportValidator: Sendable {
    /// The limits enforced.
    public var limits: ReportLimits

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
                throw InputError(field: "channel", "unknown channel \"\(channelText.prefix(32))\" (expected app or hotline)")
            }
            let reporter = try requiredString(fields, "reporter", max: limits.reporter)
            let text = try requiredString(fields, "text", max: limits.text, trim: false)
            guard !text.allSatisfy(\.isWhitespace) else { throw InputError(field: "text", "is empty") }
            let platform = try optionalString(fields, "platform", max: limits.platform)
            var reportedAt: Date?
            if let raw = try optionalString(fields, "reported_at", max: 64) {
                guard let date = ISO8601.parse(raw) else {
                    throw InputError(field: "reported_at",
                        "\"\(raw)\" is not an ISO 8601 date-time (e.g. 2026-10-03T14:22:05+08:00)")
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

    private func requiredString(_ fields: [String: Any], _ name: String, max: Int, trim: Bool = true, nfc: Bool = false) throws -> String {
        guard let value = try optionalString(fields, name, max: max, trim: trim, nfc: nfc) else {
            throw InputError(field: name, "is required")
        }
        return value
    }

    private func optionalString(_ fields: [String: Any], _ name: String, max: Int, trim: Bool = true, nfc: Bool = false) throws -> String? {
        guard let raw = fields[name], !(raw is NSNull) else { return nil }
        guard var value = raw as? String else {
            throw InputError(field: name, "must be a string, not \(Self.typeName(raw))")
        }
        if trim { value = value.trimmingCharacters(in: .whitespaces) }
        if nfc { value = value.precomposedStringWithCanonicalMapping }
        if value.isEmpty { return trim ? nil : value }
        if value.utf8.count > max { throw InputError(field: name, "is \(value.utf8.count) bytes long (limit \(max))") }
        if value.unicodeScalars.contains("\u{0}") { throw InputError(field: name, "contains a NUL character") }
        return value
    }

    private static func typeName(_ value: Any) -> String {
        switch value {
        case is NSNumber: "a number"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: String(describing: type(of: value))
        }
    }
}
