@testable import BloodMatchCore
import Testing

/// Platelets, plasma, cryoprecipitate and whole blood: every recipient group × unit group ×
/// recipient context × urgency.
@Suite("Platelets, plasma, cryoprecipitate and whole blood")
struct ComponentCompatibilityTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var component: Component
        var recipient: String
        var context: String
        var urgency: Urgency
        var expected: String
        var testDescription: String {
            "\(component.rawValue) \(recipient) [\(context)] \(urgency.rawValue) → \(expected)"
        }
    }

    /// Contexts in which RhD-positive platelets for an RhD-negative recipient need anti-D
    /// prophylaxis and RhD-negative platelets come first (LH: females of child-bearing age and
    /// children; uncertain sex or age the stricter reading, LB-ONEG).
    static let plateletProphylaxisContexts = ["female,age=30", "female,age=50", "male,age=10", "neonate", "", "male"]
    /// Other contexts: RhD-identical first within each ABO tier (LB-CC; CID-2015 low anti-D rate).
    static let plateletOtherContexts = ["male,age=40", "female,age=70", "male,age=40,anti-d", "male,age=40,transfusion-dependent"]

    /// Source: LB-CC platelet table (O: O, A, B; A: A, B or O, AB; B: B, A or O, AB; AB: AB, A or B,
    /// O; unknown: A or O), RhD-identical first for RhD-positive recipients.
    static let plateletRhDPositive: [String: String] = [
        "O+": "O+ > O- > A+ > A- > B+ > B-",
        "A+": "A+ > A- > O+=B+ > O-=B- > AB+ > AB-",
        "B+": "B+ > B- > O+=A+ > O-=A- > AB+ > AB-",
        "AB+": "AB+ > AB- > A+=B+ > A-=B- > O+ > O-",
    ]
    /// RhD-negative females of childbearing potential and children: every RhD-negative choice
    /// first, then RhD-positive with anti-D prophylaxis (LH; CID-2015).
    static let plateletRhDNegativeProphylaxis: [String: String] = [
        "O-": "O- > A- > B- > O+ > A+ > B+",
        "A-": "A- > O-=B- > AB- > A+ > O+=B+ > AB+",
        "B-": "B- > O-=A- > AB- > B+ > O+=A+ > AB+",
        "AB-": "AB- > A-=B- > O- > AB+ > A+=B+ > O+",
        "unknown": "O-=A- > O+=A+",
    ]
    /// Other RhD-negative recipients: ABO tier first, RhD-negative before RhD-positive within it.
    static let plateletRhDNegativeOther: [String: String] = [
        "O-": "O- > O+ > A- > A+ > B- > B+",
        "A-": "A- > A+ > O-=B- > O+=B+ > AB- > AB+",
        "B-": "B- > B+ > O-=A- > O+=A+ > AB- > AB+",
        "AB-": "AB- > AB+ > A-=B- > A+=B+ > O- > O+",
        "unknown": "O-=A- > O+=A+",
    ]

    /// Source: STRICT plasma table (LB-OLD rows for O, A, B; AB: AB, then low-titre A (LB-CC d);
    /// unknown: AB, then low-titre A in emergency only (LB-CC d, e; LH)); RhD irrelevant (LB-OLD;
    /// BCSH-FFP). Cryoprecipitate follows the plasma rule (LB-OLD; NZBS).
    static func plasmaOrder(_ abo: String, urgency: Urgency) -> String {
        switch abo {
        case "O": "O-=O+ > A-=A+ > B-=B+ > AB-=AB+"
        case "A": "A-=A+ > AB-=AB+"
        case "B": "B-=B+ > AB-=AB+"
        case "AB": "AB-=AB+ > A-=A+"
        default: urgency == .emergency ? "AB-=AB+ > A-=A+" : "AB-=AB+"
        }
    }

    /// Whole blood: ABO-identical (red-cell and plasma rules together; LB-CC, LB-OLD); low-titre
    /// group O whole blood in emergency release only (HEMATOS; EMRA-LTOWB); RhD as for red cells.
    static func wholeBloodOrder(_ recipient: String, mustBeNegative: Bool, urgency: Urgency) -> String {
        let emergency = urgency == .emergency
        switch recipient {
        case "O+": return "O+ > O-"
        case "O-": return mustBeNegative ? "O-" : "O- > O+"
        case "unknown": return emergency ? (mustBeNegative ? "O-" : "O+ > O-") : "none"
        default:
            let abo = String(recipient.dropLast())
            if recipient.hasSuffix("+") {
                return emergency ? "\(abo)+ > \(abo)- > O+ > O-" : "\(abo)+ > \(abo)-"
            }
            if mustBeNegative { return emergency ? "\(abo)- > O-" : "\(abo)-" }
            return emergency ? "\(abo)- > O- > \(abo)+ > O+" : "\(abo)- > \(abo)+"
        }
    }

    static let cases: [Case] = {
        var cases: [Case] = []
        for urgency in Urgency.allCases {
            for context in plateletProphylaxisContexts + plateletOtherContexts {
                let prophylaxis = plateletProphylaxisContexts.contains(context)
                for (recipient, order) in plateletRhDPositive {
                    cases.append(Case(component: .platelets, recipient: recipient, context: context, urgency: urgency, expected: order))
                }
                for (recipient, order) in prophylaxis ? plateletRhDNegativeProphylaxis : plateletRhDNegativeOther {
                    cases.append(Case(component: .platelets, recipient: recipient, context: context, urgency: urgency, expected: order))
                }
                for recipient in RulesFixture.recipientKeys {
                    let abo = recipient == "unknown" ? "unknown" : String(recipient.dropLast())
                    for component in [Component.plasma, .cryoprecipitate] {
                        cases.append(Case(
                            component: component, recipient: recipient, context: context, urgency: urgency,
                            expected: plasmaOrder(abo, urgency: urgency)))
                    }
                    let mustBeNegative = RedCellCompatibilityTests.mustReceiveRhDNegative.contains(context)
                    cases.append(Case(
                        component: .wholeBlood, recipient: recipient, context: context, urgency: urgency,
                        expected: wholeBloodOrder(recipient, mustBeNegative: mustBeNegative, urgency: urgency)))
                }
            }
        }
        return cases.sorted { $0.testDescription < $1.testDescription }
    }()

    @Test("every unit group has the expected verdict and rank", arguments: cases)
    func everyUnitGroup(_ testCase: Case) throws {
        let policy = try RulesFixture.loadPolicy()
        let recipient = try RulesFixture.recipient(testCase.recipient, testCase.context)
        let result = policy.compatibility(of: testCase.component, for: recipient, urgency: testCase.urgency)
        // Every one of the eight unit groups: acceptable exactly when listed, at the listed rank.
        #expect(RulesFixture.ranks(of: result) == RulesFixture.order(testCase.expected), "\(RulesFixture.order(of: result))")
    }

    @Test("RhD-positive platelets for an RhD-negative female of childbearing potential: flag, not refusal (LH)")
    func antiDProphylaxisFlag() throws {
        let policy = try RulesFixture.loadPolicy()
        let result = policy.compatibility(
            of: .platelets, for: try RulesFixture.recipient("O-", "female,age=25"), urgency: .routine)
        let oPos = result.verdict(for: BloodGroup(.O, .positive))
        #expect(oPos.isAcceptable)
        #expect(oPos.flags.contains(.antiDProphylaxisRequired))
        #expect(oPos.rules.contains { $0.id == "PLT.RHD" && $0.source.contains("LH") })
        let male = policy.compatibility(
            of: .platelets, for: try RulesFixture.recipient("O-", "male,age=40"), urgency: .routine)
        #expect(!male.verdict(for: BloodGroup(.O, .positive)).flags.contains(.antiDProphylaxisRequired))
        #expect(male.verdict(for: BloodGroup(.O, .positive)).flags.contains(.rhdMismatch))
    }

    @Test("platelet footnotes and ABO mismatch flags (LB-CC b, c)")
    func plateletFlags() throws {
        let policy = try RulesFixture.loadPolicy()
        let forO = policy.compatibility(of: .platelets, for: try RulesFixture.recipient("O+", "male,age=40"), urgency: .routine)
        let a = forO.verdict(for: BloodGroup(.A, .positive))
        #expect(a.flags.contains(.a2SubgroupPreferable))
        #expect(a.flags.contains(.abOIncompatibleMajor))
        #expect(!a.flags.contains(.abOIncompatiblePlasmaMinor))
        let forAB = policy.compatibility(of: .platelets, for: try RulesFixture.recipient("AB+", "male,age=40"), urgency: .routine)
        let o = forAB.verdict(for: BloodGroup(.O, .positive))
        #expect(o.flags.contains(.lowTitrePreferred))
        #expect(o.flags.contains(.abOIncompatiblePlasmaMinor))
        #expect(!o.flags.contains(.abOIncompatibleMajor))
        #expect(o.requiredAttributes.isEmpty, "low titre is a note for platelets, not a requirement")
    }

    @Test("minor-incompatible plasma is flagged and needs low-titre units (LB-CC d)")
    func plasmaMinorIncompatibility() throws {
        let policy = try RulesFixture.loadPolicy()
        for component in [Component.plasma, .cryoprecipitate] {
            let result = policy.compatibility(of: component, for: try RulesFixture.recipient("AB-", "female,age=20"), urgency: .routine)
            let a = result.verdict(for: BloodGroup(.A, .negative))
            #expect(a.flags.contains(.abOIncompatiblePlasmaMinor))
            #expect(a.flags.contains(.lowTitreRequired))
            #expect(a.requiredAttributes == AttributeSet(.lowTitre))
            let ab = result.verdict(for: BloodGroup(.AB, .positive))
            #expect(ab.rank == 1 && ab.flags.isEmpty && ab.rules.contains { $0.id.hasSuffix("RHD.IRRELEVANT") })
        }
    }

    @Test("low-titre group O whole blood only in emergency, flagged (HEMATOS; EMRA-LTOWB)")
    func lowTitreWholeBlood() throws {
        let policy = try RulesFixture.loadPolicy()
        let emergency = policy.compatibility(of: .wholeBlood, for: try RulesFixture.recipient("B+", "male,age=40"), urgency: .emergency)
        let o = emergency.verdict(for: BloodGroup(.O, .positive))
        #expect(o.isAcceptable)
        #expect(Set(o.flags).isSuperset(of: [.lowTitreRequired, .emergencyRelease, .abOIncompatiblePlasmaMinor]))
        #expect(o.requiredAttributes.contains(.lowTitre))
        let routine = policy.compatibility(of: .wholeBlood, for: try RulesFixture.recipient("B+", "male,age=40"), urgency: .urgent)
        #expect(!routine.verdict(for: BloodGroup(.O, .positive)).isAcceptable)
        #expect(routine.verdict(for: BloodGroup(.O, .positive)).reason.contains("emergency"))
    }
}
