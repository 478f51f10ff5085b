import BloodMatchStore
import Foundation
import Logging
import PostgresNIO

/// A throwaway database on the test server, migrated to the current schema, dropped afterwards.
///
/// The server is the embedded cluster (`Jobs/db.sh start`, socket from `BLOODMATCH_DB_SOCKET` or
/// `.pgdata/socket-path`) or `DATABASE_URL` (whose user needs CREATEDB). Tests fail, never skip,
/// when it cannot be reached.
public struct TestDatabase: Sendable {
    /// The database name.
    public let name: String
    /// The administrator's configuration.
    public let admin: DatabaseConfiguration
    /// A quiet logger.
    public let logger: Logger

    /// The configuration for a role inside this test database.
    public func configuration(role: DatabaseConfiguration.Role) -> DatabaseConfiguration {
        var config = admin
        config.database = name
        config.maximumConnections = 8
        if ProcessInfo.processInfo.environment["DATABASE_URL"] == nil {
            config.username = role.rawValue
            config.setRole = nil
        } else {
            config.setRole = role.rawValue
        }
        return config
    }

    /// Runs `body` against a pool logged in as a new operator of `role`'s group (a login of its
    /// own, authenticated by password; dropped with the database).
    public func withOperator<T: Sendable>(_ role: OperatorRole, _ body: @Sendable (Database) async throws -> T) async throws -> T {
        let login = "\(name.dropFirst(3))_\(role.rawValue.prefix(3))\(UUID().uuidString.prefix(4).lowercased())"
        let password = PostgresOperatorStore.generatePassword()
        try await with(.owner) { db in try await PostgresOperatorStore(database: db).add(name: login, role: role, password: password) }
        var config = configuration(role: .app)
        config.username = login
        config.password = password
        config.setRole = nil
        return try await Database.with(config, logger: logger, body)
    }

    /// Runs `body` against a pool for `role`.
    public func with<T: Sendable>(_ role: DatabaseConfiguration.Role, _ body: @Sendable (Database) async throws -> T) async throws -> T {
        try await Database.with(configuration(role: role), logger: logger, body)
    }

    public static func adminConfiguration() throws -> DatabaseConfiguration {
        let env = ProcessInfo.processInfo.environment
        if let url = env["DATABASE_URL"], !url.isEmpty {
            var config = try DatabaseConfiguration.parse(url: url, role: .owner)
            config.setRole = nil
            config.connectTimeout = .seconds(30)
            return config
        }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let socket = env["BLOODMATCH_DB_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (try? String(contentsOf: repo.appendingPathComponent(".pgdata/socket-path"), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let socket else {
            throw DatabaseUnavailableError(target: "test server", underlying: "no DATABASE_URL and no embedded cluster; run Jobs/db.sh start")
        }
        // A generous connect timeout: tests share a small machine with parallel suites; the
        // production default (5 s) and its fail-safe answers are tested with their own settings.
        return DatabaseConfiguration(endpoint: .socket(path: socket), username: "postgres", database: "postgres",
                                     maximumConnections: 2, connectTimeout: .seconds(30))
    }

    /// Creates a fresh migrated database, runs `body`, and drops the database.
    public static func withFresh<T: Sendable>(migrate: Bool = true, _ body: @Sendable (TestDatabase) async throws -> T) async throws -> T {
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        let logger = quiet
        let admin = try adminConfiguration()
        let name = "bm_test_\(UUID().uuidString.prefix(8).lowercased())"
        try await Database.with(admin, logger: logger) { db in
            try await db.client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) OWNER bloodmatch_owner TEMPLATE template0"), logger: logger)
            return ()
        }
        let test = TestDatabase(name: name, admin: admin, logger: logger)
        do {
            if migrate {
                _ = try await test.with(.owner) { db in
                    try await MigrationRunner(database: db, migrations: try Migration.bundled()).migrate()
                }
            }
            let value = try await body(test)
            try await test.drop()
            return value
        } catch {
            try? await test.drop()
            throw error
        }
    }

    public func drop() async throws {
        try await Database.with(admin, logger: logger) { db in
            try await db.client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
            // The operator logins made for this database (`withOperator`).
            var logins: [String] = []
            for try await (login,) in try await db.client.query(PostgresQuery(
                unsafeSQL: "SELECT rolname::text FROM pg_roles WHERE rolname LIKE '\(name.dropFirst(3))\\_%'"), logger: logger).decode((String,).self) {
                logins.append(login)
            }
            for login in logins {
                try await db.client.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(login)"), logger: logger)
            }
            return ()
        }
    }
}
