import Foundation
import TiplineCore

/// Turns the bytes of a `POST /v1/reports` body into a `ReportInput`, or the `APIError` that says
/// exactly what is wrong. No I/O: every check here is cheap and testable on its own.
struct ReportRequest {
    /// Fields a report may carry; anything else is refused so that a misspelt field is not lost silently.

    let validator: ReportValidator

    /// 1 to 32 ASCII letters and underscores: what a field's name, or a typo of one, is made of.
    static func looksLikeAFieldName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count)
            && name.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0 | 0x20) || $0 == UInt8(ascii: "_") }
    }

    /// Checks a `Content-Type` header: JSON, and UTF-8 if a charset is named.
    static func checkContentType(_ header: String?) throws(APIError) {
        guard let header else {
            throw .unsupportedMediaType("Content-Type must be application/json (none was sent)")
        }
        let parts = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard parts.first == "application/json" else {
            throw .unsupportedMediaType("Content-Type must be application/json, not \(String(header.prefix(64)))")
        }
        for parameter in parts.dropFirst() where parameter.hasPrefix("charset=") {
            let charset = parameter.dropFirst("charset=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            guard charset == "utf-8" || charset == "utf8" else {
                throw .unsupportedMediaType("only UTF-8 JSON is accepted, not charset \(String(charset.prefix(32)))")
            }
        }
    }

    /// 415 for a compressed body (`Content-Encoding: gzip`): it is not read as JSON text.
    static func checkContentEncoding(_ header: String?) throws(APIError) {
        guard let header, header.trimmingCharacters(in: .whitespaces).lowercased() != "identity" else { return }
        throw .unsupportedMediaType("Content-Encoding \(String(header.prefix(32))) is not accepted: send the JSON uncompressed")
    }

    /// 501 for a body sent in a transfer coding other than chunked (`Transfer-Encoding: gzip,
    /// chunked`): the server removes the chunking only, so what it would read is still compressed.
    static func checkTransferEncoding(_ header: String?) throws(APIError) {
        guard let header else { return }
        let codings = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        // Without chunked last the body has no end but the connection's (RFC 9112, 6.3): 400.
        guard codings.last == "chunked" else {
            throw .malformed("Transfer-Encoding must end with chunked (the body's length is otherwise unknown)")
        }
        guard let other = codings.first(where: { $0 != "chunked" }) else { return }
        throw .notImplemented("Transfer-Encoding \(String(other.prefix(32))) is not supported: send the JSON as it is, chunked or with a Content-Length")
    }

    /// A `Content-Length` value as a number; digits past `Int.max` (the HTTP parser takes up to
    /// 2^64 - 1) as `Int.max`, so that they are refused as too large rather than not read at all.
    static func declaredLength(_ value: String?) -> Int? {
        guard let value, !value.isEmpty, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(value) ?? Int.max
    }

    /// Decodes and validates a body for a client whose token belongs to `channel`.
    func decode(_ bytes: [UInt8], channel: Channel, now: Date = Date()) throws(APIError) -> ReportInput {
        if let offset = UTF8Check.firstInvalidByte(bytes) {
            throw .malformed("request body is not valid UTF-8 (first bad byte at offset \(offset))")
        }
        // JSON never holds a raw NUL byte; UTF-16 or UTF-32 text does (Foundation's parser would
        // guess the encoding and take it).
        if let offset = bytes.firstIndex(of: 0) {
            throw .malformed("request body is not UTF-8 JSON (a NUL byte at offset \(offset): UTF-16 or UTF-32?)")
        }
        if bytes.isEmpty { throw .malformed("request body is empty (expected a JSON object)") }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw .malformed("request body starts with a UTF-8 byte-order mark (bytes EF BB BF): send the JSON object without it")
        }
        // Stricter than Foundation's parser: no trailing commas, no member named twice.
        if let problem = StrictJSON.problem(in: bytes, naming: ReportValidator.fieldNames) { throw .malformed("request body is not valid JSON: \(problem)") }
        let object: Any
        do {
            // Fragments too: `"x"` or `42` is valid JSON, just not an object (said below).
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            // The strict check refuses what Foundation is known not to read (a number beyond a
            // Double's range, half a surrogate pair), each with where; this is for anything else.
            throw .malformed("request body is not valid JSON: Foundation's parser could not read it")
        }
        guard var fields = object as? [String: Any] else {
            throw .malformed("request body must be a JSON object")
        }
        let unknowns = fields.keys.filter { !ReportValidator.fieldNames.contains($0) }.sorted()
        // A name that could be a misspelt field is named (the first such, if any); any other is the
        // client's data, which may be personal (a member keyed by a caller's number), and errors
        // are logged.
        if let unknown = unknowns.first(where: Self.looksLikeAFieldName) ?? unknowns.first {
            let named = Self.looksLikeAFieldName(unknown)
            throw .invalid(field: named ? unknown : nil,
                           (named ? "unknown field" : "a field that is none of a report's (its name is not shown: only names of letters and _ are)")
                           + " (expected external_id, channel, reporter, text, reported_at, platform)")
        }
        // A token belongs to one channel: a missing channel is the token's, a different one is refused.
        if fields["channel"] == nil || fields["channel"] is NSNull { fields["channel"] = channel.rawValue }
        switch validator.validate(fields, now: now) {
        case .failure(let error):
            throw .invalid(field: error.field, error.message)
        case .success(let input):
            guard input.channel == channel else {
                throw .invalid(field: "channel", "this token submits \(channel.rawValue) reports, not \(input.channel.rawValue)")
            }
            return input
        }
    }
}
