/// Why a policy file was refused at load. Each case carries the offending value and where it is.
public enum PolicyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not valid JSON, a missing or misspelt key, or a value of the wrong type; carries the
    /// JSON path and the decoder's message.
    case malformed(path: String, detail: String)
    /// A schema generation this code cannot read.
    case unsupportedSchema(Int)
    /// `version` is empty or not a single printable token.
    case badVersion(String)
    /// A `source` text that cites none of the abbreviations in `sources`; carries the path.
    case uncitedRule(path: String, source: String)
    /// A component key that is not RBC, PLT, PLASMA, CRYO or WB.
    case unknownComponent(String)
    /// A component with no tables in the file.
    case missingComponent(Component)
    /// `selectedTable` names a table that does not exist.
    case unknownSelectedTable(component: Component, name: String)
    /// A recipient key other than O, A, B, AB, unknown.
    case unknownRecipientKey(component: Component, table: String, key: String)
    /// A table without a row for a recipient group.
    case missingRecipientRow(component: Component, table: String, recipient: String)
    /// An empty row or an empty tier.
    case emptyTier(component: Component, table: String, recipient: String)
    /// A donor group listed twice for one recipient.
    case duplicateDonor(component: Component, table: String, recipient: String, donor: ABO)
    /// A red-cell-bearing table (RBC, WB) that would give ABO-incompatible red cells — always
    /// refused, whatever the rest of the file says (JPAC-HB §2.4.1: a never event).
    case aboIncompatibleRedCells(component: Component, table: String, recipient: String, donor: ABO)
    /// A whole-blood choice with incompatible plasma that is not restricted to low-titre units in
    /// emergency release (HEMATOS; EMRA-LTOWB).
    case wholeBloodPlasmaIncompatibleUnrestricted(table: String, recipient: String, donor: ABO)
    /// A note flag that only the rules may compute (e.g. `anti_d_prophylaxis_required`).
    case flagNotSettableByPolicy(component: Component, table: String, recipient: String, flag: CompatibilityFlag)
    /// A choice restricted to an empty list of urgencies.
    case emptyUrgencies(component: Component, table: String, recipient: String, donor: ABO)
    /// An age or day threshold outside its plausible range; carries name, value and range.
    case thresholdOutOfRange(name: String, value: Int, allowed: ClosedRange<Int>)
    /// An attribute with two special-requirement rules.
    case duplicateRequirement(UnitAttribute)
    /// A special-requirement rule that applies to no component, or lists a component both as
    /// applicable and as not needed.
    case inconsistentRequirement(UnitAttribute, detail: String)
    /// An attribute implied by another but with no rule of its own.
    case impliedRequirementUnknown(UnitAttribute, implies: UnitAttribute)
    /// Two expiry rules for the same process and component.
    case duplicateProcessRule(ModificationProcess, Component)
    /// A process shelf life that is not positive or exceeds the component's plausibility bound.
    case processShelfLifeOutOfRange(ModificationProcess, Component, hours: Int, maximumHours: Int)
    /// A shelf-life bound missing, not positive, or for an unknown component key.
    case badShelfLifeBound(component: String, days: Int?)

    /// Text for people and logs.
    public var description: String {
        switch self {
        case .malformed(let path, let detail): "policy malformed at \(path.isEmpty ? "top level" : path): \(detail)"
        case .unsupportedSchema(let schema): "policy schema \(schema) is not supported (expected 1)"
        case .badVersion(let version): "policy version '\(version)' is empty or contains blanks"
        case .uncitedRule(let path, let source): "rule at \(path) cites no known source: '\(source)'"
        case .unknownComponent(let key): "unknown component '\(key)' (expected RBC, PLT, PLASMA, CRYO, WB)"
        case .missingComponent(let component): "no tables for component \(component.rawValue)"
        case .unknownSelectedTable(let component, let name):
            "\(component.rawValue): selectedTable '\(name)' is not one of the tables"
        case .unknownRecipientKey(let component, let table, let key):
            "\(component.rawValue) table \(table): unknown recipient '\(key)' (expected O, A, B, AB, unknown)"
        case .missingRecipientRow(let component, let table, let recipient):
            "\(component.rawValue) table \(table): no row for recipient \(recipient)"
        case .emptyTier(let component, let table, let recipient):
            "\(component.rawValue) table \(table): recipient \(recipient) has an empty row or tier"
        case .duplicateDonor(let component, let table, let recipient, let donor):
            "\(component.rawValue) table \(table): donor \(donor.rawValue) listed twice for recipient \(recipient)"
        case .aboIncompatibleRedCells(let component, let table, let recipient, let donor):
            "\(component.rawValue) table \(table) would give ABO-incompatible red cells: donor \(donor.rawValue) to recipient \(recipient) (refused: JPAC-HB §2.4.1 never event)"
        case .wholeBloodPlasmaIncompatibleUnrestricted(let table, let recipient, let donor):
            "WB table \(table): donor \(donor.rawValue) to recipient \(recipient) has incompatible plasma and must require LOW_TITRE and emergency only"
        case .flagNotSettableByPolicy(let component, let table, let recipient, let flag):
            "\(component.rawValue) table \(table), recipient \(recipient): note '\(flag.rawValue)' is computed by the rules and cannot be set by policy"
        case .emptyUrgencies(let component, let table, let recipient, let donor):
            "\(component.rawValue) table \(table): donor \(donor.rawValue) for recipient \(recipient) has an empty urgencies list"
        case .thresholdOutOfRange(let name, let value, let allowed):
            "\(name) = \(value) is outside the plausible range \(allowed.lowerBound)…\(allowed.upperBound)"
        case .duplicateRequirement(let attribute): "two special-requirement rules for \(attribute.rawValue)"
        case .inconsistentRequirement(let attribute, let detail): "special requirement \(attribute.rawValue): \(detail)"
        case .impliedRequirementUnknown(let attribute, let implied):
            "\(attribute.rawValue) implies \(implied.rawValue), which has no rule"
        case .duplicateProcessRule(let process, let component):
            "two expiry rules for \(process.rawValue) of \(component.rawValue)"
        case .processShelfLifeOutOfRange(let process, let component, let hours, let maximum):
            "\(process.rawValue) of \(component.rawValue): \(hours) h is outside 1…\(maximum) h"
        case .badShelfLifeBound(let component, let days):
            "shelf-life bound for '\(component)' is \(days.map(String.init) ?? "missing")"
        }
    }
}
