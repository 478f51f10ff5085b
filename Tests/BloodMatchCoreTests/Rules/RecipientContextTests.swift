@testable import BloodMatchCore
import Testing

/// Recipient context: parsing and the reasons for RhD-negative red cells.
///
/// Source: LB-CC (females of childbearing potential ≤50, paediatric ≤18, anti-D, transfusion
/// dependent), LH (same list), LB-ONEG (uncertain sex or age).
@Suite("Recipient context")
struct RecipientContextTests {
    @Test("reasons for RhD-negative red cells",
          arguments: [
            ("female,age=50", RhDNegativeReasons.childbearingPotential),
            ("female,age=51", RhDNegativeReasons()),
            ("female,age=30,not-childbearing", RhDNegativeReasons()),
            ("female,age=60,childbearing", .childbearingPotential),
            ("female", .sexOrAgeUnknown),
            ("male,age=18", .paediatric),
            ("male,age=19", RhDNegativeReasons()),
            ("male", .sexOrAgeUnknown),
            ("age=49", .sexOrAgeUnknown),
            ("age=70", RhDNegativeReasons()),
            ("", .sexOrAgeUnknown),
            ("neonate", RhDNegativeReasons([.paediatric, .sexOrAgeUnknown])),
            ("male,age=40,anti-d", .antiD),
            ("male,age=40,transfusion-dependent", .transfusionDependent),
          ])
    func reasons(context: String, expected: RhDNegativeReasons) throws {
        let policy = try RulesFixture.loadPolicy()
        #expect(policy.rhdNegativeReasons(for: try RecipientContext(parsing: context)) == expected)
    }

    @Test("the childbearing age threshold comes from the policy (UTMB <55 as an alternative)")
    func thresholdIsConfigurable() throws {
        var tree = try RulesFixture.policyTree()
        tree[[.key("recipientThresholds"), .key("childbearingPotentialMaximumAgeYears"), .key("value")]] = .number(54)
        let policy = try RulesFixture.load(tree)
        #expect(policy.rhdNegativeReasons(for: try RecipientContext(parsing: "female,age=53")) == .childbearingPotential)
    }

    @Test("context tokens round-trip", arguments: ["female,age=34,anti-d", "male,age=2,neonate", "", "childbearing,transfusion-dependent"])
    func roundTrip(_ text: String) throws {
        let context = try RecipientContext(parsing: text)
        #expect(try RecipientContext(parsing: context.tokens) == context)
    }

    @Test("bad tokens name the bad value")
    func badTokens() {
        #expect(throws: RecipientContext.ParseError.unknownToken("pregnant")) { try RecipientContext(parsing: "female,pregnant") }
        #expect(throws: RecipientContext.ParseError.badAge("200")) { try RecipientContext(parsing: "age=200") }
        #expect(throws: RecipientContext.ParseError.conflicting("female", "male")) { try RecipientContext(parsing: "female,male") }
    }
}
