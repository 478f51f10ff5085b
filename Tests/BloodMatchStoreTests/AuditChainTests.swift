import BloodMatchStore
import Foundation
import PostgresNIO
import Testing

/// The tamper-evident event log: the writing roles cannot change or remove rows, and whatever a
/// superuser does behind the triggers' back (edit, delete, reorder, rewrite the whole chain) is
/// found by verification, which names the first row that does not match.
@Suite("Audit hash chain")
struct AuditChainTests {
    // MARK: - Pure verifier

    static func chain(_ n: Int) -> [AuditEvent] {
        var out: [AuditEvent] = []
        var previous = AuditChain.genesis
        for i in 1...n {
            var e = AuditEvent(chainSeq: Int64(i), seq: Int64(i), occurredAtMicros: 1_800_000_000_000_000 + Int64(i), actorRole: "bloodmatch_app",
                               actor: "test", action: "thing.done", subject: "thing:\(i)", payload: #"{"n": \#(i)}"#, requestID: i % 2 == 0 ? "r\(i)" : nil,
                               traceID: nil, clientAddress: "local", correctsSeq: i > 3 ? Int64(i - 3) : nil, prevHash: previous, rowHash: [])
            e.rowHash = AuditChain.hash(of: e, previous: previous)
            previous = e.rowHash
            out.append(e)
        }
        return out
    }

    static func verify(_ events: [AuditEvent], checkpoints: [AuditCheckpoint] = [], head: (Int64, [UInt8])? = nil) -> AuditChainVerifier {
        var v = AuditChainVerifier(checkpoints: checkpoints)
        for e in events where v.check(e) {}
        v.finish(head: head ?? (events.last?.chainSeq ?? 0, events.last?.rowHash ?? AuditChain.genesis))
        return v
    }

    @Test("An intact chain verifies; every field is covered by the hash")
    func intactAndFieldCoverage() {
        let events = Self.chain(10)
        #expect(Self.verify(events).problem == nil)
        #expect(Self.verify(events).rowsChecked == 10)
        let edits: [(inout AuditEvent) -> Void] = [
            { $0.occurredAtMicros += 1 }, { $0.actorRole = "postgres" }, { $0.actor = "someone" }, { $0.action = "other" },
            { $0.subject = "thing:x" }, { $0.payload = #"{"n": 0}"# }, { $0.requestID = "changed" }, { $0.traceID = "t" },
            { $0.clientAddress = nil }, { $0.correctsSeq = nil },
        ]
        for edit in edits {
            var tampered = events
            edit(&tampered[5])
            let v = Self.verify(tampered)
            #expect(v.problem?.kind == .contentChanged)
            #expect(v.problem?.chainSeq == 6)
        }
        // NULL and the empty string are different values.
        var a = events[0], b = events[0]
        a.requestID = nil
        b.requestID = ""
        #expect(AuditChain.canonical(a) != AuditChain.canonical(b))
    }

    @Test("Deleted, reordered and truncated rows, and a rewritten chain against a checkpoint, are found")
    func structuralDamage() {
        let events = Self.chain(10)
        var deleted = events
        deleted.remove(at: 4)
        #expect(Self.verify(deleted).problem?.kind == .missingRow)
        #expect(Self.verify(deleted).problem?.chainSeq == 5)

        var reordered = events
        reordered.swapAt(3, 6)
        (reordered[3].chainSeq, reordered[6].chainSeq) = (4, 7)
        #expect(Self.verify(reordered).problem?.chainSeq == 4)

        let truncated = Array(events.prefix(7))
        #expect(Self.verify(truncated, head: (10, events[9].rowHash)).problem?.kind == .headMismatch)

        // A rewrite that recomputes every hash after an edit passes on its own, but not against a checkpoint.
        let checkpoint = AuditCheckpoint(chainSeq: 8, rowHash: hex(events[7].rowHash), takenAt: "2026-11-29T00:00:00Z", databaseSystemIdentifier: "1")
        var rewritten = events
        rewritten[2].payload = #"{"n": 999}"#
        var previous = AuditChain.genesis
        for i in rewritten.indices {
            rewritten[i].prevHash = previous
            rewritten[i].rowHash = AuditChain.hash(of: rewritten[i], previous: previous)
            previous = rewritten[i].rowHash
        }
        #expect(Self.verify(rewritten).problem == nil)
        let v = Self.verify(rewritten, checkpoints: [checkpoint])
        #expect(v.problem?.kind == .checkpointMismatch)
        #expect(v.problem?.chainSeq == 8)
        #expect(Self.verify(events, checkpoints: [checkpoint]).checkpointsMatched == 1)
        let beyond = AuditCheckpoint(chainSeq: 12, rowHash: "00", takenAt: "2026-11-29T00:00:00Z", databaseSystemIdentifier: "1")
        #expect(Self.verify(events, checkpoints: [beyond]).problem?.kind == .checkpointBeyondChain)
    }

    // MARK: - PostgreSQL

    static func events(_ test: TestDatabase, count: Int) async throws {
        try await test.with(.app) { db in
            let log = PostgresAuditLog(database: db)
            for i in 0..<count {
                try await log.append(NewAuditEvent(actor: "test", action: "thing.done", subject: "thing:\(i)",
                                                   payloadJSON: #"{"i": \#(i), "text": "naïve – ünïcode ✓"}"#, requestID: i % 2 == 0 ? "r\(i)" : nil))
            }
        }
    }

    static func admin(_ test: TestDatabase, _ body: @Sendable (Database) async throws -> Void) async throws {
        var config = test.admin
        config.database = test.name
        try await Database.with(config, logger: test.logger) { db in try await body(db) }
    }

    @Test("The database's hash equals the independent one, under any TimeZone, DateStyle and concurrency")
    func databaseAgrees() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.events(test, count: 5)
            // Concurrent writers, and one statement inserting many rows: still one unbroken chain.
            try await test.with(.app) { db in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for t in 0..<16 {
                        group.addTask {
                            try await db.withTransaction { conn in
                                _ = try await conn.query("SET LOCAL TimeZone = 'Pacific/Chatham'", logger: db.logger).collect()
                                _ = try await conn.query("SET LOCAL DateStyle = 'SQL, DMY'", logger: db.logger).collect()
                                _ = try await conn.query("""
                                    INSERT INTO event_log (actor, action, subject, payload)
                                    SELECT 'writer', 'bulk', 'bulk:' || \(t) || ':' || g, jsonb_build_object('g', g, 'x', 1.50)
                                    FROM generate_series(1, 25) g
                                    """, logger: db.logger).collect()
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify() }
            #expect(report.isIntact, "\(report.problem?.description ?? "")")
            // migration event + 5 + 16 × 25
            #expect(report.rowsChecked >= 405)
            #expect(report.headChainSeq == Int64(report.rowsChecked))
        }
    }

    @Test("UPDATE, DELETE and TRUNCATE of audited tables are refused to the application and import roles")
    func writersCannotChangeHistory() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.events(test, count: 3)
            for role in [DatabaseConfiguration.Role.app, .importer] {
                try await test.with(role) { db in
                    for table in ["event_log", "event_chain", "decisions", "decision_units", "reservations", "distributions", "unit_movements", "audit_head"] {
                        for sql in ["UPDATE bm.\(table) SET \(table == "audit_head" ? "chain_seq = 0" : "\(Self.someColumn(table)) = \(Self.someColumn(table))")",
                                    "DELETE FROM bm.\(table)", "TRUNCATE bm.\(table)"] {
                            await #expect(throws: (any Error).self, "\(role) ran: \(sql)") {
                                try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger)
                            }
                        }
                    }
                }
            }
            let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify() }
            #expect(report.isIntact)
        }
    }

    static func someColumn(_ table: String) -> String {
        switch table {
        case "event_log": "actor"
        case "decisions": "outcome"
        case "decision_units": "reason"
        case "reservations": "hospital"
        case "distributions": "consignee"
        case "event_chain": "format"
        default: "din"
        }
    }

    @Test("A superuser's edit, deletion, insertion or reordering behind the triggers is named by verify")
    func superuserTampering() async throws {
        for damage in ["edit", "delete", "insert", "unlink", "reorder", "head", "rewrite"] {
          do {
            try await TestDatabase.withFresh { test in
                try await Self.events(test, count: 20)
                let checkpoint = try await test.with(.app) { try await PostgresAuditLog(database: $0).checkpoint(actor: "test") }
                try await Self.events(test, count: 3)
                // A sealed event of this schema's format, well inside the chain.
                let p = try await test.with(.app) { db in
                    try await PostgresAuditLog(database: db).seal()
                    var p: Int64 = 0
                    for try await (n,) in try await db.client.query("SELECT min(chain_seq) + 5 FROM bm.event_chain WHERE format = 2",
                                                                     logger: db.logger).decode((Int64,).self) { p = n }
                    return p
                }
                let at = "(SELECT seq FROM bm.event_chain WHERE chain_seq = \(p))"
                try await Self.admin(test) { db in
                    try await db.withTransaction { conn in
                        _ = try await conn.query("SET LOCAL session_replication_role = replica", logger: db.logger).collect()
                        let sql: String
                        switch damage {
                        case "edit": sql = #"UPDATE bm.event_log SET payload = '{"i": 7, "text": "edited"}' WHERE seq = \#(at)"#
                        case "delete": sql = "DELETE FROM bm.event_log WHERE seq = \(at)"
                        case "insert": sql = """
                            INSERT INTO bm.event_log (seq, occurred_at, actor, action, subject, payload, actor_role, client_addr, xid)
                            SELECT -1, occurred_at, actor, action, subject, '{"forged": true}', actor_role, client_addr, xid
                            FROM bm.event_log WHERE seq = \(at)
                            """
                        case "unlink": sql = "DELETE FROM bm.event_chain WHERE chain_seq = \(p)"
                        case "reorder": sql = """
                            DO $$ DECLARE a bigint; b bigint; BEGIN
                              SELECT seq INTO a FROM bm.event_chain WHERE chain_seq = \(p);
                              SELECT seq INTO b FROM bm.event_chain WHERE chain_seq = \(p + 3);
                              UPDATE bm.event_chain SET seq = -a WHERE chain_seq = \(p);
                              UPDATE bm.event_chain SET seq = a WHERE chain_seq = \(p + 3);
                              UPDATE bm.event_chain SET seq = b WHERE chain_seq = \(p);
                            END $$
                            """
                        case "head": sql = "UPDATE bm.audit_head SET chain_seq = chain_seq + 1"
                        default:
                            // Rewrite everything from that row on, recomputing each hash as the sealer would.
                            sql = """
                                DO $$ DECLARE r record; e bm.event_log; prev bytea; BEGIN
                                  UPDATE bm.event_log SET payload = '{"rewritten": true}' WHERE seq = \(at);
                                  SELECT row_hash INTO prev FROM bm.event_chain WHERE chain_seq = \(p - 1);
                                  FOR r IN SELECT chain_seq, seq FROM bm.event_chain WHERE chain_seq >= \(p) ORDER BY chain_seq LOOP
                                    SELECT * INTO e FROM bm.event_log WHERE seq = r.seq;
                                    UPDATE bm.event_chain SET prev_hash = prev, row_hash = sha256(prev || bm.audit_canonical2(e, r.chain_seq))
                                      WHERE chain_seq = r.chain_seq;
                                    SELECT row_hash INTO prev FROM bm.event_chain WHERE chain_seq = r.chain_seq;
                                  END LOOP;
                                  UPDATE bm.audit_head SET row_hash = prev;
                                END $$
                                """
                        }
                        _ = try await conn.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).collect()
                    }
                }
                let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify(checkpoints: [checkpoint]) }
                let problem = try #require(report.problem, "\(damage) was not detected")
                switch damage {
                case "edit": #expect(problem.kind == .contentChanged && problem.chainSeq == p)
                case "delete": #expect(problem.kind == .eventMissing && problem.chainSeq == p)
                case "insert": #expect(problem.kind == .unchainedRow && problem.seq == -1)
                case "unlink": #expect(problem.kind == .missingRow && problem.chainSeq == p)
                case "reorder": #expect(problem.chainSeq == p && [.contentChanged, .brokenLink].contains(problem.kind))
                case "head": #expect(problem.kind == .headMismatch)
                default: #expect(problem.kind == .checkpointMismatch && problem.chainSeq == checkpoint.chainSeq)
                }
                #expect(report.rowsChecked == Int(problem.chainSeq) - 1 || damage == "head" || damage == "insert")
            }
          } catch { Issue.record("\(damage): \(String(reflecting: error))") }
        }
    }
}
