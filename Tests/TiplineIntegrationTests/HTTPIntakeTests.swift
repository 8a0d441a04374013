import Foundation
import Postgres
import Testing
import TiplineStore

/// `tipline serve` over real HTTP against a real PostgreSQL: submissions, idempotency, access.
@Suite("HTTP intake")
struct HTTPIntakeTests {
    @Test("a new report gets 201, a retry of the same external id 200 with the same id, and one row")
    func idempotentRetry() async throws {
        try await IntakeServer.with { db, server in
            let token = try await server.token(source: "app-one")
            let first = try await server.post(sampleReport("r-1"), token: token)
            #expect(first.status == 201, "\(first.text)")
            #expect(first.json["status"] as? String == "queued")
            #expect(first.json["duplicate"] as? Bool == false)
            let id = try #require(first.json["id"] as? Int)
            let retry = try await server.post(sampleReport("r-1"), token: token)
            #expect(retry.status == 200, "\(retry.text)")
            #expect(retry.json["id"] as? Int == id)
            #expect(retry.json["duplicate"] as? Bool == true)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE source = 'app-one' AND external_id = 'r-1'") == 1)
            #expect(try await db.int("SELECT count(*) FROM jobs") == 1)

            let shown = try await server.get("/v1/reports/\(id)", token: token)
            #expect(shown.status == 200, "\(shown.text)")
            #expect(shown.json["id"] as? Int == id)
            #expect(shown.json["external_id"] as? String == "r-1")
            #expect(shown.json["status"] as? String == "queued")
            #expect(shown.json["outcome"] is NSNull)
            #expect(shown.json["reporter"] == nil && shown.json["text"] == nil, "a report's text and reporter are never returned")
        }
    }

    @Test("a client that expects 100-continue gets it before it sends its body; a body declared over the limit gets no 100, only 413")
    func expectContinue() async throws {
        try await IntakeServer.with { db, server in
            let token = try await server.token(source: "continue")
            let body = Array(try JSONSerialization.data(withJSONObject: sampleReport("c-1", text: "出租微信 V信: seller_1x " + String(repeating: "租", count: 2000))))
            // The head of a POST that waits for 100-continue, and its first reply's head (nil: none within 5 s;
            // curl gives up waiting after a second and sends the body anyway).
            func expecting(length: String, on fd: Int32, expect: String = "100-continue") async throws -> String? {
                try await RawHTTP.write(fd, "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                  + "Authorization: Bearer \(token)\r\nExpect: \(expect)\r\nContent-Length: \(length)\r\n\r\n")
                return await RawHTTP.head(fd, within: 5)
            }
            let fd = try await RawHTTP.open(port: server.port)
            defer { close(fd) }
            let interim = try await expecting(length: "\(body.count)", on: fd)
            #expect(interim?.hasPrefix("HTTP/1.1 100 Continue\r\n") == true, "\(interim ?? "no reply within 5 s")")
            try await RawHTTP.write(fd, body)
            let reply = try await RawHTTP.reply(fd)
            #expect(reply.status == 201, "\(reply.text)")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE external_id = 'c-1'") == 1)
            // The expectation in a list, beside one the server does not know: still a 100.
            let listed = try await RawHTTP.open(port: server.port)
            defer { close(listed) }
            let listedInterim = try await expecting(length: "\(body.count)", on: listed, expect: "100-Continue, x-other")
            #expect(listedInterim?.hasPrefix("HTTP/1.1 100 Continue\r\n") == true, "\(listedInterim ?? "no reply within 5 s")")

            // Too large, also past what an Int holds (the parser takes up to 2^64 - 1).
            for length in ["10000000", "9223372036854775808", "18446744073709551615"] {
                let large = try await RawHTTP.open(port: server.port)
                defer { close(large) }
                let refused = try await expecting(length: length, on: large)
                #expect(refused?.hasPrefix("HTTP/1.1 413 ") == true, "\(length): \(refused ?? "no reply within 5 s")")
            }
        }
    }

    @Test("a pipelined request that expects 100-continue gets it only after the response to the request before it")
    func pipelinedExpectContinue() async throws {
        try await IntakeServer.with { db, server in
            let token = try await server.token(source: "pipelined")
            let body = Array(try JSONSerialization.data(withJSONObject: sampleReport("p-1")))
            let fd = try await RawHTTP.open(port: server.port)
            defer { close(fd) }
            // Both heads in one write: the second is read before the first is answered.
            try await RawHTTP.write(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                              + "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              + "Authorization: Bearer \(token)\r\nExpect: 100-continue\r\nContent-Length: \(body.count)\r\n\r\n")
            // Read byte by byte, so that nothing after the first reply is consumed with it.
            let first = try #require(await RawHTTP.head(fd, within: 5), "no reply within 5 s")
            #expect(first.hasPrefix("HTTP/1.1 200 "), "the first reply on the connection is not the first request's: \(first)")
            let length = first.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
            _ = try await RawHTTP.read(fd, count: try #require(length, "\(first)"))
            let interim = await RawHTTP.head(fd, within: 5)
            #expect(interim?.hasPrefix("HTTP/1.1 100 Continue\r\n") == true, "\(interim ?? "no reply within 5 s")")
            try await RawHTTP.write(fd, body)
            #expect(try await RawHTTP.reply(fd).status == 201)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE external_id = 'p-1'") == 1)
        }
    }

    @Test("a database replaced under a running server gets its reporters hashed with its own derivation, not the one checked before")
    func databaseReplacedUnderTheServer() async throws {
        try await IntakeServer.with { db, server in
            let first = try await server.post(sampleReport("r-1", reporter: "one reporter"), token: try await server.token(source: "app"))
            #expect(first.status == 201, "\(first.text)")
            // Within the ten seconds a passed key check is trusted for.
            let again = try await db.replaced()
            defer { Task { await again.shutdown() } }
            let token = try await IntakeServer.token(databaseURL: db.url, source: "app")
            let second = try await server.post(sampleReport("r-2", reporter: "one reporter"), token: token)
            #expect(second.status == 201, "\(second.text)")
            let expected = try await WorkerProcessTests.key.verify(against: again).hash("one reporter")
            let stored = try await again.query("SELECT reporter_hash FROM reports")
            #expect(try stored.one().decode(Data.self, at: 0) == expected)
        }
    }

    @Test("another source's report is 404, as is an unknown id, and the same external id is a new report for it")
    func crossSourceIsNotFound() async throws {
        try await IntakeServer.with { db, server in
            let mine = try await server.token(source: "app-one")
            let theirs = try await server.token(source: "app-two")
            let id = try #require(try await server.post(sampleReport("shared-id"), token: mine).json["id"] as? Int)
            let probe = try await server.get("/v1/reports/\(id)", token: theirs)
            #expect(probe.status == 404)
            #expect(probe.error.code == "not_found")
            #expect(try await server.get("/v1/reports/999999", token: mine).status == 404)
            #expect(try await server.get("/v1/reports/not-a-number", token: mine).status == 404)
            let other = try await server.post(sampleReport("shared-id"), token: theirs)
            #expect(other.status == 201)
            #expect(other.json["id"] as? Int != id)
            #expect(try await db.int("SELECT count(*) FROM reports WHERE external_id = 'shared-id'") == 2)
        }
    }

    @Test("no token, a malformed or unknown token and a revoked token get 401; revocation is immediate")
    func tokensAndRevocation() async throws {
        try await IntakeServer.with { db, server in
            let token = try await server.token(source: "hotline-sys", channel: "hotline")
            let noToken = try await server.post(sampleReport("a"), token: nil)
            #expect(noToken.status == 401)
            #expect(noToken.error.code == "unauthorized")
            #expect(noToken.headers["www-authenticate"] == "Bearer")
            #expect(try await server.post(sampleReport("a"), token: "tl_" + String(repeating: "0", count: 64)).status == 401)
            #expect(try await server.send("GET", "/v1/reports/1", headers: ["Authorization": "Basic abc"]).status == 401)
            #expect(try await server.get("/v1/reports/1", token: "garbage").status == 401)

            var report = sampleReport("h-1")
            report["channel"] = "hotline"
            #expect(try await server.post(report, token: token).status == 201)
            // A token stores only its hash, and `token list` never prints it.
            #expect(try await db.int("SELECT count(*) FROM api_tokens WHERE octet_length(token_hash) = 32") == 1)
            let list = try await TiplineProcess.run(["token", "list"], databaseURL: db.url)
            #expect(list.status == .exit(0))
            #expect(list.stdout.contains("hotline-sys") && !list.stdout.contains(token))
            let listJSON = try await TiplineProcess.run(["token", "list", "--json"], databaseURL: db.url)
            let row = try #require(try JSONSerialization.jsonObject(with: Data(listJSON.stdout.utf8)) as? [String: Any])
            #expect(Set(row.keys) == ["id", "source", "channel", "created_at", "last_used_at", "revoked_at"], "\(listJSON.stdout)")
            #expect(row["revoked_at"] is NSNull, "\(listJSON.stdout)")

            let id = try await db.int("SELECT id FROM api_tokens")
            let revoke = try await TiplineProcess.run(["token", "revoke", String(id)], databaseURL: db.url)
            #expect(revoke.status == .exit(0), "\(revoke.stderr)")
            let after = try await server.post(sampleReport("h-2"), token: token)
            #expect(after.status == 401)
            #expect(after.error.message == "invalid or revoked token")
            #expect(try await TiplineProcess.run(["token", "revoke", "424242"], databaseURL: db.url).status == .exit(1))
        }
    }

    @Test("a missing channel is the token's channel; a different channel is refused with 422")
    func channelFollowsToken() async throws {
        try await IntakeServer.with { db, server in
            let token = try await server.token(source: "app-one", channel: "app")
            var report = sampleReport("c-1")
            report.removeValue(forKey: "channel")
            #expect(try await server.post(report, token: token).status == 201)
            report["external_id"] = "c-2"
            report["channel"] = "hotline"
            let refused = try await server.post(report, token: token)
            #expect(refused.status == 422)
            #expect(refused.error.field == "channel")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE channel = 'app'") == 1)
        }
    }

    @Test("SQL-injection strings, emoji, right-to-left text and quotes are stored byte for byte")
    func storedFaithfully() async throws {
        try await IntakeServer.with { db, server in
            let token = try await server.token(source: "app-one")
            let texts = [
                "'; DROP TABLE reports; -- 微信: abc_123x",
                "Robert'); DELETE FROM jobs WHERE ('1'='1",
                "$1 $2 \\x00 %s {\"a\": [1]} 出租QQ 12345678",
                "🔥🔥 出售微信号 👉 V信: seller_9x 🙏🏽 👨‍👩‍👧",
                "للبيع حساب وي تشات \u{200F}13812345678\u{200E} עברית",
            ]
            for (index, text) in texts.enumerated() {
                let reply = try await server.post(sampleReport("f-\(index)", text: text, reporter: "r'\(index)\"; --"), token: token)
                #expect(reply.status == 201, "\(reply.text)")
                let id = try #require(reply.json["id"] as? Int)
                let stored = try await db.database.query("SELECT body FROM reports WHERE id = \(id)").one().decode(String.self, at: 0)
                #expect(Array(stored.utf8) == Array(text.utf8))
            }
            #expect(try await db.int("SELECT count(*) FROM reports") == texts.count)
            #expect(try await db.int("SELECT count(*) FROM jobs") == texts.count)
        }
    }
}
