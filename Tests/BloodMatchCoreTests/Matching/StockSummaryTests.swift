@testable import BloodMatchCore
import Foundation
import Testing

/// Availability counts are what a match could use: per centre and group they equal the units the
/// brute-force matcher reference finds eligible for the same query (every rule, each centre's own
/// arrival threshold), whether counted from expiry tables, the index's buckets or a walk, and
/// with held units left out.
struct StockSummaryTests {
    /// Eligible units of `query` per centre and group, with the earliest expiry, from the reference.
    static func reference(_ f: MatcherFixture, _ query: UnitQuery, settings: MatchingSettings, held: Set<String>)
        -> [String: ([BloodGroup: Int], Int64?)] {
        let byDIN = Dictionary(uniqueKeysWithValues: f.units.map { ($0.din.value, $0) })
        var out: [String: ([BloodGroup: Int], Int64?)] = [:]
        for e in f.eligible(query, settings: settings, distanceOnly: false, travelTimes: TravelTimeMatrix()) where !held.contains(e.din) {
            guard let unit = byDIN[e.din] else { continue }
            var entry = out[unit.siteID] ?? ([:], nil)
            entry.0[unit.group, default: 0] += 1
            entry.1 = min(entry.1 ?? e.expires, e.expires)
            out[unit.siteID] = entry
        }
        return out
    }

    @Test("counts equal the matcher reference's eligible units per centre and group, with tables, without, and with held units left out")
    func countsAreWhatAMatchCouldUse() {
        let f = MatcherFixture.make(seed: 11, centres: 23, units: 6_000)
        let index = InventoryIndex(centres: f.centres, units: f.units, builtAt: Date(timeIntervalSince1970: Double(f.now)))
        var rng = SplitMix64(seed: 5)
        var checked = 0
        var heldChecked = 0
        for n in 0..<300 {
            var query = f.randomQuery(&rng)
            query.quantity = 1
            let settings: MatchingSettings = n % 3 == 0 ? .standard : {
                var s = MatchingSettings.standard
                s.allowStaleCentres = false
                return s
            }()
            let matcher = UnitMatcher(index: index, settings: settings)
            // Hold a few eligible units (their centre, component and group as the holds table has them).
            let eligible = f.eligible(query, settings: settings, distanceOnly: false, travelTimes: TravelTimeMatrix())
            let byDIN = Dictionary(uniqueKeysWithValues: f.units.map { ($0.din.value, $0) })
            let heldDINs = Set(eligible.prefix(n % 4 == 0 ? 0 : 5).map(\.din))
            let held = heldDINs.compactMap { byDIN[$0] }.map { HeldUnit(key: $0.key, centreID: $0.siteID, component: $0.component, group: $0.group) }
            let expected = Self.reference(f, query, settings: settings, held: heldDINs)
            let walked = matcher.usableStock(query, now: f.now, held: held)
            let tabled = matcher.usableStock(query, now: f.now, held: held) { component, required, excluded in
                index.expiryTable(component: component, required: required, excluded: excluded)
            }
            #expect(walked == tabled)
            for entry in walked {
                let (counts, earliest) = expected[entry.centre.siteID] ?? ([:], nil)
                #expect(entry.unitsByGroup == counts, "query \(n) \(entry.centre.siteID) \(query.component)")
                #expect(entry.earliestExpiry == earliest, "query \(n) \(entry.centre.siteID)")
                checked += entry.total
            }
            heldChecked += held.count
        }
        #expect(checked > 10_000 && heldChecked > 500, "\(checked) units counted, \(heldChecked) held")
    }

    @Test("a table built for another component, requirement set or exclusion set is not used")
    func mismatchedTableIgnored() {
        let f = MatcherFixture.make(seed: 12, centres: 5, units: 1_000)
        let index = InventoryIndex(centres: f.centres, units: f.units, builtAt: Date(timeIntervalSince1970: Double(f.now)))
        let query = UnitQuery(destination: GeoPoint(latitude: -33.9, longitude: 151.2), component: .redCells,
                              choices: BloodGroup.all.map { GroupChoice(group: $0, rank: 1, rule: "test") },
                              required: AttributeSet([.irradiated]), exclusive: AttributeSet([.washed]), quantity: 1, urgency: .routine)
        let matcher = UnitMatcher(index: index, settings: .standard)
        let walked = matcher.usableStock(query, now: f.now)
        for wrong in [index.expiryTable(component: .platelets, required: AttributeSet([.irradiated]), excluded: AttributeSet([.washed])),
                      index.expiryTable(component: .redCells, required: AttributeSet([.irradiated])),
                      index.expiryTable(component: .redCells, required: [], excluded: AttributeSet([.washed]))] {
            #expect(matcher.usableStock(query, now: f.now) { _, _, _ in wrong } == walked)
        }
    }
}
