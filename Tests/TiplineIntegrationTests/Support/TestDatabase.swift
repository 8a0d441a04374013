import Foundation
import Postgres
import Testing
import TiplineStore

/// A database of its own for one test, on the server `scripts/test` started, migrated and
/// dropped afterwards, so tests never share rows.
struct TestDatabase {
    let name: String
    let url: String
    let database: Database

    /// The server `scripts/test` set up. Tests never skip: without it they fail and say why.
    static var adminURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["TIPLINE_TEST_ADMIN_URL"], !url.isEmpty else {
                throw TestSetupError("TIPLINE_TEST_ADMIN_URL is not set: run the suite with scripts/test, which starts PostgreSQL")
            }
            return url
        }
    }

    /// The same server, database `name`.
    static func url(for name: String) throws -> String {
        let admin = try adminURL
        if admin.contains("://"), var components = URLComponents(string: admin) {
            components.path = "/" + name
            return components.string!
        }
        return admin + " dbname=" + name
    }

    /// Runs `body` with a fresh, migrated database and drops it afterwards.
    static func with<T>(migrate: Bool = true, _ body: (TestDatabase) async throws -> T) async throws -> T {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = Database(config: ConnectionConfig(conninfo: try adminURL), maxConnections: 1)
        try await admin.execute(Query(sql: "CREATE DATABASE \(name)", binds: []))
        let url = try url(for: name)
        let database = Database(config: ConnectionConfig(conninfo: url), maxConnections: 4)
        let test = TestDatabase(name: name, url: url, database: database)
        do {
            if migrate { _ = try await Migrator().migrate(database) }
            let value = try await body(test)
            await test.tearDown(admin)
            return value
        } catch {
            await test.tearDown(admin)
            throw error
        }
    }

    /// Drops this database (ending its sessions) and creates it again under the same name,
    /// migrated and not used yet, as an operator restoring or rebuilding it would: a handle on the
    /// new one (the caller shuts it down; `database`'s connections are gone).
    func replaced() async throws -> Database {
        let admin = Database(config: ConnectionConfig(conninfo: try Self.adminURL), maxConnections: 1)
        do {
            try await admin.execute(Query(sql: "DROP DATABASE \(name) WITH (FORCE)", binds: []))
            try await admin.execute(Query(sql: "CREATE DATABASE \(name)", binds: []))
        } catch {
            await admin.shutdown()
            throw error
        }
        await admin.shutdown()
        let again = Database(config: ConnectionConfig(conninfo: url), maxConnections: 2)
        _ = try await Migrator().migrate(again)
        return again
    }

    private func tearDown(_ admin: Database) async {
        await database.shutdown()
        _ = try? await admin.execute(Query(sql: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)", binds: []))
        await admin.shutdown()
    }

    /// One integer from a query.
    func int(_ query: Query) async throws -> Int {
        try await database.query(query).one().decode(Int.self, at: 0)
    }
}

/// The test environment is not what `scripts/test` provides.
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
