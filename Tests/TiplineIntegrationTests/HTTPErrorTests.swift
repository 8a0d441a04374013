import Foundation
import Postgres
import Testing

/// Every error status of the intake, with the JSON error shape and specific messages.
@Suite("HTTP errors")
struct HTTPErrorTests {
    @Test("a malformed-input catalog gets 400 or 422 with the field and a specific message, and good reports still go in")
    func malformedCatalog() async throws {
        try await IntakeServer.with { db, server in
            let token = try await server.token(source: "app-one")
            let headers = RawHTTP.jsonHeaders(token)
            func raw(_ bytes: [UInt8]) async throws -> HTTPReply {
                try await server.send("POST", "/v1/reports", headers: headers, body: bytes)
            }
            let truncated = try await raw(Array(#"{"external_id": "t-1", "channel": "app", "text": "出租"#.utf8))
            #expect(truncated.status == 400)
            #expect(truncated.error.code == "malformed_request")
            #expect(truncated.error.message?.contains("not valid JSON") == true)

            let badUTF8 = try await raw(Array(#"{"external_id": "t-2", "reporter": "u", "text": ""#.utf8) + [0xC3, 0x28, 0xFF] + Array(#""}"#.utf8))
            #expect(badUTF8.status == 400)
            #expect(badUTF8.error.message?.contains("not valid UTF-8") == true, "\(badUTF8.text)")

            #expect(try await raw([]).status == 400)
            #expect(try await raw(Array("[1, 2]".utf8)).error.message == "request body must be a JSON object")

            let cases: [(String, [String: Any], String, String)] = [
                ("wrong type", ["external_id": 42, "reporter": "u", "text": "t"], "external_id", "must be a string"),
                ("wrong type text", ["external_id": "w", "reporter": "u", "text": ["a"]], "text", "must be a string"),
                ("missing text", ["external_id": "m", "reporter": "u"], "text", "is required"),
                ("NUL", ["external_id": "n", "reporter": "u", "text": "before\u{0}after"], "text", "NUL"),
                ("unknown channel", ["external_id": "c", "channel": "fax", "reporter": "u", "text": "t"], "channel", "unknown channel \"fax\""),
                ("bad date", ["external_id": "d", "reporter": "u", "text": "t", "reported_at": "yesterday"], "reported_at", "not an ISO 8601"),
                ("far future", ["external_id": "f", "reporter": "u", "text": "t", "reported_at": "2999-01-01T00:00:00Z"], "reported_at", "in the future"),
                ("too old", ["external_id": "o", "reporter": "u", "text": "t", "reported_at": "1999-12-31T00:00:00Z"], "reported_at", "before 2000"),
                ("long id", ["external_id": String(repeating: "x", count: 201), "reporter": "u", "text": "t"], "external_id", "limit 200"),
                ("unknown field", ["external_id": "u", "reporter": "u", "text": "t", "externalId": "x"], "externalId", "unknown field"),
            ]
            for (name, body, field, message) in cases {
                let reply = try await server.post(body, token: token)
                #expect(reply.status == 422, "\(name): \(reply.text)")
                #expect(reply.error.code == "validation_failed", "\(name)")
                #expect(reply.error.field == field, "\(name): \(reply.text)")
                #expect(reply.error.message?.contains(message) == true, "\(name): \(reply.text)")
            }
            // A bad request never affects another: a good one right after is stored, and only it.
            #expect(try await server.post(sampleReport("good"), token: token).status == 201)
            #expect(try await db.int("SELECT count(*) FROM reports") == 1)
        }
    }

    @Test("bodies over the limit get 413, by Content-Length (10 MB) and by streamed size (chunked)")
    func bodyLimits() async throws {
        try await IntakeServer.with { db, server in
            let token = try await server.token(source: "app-one")
            let huge = [UInt8](repeating: UInt8(ascii: "a"), count: 10 << 20)
            let declared = try await server.send("POST", "/v1/reports", headers: RawHTTP.jsonHeaders(token), body: huge)
            #expect(declared.status == 413)
            #expect(declared.error.code == "body_too_large")
            let streamed = try await server.send("POST", "/v1/reports", headers: RawHTTP.jsonHeaders(token),
                                                 body: [UInt8](repeating: UInt8(ascii: " "), count: 600_000), chunked: true)
            #expect(streamed.status == 413)
            // Just under the limit is read (and refused only for what it says): the limit is the body's.
            var report = sampleReport("big")
            report["text"] = String(repeating: "出", count: 20_000)  // 60,000 bytes
            #expect(try await server.post(report, token: token).status == 201)
            // A text at its own limit is accepted however its JSON writer escapes it: here every
            // character as \uXXXX, six bytes of body for three of text (a body twice the text limit).
            let escaped = "{\"external_id\":\"escaped\",\"channel\":\"app\",\"reporter\":\"u_2\",\"text\":\""
                + String(repeating: "\\u51fa", count: 21_845) + "\"}"
            let reply = try await server.send("POST", "/v1/reports", headers: RawHTTP.jsonHeaders(token), body: Array(escaped.utf8))
            #expect(reply.status == 201, "\(reply.text.prefix(300))")
            #expect(try await db.int("SELECT count(*) FROM reports") == 2)
            #expect(try await db.int("SELECT octet_length(body) FROM reports WHERE external_id = 'escaped'") == 65_535)
        }
    }

    @Test("a body that is not application/json gets 415")
    func unsupportedMediaType() async throws {
        try await IntakeServer.with { _, server in
            let token = try await server.token(source: "app-one")
            let body = Array(try JSONSerialization.data(withJSONObject: sampleReport("x")))
            let auth = ["Authorization": "Bearer \(token)"]
            #expect(try await server.send("POST", "/v1/reports", headers: auth, body: body).status == 415)
            let form = try await server.send("POST", "/v1/reports", headers: auth.merging(["Content-Type": "text/plain"]) { $1 }, body: body)
            #expect(form.status == 415)
            #expect(form.error.code == "unsupported_media_type")
            let latin1 = auth.merging(["Content-Type": "application/json; charset=iso-8859-1"]) { $1 }
            #expect(try await server.send("POST", "/v1/reports", headers: latin1, body: body).status == 415)
            let utf8 = auth.merging(["Content-Type": "application/json; charset=UTF-8"]) { $1 }
            #expect(try await server.send("POST", "/v1/reports", headers: utf8, body: body).status == 201)
        }
    }

    @Test("unknown routes get a JSON 404")
    func unknownRoute() async throws {
        try await IntakeServer.with { _, server in
            let reply = try await server.get("/v2/nothing")
            #expect(reply.status == 404)
            #expect(reply.error.code == "not_found")
        }
    }

    @Test("with the database down, reports and readyz get 503 while healthz answers 200")
    func databaseDown() async throws {
        // A port nothing listens on: connections are refused at once.
        let url = "postgresql://tipline@127.0.0.1:1/tipline?connect_timeout=2"
        let server = try await IntakeServer.start(databaseURL: url)
        #expect(try await server.get("/healthz").status == 200)
        let ready = try await server.get("/readyz")
        #expect(ready.status == 503)
        #expect(ready.error.code == "database_unavailable")
        let post = try await server.post(sampleReport("x"), token: "tl_" + String(repeating: "a", count: 64))
        #expect(post.status == 503)
        #expect(post.error.code == "database_unavailable")
        try await server.stop()
    }

    @Test("SIGTERM while serve is still starting (the database not answering its key check) exits 0")
    func sigtermWhileStarting() async throws {
        // A socket that listens but never answers: the kernel completes the connection, and libpq
        // waits for the server's first message until connect_timeout.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 8) == 0
                && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        // connect_timeout: how long the key check waits; the signal must come within it.
        let server = try TiplineProcess(["serve", "--port", "0"], databaseURL: "postgresql://tipline@127.0.0.1:\(port)/tipline?connect_timeout=5")
        try server.start()
        // A fixed pause raced the process's own start on a loaded machine (SIGTERM before the trap).
        try await server.waitUntilCatching(SIGTERM)
        #expect(server.stdout.isEmpty, "serve was still starting: \(server.stdout)")
        server.signal(SIGTERM)
        #expect(try await server.wait(timeout: 60) == .exit(0), "stderr: \(server.stderr.suffix(2000))")
    }

    @Test("readyz is 200 when migrated and 503 when a migration is pending")
    func readiness() async throws {
        try await IntakeServer.with { db, server in
            let ready = try await server.get("/readyz")
            #expect(ready.status == 200)
            #expect(ready.json["status"] as? String == "ready")
            try await db.database.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
            let pending = try await server.get("/readyz")
            #expect(pending.status == 503)
            #expect(pending.error.code == "migrations_pending")
        }
    }

    @Test("metrics count requests by route and status and record their latency")
    func metrics() async throws {
        try await IntakeServer.with { _, server in
            let token = try await server.token(source: "app-one")
            #expect(try await server.post(sampleReport("m-1"), token: token).status == 201)
            #expect(try await server.post(sampleReport("m-2"), token: nil).status == 401)
            let scrape = try await server.get("/metrics")
            #expect(scrape.status == 200)
            let text = scrape.text
            #expect(text.contains("tipline_http_requests_total{"), "\(text.prefix(500))")
            let lines = text.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("tipline_http_requests_total{") && $0.contains(#"route="/v1/reports""#) && $0.contains(#"status="201""#) })
            #expect(lines.contains { $0.hasPrefix("tipline_http_requests_total{") && $0.contains(#"status="401""#) })
            #expect(lines.contains { $0.hasPrefix("tipline_http_request_duration_seconds_bucket{") })
        }
    }
}
