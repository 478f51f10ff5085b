@testable import BloodMatchCore
import Testing

/// Emergency release and unknown recipient group.
///
/// Source: LB-CC unknown ABO/RhD (female ≤50 or male ≤18 → O RhD-negative; female >50 or male >18 →
/// O RhD-positive or O RhD-negative; never A, B, AB), LB-CC emergency plasma AB then A (footnotes
/// d, e), LB-CC unknown platelets A or O, LH (group O while the group is undetermined; group A FFP
/// in massive haemorrhage), HEMATOS (LTOWB emergency release only).
@Suite("Emergency release and unknown group")
struct EmergencyReleaseTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var component: Component
        var context: String
        var urgency: Urgency
        var expected: String
        var flags: [CompatibilityFlag]
        var testDescription: String { "\(component.rawValue) unknown [\(context)] \(urgency.rawValue) → \(expected)" }
    }

    static let cases: [Case] = [
        Case(component: .redCells, context: "female,age=30", urgency: .emergency, expected: "O-", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .redCells, context: "female,age=50", urgency: .emergency, expected: "O-", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .redCells, context: "male,age=18", urgency: .emergency, expected: "O-", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .redCells, context: "", urgency: .emergency, expected: "O-", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .redCells, context: "female,age=51", urgency: .emergency, expected: "O+ > O-", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .redCells, context: "male,age=19", urgency: .emergency, expected: "O+ > O-", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .redCells, context: "male,age=60", urgency: .urgent, expected: "O+ > O-", flags: [.unknownRecipientGroup]),
        Case(component: .plasma, context: "male,age=60", urgency: .emergency, expected: "AB-=AB+ > A-=A+", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .plasma, context: "female,age=20", urgency: .routine, expected: "AB-=AB+", flags: [.unknownRecipientGroup]),
        Case(component: .cryoprecipitate, context: "female,age=20", urgency: .emergency, expected: "AB-=AB+ > A-=A+", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .platelets, context: "male,age=60", urgency: .emergency, expected: "O-=A- > O+=A+", flags: [.unknownRecipientGroup, .emergencyRelease]),
        Case(component: .wholeBlood, context: "male,age=60", urgency: .emergency, expected: "O+ > O-", flags: [.unknownRecipientGroup, .emergencyRelease, .lowTitreRequired]),
        Case(component: .wholeBlood, context: "female,age=30", urgency: .emergency, expected: "O-", flags: [.unknownRecipientGroup, .emergencyRelease, .lowTitreRequired]),
        Case(component: .wholeBlood, context: "male,age=60", urgency: .urgent, expected: "none", flags: []),
    ]

    @Test("unknown-group supply", arguments: cases)
    func unknownGroup(_ testCase: Case) throws {
        let policy = try RulesFixture.loadPolicy()
        let result = policy.compatibility(
            of: testCase.component, for: try RulesFixture.recipient("unknown", testCase.context), urgency: testCase.urgency)
        #expect(RulesFixture.order(of: result) == testCase.expected)
        for verdict in result.acceptable {
            #expect(Set(verdict.flags).isSuperset(of: testCase.flags), "\(verdict.group): \(verdict.flags)")
        }
    }

    @Test("unknown-group red cells are never A, B or AB, in any context or urgency (LB-CC)")
    func neverNonOForUnknown() throws {
        let policy = try RulesFixture.loadPolicy()
        for context in RedCellCompatibilityTests.allContexts {
            for urgency in Urgency.allCases {
                let result = policy.compatibility(of: .redCells, for: try RulesFixture.recipient("unknown", context), urgency: urgency)
                #expect(result.acceptable.allSatisfy { $0.group.abo == .O })
            }
        }
    }

    @Test("the emergency last-resort option offers RhD-positive last, flagged, in emergencies only (LB-CC; BWNW)")
    func emergencyLastResortOption() throws {
        var tree = try RulesFixture.policyTree()
        tree[[.key("rhdRules"), .key("redCellsRhDNegativeExhaustedInEmergency"), .key("value")]] = .bool(true)
        let policy = try RulesFixture.load(tree)
        let female = try RulesFixture.recipient("A-", "female,age=30")
        let emergency = policy.compatibility(of: .redCells, for: female, urgency: .emergency)
        #expect(RulesFixture.order(of: emergency) == "A- > O- > A+ > O+")
        #expect(emergency.verdict(for: BloodGroup(.O, .positive)).flags.contains(.rhdNegativeExhaustedLastResort))
        let urgent = policy.compatibility(of: .redCells, for: female, urgency: .urgent)
        #expect(RulesFixture.order(of: urgent) == "A- > O-")
        let unknown = policy.compatibility(of: .redCells, for: try RulesFixture.recipient("unknown", "female,age=30"), urgency: .emergency)
        #expect(RulesFixture.order(of: unknown) == "O- > O+")
    }

    @Test("policy options for RhD-positive red cells to RhD-negative adults",
          arguments: [("not_allowed", "A- > O-"), ("after_rhd_negative", "A- > O- > A+ > O+"), ("before_o_negative", "A- > A+ > O+ > O-")])
    func rhdPositiveOptions(option: String, expected: String) throws {
        var tree = try RulesFixture.policyTree()
        tree[[.key("rhdRules"), .key("redCellsRhDPositiveForRhDNegative"), .key("value")]] = .string(option)
        let policy = try RulesFixture.load(tree)
        let result = policy.compatibility(of: .redCells, for: try RulesFixture.recipient("A-", "male,age=40"), urgency: .routine)
        #expect(RulesFixture.order(of: result) == expected)
        // O-negative is ranked after O-positive only under the conservation option; never by expiry.
        let female = policy.compatibility(of: .redCells, for: try RulesFixture.recipient("A-", "female,age=30"), urgency: .routine)
        #expect(RulesFixture.order(of: female) == "A- > O-")
    }

    @Test("the plasma table can be switched to the named LB-CC alternative")
    func plasmaAlternativeTable() throws {
        var tree = try RulesFixture.policyTree()
        tree[[.key("components"), .key("PLASMA"), .key("selectedTable")]] = .string("LB-CC")
        let policy = try RulesFixture.load(tree)
        let result = policy.compatibility(of: .plasma, for: try RulesFixture.recipient("A+", "male,age=40"), urgency: .routine)
        #expect(RulesFixture.order(of: result) == "A-=A+ > AB-=AB+ > B-=B+")
        #expect(result.verdict(for: BloodGroup(.B, .positive)).requiredAttributes == AttributeSet(.lowTitre))
    }
}
