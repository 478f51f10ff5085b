import Foundation

/// A request's special requirements after the policy has been applied: implied attributes added,
/// unnecessary ones waived, the neonatal freshness limit set (Data/SOURCES.md §S8).
public struct ResolvedRequirements: Sendable, Hashable, Codable {
    /// Component requested.
    public var component: Component
    /// Attributes every unit must carry.
    public var required: AttributeSet
    /// Attributes asked for that the policy waives for this component (e.g. CMV-negative plasma:
    /// LB-CMV), each with its reason.
    public var waived: [RequirementNote]
    /// Attributes asked for that no unit of this component can carry (e.g. HLA-matched red cells);
    /// a request with any of these cannot be met and should go back to the requester.
    public var unsatisfiable: [RequirementNote]
    /// Maximum unit age in seconds: a unit must be younger than this. Nil for none.
    public var maximumUnitAgeSeconds: Double?
    /// Attributes a unit may carry only if the request asked for them (never substituted).
    public var exclusive: AttributeSet
    /// Scarce attributes: a unit carrying one not asked for ranks after plain units.
    public var scarce: AttributeSet
    /// How the requirements were derived, with sources.
    public var notes: [RequirementNote]
    /// Policy version that decided.
    public var policyVersion: String

    /// Whether some requirement can never be met for this component.
    public var isSatisfiable: Bool { unsatisfiable.isEmpty }
}

/// A remark about one requirement, with the rule's source.
public struct RequirementNote: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The attribute concerned; nil for the age limit.
    public var attribute: UnitAttribute?
    /// What happened.
    public var text: String
    /// The rule's source.
    public var source: String

    /// Creates a note.
    public init(attribute: UnitAttribute?, text: String, source: String) {
        self.attribute = attribute
        self.text = text
        self.source = source
    }

    /// `text (source)`.
    public var description: String { "\(text) (\(source))" }
}

/// Why a unit does not meet a request's special requirements.
public enum RequirementFailure: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The unit is another component than the one requested.
    case wrongComponent(unit: Component, requested: Component)
    /// The unit lacks required attributes.
    case missing(AttributeSet)
    /// The unit carries attributes that may never serve a request that did not ask for them.
    case notSubstitutable(AttributeSet)
    /// The unit is not younger than the maximum age; carries both in seconds.
    case tooOld(ageSeconds: Double, limitSeconds: Double)
    /// The unit's collection time is after `now`: the data is implausible.
    case collectedInFuture(ageSeconds: Double)
    /// The request holds a requirement no unit of this component can meet.
    case unsatisfiableRequest(AttributeSet)

    /// Text for people and logs.
    public var description: String {
        switch self {
        case .wrongComponent(let unit, let requested): "unit is \(unit.rawValue), request is for \(requested.rawValue)"
        case .missing(let set): "unit lacks \(set.description)"
        case .notSubstitutable(let set): "unit is \(set.description), which may not serve a request that did not ask for it"
        case .tooOld(let age, let limit):
            "unit is \(String(format: "%.1f", age / 86_400)) days old; must be under \(String(format: "%.1f", limit / 86_400)) days"
        case .collectedInFuture(let age): "unit collection time is \(Int(-age)) s after now"
        case .unsatisfiableRequest(let set): "requirement \(set.description) cannot be met by this component"
        }
    }
}

/// Whether one unit meets a request's special requirements, and how much scarce stock it would use.
public struct RequirementCheck: Sendable, Hashable, Codable {
    /// Whether the unit may serve the request.
    public var satisfies: Bool
    /// Why not (empty when it does).
    public var failures: [RequirementFailure]
    /// Scarce attributes the unit carries that the request did not ask for.
    public var surplusScarce: AttributeSet
    /// Number of those attributes: the ranking penalty count, so plain units are used first.
    public var surplusCount: Int { surplusScarce.count }
    /// One line for people.
    public var explanation: String {
        if !satisfies { return failures.map(\.description).joined(separator: "; ") }
        if surplusScarce.isEmpty { return "meets the special requirements" }
        return "meets the special requirements; also \(surplusScarce.description), scarce stock not asked for (ranked after plain units)"
    }
}

extension CompatibilityPolicy {
    /// Applies the policy to a request's special requirements: adds implied attributes (HLA-matched
    /// platelets irradiated: CBS), waives those not needed for the component (CMV-negative and
    /// irradiated plasma/cryo: LB-CMV, STARSHIP), marks those impossible for it, adds what a
    /// neonate needs where it applies to the component (CMV-seronegative cellular components:
    /// LB-CMV), and sets the neonatal red-cell age limit (LH: under 5 days) unless the request asks
    /// for a stricter one.
    public func resolveRequirements(
        component: Component, requested: AttributeSet, maximumUnitAgeSeconds: Double? = nil, recipient: Recipient
    ) -> ResolvedRequirements {
        var required = AttributeSet()
        var waived: [RequirementNote] = []
        var unsatisfiable: [RequirementNote] = []
        var notes: [RequirementNote] = []
        var pending = requested.attributes
        if recipient.context.isNeonate {
            let neonatal = document.specialRequirements.neonatalRequiredAttributes
            for attribute in neonatal.value where !requested.contains(attribute) {
                // Only where the attribute exists for the component and is needed there.
                guard let rule = requirementRules[attribute], rule.appliesTo.contains(component),
                      !rule.notNeededFor.contains(component) else { continue }
                notes.append(RequirementNote(attribute: attribute, text: "\(attribute.rawValue) added: the recipient is a neonate",
                                             source: neonatal.source))
                pending.append(attribute)
            }
        }
        var visited = Set<UnitAttribute>()
        while let attribute = pending.popLast() {
            guard visited.insert(attribute).inserted else { continue }
            guard let rule = requirementRules[attribute] else {
                unsatisfiable.append(RequirementNote(
                    attribute: attribute, text: "\(attribute.rawValue) has no special-requirement rule in policy \(version)",
                    source: "policy \(version)"))
                continue
            }
            if rule.notNeededFor.contains(component) {
                waived.append(RequirementNote(
                    attribute: attribute, text: "\(attribute.rawValue) is not needed for \(component.rawValue); waived",
                    source: rule.source))
                continue
            }
            guard rule.appliesTo.contains(component) else {
                unsatisfiable.append(RequirementNote(
                    attribute: attribute, text: "\(attribute.rawValue) does not exist for \(component.rawValue)",
                    source: rule.source))
                continue
            }
            required.insert(attribute)
            for implied in rule.implies where !requested.contains(implied) && !visited.contains(implied) {
                notes.append(RequirementNote(
                    attribute: implied, text: "\(implied.rawValue) added: implied by \(attribute.rawValue)", source: rule.source))
                pending.append(implied)
            }
        }
        var limit = maximumUnitAgeSeconds
        if recipient.context.isNeonate, component == .redCells {
            let neonatal = document.specialRequirements.neonatalRedCellMaximumAgeDays
            let seconds = Double(neonatal.value) * 86_400
            if limit.map({ seconds < $0 }) ?? true {
                limit = seconds
                notes.append(RequirementNote(
                    attribute: nil, text: "neonatal red cells must be under \(neonatal.value) days old", source: neonatal.source))
            }
        }
        return ResolvedRequirements(
            component: component, required: required, waived: waived, unsatisfiable: unsatisfiable,
            maximumUnitAgeSeconds: limit, exclusive: neverSubstitutedAttributes.subtracting(required),
            scarce: scarceAttributes, notes: notes, policyVersion: version)
    }

    /// Whether a unit meets resolved requirements at `now`, and its surplus of scarce attributes.
    ///
    /// A unit may carry more than was asked (a CMV-negative unit serves a plain request) except for
    /// never-substituted attributes (washed, volume-reduced, HLA-matched); surplus scarce attributes
    /// are counted so plain units rank first (LB-CMV; LB-CC; Data/SOURCES.md §S8). The age limit is a hard
    /// upper bound (LH; NHSBT).
    public func checkUnit(
        attributes: AttributeSet, component: Component, collectedAt: Date,
        against requirements: ResolvedRequirements, now: Date
    ) -> RequirementCheck {
        var failures: [RequirementFailure] = []
        if component != requirements.component {
            failures.append(.wrongComponent(unit: component, requested: requirements.component))
        }
        if !requirements.unsatisfiable.isEmpty {
            failures.append(.unsatisfiableRequest(AttributeSet(requirements.unsatisfiable.compactMap(\.attribute))))
        }
        let missing = requirements.required.subtracting(attributes)
        if !missing.isEmpty { failures.append(.missing(missing)) }
        let forbidden = attributes.intersection(requirements.exclusive)
        if !forbidden.isEmpty { failures.append(.notSubstitutable(forbidden)) }
        let age = now.timeIntervalSince(collectedAt)
        if age < 0 { failures.append(.collectedInFuture(ageSeconds: age)) }
        if let limit = requirements.maximumUnitAgeSeconds, age >= limit {
            failures.append(.tooOld(ageSeconds: age, limitSeconds: limit))
        }
        let surplus = attributes.intersection(requirements.scarce).subtracting(requirements.required)
        return RequirementCheck(satisfies: failures.isEmpty, failures: failures, surplusScarce: surplus)
    }

    /// `checkUnit` for an inventory unit.
    public func checkUnit(_ unit: InventoryUnit, against requirements: ResolvedRequirements, now: Date) -> RequirementCheck {
        checkUnit(
            attributes: unit.attributes, component: unit.component, collectedAt: unit.collectedAt,
            against: requirements, now: now)
    }
}
