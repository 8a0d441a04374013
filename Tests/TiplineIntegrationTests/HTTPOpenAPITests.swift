import Foundation
import Testing

/// What openapi.yaml promises, read with a small indentation-based reader (the file keeps to plain
/// block YAML: one key per line, two-space indents), so no YAML library is needed.
struct OpenAPIDocument {
    /// (path template, method, status) -> referenced schema name (nil for non-JSON bodies).
    var responses: [Triple: String?] = [:]
    /// Schema name -> property paths (`error.code` for nested objects).
    var properties: [String: Set<String>] = [:]

    struct Triple: Hashable, CustomStringConvertible {
        var path: String
        var method: String
        var status: Int
        var description: String { "\(method.uppercased()) \(path) \(status)" }
    }

    static func load() throws -> OpenAPIDocument {
        return parse(try ProjectTree.text("openapi.yaml"))
    }

    static func parse(_ text: String) -> OpenAPIDocument {
        var document = OpenAPIDocument()
        var stack: [(indent: Int, key: String)] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(raw)
            let indent = line.prefix(while: { $0 == " " }).count
            let body = line.dropFirst(indent)
            guard !body.hasPrefix("#"), !body.hasPrefix("- "), let colon = body.firstIndex(of: ":") else { continue }
            var key = String(body[..<colon])
            if key.hasPrefix("\""), key.hasSuffix("\"") { key = String(key.dropFirst().dropLast()) }
            let value = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            // A multi-line scalar (`description: |`) holds text, not keys: skip lines deeper than it.
            if let last = stack.last, last.key.hasSuffix("|") { continue }
            stack.append((indent, value == "|" ? key + "|" : key))
            let keys = stack.map(\.key)
            // paths / PATH / METHOD / responses / STATUS / content / TYPE / schema / $ref
            if keys.first == "paths", keys.count >= 5, keys[3] == "responses", let status = Int(keys[4]) {
                let triple = Triple(path: keys[1], method: keys[2], status: status)
                if keys.count == 5 { document.responses[triple] = .some(nil) }
                if keys.last == "$ref" {
                    document.responses[triple] = value.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")).split(separator: "/").last.map(String.init)
                }
            }
            // components / schemas / NAME / properties / P [/ properties / Q ...]
            if keys.count >= 5, keys[0] == "components", keys[1] == "schemas" {
                var path: [String] = []
                var index = 3
                while index + 1 < keys.count, keys[index] == "properties" {
                    path.append(keys[index + 1])
                    index += 2
                }
                if index == keys.count, !path.isEmpty {
                    document.properties[keys[2], default: []].insert(path.joined(separator: "."))
                }
            }
        }
        return document
    }
}

@Suite("HTTP OpenAPI")
struct HTTPOpenAPITests {
    /// Plain (unquoted) values of `openapi.yaml` that a YAML parser refuses or reads as something
    /// else: `: ` inside (a mapping), ` #` (a comment), or a reserved first character.
    static func unreadablePlainValues(_ text: String) -> [String] {
        var problems: [String] = []
        var blockIndent: Int?
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            let indent = line.prefix(while: { $0 == " " }).count
            if let block = blockIndent {
                if line.trimmingCharacters(in: .whitespaces).isEmpty || indent > block { continue }
                blockIndent = nil
            }
            var body = line.dropFirst(indent)
            if body.hasPrefix("- ") { body = body.dropFirst(2) }
            guard !body.hasPrefix("#"), let colon = body.range(of: ": ") else { continue }
            let value = body[colon.upperBound...].trimmingCharacters(in: .whitespaces)
            if value == "|" || value == ">" { blockIndent = indent; continue }
            guard let first = value.first, !"'\"[{".contains(first) else { continue }
            if value.contains(": ") || value.contains(" #") || "`@%&*!|>?,".contains(first) {
                problems.append("line \(number + 1): \(value)")
            }
        }
        return problems
    }

    @Test("openapi.yaml is YAML a client generator can read: no plain value that a parser refuses")
    func plainValuesParse() throws {
        #expect(Self.unreadablePlainValues("a:\n  description: plain text, fine (even `code`)\n").isEmpty)
        #expect(Self.unreadablePlainValues("a:\n  description: by default: any\n").count == 1)
        #expect(Self.unreadablePlainValues("a:\n  description: `code` first\n").count == 1)
        #expect(Self.unreadablePlainValues("a:\n  description: |\n    text: with colons # and hashes\n").isEmpty)
        let problems = Self.unreadablePlainValues(try ProjectTree.text("openapi.yaml"))
        #expect(problems.isEmpty, "quote these values: \(problems)")
    }

    /// Property paths of a JSON value, as the document writes them.
    static func paths(_ object: [String: Any], prefix: String = "") -> Set<String> {
        var result = Set<String>()
        for (key, value) in object {
            result.insert(prefix + key)
            if let nested = value as? [String: Any] { result.formUnion(paths(nested, prefix: prefix + key + ".")) }
        }
        return result
    }

    @Test("openapi.yaml lists exactly the routes and statuses the server answers, with the fields it sends")
    func serverMatchesDocument() async throws {
        let document = try OpenAPIDocument.load()
        #expect(document.responses.count >= 15, "the reader found too little in openapi.yaml: \(document.responses.keys)")
        var observed: [OpenAPIDocument.Triple: HTTPReply] = [:]
        func record(_ path: String, _ method: String, _ reply: HTTPReply) {
            observed[.init(path: path, method: method, status: reply.status)] = reply
        }
        // A body timeout short enough to observe its 408, long for every whole request sent here.
        try await IntakeServer.with(arguments: ["--body-timeout", "3"]) { _, server in
            let token = try await server.token(source: "doc")
            let reports = "/v1/reports"
            let slow = try await RawHTTP.open(port: server.port)
            defer { close(slow) }
            try await RawHTTP.write(slow, "POST \(reports) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                              + "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n{")
            record(reports, "post", try await RawHTTP.reply(slow))
            let first = try await server.post(sampleReport("d-1"), token: token)
            record(reports, "post", first)
            record(reports, "post", try await server.post(sampleReport("d-1"), token: token))
            record(reports, "post", try await server.send("POST", reports, headers: RawHTTP.jsonHeaders(token), body: Array("{".utf8)))
            record(reports, "post", try await server.post(sampleReport("d-2"), token: nil))
            record(reports, "post", try await server.send("POST", reports, headers: RawHTTP.jsonHeaders(token),
                                                          body: [UInt8](repeating: 32, count: 600_000)))
            record(reports, "post", try await server.send("POST", reports, headers: ["Authorization": "Bearer \(token)"], body: Array("{}".utf8)))
            record(reports, "post", try await server.post(["external_id": "d-3"], token: token))
            var zipped = RawHTTP.jsonHeaders(token)
            zipped["Transfer-Encoding"] = "gzip, chunked"
            record(reports, "post", try await server.send("POST", reports, headers: zipped, body: [0x1F, 0x8B, 0x08, 0x00], chunked: true))
            let id = try #require(first.json["id"] as? Int)
            record("/v1/reports/{id}", "get", try await server.get("/v1/reports/\(id)", token: token))
            record("/v1/reports/{id}", "get", try await server.get("/v1/reports/\(id)"))
            record("/v1/reports/{id}", "get", try await server.get("/v1/reports/\(id + 1000)", token: token))
            record("/healthz", "get", try await server.get("/healthz"))
            record("/readyz", "get", try await server.get("/readyz"))
            record("/metrics", "get", try await server.get("/metrics"))
        }
        let down = try await IntakeServer.start(databaseURL: "postgresql://tipline@127.0.0.1:1/tipline?connect_timeout=2")
        let anyToken = "tl_" + String(repeating: "b", count: 64)
        record("/v1/reports", "post", try await down.post(sampleReport("x"), token: anyToken))
        record("/v1/reports/{id}", "get", try await down.get("/v1/reports/1", token: anyToken))
        record("/readyz", "get", try await down.get("/readyz"))
        try await down.stop()

        #expect(Set(observed.keys) == Set(document.responses.keys),
                "undocumented: \(Set(observed.keys).subtracting(document.responses.keys)); never seen: \(Set(document.responses.keys).subtracting(observed.keys))")
        for (triple, reply) in observed {
            guard let schema = document.responses[triple] ?? nil else { continue }
            let fields = try #require(document.properties[schema], "schema \(schema) has no properties")
            #expect(reply.headers["content-type"]?.hasPrefix("application/json") == true, "\(triple)")
            #expect(Self.paths(reply.json) == fields, "\(triple): body \(reply.text) does not match schema \(schema)")
        }
    }
}
