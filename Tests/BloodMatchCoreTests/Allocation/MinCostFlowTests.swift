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
        for (o, order) in orders.enumerated() { network.addArc(from: 0, to: 2 + o, capacity: order.quantity, cost: -order.reward) }
        for o in 0..<orderCount {
            for u in 0..<unitCount { if let c = costs[o][u] { network.addArc(from: 2 + o, to: 2 + orderCount + u, capacity: 1, cost: c) } }
        }
        for u in 0..<unitCount { network.addArc(from: 2 + orderCount + u, to: 1, capacity: 1, cost: 0) }
        let (_, cost) = network.solve(source: 0, sink: 1)
        #expect(cost == Self.bruteForce(orders: orders, costs: costs))
    }

    @Test func stopsWhenNoPathPays() {
        var network = MinCostFlow(nodeCount: 3)
        let a = network.addArc(from: 0, to: 2, capacity: 5, cost: -10)
        let b = network.addArc(from: 2, to: 1, capacity: 5, cost: 15)
        let (flow, cost) = network.solve(source: 0, sink: 1)
        #expect(flow == 0 && cost == 0 && network.flow(on: a) == 0 && network.flow(on: b) == 0)
    }
}
