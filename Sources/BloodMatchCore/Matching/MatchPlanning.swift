import Foundation

/// What the transfusion rules contribute to a search: acceptable groups with their ranks, and
/// how special requirements constrain units. Implemented by the loaded `CompatibilityPolicy`.
public protocol MatchRules: Sendable {
    /// Version of the policy, recorded on every decision.
    var version: String { get }
    /// The acceptable unit groups for a recipient, best first, and the refused ones with reasons.
    func groupChoices(component: Component, recipient: Recipient, urgency: Urgency) -> (choices: [GroupChoice], refused: [String])
    /// How a request's special requirements apply to a component and recipient.
    func requirementPlan(component: Component, requested: AttributeSet, maximumUnitAgeSeconds: Double?, recipient: Recipient) -> RequirementPlan
}

/// Special requirements resolved for one request.
public struct RequirementPlan: Sendable, Hashable {
    /// Attributes every unit must have (the request's, plus any they imply).
    public var required: AttributeSet
    /// Attributes a unit may carry only when asked for (never substituted).
    public var exclusive: AttributeSet
    /// Scarce attributes: a unit carrying one not asked for ranks after plain units.
    public var scarce: AttributeSet
    /// Maximum unit age in seconds (a request's limit, or the neonatal limit).
    public var maximumUnitAgeSeconds: Double?
    /// How each requirement applied, with its source.
    public var notes: [String]
    /// Requirements that cannot be met for this component; the request then finds nothing.
    public var unsatisfiable: [String]

    /// Creates a plan.
    public init(required: AttributeSet, exclusive: AttributeSet, scarce: AttributeSet, maximumUnitAgeSeconds: Double?,
                notes: [String], unsatisfiable: [String]) {
        self.required = required
        self.exclusive = exclusive
        self.scarce = scarce
        self.maximumUnitAgeSeconds = maximumUnitAgeSeconds
        self.notes = notes
        self.unsatisfiable = unsatisfiable
    }
}

/// Turns a clinical request into the matcher's query and the matcher's answer into a decision.
public struct MatchPlanner: Sendable {
    /// The rules.
    public let rules: any MatchRules
    /// Travel and ranking settings.
    public let settings: MatchingSettings
    /// Measured travel times, when `Data/travel-times.csv` is present.
    public let travelTimes: TravelTimeMatrix

    /// Creates a planner.
    public init(rules: any MatchRules, settings: MatchingSettings, travelTimes: TravelTimeMatrix = TravelTimeMatrix()) {
        self.rules = rules
        self.settings = settings
        self.travelTimes = travelTimes
    }

    /// The matcher over an index with these settings and travel times.
    public func matcher(for index: InventoryIndex) -> UnitMatcher {
        UnitMatcher(index: index, settings: settings, travelTimes: travelTimes)
    }

    /// The query for a request whose destination is known.
    public func query(for request: MatchRequest, destination: GeoPoint, excluded: Set<UnitKey> = []) -> (UnitQuery, refused: [String], notes: [String]) {
        let (choices, refused) = rules.groupChoices(component: request.component, recipient: request.recipient, urgency: request.urgency)
        let plan = rules.requirementPlan(
            component: request.component, requested: AttributeSet(request.requirements),
            maximumUnitAgeSeconds: request.maximumUnitAgeDays.map { Double($0) * 86_400 }, recipient: request.recipient)
        // A requirement that cannot exist for this component leaves nothing acceptable.
        let usable = plan.unsatisfiable.isEmpty ? choices : []
        let query = UnitQuery(
            destination: destination, destinationSiteID: request.hospitalID, component: request.component, choices: usable,
            required: plan.required, exclusive: plan.exclusive, scarce: plan.scarce,
            maximumUnitAgeSeconds: plan.maximumUnitAgeSeconds.map { Int64($0.rounded(.up)) }, quantity: request.quantity,
            urgency: request.urgency, neededBy: request.neededBy.map { Int64($0.timeIntervalSince1970) },
            excludedUnits: excluded)
        return (query, refused, plan.notes + plan.unsatisfiable.map { "cannot be met: \($0)" })
    }

    /// Assembles the decision from a search result.
    public func decision(
        id: UUID, request: MatchRequest, destination: GeoPoint, query: UnitQuery, refused: [String], notes: [String],
        match: UnitMatch, index: InventoryIndex, now: Date
    ) -> MatchDecision {
        var request = request
        request.destination = destination
        let nowSeconds = Int64(now.timeIntervalSince1970)
        let deadline = settings.arrivalDeadlineMinutes(urgency: request.urgency, neededBy: query.neededBy, now: nowSeconds)
        let late = match.chosen.filter { $0.late == true }.count
        let outcome: MatchOutcome = match.chosen.isEmpty ? .noneCompatibleAvailable
            : late == match.chosen.count ? .late
            : match.chosen.count >= request.quantity ? .fulfilled : .partial
        var used: [String] = []
        for unit in match.chosen where !used.contains(unit.centreID) { used.append(unit.centreID) }
        let stale = match.chosen.contains(where: \.staleCentre)
        var summary: String
        switch outcome {
        case .fulfilled: summary = "\(match.chosen.count) of \(request.quantity) \(request.component.rawValue) found"
        case .partial: summary = "only \(match.chosen.count) of \(request.quantity) \(request.component.rawValue) found"
        case .late: summary = "\(match.chosen.count) of \(request.quantity) \(request.component.rawValue) found, none arriving by the deadline"
        case .noneCompatibleAvailable: summary = "no compatible, available \(request.component.rawValue) unit meets the request in the data in force"
        case .unableToVerify: summary = "unable to verify — manual review required"
        }
        if used.count > 1 { summary += ", split across \(used.count) centres (\(used.joined(separator: ", ")))" }
        else if let only = used.first { summary += " at \(only)" }
        if deadline != nil, late > 0 {
            let why = Self.deadlineReason(settings: settings, urgency: request.urgency, neededBy: query.neededBy, now: nowSeconds)
            summary += outcome == .late
                ? "; LATE: every unit arrives after \(why) — confirm the time with the requester"
                : "; \(late) LATE: arriving after \(why)"
        }
        if stale { summary += "; includes units from a centre whose data is stale: confirm by phone before dispatch" }
        // A centre that never delivered a snapshot is not "no units": its stock is unknown.
        let notChecked = index.centresWithoutData
            .map { CentreNotChecked(centreID: $0.siteID, distanceKm: ($0.location.distanceKm(to: destination) * 10).rounded() / 10) }
            .sorted { ($0.distanceKm, $0.centreID) < ($1.distanceKm, $1.centreID) }
        if !notChecked.isEmpty {
            summary += "; \(notChecked.count) centre(s) could not be checked (no data — stock unknown, confirm by phone): "
                + notChecked.prefix(5).map { "\($0.centreID) (\(Int($0.distanceKm.rounded())) km)" }.joined(separator: ", ")
                + (notChecked.count > 5 ? ", …" : "")
        }
        var decision = MatchDecision(
            decisionID: id, request: request, evaluatedAt: now, outcome: outcome, summary: summary, unableToVerifyReason: nil,
            policyVersion: rules.version, settings: settings, indexVersion: index.version,
            indexBuiltAt: Date(timeIntervalSince1970: Double(index.builtAt)),
            centres: index.centres.map {
                CentreDataState(centreID: $0.siteID, snapshotID: $0.snapshotID, asOf: Date(timeIntervalSince1970: Double($0.asOf)),
                                dataAgeMinutes: Int($0.dataAgeSeconds(now: nowSeconds) / 60), stale: $0.isStale(now: nowSeconds))
            },
            rulesApplied: query.choices, groupsRefused: refused, requirementNotes: notes, chosen: match.chosen,
            rejected: match.rejected, centresUsed: used, splitAcrossCentres: used.count > 1, includesStaleData: stale,
            arrivalDeadlineMinutes: deadline)
        decision.centresNotChecked = notChecked.isEmpty ? nil : notChecked
        return decision
    }

    /// What sets the deadline, for people: the urgency's ceiling or the needed-by time.
    static func deadlineReason(settings: MatchingSettings, urgency: Urgency, neededBy: Int64?, now: Int64) -> String {
        let ceiling = settings.timeCeilingMinutes[urgency]
        if let neededBy, ceiling.map({ Double(neededBy - now) / 60 < $0 }) ?? true {
            let minutes = Int((Double(neededBy - now) / 60).rounded(.down))
            return minutes < 0 ? "the needed-by time, already \(-minutes) min past" : "the needed-by time (\(minutes) min from now)"
        }
        return "the \(urgency.rawValue) time ceiling (\(Int(ceiling ?? 0)) min)"
    }

    /// The decision when the data cannot be trusted: never "no units", always manual review.
    public func unableToVerify(id: UUID, request: MatchRequest, reason: String, now: Date) -> MatchDecision {
        MatchDecision(
            decisionID: id, request: request, evaluatedAt: now, outcome: .unableToVerify,
            summary: "unable to verify — manual review required: \(reason)", unableToVerifyReason: reason,
            policyVersion: rules.version, settings: settings, indexVersion: nil, indexBuiltAt: nil, centres: [],
            rulesApplied: [], groupsRefused: [], requirementNotes: [], chosen: [], rejected: [], centresUsed: [],
            splitAcrossCentres: false, includesStaleData: false)
    }
}
