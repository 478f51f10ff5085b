/// Operational settings of the matcher: travel model, arrival margins and ranking weights.
///
/// These are local operating choices, not clinical rules: no published national figure exists for
/// transport times or remaining-life margins (Data/SOURCES.md §S10: no source fixes them; a
/// local operating choice). They are versioned with the policy and every
/// decision records the values it used.
public struct MatchingSettings: Sendable, Hashable, Codable {
    /// Road distance ÷ great-circle distance.
    public var circuityFactor: Double
    /// Average courier speed in km/h.
    public var speedKmh: Double
    /// Minutes to pick, pack and hand over at the centre and receive at the hospital.
    public var handlingMinutes: Double
    /// Hours of shelf life a unit must still have when it arrives, per component.
    public var minimumRemainingHoursAtArrival: [Component: Double]
    /// Minutes of penalty for each preference-rank step below the best, per urgency, in the batch
    /// optimiser's cost (live matches order by `preferenceBandMinutes` instead).
    public var rankPenaltyMinutes: [Urgency: Double]
    /// Per urgency, how many minutes later than the nearest unit not yet chosen a unit may arrive
    /// and still be in its band, where preference rank, then plain before scarce, then expiry
    /// decide (`PreferenceBands`; Data/SOURCES.md §S26). Units at one centre are always in one band.
    /// Empty in settings recorded before bands existed: such decisions ordered by cost.
    public var preferenceBandMinutes: [Urgency: Double]
    /// Per urgency, the longest ETA (minutes) within which units are expected: a unit arriving later
    /// is offered only marked `late`, and a band that starts in time never reaches past it, so a
    /// unit in time is never passed over for a better-ranked late one (Data/SOURCES.md §S27). A
    /// request's `needed_by` tightens it. Empty in settings recorded before ceilings existed.
    public var timeCeilingMinutes: [Urgency: Double]
    /// Minutes of penalty for each scarce attribute a unit has that the request did not ask for,
    /// so plain units are used first and scarce stock is conserved (Data/SOURCES.md §S8).
    public var surplusAttributePenaltyMinutes: Double
    /// Whether units at a centre whose feed is stale may be proposed (always flagged with their age).
    public var allowStaleCentres: Bool
    /// How many rejected candidates a decision keeps in its rationale.
    public var rejectedCandidatesKept: Int

    /// Creates settings.
    public init(
        circuityFactor: Double, speedKmh: Double, handlingMinutes: Double,
        minimumRemainingHoursAtArrival: [Component: Double], rankPenaltyMinutes: [Urgency: Double],
        preferenceBandMinutes: [Urgency: Double] = [:], timeCeilingMinutes: [Urgency: Double] = [:],
        surplusAttributePenaltyMinutes: Double, allowStaleCentres: Bool, rejectedCandidatesKept: Int
    ) {
        self.circuityFactor = circuityFactor
        self.speedKmh = speedKmh
        self.handlingMinutes = handlingMinutes
        self.minimumRemainingHoursAtArrival = minimumRemainingHoursAtArrival
        self.rankPenaltyMinutes = rankPenaltyMinutes
        self.preferenceBandMinutes = preferenceBandMinutes
        self.timeCeilingMinutes = timeCeilingMinutes
        self.surplusAttributePenaltyMinutes = surplusAttributePenaltyMinutes
        self.allowStaleCentres = allowStaleCentres
        self.rejectedCandidatesKept = rejectedCandidatesKept
    }

    /// Defaults: circuity 1.3, 70 km/h, 30 min handling; at least 24 h of life left at arrival
    /// (48 h for red cells and whole blood); preference bands of 10 / 60 / 480 min for emergency /
    /// urgent / routine; time ceilings of 60 min / 4 h / 24 h; in the batch cost, rank steps cost
    /// 0 / 60 / 480 min and 20 min per surplus scarce attribute; stale centres allowed but flagged.
    public static let standard = MatchingSettings(
        circuityFactor: 1.3, speedKmh: 70, handlingMinutes: 30,
        minimumRemainingHoursAtArrival: [.redCells: 48, .platelets: 24, .plasma: 24, .cryoprecipitate: 24, .wholeBlood: 48],
        rankPenaltyMinutes: [.emergency: 0, .urgent: 60, .routine: 480],
        preferenceBandMinutes: [.emergency: 10, .urgent: 60, .routine: 480],
        timeCeilingMinutes: [.emergency: 60, .urgent: 240, .routine: 1440],
        surplusAttributePenaltyMinutes: 20, allowStaleCentres: true, rejectedCandidatesKept: 10)

    /// The comparison mode of the shared benchmark harness: distance only (ETA = km), strict
    /// groups given by the caller, no arrival margin, no penalties (`../shared/bench/oracle.py`).
    public static let benchmark = MatchingSettings(
        circuityFactor: 1, speedKmh: 60, handlingMinutes: 0,
        minimumRemainingHoursAtArrival: [:], rankPenaltyMinutes: [:],
        surplusAttributePenaltyMinutes: 0, allowStaleCentres: true, rejectedCandidatesKept: 0)

    /// Travel minutes for a great-circle distance.
    @inline(__always)
    public func travelMinutes(distanceKm: Double) -> Double {
        distanceKm * circuityFactor / speedKmh * 60 + handlingMinutes
    }
}

extension MatchingSettings {
    private enum CodingKeys: String, CodingKey {
        case circuityFactor, speedKmh, handlingMinutes, minimumRemainingHoursAtArrival, rankPenaltyMinutes,
             preferenceBandMinutes, timeCeilingMinutes, surplusAttributePenaltyMinutes, allowStaleCentres, rejectedCandidatesKept
    }

    /// Decodes settings; those recorded in decisions made before preference bands or time ceilings
    /// existed have none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            circuityFactor: try c.decode(Double.self, forKey: .circuityFactor), speedKmh: try c.decode(Double.self, forKey: .speedKmh),
            handlingMinutes: try c.decode(Double.self, forKey: .handlingMinutes),
            minimumRemainingHoursAtArrival: try c.decode([Component: Double].self, forKey: .minimumRemainingHoursAtArrival),
            rankPenaltyMinutes: try c.decode([Urgency: Double].self, forKey: .rankPenaltyMinutes),
            preferenceBandMinutes: try c.decodeIfPresent([Urgency: Double].self, forKey: .preferenceBandMinutes) ?? [:],
            timeCeilingMinutes: try c.decodeIfPresent([Urgency: Double].self, forKey: .timeCeilingMinutes) ?? [:],
            surplusAttributePenaltyMinutes: try c.decode(Double.self, forKey: .surplusAttributePenaltyMinutes),
            allowStaleCentres: try c.decode(Bool.self, forKey: .allowStaleCentres),
            rejectedCandidatesKept: try c.decode(Int.self, forKey: .rejectedCandidatesKept))
    }
}

extension Component: CodingKeyRepresentable {}
extension Urgency: CodingKeyRepresentable {}

extension MatchingSettings {
    /// Why a settings file was refused.
    public struct SettingsError: Error, Sendable, CustomStringConvertible {
        /// What is wrong, naming the field.
        public var reason: String
        public var description: String { "matching settings refused: \(reason)" }
    }

    /// Decodes settings from JSON and checks every value is in a sane range, so a typo cannot
    /// silently turn off arrival margins or make every centre equidistant.
    public init(jsonData: Data) throws {
        let decoded = try JSONDecoder().decode(MatchingSettings.self, from: jsonData)
        func require(_ ok: Bool, _ reason: String) throws { if !ok { throw SettingsError(reason: reason) } }
        try require((1.0...3.0).contains(decoded.circuityFactor), "circuityFactor \(decoded.circuityFactor) is outside 1…3")
        try require((5.0...1000.0).contains(decoded.speedKmh), "speedKmh \(decoded.speedKmh) is outside 5…1000")
        try require((0.0...720.0).contains(decoded.handlingMinutes), "handlingMinutes \(decoded.handlingMinutes) is outside 0…720")
        for component in Component.allCases {
            guard let hours = decoded.minimumRemainingHoursAtArrival[component] else {
                throw SettingsError(reason: "minimumRemainingHoursAtArrival has no value for \(component.rawValue)")
            }
            try require((0.0...720.0).contains(hours), "minimumRemainingHoursAtArrival.\(component.rawValue) \(hours) is outside 0…720")
        }
        for urgency in Urgency.allCases {
            guard let minutes = decoded.rankPenaltyMinutes[urgency] else {
                throw SettingsError(reason: "rankPenaltyMinutes has no value for \(urgency.rawValue)")
            }
            try require((0.0...100_000.0).contains(minutes), "rankPenaltyMinutes.\(urgency.rawValue) \(minutes) is outside 0…100000")
            guard let band = decoded.preferenceBandMinutes[urgency] else {
                throw SettingsError(reason: "preferenceBandMinutes has no value for \(urgency.rawValue)")
            }
            try require((0.0...10_080.0).contains(band), "preferenceBandMinutes.\(urgency.rawValue) \(band) is outside 0…10080")
            guard let ceiling = decoded.timeCeilingMinutes[urgency] else {
                throw SettingsError(reason: "timeCeilingMinutes has no value for \(urgency.rawValue)")
            }
            try require((1.0...43_200.0).contains(ceiling), "timeCeilingMinutes.\(urgency.rawValue) \(ceiling) is outside 1…43200")
        }
        let ceilings = Urgency.allCases.sorted().compactMap { decoded.timeCeilingMinutes[$0] }
        try require(ceilings == ceilings.sorted(), "timeCeilingMinutes must not fall as urgency falls (emergency ≤ urgent ≤ routine): \(ceilings)")
        try require((0.0...10_000.0).contains(decoded.surplusAttributePenaltyMinutes), "surplusAttributePenaltyMinutes is outside 0…10000")
        try require((0...100).contains(decoded.rejectedCandidatesKept), "rejectedCandidatesKept is outside 0…100")
        self = decoded
    }
}

import Foundation

extension MatchingSettings {
    /// The ETA (minutes from `now`) by which a query's units should arrive: the urgency's time
    /// ceiling, or the request's `needed_by` when that is sooner; nil when neither is set.
    public func arrivalDeadlineMinutes(urgency: Urgency, neededBy: Int64?, now: Int64) -> Double? {
        let ceiling = timeCeilingMinutes[urgency]
        let needed = neededBy.map { Double($0 - now) / 60 }
        switch (ceiling, needed) {
        case (nil, nil): return nil
        case (let c?, nil): return c
        case (nil, let n?): return n
        case (let c?, let n?): return min(c, n)
        }
    }

    /// `minimumRemainingHoursAtArrival` in whole seconds by component code (`RBC`, `PLT`, …), as the
    /// issue re-check takes it.
    public var minimumRemainingSecondsByComponent: [String: Int] {
        Dictionary(uniqueKeysWithValues: minimumRemainingHoursAtArrival.map { ($0.key.rawValue, Int(($0.value * 3600).rounded(.up))) })
    }
}
