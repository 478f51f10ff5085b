import Crypto
import Foundation
import Logging
import PostgresNIO

/// One versioned, forward-only schema migration file, `NNNN_name.sql`.
public struct Migration: Sendable, Hashable {
    /// The number in the file name.
    public var version: Int
    /// The rest of the file name, without `.sql`.
    public var name: String
    /// The SQL text.
    public var sql: String
    /// SHA-256 of the file's bytes, hex: an applied file must never change.
    public var checksum: String

    /// Creates a migration from its file name and contents; nil if the name is not `NNNN_name.sql`.
    public init?(fileName: String, contents: Data) {
        guard fileName.hasSuffix(".sql"), let underscore = fileName.firstIndex(of: "_"),
              let version = Int(fileName[..<underscore]), version > 0,
              let sql = String(data: contents, encoding: .utf8)
        else { return nil }
        self.version = version
        self.name = String(fileName[fileName.index(after: underscore)...].dropLast(4))
        self.sql = sql
        self.checksum = SHA256.hash(data: contents).lowercaseHex
    }

    /// Files whose comment lines were amended after they were applied, per version: the checksum
    /// databases recorded (`applied`) and the checksum of the amended file (`amended`). A database
    /// that recorded `applied` is accepted only while the file is exactly the amended one; its
    /// record is then moved to the amended file, once, with an event. Nothing else about an applied
    /// file may change. (The earlier text itself is not kept: the pair was checked when the
    /// amendment was made, by putting the old line back.)
    public static let commentAmendments: [Int: [(applied: String, amended: String)]] = [
        // 0002: one comment line's citation of a file outside the repository became Data/SOURCES.md §S21.
        2: [(applied: "198b048c33b9bde842f1c420e1de1e627a3d7bb1cf94e0dfa2f2cb468c354511",
             amended: "4532ddd4c956a41447784abad74c4b6a7a7e044ebf94a3b3361746c401674352")],
    ]

    /// Whether `recorded`, a checksum a database recorded for this version, is the file before a
    /// listed comment amendment and this file is exactly the amended one.
    public func acceptsAmendment(ofRecorded recorded: String) -> Bool {
        Self.commentAmendments[version, default: []].contains { $0.applied == recorded && $0.amended == checksum }
    }

    /// The migrations shipped with this build, in version order.
    public static func bundled() throws -> [Migration] {
        guard let folder = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw MigrationError.bundleMissing
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }
        return try names.compactMap { name in
            Migration(fileName: name, contents: try Data(contentsOf: folder.appendingPathComponent(name)))
        }.sorted { $0.version < $1.version }
    }
}

/// Why migrating stopped. Nothing was changed when any of these is thrown.
public enum MigrationError: Error, Sendable, CustomStringConvertible {
    /// The migration files are missing from the build.
    case bundleMissing
    /// Roles the schema grants to do not exist on the server.
    case missingRoles([String])
    /// An applied migration's file has changed since it was applied.
    case changedAfterApply(version: Int, name: String, applied: String, now: String)
    /// An applied migration is not in this build at all.
    case unknownApplied(version: Int, name: String)
    /// The database is at a newer schema than this build knows.
    case databaseNewer(databaseVersion: Int, buildVersion: Int)
    /// A statement failed; the whole migration run was rolled back.
    case statementFailed(version: Int, name: String, statement: String, error: String)

    public var description: String {
        switch self {
        case .bundleMissing:
            "the migration files are missing from this build (BloodMatchStore resources)"
        case .missingRoles(let roles):
            "roles \(roles.joined(separator: ", ")) do not exist; create them first (Jobs/db.sh start does it for the embedded cluster). Nothing was changed."
        case .changedAfterApply(let version, let name, let applied, let now):
            "migration \(version) (\(name)) was changed after it was applied (applied sha256 \(applied.prefix(12))…, file now \(now.prefix(12))…); write a new migration instead. Nothing was changed."
        case .unknownApplied(let version, let name):
            "the database has migration \(version) (\(name)) that this build does not ship. Nothing was changed."
        case .databaseNewer(let databaseVersion, let buildVersion):
            "the database schema is at version \(databaseVersion), newer than this build's \(buildVersion); use a newer bloodmatch. Nothing was changed."
        case .statementFailed(let version, let name, let statement, let error):
            "migration \(version) (\(name)) failed at: \(statement.prefix(120)) — \(error). Rolled back; nothing was changed."
        }
    }
}

/// What `migrate` did.
public struct MigrationReport: Sendable {
    /// Versions applied by this run.
    public var applied: [Int]
    /// The schema version now.
    public var currentVersion: Int
}

/// Applies pending migrations as the schema owner, all in one transaction, serialised by an
/// advisory lock so two runs never interleave.
public struct MigrationRunner: Sendable {
    /// The connection pool, logged in as (or set to) `bloodmatch_owner`.
    public let database: Database
    /// The migrations to apply, in order.
    public let migrations: [Migration]
    /// Roles the schema grants to; all must exist before anything is changed.
    public let requiredRoles: [String]

    /// Creates a runner.
    public init(database: Database, migrations: [Migration],
                requiredRoles: [String] = DatabaseConfiguration.Role.allCases.map(\.rawValue)) {
        self.database = database
        self.migrations = migrations
        self.requiredRoles = requiredRoles
    }

    /// Brings the schema up to date; idempotent.
    public func migrate() async throws -> MigrationReport {
        let logger = database.logger
        let needed = requiredRoles
        let migrations = self.migrations
        return try await database.client.withConnection { conn in
            var present: Set<String> = []
            for try await (name,) in try await conn.query(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(\(needed))", logger: logger
            ).decode((String,).self) { present.insert(name) }
            let missing = needed.filter { !present.contains($0) }
            guard missing.isEmpty else { throw MigrationError.missingRoles(missing) }

            do {
                return try await conn.withTransaction(logger: logger) { conn in
                    try await conn.query("SELECT pg_advisory_xact_lock(hashtext('bloodmatch.migrate'))", logger: logger)
                    try await conn.query("CREATE SCHEMA IF NOT EXISTS bm_meta", logger: logger)
                    try await conn.query("""
                        CREATE TABLE IF NOT EXISTS bm_meta.schema_migrations (
                          version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
                          applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL DEFAULT current_user)
                        """, logger: logger)
                    var applied: [Int: (String, String)] = [:]
                    for try await (version, name, sum) in try await conn.query(
                        "SELECT version, name, sha256 FROM bm_meta.schema_migrations", logger: logger
                    ).decode((Int, String, String).self) { applied[version] = (name, sum) }

                    let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
                    let buildVersion = migrations.map(\.version).max() ?? 0
                    if let newest = applied.keys.max(), newest > buildVersion {
                        throw MigrationError.databaseNewer(databaseVersion: newest, buildVersion: buildVersion)
                    }
                    for (version, (name, sum)) in applied.sorted(by: { $0.key < $1.key }) {
                        guard let file = known[version] else { throw MigrationError.unknownApplied(version: version, name: name) }
                        guard file.checksum != sum else { continue }
                        // Only listed comment amendments: the exact checksum that was applied, and this file the amended one.
                        guard file.acceptsAmendment(ofRecorded: sum) else {
                            throw MigrationError.changedAfterApply(version: version, name: name, applied: sum, now: file.checksum)
                        }
                        try await conn.query("""
                            UPDATE bm_meta.schema_migrations SET sha256 = \(file.checksum) WHERE version = \(version)
                            """, logger: logger)
                        let payload = #"{"version":\#(version),"name":"\#(name)","sha256_applied":"\#(sum)","sha256_now":"\#(file.checksum)","change":"comment lines only"}"#
                        try await conn.query("""
                            INSERT INTO bm.event_log (actor, action, subject, payload)
                            VALUES ('migrate', 'migration.comments_amended', \("schema:\(version)"), \(payload)::jsonb)
                            """, logger: logger)
                    }
                    var done: [Int] = []
                    for migration in migrations where applied[migration.version] == nil {
                        for statement in SQLScript.statements(in: migration.sql) {
                            do {
                                // Rows are read: a statement's error that follows its row
                                // description (a `SELECT f()` whose function raises) surfaces here,
                                // naming this statement, not the next one that finds the
                                // transaction aborted.
                                _ = try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                            } catch {
                                throw MigrationError.statementFailed(
                                    version: migration.version, name: migration.name, statement: statement,
                                    error: (error as? PSQLError)?.serverInfo?[.message] ?? String(describing: error))
                            }
                        }
                        try await conn.query("""
                            INSERT INTO bm_meta.schema_migrations (version, name, sha256)
                            VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                            """, logger: logger)
                        let payload = #"{"version":\#(migration.version),"name":"\#(migration.name)","sha256":"\#(migration.checksum)"}"#
                        try await conn.query("""
                            INSERT INTO bm.event_log (actor, action, subject, payload)
                            VALUES ('migrate', 'migration.applied', \("schema:\(migration.version)"), \(payload)::jsonb)
                            """, logger: logger)
                        done.append(migration.version)
                    }
                    return MigrationReport(applied: done, currentVersion: max(buildVersion, applied.keys.max() ?? 0))
                }
            } catch let error as PostgresTransactionError {
                throw error.closureError ?? error.commitError ?? error
            }
        }
    }
}
