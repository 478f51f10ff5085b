import Foundation

/// A request for units, as a dispatcher or a hospital states it.
public struct MatchRequest: Sendable, Hashable, Codable {
    /// Client-supplied id: a retry with the same id returns the original decision.
    public var requestID: String
    /// The hospital the units go to (its location is the destination), if known.
    public var hospitalID: String?
    /// The destination, when no hospital is named (or the hospital's location, filled in).
    public var destination: GeoPoint?
    /// Component wanted.
    public var component: Component
    /// The recipient: group (or unknown) and clinical context.
    public var recipient: Recipient
    /// Units wanted.
    public var quantity: Int
    /// Special requirements every unit must meet.
    public var requirements: [UnitAttribute]
    /// Maximum unit age in days at evaluation (fresh red cells for neonates), if any.
    public var maximumUnitAgeDays: Int?
    /// How urgent.
    public var urgency: Urgency
    /// When the units are needed, if said.
    public var neededBy: Date?

    /// Creates a request.
    public init(requestID: String, hospitalID: String?, destination: GeoPoint?, component: Component, recipient: Recipient,
                quantity: Int, requirements: [UnitAttribute], maximumUnitAgeDays: Int? = nil, urgency: Urgency,
                neededBy: Date? = nil) {
        self.requestID = requestID
        self.hospitalID = hospitalID
        self.destination = destination
        self.component = component
        self.recipient = recipient
        self.quantity = quantity
        self.requirements = requirements.sorted()
        self.maximumUnitAgeDays = maximumUnitAgeDays
        self.urgency = urgency
        self.neededBy = neededBy
    }

    /// The most units one request may ask for; a larger number is refused, not truncated.
    public static let maximumQuantity = 100
    /// The most special requirements one request may carry (there are fewer attributes than this).
    public static let maximumRequirements = UnitAttribute.allCases.count
}

/// How a decision ended. `unableToVerify` is never reported as "no units".
public enum MatchOutcome: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every unit asked for was found.
    case fulfilled
    /// Some, not all, were found.
    case partial
    /// No compatible, available, unexpired unit with the requirements exists in the data in force.
    case noneCompatibleAvailable = "none_compatible_available"
    /// Units were found, but none arrives by the deadline (the urgency's time ceiling, or
    /// `needed_by` when sooner): they are offered marked late, for the requester to decide.
    case late
    /// The data could not be trusted (database, index or clock): manual review required.
    case unableToVerify = "unable_to_verify"
}

/// One centre's data as the decision saw it.
public struct CentreDataState: Sendable, Hashable, Codable {
    /// Centre id.
    public var centreID: String
    /// Snapshot in force.
    public var snapshotID: Int64
    /// Snapshot instant.
    public var asOf: Date
    /// Minutes between `asOf` and evaluation.
    public var dataAgeMinutes: Int
    /// Whether it was stale (older than the centre's expected feed interval).
    public var stale: Bool
}

/// A distribution centre the answer could not check: it has never delivered a snapshot, so its
/// stock is unknown (not zero).
public struct CentreNotChecked: Sendable, Hashable, Codable {
    /// Centre id.
    public var centreID: String
    /// Great-circle distance to the destination, km.
    public var distanceKm: Double

    /// Creates an entry.
    public init(centreID: String, distanceKm: Double) {
        self.centreID = centreID
        self.distanceKm = distanceKm
    }
}

/// A recorded answer: everything needed to reconstruct why these units were chosen.
public struct MatchDecision: Sendable, Hashable, Codable {
    /// Decision id.
    public var decisionID: UUID
    /// The request, as received (destination filled in).
    public var request: MatchRequest
    /// Evaluation instant.
    public var evaluatedAt: Date
    /// Outcome.
    public var outcome: MatchOutcome
    /// One sentence for people.
    public var summary: String
    /// Why the answer could not be verified, when the outcome is `unable_to_verify`.
    public var unableToVerifyReason: String?
    /// Transfusion policy version.
    public var policyVersion: String
    /// Travel and ranking settings used.
    public var settings: MatchingSettings
    /// Index version (names every centre's snapshot) and when it was built.
    public var indexVersion: String?
    /// Index build instant.
    public var indexBuiltAt: Date?
    /// Every centre's data state at evaluation.
    public var centres: [CentreDataState]
    /// The acceptable groups the rules gave, with ranks, flags and sources.
    public var rulesApplied: [GroupChoice]
    /// Groups the rules refused, with the reason.
    public var groupsRefused: [String]
    /// How the special requirements were applied.
    public var requirementNotes: [String]
    /// Chosen units, best first.
    public var chosen: [ProposedUnit]
    /// Best rejected candidates and why.
    public var rejected: [RejectedCandidates]
    /// Centres the chosen units come from.
    public var centresUsed: [String]
    /// Whether the quantity is split across centres.
    public var splitAcrossCentres: Bool
    /// Whether any chosen unit comes from a centre whose data is stale (then it is not certain).
    public var includesStaleData: Bool
    /// The ETA in minutes by which the units should arrive (the urgency's time ceiling, or
    /// `needed_by` when sooner); nil in decisions made before deadlines existed.
    public var arrivalDeadlineMinutes: Double? = nil
    /// Distribution centres that could not be checked (no data — stock unknown), nearest first;
    /// nil when every centre was checked, and in decisions made before this was recorded.
    public var centresNotChecked: [CentreNotChecked]? = nil
    /// True for a what-if: evaluated at an instant given by the caller (`--as-of`) on the stock in
    /// force now. It is recorded, but can never be reserved or issued. Nil for a live decision.
    public var whatIf: Bool? = nil
}
