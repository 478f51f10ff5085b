import BloodMatchCore
import BloodMatchIngest
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import PostgresNIO
import Testing

/// A centre's stock sent as a FHIR Bundle, through the real importer against PostgreSQL: the same
/// control record, rejection policy, atomic swap and run records as a CSV snapshot.
@Suite("FHIR Bundle snapshots against PostgreSQL")
struct FHIRBundleImportTests {
    typealias T = InventoryImportTests

    @Test("a Bundle loads like a CSV: bad entries stored by entry and element, the same file again changes nothing, a CSV after it replaces it")
    func bundleLoads() async throws {
        try await T.withSites { test, dir in
            let units = try T.units(1...200, at: "DCA")
            var resources = units.map(StockFixture.resource)
            // Two bad entries of 200 (1 %): no ABO/RhD property, and an expiry without a time zone.
            resources[10]["property"] = (resources[10]["property"] as! [[String: Any]]).filter {
                ((($0["type"] as? [String: Any])?["coding"] as? [[String: Any]])?.first?["code"] as? String) != "ABORhD"
            }
            resources[150]["expirationDate"] = "2027-01-15T08:00:00"
            let asOf = T.now.addingTimeInterval(-600)
            let path = try StockFixture.writeBundle(resources, centre: "DCA", asOf: asOf, name: "dca-fhir", in: dir)
            let report = try await T.importing(test, SnapshotSource(csvPath: path))[0]
            #expect(report.outcome == .loadedWithRejections, "\(report.message)")
            #expect(report.rowsTotal == 200 && report.rowsAccepted == 198 && report.rowsRejected == 2)
            let loaded = Set(units.enumerated().filter { ![10, 150].contains($0.offset) }.map(\.element.din.value))
            #expect(try await T.inForce(test, centre: "DCA").dins == loaded)
            let stored = try await test.with(.owner) { db in
                var out: [String] = []
                for try await (file, line, field, reason) in try await db.client.query(
                    "SELECT file, line, field, reason FROM bm.rejected_rows WHERE run_id = \(report.runID) ORDER BY line", logger: db.logger
                ).decode((String, Int, String, String).self) { out.append("\(file):\(line):\(field):\(reason)") }
                return out
            }
            #expect(stored == ["dca-fhir.json:11:entry[10].resource.property[ABORhD]:groupUnknown",
                               "dca-fhir.json:151:entry[150].resource.expirationDate:timestampMissingZone"])
            // Quarantined and reserved units arrive as `unavailable` and are never offered.
            #expect(try await T.scalar(test, """
                SELECT count(*)::int FROM bm.inventory_units u JOIN bm.centre_status c ON c.current_snapshot_id = u.snapshot_id
                WHERE c.centre = 'DCA' AND u.status = 'AVAILABLE'
                """) == units.enumerated().filter { ![10, 150].contains($0.offset) && $0.element.status == .available }.count)

            let again = try await T.importing(test, SnapshotSource(csvPath: path))[0]
            #expect(again.outcome == .alreadyImported)
            let csv = try T.snapshot(Array(units.prefix(50)), centre: "DCA", asOf: T.now.addingTimeInterval(-60), name: "dca-csv", in: dir)
            #expect(try await T.importing(test, csv)[0].outcome == .loaded)
            #expect(try await T.inForce(test, centre: "DCA").dins == Set(units.prefix(50).map(\.din.value)))
        }
    }

    @Test("over 1 % bad entries, a changed byte, or a Bundle for another centre: refused whole, the stock in force unchanged")
    func bundleRefused() async throws {
        try await T.withSites { test, dir in
            let first = try T.snapshot(try T.units(1...20, at: "DCA"), centre: "DCA", asOf: T.now.addingTimeInterval(-3600), name: "a1", in: dir)
            _ = try await T.importing(test, first)
            let before = try await T.inForce(test, centre: "DCA")

            var resources = try T.units(101...200, at: "DCA").map(StockFixture.resource)
            for i in [3, 40] { resources[i]["resourceType"] = "Observation" }
            let tooMany = try StockFixture.writeBundle(resources, centre: "DCA", asOf: T.now.addingTimeInterval(-300), name: "bad", in: dir)

            let good = try T.units(201...230, at: "DCA").map(StockFixture.resource)
            let changed = try StockFixture.writeBundle(good, centre: "DCA", asOf: T.now.addingTimeInterval(-200), name: "changed", in: dir)
            var bytes = try Data(contentsOf: URL(fileURLWithPath: changed))
            bytes[bytes.count / 2] = bytes[bytes.count / 2] == UInt8(ascii: "1") ? UInt8(ascii: "2") : UInt8(ascii: "1")
            try bytes.write(to: URL(fileURLWithPath: changed))

            let otherCentre = try StockFixture.writeBundle(try T.units(301...310, at: "DCB").map(StockFixture.resource), centre: "DCA",
                                                           asOf: T.now.addingTimeInterval(-100), name: "other", in: dir)

            let reports = try await T.importing(test, SnapshotSource(csvPath: tooMany), SnapshotSource(csvPath: changed), SnapshotSource(csvPath: otherCentre))
            #expect(reports.map(\.outcome) == [.refused, .refused, .refused])
            #expect(reports[0].rowsRejected == 2 && reports[0].sampleRejections.first?.contains("entry[3].resource.resourceType") == true)
            #expect(reports[1].message.hasSuffix("[checksumMismatch]"))
            #expect(reports[2].rowsRejected == 10 && reports[2].sampleRejections.first?.contains("[centreMismatch]") == true)
            #expect(try await T.inForce(test, centre: "DCA") == before)
        }
    }
}
