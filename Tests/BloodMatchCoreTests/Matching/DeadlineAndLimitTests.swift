@testable import BloodMatchCore
import Foundation
import Testing

/// Time ceilings and needed-by (Data/SOURCES.md §S27), the low-titre whole-blood limit (§S5) and
/// neonatal CMV-seronegative units (§S8), on hand-built stock with the policy in force.
@Suite("Deadlines, late units and per-request limits in live matches")
struct DeadlineAndLimitTests {
    typealias Bands = PreferenceBandTests
    static let now = Bands.now

    static func unit(_ n: Int, _ group: BloodGroup, _ component: Component, at site: String, _ attributes: AttributeSet = []) -> InventoryUnit {
        InventoryUnit(din: try! DonationNumber(parsing: MatcherFixture.dinText(n)), productCode: "E0382V00", component: component,
                      group: group, collectedAt: Date(timeIntervalSince1970: Double(now - 2 * 86_400)),
                      expiresAt: Date(timeIntervalSince1970: Double(now + 20 * 86_400)), siteID: site, status: .available, attributes: attributes)
    }

    /// The decision the policy in force gives for `request` over `units`.
    static func decide(_ request: MatchRequest, _ centres: [IndexedCentre], _ units: [InventoryUnit]) throws -> MatchDecision {
        let planner = MatchPlanner(rules: try RulesFixture.loadPolicy(), settings: .standard)
        let index = InventoryIndex(centres: centres, units: units, builtAt: Date(timeIntervalSince1970: Double(now)))
        let (query, refused, notes) = planner.query(for: request, destination: Bands.destination)
        let match = planner.matcher(for: index).match(query, now: now)
        return planner.decision(id: UUID(), request: request, destination: Bands.destination, query: query, refused: refused, notes: notes,
                                match: match, index: index, now: Date(timeIntervalSince1970: Double(now)))
    }

    static func request(_ component: Component, _ group: BloodGroup?, quantity: Int = 1, urgency: Urgency = .emergency,
                        context: RecipientContext = .adultMale, neededInMinutes: Double? = nil) -> MatchRequest {
        MatchRequest(requestID: "t", hospitalID: nil, destination: Bands.destination, component: component,
                     recipient: Recipient(group: group, context: context), quantity: quantity, requirements: [], urgency: urgency,
                     neededBy: neededInMinutes.map { Date(timeIntervalSince1970: Double(now) + $0 * 60) })
    }

    @Test("Emergency (ceiling 60 min): the band from an O-negative unit at 55 min ends at 60, so the A+ unit at 62 min does not displace it; it comes next, marked late")
    func bandEndsAtTheDeadline() throws {
        let d = try Self.decide(Self.request(.redCells, BloodGroup(.A, .positive), quantity: 2),
                                [Bands.centre("IN", minutesAway: 55), Bands.centre("LATE", minutesAway: 62)],
                                [Self.unit(1, .oNegative, .redCells, at: "IN"), Self.unit(2, BloodGroup(.A, .positive), .redCells, at: "LATE")])
        #expect(d.chosen.map(\.centreID) == ["IN", "LATE"])
        #expect(d.chosen.map(\.late) == [false, true])
        #expect(d.outcome == .fulfilled && d.arrivalDeadlineMinutes == 60)
        #expect(d.summary.contains("1 LATE"), "\(d.summary)")
        // Both in time (45 and 52 min): the recipient's own group wins inside the band.
        let inTime = try Self.decide(Self.request(.redCells, BloodGroup(.A, .positive)),
                                     [Bands.centre("IN", minutesAway: 45), Bands.centre("OWN", minutesAway: 52)],
                                     [Self.unit(1, .oNegative, .redCells, at: "IN"), Self.unit(2, BloodGroup(.A, .positive), .redCells, at: "OWN")])
        #expect(inTime.chosen.map(\.centreID) == ["OWN"] && inTime.chosen.first?.late == false)
    }

    @Test("Every unit found arrives after the deadline: the outcome is late, never fulfilled")
    func allLateIsLate() throws {
        let d = try Self.decide(Self.request(.redCells, BloodGroup(.A, .positive)), [Bands.centre("FAR", minutesAway: 90)],
                                [Self.unit(1, BloodGroup(.A, .positive), .redCells, at: "FAR")])
        #expect(d.outcome == .late && d.chosen.count == 1 && d.chosen[0].late == true)
        #expect(d.summary.contains("LATE") && d.summary.contains("emergency time ceiling (60 min)"), "\(d.summary)")
    }

    @Test("needed_by sooner than the ceiling is the deadline; one already past makes every unit late")
    func neededByTightensTheDeadline() throws {
        let centres = [Bands.centre("A", minutesAway: 40), Bands.centre("B", minutesAway: 50)]
        let units = [Self.unit(1, BloodGroup(.A, .positive), .redCells, at: "A"), Self.unit(2, BloodGroup(.A, .positive), .redCells, at: "B")]
        let d = try Self.decide(Self.request(.redCells, BloodGroup(.A, .positive), quantity: 2, urgency: .routine, neededInMinutes: 45), centres, units)
        #expect(d.arrivalDeadlineMinutes == 45)
        #expect(d.chosen.map(\.late) == [false, true] && d.outcome == .fulfilled)
        let past = try Self.decide(Self.request(.redCells, BloodGroup(.A, .positive), urgency: .routine, neededInMinutes: -10), centres, units)
        #expect(past.outcome == .late && past.summary.contains("already 10 min past"), "\(past.summary)")
    }

    @Test("Low-titre group O whole blood for an A+ emergency: at most 2 per request (HEMATOS), then only the recipient's own group")
    func lowTitreWholeBloodLimit() throws {
        let lowTitre = AttributeSet(.lowTitre)
        let units = (1...5).map { Self.unit($0, .oNegative, .wholeBlood, at: "NEAR", lowTitre) }
            + [Self.unit(6, BloodGroup(.A, .positive), .wholeBlood, at: "NEAR")]
        let d = try Self.decide(Self.request(.wholeBlood, BloodGroup(.A, .positive), quantity: 4), [Bands.centre("NEAR", minutesAway: 30)], units)
        #expect(d.rulesApplied.contains { $0.group.abo == .O && $0.maximumUnits == 2 && $0.rule.contains("at most 2 per request") })
        #expect(d.chosen.count == 3 && d.outcome == .partial)
        #expect(d.chosen.filter { $0.group.abo == .O }.count == 2 && d.chosen.first?.group == BloodGroup(.A, .positive))
        #expect(d.rejected.contains { $0.detail.contains("at most 2 unit(s) of this kind per request") }, "\(d.rejected)")
        // A group O recipient's identical whole blood is not limited.
        let o = try Self.decide(Self.request(.wholeBlood, .oNegative, quantity: 4), [Bands.centre("NEAR", minutesAway: 30)], units)
        #expect(o.chosen.count == 4 && o.rulesApplied.allSatisfy { $0.maximumUnits == nil })
    }

    @Test("A neonate's red cells are CMV-seronegative: a plain unit nearer is passed over (LB-CMV)")
    func neonateGetsCMVNegative() throws {
        let d = try Self.decide(Self.request(.redCells, .oNegative, context: RecipientContext(ageYears: 0, isNeonate: true)),
                                [Bands.centre("NEAR", minutesAway: 30), Bands.centre("FAR", minutesAway: 45)],
                                [Self.unit(1, .oNegative, .redCells, at: "NEAR"), Self.unit(2, .oNegative, .redCells, at: "FAR", AttributeSet(.cmvNegative))])
        #expect(d.chosen.map(\.centreID) == ["FAR"])
        #expect(d.requirementNotes.contains { $0.contains("CMV_NEG added: the recipient is a neonate") && $0.contains("LB-CMV") })
    }

    @Test("Settings files must state a time ceiling for every urgency, non-decreasing from emergency to routine")
    func ceilingsAreRequired() throws {
        let text = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../Data/matching.json").standardized, encoding: .utf8)
        #expect(try MatchingSettings(jsonData: Data(text.utf8)).timeCeilingMinutes == [.emergency: 60, .urgent: 240, .routine: 1440])
        let missing = text.replacingOccurrences(of: #""timeCeilingMinutes""#, with: #""unused""#)
        #expect { try MatchingSettings(jsonData: Data(missing.utf8)) } throws: { "\($0)".contains("timeCeilingMinutes has no value for emergency") }
        let falling = text.replacingOccurrences(of: #""routine": 1440"#, with: #""routine": 30"#)
        #expect { try MatchingSettings(jsonData: Data(falling.utf8)) } throws: { "\($0)".contains("must not fall") }
    }
}
