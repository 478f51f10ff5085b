@testable import BloodMatchCore
import Foundation
import Testing

/// Expiry after modification = min(original, process-derived) (JPAC-RB §6.5; LH), process shelf
/// lives from the policy (JPAC-RB, CFR610, VITALANT, DRORACLE, LH), plausibility bounds (UKBSQR; CFR610).
@Suite("Expiry after processing and plausibility")
struct ExpiryRuleTests {
    static let collected = Date(timeIntervalSince1970: 1_800_000_000)
    static let hour = 3_600.0
    static let day = 86_400.0

    struct Case: CustomTestStringConvertible, Sendable {
        var component: Component
        var process: ModificationProcess
        var processAfterCollectionHours: Double
        var originalShelfLifeHours: Double
        var expectedHoursAfterCollection: Double
        var decidedBy: String
        var testDescription: String { "\(process.rawValue) of \(component.rawValue) at +\(Int(processAfterCollectionHours)) h" }
    }

    static let cases: [Case] = [
        // Irradiated red cells: 14 days after irradiation (JPAC-RB), earlier than 35-day original.
        Case(component: .redCells, process: .irradiation, processAfterCollectionHours: 48, originalShelfLifeHours: 35 * 24,
             expectedHoursAfterCollection: 48 + 14 * 24, decidedBy: "irradiation"),
        // Irradiated on day 13 of a 21-day unit: 14 days would pass the original, so the original stands.
        Case(component: .redCells, process: .irradiation, processAfterCollectionHours: 13 * 24, originalShelfLifeHours: 21 * 24,
             expectedHoursAfterCollection: 21 * 24, decidedBy: "original"),
        Case(component: .redCells, process: .irradiationForNeonatalExchange, processAfterCollectionHours: 72, originalShelfLifeHours: 35 * 24,
             expectedHoursAfterCollection: 72 + 24, decidedBy: "irradiation_neonatal_exchange"),
        Case(component: .redCells, process: .washing, processAfterCollectionHours: 100, originalShelfLifeHours: 35 * 24,
             expectedHoursAfterCollection: 124, decidedBy: "washing"),
        Case(component: .redCells, process: .washingClosedSystem, processAfterCollectionHours: 100, originalShelfLifeHours: 35 * 24,
             expectedHoursAfterCollection: 100 + 14 * 24, decidedBy: "washing_closed_system"),
        Case(component: .platelets, process: .washing, processAfterCollectionHours: 30, originalShelfLifeHours: 5 * 24,
             expectedHoursAfterCollection: 34, decidedBy: "washing"),
        Case(component: .platelets, process: .volumeReduction, processAfterCollectionHours: 30, originalShelfLifeHours: 5 * 24,
             expectedHoursAfterCollection: 34, decidedBy: "volume_reduction"),
        Case(component: .plasma, process: .thawing, processAfterCollectionHours: 200 * 24, originalShelfLifeHours: 365 * 24,
             expectedHoursAfterCollection: 200 * 24 + 24, decidedBy: "thawing"),
        Case(component: .plasma, process: .thawingForMajorHaemorrhage, processAfterCollectionHours: 200 * 24, originalShelfLifeHours: 365 * 24,
             expectedHoursAfterCollection: 200 * 24 + 120, decidedBy: "thawing_major_haemorrhage"),
        // Thawed 2 h before the original expiry: the original is earlier.
        Case(component: .plasma, process: .thawing, processAfterCollectionHours: 365 * 24 - 2, originalShelfLifeHours: 365 * 24,
             expectedHoursAfterCollection: 365 * 24, decidedBy: "original"),
        Case(component: .cryoprecipitate, process: .thawing, processAfterCollectionHours: 100 * 24, originalShelfLifeHours: 365 * 24,
             expectedHoursAfterCollection: 100 * 24 + 4, decidedBy: "thawing"),
    ]

    @Test("effective expiry is the earlier of original and process-derived", arguments: cases)
    func effectiveExpiry(_ testCase: Case) throws {
        let policy = try RulesFixture.loadPolicy()
        let expiry = try policy.effectiveExpiry(
            component: testCase.component, collectedAt: Self.collected,
            originalExpiry: Self.collected.addingTimeInterval(testCase.originalShelfLifeHours * Self.hour),
            processes: [AppliedProcess(testCase.process, at: Self.collected.addingTimeInterval(testCase.processAfterCollectionHours * Self.hour))])
        #expect(expiry.expiresAt == Self.collected.addingTimeInterval(testCase.expectedHoursAfterCollection * Self.hour))
        #expect(expiry.decidedBy == testCase.decidedBy)
        #expect(!expiry.source.isEmpty)
    }

    @Test func twoProcessesTakeTheEarliest() throws {
        let policy = try RulesFixture.loadPolicy()
        let expiry = try policy.effectiveExpiry(
            component: .redCells, collectedAt: Self.collected, originalExpiry: Self.collected.addingTimeInterval(35 * Self.day),
            processes: [AppliedProcess(.irradiation, at: Self.collected.addingTimeInterval(2 * Self.day)),
                        AppliedProcess(.washing, at: Self.collected.addingTimeInterval(3 * Self.day))])
        #expect(expiry.expiresAt == Self.collected.addingTimeInterval(3 * Self.day + 24 * Self.hour))
        #expect(expiry.decidedBy == "washing")
    }

    @Test func irradiationLaterThan14DaysAfterCollectionIsRefused() throws {
        let policy = try RulesFixture.loadPolicy()
        #expect(throws: ExpiryError.self) {
            try policy.effectiveExpiry(
                component: .redCells, collectedAt: Self.collected, originalExpiry: Self.collected.addingTimeInterval(35 * Self.day),
                processes: [AppliedProcess(.irradiation, at: Self.collected.addingTimeInterval(15 * Self.day))])
        }
    }

    @Test("no rule, or a process outside the unit's life, is an error naming it")
    func refusedProcesses() throws {
        let policy = try RulesFixture.loadPolicy()
        let original = Self.collected.addingTimeInterval(365 * Self.day)
        do {
            _ = try policy.effectiveExpiry(
                component: .plasma, collectedAt: Self.collected, originalExpiry: original,
                processes: [AppliedProcess(.irradiation, at: Self.collected)])
            Issue.record("irradiation of plasma has no rule and must be refused")
        } catch {
            #expect(error == .noRuleForProcess(.irradiation, .plasma))
        }
        #expect(throws: ExpiryError.self) {
            try policy.effectiveExpiry(
                component: .plasma, collectedAt: Self.collected, originalExpiry: original,
                processes: [AppliedProcess(.thawing, at: Self.collected.addingTimeInterval(-Self.hour))])
        }
        #expect(throws: ExpiryError.self) {
            try policy.effectiveExpiry(
                component: .plasma, collectedAt: Self.collected, originalExpiry: original,
                processes: [AppliedProcess(.thawing, at: original.addingTimeInterval(Self.hour))])
        }
    }

    @Test("shelf-life plausibility bounds per component (UKBSQR; CFR610)",
          arguments: [(Component.redCells, 42.0, true), (.redCells, 49.0, true), (.redCells, 50.0, false),
                      (.platelets, 7.0, true), (.platelets, 8.0, false), (.plasma, 1096.0, true), (.plasma, 1100.0, false),
                      (.cryoprecipitate, 365.0, true), (.wholeBlood, 35.0, true), (.wholeBlood, 60.0, false), (.redCells, 0.0, false)])
    func plausibility(component: Component, days: Double, plausible: Bool) throws {
        let policy = try RulesFixture.loadPolicy()
        let result = Result { () throws(ExpiryError) in
            try policy.checkPlausibleDating(
                component: component, collectedAt: Self.collected, expiresAt: Self.collected.addingTimeInterval(days * Self.day))
        }
        #expect(((try? result.get()) != nil) == plausible)
    }
}
