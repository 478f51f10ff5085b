@testable import BloodMatchCore
import Foundation

/// Deterministic random data for matcher tests: centres anywhere on Earth (including next to the
/// antimeridian and the poles), units with many ties in expiry at one centre.
struct MatcherFixture {
    var centres: [IndexedCentre]
    var units: [InventoryUnit]
    var now: Int64

    typealias RNG = SplitMix64

    static func dinText(_ n: Int) -> String { "T" + String(format: "%04d", n / 1_000_000 % 10000) + String(format: "26%06d", n % 1_000_000) }

    static func make(seed: UInt64, centres centreCount: Int, units unitCount: Int, now: Int64 = 1_800_000_000) -> MatcherFixture {
        var rng = RNG(seed: seed)
        var centres: [IndexedCentre] = []
        for c in 0..<centreCount {
            let location: GeoPoint
            switch c % 5 {
            case 0: location = GeoPoint(latitude: Double.random(in: -60...60, using: &rng), longitude: Double.random(in: 179...180, using: &rng) * (c % 2 == 0 ? 1 : -1))
            case 1: location = GeoPoint(latitude: Double.random(in: 88...90, using: &rng) * (c % 2 == 0 ? 1 : -1), longitude: Double.random(in: -180...180, using: &rng))
            default: location = GeoPoint(latitude: Double.random(in: -45 ... -10, using: &rng), longitude: Double.random(in: 113...154, using: &rng))
            }
            let stale = c % 7 == 3
            centres.append(IndexedCentre(siteID: String(format: "C%03d", c), location: location, snapshotID: Int64(c + 1),
                                         asOf: now - (stale ? 7200 : 300), expectedIntervalSeconds: 1800))
        }
        var units: [InventoryUnit] = []
        let attrs: [UnitAttribute] = [.irradiated, .cmvNegative, .kNegative, .washed, .hlaMatched, .lowTitre]
        for n in 0..<unitCount {
            let centre = centres[Int(rng.next() % UInt64(centreCount))]
            let component = Component.allCases[Int(rng.next() % 5)]
            let group = BloodGroup.all[Int(rng.next() % 8)]
            // Expiry on a coarse grid so many units tie on expiry at one centre.
            let expires = now + Int64(rng.next() % 40) * 21_600 - 43_200
            let collected = expires - 35 * 86_400
            var set = AttributeSet()
            for a in attrs where rng.next() % 5 == 0 { set.insert(a) }
            let status: UnitStatus = rng.next() % 10 == 0 ? .reserved : .available
            let din = try! DonationNumber(parsing: dinText(n))
            units.append(InventoryUnit(din: din, productCode: "E0382V00", component: component, group: group,
                                       collectedAt: Date(timeIntervalSince1970: Double(collected)),
                                       expiresAt: Date(timeIntervalSince1970: Double(expires)),
                                       siteID: centre.siteID, status: status, attributes: set))
        }
        return MatcherFixture(centres: centres, units: units, now: now)
    }

    /// One eligible unit as the references see it.
    struct Eligible {
        var eta: Double
        var rank: Int
        var surplus: Int
        var score: Double
        var expires: Int64
        var din: String
        var limited = false
    }

    /// The reference for live matches: scan every unit, apply every rule, then repeatedly take, from
    /// the units arriving at most the urgency's band tolerance after the nearest one left (and, when
    /// that one arrives by the deadline, no later than the deadline), the best by (rank, surplus
    /// attributes, expiry, DIN); units of limited choices only up to the smallest limit; distance
    /// only: the nearest, then expiry, then DIN.
    func bruteForce(_ query: UnitQuery, settings: MatchingSettings, distanceOnly: Bool,
                    travelTimes: TravelTimeMatrix = TravelTimeMatrix()) -> [String] {
        var left = eligible(query, settings: settings, distanceOnly: distanceOnly, travelTimes: travelTimes)
        let tolerance = distanceOnly ? 0 : settings.preferenceBandMinutes[query.urgency] ?? 0
        let deadline = distanceOnly ? .infinity : settings.arrivalDeadlineMinutes(urgency: query.urgency, neededBy: query.neededBy, now: now) ?? .infinity
        var limitLeft = query.choices.compactMap(\.maximumUnits).min() ?? .max
        func key(_ e: Eligible) -> (Int, Int, Int64) { distanceOnly ? (0, 0, e.expires) : (e.rank, e.surplus, e.expires) }
        var out: [String] = []
        while out.count < query.quantity {
            if limitLeft <= 0 { left.removeAll(where: \.limited) }
            guard let nearest = left.map(\.eta).min() else { break }
            let end = nearest <= deadline ? min(nearest + tolerance, deadline) : nearest + tolerance
            var best: Int?
            for (i, e) in left.enumerated() where e.eta <= end {
                if let b = best, key(left[b]) < key(e) || key(left[b]) == key(e) && left[b].din.utf8.lexicographicallyPrecedes(e.din.utf8) { continue }
                best = i
            }
            let taken = left.remove(at: best!)
            if taken.limited { limitLeft -= 1 }
            out.append(taken.din)
        }
        return out
    }

    /// The reference for batch candidates (`UnitMatcher.Ordering.cost`): sort by (cost, expiry, DIN).
    func bruteForceByCost(_ query: UnitQuery, settings: MatchingSettings) -> [String] {
        var all = eligible(query, settings: settings, distanceOnly: false, travelTimes: TravelTimeMatrix())
        all.sort { ($0.score, $0.expires) < ($1.score, $1.expires) || ($0.score, $0.expires) == ($1.score, $1.expires) && $0.din.utf8.lexicographicallyPrecedes($1.din.utf8) }
        var limitLeft = query.choices.compactMap(\.maximumUnits).min() ?? .max
        var out: [String] = []
        for e in all where out.count < query.quantity {
            if e.limited { guard limitLeft > 0 else { continue }; limitLeft -= 1 }
            out.append(e.din)
        }
        return out
    }

    /// Every unit the rules allow for the query, with its ETA and cost.
    func eligible(_ query: UnitQuery, settings: MatchingSettings, distanceOnly: Bool, travelTimes: TravelTimeMatrix) -> [Eligible] {
        let byID = Dictionary(uniqueKeysWithValues: centres.map { ($0.siteID, $0) })
        let rankPenalty = distanceOnly ? 0 : settings.rankPenaltyMinutes[query.urgency] ?? 0
        let margin = Int64((settings.minimumRemainingHoursAtArrival[query.component] ?? 0) * 3600)
        var eligible: [Eligible] = []
        for unit in units {
            guard unit.status == .available, unit.component == query.component,
                  let choice = query.choices.first(where: { $0.group == unit.group }),
                  let centre = byID[unit.siteID] else { continue }
            if centre.isStale(now: now) && !settings.allowStaleCentres { continue }
            let attrs = unit.attributes.rawValue
            let required = query.required.rawValue | choice.required.rawValue
            guard attrs & required == required, attrs & (query.exclusive.rawValue & ~required) == 0 else { continue }
            let collected = Int64(unit.collectedAt.timeIntervalSince1970)
            if let maxAge = query.maximumUnitAgeSeconds, now - collected >= maxAge { continue }
            if query.excludedUnits.contains(unit.key) { continue }
            let d = query.destination.distanceKm(to: centre.location)
            let measured = query.destinationSiteID.flatMap { travelTimes.minutes(from: centre.siteID, to: $0) }
            let eta = distanceOnly ? d : measured.map { $0 + settings.handlingMinutes } ?? settings.travelMinutes(distanceKm: d)
            let expires = Int64(unit.expiresAt.timeIntervalSince1970)
            let minimum = distanceOnly ? now : now + Int64((eta * 60).rounded(.up)) + margin
            guard expires > minimum else { continue }
            let surplus = (attrs & query.scarce.rawValue & ~required).nonzeroBitCount
            let score = eta + Double(choice.rank - 1) * rankPenalty + Double(surplus) * (distanceOnly ? 0 : settings.surplusAttributePenaltyMinutes)
            eligible.append(Eligible(eta: eta, rank: choice.rank, surplus: surplus, score: score, expires: expires, din: unit.din.value,
                                     limited: choice.maximumUnits != nil))
        }
        return eligible
    }

    func randomQuery(_ rng: inout RNG) -> UnitQuery {
        let destination: GeoPoint
        switch rng.next() % 4 {
        case 0: destination = GeoPoint(latitude: Double.random(in: -60...60, using: &rng), longitude: rng.next() % 2 == 0 ? 179.99 : -179.99)
        case 1: destination = GeoPoint(latitude: rng.next() % 2 == 0 ? 89.9 : -89.9, longitude: Double.random(in: -180...180, using: &rng))
        default: destination = GeoPoint(latitude: Double.random(in: -45 ... -10, using: &rng), longitude: Double.random(in: 113...154, using: &rng))
        }
        let groups = BloodGroup.all.shuffled(using: &rng).prefix(Int(rng.next() % 8) + 1)
        let choices = groups.enumerated().map {
            GroupChoice(group: $0.element, rank: $0.offset / 2 + 1, rule: "test",
                        required: rng.next() % 6 == 0 ? AttributeSet(.lowTitre) : [],
                        maximumUnits: rng.next() % 8 == 0 ? Int(rng.next() % 3) + 1 : nil)
        }
        // Some queries are needed sooner than their urgency's ceiling, some by an instant already past.
        let neededBy: Int64? = rng.next() % 4 == 0 ? now + [-600, 1_800, 5_400, 36_000][Int(rng.next() % 4)] : nil
        var required = AttributeSet()
        if rng.next() % 3 == 0 { required.insert(.irradiated) }
        if rng.next() % 4 == 0 { required.insert(.cmvNegative) }
        let quantity = [1, 2, 3, 5, 10, 50, 400][Int(rng.next() % 7)]
        return UnitQuery(
            destination: destination, component: Component.allCases[Int(rng.next() % 5)], choices: Array(choices),
            required: required, exclusive: AttributeSet([.washed, .hlaMatched]), scarce: AttributeSet([.cmvNegative, .irradiated, .kNegative, .lowTitre]),
            maximumUnitAgeSeconds: rng.next() % 5 == 0 ? 30 * 86_400 : nil, quantity: quantity,
            urgency: Urgency.allCases[Int(rng.next() % 3)], neededBy: neededBy)
    }
}
