import ArgumentParser
import Postgres
import TiplineStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the migrations this binary carries, in order.",
        discussion: """
            Each migration runs in its own transaction under an advisory lock, so several processes may \
            migrate at once: each migration is applied once, in order, by whichever process takes the \
            lock first (the output says which ones this process applied). A migration whose file \
            changed after it was applied is refused. What a migration has the server say (a step it \
            skipped, a grant that granted nothing) is shown on stderr, after its number.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let (report, roles) = try await connection.withDatabase(application: "tipline-migrate") { database in
            (try await Migrator().migrate(database), try await Self.roles(in: database))
        }
        if report.applied.isEmpty {
            try Output.line("schema is up to date (\(report.alreadyApplied.count) migrations)")
        } else {
            try Output.line("applied migrations \(report.applied.map(String.init).joined(separator: ", "))"
                  + " (\(report.alreadyApplied.count) already applied)")
        }
        for (version, notice) in report.notices {
            Output.errorLine("migration \(version): \(notice)")
        }
        // Migration 0004 creates the roles only when the migrating user may (its notice says so
        // only on the run that skipped them); later migrations grant them what they need only when
        // they exist. Either gap leaves the roles without access, which is said on every run.
        if !roles.missing.isEmpty {
            Output.errorLine("""
                note: the roles \(roles.missing.joined(separator: ", ")) do not exist (the migrating user may not create \
                roles), so this database grants them nothing and every component must connect as the schema owner \
                (README: Database roles)
                """)
        } else if !roles.ungranted.isEmpty {
            Output.errorLine("""
                note: this database grants nothing to \(roles.ungranted.joined(separator: ", ")) (it was migrated before \
                they existed): a user in them is refused; connect as the schema owner, or grant them what \
                migrations 0004, 0012 and 0014 grant (README: Database roles)
                """)
        }
    }

    /// The roles of migration 0004 that do not exist, and those that exist with none of its grants
    /// (`schema_migrations`, which 0004 lets all three read).
    static func roles(in database: Database) async throws -> (missing: [String], ungranted: [String]) {
        let rows = try await database.query("""
            SELECT n, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = n),
                   CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = n) THEN has_table_privilege(n, 'schema_migrations', 'SELECT') END
              FROM unnest(\(["tipline_intake", "tipline_worker", "tipline_admin"])::text[]) AS n
            """)
        var missing: [String] = []
        var ungranted: [String] = []
        for row in rows {
            let name = try row.decode(String.self, at: 0)
            if !(try row.decode(Bool.self, at: 1)) { missing.append(name) } else if try row.decodeIfPresent(Bool.self, at: 2) == false {
                ungranted.append(name)
            }
        }
        return (missing, ungranted)
    }
}
