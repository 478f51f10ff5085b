@testable import BloodMatchCore
import Foundation
import Testing

/// Availability counts from per-index expiry tables equal a brute-force count over the units.
struct StockSummaryTests {
    /// Counts and earliest expiry per centre by scanning every unit.
    static func bruteForce(_ f: MatcherFixture, component: Component, choices: [(group: BloodGroup, required: AttributeSet)],
                           now: Int64) -> [String: ([BloodGroup: Int], Int64?)] {
        var out: [String: ([BloodGroup: Int], Int64?)] = [:]
        for unit in f.units where unit.status == .available && unit.component == component {
            let expires = Int64(unit.expiresAt.timeIntervalSince1970)
            guard expires > now, let choice = choices.first(where: { $0.group == unit.group }),
                  unit.attributes.isSuperset(of: choice.required) else { continue }
            var entry = out[unit.siteID] ?? ([:], nil)
            entry.0[unit.group, default: 0] += 1
            entry.1 = min(entry.1 ?? expires, expires)
            out[unit.siteID] = entry
        }
        return out
    }

    @Test("table counts equal the walk and a brute-force scan, with and without requirements, as units expire")
    func tablesMatchBruteForce() {
        let f = MatcherFixture.make(seed: 11, centres: 23, units: 6_000)
        let index = InventoryIndex(centres: f.centres, units: f.units, builtAt: Date(timeIntervalSince1970: Double(f.now)))
        let destination = GeoPoint(latitude: -33.9, longitude: 151.2)
        let requirementSets: [AttributeSet] = [AttributeSet(), AttributeSet([.irradiated]), AttributeSet([.irradiated, .cmvNegative]),
                                              AttributeSet([.washed, .kNegative, .hlaMatched])]
        var checked = 0
        for component in Component.allCases {
            for required in requirementSets {
                let table = index.expiryTable(component: component, required: required)
                for groups in [BloodGroup.all, [BloodGroup.all[0]], Array(BloodGroup.all.prefix(4))] {
                    // Group-specific extra requirements mix tables of several sets in one query.
                    let choices = groups.enumerated().map { i, g in (group: g, required: i % 3 == 2 ? required.union(AttributeSet([.lowTitre])) : required) }
                    for now in [f.now - 100_000, f.now, f.now + 200_000, f.now + 900_000] {
                        let walked = index.walkedStock(component: component, choices: choices, now: now, destination: destination)
                        let fast = index.stock(component: component, choices: choices, now: now, destination: destination) { set in
                            set == required ? table : index.expiryTable(component: component, required: set)
                        }
                        let partial = index.stock(component: component, choices: choices, now: now, destination: destination) { _ in nil }
                        #expect(fast == walked)
                        #expect(partial == walked)
                        let expected = Self.bruteForce(f, component: component, choices: choices, now: now)
                        for entry in fast {
                            let (counts, earliest) = expected[entry.centre.siteID] ?? ([:], nil)
                            #expect(entry.unitsByGroup == counts, "\(entry.centre.siteID) \(component) \(required)")
                            #expect(entry.earliestExpiry == earliest)
                            checked += entry.total
                        }
                    }
                }
            }
        }
        #expect(checked > 10_000)
    }

    @Test("a table built for another component or requirement set is not used")
    func mismatchedTableIgnored() {
        let f = MatcherFixture.make(seed: 12, centres: 5, units: 1_000)
        let index = InventoryIndex(centres: f.centres, units: f.units, builtAt: Date(timeIntervalSince1970: Double(f.now)))
        let wrong = index.expiryTable(component: .platelets, required: AttributeSet([.irradiated]))
        let choices = BloodGroup.all.map { (group: $0, required: AttributeSet([.irradiated])) }
        let walked = index.walkedStock(component: .redCells, choices: choices, now: f.now, destination: GeoPoint(latitude: 0, longitude: 0))
        let fast = index.stock(component: .redCells, choices: choices, now: f.now, destination: GeoPoint(latitude: 0, longitude: 0)) { _ in wrong }
        #expect(fast == walked)
    }
}

/// The reference the per-index counts are checked against: a walk over every unit.
extension InventoryIndex {
    /// Per-centre counts of available units of `component` in the groups of `choices` that are
    /// unexpired at `now` and carry every attribute their choice requires, with the distance to
    /// `destination`. Every
    /// centre is returned (with zero units where there are none), so callers can show stale
    /// centres too. Cost: one pass over the matching buckets; no allocation per unit.
    func walkedStock(component: Component, choices: [(group: BloodGroup, required: AttributeSet)], now: Int64,
                     destination: GeoPoint) -> [CentreStock] {
        let target = destination.unitVector
        var out: [CentreStock] = []
        out.reserveCapacity(centres.count)
        for (c, centre) in centres.enumerated() {
            var counts: [BloodGroup: Int] = [:]
            var earliest: Int64?
            for (group, required) in choices {
                var n = 0
                for position in bucket(centre: c, component: component, group: group)
                where expiresAt[position] > now && attributes[position] & required.rawValue == required.rawValue {
                    n += 1
                    earliest = min(earliest ?? expiresAt[position], expiresAt[position])
                }
                if n > 0 { counts[group] = n }
            }
            let cosine = max(-1, min(1, (centreVectors[c] * target).sum()))
            out.append(CentreStock(centre: centre, unitsByGroup: counts, earliestExpiry: earliest,
                                   distanceKm: acos(cosine) * GeoPoint.earthRadiusKm))
        }
        return out
    }
}
