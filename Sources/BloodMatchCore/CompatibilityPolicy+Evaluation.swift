/// The verdict on one unit group for one request: acceptable with a rank and flags, or not and why.
public struct UnitGroupVerdict: Sendable, Hashable, Codable {
    /// The unit's ABO/RhD group.
    public var group: BloodGroup
    /// Whether units of this group may be given.
    public var isAcceptable: Bool
    /// Preference rank among acceptable groups, 1 = best; equal ranks are equally preferred.
    /// Nil when not acceptable.
    public var rank: Int?
    /// Notes for the issuing laboratory (`anti_d_prophylaxis_required`, `low_titre_required` …).
    public var flags: [CompatibilityFlag]
    /// Attributes a unit of this group must carry to be acceptable here (e.g. `LOW_TITRE` for
    /// group O whole blood). The matcher adds these to the request's own requirements.
    public var requiredAttributes: AttributeSet
    /// The rules that decided, deciding rule first.
    public var rules: [RuleCitation]
    /// One line for people: why acceptable at this rank, or why refused.
    public var reason: String

    /// Identifiers of the rules that decided, ` + `-joined: one rule for a refusal
    /// (`RBC.RHD.NEGATIVE_REQUIRED`), the ABO table and the RhD rules for an acceptance
    /// (`RBC.ABO + RBC.RHD.POSITIVE_FOR_NEGATIVE`).
    public var ruleID: String { rules.map(\.id).joined(separator: " + ") }
    /// The sources of all rules that took part, `; `-separated.
    public var source: String { rules.map(\.source).joined(separator: " | ") }
    /// Flag names as spelled in JSON and the rationale.
    public var flagNames: [String] { flags.map(\.rawValue) }
}

/// Which unit groups a recipient may receive of a component at an urgency, under one policy.
public struct CompatibilityResult: Sendable, Hashable, Codable {
    /// Policy version that decided.
    public var policyVersion: String
    /// Component asked for.
    public var component: Component
    /// The recipient.
    public var recipient: Recipient
    /// Urgency.
    public var urgency: Urgency
    /// Why the recipient must receive RhD-negative red cells, if so (empty otherwise).
    public var rhdNegativeReasons: String
    /// Verdicts for all eight groups, in `BloodGroup.all` order (index = `BloodGroup.index`).
    public var verdicts: [UnitGroupVerdict]

    /// Acceptable groups, best first (by rank, then O-neg-first group order within a rank).
    public var acceptable: [UnitGroupVerdict] {
        verdicts.filter(\.isAcceptable).sorted { ($0.rank ?? .max, $0.group) < ($1.rank ?? .max, $1.group) }
    }

    /// Groups that may not be given, each with its reason.
    public var unacceptable: [UnitGroupVerdict] { verdicts.filter { !$0.isAcceptable } }

    /// The verdict for one group.
    public func verdict(for group: BloodGroup) -> UnitGroupVerdict { verdicts[group.index] }

    /// A multi-line explanation for a rationale record.
    public var explanation: String {
        var lines = ["\(component.rawValue) for \(recipient.group?.description ?? "unknown group") (\(urgency.rawValue)), policy \(policyVersion)"]
        if !rhdNegativeReasons.isEmpty { lines.append("RhD-negative required: \(rhdNegativeReasons)") }
        for v in acceptable { lines.append("  \(v.rank ?? 0). \(v.group): \(v.reason)") }
        for v in unacceptable { lines.append("  no \(v.group): \(v.reason)") }
        return lines.joined(separator: "\n")
    }
}

extension CompatibilityPolicy {
    /// The childbearing-potential, paediatric and uncertainty reasons for which a recipient must
    /// receive RhD-negative red cells (LB-CC; LB-ONEG; LH), using the policy's age thresholds.
    ///
    /// Childbearing potential is the explicit statement if given, else female and at or under
    /// `childbearingPotentialMaximumAgeYears` (LB-CC ≤50). Paediatric is neonate or at or under
    /// `paediatricMaximumAgeYears` (LB-CC ≤18). Where sex or age is unknown and could matter, the
    /// recipient is treated as requiring RhD-negative (LB-ONEG).
    public func rhdNegativeReasons(for context: RecipientContext) -> RhDNegativeReasons {
        let cbpLimit = document.recipientThresholds.childbearingPotentialMaximumAgeYears.value
        let paediatricLimit = document.recipientThresholds.paediatricMaximumAgeYears.value
        var reasons: RhDNegativeReasons = []
        if context.hasAntiD { reasons.insert(.antiD) }
        if context.likelyTransfusionDependent { reasons.insert(.transfusionDependent) }
        let childbearing: Bool?
        if let stated = context.childbearingPotential {
            childbearing = stated
        } else {
            switch (context.sex, context.ageYears) {
            case (.male, _): childbearing = false
            case (_, nil): childbearing = nil
            case (.female, let age?): childbearing = age <= cbpLimit
            case (.unknown, let age?): childbearing = age <= cbpLimit ? nil : false
            }
        }
        let paediatric: Bool? = context.isNeonate ? true : context.ageYears.map { $0 <= paediatricLimit }
        if childbearing == true { reasons.insert(.childbearingPotential) }
        if paediatric == true { reasons.insert(.paediatric) }
        if childbearing == nil || paediatric == nil { reasons.insert(.sexOrAgeUnknown) }
        return reasons
    }

    /// Which unit groups of `component` a recipient may receive at `urgency`, each ranked and
    /// flagged with the rules that decided; the matcher calls this once per query.
    ///
    /// - Red cells and whole blood: the red-cell rule (donor antigens vs recipient antibodies),
    ///   never overridable; the component's ABO table; RhD-identical first (LB-CC, LB-ONEG); RhD-
    ///   negative for those who must have it (LB-CC, LH); RhD-positive for other RhD-negative
    ///   recipients only as the policy option allows; O RhD-negative last for others (LB-ONEG).
    /// - Platelets: the Lifeblood table with footnotes (LB-CC); RhD-positive for RhD-negative
    ///   females of childbearing potential and children flagged `anti_d_prophylaxis_required`
    ///   rather than refused (LH; CID-2015).
    /// - Plasma and cryoprecipitate: the reverse (plasma) rule table; RhD irrelevant (LB-OLD;
    ///   BCSH-FFP).
    /// - Unknown group: the tables' `unknown` rows (group O red cells; AB then A plasma; A or O
    ///   platelets; LTOWB in emergency), flagged `unknown_recipient_group`.
    public func compatibility(of component: Component, for recipient: Recipient, urgency: Urgency) -> CompatibilityResult {
        let reasons = rhdNegativeReasons(for: recipient.context)
        let evaluator = GroupEvaluator(
            policy: self, citations: citations, table: tables[component.index], component: component,
            recipient: recipient, urgency: urgency, reasons: reasons, reasonsText: reasons.description)
        var verdicts = BloodGroup.all.map(evaluator.verdict(for:))
        // Dense ranks from the sort keys.
        let keys = Set(verdicts.compactMap { $0.isAcceptable ? $0.rank : nil }).sorted()
        for i in verdicts.indices {
            if let key = verdicts[i].rank, let position = keys.firstIndex(of: key) {
                verdicts[i].rank = position + 1
            }
        }
        let rhdRelevant = component.carriesRedCells && (recipient.group?.rhd ?? .negative) == .negative
        return CompatibilityResult(
            policyVersion: version, component: component, recipient: recipient, urgency: urgency,
            rhdNegativeReasons: rhdRelevant ? evaluator.reasonsText : "", verdicts: verdicts)
    }
}

/// Works out one verdict per donor group; `rank` holds a sort key until the caller densifies it.
private struct GroupEvaluator {
    let policy: CompatibilityPolicy
    let citations: PolicyCitations
    let table: CompiledTable
    let component: Component
    let recipient: Recipient
    let urgency: Urgency
    let reasons: RhDNegativeReasons
    let reasonsText: String

    var rules: RhDRules { policy.document.rhdRules }
    var recipientABO: RecipientABO { recipient.abo }
    /// RhD of the recipient; unknown counts as negative for every RhD rule (LB-CC; LH).
    var recipientRhD: RhD { recipient.group?.rhd ?? .negative }
    var mustReceiveRhDNegative: Bool { recipientRhD == .negative && !reasons.isEmpty }
    /// LH: RhD-negative females of child-bearing age or children should receive RhD-negative
    /// platelets; uncertain sex or age takes the stricter reading (LB-ONEG).
    var plateletProphylaxisClass: Bool {
        !reasons.isDisjoint(with: [.childbearingPotential, .paediatric, .sexOrAgeUnknown])
    }

    func key(_ a: Int, _ b: Int, _ c: Int) -> Int { a * 10_000 + b * 100 + c }

    func refused(_ group: BloodGroup, _ rule: RuleCitation, _ reason: String) -> UnitGroupVerdict {
        UnitGroupVerdict(
            group: group, isAcceptable: false, rank: nil, flags: [], requiredAttributes: [], rules: [rule], reason: reason)
    }

    var tableCitation: RuleCitation { citations.table[component.index][recipientABO.index] }

    func verdict(for group: BloodGroup) -> UnitGroupVerdict {
        let donor = group.abo
        // The red-cell rule is checked here as well as at load: no table can make it acceptable.
        if component.carriesRedCells, !recipientABO.acceptsRedCells(from: donor) {
            return refused(
                group, citations.redCellNever,
                recipient.group == nil
                    ? "ABO-incompatible red cells: a recipient of unknown group may have \(antibodyNames(recipientABO.antibodies & donor.antigens)) against donor \(donor.rawValue) red cells; group O only until grouped"
                    : "ABO-incompatible red cells: recipient \(recipientABO.key) has \(antibodyNames(recipientABO.antibodies & donor.antigens)) against donor \(donor.rawValue) red cells")
        }
        guard let choice = table.choices[recipientABO.index][donor.index] else {
            return refused(group, tableCitation, notListedReason(donor))
        }
        guard choice.applies(in: urgency) else {
            let allowed = (choice.urgencies ?? []).map(\.rawValue).joined(separator: ", ")
            return refused(
                group, tableCitation,
                "\(donor.rawValue) \(component.rawValue) for recipient \(recipientABO.key) only in \(allowed) (table \(table.name))")
        }
        var flags = Set(choice.notes)
        var cited = [tableCitation]
        var summary = ["ABO tier \(choice.tier) of table \(table.name)"]
        if !choice.requires.isEmpty {
            summary.append("unit must be \(choice.requires.description)")
            if choice.requires.contains(.lowTitre) { flags.insert(.lowTitreRequired) }
        }
        if choice.urgencies != nil, choice.urgencies?.contains(.emergency) == true { flags.insert(.emergencyRelease) }
        if recipient.group == nil {
            flags.insert(.unknownRecipientGroup)
            if urgency == .emergency { flags.insert(.emergencyRelease) }
        }
        if !recipientABO.acceptsPlasma(from: donor), component != .redCells {
            flags.insert(.abOIncompatiblePlasmaMinor)
        }
        if component == .platelets, !recipientABO.acceptsRedCells(from: donor) {
            flags.insert(.abOIncompatibleMajor)
        }

        let sortKey: Int
        switch component {
        case .redCells, .wholeBlood:
            guard let rhd = redCellRhD(group, tier: choice.tier, flags: &flags, cited: &cited, summary: &summary)
            else {
                return refused(group, rhdRefusalRule(), rhdRefusalReason(group))
            }
            sortKey = rhd
        case .platelets:
            sortKey = plateletRhD(group, tier: choice.tier, flags: &flags, cited: &cited, summary: &summary)
        case .plasma, .cryoprecipitate:
            cited.append(citations.rhdIrrelevant[component.index])
            sortKey = key(choice.tier, 0, 0)
        }
        return UnitGroupVerdict(
            group: group, isAcceptable: true, rank: sortKey, flags: flags.sorted(), requiredAttributes: choice.requires,
            rules: cited, reason: summary.joined(separator: "; "))
    }

    /// RhD ordering for red cells and whole blood; nil means refused.
    func redCellRhD(
        _ group: BloodGroup, tier: Int, flags: inout Set<CompatibilityFlag>, cited: inout [RuleCitation],
        summary: inout [String]
    ) -> Int? {
        let donorNegative = group.rhd == .negative
        let isONegative = group == .oNegative
        let recipientIsONegative = recipient.group == .oNegative
        if isONegative, !recipientIsONegative, !mustReceiveRhDNegative {
            flags.insert(.oNegativeConservation)
            cited.append(citations.stewardship)
        }
        if recipient.group == nil {
            cited.append(citations.unknownGroup)
            if mustReceiveRhDNegative {
                if donorNegative {
                    summary.append("O RhD-negative: RhD-negative required (\(reasonsText))")
                    return key(0, tier, 0)
                }
                return emergencyLastResort(tier: tier, flags: &flags, cited: &cited, summary: &summary)
            }
            // LB-CC: O RhD-positive or O RhD-negative; conserve O-negative (LB-ONEG; UTMB).
            summary.append(donorNegative ? "O RhD-negative after O RhD-positive (conservation)" : "O RhD-positive first for this recipient")
            return key(donorNegative ? 1 : 0, tier, 0)
        }
        if recipientRhD == .positive {
            cited.append(citations.identicalFirst)
            summary.append(donorNegative ? "RhD-negative after RhD-positive" : "RhD-identical")
            // A-pos: A+, A-, O+, O- (ABO tier first, then RhD-identical; O-neg falls last).
            return key(tier, donorNegative ? 1 : 0, 0)
        }
        if mustReceiveRhDNegative {
            if donorNegative {
                cited.append(citations.negativeRequired)
                summary.append("RhD-negative required (\(reasonsText))")
                return key(0, tier, 0)
            }
            return emergencyLastResort(tier: tier, flags: &flags, cited: &cited, summary: &summary)
        }
        // RhD-negative recipient who may receive RhD-positive where policy allows (LB-CC; LH).
        let option = rules.redCellsRhDPositiveForRhDNegative
        cited.append(citations.identicalFirst)
        if donorNegative {
            if option.value == .beforeONegative, isONegative, !recipientIsONegative {
                summary.append("O RhD-negative last (policy before_o_negative; conservation)")
                return key(2, tier, 0)
            }
            summary.append("RhD-identical")
            return key(0, tier, 0)
        }
        guard option.value != .notAllowed else { return nil }
        flags.insert(.rhdMismatch)
        cited.append(citations.positiveForNegative)
        summary.append("RhD-positive for RhD-negative recipient: lower-ranked, risk of anti-D (policy \(option.value.rawValue))")
        return key(1, tier, 0)
    }

    func emergencyLastResort(
        tier: Int, flags: inout Set<CompatibilityFlag>, cited: inout [RuleCitation], summary: inout [String]
    ) -> Int? {
        let option = rules.redCellsRhDNegativeExhaustedInEmergency
        guard option.value, urgency == .emergency else { return nil }
        flags.formUnion([.rhdMismatch, .rhdNegativeExhaustedLastResort, .emergencyRelease])
        cited.append(citations.emergencyLastResort)
        summary.append("RhD-positive last resort in emergency although RhD-negative is required (\(reasonsText))")
        return key(3, tier, 0)
    }

    func rhdRefusalRule() -> RuleCitation {
        mustReceiveRhDNegative ? citations.negativeRequired : citations.positiveForNegative
    }

    func rhdRefusalReason(_ group: BloodGroup) -> String {
        if mustReceiveRhDNegative {
            return "RhD-positive \(component.rawValue) refused: recipient must receive RhD-negative (\(reasonsText))"
        }
        return "RhD-positive \(component.rawValue) refused for RhD-negative recipient: policy not_allowed"
    }

    /// RhD ordering for platelets: never a refusal (LH; CID-2015).
    func plateletRhD(
        _ group: BloodGroup, tier: Int, flags: inout Set<CompatibilityFlag>, cited: inout [RuleCitation],
        summary: inout [String]
    ) -> Int {
        let donorNegative = group.rhd == .negative
        if recipientRhD == .positive {
            summary.append(donorNegative ? "RhD-negative after RhD-positive" : "RhD-identical")
            return key(tier, donorNegative ? 1 : 0, 0)
        }
        cited.append(citations.plateletRhD)
        if donorNegative {
            summary.append("RhD-negative")
            return plateletProphylaxisClass ? key(0, tier, 0) : key(tier, 0, 0)
        }
        flags.insert(.rhdMismatch)
        if plateletProphylaxisClass {
            flags.insert(.antiDProphylaxisRequired)
            summary.append("RhD-positive for RhD-negative recipient (\(reasonsText)): anti-D prophylaxis required")
            return key(1, tier, 0)
        }
        summary.append("RhD-positive for RhD-negative recipient after RhD-negative")
        return key(tier, 1, 0)
    }

    func notListedReason(_ donor: ABO) -> String {
        switch component {
        case .plasma where !recipientABO.acceptsPlasma(from: donor),
             .cryoprecipitate where !recipientABO.acceptsPlasma(from: donor):
            return "ABO-incompatible plasma: donor \(donor.rawValue) has \(antibodyNames(donor.antibodies & recipientABO.antigens)) against recipient \(recipientABO.key) red cells, and table \(table.name) does not list it"
        case .wholeBlood:
            return "whole blood must be ABO-identical outside emergency release of low-titre group O (table \(table.name))"
        default:
            return "\(donor.rawValue) is not a choice for recipient \(recipientABO.key) in table \(table.name)"
        }
    }

    func antibodyNames(_ bits: UInt8) -> String {
        switch bits {
        case 0b01: "anti-A"
        case 0b10: "anti-B"
        case 0b11: "anti-A and anti-B"
        default: "no antibodies"
        }
    }
}
