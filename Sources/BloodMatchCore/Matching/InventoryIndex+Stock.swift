import Foundation

/// One centre's stock of the groups asked for, as the index holds it.
public struct CentreStock: Sendable, Hashable {
    /// The centre.
    public var centre: IndexedCentre
    /// Units per group that are unexpired at `now` and carry every required attribute.
    public var unitsByGroup: [BloodGroup: Int]
    /// Earliest expiry among them (seconds since 1970).
    public var earliestExpiry: Int64?
    /// Great-circle distance to the destination.
    public var distanceKm: Double

    /// All units counted.
    public var total: Int { unitsByGroup.values.reduce(0, +) }
}

extension InventoryIndex {
    /// Per-centre counts of available units of `component` in the groups of `choices` that are
    /// unexpired at `now` and carry every attribute their choice requires, with the distance to
    /// `destination`. Every
    /// centre is returned (with zero units where there are none), so callers can show stale
    /// centres too. Cost: one pass over the matching buckets; no allocation per unit.
    public func stock(component: Component, choices: [(group: BloodGroup, required: AttributeSet)], now: Int64,
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
