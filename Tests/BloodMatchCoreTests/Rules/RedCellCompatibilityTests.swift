@testable import BloodMatchCore
import Testing

/// Red cells, every recipient group × unit group × recipient context × urgency.
///
/// Source of the expected orders: LB-CC red cell table (O: O; A: A, O; B: B, O; AB: AB, then A or B
/// (LB-OLD, LH), then O), LB-CC RhD rules (must receive RhD-negative: anti-D, females of
/// childbearing potential ≤50, paediatric ≤18, likely transfusion dependent; RhD-positive "Avoid if
/// possible" for other RhD-negative adults), LB-ONEG (O-negative last; uncertain sex/age gets
/// RhD-negative), Data/SOURCES.md §S1 derived order (A-pos: A+, A-, O+, O-).
@Suite("Red cells: red-cell rule, RhD rules, O-negative stewardship")
struct RedCellCompatibilityTests {
    /// Contexts in which an RhD-negative recipient must receive RhD-negative red cells (LB-CC; LH; LB-ONEG).
    static let mustReceiveRhDNegative = [
        "female,age=30", "female,age=50", "female", "male,age=10", "male,age=18", "male", "neonate",
        "male,age=40,anti-d", "female,age=70,anti-d", "male,age=40,transfusion-dependent", "",
        "age=45", "female,age=55,childbearing",
    ]
    /// Contexts in which RhD-positive red cells may be given to an RhD-negative recipient as a
    /// lower-ranked choice (LB-CC: males >18, females >50; LH).
    static let mayReceiveRhDPositive = [
        "male,age=40", "male,age=19", "female,age=51", "female,age=70", "female,age=45,not-childbearing", "age=80",
    ]
    static let allContexts = mustReceiveRhDNegative + mayReceiveRhDPositive

    /// Expected orders for RhD-positive recipients, whatever the context (LB-CC; Data/SOURCES.md §S1).
    static let rhdPositiveOrders: [String: String] = [
        "O+": "O+ > O-",
        "A+": "A+ > A- > O+ > O-",
        "B+": "B+ > B- > O+ > O-",
        "AB+": "AB+ > AB- > A+=B+ > A-=B- > O+ > O-",
    ]
    /// RhD-negative recipients who must receive RhD-negative (LB-CC).
    static let rhdNegativeRequiredOrders: [String: String] = [
        "O-": "O-",
        "A-": "A- > O-",
        "B-": "B- > O-",
        "AB-": "AB- > A-=B- > O-",
    ]
    /// Other RhD-negative recipients: RhD-positive after every RhD-negative choice (policy
    /// after_rhd_negative; LB-CC "Avoid if possible").
    static let rhdPositiveAllowedOrders: [String: String] = [
        "O-": "O- > O+",
        "A-": "A- > O- > A+ > O+",
        "B-": "B- > O- > B+ > O+",
        "AB-": "AB- > A-=B- > O- > AB+ > A+=B+ > O+",
    ]

    struct Case: CustomTestStringConvertible, Sendable {
        var recipient: String
        var context: String
        var urgency: Urgency
        var expected: String
        var testDescription: String { "\(recipient) [\(context)] \(urgency.rawValue) → \(expected)" }
    }

    static let cases: [Case] = {
        var cases: [Case] = []
        for urgency in Urgency.allCases {
            for context in allContexts {
                for (recipient, order) in rhdPositiveOrders {
                    cases.append(Case(recipient: recipient, context: context, urgency: urgency, expected: order))
                }
                let negative = mustReceiveRhDNegative.contains(context) ? rhdNegativeRequiredOrders : rhdPositiveAllowedOrders
                for (recipient, order) in negative {
                    cases.append(Case(recipient: recipient, context: context, urgency: urgency, expected: order))
                }
                // Unknown group: group O only; O-negative for those who must have it, O-positive
                // first for others (LB-CC unknown ABO/RhD; LB-ONEG; UTMB).
                cases.append(Case(
                    recipient: "unknown", context: context, urgency: urgency,
                    expected: mustReceiveRhDNegative.contains(context) ? "O-" : "O+ > O-"))
            }
        }
        return cases.sorted { $0.testDescription < $1.testDescription }
    }()

    @Test("every unit group has the expected verdict and rank", arguments: cases)
    func everyUnitGroup(_ testCase: Case) throws {
        let policy = try RulesFixture.loadPolicy()
        let recipient = try RulesFixture.recipient(testCase.recipient, testCase.context)
        let result = policy.compatibility(of: .redCells, for: recipient, urgency: testCase.urgency)
        // Every one of the eight unit groups: acceptable exactly when listed, at the listed rank.
        #expect(RulesFixture.ranks(of: result) == RulesFixture.order(testCase.expected), "\(RulesFixture.order(of: result))")
        #expect(result.verdicts.allSatisfy { !$0.rules.isEmpty && !$0.source.isEmpty && !$0.reason.isEmpty })
        #expect(result.policyVersion == policy.version)
    }

    @Test("ABO-incompatible red cells are refused by the never-event rule", arguments: BloodGroup.all)
    func incompatibleRefusedWithReason(_ recipientGroup: BloodGroup) throws {
        let policy = try RulesFixture.loadPolicy()
        let result = policy.compatibility(
            of: .redCells, for: Recipient(group: recipientGroup, context: .adultMale), urgency: .emergency)
        for group in BloodGroup.all where !recipientGroup.abo.acceptsRedCells(from: group.abo) {
            let verdict = result.verdict(for: group)
            #expect(!verdict.isAcceptable)
            #expect(verdict.ruleID == "RBC.ABO.NEVER_INCOMPATIBLE")
            #expect(verdict.reason.contains("anti-"))
        }
    }

    @Test("O-negative carries the stewardship flag for recipients who are not O-negative (LB-ONEG)")
    func oNegativeStewardshipFlag() throws {
        let policy = try RulesFixture.loadPolicy()
        for recipient in ["A+", "B+", "AB+", "O+"] {
            let result = policy.compatibility(
                of: .redCells, for: try RulesFixture.recipient(recipient, "male,age=40"), urgency: .routine)
            let oNeg = result.verdict(for: .oNegative)
            #expect(oNeg.flags.contains(.oNegativeConservation))
            #expect(oNeg.rank == result.acceptable.compactMap(\.rank).max(), "O-neg must rank last for \(recipient)")
        }
        let own = policy.compatibility(of: .redCells, for: try RulesFixture.recipient("O-", "male,age=40"), urgency: .routine)
        #expect(!own.verdict(for: .oNegative).flags.contains(.oNegativeConservation))
        #expect(own.verdict(for: .oNegative).rank == 1)
    }

    @Test("RhD-positive for an RhD-negative adult is flagged rhd_mismatch and cites the option")
    func rhdPositiveForRhDNegativeAdult() throws {
        let policy = try RulesFixture.loadPolicy()
        let result = policy.compatibility(
            of: .redCells, for: try RulesFixture.recipient("A-", "male,age=40"), urgency: .routine)
        let aPos = result.verdict(for: BloodGroup(.A, .positive))
        #expect(aPos.flags.contains(.rhdMismatch))
        #expect(aPos.rules.contains { $0.id == "RBC.RHD.POSITIVE_FOR_NEGATIVE" })
        #expect(aPos.source.contains("LB-CC"))
    }

    @Test("a female of childbearing potential is refused RhD-positive with the reason named")
    func childbearingRefusalNamesReason() throws {
        let policy = try RulesFixture.loadPolicy()
        let result = policy.compatibility(
            of: .redCells, for: try RulesFixture.recipient("A-", "female,age=30"), urgency: .emergency)
        let aPos = result.verdict(for: BloodGroup(.A, .positive))
        #expect(!aPos.isAcceptable)
        #expect(aPos.ruleID == "RBC.RHD.NEGATIVE_REQUIRED")
        #expect(aPos.reason.contains("childbearing"))
        #expect(result.rhdNegativeReasons.contains("childbearing"))
    }

    @Test("ranks are dense from 1 and acceptable groups come best first", arguments: RulesFixture.recipientKeys)
    func ranksAreDense(_ recipient: String) throws {
        let policy = try RulesFixture.loadPolicy()
        var failures: [String] = []
        for component in Component.allCases {
            for context in Self.allContexts {
                for urgency in Urgency.allCases {
                    let result = policy.compatibility(
                        of: component, for: try RulesFixture.recipient(recipient, context), urgency: urgency)
                    let ranks = result.acceptable.compactMap(\.rank)
                    let dense = ranks == ranks.sorted() && (ranks.max().map { Set(ranks) == Set(1...$0) } ?? true)
                    if !dense || !result.unacceptable.allSatisfy({ $0.rank == nil && !$0.reason.isEmpty }) {
                        failures.append("\(component.rawValue) \(context) \(urgency.rawValue): \(ranks)")
                    }
                }
            }
        }
        #expect(failures.isEmpty)
    }
}

extension RulesFixture {
    /// Recipient keys for tables: the eight groups and `unknown`.
    static let recipientKeys = BloodGroup.all.map(\.description) + ["unknown"]
}
