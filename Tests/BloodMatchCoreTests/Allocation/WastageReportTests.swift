@testable import BloodMatchCore
import Foundation
import Testing

/// Short-dated stock at risk, and transfers that only ever meet demand of the unit's own group.
@Suite struct WastageReportTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let a = GeoPoint(latitude: -33.87, longitude: 151.21)
    /// Brisbane: about 730 km, 14 h by the standard travel model.
    static let b = GeoPoint(latitude: -27.47, longitude: 153.03)
    static let centres = [IndexedCentre(siteID: "DC-A", location: a, snapshotID: 1, asOf: 1_800_000_000, expectedIntervalSeconds: 1800),
                          IndexedCentre(siteID: "DC-B", location: b, snapshotID: 2, asOf: 1_800_000_000, expectedIntervalSeconds: 1800)]
    static let sameCountry = ["DC-A": "AU-02", "DC-B": "AU-03"]

    /// O-negative red cells at DC-A expiring after the given hours.
    static func units(expiringInHours hours: [Double]) throws -> [InventoryUnit] {
        try hours.enumerated().map { n, h in
            InventoryUnit(din: try DonationNumber(parsing: BatchScenario.din(n)), productCode: "E0382V00", component: .redCells,
                          group: BloodGroup(.O, .negative), collectedAt: now.addingTimeInterval(-30 * 86_400),
                          expiresAt: now.addingTimeInterval(h * 3600), siteID: "DC-A", status: .available, attributes: [])
        }
    }

    /// Plenty of A-positive demand next to DC-A, O-negative demand only near DC-B.
    static let demand = [DemandSample(destination: a, component: .redCells, group: BloodGroup(.A, .positive), quantity: 70),
                         DemandSample(destination: b, component: .redCells, group: BloodGroup(.O, .negative), quantity: 28)]

    @Test func rotatesShortDatedONegativeOnlyToONegativeDemand() throws {
        let now = Self.now
        let units = try Self.units(expiringInHours: [70, 70, 70, 70, 70])
        let index = InventoryIndex(centres: Self.centres, units: units, builtAt: now)
        let report = WastageReport.build(index: index, held: [units[0].key], demand: Self.demand, demandDays: 7,
                                         horizonHours: BatchSettings.standard.wastageHorizonHours, now: now, regions: Self.sameCountry)
        let row = try #require(report.rows.first)
        #expect(row.centreID == "DC-A" && row.stock == 4 && row.shortDated == 4 && row.atRisk == 4 && row.daysOfSupply == nil)
        #expect(report.transfers.count == 1)
        let transfer = try #require(report.transfers.first)
        #expect(transfer.toCentreID == "DC-B" && transfer.group == BloodGroup(.O, .negative))
        #expect(!transfer.units.contains(units[0].key))
        #expect(transfer.units.count == 4)   // 4/day × 3 days of horizon = 12 units of room at DC-B
        #expect(transfer.reason.contains("with at least") && transfer.reason.contains("minimum 48 h"), "\(transfer.reason)")
    }

    @Test("A transfer moves only units that arrive with the minimum remaining life: 36 h of life and 14 h of travel leave 22 h, under the 48 h red cells need")
    func transfersArriveInDate() throws {
        let units = try Self.units(expiringInHours: [36, 40, 66, 70])
        let index = InventoryIndex(centres: Self.centres, units: units, builtAt: Self.now)
        let report = WastageReport.build(index: index, held: [], demand: Self.demand, demandDays: 7,
                                         horizonHours: BatchSettings.standard.wastageHorizonHours, now: Self.now, regions: Self.sameCountry)
        #expect(report.rows.first?.atRisk == 4)
        let transfer = try #require(report.transfers.first)
        #expect(Set(transfer.units) == Set(units[2...].map(\.key)))
        let travel = MatchingSettings.standard.travelMinutes(distanceKm: Self.a.distanceKm(to: Self.b)) * 60
        for key in transfer.units {
            let unit = try #require(units.first { $0.key == key })
            #expect(unit.expiresAt.timeIntervalSince(Self.now) - travel >= 48 * 3600)
        }
        // None arrive in date: no transfer at all.
        let late = WastageReport.build(index: InventoryIndex(centres: Self.centres, units: try Self.units(expiringInHours: [30, 36]), builtAt: Self.now),
                                       held: [], demand: Self.demand, demandDays: 7, horizonHours: BatchSettings.standard.wastageHorizonHours,
                                       now: Self.now, regions: Self.sameCountry)
        #expect(late.transfers.isEmpty && late.rows.first?.atRisk == 2)
    }

    @Test("Transfers stay within the country by default, within the region when asked, anywhere only when allowed")
    func transfersStayWithinScope() throws {
        let units = try Self.units(expiringInHours: [70, 70])
        let index = InventoryIndex(centres: Self.centres, units: units, builtAt: Self.now)
        func transfers(_ regions: [String: String], _ scope: TransferScope) -> Int {
            WastageReport.build(index: index, held: [], demand: Self.demand, demandDays: 7, horizonHours: BatchSettings.standard.wastageHorizonHours,
                                now: Self.now, regions: regions, scope: scope).transfers.count
        }
        let otherCountry = ["DC-A": "AU-02", "DC-B": "NZ-AUK"]
        #expect(transfers(Self.sameCountry, .country) == 1)
        #expect(transfers(Self.sameCountry, .region) == 0)
        #expect(transfers(otherCountry, .country) == 0)
        #expect(transfers(otherCountry, .any) == 1)
        #expect(transfers([:], .country) == 0)
    }
}
