@testable import BloodMatchCore
import Foundation
import Testing

/// The matcher against an independent brute-force scan of every unit with the same ranking
/// (`MatcherFixture.bruteForce`), on random data that includes antimeridian and polar centres,
/// stale centres, ties in expiry at one centre, quantities larger than supply and units that
/// expire during transport.
@Suite("Nearest-unit matcher agrees with a brute-force reference")
struct UnitMatcherReferenceTests {
    static let fixture = MatcherFixture.make(seed: 7, centres: 60, units: 12_000)
    static let index = InventoryIndex(centres: fixture.centres, units: fixture.units,
                                      builtAt: Date(timeIntervalSince1970: Double(fixture.now)))

    @Test("2 × 1,000 random queries, standard settings: identical answers", arguments: [false, true])
    func standardSettings(allowStale: Bool) {
        var settings = MatchingSettings.standard
        settings.allowStaleCentres = allowStale
        let matcher = UnitMatcher(index: Self.index, settings: settings)
        var rng = MatcherFixture.RNG(seed: allowStale ? 11 : 12)
        var mismatches = 0
        for _ in 0..<1000 {
            let query = Self.fixture.randomQuery(&rng)
            let got = matcher.match(query, now: Self.fixture.now).chosen.map(\.din)
            let want = Self.fixture.bruteForce(query, settings: settings, distanceOnly: false)
            if got != want { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test("1,000 random queries ordered by cost, as the batch optimiser asks for candidates: identical answers")
    func costOrdering() {
        let settings = MatchingSettings.standard
        let matcher = UnitMatcher(index: Self.index, settings: settings, ordering: .cost)
        var rng = MatcherFixture.RNG(seed: 13)
        var mismatches = 0
        for _ in 0..<1000 {
            let query = Self.fixture.randomQuery(&rng)
            if matcher.match(query, now: Self.fixture.now).chosen.map(\.din) != Self.fixture.bruteForceByCost(query, settings: settings) { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test("2,000 random queries in the benchmark's distance-only mode: identical answers")
    func distanceOnly() {
        let matcher = UnitMatcher(index: Self.index, settings: .benchmark, distanceOnly: true)
        var rng = MatcherFixture.RNG(seed: 99)
        var mismatches = 0
        for _ in 0..<2000 {
            let query = Self.fixture.randomQuery(&rng)
            let got = matcher.match(query, now: Self.fixture.now).chosen.map(\.din)
            let want = Self.fixture.bruteForce(query, settings: .benchmark, distanceOnly: true)
            if got != want { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test("a travel-time matrix replaces the great-circle model for the pairs it lists")
    func travelTimeMatrix() {
        var rng = MatcherFixture.RNG(seed: 21)
        var matrix = TravelTimeMatrix()
        for h in 0..<5 {
            for centre in Self.fixture.centres where rng.next() % 2 == 0 {
                matrix.set(from: centre.siteID, to: "H\(h)", minutes: Double(rng.next() % 600) + 5)
            }
        }
        let settings = MatchingSettings.standard
        let matcher = UnitMatcher(index: Self.index, settings: settings, travelTimes: matrix)
        var mismatches = 0
        var differsFromModel = 0
        for i in 0..<500 {
            var query = Self.fixture.randomQuery(&rng)
            query.destinationSiteID = "H\(i % 5)"
            let got = matcher.match(query, now: Self.fixture.now).chosen.map(\.din)
            if got != Self.fixture.bruteForce(query, settings: settings, distanceOnly: false, travelTimes: matrix) { mismatches += 1 }
            if got != Self.fixture.bruteForce(query, settings: settings, distanceOnly: false) { differsFromModel += 1 }
        }
        #expect(mismatches == 0)
        #expect(differsFromModel > 0)
    }

    @Test("a travel-time file with a bad row is refused naming line and field", arguments: [
        ("from_site,to_site,minutes\nDC1,H1,abc\n", 2, "minutes"),
        ("from,to,minutes\n", 1, "header"),
        ("from_site,to_site,minutes\nDC1,H1,10\nDC1,H1,12\n", 3, "to_site"),
        ("from_site,to_site,minutes\nDC1,H1\n", 2, "row"),
        ("from_site,to_site,minutes\nDC1,H1,-4\n", 2, "minutes"),
    ])
    func travelTimeFileErrors(text: String, line: Int, field: String) {
        #expect { try TravelTimeMatrix(csv: text, fileName: "travel-times.csv") } throws: { error in
            guard let error = error as? TravelTimeMatrix.ParseError else { return false }
            return error.line == line && error.field == field && error.file == "travel-times.csv"
        }
    }

    @Test("every returned unit is compatible, available, unexpired at arrival and has what was required")
    func properties() {
        let settings = MatchingSettings.standard
        let matcher = UnitMatcher(index: Self.index, settings: settings)
        let units = Dictionary(uniqueKeysWithValues: Self.fixture.units.map { ($0.din.value, $0) })
        var rng = MatcherFixture.RNG(seed: 5)
        for _ in 0..<1000 {
            let query = Self.fixture.randomQuery(&rng)
            let result = matcher.match(query, now: Self.fixture.now)
            #expect(result.chosen.count <= query.quantity)
            #expect(Set(result.chosen.map(\.din)).count == result.chosen.count)
            for proposed in result.chosen {
                guard let unit = units[proposed.din] else { Issue.record("unknown DIN \(proposed.din)"); continue }
                #expect(unit.status == .available)
                #expect(unit.component == query.component)
                #expect(query.choices.contains { $0.group == unit.group })
                #expect(unit.attributes.isSuperset(of: query.required))
                let arrival = Self.fixture.now + Int64((proposed.etaMinutes * 60).rounded(.up))
                #expect(Int64(unit.expiresAt.timeIntervalSince1970) > arrival)
            }
        }
    }

    @Test("a quantity larger than the supply returns every eligible unit (a partial fill)")
    func quantityLargerThanSupply() {
        let settings = MatchingSettings.standard
        let matcher = UnitMatcher(index: Self.index, settings: settings)
        let query = UnitQuery(destination: GeoPoint(latitude: -33.9, longitude: 151.2), component: .wholeBlood,
                              choices: [GroupChoice(group: BloodGroup(.AB, .negative), rank: 1, rule: "test")],
                              quantity: 100_000, urgency: .routine)
        let got = matcher.match(query, now: Self.fixture.now).chosen.map(\.din)
        let want = Self.fixture.bruteForce(query, settings: settings, distanceOnly: false)
        #expect(!want.isEmpty)
        #expect(want.count < 100_000)
        #expect(got == want)
    }

    @Test("stale centres are flagged with their data age, or skipped and reported when policy forbids them")
    func staleCentres() throws {
        let centre = IndexedCentre(siteID: "OLD", location: GeoPoint(latitude: 0, longitude: 0), snapshotID: 1,
                                   asOf: 1_000, expectedIntervalSeconds: 1_800)
        let din = try DonationNumber(parsing: "T000026000001")
        let unit = InventoryUnit(din: din, productCode: "E0382V00", component: .redCells, group: .oNegative,
                                 collectedAt: Date(timeIntervalSince1970: 0), expiresAt: Date(timeIntervalSince1970: 10_000_000),
                                 siteID: "OLD", status: .available, attributes: [])
        let index = InventoryIndex(centres: [centre], units: [unit], builtAt: Date(timeIntervalSince1970: 1_000))
        let query = UnitQuery(destination: GeoPoint(latitude: 0.1, longitude: 0.1), component: .redCells,
                              choices: [GroupChoice(group: .oNegative, rank: 1, rule: "test")], quantity: 1, urgency: .emergency)
        let allowed = UnitMatcher(index: index, settings: .standard).match(query, now: 1_000 + 7_200)
        #expect(allowed.chosen.first?.staleCentre == true)
        #expect(allowed.chosen.first?.dataAgeSeconds == 7_200)
        var strict = MatchingSettings.standard
        strict.allowStaleCentres = false
        let refused = UnitMatcher(index: index, settings: strict).match(query, now: 1_000 + 7_200)
        #expect(refused.chosen.isEmpty)
        #expect(refused.rejected.contains { $0.reason == .staleCentre && $0.centreID == "OLD" })
    }

    @Test("a unit that would expire during transport is not offered, and the rationale says so")
    func expiresDuringTransport() throws {
        let near = IndexedCentre(siteID: "NEAR", location: GeoPoint(latitude: 0, longitude: 0), snapshotID: 1, asOf: 0, expectedIntervalSeconds: 1_800)
        let din = try DonationNumber(parsing: "T000026000002")
        let now: Int64 = 100
        // Expires 30 minutes from now; even the nearest delivery takes longer than that plus the margin.
        let unit = InventoryUnit(din: din, productCode: "E2964V00", component: .platelets, group: .oNegative,
                                 collectedAt: Date(timeIntervalSince1970: 0), expiresAt: Date(timeIntervalSince1970: Double(now + 1_800)),
                                 siteID: "NEAR", status: .available, attributes: [])
        let index = InventoryIndex(centres: [near], units: [unit], builtAt: Date(timeIntervalSince1970: 0))
        let query = UnitQuery(destination: GeoPoint(latitude: 0.05, longitude: 0), component: .platelets,
                              choices: [GroupChoice(group: .oNegative, rank: 1, rule: "test")], quantity: 1, urgency: .emergency)
        let result = UnitMatcher(index: index, settings: .standard).match(query, now: now)
        #expect(result.chosen.isEmpty)
        #expect(result.rejected.contains { $0.reason == .expiredBeforeArrival && $0.exampleDIN == din.value })
    }
}
