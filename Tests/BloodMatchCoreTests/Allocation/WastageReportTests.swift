@testable import BloodMatchCore
import Foundation
import Testing

/// Short-dated stock at risk, and transfers that only ever meet demand of the unit's own group.
@Suite struct WastageReportTests {
    @Test func rotatesShortDatedONegativeOnlyToONegativeDemand() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let a = GeoPoint(latitude: -33.87, longitude: 151.21)
        let b = GeoPoint(latitude: -27.47, longitude: 153.03)
        let centres = [IndexedCentre(siteID: "DC-A", location: a, snapshotID: 1, asOf: 1_800_000_000, expectedIntervalSeconds: 1800),
                       IndexedCentre(siteID: "DC-B", location: b, snapshotID: 2, asOf: 1_800_000_000, expectedIntervalSeconds: 1800)]
        let units = try (0..<5).map { n in
            InventoryUnit(din: try DonationNumber(parsing: BatchScenario.din(n)), productCode: "E0382V00", component: .redCells,
                          group: BloodGroup(.O, .negative), collectedAt: now.addingTimeInterval(-40 * 86_400),
                          expiresAt: now.addingTimeInterval(36 * 3600), siteID: "DC-A", status: .available, attributes: [])
        }
        let index = InventoryIndex(centres: centres, units: units, builtAt: now)
        // Plenty of A-positive demand next to DC-A, O-negative demand only near DC-B.
        let demand = [DemandSample(destination: a, component: .redCells, group: BloodGroup(.A, .positive), quantity: 70),
                      DemandSample(destination: b, component: .redCells, group: BloodGroup(.O, .negative), quantity: 28)]
        let report = WastageReport.build(index: index, held: [units[0].key], demand: demand, demandDays: 7,
                                         horizonHours: BatchSettings.standard.wastageHorizonHours, now: now)
        let row = try #require(report.rows.first)
        #expect(row.centreID == "DC-A" && row.stock == 4 && row.shortDated == 4 && row.atRisk == 4 && row.daysOfSupply == nil)
        #expect(report.transfers.count == 1)
        let transfer = try #require(report.transfers.first)
        #expect(transfer.toCentreID == "DC-B" && transfer.group == BloodGroup(.O, .negative))
        #expect(!transfer.units.contains(units[0].key))
        #expect(transfer.units.count == 4)   // 4/day × 3 days of horizon = 12 units of room at DC-B
    }
}
