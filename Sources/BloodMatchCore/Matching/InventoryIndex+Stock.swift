import Foundation

/// One centre's stock of the groups asked for, as a match for the same request could use it.
public struct CentreStock: Sendable, Hashable {
    /// The centre.
    public var centre: IndexedCentre
    /// Units per group a match could choose: in an acceptable group, with every required attribute
    /// and no never-substituted one, younger than the maximum age, not held, and with the
    /// component's minimum remaining life left on arrival from this centre.
    public var unitsByGroup: [BloodGroup: Int]
    /// Earliest expiry among them (seconds since 1970).
    public var earliestExpiry: Int64?
    /// Great-circle distance to the destination.
    public var distanceKm: Double
    /// Minutes from dispatch to arrival, as the matcher computes it.
    public var etaMinutes: Double

    /// All units counted.
    public var total: Int { unitsByGroup.values.reduce(0, +) }
}

/// The expiry instants of the units of one component that carry every attribute of `required` and
/// none of `excluded`, per centre and group, each run in expiry order: what availability counts
/// need, computed once per index (the index does not change between rebuilds) instead of walking
/// units per request.
public struct ExpiryTable: Sendable {
    /// The component.
    public let component: Component
    /// The attributes every unit in the table carries.
    public let required: AttributeSet
    /// The attributes no unit in the table carries (never substituted for this request).
    public let excluded: AttributeSet
    /// Run of centre `c`, group index `g`: `starts[c * 8 + g] ..< starts[c * 8 + g + 1]`.
    let starts: [Int32]
    let expiries: [Int64]

    /// Approximate memory held, in bytes.
    public var byteCount: Int { expiries.count * 8 + starts.count * 4 }
}

extension InventoryIndex {
    /// The expiry table of `component` for units carrying every attribute of `required` and none
    /// of `excluded`: one pass over that component's units.
    public func expiryTable(component: Component, required: AttributeSet, excluded: AttributeSet = []) -> ExpiryTable {
        var starts: [Int32] = []
        starts.reserveCapacity(centres.count * 8 + 1)
        starts.append(0)
        var expiries: [Int64] = []
        for c in centres.indices {
            for g in 0..<8 {
                let b = c * Self.bucketsPerCentre + component.index * 8 + g
                for position in Int(offsets[b])..<Int(offsets[b + 1])
                where attributes[position] & required.rawValue == required.rawValue && attributes[position] & excluded.rawValue == 0 {
                    expiries.append(expiresAt[position])
                }
                starts.append(Int32(expiries.count))
            }
        }
        return ExpiryTable(component: component, required: required, excluded: excluded, starts: starts, expiries: expiries)
    }

    /// Where a held unit is in the index: a walk of its centre's bucket (a few hundred units at
    /// most), nil when the index does not hold it there.
    func position(of held: HeldUnit, centre c: Int) -> Int? {
        let din = Array(held.key.din.utf8)
        guard din.count == 13 else { return nil }
        for p in bucket(centre: c, component: held.component, group: held.group)
        where dinBytes[(p * 13)..<(p * 13 + 13)].elementsEqual(din) && productCode(at: p) == held.key.productCode {
            return p
        }
        return nil
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
