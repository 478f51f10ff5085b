import Foundation

/// The nearest-unit search over an `InventoryIndex`.
///
/// Visits centres in order of ETA and, at each, only the buckets of acceptable groups, collecting
/// the eligible units that could still be chosen; stops once no unvisited centre could change the
/// answer. Live matches order by preference band (`PreferenceBands`: the band of the nearest unit,
/// then rank, plain before scarce, expiry, identity); batch candidates by cost (`Ordering.cost`).
/// Pure: `now` is passed in.
public struct UnitMatcher: Sendable {
    /// The index searched.
    public let index: InventoryIndex
    /// Travel and ranking settings.
    public let settings: MatchingSettings
    /// Rank by distance only (ETA = km), the shared benchmark's semantics.
    public let distanceOnly: Bool
    /// Measured travel times that replace the great-circle model for the pairs they list.
    public let travelTimes: TravelTimeMatrix
    /// How the chosen units are ordered.
    public let ordering: Ordering

    /// How the matcher orders eligible units.
    public enum Ordering: Sendable, Hashable {
        /// Live matches: the band of the nearest unit (the urgency's tolerance), then rank, plain
        /// before scarce, expiry and identity (`PreferenceBands`).
        case preferenceBands
        /// Batch candidates: by cost in minutes (ETA plus the urgency's rank penalty and the
        /// surplus-attribute penalty), then expiry and identity; the optimiser weighs the costs.
        case cost
    }

    /// Creates a matcher.
    public init(index: InventoryIndex, settings: MatchingSettings, distanceOnly: Bool = false,
                travelTimes: TravelTimeMatrix = TravelTimeMatrix(), ordering: Ordering = .preferenceBands) {
        self.index = index
        self.settings = settings
        self.distanceOnly = distanceOnly
        self.travelTimes = travelTimes
        self.ordering = ordering
    }

    /// ETA in minutes from a centre to the destination: the measured time plus handling when the
    /// matrix lists the pair, otherwise the great-circle model.
    @inline(__always)
    public func etaMinutes(centre: String, distanceKm: Double, destinationSiteID: String?) -> Double {
        if distanceOnly { return distanceKm }
        if let destination = destinationSiteID, let measured = travelTimes.minutes(from: centre, to: destination) {
            return measured + settings.handlingMinutes
        }
        return settings.travelMinutes(distanceKm: distanceKm)
    }

    private struct Found {
        var candidate: PreferenceBands.Candidate
        var score: Double
        var centre: Int
        var choice: Int
        var distance: Double
    }

    /// Finds the best units for a query at `now` (seconds since 1970).
    public func match(_ query: UnitQuery, now: Int64) -> UnitMatch {
        let centres = index.centres
        let quantity = max(0, query.quantity)
        // Centres by ETA (then site id, for determinism).
        var order: [(eta: Double, distance: Double, centre: Int)] = []
        order.reserveCapacity(centres.count)
        for (c, centre) in centres.enumerated() {
            let d = query.destination.distanceKm(to: centre.location)
            order.append((etaMinutes(centre: centre.siteID, distanceKm: d, destinationSiteID: query.destinationSiteID), d, c))
        }
        order.sort { $0.eta < $1.eta || $0.eta == $1.eta && $0.centre < $1.centre }

        let rankPenalty = distanceOnly ? 0 : settings.rankPenaltyMinutes[query.urgency] ?? 0
        let surplusPenalty = distanceOnly ? 0 : settings.surplusAttributePenaltyMinutes
        let tolerance = distanceOnly ? 0 : settings.preferenceBandMinutes[query.urgency] ?? 0
        // The ETA by which units should arrive (urgency ceiling or needed-by): later units are `late`.
        let deadline = distanceOnly ? nil : settings.arrivalDeadlineMinutes(urgency: query.urgency, neededBy: query.neededBy, now: now)
        let bands = PreferenceBands(toleranceMinutes: tolerance, usesPreference: !distanceOnly, index: index,
                                    deadlineMinutes: deadline ?? .infinity)
        // Choices limited per request (low-titre group O whole blood) share the smallest limit. The
        // leaders shortcut below assumes every unit found can be chosen, so it is off with a limit.
        var limit: Int? = nil
        for choice in query.choices { if let m = choice.maximumUnits { limit = min(limit ?? m, m) } }
        let bestRank = query.choices.map(\.rank).min() ?? 1
        let marginSeconds = Int64((settings.minimumRemainingHoursAtArrival[query.component] ?? 0) * 3600)
        let baseRequired = query.required.rawValue
        let collectRejections = settings.rejectedCandidatesKept > 0
        var rejections: [RejectedCandidates] = []

        var found: [Found] = []
        // The `quantity` units found so far that come first in the order (by band key or by cost).
        var leaders: [Found] = []
        leaders.reserveCapacity(min(quantity, 256) + 1)
        found.reserveCapacity(min(quantity, 256) * 2 + 8)
        var examined = 0
        var visited = 0

        @inline(__always) func costPrecedes(_ a: Found, _ b: Found) -> Bool {
            if a.score != b.score { return a.score < b.score }
            if a.candidate.expires != b.candidate.expires { return a.candidate.expires < b.candidate.expires }
            return index.unitPrecedes(a.candidate.position, b.candidate.position)
        }
        @inline(__always) func keyPrecedes(_ a: Found, _ b: Found) -> Bool {
            ordering == .cost ? costPrecedes(a, b) : bands.precedes(a.candidate, b.candidate)
        }
        // The chosen units (indices into `found`, best first, with their band's start) and the bound
        // a later centre's ETA must reach to change nothing: past the last band's end, or (by cost)
        // where its best unit would cost more than the last chosen.
        func choose() -> (chosen: [(index: Int, bandStart: Double?)], settledBeyond: Double) {
            switch ordering {
            case .preferenceBands:
                let picked = bands.select(found.lazy.map(\.candidate), quantity: quantity, limit: limit ?? .max)
                let bound = picked.count == quantity ? picked.last.map { bands.bandEnd(start: $0.bandStart) } ?? .infinity : .infinity
                return (picked.map { ($0.index, distanceOnly ? nil : $0.bandStart) }, bound)
            case .cost:
                var picked: [Int] = []
                var limitedLeft = limit ?? .max
                for i in found.indices.sorted(by: { costPrecedes(found[$0], found[$1]) }) where picked.count < quantity {
                    if found[i].candidate.limited {
                        guard limitedLeft > 0 else { continue }
                        limitedLeft -= 1
                    }
                    picked.append(i)
                }
                // No unit of a later centre costs less than its ETA plus the best rank's penalty.
                let bound = picked.count == quantity ? picked.last.map { found[$0].score - Double(bestRank - 1) * rankPenalty } ?? .infinity : .infinity
                return (picked.map { ($0, nil) }, bound)
            }
        }
        func note(_ centre: Int, _ reason: CandidateRejection, _ position: Int?, _ detail: String, count: Int = 1) {
            guard collectRejections, count > 0 else { return }
            let id = centres[centre].siteID
            if let i = rejections.firstIndex(where: { $0.centreID == id && $0.reason == reason && $0.detail == detail }) {
                rejections[i].count += count
            } else {
                rejections.append(RejectedCandidates(centreID: id, reason: reason, count: count,
                                                     exampleDIN: position.map(index.din(at:)),
                                                     exampleProductCode: position.map(index.productCode(at:)), detail: detail))
            }
        }

        var chosen: [(index: Int, bandStart: Double?)] = []
        var settledBeyond = Double.infinity
        for (eta, distance, c) in order {
            // Every unit from here on arrives strictly after the bound: the answer is settled.
            if quantity == 0 || eta > settledBeyond { break }
            let centre = centres[c]
            if let only = query.onlyCentreIDs, !only.contains(centre.siteID) { continue }
            let stale = centre.isStale(now: now)
            visited += 1
            let detailed = collectRejections && visited <= 3
            if stale && !settings.allowStaleCentres {
                if collectRejections {
                    let n = query.choices.reduce(0) { $0 + index.bucket(centre: c, component: query.component, group: $1.group).count }
                    note(c, .staleCentre, nil, "data \(centre.dataAgeSeconds(now: now) / 60) min old", count: n)
                }
                continue
            }
            let arrival = now + Int64((eta * 60).rounded(.up))
            let minimumExpiry = distanceOnly ? now : arrival + marginSeconds
            if detailed {
                for group in BloodGroup.all where !query.choices.contains(where: { $0.group == group }) {
                    let range = index.bucket(centre: c, component: query.component, group: group)
                    note(c, .incompatible, range.isEmpty ? nil : range.lowerBound, "group \(group)", count: range.count)
                }
            }
            let before = found.count
            for (k, choice) in query.choices.enumerated() {
                let required = baseRequired | choice.required.rawValue
                let exclusive = query.exclusive.rawValue & ~required
                let scarce = query.scarce.rawValue & ~required
                let base = eta + Double(choice.rank - 1) * rankPenalty
                let range = index.bucket(centre: c, component: query.component, group: choice.group)
                if range.isEmpty { continue }
                // First unit whose expiry is strictly after the minimum acceptable expiry.
                var lo = range.lowerBound
                var hi = range.upperBound
                while lo < hi {
                    let mid = (lo + hi) >> 1
                    if index.expiresAt[mid] > minimumExpiry { hi = mid } else { lo = mid + 1 }
                }
                if detailed, lo > range.lowerBound {
                    note(c, .expiredBeforeArrival, lo - 1, "group \(choice.group)", count: lo - range.lowerBound)
                }
                var p = lo
                while p < range.upperBound {
                    examined += 1
                    let attrs = index.attributes[p]
                    if attrs & required != required {
                        if detailed { note(c, .missingAttribute, p, "lacks \(AttributeSet(rawValue: required & ~attrs))") }
                        p += 1; continue
                    }
                    if attrs & exclusive != 0 {
                        if detailed { note(c, .notSubstitutable, p, "carries \(AttributeSet(rawValue: attrs & exclusive))") }
                        p += 1; continue
                    }
                    if let maxAge = query.maximumUnitAgeSeconds, now - index.collectedAt[p] >= maxAge {
                        if detailed { note(c, .tooOld, p, "older than \(maxAge / 86_400) d") }
                        p += 1; continue
                    }
                    if !query.excludedUnits.isEmpty, query.excludedUnits.contains(index.unitKey(at: p)) {
                        note(c, .reserved, p, "reserved or held since the index was built")
                        p += 1; continue
                    }
                    let surplus = distanceOnly ? 0 : (attrs & scarce).nonzeroBitCount
                    let unit = Found(
                        candidate: PreferenceBands.Candidate(eta: eta, rank: distanceOnly ? 1 : Int32(clamping: choice.rank), surplus: Int32(surplus),
                                                             expires: index.expiresAt[p], position: p,
                                                             limited: limit != nil && choice.maximumUnits != nil),
                        score: base + Double(surplus) * surplusPenalty, centre: c, choice: k, distance: distance)
                    // `quantity` units found so far (none farther) that come first in the order can
                    // never be passed by this one: in every band it is in, they are too.
                    if limit == nil, leaders.count == quantity, let last = leaders.last, !keyPrecedes(unit, last) {
                        if detailed { note(c, .farther, p, "eligible \(choice.group) (rank \(choice.rank)), after \(quantity) nearer or as near that come first") }
                        // Later units of this bucket expire no sooner and rank the same: beaten too,
                        // unless they carry fewer scarce attributes.
                        if surplus == 0 { break }
                        p += 1; continue
                    }
                    let at = leaders.firstIndex { keyPrecedes(unit, $0) } ?? leaders.count
                    leaders.insert(unit, at: at)
                    if leaders.count > quantity { leaders.removeLast() }
                    found.append(unit)
                    p += 1
                }
            }
            if found.count >= quantity, found.count > before {
                (chosen, settledBeyond) = choose()
            }
        }
        if found.count < quantity { chosen = choose().chosen }

        if collectRejections {
            let isChosen = Set(chosen.map(\.index))
            let lastBandEnd = (chosen.last?.bandStart).map { bands.bandEnd(start: $0) }
            for (i, f) in found.enumerated() where !isChosen.contains(i) {
                let choice = query.choices[f.choice]
                let why: String
                if let limit, choice.maximumUnits != nil, chosen.filter({ found[$0.index].candidate.limited }).count >= limit {
                    why = "at most \(limit) unit(s) of this kind per request"
                } else if let end = lastBandEnd, f.candidate.eta > end {
                    why = end < (chosen.last?.bandStart ?? 0) + tolerance
                        ? "arrives after the deadline (\(Int(end)) min) while the chosen units arrive by it"
                        : "arrives more than \(Int(tolerance)) min after the nearest unit left when the last unit was chosen"
                } else {
                    why = ordering == .cost ? "costs more than the chosen units" : "in the band of the chosen units, after them in rank, plainness or expiry"
                }
                note(f.centre, .farther, f.candidate.position, "eligible \(choice.group) (rank \(choice.rank)), \(why)")
            }
        }

        let units = chosen.map { pick -> ProposedUnit in
            let slot = found[pick.index]
            let position = slot.candidate.position
            let centre = centres[slot.centre]
            let choice = query.choices[slot.choice]
            let eta = slot.candidate.eta
            let arrival = now + Int64((eta * 60).rounded(.up))
            return ProposedUnit(
                din: index.din(at: position), centreID: centre.siteID,
                productCode: index.productCodes[Int(index.productCodeIndex[position])],
                group: choice.group, distanceKm: slot.distance, etaMinutes: distanceOnly ? 0 : eta,
                expiresAt: slot.candidate.expires, collectedAt: index.collectedAt[position],
                attributes: AttributeSet(rawValue: index.attributes[position]), rank: choice.rank,
                flags: choice.flags, rule: choice.rule, score: slot.score, bandStartMinutes: pick.bandStart,
                staleCentre: centre.isStale(now: now), dataAgeSeconds: centre.dataAgeSeconds(now: now),
                meetsNeededBy: query.neededBy.map { arrival <= $0 }, late: deadline.map { eta > $0 },
                measuredTravelTime: !distanceOnly && query.destinationSiteID.flatMap { travelTimes.minutes(from: centre.siteID, to: $0) } != nil)
        }
        let kept = rejections.sorted { ($0.reason == .farther ? 0 : 1, -$0.count) < ($1.reason == .farther ? 0 : 1, -$1.count) }
        return UnitMatch(chosen: units, rejected: Array(kept.prefix(settings.rejectedCandidatesKept)),
                         centresVisited: visited, unitsExamined: examined)
    }
}
