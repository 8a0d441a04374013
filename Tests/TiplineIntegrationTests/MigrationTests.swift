import Foundation
import Postgres
import Testing
import TiplineStore

@Suite("migrations")
struct MigrationTests {
    @Test("tipline migrate run by three processes at once leaves one correct schema")
    func concurrentMigrate() async throws {
        try await TestDatabase.with(migrate: false) { db in
            let processes = try (0..<3).map { _ in try TiplineProcess(["migrate"], databaseURL: db.url) }
            for process in processes { try process.start() }
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

    @Test("the migrations embedded in the binary match migrations/*.sql")
    func embeddedMigrationsAreCurrent() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("migrations")
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
