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
    /// The unit's cost in minutes as the batch optimiser weighs it: ETA plus the urgency's rank
    /// penalty and the surplus-attribute penalty (`MatchingSettings`). Live matches do not order by
    /// it: they order by preference band (`bandStartMinutes`).
    public var score: Double
    /// The ETA at which the band this unit was chosen from starts (the nearest unit not yet chosen
    /// at that step); the unit arrives at most the urgency's band tolerance after it. Nil when the
    /// order was by cost (batch candidates) or distance only.
    public var bandStartMinutes: Double? = nil
    /// Whether the centre's data was stale at evaluation: the unit is then not certain.
    public var staleCentre: Bool
    /// Age of the centre's data at evaluation, in seconds.
    public var dataAgeSeconds: Int64
    /// Whether the unit arrives by the needed-by time (nil when none was given).
    public var meetsNeededBy: Bool?
    /// Whether the unit arrives after the deadline: the urgency's time ceiling, or `needed_by` when
    /// sooner (Data/SOURCES.md §S27). Nil when no deadline applied (older decisions, benchmarks).
    public var late: Bool? = nil
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
    /// Eligible, but other units came first: nearer, or in the same band and better ranked,
    /// plainer or expiring sooner.
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

