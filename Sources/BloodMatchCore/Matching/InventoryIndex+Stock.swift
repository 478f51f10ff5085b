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

/// The expiry instants of the units of one component that carry every attribute of `required`,
/// per centre and group, each run in expiry order: what availability counts need, computed once
/// per index (the index does not change between rebuilds) instead of walking units per request.
public struct ExpiryTable: Sendable {
    /// The component.
    public let component: Component
    /// The attributes every unit in the table carries.
    public let required: AttributeSet
    /// Run of centre `c`, group index `g`: `starts[c * 8 + g] ..< starts[c * 8 + g + 1]`.
    let starts: [Int32]
    let expiries: [Int64]

    /// Approximate memory held, in bytes.
    public var byteCount: Int { expiries.count * 8 + starts.count * 4 }
}

extension InventoryIndex {
    /// The expiry table of `component` for units carrying every attribute of `required`: one pass
    /// over that component's units.
    public func expiryTable(component: Component, required: AttributeSet) -> ExpiryTable {
        var starts: [Int32] = []
        starts.reserveCapacity(centres.count * 8 + 1)
        starts.append(0)
        var expiries: [Int64] = []
        for c in centres.indices {
            for g in 0..<8 {
                let b = c * Self.bucketsPerCentre + component.index * 8 + g
                for position in Int(offsets[b])..<Int(offsets[b + 1])
                where attributes[position] & required.rawValue == required.rawValue {
                    expiries.append(expiresAt[position])
                }
                starts.append(Int32(expiries.count))
            }
        }
        return ExpiryTable(component: component, required: required, starts: starts, expiries: expiries)
    }

    /// Per-centre counts of available units of `component` in the groups of `choices` that are
    /// unexpired at `now` and carry every attribute their choice requires, with the earliest
    /// expiry and the distance to `destination`; every centre is returned (with zero units where
    /// there are none), so callers can show stale centres too. From per-index data: a
    /// choice with no required attributes is counted by binary search in the index's own buckets
    /// (sorted by expiry), one with required attributes in the table `table(required)` gives,
    /// or by a walk over its bucket when that gives nil. Cost without walks: about
    /// centres × groups × log(units per bucket).
    public func stock(component: Component, choices: [(group: BloodGroup, required: AttributeSet)], now: Int64,
                      destination: GeoPoint, table: (AttributeSet) -> ExpiryTable?) -> [CentreStock] {
        let target = destination.unitVector
        var tables: [AttributeSet: ExpiryTable] = [:]
        for (_, required) in choices where !required.isEmpty && tables[required] == nil {
            if let found = table(required), found.component == component, found.required == required,
               found.starts.count == centres.count * 8 + 1 {
                tables[required] = found
            }
        }
        var out: [CentreStock] = []
        out.reserveCapacity(centres.count)
        for (c, centre) in centres.enumerated() {
            var counts: [BloodGroup: Int] = [:]
            var earliest: Int64?
            for (group, required) in choices {
                let n: Int
                let first: Int64?
                if required.isEmpty {
                    (n, first) = Self.unexpired(expiresAt, bucket(centre: c, component: component, group: group), now: now)
                } else if let t = tables[required] {
                    let k = c * 8 + group.index
                    (n, first) = Self.unexpired(t.expiries, Int(t.starts[k])..<Int(t.starts[k + 1]), now: now)
                } else {
                    var count = 0
                    var soonest: Int64?
                    for position in bucket(centre: c, component: component, group: group)
                    where expiresAt[position] > now && attributes[position] & required.rawValue == required.rawValue {
                        count += 1
                        soonest = min(soonest ?? expiresAt[position], expiresAt[position])
                    }
                    (n, first) = (count, soonest)
                }
                if n > 0 { counts[group] = n }
                if let first { earliest = min(earliest ?? first, first) }
            }
            let cosine = max(-1, min(1, (centreVectors[c] * target).sum()))
            out.append(CentreStock(centre: centre, unitsByGroup: counts, earliestExpiry: earliest,
                                   distanceKm: acos(cosine) * GeoPoint.earthRadiusKm))
        }
        return out
    }

    /// Units in `range` of an expiry-sorted array that are unexpired at `now`, and the earliest
    /// of their expiries.
    @inline(__always)
    static func unexpired(_ expiries: [Int64], _ range: Range<Int>, now: Int64) -> (Int, Int64?) {
        var low = range.lowerBound
        var high = range.upperBound
        while low < high {
            let middle = (low + high) / 2
            if expiries[middle] > now { high = middle } else { low = middle + 1 }
        }
        return (range.upperBound - low, low < range.upperBound ? expiries[low] : nil)
    }
}
