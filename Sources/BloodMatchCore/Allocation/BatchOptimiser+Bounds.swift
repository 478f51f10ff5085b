import Foundation

/// Lower bounds: the relaxation with shipment charges spread per unit, branch and bound over the
/// shipments, and the bound over the whole problem (every eligible unit, beyond each cut list).
extension BatchOptimiser {
    /// Per-unit charges that spread each pair's shipment charge over the most units it could carry
    /// (its distinct candidate units, at most its hospital's demand), rounded down. A flow priced
    /// with them never costs more than any allocation's true cost (a used pair carries at most
    /// that many units, so it is charged at most the full charge): its value is a lower bound.
    func relaxedCharges(_ graph: BatchCandidateGraph) -> [Int: Int64] {
        var demand: [Int: Int] = [:]
        for (o, order) in graph.orders.enumerated() { demand[graph.orderHospital[o], default: 0] += order.quantity }
        var unitsOfPair: [Int: Set<Int>] = [:]
        for edge in graph.edges { unitsOfPair[edge.shipment, default: []].insert(edge.unit) }
        let h = max(1, graph.hospitals.count)
        var charges: [Int: Int64] = [:]
        for (pair, units) in unitsOfPair {
            charges[pair] = shipmentCharge / Int64(max(1, min(units.count, demand[pair % h] ?? 1)))
        }
        return charges
    }

    /// Value of chosen edges when pairs in `linear` are charged per unit and pairs in `open` once.
    func relaxedValue(_ graph: BatchCandidateGraph, _ chosen: [Int], linear: [Int: Int64], open: Int) -> Int64 {
        var total = Int64(open) * shipmentCharge
        var filled = [Int](repeating: 0, count: graph.orders.count)
        for e in chosen {
            total += graph.edges[e].cost + (linear[graph.edges[e].shipment] ?? 0)
            filled[graph.edges[e].order] += 1
        }
        for (o, order) in graph.orders.enumerated() { total += Int64(order.quantity - filled[o]) * penalty(order.urgency) }
        return total
    }

    /// Branch and bound over the centre → hospital pairs: each pair is open (charged once),
    /// closed (not usable) or undecided (charged per unit as in `relaxedCharges`); the flow over
    /// open and undecided pairs bounds every allocation below the node, and is itself an
    /// allocation whose true cost updates the incumbent. Stops after `nodeLimit` flows. Returns
    /// the best allocation, whether it was proven optimal, and the lower bound proven (the root
    /// bound when the search stopped early, else the optimum).
    func branchAndBound(_ graph: BatchCandidateGraph, incumbent: [Int], nodeLimit: Int) -> (chosen: [Int], proven: Bool, bound: Int64, nodes: Int) {
        let charges = relaxedCharges(graph)
        var best = incumbent
        var bestValue = objective(graph, incumbent)
        var nodes = 0
        var rootBound = Int64.min
        var exhausted = true
        // Depth-first; a node is (open pairs, closed pairs).
        var stack: [(open: Set<Int>, closed: Set<Int>)] = [([], [])]
        let all = Set(charges.keys)
        while let node = stack.popLast() {
            if nodes >= nodeLimit { exhausted = false; break }
            nodes += 1
            var linear = charges
            for p in node.open { linear[p] = 0 }
            let allowed = all.subtracting(node.closed)
            let chosen = solveFlow(graph, linear: linear, allowed: allowed)
            let bound = relaxedValue(graph, chosen, linear: linear, open: node.open.count)
            if nodes == 1 { rootBound = bound }
            let value = objective(graph, chosen)
            if value < bestValue { best = chosen; bestValue = value }
            guard bound < bestValue else { continue }
            // Branch on the undecided pair the bound under-charges most (charge − charged).
            var load: [Int: Int] = [:]
            for e in chosen where !node.open.contains(graph.edges[e].shipment) { load[graph.edges[e].shipment, default: 0] += 1 }
            guard let pair = load.min(by: { (charges[$0.key]! * Int64($0.value), $0.key) < (charges[$1.key]! * Int64($1.value), $1.key) })?.key else { continue }
            // Explore "open" last-pushed so it is tried first.
            stack.append((node.open, node.closed.union([pair])))
            stack.append((node.open.union([pair]), node.closed))
        }
        return (best, exhausted, exhausted ? bestValue : rootBound, nodes)
    }

    /// A bound in the units of `BatchCost.totalMinutes` (unit costs plus shipment charges,
    /// unserved demand apart): `bound` less the unserved penalties of `chosen`. It bounds every
    /// allocation whose unserved penalties are no larger than the plan's, i.e. every allocation
    /// serving as much as the plan does.
    func boundExcludingUnserved(_ graph: BatchCandidateGraph, _ bound: Int64, chosen: [Int]) -> Double {
        var filled = [Int](repeating: 0, count: graph.orders.count)
        for e in chosen { filled[graph.edges[e].order] += 1 }
        var penalties: Int64 = 0
        for (o, order) in graph.orders.enumerated() { penalties += Int64(order.quantity - filled[o]) * penalty(order.urgency) }
        return Double(bound - penalties) / Self.scale
    }

    /// A lower bound on every allocation of the whole problem (every eligible unit, not only the
    /// candidates), in hundredths of a minute with unserved penalties, and the orders whose
    /// beyond-the-cut arc carried flow (where a wider list may pay); nil when no list was cut
    /// (the candidate graph is then the whole problem).
    ///
    /// The network is the root relaxation of `branchAndBound` (each shipment charge spread over
    /// the most units the pair could carry, `relaxedCharges`) plus, for each order whose list was
    /// cut, an arc straight to the sink at `beyondCost`: no unit beyond the cut costs less (its
    /// score is no lower than the cut's, lateness only adds, the wastage credit takes at most what
    /// a unit arriving with the minimum remaining life earns, `maximumWastageCredit`), its
    /// shipment is charged nothing and units are not limited. Every
    /// allocation of the whole problem maps into this network at no more than its true cost, so
    /// the minimum-cost flow bounds them all (Data/SOURCES.md §S28).
    func wholeProblemBound(_ graph: BatchCandidateGraph) -> (bound: Int64, beyondUsed: [Int])? {
        guard graph.beyondCost.contains(where: { $0 != nil }) else { return nil }
        let charges = relaxedCharges(graph)
        let orderBase = 2
        let unitBase = orderBase + graph.orders.count
        var network = MinCostFlow(nodeCount: unitBase + graph.units.count)
        var supplies: [(node: Int, amount: Int)] = []
        var certain: Int64 = 0
        var beyondArc: [Int: Int] = [:]
        for (o, order) in graph.orders.enumerated() {
            guard !graph.edgesByOrder[o].isEmpty else {
                // No eligible unit at all: unserved whatever is done.
                certain += Int64(order.quantity) * penalty(order.urgency)
                continue
            }
            network.addArc(from: orderBase + o, to: 1, capacity: order.quantity, cost: penalty(order.urgency))
            if let beyond = graph.beyondCost[o] {
                beyondArc[o] = network.addArc(from: orderBase + o, to: 1, capacity: order.quantity, cost: beyond)
            }
            supplies.append((orderBase + o, order.quantity))
        }
        for edge in graph.edges {
            network.addArc(from: orderBase + edge.order, to: unitBase + edge.unit, capacity: 1, cost: edge.cost + (charges[edge.shipment] ?? 0))
        }
        for u in graph.units.indices { network.addArc(from: unitBase + u, to: 1, capacity: 1, cost: 0) }
        let (_, cost) = network.solve(supplies: supplies, sink: 1)
        return (cost + certain, beyondArc.filter { network.flow(on: $0.value) > 0 }.map(\.key).sorted())
    }
}
