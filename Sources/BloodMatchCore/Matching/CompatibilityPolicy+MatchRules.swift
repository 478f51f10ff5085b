/// The loaded transfusion policy as the matcher's rule source.
extension CompatibilityPolicy: MatchRules {
    /// Acceptable groups from `compatibility(of:for:urgency:)`, with rank, flags, the deciding
    /// rule and its source, and any attribute the group requires; refused groups with reasons.
    public func groupChoices(component: Component, recipient: Recipient, urgency: Urgency) -> (choices: [GroupChoice], refused: [String]) {
        let result = compatibility(of: component, for: recipient, urgency: urgency)
        let limit = document.specialRequirements.lowTitreWholeBloodMaximumUnits
        let choices = result.acceptable.compactMap { verdict -> GroupChoice? in
            guard let rank = verdict.rank else { return nil }
            let citation = verdict.rules.first.map { " [\($0.id); \(Self.shortSource($0.source))]" } ?? ""
            var rule = verdict.reason + citation
            // Low-titre group O whole blood given across groups: a limited number per request,
            // then components (HEMATOS; Data/SOURCES.md §S5).
            let lowTitreWholeBlood = component == .wholeBlood && verdict.requiredAttributes.contains(.lowTitre)
            if lowTitreWholeBlood { rule += "; at most \(limit.value) per request, then components [\(Self.shortSource(limit.source))]" }
            return GroupChoice(group: verdict.group, rank: rank, flags: verdict.flagNames, rule: rule,
                               required: verdict.requiredAttributes, maximumUnits: lowTitreWholeBlood ? limit.value : nil)
        }
        let refused = result.unacceptable.map { "\($0.group): \($0.reason)" }
        return (choices, refused)
    }

    /// The leading source abbreviation of a citation (`LB-CC platelet table …` → `LB-CC`).
    static func shortSource(_ source: String) -> String {
        let head = source.prefix { $0 != " " && $0 != "," && $0 != ";" && $0 != "(" }
        return head.isEmpty ? String(source.prefix(24)) : String(head)
    }

    /// Requirements resolved by `resolveRequirements`, as the matcher's plan.
    public func requirementPlan(component: Component, requested: AttributeSet, maximumUnitAgeSeconds: Double?, recipient: Recipient) -> RequirementPlan {
        let resolved = resolveRequirements(component: component, requested: requested,
                                           maximumUnitAgeSeconds: maximumUnitAgeSeconds, recipient: recipient)
        return RequirementPlan(
            required: resolved.required, exclusive: resolved.exclusive, scarce: resolved.scarce,
            maximumUnitAgeSeconds: resolved.maximumUnitAgeSeconds,
            notes: (resolved.notes + resolved.waived).map(\.description),
            unsatisfiable: resolved.unsatisfiable.map(\.description))
    }
}
