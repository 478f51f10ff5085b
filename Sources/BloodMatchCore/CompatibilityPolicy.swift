import Foundation

/// The transfusion policy in force: the validated `Data/policy.json`, compiled for fast queries.
///
/// Loaded from bytes (the core does no file I/O) and validated as a whole: a file that would allow
/// an ABO-incompatible red cell, cites no source for a rule, or misspells a key is refused with a
/// `PolicyError` naming the offending value. Every decision made with it records `version`.
public struct CompatibilityPolicy: Sendable, Codable {
    /// The file as written.
    public let document: PolicyDocument
    /// The policy version every decision records, e.g. `2026.11-1`.
    public var version: String { document.version }

    let tables: [CompiledTable]
    let requirementRules: [UnitAttribute: SpecialRequirementRule]
    let processRules: [ProcessKey: ProcessExpiryRule]
    let citations: PolicyCitations

    /// Attributes that may never serve a request that did not ask for them (washed, volume-reduced,
    /// HLA-matched …; Data/SOURCES.md §S8). Matcher: exclude units carrying any of these unless requested.
    public let neverSubstitutedAttributes: AttributeSet
    /// Attributes whose stock is scarce (CMV-negative, antigen-negative, irradiated …): a unit
    /// carrying one the request did not ask for ranks after plain units (LB-CMV; LB-CC).
    public let scarceAttributes: AttributeSet
    /// Plausibility bounds from the policy, for refusing implausible feed rows.
    public let shelfLifeBounds: ShelfLifeBounds

    struct ProcessKey: Hashable, Sendable {
        var process: ModificationProcess
        var component: Component
    }

    /// Decodes and validates a policy from JSON bytes.
    public init(jsonData: Data) throws(PolicyError) {
        let document: PolicyDocument
        do {
            document = try JSONDecoder().decode(PolicyDocument.self, from: jsonData)
        } catch let error as DecodingError {
            throw CompatibilityPolicy.describe(error)
        } catch {
            throw .malformed(path: "", detail: "\(error)")
        }
        try self.init(document: document)
    }

    /// Validates and compiles a decoded document.
    public init(document: PolicyDocument) throws(PolicyError) {
        try PolicyValidator(document: document).validate()
        self.document = document
        var compiled: [CompiledTable] = []
        for component in Component.allCases {
            // Validation guarantees the component and its selected table exist.
            guard let section = document.components[component.rawValue],
                  let table = section.tables[section.selectedTable]
            else { throw .missingComponent(component) }
            compiled.append(CompiledTable(component: component, name: section.selectedTable, ruleID: section.ruleID, table: table))
        }
        self.tables = compiled
        self.citations = PolicyCitations(rules: document.rhdRules, tables: compiled)
        var rules: [UnitAttribute: SpecialRequirementRule] = [:]
        var never = AttributeSet()
        var scarce = AttributeSet()
        for rule in document.specialRequirements.attributes {
            rules[rule.attribute] = rule
            if rule.substitution == .never { never.insert(rule.attribute) }
            if rule.scarce { scarce.insert(rule.attribute) }
        }
        self.requirementRules = rules
        self.neverSubstitutedAttributes = never
        self.scarceAttributes = scarce
        var processes: [ProcessKey: ProcessExpiryRule] = [:]
        for rule in document.processExpiry {
            processes[ProcessKey(process: rule.process, component: rule.component)] = rule
        }
        self.processRules = processes
        var days: [Component: Int] = [:]
        for component in Component.allCases {
            days[component] = document.shelfLifeBounds[component.rawValue]?.value
        }
        self.shelfLifeBounds = ShelfLifeBounds(maximumDays: days)
    }

    /// Decodes a policy document and validates it; a refused policy becomes a decoding error.
    public init(from decoder: any Decoder) throws {
        let document = try PolicyDocument(from: decoder)
        do {
            try self.init(document: document)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    /// Encodes the document as written.
    public func encode(to encoder: any Encoder) throws { try document.encode(to: encoder) }

    /// The rule text for a process and component, if the policy defines one.
    public func processRule(_ process: ModificationProcess, for component: Component) -> ProcessExpiryRule? {
        processRules[ProcessKey(process: process, component: component)]
    }

    /// The special-requirement rule of an attribute, if the policy defines one.
    public func requirementRule(for attribute: UnitAttribute) -> SpecialRequirementRule? {
        requirementRules[attribute]
    }

    static func describe(_ error: DecodingError) -> PolicyError {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .malformed(path: path(context.codingPath + [key]), detail: "missing key '\(key.stringValue)'")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return .malformed(path: path(context.codingPath), detail: context.debugDescription)
        case .dataCorrupted(let context):
            var detail = context.debugDescription
            if let underlying = context.underlyingError { detail += " (\(underlying))" }
            return .malformed(path: path(context.codingPath), detail: detail)
        @unknown default:
            return .malformed(path: "", detail: "\(error)")
        }
    }
}

/// The rule citations of a policy, built once so evaluation only copies them.
struct PolicyCitations: Sendable {
    var redCellNever: RuleCitation
    var stewardship: RuleCitation
    var unknownGroup: RuleCitation
    var identicalFirst: RuleCitation
    var negativeRequired: RuleCitation
    var positiveForNegative: RuleCitation
    var emergencyLastResort: RuleCitation
    var plateletRhD: RuleCitation
    /// `[Component.index]`; RhD irrelevant for plasma components.
    var rhdIrrelevant: [RuleCitation]
    /// `[Component.index][RecipientABO.index]`.
    var table: [[RuleCitation]]

    init(rules: RhDRules, tables: [CompiledTable]) {
        redCellNever = RuleCitation(
            id: "RBC.ABO.NEVER_INCOMPATIBLE", source: "JPAC-HB §2.4.1; LB-CC red cells 'Never use'",
            text: "ABO-incompatible red cells are never given")
        stewardship = RuleCitation(
            id: "RBC.O_NEG_STEWARDSHIP", source: rules.oNegativeStewardship.source,
            text: "O RhD-negative ranked last for recipients who are not O RhD-negative; never chosen to avoid expiry")
        unknownGroup = RuleCitation(
            id: "RBC.UNKNOWN_GROUP", source: rules.redCellsUnknownGroup.source,
            text: "group O red cells while the recipient's group is unknown")
        identicalFirst = RuleCitation(
            id: "RBC.RHD.IDENTICAL_FIRST", source: rules.redCellsRhDIdenticalFirst.source,
            text: "RhD-identical red cells first")
        negativeRequired = RuleCitation(
            id: "RBC.RHD.NEGATIVE_REQUIRED", source: rules.redCellsRhDNegativeRequired.source,
            text: "RhD-negative red cells required")
        let option = rules.redCellsRhDPositiveForRhDNegative
        positiveForNegative = RuleCitation(
            id: "RBC.RHD.POSITIVE_FOR_NEGATIVE", source: option.source,
            text: "RhD-positive red cells for other RhD-negative recipients: policy \(option.value.rawValue)")
        emergencyLastResort = RuleCitation(
            id: "RBC.RHD.EMERGENCY_LAST_RESORT", source: rules.redCellsRhDNegativeExhaustedInEmergency.source,
            text: "RhD-positive only if RhD-negative is exhausted in a life-threatening emergency")
        plateletRhD = RuleCitation(
            id: "PLT.RHD", source: rules.plateletsRhD.source,
            text: "RhD-negative platelets for RhD-negative females of childbearing potential and children; otherwise anti-D prophylaxis")
        rhdIrrelevant = Component.allCases.map {
            RuleCitation(id: "\($0.rawValue).RHD.IRRELEVANT", source: rules.plasmaRhDIrrelevant.source,
                         text: "RhD type need not match for plasma components")
        }
        table = tables.map { table in
            RecipientABO.all.map { recipient in
                RuleCitation(
                    id: table.ruleID, source: table.source,
                    text: "\(table.component.rawValue) ABO table \(table.name), recipient \(recipient.key)")
            }
        }
    }
}

/// One choice of a compiled table row.
struct CompiledChoice: Sendable, Hashable {
    var abo: ABO
    var tier: Int
    var notes: [CompatibilityFlag]
    var requires: AttributeSet
    var urgencies: [Urgency]?

    func applies(in urgency: Urgency) -> Bool { urgencies?.contains(urgency) ?? true }
}

/// The selected table of a component, indexed by recipient and donor for O(1) lookups.
struct CompiledTable: Sendable {
    var component: Component
    var name: String
    var ruleID: String
    var source: String
    /// `[RecipientABO.index][ABO.index]`.
    var choices: [[CompiledChoice?]]

    init(component: Component, name: String, ruleID: String, table: ABOPreferenceTable) {
        self.component = component
        self.name = name
        self.ruleID = ruleID
        self.source = table.source
        var choices = Array(repeating: [CompiledChoice?](repeating: nil, count: 4), count: 5)
        for recipient in RecipientABO.all {
            for (offset, tier) in (table.recipients[recipient.key] ?? []).enumerated() {
                for choice in tier {
                    choices[recipient.index][choice.abo.index] = CompiledChoice(
                        abo: choice.abo, tier: offset + 1, notes: choice.notes,
                        requires: AttributeSet(choice.requires), urgencies: choice.urgencies)
                }
            }
        }
        self.choices = choices
    }
}

/// The checks a policy document must pass before it is used.
struct PolicyValidator {
    let document: PolicyDocument

    /// Plausibility ranges for thresholds. These are data sanity limits around the values the
    /// sources use (childbearing 50–55, paediatric 16–18, neonatal freshness 5–7 days), not rules.
    static let childbearingRange = 40...60
    static let paediatricRange = 12...21
    static let neonatalAgeDaysRange = 1...35
    /// Low-titre whole blood per request: the sources' figure is 2 (HEMATOS); a sanity range.
    static let lowTitreWholeBloodUnitsRange = 1...10

    func validate() throws(PolicyError) {
        guard document.schema == 1 else { throw .unsupportedSchema(document.schema) }
        let version = document.version
        guard !version.isEmpty, !version.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw .badVersion(version)
        }
        try validateThresholds()
        try validateSources()
        try validateTables()
        try validateRequirements()
        try validateShelfLives()
    }

    private func cite(_ path: String, _ source: String) throws(PolicyError) {
        let cited = document.sources.keys.contains { !$0.isEmpty && source.contains($0) }
        guard cited else { throw .uncitedRule(path: path, source: source) }
    }

    private func validateThresholds() throws(PolicyError) {
        let t = document.recipientThresholds
        func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws(PolicyError) {
            guard range.contains(value) else { throw .thresholdOutOfRange(name: name, value: value, allowed: range) }
        }
        try check("childbearingPotentialMaximumAgeYears", t.childbearingPotentialMaximumAgeYears.value, Self.childbearingRange)
        try check("paediatricMaximumAgeYears", t.paediatricMaximumAgeYears.value, Self.paediatricRange)
        try check(
            "neonatalRedCellMaximumAgeDays", document.specialRequirements.neonatalRedCellMaximumAgeDays.value,
            Self.neonatalAgeDaysRange)
        try check(
            "lowTitreWholeBloodMaximumUnits", document.specialRequirements.lowTitreWholeBloodMaximumUnits.value,
            Self.lowTitreWholeBloodUnitsRange)
    }

    private func validateSources() throws(PolicyError) {
        let t = document.recipientThresholds
        try cite("recipientThresholds.childbearingPotentialMaximumAgeYears", t.childbearingPotentialMaximumAgeYears.source)
        try cite("recipientThresholds.paediatricMaximumAgeYears", t.paediatricMaximumAgeYears.source)
        let r = document.rhdRules
        let rules: [(String, String)] = [
            ("redCellsRhDNegativeRequired", r.redCellsRhDNegativeRequired.source),
            ("redCellsRhDPositiveForRhDNegative", r.redCellsRhDPositiveForRhDNegative.source),
            ("redCellsRhDNegativeExhaustedInEmergency", r.redCellsRhDNegativeExhaustedInEmergency.source),
            ("redCellsUnknownGroup", r.redCellsUnknownGroup.source),
            ("oNegativeStewardship", r.oNegativeStewardship.source),
            ("redCellsRhDIdenticalFirst", r.redCellsRhDIdenticalFirst.source),
            ("plateletsRhD", r.plateletsRhD.source),
            ("plasmaRhDIrrelevant", r.plasmaRhDIrrelevant.source),
        ]
        for (name, source) in rules { try cite("rhdRules.\(name)", source) }
        try cite(
            "specialRequirements.neonatalRedCellMaximumAgeDays",
            document.specialRequirements.neonatalRedCellMaximumAgeDays.source)
        try cite("specialRequirements.neonatalRequiredAttributes", document.specialRequirements.neonatalRequiredAttributes.source)
        try cite("specialRequirements.lowTitreWholeBloodMaximumUnits", document.specialRequirements.lowTitreWholeBloodMaximumUnits.source)
        for rule in document.specialRequirements.attributes {
            try cite("specialRequirements.\(rule.attribute.rawValue)", rule.source)
        }
        for rule in document.processExpiry {
            try cite("processExpiry.\(rule.process.rawValue).\(rule.component.rawValue)", rule.source)
        }
        for (key, bound) in document.shelfLifeBounds { try cite("shelfLifeBounds.\(key)", bound.source) }
    }

    private func validateTables() throws(PolicyError) {
        for key in document.components.keys where Component(rawValue: key) == nil {
            throw .unknownComponent(key)
        }
        for component in Component.allCases {
            guard let section = document.components[component.rawValue] else { throw .missingComponent(component) }
            guard section.tables[section.selectedTable] != nil else {
                throw .unknownSelectedTable(component: component, name: section.selectedTable)
            }
            // Every table is checked, not only the selected one: switching tables must never
            // expose an unchecked one.
            for name in section.tables.keys.sorted() {
                guard let table = section.tables[name] else { continue }
                try cite("components.\(component.rawValue).tables.\(name)", table.source)
                try validate(table, name: name, component: component)
            }
        }
    }

    private func validate(_ table: ABOPreferenceTable, name: String, component: Component) throws(PolicyError) {
        for key in table.recipients.keys where RecipientABO(key: key) == nil {
            throw .unknownRecipientKey(component: component, table: name, key: key)
        }
        for recipient in RecipientABO.all {
            guard let row = table.recipients[recipient.key] else {
                throw .missingRecipientRow(component: component, table: name, recipient: recipient.key)
            }
            guard !row.isEmpty, row.allSatisfy({ !$0.isEmpty }) else {
                throw .emptyTier(component: component, table: name, recipient: recipient.key)
            }
            var seen = Set<ABO>()
            for choice in row.joined() {
                guard seen.insert(choice.abo).inserted else {
                    throw .duplicateDonor(component: component, table: name, recipient: recipient.key, donor: choice.abo)
                }
                if let urgencies = choice.urgencies, urgencies.isEmpty {
                    throw .emptyUrgencies(component: component, table: name, recipient: recipient.key, donor: choice.abo)
                }
                for flag in choice.notes where !CompatibilityFlag.settableByPolicy.contains(flag) {
                    throw .flagNotSettableByPolicy(component: component, table: name, recipient: recipient.key, flag: flag)
                }
                if component.carriesRedCells, !recipient.acceptsRedCells(from: choice.abo) {
                    throw .aboIncompatibleRedCells(
                        component: component, table: name, recipient: recipient.key, donor: choice.abo)
                }
                if component == .wholeBlood, !recipient.acceptsPlasma(from: choice.abo) {
                    let lowTitre = choice.requires.contains(.lowTitre)
                    let emergencyOnly = choice.urgencies.map { !$0.isEmpty && $0.allSatisfy { $0 == .emergency } } ?? false
                    guard lowTitre, emergencyOnly else {
                        throw .wholeBloodPlasmaIncompatibleUnrestricted(table: name, recipient: recipient.key, donor: choice.abo)
                    }
                }
            }
        }
    }

    private func validateRequirements() throws(PolicyError) {
        var seen = Set<UnitAttribute>()
        for rule in document.specialRequirements.attributes {
            guard seen.insert(rule.attribute).inserted else { throw .duplicateRequirement(rule.attribute) }
            guard !rule.appliesTo.isEmpty else {
                throw .inconsistentRequirement(rule.attribute, detail: "appliesTo is empty")
            }
            if let both = rule.appliesTo.first(where: rule.notNeededFor.contains) {
                throw .inconsistentRequirement(
                    rule.attribute, detail: "\(both.rawValue) is both in appliesTo and notNeededFor")
            }
        }
        for rule in document.specialRequirements.attributes {
            for implied in rule.implies where !seen.contains(implied) {
                throw .impliedRequirementUnknown(rule.attribute, implies: implied)
            }
        }
    }

    private func validateShelfLives() throws(PolicyError) {
        for key in document.shelfLifeBounds.keys where Component(rawValue: key) == nil {
            throw .badShelfLifeBound(component: key, days: document.shelfLifeBounds[key]?.value)
        }
        for component in Component.allCases {
            guard let days = document.shelfLifeBounds[component.rawValue]?.value, days > 0 else {
                throw .badShelfLifeBound(component: component.rawValue, days: document.shelfLifeBounds[component.rawValue]?.value)
            }
        }
        var seen = Set<CompatibilityPolicy.ProcessKey>()
        for rule in document.processExpiry {
            guard seen.insert(.init(process: rule.process, component: rule.component)).inserted else {
                throw .duplicateProcessRule(rule.process, rule.component)
            }
            let maximumHours = (document.shelfLifeBounds[rule.component.rawValue]?.value ?? 0) * 24
            guard rule.hoursAfterProcess > 0, rule.hoursAfterProcess <= maximumHours else {
                throw .processShelfLifeOutOfRange(
                    rule.process, rule.component, hours: rule.hoursAfterProcess, maximumHours: maximumHours)
            }
            if let latest = rule.latestHoursAfterCollection, latest <= 0 || latest > maximumHours {
                throw .processShelfLifeOutOfRange(rule.process, rule.component, hours: latest, maximumHours: maximumHours)
            }
        }
    }
}

extension Component {
    /// Whether the component carries red cells and so falls under the red-cell rule: red cells and
    /// whole blood (JPAC-HB §2.4; LB-CC).
    public var carriesRedCells: Bool { self == .redCells || self == .wholeBlood }
}
