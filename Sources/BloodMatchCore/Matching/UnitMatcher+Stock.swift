import Foundation

/// A unit under an active hold, issued, or returned since its centre's snapshot, with where it
/// sits in the stock (its centre, component and group), so availability counts can leave it out
/// without a search of the whole index.
public struct HeldUnit: Sendable, Hashable {
    /// The unit's identity.
    public var key: UnitKey
    /// Its centre.
    public var centreID: String
    /// Its component.
    public var component: Component
    /// Its group.
    public var group: BloodGroup

    /// Creates one.
    public init(key: UnitKey, centreID: String, component: Component, group: BloodGroup) {
        self.key = key
        self.centreID = centreID
        self.component = component
        self.group = group
    }
}

extension UnitMatcher {
    /// Per-centre counts of exactly the units a match for `query` at `now` could choose, whatever
    /// the quantity: the matcher's own eligibility (acceptable group, required and never-substituted
    /// attributes, maximum age, the component's minimum remaining life on arrival from that
    /// centre, stale centres when settings refuse them) with `held` units left out. Every centre is
    /// returned, with zero units where there are none, so callers can show stale centres too.
    ///
    /// Counts come from expiry-sorted runs by binary search at each centre's own threshold: the
    /// index's buckets when a choice needs no attribute filter, else the table `table` gives for
    /// (component, required, excluded), else a walk of the bucket. A maximum age, or a held unit
    /// in a bucket, makes that bucket walked.
    public func usableStock(_ query: UnitQuery, now: Int64, held: [HeldUnit] = [],
                            table: (_ component: Component, _ required: AttributeSet, _ excluded: AttributeSet) -> ExpiryTable? = { _, _, _ in nil })
        -> [CentreStock] {
        let centres = index.centres
        let marginSeconds = Int64((settings.minimumRemainingHoursAtArrival[query.component] ?? 0) * 3600)
        let target = query.destination.unitVector
        // Held units by centre id, each with its bucket's group.
        var heldByCentre: [String: [HeldUnit]] = [:]
        for unit in held where unit.component == query.component { heldByCentre[unit.centreID, default: []].append(unit) }
        var tables: [Int: ExpiryTable] = [:]
        var out: [CentreStock] = []
        out.reserveCapacity(centres.count)
        for (c, centre) in centres.enumerated() {
            let cosine = max(-1, min(1, (index.centreVectors[c] * target).sum()))
            let distance = acos(cosine) * GeoPoint.earthRadiusKm
            let eta = etaMinutes(centre: centre.siteID, distanceKm: distance, destinationSiteID: query.destinationSiteID)
            var counts: [BloodGroup: Int] = [:]
            var earliest: Int64?
            let refused = centre.isStale(now: now) && !settings.allowStaleCentres
            if !refused, query.quantity > 0 {
                // A unit must still have the minimum remaining life when it arrives (the matcher's rule).
                let minimumExpiry = distanceOnly ? now : now + Int64((eta * 60).rounded(.up)) + marginSeconds
                let heldHere = (heldByCentre[centre.siteID] ?? []).compactMap { index.position(of: $0, centre: c) }
                for (k, choice) in query.choices.enumerated() {
                    let required = query.required.rawValue | choice.required.rawValue
                    let excluded = query.exclusive.rawValue & ~required
                    let bucket = index.bucket(centre: c, component: query.component, group: choice.group)
                    if bucket.isEmpty { continue }
                    let heldInBucket = heldHere.filter { bucket.contains($0) }
                    var n = 0
                    var first: Int64?
                    if query.maximumUnitAgeSeconds == nil, heldInBucket.isEmpty, required == 0, excluded == 0 {
                        (n, first) = InventoryIndex.unexpired(index.expiresAt, bucket, now: minimumExpiry)
                    } else if query.maximumUnitAgeSeconds == nil, heldInBucket.isEmpty,
                              let t = tables[k] ?? table(query.component, AttributeSet(rawValue: required), AttributeSet(rawValue: excluded)),
                              t.component == query.component, t.required.rawValue == required, t.excluded.rawValue == excluded,
                              t.starts.count == centres.count * 8 + 1 {
                        tables[k] = t
                        let run = c * 8 + choice.group.index
                        (n, first) = InventoryIndex.unexpired(t.expiries, Int(t.starts[run])..<Int(t.starts[run + 1]), now: minimumExpiry)
                    } else {
                        for p in bucket where index.expiresAt[p] > minimumExpiry {
                            let attrs = index.attributes[p]
                            guard attrs & required == required, attrs & excluded == 0, !heldInBucket.contains(p) else { continue }
                            if let maxAge = query.maximumUnitAgeSeconds, now - index.collectedAt[p] >= maxAge { continue }
                            n += 1
                            first = min(first ?? index.expiresAt[p], index.expiresAt[p])
                        }
                    }
                    if n > 0 { counts[choice.group, default: 0] += n }
                    if let first { earliest = min(earliest ?? first, first) }
                }
            }
            out.append(CentreStock(centre: centre, unitsByGroup: counts, earliestExpiry: earliest, distanceKm: distance, etaMinutes: eta))
        }
        return out
    }
}
