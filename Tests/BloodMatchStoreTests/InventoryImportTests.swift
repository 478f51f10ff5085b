import BloodMatchCore
import BloodMatchIngest
import BloodMatchStore
import Foundation
import PostgresNIO
import Testing

/// The snapshot importer against a real PostgreSQL: a centre's stock is replaced whole or not at
/// all, a unit is its DIN and product code, a snapshot is its centre and `as_of` (the same bytes
/// with a newer `as_of` load; repeats and replays change nothing), bad files and bad rows are
/// refused and recorded, and every run leaves a row in `bm.import_runs` and `bm.event_log`.
@Suite("Inventory import against PostgreSQL")
struct InventoryImportTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static let sites = [
        Site(id: "DCA", name: "Centre A", kind: .distributionCentre, location: GeoPoint(latitude: -33.87, longitude: 151.21), region: "AU-02"),
        Site(id: "DCB", name: "Centre B", kind: .distributionCentre, location: GeoPoint(latitude: -32.93, longitude: 151.78), region: "AU-02"),
        Site(id: "HOS", name: "A Hospital", kind: .hospital, location: GeoPoint(latitude: -34.42, longitude: 150.89), region: "AU-02"),
    ]

    // MARK: - Fixtures

    /// Units with DINs `T000126` + `sequences`, cycling through components, groups, statuses and attributes.
    static func units(_ sequences: ClosedRange<Int>, at centre: String) throws -> [InventoryUnit] {
        let components: [Component] = [.redCells, .platelets, .plasma]
        let statuses: [UnitStatus] = [.available, .available, .available, .reserved, .quarantined]
        return try sequences.map { n in
            let component = components[n % components.count]
            let collected = now.addingTimeInterval(-Double(2 + n % 4) * 86_400)
            return try StockFixture.unit(
                StockFixture.din(sequence: n), component, BloodGroup.all[n % BloodGroup.all.count], at: centre,
                collected: collected, expires: collected.addingTimeInterval(5 * 86_400), status: statuses[n % statuses.count],
                attributes: n % 3 == 0 ? AttributeSet([.irradiated, .cmvNegative]) : [])
        }
    }

    /// Writes a snapshot pair into `directory` and returns its source.
    static func snapshot(_ units: [InventoryUnit], centre: String, asOf: Date, name: String, in directory: URL) throws -> SnapshotSource {
        SnapshotSource(csvPath: try StockFixture.write(units, centre: centre, asOf: asOf, name: name, in: directory))
    }

    /// Writes a snapshot pair from CSV text (header included) and returns its source.
    static func snapshot(csv: String, rows: Int, centre: String, asOf: Date, name: String, in directory: URL,
                         emptyStock: Bool? = nil) throws -> SnapshotSource {
        SnapshotSource(csvPath: try StockFixture.write(csv: csv, centre: centre, asOf: asOf, rowCount: rows, name: name,
                                                       in: directory, emptyStock: emptyStock))
    }

    /// A fresh database with the three sites, and a folder for snapshot files.
    static func withSites<T: Sendable>(_ body: @Sendable (TestDatabase, URL) async throws -> T) async throws -> T {
        try await TestDatabase.withFresh { test in
            try await test.with(.importer) { db in
                _ = try await PostgresSiteStore(database: db).upsert(sites, source: "test")
            }
            let directory = StockFixture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            return try await body(test, directory)
        }
    }

    static func importing(_ test: TestDatabase, _ sources: SnapshotSource...) async throws -> [ImportReport] {
        try await test.with(.importer) { db in
            let importer = PostgresInventoryImporter(database: db)
            var reports: [ImportReport] = []
            for source in sources { reports.append(try await importer.importSnapshot(source, now: now)) }
            return reports
        }
    }

    // MARK: - Database views

    /// What a centre has in force: the snapshot id, and the DINs of that snapshot.
    struct InForce: Equatable {
        var snapshotID: Int64?
        var dins: Set<String>
    }

    static func inForce(_ test: TestDatabase, centre: String) async throws -> InForce {
        try await test.with(.owner) { db in
            var snapshot: Int64?
            for try await (id,) in try await db.client.query(
                "SELECT current_snapshot_id FROM bm.centre_status WHERE centre = \(centre)", logger: db.logger
            ).decode((Int64,).self) { snapshot = id }
            var dins: Set<String> = []
            for try await (din,) in try await db.client.query("""
                SELECT u.din FROM bm.inventory_units u JOIN bm.centre_status s ON s.current_snapshot_id = u.snapshot_id
                WHERE s.centre = \(centre)
                """, logger: db.logger).decode((String,).self) { dins.insert(din) }
            return InForce(snapshotID: snapshot, dins: dins)
        }
    }

    /// Rows of `bm.inventory_units` belonging to any snapshot of `centre` (superseded ones are pruned).
    static func storedUnitCount(_ test: TestDatabase, centre: String) async throws -> Int {
        try await scalar(test, "SELECT count(*)::int FROM bm.inventory_units u JOIN bm.inventory_snapshots s USING (snapshot_id) WHERE s.centre = '\(centre)'")
    }

    static func scalar(_ test: TestDatabase, _ sql: String) async throws -> Int {
        try await test.with(.owner) { db in
            var value = 0
            for try await (n,) in try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).decode((Int,).self) { value = n }
            return value
        }
    }

    struct RunRow: Equatable {
        var outcome: String
        var total: Int
        var accepted: Int
        var rejected: Int
        var snapshotID: Int64?
    }

    static func runs(_ test: TestDatabase) async throws -> [RunRow] {
        try await test.with(.owner) { db in
            var out: [RunRow] = []
            for try await (outcome, total, accepted, rejected, snapshot) in try await db.client.query(
                "SELECT outcome, rows_total, rows_accepted, rows_rejected, snapshot_id FROM bm.import_runs ORDER BY run_id",
                logger: db.logger
            ).decode((String, Int, Int, Int, Int64?).self) {
                out.append(RunRow(outcome: outcome, total: total, accepted: accepted, rejected: rejected, snapshotID: snapshot))
            }
            return out
        }
    }

    /// `(action, run_id from the payload)` of every import event, in order.
    static func importEvents(_ test: TestDatabase) async throws -> [String] {
        try await test.with(.owner) { db in
            var out: [String] = []
            for try await (action, runID) in try await db.client.query(
                "SELECT action, payload->>'run_id' FROM bm.event_log WHERE actor = 'job:bloodmatch_import' AND action LIKE 'import.%' ORDER BY seq",
                logger: db.logger
            ).decode((String, String).self) { out.append("\(action)#\(runID)") }
            return out
        }
    }

    /// `din product_code centre other_centre snapshot_id` of every recorded conflict, in order.
    static func conflicts(_ test: TestDatabase) async throws -> [String] {
        try await test.with(.owner) { db in
            var out: [String] = []
            for try await (din, code, centre, other, snapshot) in try await db.client.query(
                "SELECT din, product_code, centre, other_centre, snapshot_id FROM bm.unit_conflicts ORDER BY din, product_code, conflict_id",
                logger: db.logger
            ).decode((String, String, String, String, Int64).self) { out.append("\(din) \(code) \(centre) \(other) \(snapshot)") }
            return out
        }
    }

    /// `din product_code status` of the units a centre has in force, sorted.
    static func unitsInForce(_ test: TestDatabase, centre: String) async throws -> [String] {
        try await test.with(.owner) { db in
            var out: [String] = []
            for try await (din, code, status) in try await db.client.query("""
                SELECT u.din, u.product_code, u.status FROM bm.inventory_units u
                JOIN bm.centre_status s ON s.current_snapshot_id = u.snapshot_id
                WHERE s.centre = \(centre) ORDER BY u.din, u.product_code
                """, logger: db.logger).decode((String, String, String).self) { out.append("\(din) \(code) \(status)") }
            return out
        }
    }

    /// `snapshot_id din product_code change status` of every recorded movement, in order.
    static func movements(_ test: TestDatabase) async throws -> [String] {
        try await test.with(.owner) { db in
            var out: [String] = []
            for try await (snapshot, din, code, change, status) in try await db.client.query(
                "SELECT snapshot_id, din, product_code, change, status FROM bm.unit_movements ORDER BY snapshot_id, din, product_code",
                logger: db.logger
            ).decode((Int64, String, String, String, String).self) { out.append("\(snapshot) \(din) \(code) \(change) \(status)") }
            return out
        }
    }

    // MARK: - Tests

    @Test("a snapshot loads whole: every field stored as written, the pointer swapped, the run and an event recorded")
    func loadsSnapshot() async throws {
        try await Self.withSites { test, dir in
            let units = try Self.units(1...60, at: "DCA")
            let source = try Self.snapshot(units, centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "a1", in: dir)
            let report = try #require(try await Self.importing(test, source).first)
            #expect(report.outcome == .loaded, "\(report.message)")
            #expect(report.rowsTotal == 60 && report.rowsAccepted == 60 && report.rowsRejected == 0)
            #expect(report.centre == "DCA")

            let current = try await Self.inForce(test, centre: "DCA")
            #expect(current.snapshotID == report.snapshotID)
            #expect(current.dins == Set(units.map(\.din.value)))

            // Every column as written, and the physical line of each row.
            let stored = try await test.with(.owner) { db in
                var rows: [String] = []
                for try await (din, code, component, abo, rhd, collected, expires, site, status, attributes, line) in try await db.client.query("""
                    SELECT din, product_code, component, abo, rhd, collected_at, expires_at, site_id, status, attributes, line
                    FROM bm.inventory_units ORDER BY line
                    """, logger: db.logger).decode((String, String, String, String, String, Date, Date, String, String, String, Int).self) {
                    rows.append([din, code, component, abo, rhd, StockFixture.timestamp(collected), StockFixture.timestamp(expires),
                                 site, status, attributes, String(line)].joined(separator: ","))
                }
                return rows
            }
            let expected = StockFixture.csv(units).split(separator: "\n").dropFirst().enumerated().map { "\($0.element),\($0.offset + 2)" }
            #expect(stored == expected)

            #expect(try await Self.runs(test) == [.init(outcome: "loaded", total: 60, accepted: 60, rejected: 0, snapshotID: report.snapshotID)])
            #expect(try await Self.importEvents(test) == ["import.loaded#\(report.runID)"])
        }
    }

    @Test("the same file twice: already imported, nothing changes")
    func sameFileTwice() async throws {
        try await Self.withSites { test, dir in
            let source = try Self.snapshot(try Self.units(1...40, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "a1", in: dir)
            let first = try await Self.importing(test, source)[0]
            let before = try await Self.inForce(test, centre: "DCA")
            let again = try await Self.importing(test, source)[0]
            #expect(first.outcome == .loaded)
            #expect(again.outcome == .alreadyImported)
            #expect(again.snapshotID == nil)
            #expect(again.message.contains("already imported sha256=\(try #require(first.sha256))"))
            #expect(try await Self.inForce(test, centre: "DCA") == before)
            #expect(try await Self.storedUnitCount(test, centre: "DCA") == 40)
            #expect(try await Self.scalar(test, "SELECT count(*)::int FROM bm.inventory_snapshots") == 1)
            #expect(try await Self.runs(test).map(\.outcome) == ["loaded", "already_imported"])
        }
    }

    @Test("a feed's control record naming the snapshot in force is recorded already imported without its file; once a newer one loads, the same record is a replay")
    func alreadyInForceWithoutFile() async throws {
        try await Self.withSites { test, dir in
            let first = try Self.snapshot(try Self.units(1...20, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-3600), name: "f1", in: dir)
            let newer = try Self.snapshot(try Self.units(21...40, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "f2", in: dir)
            let loaded = try await Self.importing(test, first)[0]
            let control = try SnapshotControl.decode(try Data(contentsOf: URL(fileURLWithPath: first.controlPath)), fileName: "f1.ctl.json")
            let (found, again) = try await test.with(.importer) { db in
                let importer = PostgresInventoryImporter(database: db)
                let found = try await importer.snapshotInForce(matching: control)
                return (found, try await importer.recordAlreadyInForce(origin: "https://feed/latest.json", fileName: "f1.csv", control: control,
                                                                          snapshotID: try #require(found)))
            }
            #expect(found == loaded.snapshotID)
            #expect(again.outcome == .alreadyImported && again.message.contains("not fetched again"))
            _ = try await Self.importing(test, newer)
            let late = try await test.with(.importer) { db in
                let importer = PostgresInventoryImporter(database: db)
                #expect(try await importer.snapshotInForce(matching: control) == nil)
                return try await importer.recordAlreadyInForce(origin: "https://feed/latest.json", fileName: "f1.csv", control: control,
                                                               snapshotID: try #require(found))
            }
            #expect(late.outcome == .replayRefused && late.message.contains("has loaded since"))
            #expect(try await Self.runs(test).map(\.outcome) == ["loaded", "already_imported", "loaded", "replay_refused"])
        }
    }

    @Test("an older snapshot is refused as a replay, and the same as_of with other bytes is refused naming both SHA-256s; the newer one stays in force")
    func replayRefused() async throws {
        try await Self.withSites { test, dir in
            let newer = try Self.snapshot(try Self.units(1...30, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "new", in: dir)
            let older = try Self.snapshot(try Self.units(101...130, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-3600), name: "old", in: dir)
            let sameInstant = try Self.snapshot(try Self.units(201...230, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "same", in: dir)
            let reports = try await Self.importing(test, newer, older, sameInstant)
            #expect(reports.map(\.outcome) == [.loaded, .replayRefused, .refused])
            #expect(reports[1].message.contains("older than the one in force (snapshot \(try #require(reports[0].snapshotID))"))
            // Read in full before the verdict: the message names both verified hashes.
            #expect(reports[2].message.contains("sha256=\(try #require(reports[2].sha256))"))
            #expect(reports[2].message.contains("the snapshot in force has sha256=\(try #require(reports[0].sha256))"))
            #expect(reports[2].sha256 != reports[0].sha256)
            let current = try await Self.inForce(test, centre: "DCA")
            #expect(current.snapshotID == reports[0].snapshotID)
            #expect(current.dins == Set(try Self.units(1...30, at: "DCA").map(\.din.value)))
            #expect(try await Self.storedUnitCount(test, centre: "DCA") == 30)
            #expect(try await Self.scalar(test, "SELECT count(*)::int FROM bm.inventory_snapshots") == 1)
            #expect(try await Self.runs(test).map(\.outcome) == ["loaded", "replay_refused", "refused"])
        }
    }

    /// CSV text for `units` with the rows at the given 0-based positions spoiled (ABO `0`, a lower-case DIN).
    static func csvWithBadRows(_ units: [InventoryUnit], bad: [Int]) -> String {
        var lines = StockFixture.csv(units).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (n, position) in bad.enumerated() {
            var fields = lines[position + 1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if n % 2 == 0 { fields[3] = "0" } else { fields[0] = fields[0].lowercased() }
            lines[position + 1] = fields.joined(separator: ",")
        }
        return lines.joined(separator: "\n")
    }

    @Test("over 1 % bad rows: refused whole, the previous snapshot intact, every rejected row stored")
    func tooManyBadRowsRefused() async throws {
        try await Self.withSites { test, dir in
            let first = try Self.snapshot(try Self.units(1...20, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-3600), name: "a1", in: dir)
            let loaded = try await Self.importing(test, first)[0]
            let before = try await Self.inForce(test, centre: "DCA")

            let units = try Self.units(101...200, at: "DCA")
            let bad = try Self.snapshot(csv: Self.csvWithBadRows(units, bad: [9, 49]), rows: 100, centre: "DCA",
                                    asOf: Self.now.addingTimeInterval(-60), name: "a2", in: dir)
            let report = try await Self.importing(test, bad)[0]
            #expect(loaded.outcome == .loaded)
            #expect(report.outcome == .refused)
            #expect(report.rowsTotal == 100 && report.rowsRejected == 2 && report.rowsAccepted == 0)
            #expect(report.message.contains("2 of 100 rows rejected"))
            #expect(try await Self.inForce(test, centre: "DCA") == before)
            #expect(try await Self.storedUnitCount(test, centre: "DCA") == 20)

            let rejected = try await test.with(.owner) { db in
                var out: [String] = []
                for try await (file, line, field, reason, runID) in try await db.client.query(
                    "SELECT file, line, field, reason, run_id FROM bm.rejected_rows ORDER BY line", logger: db.logger
                ).decode((String, Int, String, String, Int64).self) { out.append("\(file):\(line):\(field):\(reason):\(runID)") }
                return out
            }
            #expect(rejected == [
                "a2.csv:11:abo:\(RowRejectionReason.unknownABO.rawValue):\(report.runID)",
                "a2.csv:51:din:\(RowRejectionReason.dinLowercase.rawValue):\(report.runID)",
            ])
            #expect(try await Self.runs(test).last == .init(outcome: "refused", total: 100, accepted: 0, rejected: 2, snapshotID: nil))
        }
    }

    @Test("at most 1 % bad rows: loaded without them, each rejection stored")
    func fewBadRowsLoaded() async throws {
        try await Self.withSites { test, dir in
            let units = try Self.units(1...200, at: "DCA")
            let source = try Self.snapshot(csv: Self.csvWithBadRows(units, bad: [0, 199]), rows: 200, centre: "DCA",
                                           asOf: Self.now.addingTimeInterval(-60), name: "a1", in: dir)
            let report = try await Self.importing(test, source)[0]
            #expect(report.outcome == .loadedWithRejections)
            #expect(report.rowsTotal == 200 && report.rowsAccepted == 198 && report.rowsRejected == 2)
            let current = try await Self.inForce(test, centre: "DCA")
            #expect(current.dins == Set(units.dropFirst().dropLast().map(\.din.value)))
            #expect(try await Self.scalar(test, "SELECT count(*)::int FROM bm.rejected_rows WHERE run_id = \(report.runID)") == 2)
            #expect(try await Self.scalar(test, "SELECT min(line) * 1000 + max(line) FROM bm.rejected_rows") == 2 * 1000 + 201)
            #expect(try await Self.runs(test) == [.init(outcome: "loaded_with_rejections", total: 200, accepted: 198, rejected: 2, snapshotID: report.snapshotID)])
            #expect(try await Self.importEvents(test) == ["import.loaded_with_rejections#\(report.runID)"])
        }
    }

    @Test("a wrong control hash or a truncated CSV is refused and nothing changes")
    func damagedFilesRefused() async throws {
        try await Self.withSites { test, dir in
            let first = try Self.snapshot(try Self.units(1...20, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-3600), name: "a1", in: dir)
            _ = try await Self.importing(test, first)
            let before = try await Self.inForce(test, centre: "DCA")

            // The control record vouches for other bytes.
            let text = StockFixture.csv(try Self.units(101...150, at: "DCA"))
            let wrongHash = try Self.snapshot(csv: text, rows: 50, centre: "DCA", asOf: Self.now.addingTimeInterval(-120), name: "hash", in: dir)
            let otherBytes = Data(StockFixture.csv(try Self.units(301...350, at: "DCA")).utf8)
            try otherBytes.write(to: URL(fileURLWithPath: wrongHash.csvPath))

            // Cut mid-row after the control record was written.
            let truncated = try Self.snapshot(csv: text, rows: 50, centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "cut", in: dir)
            try Data(text.utf8.prefix(text.utf8.count / 2)).write(to: URL(fileURLWithPath: truncated.csvPath))

            // The control record is missing.
            let noControl = try Self.snapshot(csv: text, rows: 50, centre: "DCA", asOf: Self.now.addingTimeInterval(-30), name: "bare", in: dir)
            try FileManager.default.removeItem(atPath: noControl.controlPath)

            let reports = try await Self.importing(test, wrongHash, truncated, noControl)
            #expect(reports.map(\.outcome) == [.refused, .refused, .refused])
            #expect(reports[0].message.hasSuffix("[checksumMismatch]"))
            #expect(reports[1].message.hasSuffix("[checksumMismatch]") || reports[1].message.hasSuffix("[rowCountMismatch]"))
            #expect(reports[2].message.contains("control record"))
            #expect(reports.allSatisfy { $0.snapshotID == nil && $0.rowsAccepted == 0 })
            #expect(try await Self.inForce(test, centre: "DCA") == before)
            #expect(try await Self.storedUnitCount(test, centre: "DCA") == 20)
            #expect(try await Self.scalar(test, "SELECT count(*)::int FROM bm.inventory_snapshots") == 1)
            #expect(try await Self.runs(test).map(\.outcome) == ["loaded", "refused", "refused", "refused"])
        }
    }

    @Test("an unknown centre, or a hospital named as the centre, is refused")
    func onlyKnownCentres() async throws {
        try await Self.withSites { test, dir in
            let unknown = try Self.snapshot(try Self.units(1...5, at: "DCZ"), centre: "DCZ", asOf: Self.now.addingTimeInterval(-60), name: "z", in: dir)
            let hospital = try Self.snapshot(try Self.units(1...5, at: "HOS"), centre: "HOS", asOf: Self.now.addingTimeInterval(-60), name: "h", in: dir)
            let reports = try await Self.importing(test, unknown, hospital)
            #expect(reports.map(\.outcome) == [.refused, .refused])
            #expect(reports[0].message.contains("not a known site"))
            #expect(reports[1].message.contains("not a distribution centre"))
            #expect(try await Self.scalar(test, "SELECT count(*)::int FROM bm.inventory_units") == 0)
            #expect(try await Self.scalar(test, "SELECT count(*)::int FROM bm.centre_status") == 0)
            #expect(try await Self.runs(test).map(\.outcome) == ["refused", "refused"])
        }
    }

    @Test("a DIN current at another centre is recorded as a conflict and left out of the index at both")
    func transferInFlight() async throws {
        try await Self.withSites { test, dir in
            let atA = try Self.units(1...10, at: "DCA")
            // Centre B reports two of A's units (now available at B) besides its own.
            var atB = try Self.units(11...20, at: "DCB")
            for n in [2, 7] {
                atB.append(try StockFixture.unit(StockFixture.din(sequence: n), .platelets, .oNegative, at: "DCB",
                                                 collected: Self.now.addingTimeInterval(-86_400), expires: Self.now.addingTimeInterval(3 * 86_400)))
            }
            let reports = try await Self.importing(
                test,
                try Self.snapshot(atA, centre: "DCA", asOf: Self.now.addingTimeInterval(-120), name: "a", in: dir),
                try Self.snapshot(atB, centre: "DCB", asOf: Self.now.addingTimeInterval(-60), name: "b", in: dir))
            #expect(reports.map(\.outcome) == [.loaded, .loaded])
            #expect(reports.map(\.conflicts) == [0, 2])
            #expect(reports[1].message.contains("2 units (DIN and product code) also current at another centre"))

            let conflicts = try await Self.conflicts(test)
            let bSnapshot = try #require(reports[1].snapshotID)
            #expect(conflicts == [2, 7].map { "\(StockFixture.din(sequence: $0)) E0382V00 DCB DCA \(bSnapshot)" })

            // Both centres keep the rows; the index offers neither copy.
            #expect(try await Self.inForce(test, centre: "DCA").dins.count == 10)
            #expect(try await Self.inForce(test, centre: "DCB").dins.count == 12)
            let index = try await test.with(.app) { db in try await PostgresInventoryReader(database: db).buildIndex(now: Self.now) }
            let indexed = (0..<index.unitCount).map { index.din(at: $0) }
            #expect(indexed.count == Set(indexed).count)
            let offerable = (atA + atB).filter { $0.status == .available && ![2, 7].map { StockFixture.din(sequence: $0) }.contains($0.din.value) }
            #expect(Set(indexed) == Set(offerable.map(\.din.value)))
        }
    }

    @Test("an empty stock declared with empty_stock: true replaces the stock; a header-only file without it is refused")
    func emptyStock() async throws {
        try await Self.withSites { test, dir in
            let header = "din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes\n"
            let first = try Self.snapshot(try Self.units(1...8, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-3600), name: "a1", in: dir)
            // Header only, but the control record claims rows: refused.
            let claimsRows = try Self.snapshot(csv: header, rows: 8, centre: "DCA", asOf: Self.now.addingTimeInterval(-180), name: "a2", in: dir, emptyStock: false)
            // Header only, row_count 0 without the explicit marker: refused.
            let unmarked = try Self.snapshot(csv: header, rows: 0, centre: "DCA", asOf: Self.now.addingTimeInterval(-120), name: "a3", in: dir, emptyStock: false)
            // A 0-byte file even with the marker: refused.
            let zeroBytes = try Self.snapshot(csv: "", rows: 0, centre: "DCA", asOf: Self.now.addingTimeInterval(-90), name: "a4", in: dir, emptyStock: true)
            let reports = try await Self.importing(test, first, claimsRows, unmarked, zeroBytes)
            #expect(reports.map(\.outcome) == [.loaded, .refused, .refused, .refused])
            #expect(try await Self.inForce(test, centre: "DCA").dins.count == 8)

            let declared = try Self.snapshot(csv: header, rows: 0, centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "a5", in: dir, emptyStock: true)
            let emptied = try await Self.importing(test, declared)[0]
            #expect(emptied.outcome == .loaded)
            #expect(emptied.rowsTotal == 0)
            let current = try await Self.inForce(test, centre: "DCA")
            #expect(current.snapshotID == emptied.snapshotID && current.snapshotID != nil)
            #expect(current.dins.isEmpty)
            #expect(try await Self.storedUnitCount(test, centre: "DCA") == 0)
        }
    }

    @Test("concurrent imports of one centre serialise: the newer snapshot ends in force, never a mix", arguments: [false, true])
    func concurrentImportsSerialise(newerFirst: Bool) async throws {
        try await Self.withSites { test, dir in
            let olderUnits = try Self.units(1...3000, at: "DCA")
            let newerUnits = try Self.units(5001...8000, at: "DCA")
            let older = try Self.snapshot(olderUnits, centre: "DCA", asOf: Self.now.addingTimeInterval(-600), name: "older", in: dir)
            let newer = try Self.snapshot(newerUnits, centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "newer", in: dir)
            let (first, second) = newerFirst ? (newer, older) : (older, newer)
            let reports = try await test.with(.importer) { db in
                let importer = PostgresInventoryImporter(database: db)
                async let a = importer.importSnapshot(first, now: Self.now)
                async let b = importer.importSnapshot(second, now: Self.now)
                return try await [a, b]
            }
            let byFile = Dictionary(uniqueKeysWithValues: reports.map { ($0.file, $0) })
            #expect(byFile["newer.csv"]?.outcome == .loaded)
            // The older one either loaded before the newer (then superseded) or came second and was refused.
            #expect([.loaded, .replayRefused].contains(byFile["older.csv"]?.outcome))
            let current = try await Self.inForce(test, centre: "DCA")
            #expect(current.snapshotID == byFile["newer.csv"]?.snapshotID)
            #expect(current.dins == Set(newerUnits.map(\.din.value)))
            #expect(try await Self.storedUnitCount(test, centre: "DCA") == 3000)
            #expect(try await Self.scalar(test, "SELECT count(DISTINCT snapshot_id)::int FROM bm.inventory_units") == 1)
            #expect(try await Self.runs(test).count == 2)
        }
    }

    @Test("every run is recorded with its outcome and counts, with one event per run")
    func everyRunRecorded() async throws {
        try await Self.withSites { test, dir in
            let units = try Self.units(1...100, at: "DCA")
            let sources = [
                try Self.snapshot(units, centre: "DCA", asOf: Self.now.addingTimeInterval(-600), name: "a1", in: dir),
                try Self.snapshot(units, centre: "DCA", asOf: Self.now.addingTimeInterval(-600), name: "a1", in: dir),
                try Self.snapshot(csv: Self.csvWithBadRows(units, bad: [5]), rows: 100, centre: "DCA", asOf: Self.now.addingTimeInterval(-300), name: "a2", in: dir),
                try Self.snapshot(try Self.units(501...600, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-900), name: "a0", in: dir),
                try Self.snapshot(csv: Self.csvWithBadRows(units, bad: [1, 2]), rows: 100, centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "a3", in: dir),
            ]
            let reports = try await test.with(.importer) { db in
                let importer = PostgresInventoryImporter(database: db)
                var out: [ImportReport] = []
                for source in sources { out.append(try await importer.importSnapshot(source, now: Self.now)) }
                return out
            }
            #expect(reports.map(\.outcome) == [.loaded, .alreadyImported, .loadedWithRejections, .replayRefused, .refused])
            let runs = try await Self.runs(test)
            #expect(runs.map(\.outcome) == reports.map(\.outcome.rawValue))
            #expect(runs.map(\.total) == [100, 0, 100, 0, 100])
            #expect(runs.map(\.accepted) == [100, 0, 99, 0, 0])
            #expect(runs.map(\.rejected) == [0, 0, 1, 0, 2])
            #expect(runs.map(\.snapshotID) == reports.map(\.snapshotID))
            #expect(try await Self.importEvents(test) == reports.map { "import.\($0.outcome.rawValue)#\($0.runID)" })
            #expect(try await Self.scalar(test, "SELECT count(*)::int FROM bm.rejected_rows") == 3)
        }
    }

    @Test("fractional seconds are stored to the microsecond, even within one second")
    func fractionalSeconds() async throws {
        try await Self.withSites { test, dir in
            let csv = """
                din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes
                T000126000001,E0382V00,RBC,O,NEG,2027-01-10T00:00:00.25Z,2027-01-10T00:00:00.75Z,DCA,AVAILABLE,
                T000126000002,E0382V00,RBC,O,NEG,2027-01-10T08:00:00.5+10:00,2027-01-20T00:00:00.123456Z,DCA,AVAILABLE,

                """
            let source = try Self.snapshot(csv: csv, rows: 2, centre: "DCA", asOf: Date(timeIntervalSince1970: 1_800_000_000), name: "f", in: dir)
            let report = try await Self.importing(test, source)[0]
            #expect(report.outcome == .loaded)
            let stored = try await test.with(.owner) { db in
                var out: [String] = []
                for try await (text,) in try await db.client.query("""
                    SELECT din || ' ' || to_char(collected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
                               || ' ' || to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
                    FROM bm.inventory_units ORDER BY din
                    """, logger: db.logger).decode((String,).self) { out.append(text) }
                return out
            }
            #expect(stored == [
                "T000126000001 2027-01-10T00:00:00.250000 2027-01-10T00:00:00.750000",
                "T000126000002 2027-01-09T22:00:00.500000 2027-01-20T00:00:00.123456",
            ])
        }
    }

    @Test("a load the server refuses (here a lock timeout) is recorded as failed and changes nothing")
    func serverRefusalRecorded() async throws {
        try await Self.withSites { test, dir in
            let first = try Self.snapshot(try Self.units(1...10, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-600), name: "a1", in: dir)
            let second = try Self.snapshot(try Self.units(11...30, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "a2", in: dir)
            _ = try await Self.importing(test, first)
            let before = try await Self.inForce(test, centre: "DCA")
            // Only in this throwaway database: the import role waits at most 200 ms for a lock.
            try await Database.with(test.admin, logger: test.logger) { db in
                try await db.client.query(PostgresQuery(unsafeSQL: "ALTER ROLE bloodmatch_import IN DATABASE \(test.name) SET lock_timeout = '200ms'"), logger: db.logger)
            }
            // Another session holds the centre's import lock.
            let blocked = try await test.with(.owner) { db in
                try await db.client.withConnection { conn in
                    try await conn.query("SELECT pg_advisory_lock(hashtext('bloodmatch.centre:DCA'))", logger: db.logger)
                    let report = try await Self.importing(test, second)[0]
                    try await conn.query("SELECT pg_advisory_unlock(hashtext('bloodmatch.centre:DCA'))", logger: db.logger)
                    return report
                }
            }
            #expect(blocked.outcome == .failed)
            #expect(blocked.message.contains("SQLSTATE 55P03"))
            #expect(blocked.snapshotID == nil)
            #expect(try await Self.inForce(test, centre: "DCA") == before)
            // The lock released, the same file loads.
            let retried = try await Self.importing(test, second)[0]
            #expect(retried.outcome == .loaded)
            #expect(try await Self.inForce(test, centre: "DCA").dins == Set(try Self.units(11...30, at: "DCA").map(\.din.value)))
            #expect(try await Self.runs(test).map(\.outcome) == ["loaded", "failed", "loaded"])
            #expect(try await Self.importEvents(test).map { $0.split(separator: "#")[0] } == ["import.loaded", "import.failed", "import.loaded"])
        }
    }

    // MARK: - A unit is its DIN and product code

    /// Product codes of one donation's components (illustrative ISBT 128 shapes); `VA0` and `VB0`
    /// are the two divisions of a split platelet product.
    static let productComponents: [String: Component] = [
        "E0382V00": .redCells, "E2555V00": .plasma, "E3072V00": .platelets, "E3072VA0": .platelets, "E3072VB0": .platelets,
    ]

    /// One component of donation `sequence` (DIN `T000126` + sequence), told apart by its product code.
    static func component(_ sequence: Int, _ productCode: String, at centre: String, status: UnitStatus = .available) throws -> InventoryUnit {
        let component = productComponents[productCode] ?? .redCells
        let collected = now.addingTimeInterval(-2 * 86_400)
        let shelfDays: Double = component == .platelets ? 5 : component == .plasma ? 365 : 35
        return InventoryUnit(
            din: try DonationNumber(parsing: StockFixture.din(sequence: sequence)), productCode: productCode, component: component,
            group: .oNegative, collectedAt: collected, expiresAt: collected.addingTimeInterval(shelfDays * 86_400), siteID: centre,
            status: status, attributes: [])
    }

    @Test("one donation's red cells, plasma and platelets (one DIN, three product codes) at one centre: all three load and are offered")
    func oneDonationThreeComponents() async throws {
        try await Self.withSites { test, dir in
            let din = StockFixture.din(sequence: 1)
            let donation = try ["E0382V00", "E2555V00", "E3072V00"].map { try Self.component(1, $0, at: "DCA") }
            let report = try await Self.importing(test, try Self.snapshot(donation, centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "a", in: dir))[0]
            #expect(report.outcome == .loaded, "\(report.message)")
            #expect(report.rowsTotal == 3 && report.rowsAccepted == 3 && report.rowsRejected == 0)
            #expect(try await Self.unitsInForce(test, centre: "DCA") == ["\(din) E0382V00 AVAILABLE", "\(din) E2555V00 AVAILABLE", "\(din) E3072V00 AVAILABLE"])
            #expect(try await Self.movements(test) == ["E0382V00", "E2555V00", "E3072V00"].map { "\(try #require(report.snapshotID)) \(din) \($0) appeared AVAILABLE" })
            // The matcher's index holds each of them, under its own component.
            let index = try await test.with(.app) { db in try await PostgresInventoryReader(database: db).buildIndex(now: Self.now) }
            let centre = try #require(index.centres.firstIndex { $0.siteID == "DCA" })
            #expect(index.unitCount == 3)
            #expect([Component.redCells, .plasma, .platelets].map { index.count(centre: centre, component: $0, group: .oNegative) } == [1, 1, 1])
        }
    }

    @Test("the same unit (DIN and product code) twice in a file is rejected as duplicateUnit; the donation's other component and the rest load")
    func duplicateUnitRejected() async throws {
        try await Self.withSites { test, dir in
            var units = try Self.units(1...150, at: "DCA")
            units.append(try Self.component(1, "E2555V00", at: "DCA"))
            var repeated = units[0]
            repeated.status = .quarantined
            units.append(repeated)
            let report = try await Self.importing(test, try Self.snapshot(units, centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "dup", in: dir))[0]
            #expect(report.outcome == .loadedWithRejections, "\(report.message)")
            #expect(report.rowsTotal == 152 && report.rowsAccepted == 151 && report.rowsRejected == 1)
            let rejected = try await test.with(.owner) { db in
                var out: [String] = []
                for try await (line, field, value, reason, message) in try await db.client.query(
                    "SELECT line, field, value, reason, message FROM bm.rejected_rows", logger: db.logger
                ).decode((Int, String, String, String, String).self) { out.append("\(line) \(field) \(value) \(reason): \(message)") }
                return out
            }
            let din = StockFixture.din(sequence: 1)
            #expect(rejected == ["153 din \(din) duplicateUnit: DIN \(din) with product code E0382V00 already appears at line 2; each unit (DIN and product code) must appear once"])
            // The first row of the unit is the one in force, beside the donation's plasma.
            #expect(try await Self.unitsInForce(test, centre: "DCA").filter { $0.hasPrefix(din) } == ["\(din) E0382V00 \(units[0].status.rawValue)", "\(din) E2555V00 AVAILABLE"])
        }
    }

    @Test("the same unit current at two centres is a conflict; the donation's other components at the other centre are not")
    func conflictsByUnit() async throws {
        try await Self.withSites { test, dir in
            let din = StockFixture.din(sequence: 1)
            let atA = try ["E0382V00", "E2555V00"].map { try Self.component(1, $0, at: "DCA") }
            // B reports the plasma too (a transfer in flight), and the donation's platelets, which only B holds.
            let atB = try ["E2555V00", "E3072V00"].map { try Self.component(1, $0, at: "DCB") }
            let reports = try await Self.importing(
                test,
                try Self.snapshot(atA, centre: "DCA", asOf: Self.now.addingTimeInterval(-600), name: "a1", in: dir),
                try Self.snapshot(atB, centre: "DCB", asOf: Self.now.addingTimeInterval(-300), name: "b1", in: dir),
                // A's next snapshot, one unit more: the plasma is still current at both.
                try Self.snapshot(atA + [try Self.component(2, "E0382V00", at: "DCA")], centre: "DCA",
                                  asOf: Self.now.addingTimeInterval(-60), name: "a2", in: dir))
            #expect(reports.map(\.outcome) == [.loaded, .loaded, .loaded])
            #expect(reports.map(\.conflicts) == [0, 1, 1])
            #expect(reports[1].message.contains("1 units (DIN and product code) also current at another centre"))
            #expect(try await Self.conflicts(test) == [
                "\(din) E2555V00 DCB DCA \(try #require(reports[1].snapshotID))",
                "\(din) E2555V00 DCA DCB \(try #require(reports[2].snapshotID))",
            ])
        }
    }

    @Test("movements are recorded per unit (DIN and product code): appeared, changed and disappeared")
    func movementsPerUnit() async throws {
        try await Self.withSites { test, dir in
            let din = StockFixture.din(sequence: 1)
            let first = try ["E0382V00", "E2555V00", "E3072V00"].map { try Self.component(1, $0, at: "DCA") }
            // The red cells unchanged, the plasma quarantined, the platelets split into two divisions.
            let second = [try Self.component(1, "E0382V00", at: "DCA"), try Self.component(1, "E2555V00", at: "DCA", status: .quarantined),
                          try Self.component(1, "E3072VA0", at: "DCA"), try Self.component(1, "E3072VB0", at: "DCA")]
            let reports = try await Self.importing(
                test,
                try Self.snapshot(first, centre: "DCA", asOf: Self.now.addingTimeInterval(-600), name: "s1", in: dir),
                try Self.snapshot(second, centre: "DCA", asOf: Self.now.addingTimeInterval(-60), name: "s2", in: dir))
            #expect(reports.map(\.outcome) == [.loaded, .loaded])
            let (s1, s2) = (try #require(reports[0].snapshotID), try #require(reports[1].snapshotID))
            #expect(try await Self.movements(test) == [
                "\(s1) \(din) E0382V00 appeared AVAILABLE", "\(s1) \(din) E2555V00 appeared AVAILABLE", "\(s1) \(din) E3072V00 appeared AVAILABLE",
                "\(s2) \(din) E2555V00 changed QUARANTINED", "\(s2) \(din) E3072V00 disappeared AVAILABLE",
                "\(s2) \(din) E3072VA0 appeared AVAILABLE", "\(s2) \(din) E3072VB0 appeared AVAILABLE",
            ])
        }
    }

    // MARK: - A snapshot is its centre and as_of

    static func lastAsOf(_ test: TestDatabase, centre: String) async throws -> Date? {
        try await test.with(.owner) { db in
            var value: Date?
            for try await (asOf,) in try await db.client.query(
                "SELECT last_as_of FROM bm.centre_status WHERE centre = \(centre)", logger: db.logger
            ).decode((Date,).self) { value = asOf }
            return value
        }
    }

    /// Everything an import could change about stock: pointers (with their load times), snapshots,
    /// units, movements and conflicts.
    static func stockState(_ test: TestDatabase) async throws -> String {
        try await test.with(.owner) { db in
            var out = ""
            for try await (text,) in try await db.client.query("""
                SELECT (SELECT coalesce(string_agg(centre || ' ' || current_snapshot_id || ' ' || last_as_of || ' ' || last_import_at, '; ' ORDER BY centre), '')
                        FROM bm.centre_status)
                  || ' | snapshots ' || (SELECT count(*) FROM bm.inventory_snapshots)
                  || ' | units ' || (SELECT count(*) FROM bm.inventory_units)
                  || ' | movements ' || (SELECT count(*) FROM bm.unit_movements)
                  || ' | conflicts ' || (SELECT count(*) FROM bm.unit_conflicts)
                """, logger: db.logger).decode((String,).self) { out = text }
            return out
        }
    }

    @Test("byte-identical stock re-sent every 15 minutes with a newer as_of loads each time and refreshes the data age: never stale")
    func heartbeatRefreshesDataAge() async throws {
        try await Self.withSites { test, dir in
            // The real clock: the health reader measures data age against the database's clock.
            let clock = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
            let units = try (1...40).map { n in
                try StockFixture.unit(StockFixture.din(sequence: n), .redCells, BloodGroup.all[n % BloodGroup.all.count], at: "DCA",
                                      collected: clock.addingTimeInterval(-3 * 86_400), expires: clock.addingTimeInterval(20 * 86_400),
                                      status: n % 4 == 0 ? .quarantined : .available)
            }
            let text = StockFixture.csv(units)
            let asOfs = (0..<5).map { clock.addingTimeInterval(Double($0 - 4) * 15 * 60) }
            var reports: [ImportReport] = []
            for (beat, asOf) in asOfs.enumerated() {
                let source = try Self.snapshot(csv: text, rows: units.count, centre: "DCA", asOf: asOf, name: "heartbeat-\(beat)", in: dir)
                let report = try await test.with(.importer) { db in
                    try await PostgresInventoryImporter(database: db).importSnapshot(source, now: clock)
                }
                reports.append(report)
                #expect(report.outcome == .loaded, "heartbeat \(beat): \(report.message)")
                // The data age counts from this snapshot: fresh until the next heartbeat is due.
                #expect(try await Self.lastAsOf(test, centre: "DCA") == asOf)
                let (freshness, availability) = try await test.with(.app) { db in
                    let reader = PostgresInventoryReader(database: db)
                    return (try await reader.currentSnapshots(), try await reader.availability(component: .redCells, now: asOf))
                }
                #expect(freshness.map(\.asOf) == [asOf])
                #expect(freshness.map(\.snapshotID) == [report.snapshotID])
                #expect(availability.map { $0.isStale(now: asOf.addingTimeInterval(15 * 60)) } == [false])
                #expect(availability.first?.unitsByGroup.values.reduce(0, +) == 30)
            }
            #expect(Set(reports.compactMap(\.sha256)).count == 1)
            #expect(Set(reports.compactMap(\.snapshotID)).count == 5)
            // Health against the database's clock: the last heartbeat is seconds old, not an hour.
            let health = try await test.with(.app) { db in try await PostgresHealthReader(database: db).read() }
            let centre = try #require(health.centres.first { $0.centreID == "DCA" })
            #expect(!centre.isStale)
            #expect(centre.dataAgeSeconds < 300)
            #expect(health.staleCentres.isEmpty)
            #expect(centre.lastRunOutcome == "loaded")
            // Nothing moved after the first snapshot, and the superseded rows are gone.
            let first = try #require(reports[0].snapshotID)
            #expect(try await Self.movements(test).allSatisfy { $0.hasPrefix("\(first) ") })
            #expect(try await Self.movements(test).count == 40)
            #expect(try await Self.storedUnitCount(test, centre: "DCA") == 40)
            #expect(try await Self.runs(test).map(\.outcome) == Array(repeating: "loaded", count: 5))
        }
    }

    @Test("A quarantines a unit, B releases it, C has A's very bytes and a newer as_of: C loads, the unit is quarantined in force and never offered")
    func stockReturnsToAnEarlierState() async throws {
        try await Self.withSites { test, dir in
            let (x, y) = (StockFixture.din(sequence: 1), StockFixture.din(sequence: 2))
            func stock(_ xStatus: UnitStatus) throws -> [InventoryUnit] {
                try [(x, xStatus), (y, UnitStatus.available)].map { din, status in
                    try StockFixture.unit(din, .redCells, .oNegative, at: "DCA", collected: Self.now.addingTimeInterval(-2 * 86_400),
                                          expires: Self.now.addingTimeInterval(30 * 86_400), status: status)
                }
            }
            let a = try Self.snapshot(try stock(.quarantined), centre: "DCA", asOf: Self.now.addingTimeInterval(-1800), name: "a", in: dir)
            let b = try Self.snapshot(try stock(.available), centre: "DCA", asOf: Self.now.addingTimeInterval(-1200), name: "b", in: dir)
            let c = try Self.snapshot(try stock(.quarantined), centre: "DCA", asOf: Self.now.addingTimeInterval(-600), name: "c", in: dir)
            #expect(try Data(contentsOf: URL(fileURLWithPath: a.csvPath)) == Data(contentsOf: URL(fileURLWithPath: c.csvPath)))
            let reports = try await Self.importing(test, a, b, c)
            #expect(reports.map(\.outcome) == [.loaded, .loaded, .loaded], "\(reports.map(\.message))")
            #expect(reports[2].sha256 == reports[0].sha256)
            #expect(try await Self.inForce(test, centre: "DCA").snapshotID == reports[2].snapshotID)
            #expect(try await Self.unitsInForce(test, centre: "DCA") == ["\(x) E0382V00 QUARANTINED", "\(y) E0382V00 AVAILABLE"])
            // What the matcher reads: the index, the re-check before a decision, the availability summary.
            let (indexed, unavailable, availability) = try await test.with(.app) { db in
                let reader = PostgresInventoryReader(database: db)
                let index = try await reader.buildIndex(now: Self.now)
                return ((0..<index.unitCount).map { index.din(at: $0) }, try await reader.unavailable(units: [UnitKey(din: x, productCode: "E0382V00"), UnitKey(din: y, productCode: "E0382V00")]),
                        try await reader.availability(component: .redCells, now: Self.now))
            }
            #expect(indexed == [y])
            #expect(unavailable == [UnitKey(din: x, productCode: "E0382V00")])
            #expect(availability.map(\.unitsByGroup) == [["O-": 1]])
            let (sa, sb, sc) = (try #require(reports[0].snapshotID), try #require(reports[1].snapshotID), try #require(reports[2].snapshotID))
            #expect(try await Self.movements(test) == [
                "\(sa) \(x) E0382V00 appeared QUARANTINED", "\(sa) \(y) E0382V00 appeared AVAILABLE",
                "\(sb) \(x) E0382V00 changed AVAILABLE", "\(sc) \(x) E0382V00 changed QUARANTINED",
            ])
        }
    }

    @Test("the snapshot in force sent again (same as_of and bytes, any file name) is already imported and changes nothing; its control record beside other bytes is refused")
    func alreadyImportedOnlyAfterReading() async throws {
        try await Self.withSites { test, dir in
            let units = try Self.units(1...40, at: "DCA")
            let asOf = Self.now.addingTimeInterval(-300)
            let loaded = try await Self.importing(test, try Self.snapshot(units, centre: "DCA", asOf: asOf, name: "a1", in: dir))[0]
            #expect(loaded.outcome == .loaded)
            let before = try await Self.stockState(test)
            let copy = try Self.snapshot(units, centre: "DCA", asOf: asOf, name: "a1-again", in: dir)
            // The control record of the snapshot in force (its as_of and SHA-256) beside other bytes: the
            // control record alone never makes a file "already imported".
            let damaged = try Self.snapshot(units, centre: "DCA", asOf: asOf, name: "a1-damaged", in: dir)
            try Data(StockFixture.csv(try Self.units(101...140, at: "DCA")).utf8).write(to: URL(fileURLWithPath: damaged.csvPath))
            let reports = try await Self.importing(test, copy, damaged)
            #expect(reports.map(\.outcome) == [.alreadyImported, .refused])
            #expect(reports[0].message.contains("already imported sha256=\(try #require(loaded.sha256)) as snapshot \(try #require(loaded.snapshotID))"))
            #expect(reports[0].snapshotID == nil && reports[0].rowsAccepted == 0)
            #expect(reports[1].message.hasSuffix("[checksumMismatch]"))
            #expect(try await Self.stockState(test) == before)
            #expect(try await Self.runs(test).map(\.outcome) == ["loaded", "already_imported", "refused"])
        }
    }

    @Test("an older as_of is a replay even with the bytes of an earlier snapshot, and the message names that snapshot")
    func replayOfEarlierBytes() async throws {
        try await Self.withSites { test, dir in
            let a = try Self.units(1...20, at: "DCA")
            let loaded = try await Self.importing(
                test,
                try Self.snapshot(a, centre: "DCA", asOf: Self.now.addingTimeInterval(-1800), name: "a", in: dir),
                try Self.snapshot(try Self.units(21...40, at: "DCA"), centre: "DCA", asOf: Self.now.addingTimeInterval(-600), name: "b", in: dir))
            #expect(loaded.map(\.outcome) == [.loaded, .loaded])
            let before = try await Self.stockState(test)
            let (aID, aSHA, bID) = (try #require(loaded[0].snapshotID), try #require(loaded[0].sha256), try #require(loaded[1].snapshotID))
            // A sent again as it was, and A's bytes under an as_of between A's and B's.
            let reports = try await Self.importing(
                test,
                try Self.snapshot(a, centre: "DCA", asOf: Self.now.addingTimeInterval(-1800), name: "a-again", in: dir),
                try Self.snapshot(a, centre: "DCA", asOf: Self.now.addingTimeInterval(-1200), name: "a-later", in: dir))
            #expect(reports.map(\.outcome) == [.replayRefused, .replayRefused])
            #expect(reports.allSatisfy { $0.message.contains("older than the one in force (snapshot \(bID)") })
            #expect(reports[0].message.contains("it is snapshot \(aID) (same as_of and bytes, sha256=\(aSHA)) sent again"))
            #expect(reports[1].message.contains("its bytes (sha256=\(aSHA)) equal those of snapshot \(aID)"))
            #expect(try await Self.stockState(test) == before)
            #expect(try await Self.runs(test).map(\.outcome) == ["loaded", "loaded", "replay_refused", "replay_refused"])
        }
    }
}
