import BloodMatchCore
import BloodMatchStore
import BloodMatchTestSupport
import Crypto
import Foundation
import PostgresNIO
import Testing

/// Sealing without a writer lock, the database's say over who acted, and records in the chain.
@Suite("Audit sealing, identity and records")
struct AuditSealingTests {
    /// The one value `sql` returns, as text.
    static func value(_ db: Database, _ sql: String) async throws -> String? {
        var out: String?
        for try await (v,) in try await db.client.query(PostgresQuery(unsafeSQL: "SELECT (\(sql))::text"), logger: db.logger)
            .decode((String?,).self) { out = v }
        return out
    }

    static func superuser(_ test: TestDatabase, _ sql: String) async throws {
        var config = test.admin
        config.database = test.name
        try await Database.with(config, logger: test.logger) { db in
            try await db.withTransaction { conn in
                _ = try await conn.query("SET LOCAL session_replication_role = replica", logger: db.logger).collect()
                _ = try await conn.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).collect()
            }
        }
    }

    @Test("RFC 7677's SCRAM-SHA-256 example: the verifier's server key signs the example exchange as the RFC says")
    func scramVector() throws {
        let salt = try #require(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ=="))
        let verifier = ScramVerifier.make(password: "pencil", salt: Array(salt), iterations: 4096)
        #expect(verifier.hasPrefix("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"))
        let serverKeyText = try #require(verifier.split(separator: ":").last)
        let serverKey = try #require(Data(base64Encoded: String(serverKeyText)))
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        let authMessage = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=\(nonce),s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=\(nonce)"
        let signature = HMAC<SHA256>.authenticationCode(for: Data(authMessage.utf8), using: SymmetricKey(data: serverKey))
        #expect(Data(signature).base64EncodedString() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    }

    @Test("An operator's event is recorded as the operator whatever it claims; seq, time and address are the database's")
    func identityIsTheDatabases() async throws {
        try await TestDatabase.withFresh { test in
            let (login, seq, occurred) = try await test.withOperator(.dispatcher) { db in
                let login = try await Self.value(db, "SELECT session_user") ?? ""
                // Naming the number, the time, the role or the address is refused outright.
                for (column, value) in [("seq", "-42"), ("occurred_at", "'2001-01-01'"), ("actor_role", "'postgres'"),
                                        ("client_addr", "'10.9.8.7'"), ("xid", "'1'")] {
                    do {
                        try await db.client.query(PostgresQuery(unsafeSQL: """
                            INSERT INTO bm.event_log (\(column), actor, action, subject) VALUES (\(value), 'x', 'note', 'test:claim')
                            """), logger: db.logger)
                        Issue.record("an insert naming \(column) was accepted")
                    } catch let error as PSQLError {
                        #expect(error.serverInfo?[.sqlState] == "42501", "\(column): \(String(reflecting: error))")
                    }
                }
                try await db.client.query("""
                    INSERT INTO bm.event_log (actor, action, subject)
                    VALUES ('operator:someone_else', 'note', 'test:impersonation')
                    """, logger: db.logger)
                let seq = try await Self.value(db, "SELECT seq FROM bm.event_log WHERE subject = 'test:impersonation'").flatMap { Int64($0) }
                let occurred = try await Self.value(db, "SELECT extract(year FROM occurred_at)::int FROM bm.event_log WHERE subject = 'test:impersonation'").flatMap { Int($0) }
                return (login, seq, occurred)
            }
            #expect(seq != nil && seq! > 0)
            #expect(occurred != 2001)
            #expect(try await test.with(.owner) { try await Self.value($0, "SELECT count(*) FROM bm.event_log WHERE subject = 'test:claim'") } == "0")
            let row = try await test.with(.owner) { db in
                var row: (String, String, String?)?
                for try await r in try await db.client.query(
                    "SELECT actor, actor_role, client_addr FROM bm.event_log WHERE subject = 'test:impersonation'", logger: db.logger)
                    .decode((String, String, String?).self) { row = r }
                return row
            }
            #expect(row?.0 == "operator:" + login && row?.1 == login && row?.2 == "local")
            // The shared service role may speak for a hospital, never for an operator.
            let claims = try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                try await log.append(NewAuditEvent(actor: "hospital:H0001", action: "note", subject: "test:claim-1"))
                try await log.append(NewAuditEvent(actor: "operator:someone_else", action: "note", subject: "test:claim-2"))
                return try await log.events(subjects: ["test:claim-1", "test:claim-2"]).map(\.actor)
            }
            #expect(claims == ["hospital:H0001", "role:bloodmatch_app"])
        }
    }

    @Test("A refused login is reported with the server's reason, not only as a timeout")
    func refusedLoginNamed() async throws {
        try await TestDatabase.withFresh { test in
            let login = "\(test.name.dropFirst(3))_refused"
            try await test.with(.owner) { db in
                try await PostgresOperatorStore(database: db).add(name: login, role: .dispatcher, password: "right-password-123")
            }
            var config = test.configuration(role: .app)
            config.username = login
            config.password = "wrong-password"
            config.setRole = nil
            config.connectTimeout = .seconds(2)
            do {
                try await Database.with(config, logger: test.logger) { _ in }
                Issue.record("a wrong password was accepted")
            } catch let error as DatabaseUnavailableError {
                #expect(error.description.contains("password authentication failed"), "\(error)")
            }
        }
    }

    @Test("A transaction that commits after later ones is still sealed, once; verify sees every row chained")
    func lateCommitIsSealed() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                try await log.seal()
                try await db.client.withConnection { slow in
                    _ = try await slow.query("BEGIN", logger: db.logger).collect()
                    _ = try await slow.query("INSERT INTO bm.event_log (actor, action, subject) VALUES ('x', 'note', 'test:slow')",
                                             logger: db.logger).collect()
                    // Later transactions commit and are sealed while the first is still open.
                    for i in 0..<5 { try await log.append(NewAuditEvent(actor: "x", action: "note", subject: "test:fast-\(i)")) }
                    let first = try await log.seal()
                    #expect(first.sealed >= 5)
                    _ = try await slow.query("COMMIT", logger: db.logger).collect()
                }
                let second = try await log.seal()
                #expect(second.sealed == 1)
                #expect(try await log.seal().sealed == 0)
                let report = try await log.verify(sealFirst: false)
                #expect(report.isIntact, "\(report.problem?.description ?? "") \(report.recordMismatches)")
                #expect(report.unchainedRows == 0)
                let slowChained = try await Self.value(db, """
                    SELECT count(*) FROM bm.event_chain c JOIN bm.event_log e ON e.seq = c.seq WHERE e.subject = 'test:slow'
                    """)
                #expect(slowChained == "1")
            }
        }
    }

    @Test("Concurrent writers and sealers: one unbroken chain, every committed row in it exactly once")
    func concurrentSealing() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for w in 0..<6 {
                        group.addTask {
                            for i in 0..<40 { try await log.append(NewAuditEvent(actor: "x", action: "note", subject: "test:w\(w)-\(i)")) }
                        }
                    }
                    group.addTask { for _ in 0..<30 { try await log.seal(); try await Task.sleep(for: .milliseconds(5)) } }
                    group.addTask { for _ in 0..<30 { try await log.seal(); try await Task.sleep(for: .milliseconds(7)) } }
                    try await group.waitForAll()
                }
                let report = try await log.verify()
                #expect(report.isIntact, "\(report.problem?.description ?? "")")
                let counts = try await Self.value(db, """
                    SELECT (SELECT count(*) FROM bm.event_log)::text || '/' || (SELECT count(*) FROM bm.event_chain)::text
                           || '/' || (SELECT count(DISTINCT seq) FROM bm.event_chain)::text
                    """)
                let parts = (counts ?? "").split(separator: "/").map { Int($0) ?? -1 }
                // Everything but the verification's own event (written after its seal) is chained, once.
                #expect(parts.count == 3 && parts[1] == parts[2] && parts[0] - parts[1] <= 1, "\(counts ?? "")")
            }
        }
    }

    /// Blocks of the project's own tables and indexes one seal read (buffer hits and reads; the
    /// catalogue, which a busy server's other sessions can make a session load again, is not counted).
    static func sealBlocks(on conn: PostgresConnection, _ db: Database) async throws -> Int {
        let count: PostgresQuery = """
            SELECT coalesce(sum(pg_stat_get_xact_blocks_fetched(c.oid)), 0)::int FROM pg_class c
            WHERE c.relnamespace = 'bm'::regnamespace AND c.relkind IN ('r', 'i')
            """
        func blocks() async throws -> Int {
            var out = 0
            for try await (n,) in try await conn.query(count, logger: db.logger).decode((Int,).self) { out = n }
            return out
        }
        // One transaction: the backend's counts are flushed to the shared statistics only between
        // transactions, so the difference is this seal's own.
        _ = try await conn.query("BEGIN", logger: db.logger).collect()
        let before = try await blocks()
        _ = try await conn.query("SELECT * FROM bm.audit_seal(50000)", logger: db.logger).collect()
        let after = try await blocks()
        _ = try await conn.query("COMMIT", logger: db.logger).collect()
        return after - before
    }

    @Test("A seal reads only the rows it has not chained, whatever the log's length, its statistics, a long transaction or the session's plan mode; the late row is chained when it commits")
    func sealReadsOnlyNewRows() async throws {
        try await TestDatabase.withFresh { test in
            // No statistics on the log until the test gathers them: the case a new log, or one
            // between autovacuum runs after a bulk write, is in. The planner then guessed a third of
            // the log, and a plan made for this pass's values scanned and sorted all of it.
            try await Self.superuser(test, """
                DO $$
                DECLARE p regclass;
                BEGIN
                  FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent IN ('bm.event_log'::regclass, 'bm.event_chain'::regclass) LOOP
                    EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', p);
                  END LOOP;
                END $$
                """)
            try await test.with(.app) { db in
                try await db.client.query("""
                    INSERT INTO bm.event_log (actor, action, subject)
                    SELECT 'anonymous', 'note', 'test:filler-' || g FROM generate_series(1, 20000) AS g
                    """, logger: db.logger)
                _ = try await PostgresAuditLog(database: db).seal()
                let touched: [String: Int] = try await db.client.withConnection { holder in
                    // A transaction that stays open with an event of its own: under 0009 it held the
                    // sealer's floor, and every seal read the whole log again.
                    _ = try await holder.query("BEGIN", logger: db.logger).collect()
                    _ = try await holder.query("INSERT INTO bm.event_log (actor, action, subject) VALUES ('anonymous', 'note', 'test:late')",
                                               logger: db.logger).collect()
                    let touched: [String: Int] = try await db.client.withConnection { conn in
                        var touched: [String: Int] = [:]
                        for statistics in ["none", "gathered"] {
                            if statistics == "gathered" {
                                try await Self.superuser(test, "ANALYZE bm.event_log")
                                try await Self.superuser(test, "ANALYZE bm.event_chain")
                            }
                            // Plans made for each pass's values, and one plan made without them
                            // (under 0009 that one walked the log from its first row).
                            for mode in ["force_custom_plan", "force_generic_plan"] {
                                _ = try await conn.query(PostgresQuery(unsafeSQL: "SET plan_cache_mode = \(mode)"), logger: db.logger).collect()
                                for round in 0..<2 {
                                    _ = try await conn.query("INSERT INTO bm.event_log (actor, action, subject) VALUES ('anonymous', 'note', \("test:new-\(statistics)-\(mode)-\(round)"))",
                                                             logger: db.logger).collect()
                                    touched["\(statistics)/\(mode)/\(round)"] = try await Self.sealBlocks(on: conn, db)
                                }
                            }
                        }
                        return touched
                    }
                    _ = try await holder.query("COMMIT", logger: db.logger).collect()
                    return touched
                }
                // A pass reads its new row, the late row's gap, the head and a few index pages (about 30
                // blocks here), and, when a statement is planned for the pass's values, each segment's
                // index metapages (three segments since migration 0014: 80-100 blocks); one that scans
                // the log, or walks it from its first row, reads 300 or more.
                #expect(touched.count == 8 && touched.values.allSatisfy { $0 < 150 },
                        "blocks read per seal: \(touched.sorted { $0.key < $1.key })")
                _ = try await PostgresAuditLog(database: db).seal()
                let late = try await Self.value(db, """
                    SELECT count(*) FROM bm.event_chain c JOIN bm.event_log l USING (seq) WHERE l.subject = 'test:late'
                    """)
                #expect(late == "1")
                let report = try await PostgresAuditLog(database: db).verify()
                #expect(report.isIntact && report.unchainedRows == 0 && report.rowsChecked > 20_000)
            }
        }
    }

    @Test("A number held by a transaction whose id is newer than a later row's stays a gap until it commits, and its row is chained then")
    func gapOutlivesAnOlderCommit() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                _ = try await log.seal()
                try await db.client.withConnection { older in
                    try await db.client.withConnection { holder in
                        @Sendable func run(_ conn: PostgresConnection, _ sql: String) async throws {
                            _ = try await conn.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).collect()
                        }
                        // `older` gets its transaction id first; `holder` then takes a lower number
                        // than the row `older` commits.
                        try await run(older, "BEGIN")
                        try await run(older, "SELECT pg_current_xact_id()")
                        try await run(holder, "BEGIN")
                        try await run(holder, "INSERT INTO bm.event_log (actor, action, subject) VALUES ('anonymous', 'note', 'test:holder')")
                        try await run(older, "INSERT INTO bm.event_log (actor, action, subject) VALUES ('anonymous', 'note', 'test:older')")
                        try await run(older, "COMMIT")
                        for _ in 0..<3 { _ = try await log.seal() }
                        #expect(try await Self.value(db, "SELECT count(*) FROM bm.audit_gaps") == "1")
                        try await run(holder, "COMMIT")
                    }
                }
                _ = try await log.seal()
                let chained = try await Self.value(db, """
                    SELECT string_agg(l.subject, ',' ORDER BY c.chain_seq) FROM bm.event_chain c JOIN bm.event_log l USING (seq)
                    WHERE l.subject IN ('test:holder', 'test:older')
                    """)
                #expect(chained == "test:older,test:holder")
                #expect(try await Self.value(db, "SELECT count(*) FROM bm.audit_gaps") == "0")
                let report = try await log.verify()
                #expect(report.isIntact && report.unchainedRows == 0)
            }
        }
    }

    @Test("A seal inside a transaction that has already written is refused: its id could not bound the gaps it notes")
    func sealNeedsAFreshTransaction() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.app) { db in
                await #expect(throws: (any Error).self) {
                    try await db.withTransaction { conn in
                        _ = try await conn.query("INSERT INTO bm.event_log (actor, action, subject) VALUES ('anonymous', 'note', 'test:first')",
                                                 logger: db.logger).collect()
                        _ = try await conn.query("SELECT * FROM bm.audit_seal(10)", logger: db.logger).collect()
                    }
                }
                let kept = try await Self.value(db, "SELECT count(*) FROM bm.event_log WHERE subject = 'test:first'")
                #expect(kept == "0")
            }
        }
    }

    @Test("A covered record edited behind the triggers is named with its table, row and field; a damaged head is not sealed over")
    func recordsAndHead() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.importer) { db in
                _ = try await PostgresSiteStore(database: db).upsert([
                    Site(id: "HS1", name: "Sealing Hospital", kind: .hospital, location: GeoPoint(latitude: -33.87, longitude: 151.21),
                         region: "AU-02", address: "Sydney NSW, Australia"),
                ], source: "test")
            }
            try await Self.superuser(test, "UPDATE bm.sites SET name = 'Forged Hospital' WHERE site_id = 'HS1'")
            let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify() }
            let mismatch = try #require(report.recordMismatches.first)
            #expect(mismatch.table == "sites" && mismatch.key == "HS1" && mismatch.field == "name")
            #expect(mismatch.expected == "Sealing Hospital" && mismatch.actual == "Forged Hospital")
            #expect(!report.isIntact)

            try await Self.superuser(test, "UPDATE bm.sites SET name = 'Sealing Hospital' WHERE site_id = 'HS1'")
            try await Self.superuser(test, "UPDATE bm.audit_head SET row_hash = sha256('forged'::bytea)")
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                try await log.append(NewAuditEvent(actor: "x", action: "note", subject: "test:after-damage"))
                await #expect(throws: AuditHeadMismatchError.self) { try await log.seal() }
                let after = try await log.verify()
                #expect(after.problem?.kind == .headMismatch)
                #expect(after.unchainedRows >= 1)
            }
        }
    }
}
