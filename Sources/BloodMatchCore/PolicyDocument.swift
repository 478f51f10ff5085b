import Foundation

/// The transfusion policy file (`Data/policy.json`) exactly as written, before validation.
///
/// Every rule carries a `source` naming where it comes from (abbreviations of Data/SOURCES.md). Decoding
/// refuses unknown keys, so a misspelt key is an error rather than a silently ignored rule.
/// `CompatibilityPolicy` validates a document and compiles it for fast queries.
public struct PolicyDocument: Sendable, Hashable, Codable {
    /// File format generation; this code reads schema 1.
    public var schema: Int
    /// Policy version recorded in every decision, e.g. `2026.11-1`.
    public var version: String
    /// Human title.
    public var title: String
    /// Source abbreviation → full citation; every `source` text must cite at least one.
    public var sources: [String: String]
    /// Age thresholds that classify recipients.
    public var recipientThresholds: RecipientThresholds
    /// RhD and emergency rules applied by code, with their options and sources.
    public var rhdRules: RhDRules
    /// ABO preference tables per component, keyed `RBC`, `PLT`, `PLASMA`, `CRYO`, `WB`.
    public var components: [String: ComponentTables]
    /// Special-requirement substitution rules.
    public var specialRequirements: SpecialRequirementPolicy
    /// Shelf life after a modifying process (irradiation, washing, thawing …).
    public var processExpiry: [ProcessExpiryRule]
    /// Plausibility bounds (days from collection to expiry) per component key.
    public var shelfLifeBounds: [String: Sourced<Int>]

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case schema, version, title, sources, recipientThresholds, rhdRules, components, specialRequirements
        case processExpiry, shelfLifeBounds
    }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.decode(Int.self, forKey: .schema)
        version = try c.decode(String.self, forKey: .version)
        title = try c.decode(String.self, forKey: .title)
        sources = try c.decode([String: String].self, forKey: .sources)
        recipientThresholds = try c.decode(RecipientThresholds.self, forKey: .recipientThresholds)
        rhdRules = try c.decode(RhDRules.self, forKey: .rhdRules)
        components = try c.decode([String: ComponentTables].self, forKey: .components)
        specialRequirements = try c.decode(SpecialRequirementPolicy.self, forKey: .specialRequirements)
        processExpiry = try c.decode([ProcessExpiryRule].self, forKey: .processExpiry)
        shelfLifeBounds = try c.decode([String: Sourced<Int>].self, forKey: .shelfLifeBounds)
    }
}

/// A policy value with the source that justifies it.
public struct Sourced<Value: Sendable & Hashable & Codable>: Sendable, Hashable, Codable {
    /// The value.
    public var value: Value
    /// Where it comes from (abbreviations of Data/SOURCES.md).
    public var source: String

    /// Creates a sourced value.
    public init(value: Value, source: String) {
        self.value = value
        self.source = source
    }

    private enum CodingKeys: String, CodingKey, CaseIterable { case value, source }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        value = try c.decode(Value.self, forKey: .value)
        source = try c.decode(String.self, forKey: .source)
    }
}

/// A rule applied by code whose only data is its source.
public struct SourcedRule: Sendable, Hashable, Codable {
    /// Where it comes from (abbreviations of Data/SOURCES.md).
    public var source: String

    /// Creates a rule citation.
    public init(source: String) { self.source = source }

    private enum CodingKeys: String, CodingKey, CaseIterable { case source }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        source = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .source)
    }
}

/// Age thresholds that classify recipients for the RhD rules.
public struct RecipientThresholds: Sendable, Hashable, Codable {
    /// A female at or under this age has childbearing potential unless stated otherwise
    /// (LB-CC ≤50; UTMB <55; BWNW <50).
    public var childbearingPotentialMaximumAgeYears: Sourced<Int>
    /// At or under this age a recipient is paediatric (LB-CC, LB-ONEG ≤18; LH <18).
    public var paediatricMaximumAgeYears: Sourced<Int>

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case childbearingPotentialMaximumAgeYears, paediatricMaximumAgeYears
    }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        childbearingPotentialMaximumAgeYears = try c.decode(Sourced<Int>.self, forKey: .childbearingPotentialMaximumAgeYears)
        paediatricMaximumAgeYears = try c.decode(Sourced<Int>.self, forKey: .paediatricMaximumAgeYears)
    }
}

/// Where RhD-positive red cells may go for an RhD-negative recipient who is not required to have
/// RhD-negative (an adult male, a female beyond childbearing potential; LB-CC, LH).
public enum RhDPositiveRedCellOption: String, Sendable, Hashable, CaseIterable, Codable {
    /// Never: only RhD-negative red cells (the strictest reading of LB-CC "Avoid if possible").
    case notAllowed = "not_allowed"
    /// After every RhD-negative choice, O RhD-negative included (LB-CC; the default).
    case afterRhDNegative = "after_rhd_negative"
    /// Before O RhD-negative, to conserve it (UTMB routine practice; LB-ONEG conservation).
    case beforeONegative = "before_o_negative"
}

/// RhD and emergency rules applied by code; their sources and options live in the policy file.
public struct RhDRules: Sendable, Hashable, Codable {
    /// Who must receive RhD-negative red cells (LB-CC; LH; LB-ONEG).
    public var redCellsRhDNegativeRequired: SourcedRule
    /// RhD-positive red cells for other RhD-negative recipients (LB-CC; LH; UTMB).
    public var redCellsRhDPositiveForRhDNegative: Sourced<RhDPositiveRedCellOption>
    /// Whether RhD-positive red cells are offered last, in emergencies, to a recipient who must
    /// receive RhD-negative (LB-CC "never be withheld"; BWNW). Default false.
    public var redCellsRhDNegativeExhaustedInEmergency: Sourced<Bool>
    /// Group O red cells for an unknown group; O-negative for those who must have RhD-negative,
    /// O-positive first for others (LB-CC; LH; LB-ONEG; UTMB).
    public var redCellsUnknownGroup: SourcedRule
    /// O RhD-negative ranked last for recipients who are not O RhD-negative (LB-ONEG).
    public var oNegativeStewardship: SourcedRule
    /// RhD-identical red cells first (LB-CC; LB-ONEG).
    public var redCellsRhDIdenticalFirst: SourcedRule
    /// RhD-negative platelets for RhD-negative females of childbearing potential and children;
    /// otherwise anti-D prophylaxis (LH; CID-2015).
    public var plateletsRhD: SourcedRule
    /// RhD irrelevant for plasma and cryoprecipitate (LB-OLD; BCSH-FFP).
    public var plasmaRhDIrrelevant: SourcedRule

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case redCellsRhDNegativeRequired, redCellsRhDPositiveForRhDNegative, redCellsRhDNegativeExhaustedInEmergency
        case redCellsUnknownGroup, oNegativeStewardship, redCellsRhDIdenticalFirst, plateletsRhD, plasmaRhDIrrelevant
    }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        redCellsRhDNegativeRequired = try c.decode(SourcedRule.self, forKey: .redCellsRhDNegativeRequired)
        redCellsRhDPositiveForRhDNegative = try c.decode(
            Sourced<RhDPositiveRedCellOption>.self, forKey: .redCellsRhDPositiveForRhDNegative)
        redCellsRhDNegativeExhaustedInEmergency = try c.decode(
            Sourced<Bool>.self, forKey: .redCellsRhDNegativeExhaustedInEmergency)
        redCellsUnknownGroup = try c.decode(SourcedRule.self, forKey: .redCellsUnknownGroup)
        oNegativeStewardship = try c.decode(SourcedRule.self, forKey: .oNegativeStewardship)
        redCellsRhDIdenticalFirst = try c.decode(SourcedRule.self, forKey: .redCellsRhDIdenticalFirst)
        plateletsRhD = try c.decode(SourcedRule.self, forKey: .plateletsRhD)
        plasmaRhDIrrelevant = try c.decode(SourcedRule.self, forKey: .plasmaRhDIrrelevant)
    }
}

/// The ABO preference tables of one component: one or more named tables and the one in force.
public struct ComponentTables: Sendable, Hashable, Codable {
    /// Identifier of the ABO rule, e.g. `RBC.ABO`.
    public var ruleID: String
    /// The table in force; the others are named alternatives (sources that disagree).
    public var selectedTable: String
    /// Named tables, e.g. `LB-CC`, `LB-OLD`, `STRICT`.
    public var tables: [String: ABOPreferenceTable]

    private enum CodingKeys: String, CodingKey, CaseIterable { case ruleID, selectedTable, tables }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ruleID = try c.decode(String.self, forKey: .ruleID)
        selectedTable = try c.decode(String.self, forKey: .selectedTable)
        tables = try c.decode([String: ABOPreferenceTable].self, forKey: .tables)
    }
}

/// One published ABO preference table: for each recipient group (and `unknown`) the acceptable
/// donor groups in tiers, tier 1 = best; groups within a tier are equally preferred.
public struct ABOPreferenceTable: Sendable, Hashable, Codable {
    /// Where the table comes from.
    public var source: String
    /// Recipient key (`O`, `A`, `B`, `AB`, `unknown`) → tiers of choices.
    public var recipients: [String: [[ABOChoice]]]

    private enum CodingKeys: String, CodingKey, CaseIterable { case source, recipients }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source = try c.decode(String.self, forKey: .source)
        recipients = try c.decode([String: [[ABOChoice]]].self, forKey: .recipients)
    }
}

/// One donor ABO group in a preference tier, written as `"A"` or as an object with notes.
public struct ABOChoice: Sendable, Hashable, Codable {
    /// Donor ABO group.
    public var abo: ABO
    /// Notes from the table's footnotes (only `low_titre_preferred`, `a2_subgroup_preferable`).
    public var notes: [CompatibilityFlag]
    /// Attributes the unit must carry for this choice (e.g. `LOW_TITRE`).
    public var requires: [UnitAttribute]
    /// Urgencies in which this choice applies; nil means all.
    public var urgencies: [Urgency]?

    /// Creates a choice.
    public init(abo: ABO, notes: [CompatibilityFlag] = [], requires: [UnitAttribute] = [], urgencies: [Urgency]? = nil) {
        self.abo = abo
        self.notes = notes
        self.requires = requires
        self.urgencies = urgencies
    }

    private enum CodingKeys: String, CodingKey, CaseIterable { case abo, notes, requires, urgencies }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let text = try? single.decode(String.self) {
            guard let abo = ABO(rawValue: text) else {
                throw DecodingError.dataCorruptedError(
                    in: single, debugDescription: "'\(text)' is not an ABO group (O, A, B, AB)")
            }
            self.init(abo: abo)
            return
        }
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            abo: try c.decode(ABO.self, forKey: .abo),
            notes: try c.decodeIfPresent([CompatibilityFlag].self, forKey: .notes) ?? [],
            requires: try c.decodeIfPresent([UnitAttribute].self, forKey: .requires) ?? [],
            urgencies: try c.decodeIfPresent([Urgency].self, forKey: .urgencies))
    }

    /// Encodes in the same shape as decoded.
    public func encode(to encoder: any Encoder) throws {
        if notes.isEmpty && requires.isEmpty && urgencies == nil {
            var single = encoder.singleValueContainer()
            try single.encode(abo)
            return
        }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(abo, forKey: .abo)
        if !notes.isEmpty { try c.encode(notes, forKey: .notes) }
        if !requires.isEmpty { try c.encode(requires, forKey: .requires) }
        try c.encodeIfPresent(urgencies, forKey: .urgencies)
    }
}

/// Whether a unit carrying an attribute may serve a request that did not ask for it.
public enum SubstitutionRule: String, Sendable, Hashable, CaseIterable, Codable {
    /// Yes: the unit is a superset of the request (CMV-negative, antigen-negative, irradiated …).
    case mayServePlainRequest = "may_serve_plain_request"
    /// Never: the attribute makes the unit patient-specific or short-dated (washed, HLA-matched …).
    case never
}

/// The substitution rule of one special requirement (Data/SOURCES.md §S8).
public struct SpecialRequirementRule: Sendable, Hashable, Codable {
    /// The attribute, as spelled in feeds.
    public var attribute: UnitAttribute
    /// Components for which the requirement exists and units can carry the attribute.
    public var appliesTo: [Component]
    /// Components for which the requirement is unnecessary, so a request for it is waived
    /// (CMV-negative and irradiated plasma/cryo: LB-CMV, STARSHIP).
    public var notNeededFor: [Component]
    /// Whether a unit with the attribute may serve a request without it.
    public var substitution: SubstitutionRule
    /// Whether stock with the attribute is scarce, so units without it are used first.
    public var scarce: Bool
    /// Attributes a request for this one also needs (HLA-matched platelets irradiated: CBS).
    public var implies: [UnitAttribute]
    /// Where it comes from.
    public var source: String

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case attribute, appliesTo, notNeededFor, substitution, scarce, implies, source
    }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        attribute = try c.decode(UnitAttribute.self, forKey: .attribute)
        appliesTo = try c.decode([Component].self, forKey: .appliesTo)
        notNeededFor = try c.decode([Component].self, forKey: .notNeededFor)
        substitution = try c.decode(SubstitutionRule.self, forKey: .substitution)
        scarce = try c.decode(Bool.self, forKey: .scarce)
        implies = try c.decode([UnitAttribute].self, forKey: .implies)
        source = try c.decode(String.self, forKey: .source)
    }
}

/// Special-requirement rules, what a neonate implies, and the low-titre whole-blood limit.
public struct SpecialRequirementPolicy: Sendable, Hashable, Codable {
    /// Neonatal red cells must be younger than this many days (LH <5 days).
    public var neonatalRedCellMaximumAgeDays: Sourced<Int>
    /// Attributes every unit for a neonate must carry, where the attribute's rule applies to the
    /// component (LB-CMV: CMV-seronegative cellular components for neonates up to 28 days after
    /// the expected date of delivery; Data/SOURCES.md §S8).
    public var neonatalRequiredAttributes: Sourced<[UnitAttribute]>
    /// The most units of low-titre group O whole blood one request may take in emergency release
    /// before the patient goes over to components (HEMATOS: 2; Data/SOURCES.md §S5).
    public var lowTitreWholeBloodMaximumUnits: Sourced<Int>
    /// One rule per attribute.
    public var attributes: [SpecialRequirementRule]

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case neonatalRedCellMaximumAgeDays, neonatalRequiredAttributes, lowTitreWholeBloodMaximumUnits, attributes
    }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        neonatalRedCellMaximumAgeDays = try c.decode(Sourced<Int>.self, forKey: .neonatalRedCellMaximumAgeDays)
        neonatalRequiredAttributes = try c.decode(Sourced<[UnitAttribute]>.self, forKey: .neonatalRequiredAttributes)
        lowTitreWholeBloodMaximumUnits = try c.decode(Sourced<Int>.self, forKey: .lowTitreWholeBloodMaximumUnits)
        attributes = try c.decode([SpecialRequirementRule].self, forKey: .attributes)
    }
}

/// A process that modifies a unit and sets a new, shorter expiry (Data/SOURCES.md §S9).
public enum ModificationProcess: String, Sendable, Hashable, CaseIterable, Codable {
    /// Gamma or X-ray irradiation.
    case irradiation
    /// Irradiation of red cells for neonatal exchange transfusion (LH: 24 h).
    case irradiationForNeonatalExchange = "irradiation_neonatal_exchange"
    /// Washing (open system for red cells).
    case washing
    /// Washing in a closed system.
    case washingClosedSystem = "washing_closed_system"
    /// Volume reduction.
    case volumeReduction = "volume_reduction"
    /// Thawing a frozen component for general use.
    case thawing
    /// Thawing plasma to be held for traumatic major haemorrhage.
    case thawingForMajorHaemorrhage = "thawing_major_haemorrhage"
}

/// The shelf life a modifying process gives a component.
public struct ProcessExpiryRule: Sendable, Hashable, Codable {
    /// The process.
    public var process: ModificationProcess
    /// The component it applies to.
    public var component: Component
    /// Hours from the process to the process-derived expiry.
    public var hoursAfterProcess: Int
    /// The process must take place within this many hours of collection, if set
    /// (JPAC-RB: irradiate red cells within 14 days of collection).
    public var latestHoursAfterCollection: Int?
    /// Where it comes from.
    public var source: String

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case process, component, hoursAfterProcess, latestHoursAfterCollection, source
    }

    /// Decodes, refusing unknown keys.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.stringValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        process = try c.decode(ModificationProcess.self, forKey: .process)
        component = try c.decode(Component.self, forKey: .component)
        hoursAfterProcess = try c.decode(Int.self, forKey: .hoursAfterProcess)
        latestHoursAfterCollection = try c.decodeIfPresent(Int.self, forKey: .latestHoursAfterCollection)
        source = try c.decode(String.self, forKey: .source)
    }
}

/// Refuses JSON objects with keys the schema does not know.
enum StrictKeys {
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func check(_ decoder: any Decoder, allowed: [String]) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container,
                debugDescription: "unknown key '\(key.stringValue)' (allowed: \(allowed.joined(separator: ", ")))")
        }
    }
}
