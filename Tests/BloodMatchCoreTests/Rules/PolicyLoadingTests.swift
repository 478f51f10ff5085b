@testable import BloodMatchCore
import Foundation
import Testing

/// Loading and validating `Data/policy.json`: refused files name the offending value.
@Suite("Policy loading and validation")
struct PolicyLoadingTests {
    typealias Path = [JSONValue.PathElement]

    @Test func theRepositoryPolicyLoads() throws {
        let policy = try RulesFixture.loadPolicy()
        #expect(policy.version == "2026.12-1")
        #expect(policy.shelfLifeBounds == ShelfLifeBounds.standard)
        #expect(policy.neverSubstitutedAttributes == AttributeSet([.washed, .volumeReduced, .hlaMatched]))
        #expect(policy.scarceAttributes.contains(.cmvNegative))
        #expect(!policy.scarceAttributes.contains(.leukoreduced))
    }

    @Test func encodingRoundTrips() throws {
        let policy = try RulesFixture.loadPolicy()
        let data = try JSONEncoder().encode(policy)
        let again = try CompatibilityPolicy(jsonData: data)
        #expect(again.document == policy.document)
    }

    struct Refusal: CustomTestStringConvertible, Sendable {
        var name: String
        var path: Path
        var value: JSONValue?
        var expected: @Sendable (PolicyError) -> Bool
        var testDescription: String { name }
    }

    static let refusals: [Refusal] = [
        Refusal(name: "group A red cells for a group O recipient",
                path: [.key("components"), .key("RBC"), .key("tables"), .key("LB-CC"), .key("recipients"), .key("O")],
                value: .array([.array([.string("O"), .string("A")])]),
                expected: { $0 == .aboIncompatibleRedCells(component: .redCells, table: "LB-CC", recipient: "O", donor: .A) }),
        Refusal(name: "group A red cells for an unknown recipient",
                path: [.key("components"), .key("RBC"), .key("tables"), .key("LB-CC"), .key("recipients"), .key("unknown")],
                value: .array([.array([.string("O")]), .array([.string("A")])]),
                expected: { $0 == .aboIncompatibleRedCells(component: .redCells, table: "LB-CC", recipient: "unknown", donor: .A) }),
        Refusal(name: "group B whole blood for a group A recipient",
                path: [.key("components"), .key("WB"), .key("tables"), .key("IDENTICAL-OR-LTOWB"), .key("recipients"), .key("A")],
                value: .array([.array([.string("A")]), .array([.string("B")])]),
                expected: { $0 == .aboIncompatibleRedCells(component: .wholeBlood, table: "IDENTICAL-OR-LTOWB", recipient: "A", donor: .B) }),
        Refusal(name: "group O whole blood without the low-titre restriction",
                path: [.key("components"), .key("WB"), .key("tables"), .key("IDENTICAL-OR-LTOWB"), .key("recipients"), .key("AB")],
                value: .array([.array([.string("AB")]), .array([.string("O")])]),
                expected: { $0 == .wholeBloodPlasmaIncompatibleUnrestricted(table: "IDENTICAL-OR-LTOWB", recipient: "AB", donor: .O) }),
        Refusal(name: "a misspelt key",
                path: [.key("components"), .key("RBC"), .key("selectedTabel")], value: .string("LB-CC"),
                expected: { if case .malformed(let path, let detail) = $0 { path.contains("RBC") && detail.contains("selectedTabel") } else { false } }),
        Refusal(name: "a missing key",
                path: [.key("rhdRules"), .key("plateletsRhD")], value: nil,
                expected: { if case .malformed(let path, _) = $0 { path.contains("plateletsRhD") } else { false } }),
        Refusal(name: "an unknown ABO group",
                path: [.key("components"), .key("PLT"), .key("tables"), .key("LB-CC"), .key("recipients"), .key("O")],
                value: .array([.array([.string("C")])]),
                expected: { if case .malformed(_, let detail) = $0 { detail.contains("'C'") } else { false } }),
        Refusal(name: "a rule with no cited source",
                path: [.key("rhdRules"), .key("oNegativeStewardship"), .key("source")], value: .string("because"),
                expected: { $0 == .uncitedRule(path: "rhdRules.oNegativeStewardship", source: "because") }),
        Refusal(name: "an implausible childbearing age",
                path: [.key("recipientThresholds"), .key("childbearingPotentialMaximumAgeYears"), .key("value")], value: .number(500),
                expected: { $0 == .thresholdOutOfRange(name: "childbearingPotentialMaximumAgeYears", value: 500, allowed: 40...60) }),
        Refusal(name: "a selected table that does not exist",
                path: [.key("components"), .key("PLASMA"), .key("selectedTable")], value: .string("NOPE"),
                expected: { $0 == .unknownSelectedTable(component: .plasma, name: "NOPE") }),
        Refusal(name: "a computed flag set by policy",
                path: [.key("components"), .key("PLT"), .key("tables"), .key("LB-CC"), .key("recipients"), .key("O")],
                value: .array([.array([.object(["abo": .string("O"), "notes": .array([.string("anti_d_prophylaxis_required")])])])]),
                expected: { $0 == .flagNotSettableByPolicy(component: .platelets, table: "LB-CC", recipient: "O", flag: .antiDProphylaxisRequired) }),
        Refusal(name: "a donor listed twice",
                path: [.key("components"), .key("PLASMA"), .key("tables"), .key("STRICT"), .key("recipients"), .key("A")],
                value: .array([.array([.string("A")]), .array([.string("A")])]),
                expected: { $0 == .duplicateDonor(component: .plasma, table: "STRICT", recipient: "A", donor: .A) }),
        Refusal(name: "a missing recipient row",
                path: [.key("components"), .key("CRYO"), .key("tables"), .key("ANY-GROUP"), .key("recipients"), .key("unknown")], value: nil,
                expected: { $0 == .missingRecipientRow(component: .cryoprecipitate, table: "ANY-GROUP", recipient: "unknown") }),
        Refusal(name: "a process shelf life beyond the component bound",
                path: [.key("processExpiry"), .index(0), .key("hoursAfterProcess")], value: .number(5000),
                expected: { $0 == .processShelfLifeOutOfRange(.irradiation, .redCells, hours: 5000, maximumHours: 49 * 24) }),
        Refusal(name: "an empty version",
                path: [.key("version")], value: .string(""), expected: { $0 == .badVersion("") }),
        Refusal(name: "another schema", path: [.key("schema")], value: .number(2), expected: { $0 == .unsupportedSchema(2) }),
    ]

    @Test("a bad policy is refused with the offending value", arguments: refusals)
    func refused(_ refusal: Refusal) throws {
        var tree = try RulesFixture.policyTree()
        tree[refusal.path] = refusal.value
        do {
            _ = try RulesFixture.load(tree)
            Issue.record("policy with \(refusal.name) was accepted")
        } catch {
            #expect(refusal.expected(error), "got: \(error.description)")
            #expect(!error.description.isEmpty)
        }
    }

    @Test func notJSONIsMalformed() {
        #expect(throws: PolicyError.self) { try CompatibilityPolicy(jsonData: Data("{".utf8)) }
        #expect(throws: PolicyError.self) { try CompatibilityPolicy(jsonData: Data()) }
    }
}
