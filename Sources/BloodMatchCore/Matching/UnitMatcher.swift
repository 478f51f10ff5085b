import Foundation

/// A unit the matcher proposes, with everything the rationale needs.
public struct ProposedUnit: Sendable, Hashable, Codable {
    /// Donation identification number.
    public var din: String
    /// The centre holding it.
    public var centreID: String
    /// ISBT 128 product code.
    public var productCode: String
    /// Unit group.
    public var group: BloodGroup
    /// Great-circle distance from the centre to the destination.
    public var distanceKm: Double
    /// Estimated minutes from dispatch to arrival.
    public var etaMinutes: Double
    /// Expiry (seconds since 1970).
    public var expiresAt: Int64
    /// Collection (seconds since 1970).
    public var collectedAt: Int64
    /// Unit attributes.
    public var attributes: AttributeSet
    /// Preference rank of the unit's group (1 = best).
    public var rank: Int
    /// Rule flags of the group choice.
    public var flags: [String]
    /// The rule that allowed the group.
    public var rule: String
    /// Ranking score in minutes (ETA plus penalties); lower is better.
    public var score: Double
    /// Whether the centre's data was stale at evaluation: the unit is then not certain.
    public var staleCentre: Bool
    /// Age of the centre's data at evaluation, in seconds.
    public var dataAgeSeconds: Int64
    /// Whether the unit arrives by the needed-by time (nil when none was given).
    public var meetsNeededBy: Bool?
    /// Whether the ETA comes from the measured travel-time matrix (else the great-circle model).
    public var measuredTravelTime: Bool

    /// The unit's identity (DIN and product code).
    public var key: UnitKey { UnitKey(din: din, productCode: productCode) }
}

/// Why a candidate was not chosen.
public enum CandidateRejection: String, Sendable, Hashable, Codable, CaseIterable {
    /// Its group is not acceptable for the recipient.
    case incompatible
    /// It would expire (or fall below the minimum remaining life) before arrival.
    case expiredBeforeArrival = "expired_before_arrival"
    /// It lacks a required attribute.
    case missingAttribute = "missing_attribute"
    /// It carries an attribute that may not be substituted for a plain request (washed, HLA-matched, …).
    case notSubstitutable = "not_substitutable"
    /// It is older than the request's maximum unit age.
    case tooOld = "too_old"
    /// It is reserved or held for review.
    case reserved
    /// Its centre's data is stale and policy does not allow stale centres.
    case staleCentre = "stale_centre"
    /// Eligible, but other units ranked better.
    case farther
}

/// Candidates not chosen, counted per centre and reason with one example.
public struct RejectedCandidates: Sendable, Hashable, Codable {
    /// The centre.
    public var centreID: String
    /// Why.
    public var reason: CandidateRejection
    /// How many units at that centre were rejected for this reason.
    public var count: Int
    /// One of them: its DIN.
    public var exampleDIN: String?
    /// And its product code (with the DIN, the unit's identity).
    public var exampleProductCode: String?
    /// Detail for people (e.g. the group, the missing attribute).
    public var detail: String
}

/// The matcher's answer before it is turned into a recorded decision.
public struct UnitMatch: Sendable, Hashable {
    /// Chosen units, best first.
    public var chosen: [ProposedUnit]
    /// Best rejected candidates with reasons.
    public var rejected: [RejectedCandidates]
    /// Centres whose buckets were examined.
    public var centresVisited: Int
    /// Units examined.
    public var unitsExamined: Int
}

/// The nearest-unit search over an `InventoryIndex`.
///
/// Visits centres in order of ETA and, at each, only the buckets of acceptable groups; keeps the
/// best `quantity` units by (score, expiry, DIN and product code) and stops once no unvisited centre could beat
/// the worst of them. Pure: `now` is passed in.
public struct UnitMatcher: Sendable {
    /// The index searched.
    public let index: InventoryIndex
    /// Travel and ranking settings.
    public let settings: MatchingSettings
    /// Rank by distance only (ETA = km), the shared benchmark's semantics.
    public let distanceOnly: Bool
    /// Measured travel times that replace the great-circle model for the pairs they list.
    public let travelTimes: TravelTimeMatrix

    /// Creates a matcher.
    public init(index: InventoryIndex, settings: MatchingSettings, distanceOnly: Bool = false,
                travelTimes: TravelTimeMatrix = TravelTimeMatrix()) {
        self.index = index
        self.settings = settings
        self.distanceOnly = distanceOnly
        self.travelTimes = travelTimes
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

    private struct Slot {
        var score: Double
        var expires: Int64
        var position: Int
        var centre: Int
        var choice: Int
        var distance: Double
        var eta: Double
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
        let bestRank = query.choices.map(\.rank).min() ?? 1
        let marginSeconds = Int64((settings.minimumRemainingHoursAtArrival[query.component] ?? 0) * 3600)
        let baseRequired = query.required.rawValue
        let collectRejections = settings.rejectedCandidatesKept > 0
        var rejections: [RejectedCandidates] = []

        var best: [Slot] = []
        best.reserveCapacity(quantity + 1)
        var examined = 0
        var visited = 0

        @inline(__always) func precedes(_ a: Slot, _ b: Slot) -> Bool {
            if a.score != b.score { return a.score < b.score }
            if a.expires != b.expires { return a.expires < b.expires }
            // Same score and expiry: the unit identity (DIN, then product code) only makes the
            // order reproducible; it carries no clinical preference.
            return index.unitPrecedes(a.position, b.position)
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

        for (eta, distance, c) in order {
            if best.count == quantity, let worst = best.last,
               eta + Double(bestRank - 1) * rankPenalty > worst.score { break }
            if quantity == 0 { break }
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
            for (k, choice) in query.choices.enumerated() {
                let required = baseRequired | choice.required.rawValue
                let exclusive = query.exclusive.rawValue & ~required
                let scarce = query.scarce.rawValue & ~required
                let base = eta + Double(choice.rank - 1) * rankPenalty
                if best.count == quantity, let worst = best.last, base > worst.score { continue }
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
                var plainTaken = 0
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
                    let surplus = (attrs & scarce).nonzeroBitCount
                    let slot = Slot(score: base + Double(surplus) * surplusPenalty, expires: index.expiresAt[p],
                                    position: p, centre: c, choice: k, distance: distance, eta: eta)
                    if best.count < quantity {
                        let at = best.firstIndex(where: { precedes(slot, $0) }) ?? best.count
                        best.insert(slot, at: at)
                    } else if let worst = best.last, precedes(slot, worst) {
                        let evicted = best.removeLast()
                        if detailed || collectRejections && evicted.centre == c {
                            let choice = query.choices[evicted.choice]
                            note(evicted.centre, .farther, evicted.position, "eligible \(choice.group) (rank \(choice.rank)), ranked after the chosen units")
                        }
                        let at = best.firstIndex(where: { precedes(slot, $0) }) ?? best.count
                        best.insert(slot, at: at)
                    } else {
                        if detailed { note(c, .farther, p, "eligible \(choice.group) (rank \(choice.rank)), ranked after the chosen units") }
                        if surplus == 0 { break }
                    }
                    if surplus == 0 {
                        plainTaken += 1
                        // Later units in this bucket expire no earlier and score no better.
                        if plainTaken >= quantity { break }
                    }
                    p += 1
                }
            }
        }

        let chosen = best.map { slot -> ProposedUnit in
            let centre = centres[slot.centre]
            let choice = query.choices[slot.choice]
            let arrival = now + Int64((slot.eta * 60).rounded(.up))
            return ProposedUnit(
                din: index.din(at: slot.position), centreID: centre.siteID,
                productCode: index.productCodes[Int(index.productCodeIndex[slot.position])],
                group: choice.group, distanceKm: slot.distance, etaMinutes: distanceOnly ? 0 : slot.eta,
                expiresAt: slot.expires, collectedAt: index.collectedAt[slot.position],
                attributes: AttributeSet(rawValue: index.attributes[slot.position]), rank: choice.rank,
                flags: choice.flags, rule: choice.rule, score: slot.score, staleCentre: centre.isStale(now: now),
                dataAgeSeconds: centre.dataAgeSeconds(now: now),
                meetsNeededBy: query.neededBy.map { arrival <= $0 },
                measuredTravelTime: !distanceOnly && query.destinationSiteID.flatMap { travelTimes.minutes(from: centre.siteID, to: $0) } != nil)
        }
        let kept = rejections.sorted { ($0.reason == .farther ? 0 : 1, -$0.count) < ($1.reason == .farther ? 0 : 1, -$1.count) }
        return UnitMatch(chosen: chosen, rejected: Array(kept.prefix(settings.rejectedCandidatesKept)),
                         centresVisited: visited, unitsExamined: examined)
    }
}
