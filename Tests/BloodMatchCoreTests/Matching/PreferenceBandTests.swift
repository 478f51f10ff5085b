@testable import BloodMatchCore
import Foundation
import Testing

/// The live order on hand-built stock: rank before expiry inside a band, the nearest across bands.
@Suite("Preference bands in live matches")
struct PreferenceBandTests {
    static let now: Int64 = 1_800_000_000
    static let destination = GeoPoint(latitude: -33.87, longitude: 151.21)

    /// A centre `minutesAway` of travel (great-circle model, standard settings) north of the destination.
    static func centre(_ id: String, minutesAway: Double) -> IndexedCentre {
        let settings = MatchingSettings.standard
        let km = (minutesAway - settings.handlingMinutes) / 60 * settings.speedKmh / settings.circuityFactor
        return IndexedCentre(siteID: id, location: GeoPoint(latitude: destination.latitude + km / 111.195, longitude: destination.longitude),
                             snapshotID: 1, asOf: now - 60, expectedIntervalSeconds: 1_800)
    }

    static func unit(_ n: Int, _ group: BloodGroup, at site: String, expiresInDays days: Int64, _ attributes: AttributeSet = []) -> InventoryUnit {
        InventoryUnit(din: try! DonationNumber(parsing: MatcherFixture.dinText(n)), productCode: "E0382V00", component: .redCells,
                      group: group, collectedAt: Date(timeIntervalSince1970: Double(now - 10 * 86_400)),
                      expiresAt: Date(timeIntervalSince1970: Double(now + days * 86_400)), siteID: site, status: .available, attributes: attributes)
    }

    /// A+ recipient's red-cell choices as the policy ranks them: A+, A−, O+, O−.
    static let choices = [GroupChoice(group: BloodGroup(.A, .positive), rank: 1, rule: "test"), GroupChoice(group: BloodGroup(.A, .negative), rank: 2, rule: "test"),
                          GroupChoice(group: BloodGroup(.O, .positive), rank: 3, rule: "test"), GroupChoice(group: .oNegative, rank: 4, rule: "test")]

    static func chosen(_ centres: [IndexedCentre], _ units: [InventoryUnit], urgency: Urgency = .emergency, quantity: Int = 1,
                       scarce: AttributeSet = AttributeSet(.irradiated)) -> [ProposedUnit] {
        let index = InventoryIndex(centres: centres, units: units, builtAt: Date(timeIntervalSince1970: Double(now)))
        let query = UnitQuery(destination: destination, component: .redCells, choices: choices, scarce: scarce, quantity: quantity, urgency: urgency)
        return UnitMatcher(index: index, settings: .standard).match(query, now: now).chosen
    }

    @Test("Emergency, one fridge: the recipient's own group, though O-negative beside it expires sooner")
    func sameFridgeRankBeforeExpiry() {
        let got = Self.chosen([Self.centre("DC1", minutesAway: 40)],
                              [Self.unit(1, .oNegative, at: "DC1", expiresInDays: 3), Self.unit(2, BloodGroup(.A, .positive), at: "DC1", expiresInDays: 30)])
        #expect(got.map(\.din) == [MatcherFixture.dinText(2)])
        #expect(got.first?.bandStartMinutes == got.first?.etaMinutes)
    }

    @Test("Emergency: own group 5 min farther is in the 10-min band and wins; 30 min farther it is not, and the nearest wins")
    func bandAcrossCentres() {
        let near = Self.centre("NEAR", minutesAway: 40)
        let oNeg = Self.unit(1, .oNegative, at: "NEAR", expiresInDays: 20)
        let inBand = Self.chosen([near, Self.centre("FIVE", minutesAway: 45)], [oNeg, Self.unit(2, BloodGroup(.A, .positive), at: "FIVE", expiresInDays: 20)])
        #expect(inBand.map(\.centreID) == ["FIVE"])
        let beyond = Self.chosen([near, Self.centre("THIRTY", minutesAway: 70)], [oNeg, Self.unit(2, BloodGroup(.A, .positive), at: "THIRTY", expiresInDays: 20)])
        #expect(beyond.map(\.centreID) == ["NEAR"])
        // Routine's band (480 min) reaches it.
        let routine = Self.chosen([near, Self.centre("THIRTY", minutesAway: 70)], [oNeg, Self.unit(2, BloodGroup(.A, .positive), at: "THIRTY", expiresInDays: 20)],
                                  urgency: .routine)
        #expect(routine.map(\.centreID) == ["THIRTY"])
    }

    @Test("Inside a band: rank, then plain before scarce, then first to expire; the next unit comes from the band of the nearest left")
    func orderInsideTheBand() {
        let a = Self.centre("A", minutesAway: 40), b = Self.centre("B", minutesAway: 48), c = Self.centre("C", minutesAway: 55)
        let units = [
            Self.unit(1, BloodGroup(.A, .positive), at: "A", expiresInDays: 20, AttributeSet(.irradiated)),
            Self.unit(2, BloodGroup(.A, .positive), at: "B", expiresInDays: 25),
            Self.unit(3, BloodGroup(.A, .positive), at: "B", expiresInDays: 9),
            Self.unit(4, BloodGroup(.A, .negative), at: "A", expiresInDays: 4),
            Self.unit(5, BloodGroup(.A, .positive), at: "C", expiresInDays: 3),
        ]
        let got = Self.chosen([a, b, c], units, quantity: 5)
        // Band from 40 min (A, B): plain A+ at B by expiry (3, 2), then irradiated A+ (1), then A− (4);
        // the band is then that of the nearest left, C at 55 min (5).
        #expect(got.map(\.din) == [3, 2, 1, 4, 5].map { MatcherFixture.dinText($0) })
        #expect(got.map { ($0.bandStartMinutes ?? -1).rounded() } == [40, 40, 40, 40, 55])
    }
}
