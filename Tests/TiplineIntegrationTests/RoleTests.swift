import Foundation
import Postgres
import Testing
import TiplineStore

@Suite("database roles")
struct RoleTests {
    /// A login user in `group` on the test database's server (the throwaway cluster trusts local users).
    static func login(_ group: String, in db: TestDatabase) async throws -> (name: String, url: String) {
        let name = "\(group)_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = Database(config: ConnectionConfig(conninfo: try TestDatabase.adminURL), maxConnections: 1)
        defer { Task { await admin.shutdown() } }
        try await admin.execute(Query(sql: "CREATE ROLE \(name) LOGIN IN ROLE \(group)", binds: []))
        var components = try #require(URLComponents(string: db.url))
        components.user = name
        return (name, try #require(components.string))
    }

    /// Runs each statement on `database` and expects it refused with `state`.
    static func expectRefused(_ statements: [String], on database: Database, as role: String,
                              with state: SQLState = .insufficientPrivilege) async {
        for statement in statements {
            do {
                try await database.execute(Query(sql: statement, binds: []))
                Issue.record("the \(role) role could run: \(statement)")
            } catch let error as PostgresError {
                #expect(error.sqlState == state, "\(statement): \(error)")
            } catch {
                Issue.record("\(statement): \(error)")
            }
        }
    }

    /// The same for one statement on one session (whose temporary tables or open transaction it
    /// needs), refused with any of `states`.
    static func expectRefused(_ statement: String, on session: Connection, as role: String, with states: [SQLState]) {
        do {
            try session.execute(Query(sql: statement, binds: []))
            Issue.record("the \(role) role could run: \(statement)")
        } catch let error as PostgresError {
            #expect(states.contains { error.sqlState == $0 }, "\(statement): \(error)")
        } catch {
            Issue.record("\(statement): \(error)")
        }
    }

    @Test("migrate says when this database grants the roles nothing (it was migrated before they existed)")
    func migrateWithoutRoleGrants() async throws {
        try await TestDatabase.with { db in
            let first = try await TiplineProcess.run(["migrate"], databaseURL: db.url)
            #expect(first.status == .exit(0) && !first.stderr.contains("note:"), "\(first.stderr)")
            // As in a database migrated by a user who could not create the roles, before another
            // database's migration created them: 0004 granted nothing here.
            try await db.database.execute(Query(sql: """
                REVOKE ALL ON ALL TABLES IN SCHEMA public FROM tipline_intake, tipline_worker, tipline_admin
                """, binds: []))
            let again = try await TiplineProcess.run(["migrate"], databaseURL: db.url)
            #expect(again.status == .exit(0) && again.stdout.contains("schema is up to date"), "\(again.stderr)")
            #expect(again.stderr.contains("grants nothing to tipline_intake, tipline_worker, tipline_admin"), "\(again.stderr)")
            #expect(again.stderr.hasSuffix("(README: Database roles)\n"), "the note is not a whole line: \(again.stderr)")
        }
    }

    @Test("the intake role can submit and read its reports, but cannot read sellers or delete anything")
    func intakeIsLeastPrivilege() async throws {
        try await TestDatabase.with { db in
            let intake = try await Self.login("tipline_intake", in: db)
            let submit = try await TiplineProcess.run(["submit", "--text", "扣扣：12345678 出售", "--reporter", "u1"], databaseURL: intake.url)
            #expect(submit.status == .exit(0), "\(submit.stderr)")
            #expect(submit.stdout.hasPrefix("accepted report"))
            let again = try await TiplineProcess.run(["submit", "--text", "扣扣：12345678 出售", "--reporter", "u1"], databaseURL: intake.url)
            #expect(again.stdout.hasPrefix("duplicate"), "\(again.stderr)")
            let database = Database(config: ConnectionConfig(conninfo: intake.url), maxConnections: 1)
            defer { Task { await database.shutdown() } }
            await Self.expectRefused([
                "SELECT * FROM offenders", "SELECT * FROM contacts", "SELECT body FROM reports",
                "SELECT reporter_hash FROM reports", "DELETE FROM reports", "DELETE FROM jobs",
                "UPDATE reports SET state = 'dead'", "SELECT * FROM escalations",
                // A report that skips the queue: done, with a seller and an outcome of its choosing (migration 0012).
                """
                INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at, state, outcome, offender_id, level)
                VALUES ('forged', 'f-1', 'app', decode(repeat('ab', 32), 'hex'), 'x', now(), 'done', 'escalated', 1, 'refer')
                """,
                "INSERT INTO jobs (report_id, state, attempt) SELECT id, 'running', 4 FROM reports",
                "UPDATE settings SET value = 'x'", "DELETE FROM settings",
            ], on: database, as: "intake")
            #expect(try await database.query("SELECT count(*) FROM reports").one().decode(Int.self, at: 0) == 1)
        }
    }

    @Test("the worker role can drain the queue but delete no report, seller, contact or escalation; the admin role can read status but change nothing")
    func workerAndAdmin() async throws {
        try await TestDatabase.with { db in
            _ = try await QueueTests.submit(["V信: roles_test1", "V信: roles_test1"], to: db)
            let worker = try await Self.login("tipline_worker", in: db)
            let run = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: worker.url)
            #expect(run.status == .exit(0), "\(run.stderr.suffix(1500))")
            #expect(try await db.int("SELECT count(*) FROM reports WHERE state = 'done'") == 2)
            // No foreign key would notice a deleted report or seller (migration 0009), so a worker may delete neither.
            let workerDatabase = Database(config: ConnectionConfig(conninfo: worker.url), maxConnections: 1)
            defer { Task { await workerDatabase.shutdown() } }
            await Self.expectRefused(["reports", "offenders", "contacts", "escalations", "workers", "settings"].map { "DELETE FROM \($0)" }
                + [
                    // Nor write what no worker statement writes (migration 0012): the outbox, a
                    // report's text or reporter, new reports or jobs, the key's derivation or fingerprint.
                    "UPDATE escalations SET to_level = 'none'", "UPDATE reports SET body = 'x'",
                    "UPDATE reports SET reporter_hash = decode(repeat('ab', 32), 'hex')",
                    "INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at) VALUES ('w', 'w-1', 'app', decode(repeat('ab', 32), 'hex'), 'x', now())",
                    "INSERT INTO jobs (report_id) SELECT id FROM reports", "UPDATE settings SET value = 'x'",
                    // Nor record a key for intake to be held to (migration 0014: workers need none).
                    "INSERT INTO settings (name, value) VALUES ('reporter_key_derivation', 'none')",
                    "UPDATE jobs SET report_id = report_id",
                    "UPDATE contacts SET value = 'x'",
                ], on: workerDatabase, as: "worker")
            #expect(try await db.int("SELECT count(*) FROM reports") == 2)
            // A finished report cannot be queued again, by the intake role or anyone (a trigger):
            // it would be counted twice. `dead retry` makes a dead report pending first.
            let intake = try await Self.login("tipline_intake", in: db)
            let intakeDatabase = Database(config: ConnectionConfig(conninfo: intake.url), maxConnections: 1)
            defer { Task { await intakeDatabase.shutdown() } }
            await Self.expectRefused(["INSERT INTO jobs (report_id) SELECT id FROM reports"], on: intakeDatabase, as: "intake",
                                     with: .checkViolation)
            await Self.expectRefused(["INSERT INTO jobs (report_id) SELECT id FROM reports"], on: db.database, as: "owner",
                                     with: .checkViolation)
            #expect(try await db.int("SELECT count(*) FROM jobs") == 0)
            // Nor with a temporary table called `reports` standing in for the real one.
            let done = try await db.int("SELECT min(id)::int FROM reports")
            let shadowed = try Connection.connect(ConnectionConfig(conninfo: intake.url))
            try shadowed.execute("CREATE TEMP TABLE reports (id bigint, state text)")
            try shadowed.execute("INSERT INTO reports VALUES (\(done), 'pending')")
            Self.expectRefused("INSERT INTO public.jobs (report_id) VALUES (\(done))", on: shadowed, as: "intake", with: [.checkViolation])
            // Nor run the check itself, as its owner, from a trigger of its own (it share-locks reports).
            try shadowed.execute("CREATE TEMP TABLE probe (report_id bigint)")
            Self.expectRefused("""
                CREATE TRIGGER probe AFTER INSERT ON probe REFERENCING NEW TABLE AS queued_jobs
                   FOR EACH STATEMENT EXECUTE FUNCTION public.jobs_only_for_pending_reports()
                """, on: shadowed, as: "intake", with: [.insufficientPrivilege])
            // Nor from a snapshot taken while the report was still pending (a worker finishes it meanwhile).
            // (q0 and q1 are the reports above again: duplicates; q2 is new.)
            let pending = try #require(try await QueueTests.submit(["V信: roles_test1", "V信: roles_test1", "V信: roles_test2"], to: db).last)
            let stale = try Connection.connect(ConnectionConfig(conninfo: intake.url))
            try stale.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            #expect(try stale.query("SELECT state FROM reports WHERE id = \(pending)").one().decode(String.self, at: 0) == "pending")
            #expect(try await TiplineProcess.run(["work", "--until-idle"], databaseURL: worker.url).status == .exit(0))
            Self.expectRefused("INSERT INTO jobs (report_id) VALUES (\(pending))", on: stale, as: "intake",
                               with: [.serializationFailure, .checkViolation])
            _ = try? stale.execute("ROLLBACK")
            #expect(try await db.int("SELECT count(*) FROM jobs") == 0)
            let admin = try await Self.login("tipline_admin", in: db)
            let status = try await TiplineProcess.run(["status"], databaseURL: admin.url)
            #expect(status.status == .exit(0) && status.stdout.contains("done 3"), "\(status.stderr)")
            let database = Database(config: ConnectionConfig(conninfo: admin.url), maxConnections: 1)
            defer { Task { await database.shutdown() } }
            await #expect(throws: PostgresError.self) { try await database.execute("DELETE FROM jobs") }
            await #expect(throws: PostgresError.self) { try await database.execute("UPDATE offenders SET level = 'none'") }
            // A write command run with that role says which rule it met, in one line.
            let setLevel = try await TiplineProcess.run(["offender", "set-level", "1", "review", "--reason", "check"], databaseURL: admin.url)
            #expect(setLevel.status == .exit(1))
            #expect(setLevel.stderr.contains("permission denied") && setLevel.stderr.contains("README, Database roles"), "\(setLevel.stderr)")
        }
    }
}
