import BloodMatchStore
import Foundation
import PostgresNIO
import Testing

@Suite("Schema migrations against PostgreSQL")
struct MigrationTests {
    @Test("migrate is idempotent and records each version with its checksum")
    func idempotent() async throws {
        try await TestDatabase.withFresh { test in
            let report = try await test.with(.owner) { db in
                try await MigrationRunner(database: db, migrations: try Migration.bundled()).migrate()
            }
            #expect(report.applied.isEmpty)
            let bundled = try Migration.bundled()
            #expect(report.currentVersion == bundled.last?.version)
            let rows = try await test.with(.owner) { db in
                var out: [(Int, String)] = []
                for try await row in try await db.client.query("SELECT version, sha256 FROM bm_meta.schema_migrations ORDER BY version", logger: db.logger).decode((Int, String).self) {
                    out.append(row)
                }
                return out.map { "\($0.0):\($0.1)" }
            }
            #expect(rows == bundled.map { "\($0.version):\($0.checksum)" })
        }
    }

    @Test("a rationale large enough to be compressed is stored with lz4; the value read back is the one written")
    func largeValuesUseLZ4() async throws {
        try await TestDatabase.withFresh { test in
            let (method, same) = try await test.with(.owner) { db in
                let value = "jsonb_build_object('notes', (SELECT jsonb_agg(repeat('rationale ', 20) || g) FROM generate_series(1, 200) AS g))"
                try await db.client.query(PostgresQuery(unsafeSQL: """
                    INSERT INTO bm.decisions (decision_id, request_id, requested_by, outcome, request, rationale, policy_version, evaluated_at)
                    VALUES (gen_random_uuid(), 'test:lz4', 'test', 'fulfilled', '{}', \(value), 'test', now())
                    """), logger: db.logger)
                var out: (String?, Bool) = (nil, false)
                for try await row in try await db.client.query(PostgresQuery(unsafeSQL: """
                    SELECT pg_column_compression(rationale), rationale = \(value) FROM bm.decisions WHERE request_id = 'test:lz4'
                    """), logger: db.logger).decode((String?, Bool).self) { out = row }
                return out
            }
            #expect(method == "lz4" && same)
        }
    }

    @Test("a changed applied file is refused and nothing changes")
    func changedFileRefused() async throws {
        try await TestDatabase.withFresh { test in
            var migrations = try Migration.bundled()
            let first = migrations[0]
            migrations[0] = try #require(Migration(fileName: "0001_\(first.name).sql", contents: Data((first.sql + "\n-- edited").utf8)))
            let extra = try #require(Migration(fileName: "9000_extra.sql", contents: Data("CREATE TABLE bm.should_not_exist (x int);".utf8)))
            migrations.append(extra)
            let edited = migrations
            await #expect {
                try await test.with(.owner) { db in try await MigrationRunner(database: db, migrations: edited).migrate() }
            } throws: { error in
                guard case MigrationError.changedAfterApply(let version, _, _, _) = error else { return false }
                return version == 1
            }
            let exists = try await test.with(.owner) { db in
                try await db.client.query("SELECT to_regclass('bm.should_not_exist')::text", logger: db.logger)
                    .decode((String?).self).reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(exists == [nil])
        }
    }

    @Test("an applied file whose listed comment lines were amended is accepted from its exact earlier checksum, once, with an event")
    func commentAmendmentAccepted() async throws {
        try await TestDatabase.withFresh { test in
            let bundled = try Migration.bundled()
            let second = try #require(bundled.first { $0.version == 2 })
            // The checksum databases recorded when they applied 0002 before its comment was amended.
            let applied = "198b048c33b9bde842f1c420e1de1e627a3d7bb1cf94e0dfa2f2cb468c354511"
            #expect(second.acceptsAmendment(ofRecorded: applied))
            // The amendment is pinned to the amended file: the same earlier checksum is refused for any other text.
            let otherText = try #require(Migration(fileName: "0002_\(second.name).sql", contents: Data((second.sql + "\n-- edited").utf8)))
            #expect(!otherText.acceptsAmendment(ofRecorded: applied))
            @Sendable func stored(_ db: Database) async throws -> (String, Int) {
                var sum = ""
                for try await (s,) in try await db.client.query("SELECT sha256 FROM bm_meta.schema_migrations WHERE version = 2",
                                                                  logger: db.logger).decode((String,).self) { sum = s }
                var events = 0
                for try await (n,) in try await db.client.query(
                    "SELECT count(*)::int FROM bm.event_log WHERE action = 'migration.comments_amended'", logger: db.logger).decode((Int,).self) { events = n }
                return (sum, events)
            }
            try await test.with(.owner) { db in
                try await db.client.query("UPDATE bm_meta.schema_migrations SET sha256 = \(applied) WHERE version = 2", logger: db.logger)
                _ = try await MigrationRunner(database: db, migrations: bundled).migrate()
                let (sum, events) = try await stored(db)
                #expect(sum == second.checksum && events == 1)
                _ = try await MigrationRunner(database: db, migrations: bundled).migrate()
                #expect(try await stored(db) == (second.checksum, 1))
                // Any other earlier text is still a changed file.
                try await db.client.query("UPDATE bm_meta.schema_migrations SET sha256 = \(String(repeating: "0", count: 64)) WHERE version = 2", logger: db.logger)
            }
            await #expect {
                try await test.with(.owner) { db in try await MigrationRunner(database: db, migrations: bundled).migrate() }
            } throws: { error in
                guard case MigrationError.changedAfterApply(let version, _, _, _) = error else { return false }
                return version == 2
            }
        }
    }

    @Test("a database with a newer schema than the build is refused")
    func newerDatabaseRefused() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.owner) { db in
                try await db.client.query("INSERT INTO bm_meta.schema_migrations (version, name, sha256) VALUES (9999, 'future', 'x')", logger: db.logger)
            }
            await #expect {
                try await test.with(.owner) { db in try await MigrationRunner(database: db, migrations: try Migration.bundled()).migrate() }
            } throws: { error in
                guard case MigrationError.databaseNewer(let dbVersion, _) = error else { return false }
                return dbVersion == 9999
            }
        }
    }

    @Test("a missing role stops migrate with its name, before anything is created")
    func missingRoleRefused() async throws {
        try await TestDatabase.withFresh(migrate: false) { test in
            let roles = DatabaseConfiguration.Role.allCases.map(\.rawValue) + ["bloodmatch_role_that_does_not_exist"]
            await #expect {
                try await test.with(.owner) { db in
                    try await MigrationRunner(database: db, migrations: try Migration.bundled(), requiredRoles: roles).migrate()
                }
            } throws: { error in
                guard case MigrationError.missingRoles(let missing) = error else { return false }
                return missing == ["bloodmatch_role_that_does_not_exist"]
            }
            let schemas = try await test.with(.owner) { db in
                try await db.client.query("SELECT count(*)::int FROM pg_namespace WHERE nspname IN ('bm', 'bm_meta')", logger: db.logger)
                    .decode(Int.self).reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(schemas == [0])
        }
    }

    @Test("a failing statement rolls back the whole run")
    func failingStatementRollsBack() async throws {
        try await TestDatabase.withFresh(migrate: false) { test in
            var migrations = try Migration.bundled()
            migrations.append(try #require(Migration(fileName: "9001_broken.sql", contents: Data("CREATE TABLE bm.half (x int); SELECT no_such_function();".utf8))))
            let broken = migrations
            await #expect(throws: MigrationError.self) {
                try await test.with(.owner) { db in try await MigrationRunner(database: db, migrations: broken).migrate() }
            }
            let schema = try await test.with(.owner) { db in
                try await db.client.query("SELECT count(*)::int FROM pg_namespace WHERE nspname = 'bm'", logger: db.logger)
                    .decode(Int.self).reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(schema == [0])
        }
    }

    @Test("a function that raises while a statement runs is named with that statement and its message, not the next statement's")
    func raisingStatementNamed() async throws {
        try await TestDatabase.withFresh(migrate: false) { test in
            var migrations = try Migration.bundled()
            migrations.append(try #require(Migration(fileName: "9002_raises.sql", contents: Data("""
                CREATE FUNCTION bm.raise_on_purpose() RETURNS int LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'raised on purpose'; END$$;
                SELECT bm.raise_on_purpose();
                CREATE TABLE bm.after_the_raise (x int);
                """.utf8))))
            let raising = migrations
            do {
                try await test.with(.owner) { db in _ = try await MigrationRunner(database: db, migrations: raising).migrate() }
                Issue.record("a migration whose function raised was applied")
            } catch let error as MigrationError {
                guard case .statementFailed(let version, _, let statement, let message) = error else {
                    Issue.record("\(error)")
                    return
                }
                #expect(version == 9002 && statement.contains("SELECT bm.raise_on_purpose()") && message.contains("raised on purpose"),
                        "\(error)")
            }
        }
    }

    @Test("append-only tables refuse UPDATE, DELETE and TRUNCATE for the application and import roles")
    func appendOnlyPrivileges() async throws {
        try await TestDatabase.withFresh { test in
            for role in [DatabaseConfiguration.Role.app, .importer] {
                try await test.with(role) { db in
                    try await db.client.query("INSERT INTO bm.event_log (actor, action, subject) VALUES ('test', 'probe', 'x')", logger: db.logger)
                    for statement in ["UPDATE bm.event_log SET actor = 'x'", "DELETE FROM bm.event_log", "TRUNCATE bm.event_log"] {
                        await #expect(throws: (any Error).self, "\(role) \(statement)") {
                            try await db.client.query(PostgresQuery(unsafeSQL: statement), logger: db.logger)
                        }
                    }
                }
            }
            // The owner is stopped by the trigger, not only by privileges.
            try await test.with(.owner) { db in
                await #expect(throws: (any Error).self) {
                    try await db.client.query("DELETE FROM bm.event_log", logger: db.logger)
                }
            }
        }
    }

    @Test("events written before the audit chain existed join it in order, and the chain verifies")
    func chainBackfill() async throws {
        try await TestDatabase.withFresh(migrate: false) { test in
            let all = try Migration.bundled()
            try await test.with(.owner) { db in
                _ = try await MigrationRunner(database: db, migrations: all.filter { $0.version == 1 }).migrate()
                for i in 0..<5 {
                    try await db.client.query("""
                        INSERT INTO bm.event_log (actor, action, subject, payload) VALUES ('old', 'site.updated', \("site:\(i)"), '{"n": 1}')
                        """, logger: db.logger)
                }
                _ = try await MigrationRunner(database: db, migrations: all).migrate()
            }
            let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify() }
            #expect(report.isIntact, "\(report.problem?.description ?? "")")
            // one event per migration, and the five old ones
            #expect(report.rowsChecked == 5 + all.count)
            #expect(report.headChainSeq == Int64(5 + all.count))
        }
    }
}
