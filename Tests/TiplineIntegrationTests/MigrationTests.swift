import Foundation
import Postgres
import Testing
import TiplineStore

@Suite("migrations")
struct MigrationTests {
    @Test("tipline --version names the schema the binary expects: the last file in migrations/")
    func versionNamesTheSchema() async throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: ProjectTree.root.appendingPathComponent("migrations").path)
        let last = try #require(files.filter { $0.hasSuffix(".sql") }.sorted().last)
        let run = try await TiplineProcess.run(["--version"], databaseURL: nil, timeout: 30)
        #expect(run.status == .exit(0), "\(run.stderr)")
        #expect(run.stdout.contains("database schema \(Int(last.prefix(4))!) (migrations/ up to \(last.dropLast(4)))"), "\(run.stdout)")
    }

    @Test("tipline migrate run by three processes at once leaves one correct schema")
    func concurrentMigrate() async throws {
        try await TestDatabase.with(migrate: false) { db in
            let processes = try (0..<3).map { _ in try TiplineProcess(["migrate"], databaseURL: db.url) }
            // The three meet for certain: the migrator's advisory lock ("tipline" in ASCII) is held
            // elsewhere until all three wait for it, then let go.
            try await db.whileAnotherSessionHolds("SELECT pg_advisory_xact_lock(\(Int64(0x7469_706c_696e_65)))") {
                for process in processes { try process.start() }
                try await waitUntil("the three processes wait for the migration lock") {
                    try await db.int("""
                        SELECT count(*)::int FROM pg_locks
                         WHERE locktype = 'advisory' AND NOT granted
                           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        """) == 3
                }
            }
            for process in processes {
                #expect(try await process.wait() == .exit(0), "stderr: \(process.stderr)")
            }
            let versions = try await db.database.query("SELECT version, checksum FROM schema_migrations ORDER BY version")
            #expect(try versions.map { try $0.decode(Int.self, at: 0) } == Migration.embedded.map(\.version))
            #expect(try versions.map { try $0.decode(String.self, at: 1) } == Migration.embedded.map(\.checksum))
            #expect(try await db.int("SELECT count(*) FROM ladder_policies") == 1)
            let again = try await TiplineProcess.run(["migrate"], databaseURL: db.url)
            #expect(again.stdout.contains("up to date"))
        }
    }

    @Test("a migration changed after it was applied is refused")
    func changedMigrationIsRefused() async throws {
        try await TestDatabase.with { db in
            var edited = Migration.embedded
            edited[0].sql += "\n-- edited"
            await #expect(throws: MigrationError.self) {
                _ = try await Migrator(migrations: edited).migrate(db.database)
            }
        }
    }

    @Test("tipline migrate shows what a migration tells the server to say: 0012 keeping its function when it may not hand it to the tables' owner")
    func migrateShowsMigrationNotices() async throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let (owner, migrator) = ("tip_owner_\(suffix)", "tip_migrator_\(suffix)")
        try await TestDatabase.with(migrate: false) { db in
            // A migrating user who owns the schema but not `reports`, handed to a role it is not in.
            try await db.database.execute(Query(sql: """
                DO $$ DECLARE r text; BEGIN
                    FOREACH r IN ARRAY ARRAY['tipline_intake', 'tipline_worker', 'tipline_admin'] LOOP
                        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN EXECUTE format('CREATE ROLE %I NOLOGIN', r); END IF;
                    END LOOP;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$
                """, binds: []))
            for statement in ["CREATE ROLE \(owner) NOLOGIN", "CREATE ROLE \(migrator) LOGIN", "ALTER SCHEMA public OWNER TO \(migrator)"] {
                try await db.database.execute(Query(sql: statement, binds: []))
            }
            var components = try #require(URLComponents(string: db.url))
            components.user = migrator
            let url = try #require(components.string)
            let asMigrator = Database(config: ConnectionConfig(conninfo: url), maxConnections: 1)
            _ = try await Migrator(migrations: Migration.embedded.filter { $0.version < 12 }).migrate(asMigrator)
            await asMigrator.shutdown()
            for statement in ["REVOKE ALL ON ALL TABLES IN SCHEMA public FROM tipline_intake, tipline_worker, tipline_admin",
                              "ALTER TABLE reports OWNER TO \(owner)"] {
                try await db.database.execute(Query(sql: statement, binds: []))
            }
            let migrate = try await TiplineProcess.run(["migrate"], databaseURL: url)
            #expect(migrate.status == .exit(0) && migrate.stdout.contains("applied migrations 12, 13, 14"), "\(migrate.stderr)")
            #expect(migrate.stderr.contains(
                "migration 12: NOTICE: jobs_only_for_pending_reports() stays owned by \(migrator): it may not hand it to \(owner)\n"),
                "\(migrate.stderr)")
            #expect(!migrate.stderr.contains("skipping"), "a notice of the runner's own statements was shown: \(migrate.stderr)")
            let again = try await TiplineProcess.run(["migrate"], databaseURL: url)
            #expect(again.status == .exit(0) && !again.stderr.contains("NOTICE"), "\(again.stderr)")
        }
        let admin = Database(config: ConnectionConfig(conninfo: try TestDatabase.adminURL), maxConnections: 1)
        try await admin.execute(Query(sql: "DROP ROLE \(owner), \(migrator)", binds: []))
        await admin.shutdown()
    }

    @Test("0012 grants nothing to roles this database never granted anything (migrated before they existed)")
    func narrowerGrantsOnlyWhereGranted() async throws {
        try await TestDatabase.with(migrate: false) { db in
            _ = try await Migrator(migrations: Migration.embedded.filter { $0.version < 12 }).migrate(db.database)
            try await db.database.execute("""
                REVOKE ALL ON ALL TABLES IN SCHEMA public FROM tipline_intake, tipline_worker, tipline_admin
                """)
            _ = try await Migrator().migrate(db.database)
            #expect(try await db.int("""
                SELECT count(*) FROM information_schema.column_privileges
                 WHERE table_schema = 'public' AND grantee IN ('tipline_intake', 'tipline_worker', 'tipline_admin')
                """) == 0)
            #expect(try await db.int("""
                SELECT count(*) FROM information_schema.table_privileges
                 WHERE table_schema = 'public' AND grantee IN ('tipline_intake', 'tipline_worker', 'tipline_admin')
                """) == 0)
        }
    }

    @Test("0007 moves each report's contact links into its row, ascending, and leaves reports without links alone")
    func contactLinksMoveIntoReports() async throws {
        try await TestDatabase.with(migrate: false) { db in
            _ = try await Migrator(migrations: Migration.embedded.filter { $0.version < 7 }).migrate(db.database)
            try await db.database.execute("""
                WITH r AS (
                    INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at)
                    SELECT 'm', g::text, 'app', sha256(g::text::bytea), 'ad ' || g, now() FROM generate_series(1, 3) g
                    RETURNING id, external_id
                ), c AS (
                    INSERT INTO contacts (kind, value) VALUES ('qq', '12345'), ('wechat', 'abc_123'), ('phone', '13800138000')
                    RETURNING id, value
                )
                INSERT INTO report_contacts (report_id, contact_id)
                SELECT r.id, c.id FROM r, c
                 WHERE (r.external_id = '1') OR (r.external_id = '2' AND c.value = 'abc_123')
                """)
            _ = try await Migrator().migrate(db.database)
            let rows = try await db.database.query("""
                SELECT external_id, coalesce(array_to_string(contact_ids, ','), 'null'),
                       (SELECT coalesce(string_agg(c.value, ',' ORDER BY c.id), '') FROM unnest(contact_ids) AS l (id) JOIN contacts c ON c.id = l.id)
                  FROM reports ORDER BY external_id
                """)
            let ids = try await db.database.query("SELECT string_agg(id::text, ',' ORDER BY id) FROM contacts").one().decode(String.self, at: 0)
            let wechat = try await db.int("SELECT id FROM contacts WHERE value = 'abc_123'")
            #expect(try rows.map { try $0.decode(String.self, at: 1) } == [ids, "\(wechat)", "null"])
            #expect(try rows[0].decode(String.self, at: 2) == "12345,abc_123,13800138000")
            #expect(try await db.int("SELECT count(*) FROM pg_tables WHERE tablename = 'report_contacts'") == 0)
        }
    }

    @Test("0008 counts the escalations of the last days by level, adding to the counter rows already there")
    func escalationsIntoTallies() async throws {
        try await TestDatabase.with(migrate: false) { db in
            _ = try await Migrator(migrations: Migration.embedded.filter { $0.version < 8 }).migrate(db.database)
            try await db.database.execute("""
                WITH o AS (INSERT INTO offenders (level) VALUES ('refer') RETURNING id)
                INSERT INTO escalations (offender_id, from_level, to_level, created_at)
                SELECT o.id, f, t, date_trunc('minute', now()) - make_interval(days => d)
                  FROM o, (VALUES ('none', 'review', 0), ('review', 'restrict', 0), ('restrict', 'refer', 0),
                                  ('none', 'review', 1), ('none', 'review', 5)) AS e (f, t, d)
                """)
            // A completion counted in the same minute before the migration keeps its count.
            try await db.database.execute("""
                INSERT INTO report_tallies (minute, backend, done) VALUES (date_trunc('minute', now()), 0, 7)
                """)
            _ = try await Migrator().migrate(db.database)
            let sums = try await db.database.query("""
                SELECT sum(done)::int, sum(to_review)::int, sum(to_restrict)::int, sum(to_suspend)::int, sum(to_refer)::int
                  FROM report_tallies
                """).one()
            // The one from 5 days ago is past anything status reads; the others count once each.
            #expect(try [0, 1, 2, 3, 4].map { try sums.decode(Int.self, at: $0) } == [7, 2, 1, 0, 1])
        }
    }

    @Test("a worker refuses a database whose schema is not its binary's: none, older or newer, and says which")
    func workerRequiresCurrentSchema() async throws {
        try await TestDatabase.with(migrate: false) { db in
            let none = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            #expect(none.status == .exit(1))
            #expect(none.stderr.contains("no Tipline schema yet: run `tipline migrate`"), "\(none.stderr)")

            let last = try #require(Migration.embedded.last).version
            _ = try await Migrator(migrations: Migration.embedded.filter { $0.version < last }).migrate(db.database)
            let older = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            #expect(older.status == .exit(1))
            #expect(older.stderr.contains("lacks migration(s) \(last) that this binary needs"), "\(older.stderr)")

            _ = try await Migrator().migrate(db.database)
            try await db.database.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')")
            let newer = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            #expect(newer.status == .exit(1))
            #expect(newer.stderr.contains("has migration(s) 9999 that this binary does not know"), "\(newer.stderr)")

            // `migrate` does not call such a schema up to date.
            let migrate = try await TiplineProcess.run(["migrate"], databaseURL: db.url)
            #expect(migrate.status == .exit(1))
            #expect(migrate.stderr.contains("has migration(s) 9999 that this binary does not know"), "\(migrate.stderr)")

            try await db.database.execute("DELETE FROM schema_migrations WHERE version = 9999")
            let current = try await TiplineProcess.run(["work", "--until-idle"], databaseURL: db.url)
            #expect(current.status == .exit(0), "\(current.stderr)")
        }
    }

    @Test("every command on a database never migrated says to run tipline migrate, in one line")
    func commandsBeforeMigrate() async throws {
        try await TestDatabase.with(migrate: false) { db in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("unmigrated-\(UUID().uuidString).jsonl").path
            try #"{"external_id":"e1","channel":"app","reporter":"u1","text":"V信: abc_123x"}"#.write(toFile: path, atomically: true, encoding: .utf8)
            for args in [["status"], ["export"], ["offender", "1"], ["dead", "list"], ["policy", "show"], ["escalations"],
                         ["token", "list"], ["submit", "--file", path]] {
                let result = try await TiplineProcess.run(args, databaseURL: db.url)
                #expect(result.status == .exit(1), "\(args): \(result.stderr)")
                #expect(result.stderr.contains("run `tipline migrate` first"), "\(args): \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(args): \(result.stderr)")
            }
        }
    }

    @Test("the migrations embedded in the binary match migrations/*.sql")
    func embeddedMigrationsAreCurrent() throws {
        let directory = ProjectTree.root.appendingPathComponent("migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files.count == Migration.embedded.count, "run scripts/gen-migrations")
        for (file, migration) in zip(files, Migration.embedded) {
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            #expect(file == String(format: "%04d_%@.sql", migration.version, migration.name))
            #expect(sql.trimmingCharacters(in: .newlines) == migration.sql.trimmingCharacters(in: .newlines),
                    "\(file) differs from the embedded copy: run scripts/gen-migrations")
        }
    }
}
