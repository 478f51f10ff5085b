@testable import BloodMatchCore
import Foundation
import Testing

/// The live matcher's band rule and time ceilings in batch plans (Data/SOURCES.md §S26, §S27,
/// §S30): no allocated unit while a better-ranked unit eligible for its order, arriving within its
/// band, is left free; no late unit while one that could arrive by the deadline is left free.
@Suite struct BatchStewardshipTests {
    static let now = BatchOptimiserTests.now

    /// The optimiser with a shipment charge high enough that saving a courier run tempts it.
    static func optimiser(shipmentCost: Double = 120) throws -> BatchOptimiser {
        var settings = BatchSettings.standard
        settings.shipmentCostMinutes = shipmentCost
        return BatchOptimiser(planner: MatchPlanner(rules: try RulesFixture.loadPolicy(), settings: .standard), settings: settings)
    }

    @Test("An urgent B− order gets B− red cells 17 min farther, not O− from a centre that ships to its hospital anyway")
    func oNegativeIsNotSpentToSaveACourierRun() throws {
        let optimiser = try Self.optimiser()
        let hospital = GeoPoint(latitude: -33.87, longitude: 151.21)
        // DC-A 100 km south (ETA 141 min), DC-B 117 km north (ETA 158 min).
        let centres = BatchOptimiserTests.twoCentres(GeoPoint(latitude: -33.87 - 100 / 111.2, longitude: 151.21),
                                                     GeoPoint(latitude: -33.87 + 117 / 111.2, longitude: 151.21))
        let units = try (1...3).map { try BatchOptimiserTests.redCells($0, "DC-A", .oNegative) }
            + (4...6).map { try BatchOptimiserTests.redCells($0, "DC-A") }
            + (7...8).map { try BatchOptimiserTests.redCells($0, "DC-B", BloodGroup(.B, .negative)) }
        let index = InventoryIndex(centres: centres, units: units, builtAt: Self.now)
        let orders = [
            BatchOrder(orderID: "A-POS", hospitalID: "H1", destination: hospital, component: .redCells,
                       recipient: Recipient(group: BloodGroup(.A, .positive), context: .adultMale), quantity: 2, urgency: .routine, placedAt: Self.now),
            BatchOrder(orderID: "B-NEG", hospitalID: "H1", destination: hospital, component: .redCells,
                       recipient: Recipient(group: BloodGroup(.B, .negative), context: .adultMale), quantity: 1, urgency: .urgent, placedAt: Self.now),
        ]
        let (plan, graph) = optimiser.planWithGraph(orders: orders, index: index, excluded: [], now: Self.now)
        // Without the rule the optimiser takes O− from DC-A (2 × (141 + 60 rank penalty) = 402 min
        // against 2 × 158 + a 120-min courier run = 436 min): the case is real.
        let unruled = optimiser.optimise(graph).chosen.filter { graph.orders[graph.edges[$0].order].orderID == "B-NEG" }
        #expect(unruled.map { graph.edges[$0].proposal.group } == [.oNegative])
        #expect(plan.stewardshipBreachesRepaired == 1)
        let mine = try #require(plan.allocations.first { $0.orderID == "B-NEG" })
        #expect(mine.unit.group == BloodGroup(.B, .negative) && mine.unit.centreID == "DC-B")
        #expect(mine.rationale.contains("stewardship: in place of") && mine.rationale.contains("§S30"), "\(mine.rationale)")
        #expect(plan.allocations.filter { $0.orderID == "A-POS" }.allSatisfy { $0.unit.group == BloodGroup(.A, .positive) })
        #expect(plan.provenOptimal == false || plan.cost.totalMinutes <= (plan.lowerBoundMinutes ?? 0) + 0.01)
    }

    @Test("A routine order with no needed-by whose only units are 38 h away is served late against the 24-h ceiling, and says so")
    func routineCeilingMakesFarUnitsLate() throws {
        let optimiser = try Self.optimiser()
        let hospital = GeoPoint(latitude: -33.87, longitude: 151.21)
        // 2,000 km: 2000 × 1.3 / 70 × 60 + 30 = 2,258.6 min.
        let far = GeoPoint(latitude: -33.87 + 2000 / 111.2, longitude: 151.21)
        let centres = BatchOptimiserTests.twoCentres(far, GeoPoint(latitude: far.latitude + 0.01, longitude: far.longitude))
        let units = try (1...2).map { try BatchOptimiserTests.redCells($0, "DC-A") }
        let order = BatchOrder(orderID: "FAR", hospitalID: "H1", destination: hospital, component: .redCells,
                               recipient: Recipient(group: BloodGroup(.A, .positive), context: .adultMale), quantity: 1,
                               urgency: .routine, placedAt: Self.now)
        let plan = optimiser.plan(orders: [order], index: InventoryIndex(centres: centres, units: units, builtAt: Self.now), excluded: [], now: Self.now)
        let allocation = try #require(plan.allocations.first)
        #expect(allocation.unit.late == true)
        #expect(abs(allocation.lateMinutes - (allocation.unit.etaMinutes - 1440)) < 0.01 && allocation.lateMinutes > 800)
        #expect(allocation.rationale.contains("LATE: arrives after the deadline"), "\(allocation.rationale)")
        let outcome = try #require(plan.outcomes.first)
        #expect(outcome.status == .allocated)
        #expect(outcome.reason?.contains("LATE: arriving after the routine time ceiling (1440 min)") == true, "\(outcome.reason ?? "")")
    }

    /// The rules written out: for an allocation of a unit with rank r and ETA e to an order with
    /// band tolerance t and deadline D (its urgency's ceiling, or needed-by when sooner), a free
    /// unit of the order's full list (every eligible unit) with rank < r arriving by e + t (by D
    /// when e ≤ D), or arriving by D when e > D, breaks them.
    static func breaches(orders: [BatchOrder], allocations: [(orderID: String, unit: ProposedUnit)], full: BatchCandidateGraph,
                         settings: MatchingSettings, now: Date) -> [String] {
        let used = Set(allocations.map(\.unit.key))
        var out: [String] = []
        for (orderID, unit) in allocations {
            guard let o = full.orders.firstIndex(where: { $0.orderID == orderID }) else { out.append("\(orderID): unknown order"); continue }
            let order = orders[o]
            let tolerance = settings.preferenceBandMinutes[order.urgency] ?? 0
            var deadline = settings.timeCeilingMinutes[order.urgency] ?? .infinity
            if let needed = order.neededBy { deadline = min(deadline, (needed.timeIntervalSince1970 - now.timeIntervalSince1970) / 60) }
            deadline = max(0, deadline)
            let end = unit.etaMinutes <= deadline ? min(unit.etaMinutes + tolerance, deadline) : unit.etaMinutes + tolerance
            for e in full.edgesByOrder[o] {
                let other = full.edges[e].proposal
                guard !used.contains(other.key) else { continue }
                if other.rank < unit.rank && other.etaMinutes <= end {
                    out.append("\(orderID) (\(order.urgency.rawValue)): \(unit.din) rank \(unit.rank) at \(Int(unit.etaMinutes)) min while \(other.din) rank \(other.rank) at \(Int(other.etaMinutes)) min is free")
                } else if unit.etaMinutes > deadline && other.etaMinutes <= deadline {
                    out.append("\(orderID) (\(order.urgency.rawValue)): \(unit.din) late at \(Int(unit.etaMinutes)) min (deadline \(Int(deadline))) while \(other.din) at \(Int(other.etaMinutes)) min is free")
                }
            }
        }
        return out
    }

    @Test("Twelve generated batches: no plan breaks the band rule or the deadline over every eligible unit; the optimiser's plans before the repair do")
    func generatedPlansKeepTheRules() throws {
        var planBreaches: [String] = []
        var unruledBreaches = 0
        var repaired = 0
        var allocations = 0
        for seed in UInt64(1)...12 {
            let optimiser = try Self.optimiser(shipmentCost: [120, 240, 480][Int(seed % 3)])
            let scenario = BatchScenario.generate(seed: 700 + seed, centres: 5, hospitals: 3, units: 220, orders: 16, maximumQuantity: 3,
                                                  spreadKm: [150, 300, 600][Int(seed / 3 % 3)])
            let full = optimiser.candidateGraph(orders: scenario.orders, index: scenario.index, excluded: [], now: scenario.now) { _ in 100_000 }
            let (plan, graph) = optimiser.planWithGraph(orders: scenario.orders, index: scenario.index, excluded: [], now: scenario.now)
            allocations += plan.allocations.count
            repaired += plan.stewardshipBreachesRepaired ?? 0
            planBreaches += Self.breaches(orders: scenario.orders, allocations: plan.allocations.map { ($0.orderID, $0.unit) }, full: full,
                                          settings: optimiser.planner.settings, now: scenario.now)
            let unruled = optimiser.optimise(graph).chosen.map { (orderID: graph.orders[graph.edges[$0].order].orderID, unit: graph.edges[$0].proposal) }
            unruledBreaches += Self.breaches(orders: scenario.orders, allocations: unruled, full: full, settings: optimiser.planner.settings,
                                             now: scenario.now).count
            // The claims stay true: the bound is below the cost.
            #expect((plan.lowerBoundMinutes ?? .infinity) <= plan.cost.totalMinutes + 0.01)
        }
        print(#"{"batch_stewardship":{"allocations":\#(allocations),"plan_breaches":\#(planBreaches.count),"repaired":\#(repaired),"unrepaired_optimiser_breaches":\#(unruledBreaches)}}"#)
        #expect(planBreaches.isEmpty, "\(planBreaches.count): \(planBreaches.prefix(5))")
        #expect(unruledBreaches > 0 && repaired > 0, "the scenarios never tempt the optimiser: the test shows nothing")
    }
}

extension BatchStewardshipTests {
    @Test("A repair that frees a unit refills a short order without taking low-titre group O whole blood past 2 per request, counting the one it holds")
    func refillKeepsTheLowTitreLimit() throws {
        let optimiser = try Self.optimiser()
        let hospital = GeoPoint(latitude: -33.87, longitude: 151.21)
        // DC-A 20 km away (ETA 52 min, within the 60-min emergency ceiling), DC-B 100 km (141 min, late).
        let centres = BatchOptimiserTests.twoCentres(GeoPoint(latitude: -33.87 - 20 / 111.2, longitude: 151.21),
                                                     GeoPoint(latitude: -33.87 + 100 / 111.2, longitude: 151.21))
        let aPos = BloodGroup(.A, .positive)
        let units = try (1...4).map { try BatchOptimiserTests.wholeBlood($0, "DC-A", .oNegative, AttributeSet(.lowTitre)) }
            + [try BatchOptimiserTests.wholeBlood(5, "DC-A", aPos), try BatchOptimiserTests.wholeBlood(6, "DC-B", aPos)]
        let index = InventoryIndex(centres: centres, units: units, builtAt: Self.now)
        let order = BatchOrder(orderID: "WB-A", hospitalID: "H1", destination: hospital, component: .wholeBlood,
                               recipient: Recipient(group: aPos, context: .adultMale), quantity: 4, urgency: .emergency, placedAt: Self.now)
        let graph = optimiser.candidateGraph(orders: [order], index: index, excluded: [], now: Self.now) { _ in 100 }
        let proposals = Dictionary(uniqueKeysWithValues: graph.edges.map { ($0.proposal.din, $0.proposal) })
        // Held: one low-titre O unit, and the late A+ unit at DC-B while DC-A's A+ unit is free.
        let held = try [BatchScenario.din(1), BatchScenario.din(6)].map { try #require(proposals[$0]) }
        let (repaired, replaced, _) = optimiser.steward(orders: [order], allocations: held.map { (0, $0) }, index: index, excluded: [],
                                                        now: Int64(Self.now.timeIntervalSince1970))
        #expect(!replaced.isEmpty)
        let lowTitre = repaired.filter { $0.unit.group.abo == .O }.count
        #expect(lowTitre <= 2, "\(repaired.map { "\($0.unit.din) \($0.unit.group)" })")
        #expect(repaired.count == 4 && Set(repaired.map(\.unit.key)).count == 4)
    }
}
