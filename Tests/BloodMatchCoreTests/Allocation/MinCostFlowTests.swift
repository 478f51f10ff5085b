@testable import BloodMatchCore
import Testing

/// The flow solver against exhaustive search on small random assignment problems.
@Suite struct MinCostFlowTests {
    /// Best value of assigning units (capacity 1) to orders (demand q, reward r per unit) by
    /// trying every choice per unit: a reference that shares nothing with the solver.
    static func bruteForce(orders: [(quantity: Int, reward: Int64)], costs: [[Int64?]]) -> Int64 {
        let unitCount = costs.first?.count ?? 0
        var best: Int64 = 0
        var load = [Int](repeating: 0, count: orders.count)
        func visit(_ u: Int, _ value: Int64) {
            if u == unitCount { best = min(best, value); return }
            visit(u + 1, value)
            for o in orders.indices {
                guard let c = costs[o][u], load[o] < orders[o].quantity else { continue }
                load[o] += 1
                visit(u + 1, value + c - orders[o].reward)
                load[o] -= 1
            }
        }
        visit(0, 0)
        return best
    }

    @Test(arguments: 0..<60)
    func matchesExhaustiveSearch(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed) &* 7919 &+ 11)
        let orderCount = 1 + Int(rng.next() % 3)
        let unitCount = 1 + Int(rng.next() % 6)
        let orders = (0..<orderCount).map { _ in (quantity: 1 + Int(rng.next() % 3), reward: Int64(rng.next() % 120)) }
        let costs: [[Int64?]] = orders.map { _ in (0..<unitCount).map { _ in rng.next() % 3 == 0 ? nil : Int64(rng.next() % 100) - 10 } }
        var network = MinCostFlow(nodeCount: 2 + orderCount + unitCount)
        // Not serving a unit of demand forgoes its reward: an arc straight to the sink at that price.
        for (o, order) in orders.enumerated() { network.addArc(from: 2 + o, to: 1, capacity: order.quantity, cost: order.reward) }
        for o in 0..<orderCount {
            for u in 0..<unitCount { if let c = costs[o][u] { network.addArc(from: 2 + o, to: 2 + orderCount + u, capacity: 1, cost: c) } }
        }
        for u in 0..<unitCount { network.addArc(from: 2 + orderCount + u, to: 1, capacity: 1, cost: 0) }
        let (flow, cost) = network.solve(supplies: orders.indices.map { (2 + $0, orders[$0].quantity) }, sink: 1)
        let demand = orders.map(\.quantity).reduce(0, +)
        let rewards = orders.map { Int64($0.quantity) * $0.reward }.reduce(0, +)
        #expect(flow == demand)
        #expect(cost - rewards == Self.bruteForce(orders: orders, costs: costs))
    }

    @Test func leavesDemandUnservedWhenNoUnitPays() {
        // Supply 5 at node 2: a unit route costing 15 each, or unserved at 10 each.
        var network = MinCostFlow(nodeCount: 4)
        let unserved = network.addArc(from: 2, to: 1, capacity: 5, cost: 10)
        let route = network.addArc(from: 2, to: 3, capacity: 5, cost: 15)
        _ = network.addArc(from: 3, to: 1, capacity: 5, cost: 0)
        let (flow, cost) = network.solve(supplies: [(2, 5)], sink: 1)
        #expect(flow == 5 && cost == 50 && network.flow(on: unserved) == 5 && network.flow(on: route) == 0)
    }

    @Test func reroutesAnEarlierOrderWhenALaterOneHasNoAlternative() {
        // Order A (node 2) can use unit X (4, cost 1) or Y (5, cost 2); order B (node 3) only X
        // (cost 1). Searching from A first takes X; B's search must move A to Y: total 3.
        var network = MinCostFlow(nodeCount: 6)
        for o in [2, 3] { network.addArc(from: o, to: 1, capacity: 1, cost: 1000) }
        let ax = network.addArc(from: 2, to: 4, capacity: 1, cost: 1)
        let ay = network.addArc(from: 2, to: 5, capacity: 1, cost: 2)
        let bx = network.addArc(from: 3, to: 4, capacity: 1, cost: 1)
        for u in [4, 5] { network.addArc(from: u, to: 1, capacity: 1, cost: 0) }
        let (flow, cost) = network.solve(supplies: [(2, 1), (3, 1)], sink: 1)
        #expect(flow == 2 && cost == 3)
        #expect(network.flow(on: ax) == 0 && network.flow(on: ay) == 1 && network.flow(on: bx) == 1)
    }
}
