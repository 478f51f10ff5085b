@testable import BloodMatchCore
import Foundation
import Testing

/// Special requirements and substitution.
///
/// Source: Data/SOURCES.md §S8 table (LB-CMV, LB-CC, LH, VITALANT, NHSBT, CBS, STARSHIP, BSH-IRR): which
/// attributes a "better" unit may carry for a plain request, which are never substituted, which
/// are scarce.
@Suite("Special requirements and substitution")
struct SpecialRequirementTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let adult = Recipient(group: BloodGroup(.A, .positive), context: .adultMale)

    struct Case: CustomTestStringConvertible, Sendable {
        var attribute: UnitAttribute
        var component: Component
        /// A unit with the attribute may serve a request without it.
        var mayServePlain: Bool
        /// Such a unit counts as surplus scarce stock.
        var scarce: Bool
        var testDescription: String { "\(attribute.rawValue) on \(component.rawValue)" }
    }

    static let cases: [Case] = [
        Case(attribute: .irradiated, component: .redCells, mayServePlain: true, scarce: true),
        Case(attribute: .irradiated, component: .platelets, mayServePlain: true, scarce: true),
        Case(attribute: .cmvNegative, component: .redCells, mayServePlain: true, scarce: true),
        Case(attribute: .cmvNegative, component: .platelets, mayServePlain: true, scarce: true),
        Case(attribute: .leukoreduced, component: .redCells, mayServePlain: true, scarce: false),
        Case(attribute: .washed, component: .redCells, mayServePlain: false, scarce: true),
        Case(attribute: .washed, component: .platelets, mayServePlain: false, scarce: true),
        Case(attribute: .volumeReduced, component: .platelets, mayServePlain: false, scarce: true),
        Case(attribute: .hlaMatched, component: .platelets, mayServePlain: false, scarce: true),
        Case(attribute: .hbsNegative, component: .redCells, mayServePlain: true, scarce: false),
        Case(attribute: .lowTitre, component: .plasma, mayServePlain: true, scarce: false),
        Case(attribute: .lowTitre, component: .wholeBlood, mayServePlain: true, scarce: false),
    ] + [UnitAttribute.kNegative, .bigCNegative, .littleCNegative, .bigENegative, .littleENegative, .fyaNegative,
         .fybNegative, .jkaNegative, .jkbNegative, .bigSNegative, .littleSNegative, .mNegative].map {
        Case(attribute: $0, component: .redCells, mayServePlain: true, scarce: true)
    }

    func check(_ policy: CompatibilityPolicy, request: AttributeSet, unit: AttributeSet, component: Component,
               ageDays: Double = 3, maximumAgeDays: Double? = nil, recipient: Recipient = adult) -> RequirementCheck {
        let resolved = policy.resolveRequirements(
            component: component, requested: request, maximumUnitAgeSeconds: maximumAgeDays.map { $0 * 86_400 }, recipient: recipient)
        return policy.checkUnit(
            attributes: unit, component: component, collectedAt: Self.now.addingTimeInterval(-ageDays * 86_400),
            against: resolved, now: Self.now)
    }

    @Test("a request for the attribute is met only by units carrying it", arguments: cases)
    func requiredAttribute(_ testCase: Case) throws {
        let policy = try RulesFixture.loadPolicy()
        let request = AttributeSet(testCase.attribute)
        // The unit carries the attribute and anything it implies (HLA-matched → irradiated, CBS).
        let needed = policy.resolveRequirements(component: testCase.component, requested: request, recipient: Self.adult).required
        #expect(needed.isSuperset(of: request))
        #expect(check(policy, request: request, unit: needed, component: testCase.component).satisfies)
        let without = check(policy, request: request, unit: AttributeSet(), component: testCase.component)
        #expect(!without.satisfies)
        #expect(without.failures.contains(.missing(needed)))
    }

    @Test("a unit carrying more than asked: may it serve, and is it surplus?", arguments: cases)
    func surplusAttribute(_ testCase: Case) throws {
        let policy = try RulesFixture.loadPolicy()
        let unit = AttributeSet(testCase.attribute)
        let result = check(policy, request: AttributeSet(), unit: unit, component: testCase.component)
        #expect(result.satisfies == testCase.mayServePlain, "\(result.explanation)")
        if testCase.mayServePlain {
            #expect(result.surplusCount == (testCase.scarce ? 1 : 0))
        } else {
            #expect(result.failures.contains(.notSubstitutable(unit)))
        }
        #expect(policy.requirementRule(for: testCase.attribute)?.source.isEmpty == false)
    }

    @Test("plain units rank before scarce ones: surplus counts add up (LB-CMV; LB-CC)")
    func surplusCounts() throws {
        let policy = try RulesFixture.loadPolicy()
        let plain = check(policy, request: AttributeSet([.kNegative]), unit: AttributeSet([.kNegative]), component: .redCells)
        let rich = check(policy, request: AttributeSet([.kNegative]), unit: AttributeSet([.kNegative, .cmvNegative, .irradiated, .leukoreduced]), component: .redCells)
        #expect(plain.surplusCount == 0)
        #expect(rich.surplusCount == 2)
        #expect(rich.surplusScarce == AttributeSet([.cmvNegative, .irradiated]))
    }

    @Test("CMV-negative and irradiated are waived for plasma and cryo (LB-CMV; STARSHIP)",
          arguments: [Component.plasma, .cryoprecipitate])
    func waivedForPlasma(_ component: Component) throws {
        let policy = try RulesFixture.loadPolicy()
        let resolved = policy.resolveRequirements(component: component, requested: AttributeSet([.cmvNegative, .irradiated]), recipient: Self.adult)
        #expect(resolved.required.isEmpty)
        #expect(resolved.waived.count == 2)
        #expect(resolved.isSatisfiable)
    }

    @Test("requirements that cannot exist for a component make the request unsatisfiable")
    func impossibleRequirement() throws {
        let policy = try RulesFixture.loadPolicy()
        let resolved = policy.resolveRequirements(component: .redCells, requested: AttributeSet([.hlaMatched]), recipient: Self.adult)
        #expect(!resolved.isSatisfiable)
        let result = policy.checkUnit(
            attributes: AttributeSet([.hlaMatched]), component: .redCells, collectedAt: Self.now, against: resolved, now: Self.now)
        #expect(!result.satisfies)
        let plasmaAntigen = policy.resolveRequirements(component: .plasma, requested: AttributeSet([.kNegative]), recipient: Self.adult)
        #expect(!plasmaAntigen.isSatisfiable)
    }

    @Test("HLA-matched platelets must also be irradiated (CBS)")
    func hlaImpliesIrradiated() throws {
        let policy = try RulesFixture.loadPolicy()
        let resolved = policy.resolveRequirements(component: .platelets, requested: AttributeSet([.hlaMatched]), recipient: Self.adult)
        #expect(resolved.required == AttributeSet([.hlaMatched, .irradiated]))
        #expect(resolved.notes.contains { $0.attribute == .irradiated })
        #expect(!check(policy, request: AttributeSet([.hlaMatched]), unit: AttributeSet([.hlaMatched]), component: .platelets).satisfies)
        #expect(check(policy, request: AttributeSet([.hlaMatched]), unit: AttributeSet([.hlaMatched, .irradiated]), component: .platelets).satisfies)
    }

    @Test("maximum unit age is a hard bound; neonates get red cells under 5 days (LH)",
          arguments: [
            (3.0, nil as Double?, false, true), (6.0, nil, false, true), (4.9, nil, true, true), (5.0, nil, true, false),
            (6.0, nil, true, false), (2.0, 3.0, false, true), (3.5, 3.0, false, false), (2.5, 3.0, true, true), (4.0, 7.0, true, true),
          ])
    func maximumAge(ageDays: Double, requestedDays: Double?, neonate: Bool, satisfies: Bool) throws {
        let policy = try RulesFixture.loadPolicy()
        let recipient = Recipient(group: BloodGroup(.O, .negative), context: RecipientContext(isNeonate: neonate))
        // A neonate's red cells are CMV-seronegative as well (LB-CMV); this test is about age.
        let result = check(policy, request: AttributeSet(), unit: neonate ? AttributeSet(.cmvNegative) : AttributeSet(), component: .redCells,
                           ageDays: ageDays, maximumAgeDays: requestedDays, recipient: recipient)
        // (4.0, 7.0, neonate): the neonatal 5-day limit is stricter than the requested 7 days.
        #expect(result.satisfies == satisfies, "\(result.explanation)")
    }

    @Test("a neonate's red cells, platelets and whole blood must be CMV-seronegative; plasma and cryoprecipitate need not be (LB-CMV)",
          arguments: Component.allCases)
    func neonatesGetCMVNegativeCellularComponents(component: Component) throws {
        let policy = try RulesFixture.loadPolicy()
        let neonate = Recipient(group: BloodGroup(.O, .negative), context: RecipientContext(isNeonate: true))
        let resolved = policy.resolveRequirements(component: component, requested: AttributeSet(), recipient: neonate)
        let cellular = [Component.redCells, .platelets, .wholeBlood].contains(component)
        #expect(resolved.required.contains(.cmvNegative) == cellular)
        #expect(resolved.notes.contains { $0.attribute == .cmvNegative && $0.source.contains("LB-CMV") } == cellular)
        #expect(check(policy, request: AttributeSet(), unit: AttributeSet(), component: component, recipient: neonate).satisfies == !cellular)
        #expect(check(policy, request: AttributeSet(), unit: AttributeSet(.cmvNegative), component: component, recipient: neonate).satisfies || !cellular)
        // An adult's plain request still takes a plain unit.
        #expect(!policy.resolveRequirements(component: component, requested: AttributeSet(), recipient: Self.adult).required.contains(.cmvNegative))
    }

    @Test("the neonatal limit does not apply to platelets or plasma")
    func neonatalLimitOnlyForRedCells() throws {
        let policy = try RulesFixture.loadPolicy()
        let recipient = Recipient(group: BloodGroup(.O, .negative), context: RecipientContext(isNeonate: true))
        #expect(policy.resolveRequirements(component: .platelets, requested: AttributeSet(), recipient: recipient).maximumUnitAgeSeconds == nil)
    }

    @Test("a unit of another component, or collected in the future, is refused")
    func wrongComponentAndFutureCollection() throws {
        let policy = try RulesFixture.loadPolicy()
        let resolved = policy.resolveRequirements(component: .redCells, requested: AttributeSet(), recipient: Self.adult)
        let other = policy.checkUnit(attributes: AttributeSet(), component: .platelets, collectedAt: Self.now, against: resolved, now: Self.now)
        #expect(other.failures.contains(.wrongComponent(unit: .platelets, requested: .redCells)))
        let future = policy.checkUnit(
            attributes: AttributeSet(), component: .redCells, collectedAt: Self.now.addingTimeInterval(3600), against: resolved, now: Self.now)
        #expect(!future.satisfies)
    }

    @Test("exclusive and scarce sets for the matcher")
    func matcherSets() throws {
        let policy = try RulesFixture.loadPolicy()
        let resolved = policy.resolveRequirements(component: .platelets, requested: AttributeSet([.washed]), recipient: Self.adult)
        #expect(resolved.exclusive == AttributeSet([.volumeReduced, .hlaMatched]))
        #expect(resolved.scarce.contains(.cmvNegative))
        #expect(resolved.policyVersion == policy.version)
    }
}
