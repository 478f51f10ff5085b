import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import PostgresNIO
import Testing

/// The event log in segments (migration 0014): made ahead, closed at their boundaries with one
/// contiguous chain range each, and a chain that verifies across them.
@Suite("Audit log segments")
struct AuditSegmentTests {
    /// A fresh database migrated with `size` events per segment.
    static func withSegments<T: Sendable>(size: Int, _ body: @Sendable (TestDatabase) async throws -> T) async throws -> T {
        try await TestDatabase.withFresh(migrate: false) { test in
            try await Database.with(test.admin, logger: test.logger) { admin in
                try await admin.client.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(test.name) SET bm.audit_segment_size = '\(size)'"),
                                             logger: admin.logger)
            }
            _ = try await test.with(.owner) { db in
                try await MigrationRunner(database: db, migrations: try Migration.bundled()).migrate()
            }
            return try await body(test)
        }
    }

    struct Segment: Sendable, Equatable {
        var segment: Int
        var firstSeq: Int64
        var endSeq: Int64
        var closed: Bool
        var chainFirst: Int64?
        var chainLast: Int64?
        var lastHash: String?
    }

    static func segments(_ db: Database) async throws -> [Segment] {
        var out: [Segment] = []
        for try await r in try await db.client.query("""
            SELECT segment, first_seq, end_seq, closed_at IS NOT NULL, chain_first, chain_last, encode(last_hash, 'hex')
            FROM bm.audit_segments ORDER BY segment
            """, logger: db.logger).decode((Int, Int64, Int64, Bool, Int64?, Int64?, String?).self) {
            out.append(Segment(segment: r.0, firstSeq: r.1, endSeq: r.2, closed: r.3, chainFirst: r.4, chainLast: r.5, lastHash: r.6))
        }
        return out
    }

    static func insert(_ db: Database, _ n: Int, subject: String) async throws {
        try await db.client.query("""
            INSERT INTO bm.event_log (actor, action, subject)
            SELECT 'anonymous', 'note', \(subject) || '-' || g FROM generate_series(1, \(n)) g
            """, logger: db.logger)
    }

    static func lastSeq(_ db: Database) async throws -> Int64 {
        var last: Int64 = 0
        for try await (n,) in try await db.client.query("SELECT last_seq FROM bm.audit_segment_status()", logger: db.logger)
            .decode((Int64,).self) { last = n }
        return last
    }

    /// Every closed segment holds one contiguous chain range, right after the previous one's, its
    /// entries exactly the segment's events, and its recorded hash the chain's at its last position.
    static func expectClosedSegmentsContiguous(_ db: Database) async throws {
        var previousLast: Int64 = 0
        for segment in try await segments(db) where segment.closed {
            let first = try #require(segment.chainFirst), last = try #require(segment.chainLast)
            #expect(first == previousLast + 1, "segment \(segment.segment) starts at position \(first) after \(previousLast)")
            previousLast = last
            var range: (Int64?, Int64?, Int) = (nil, nil, 0)
            for try await r in try await db.client.query("""
                SELECT min(chain_seq), max(chain_seq), count(*)::int FROM bm.event_chain
                WHERE seq >= \(segment.firstSeq) AND seq < \(segment.endSeq)
                """, logger: db.logger).decode((Int64?, Int64?, Int).self) { range = r }
            #expect(range.2 == Int(last - first + 1) && (range.2 == 0 || (range.0 == first && range.1 == last)),
                    "segment \(segment.segment): chain \(first)…\(last), entries \(range)")
            var hash: String?
            for try await (h,) in try await db.client.query("SELECT encode(row_hash, 'hex') FROM bm.event_chain WHERE chain_seq = \(last)", logger: db.logger)
                .decode((String,).self) { hash = h }
            #expect(hash == segment.lastHash, "segment \(segment.segment)'s recorded hash")
            var closing = 0
            for try await (n,) in try await db.client.query("""
                SELECT count(*)::int FROM bm.event_log WHERE action = 'audit.segment_closed' AND subject = \("segment:\(segment.segment)")
                  AND (payload->>'chain_last')::bigint = \(last) AND payload->>'last_hash' = \(segment.lastHash ?? "")
                """, logger: db.logger).decode((Int,).self) { closing = n }
            #expect(closing == 1, "segment \(segment.segment)'s closing event")
        }
    }

    /// Seals, then writes events until the next number handed out is the last of its segment;
    /// returns that segment's end.
    static func fillToLastNumber(_ db: Database) async throws -> Int64 {
        _ = try await PostgresAuditLog(database: db).seal()
        let last = try await lastSeq(db)
        let segment = try await segments(db).first { $0.firstSeq <= last + 1 && last + 1 < $0.endSeq }
        let end: Int64 = try #require(segment).endSeq
        let filler = Int(end - 1 - last - 1)
        if filler > 0 { try await insert(db, filler, subject: "test:filler") }
        return end
    }

    /// Seals until the segment ending at `end` is closed. Closing waits until no transaction
    /// anywhere on the server could still hold one of its numbers (other suites run beside this one).
    static func sealUntilClosed(_ db: Database, end: Int64) async throws -> Bool {
        let log = PostgresAuditLog(database: db)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            _ = try await log.seal()
            if try await segments(db).first(where: { $0.endSeq == end })?.closed == true {
                _ = try await log.seal()
                return true
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test("events fill segments in number order; each is closed when the sealer passes its end, with its chain range, hash and an event; segments are made ahead; the chain verifies")
    func segmentsFillAndClose() async throws {
        try await Self.withSegments(size: 20) { test in
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                let start = try await Self.segments(db)
                #expect(start.count == 3 && start.allSatisfy { !$0.closed })
                #expect(zip(start, start.dropFirst()).allSatisfy { $0.endSeq == $1.firstSeq && $1.endSeq - $1.firstSeq == 20 })
                for round in 0..<6 {
                    try await Self.insert(db, 13, subject: "test:round-\(round)")
                    _ = try await log.seal()
                }
                let last = try await Self.lastSeq(db)
                let segments = try await Self.segments(db)
                // Every segment below the one holding the last number is closed; two or more wait ahead.
                for segment in segments {
                    #expect(segment.closed == (segment.endSeq <= last), "segment \(segment.segment) [\(segment.firstSeq), \(segment.endSeq)) with last \(last)")
                }
                #expect(segments.filter { $0.firstSeq > last }.count >= 2)
                #expect(segments.filter(\.closed).count >= 3)
                try await Self.expectClosedSegmentsContiguous(db)
                // Each event is in the segment its number names (partitions by range).
                var misplaced = -1
                for try await (n,) in try await db.client.query("""
                    SELECT count(*)::int FROM bm.event_log l JOIN bm.audit_segments s ON l.seq >= s.first_seq AND l.seq < s.end_seq
                    WHERE (SELECT c.relname FROM pg_class c WHERE c.oid = l.tableoid) <> format('event_log_s%s', lpad(s.segment::text, 6, '0'))
                    """, logger: db.logger).decode((Int,).self) { misplaced = n }
                #expect(misplaced == 0)
                var status: (Int, Int) = (0, 0)
                for try await r in try await db.client.query("SELECT ahead, closed FROM bm.audit_segment_status()", logger: db.logger)
                    .decode((Int, Int).self) { status = r }
                #expect(status.0 >= 2 && status.1 == segments.filter(\.closed).count)
                let report = try await log.verify()
                #expect(report.isIntact && report.unchainedRows == 0, "\(report.problem?.description ?? "")")
            }
        }
    }

    @Test("a transaction open across a boundary holds the segment open: nothing of the next segment is chained until it commits, then its row closes the segment")
    func barrierAtTheBoundary() async throws {
        try await Self.withSegments(size: 20) { test in
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                // The holder takes the segment's last number.
                let end = try await Self.fillToLastNumber(db)
                _ = try await log.seal()
                try await db.client.withConnection { holder in
                    _ = try await holder.query("BEGIN", logger: db.logger).collect()
                    _ = try await holder.query("INSERT INTO bm.event_log (actor, action, subject) VALUES ('anonymous', 'note', 'test:holder')",
                                               logger: db.logger).collect()
                    // The first three numbers of the next segment, committed.
                    try await Self.insert(db, 3, subject: "test:after")
                    for _ in 0..<3 { _ = try await log.seal() }
                    var beyond = -1
                    for try await (n,) in try await db.client.query("SELECT count(*)::int FROM bm.event_chain WHERE seq >= \(end)", logger: db.logger)
                        .decode((Int,).self) { beyond = n }
                    #expect(beyond == 0, "rows of the next segment were chained while the segment was open")
                    let open = try await Self.segments(db).first { $0.endSeq == end }
                    #expect(open?.closed == false)
                    _ = try await holder.query("COMMIT", logger: db.logger).collect()
                }
                #expect(try await Self.sealUntilClosed(db, end: end))
                var order: [String] = []
                for try await (s,) in try await db.client.query("""
                    SELECT l.subject FROM bm.event_chain c JOIN bm.event_log l USING (seq)
                    WHERE l.subject IN ('test:holder', 'test:after-1', 'test:after-2', 'test:after-3') ORDER BY c.chain_seq
                    """, logger: db.logger).decode((String,).self) { order.append(s) }
                #expect(order == ["test:holder", "test:after-1", "test:after-2", "test:after-3"])
                try await Self.expectClosedSegmentsContiguous(db)
                let report = try await log.verify()
                #expect(report.isIntact && report.unchainedRows == 0, "\(report.problem?.description ?? "")")
            }
        }
    }

    @Test("a number never used at a boundary (a rolled-back insert) does not hold the segment open")
    func rolledBackAtTheBoundary() async throws {
        try await Self.withSegments(size: 10) { test in
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                let end = try await Self.fillToLastNumber(db)
                // The segment's last number goes to an insert that rolls back.
                try await db.client.withConnection { conn in
                    _ = try await conn.query("BEGIN", logger: db.logger).collect()
                    _ = try await conn.query("INSERT INTO bm.event_log (actor, action, subject) VALUES ('anonymous', 'note', 'test:rolled-back')",
                                             logger: db.logger).collect()
                    _ = try await conn.query("ROLLBACK", logger: db.logger).collect()
                }
                try await Self.insert(db, 2, subject: "test:next")
                #expect(try await Self.sealUntilClosed(db, end: end))
                try await Self.expectClosedSegmentsContiguous(db)
                let report = try await log.verify()
                #expect(report.isIntact && report.unchainedRows == 0, "\(report.problem?.description ?? "")")
            }
        }
    }

    @Test("a correction must name an earlier event that exists")
    func correctionsNameAnEarlierEvent() async throws {
        try await Self.withSegments(size: 20) { test in
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                let first = try await log.append(NewAuditEvent(actor: "anonymous", action: "note", subject: "test:original"))
                let correction = try await log.append(NewAuditEvent(actor: "anonymous", action: "note", subject: "test:correction", correctsSeq: first))
                #expect(correction > first)
                for bad in [Int64(999_999), correction + 5] {
                    do {
                        try await log.append(NewAuditEvent(actor: "anonymous", action: "note", subject: "test:bad", correctsSeq: bad))
                        Issue.record("a correction of \(bad) was accepted")
                    } catch let error as PSQLError {
                        #expect(error.serverInfo?[.sqlState] == "23503", "\(String(reflecting: error))")
                    }
                }
            }
        }
    }

    @Test("a segment cannot be truncated, on the log or on the segment itself")
    func segmentsRefuseTruncate() async throws {
        try await Self.withSegments(size: 20) { test in
            try await test.with(.owner) { db in
                for table in ["bm.event_log", "bm.event_log_s000001", "bm.event_log_s000002", "bm.event_chain", "bm.event_chain_s000003"] {
                    await #expect(throws: PSQLError.self, "\(table)") {
                        try await db.client.query(PostgresQuery(unsafeSQL: "TRUNCATE \(table)"), logger: db.logger)
                    }
                }
            }
        }
    }

    @Test("a closed segment is archived to a file that verifies alone and carried forward; the owner detaches it; verify starts after it and the records still match; a changed anchor or archive is named")
    func archiveAndDetach() async throws {
        try await Self.withSegments(size: 20) { test in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("audit-archive-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            // Covered records written in segment 1: their latest events must be carried forward.
            try await test.with(.importer) { db in
                try await db.client.query("""
                    INSERT INTO bm.sites (site_id, name, kind, latitude, longitude, region)
                    VALUES ('HX01', 'Test hospital', 'hospital', -33.8, 151.2, 'NSW'), ('HX02', 'Test hospital 2', 'hospital', -33.9, 151.1, 'NSW')
                    """, logger: db.logger)
            }
            let (first, second) = try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                _ = try await log.seal()
                let one = try #require(try await Self.segments(db).first)
                try await Self.insert(db, Int(one.endSeq - (try await Self.lastSeq(db))) + 25, subject: "test:fill")
                #expect(try await Self.sealUntilClosed(db, end: one.endSeq))
                let two = try #require(try await Self.segments(db).dropFirst().first)
                #expect(try await Self.sealUntilClosed(db, end: two.endSeq))
                // Not closed: refused, naming why.
                do {
                    _ = try await log.archive(segment: 3, into: folder)
                    Issue.record("an open segment was archived")
                } catch let error as AuditSegmentError {
                    #expect(error.problem.hasPrefix("not closed yet"))
                }
                let (manifest, carried) = try await log.archive(segment: 1, into: folder)
                #expect(carried == 2)
                #expect(manifest.chainFirst == 1 && manifest.events == manifest.chainLast)
                // Again: the archive is verified and kept, nothing carried twice.
                let again = try await log.archive(segment: 1, into: folder)
                #expect(again.manifest == manifest && again.carried == 0)
                _ = try await log.archive(segment: 2, into: folder)
                return (manifest, try await Self.segments(db)[1])
            }
            let file = folder.appendingPathComponent(first.file)
            let verified = try AuditArchive.verify(file: file, manifest: first)
            #expect(verified.events == first.events && verified.lastHash == first.lastHash)

            // A changed byte in a copy of the archive is named with its line.
            let copy = folder.appendingPathComponent("copy.jsonl")
            var bytes = try Data(contentsOf: file)
            let at = try #require(bytes.firstRange(of: Data(#""actor":""#.utf8))).upperBound
            bytes[at] = bytes[at] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
            try bytes.write(to: copy)
            do {
                _ = try AuditArchive.verify(file: copy, manifest: first)
                Issue.record("a changed archive verified")
            } catch let error as AuditArchiveError {
                #expect(error.line == 1 && error.problem.contains("content_changed"), "\(error)")
            }

            try await test.with(.owner) { db in
                let log = PostgresAuditLog(database: db)
                // Oldest first; and the archive must be the one recorded.
                do {
                    _ = try await log.detach(segment: 2, archive: folder.appendingPathComponent(AuditSegment.archiveName(2)))
                    Issue.record("segment 2 detached before segment 1")
                } catch let error as AuditSegmentError {
                    #expect(error.segment == 2 && error.problem.contains("not the oldest"), "\(error)")
                }
                _ = try await log.seal()
                _ = try await log.detach(segment: 1, archive: file)
            }
            try await test.with(.app) { db in
                let log = PostgresAuditLog(database: db)
                let report = try await log.verify()
                #expect(report.isIntact, "\(report.problem?.description ?? "") \(report.recordMismatches)")
                #expect(report.archivedThroughChainSeq == first.chainLast && report.firstChainSeq == first.chainLast + 1)
                #expect(report.recordsChecked >= 2 && report.recordMismatches.isEmpty)
                let segments = try await Self.segments(db)
                #expect(segments.first?.segment == 1)
                var attached = -1
                for try await (n,) in try await db.client.query("SELECT count(*)::int FROM bm.event_log WHERE seq < \(first.endSeq)", logger: db.logger)
                    .decode((Int,).self) { attached = n }
                #expect(attached == 0)
                // An archived event can still be corrected, by its number.
                try await log.append(NewAuditEvent(actor: "anonymous", action: "correction", subject: "test:archived", correctsSeq: first.firstSeq + 1))
                #expect(second.segment == 2)
            }
            // The anchor in bm.audit_segments changed by a superuser: named against the closing event.
            var config = test.admin
            config.database = test.name
            try await Database.with(config, logger: test.logger) { db in
                try await db.client.query("UPDATE bm.audit_segments SET last_hash = sha256('forged') WHERE segment = 1", logger: db.logger)
            }
            let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify() }
            #expect(report.problem?.kind == .brokenLink || report.problem?.kind == .archiveAnchorMismatch, "\(report.problem?.description ?? "none")")
        }
    }

}
