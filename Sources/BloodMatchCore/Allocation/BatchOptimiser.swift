import Foundation

/// Batch allocation of pending orders: minimum-cost flow over the candidate graph, with the fixed
/// shipment charge handled by slope scaling and a local search, and a greedy baseline.
///
/// The flow network gives each order a supply of its quantity, routed either order → unit
/// (capacity 1, cost of the pair plus the linearised shipment charge) → sink (capacity 1), or
/// order → sink directly at the unserved penalty of its urgency. The minimum-cost flow never
/// gives a unit twice, fills orders before it minimises cost, and serves emergency before urgent
/// before routine (the penalties are orders of magnitude apart). The shipment charge is a fixed cost per (centre, hospital) pair used, which
/// a flow cannot express; slope scaling (Kim and Pardalos, *Oper. Res. Lett.* 24, 1999) re-costs
/// each pair at charge ÷ units it carried in the previous round, the best plan by the true cost is
/// kept, and a local search then closes shipments whose units can move to already-open shipments
/// for less than the charge. Pure: `now` is passed in.
public struct BatchOptimiser: Sendable {
    /// Rules, matching settings and travel times (the same as live matches).
    public let planner: MatchPlanner

    /// Objective weights.
    public let settings: BatchSettings

    /// Creates an optimiser.
    public init(planner: MatchPlanner, settings: BatchSettings = .standard) {
        self.planner = planner
        self.settings = settings
    }

    static let scale = 100.0

    func penalty(_ urgency: Urgency) -> Int64 {
        Int64(((settings.unservedPenaltyMinutes[urgency] ?? 1e5) * Self.scale).rounded())
    }

    var shipmentCharge: Int64 { Int64((settings.shipmentCostMinutes * Self.scale).rounded()) }

    /// The minimum-cost flow with each shipment pair charged `linear[pair]` per unit; returns the
    /// chosen edge ids.
    func solveFlow(_ graph: BatchCandidateGraph, linear: [Int: Int64], allowed: Set<Int>? = nil) -> [Int] {
        let orderBase = 2
        let unitBase = orderBase + graph.orders.count
        var network = MinCostFlow(nodeCount: unitBase + graph.units.count)
        var supplies: [(node: Int, amount: Int)] = []
        for (o, order) in graph.orders.enumerated() where !graph.edgesByOrder[o].isEmpty {
            // The price of leaving a unit of the order unserved.
            network.addArc(from: orderBase + o, to: 1, capacity: order.quantity, cost: penalty(order.urgency))
            supplies.append((orderBase + o, order.quantity))
        }
        var arcOfEdge = [Int](repeating: -1, count: graph.edges.count)
        for (i, edge) in graph.edges.enumerated() {
            if let allowed, !allowed.contains(edge.shipment) { continue }
            arcOfEdge[i] = network.addArc(from: orderBase + edge.order, to: unitBase + edge.unit, capacity: 1,
                                          cost: edge.cost + (linear[edge.shipment] ?? 0))
        }
        for u in graph.units.indices { network.addArc(from: unitBase + u, to: 1, capacity: 1, cost: 0) }
        _ = network.solve(supplies: supplies, sink: 1)
        return graph.edges.indices.filter { arcOfEdge[$0] >= 0 && network.flow(on: arcOfEdge[$0]) > 0 }
    }

    /// The true objective of a set of chosen edges, in hundredths of a minute: unit costs,
    /// shipment charges and unserved penalties.
    func objective(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> Int64 {
        var total: Int64 = 0
        var pairs = Set<Int>()
        var filled = [Int](repeating: 0, count: graph.orders.count)
        for e in chosen {
            total += graph.edges[e].cost
            pairs.insert(graph.edges[e].shipment)
            filled[graph.edges[e].order] += 1
        }
        total += Int64(pairs.count) * shipmentCharge
        for (o, order) in graph.orders.enumerated() { total += Int64(order.quantity - filled[o]) * penalty(order.urgency) }
        return total
    }

    func cost(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> BatchCost {
        var unitCost: Int64 = 0
        var pairs = Set<Int>()
        var filled = [Int](repeating: 0, count: graph.orders.count)
        for e in chosen {
            unitCost += graph.edges[e].cost
            pairs.insert(graph.edges[e].shipment)
            filled[graph.edges[e].order] += 1
        }
        var unserved: [Urgency: Int] = [:]
        for urgency in Urgency.allCases { unserved[urgency] = 0 }
        for (o, order) in graph.orders.enumerated() { unserved[order.urgency, default: 0] += order.quantity - filled[o] }
        return BatchCost(unitMinutes: Double(unitCost) / Self.scale, shipments: pairs.count,
                         shipmentMinutes: Double(pairs.count) * settings.shipmentCostMinutes, unserved: unserved)
    }

    /// Optimises a graph: slope-scaled flow, then the shipment-closing local search, then a refill
    /// of short orders (most urgent first) from units the local search freed.
    /// The outcome of `optimise`.
    public struct Optimised: Sendable {
        /// Chosen edge ids.
        public var chosen: [Int]
        /// Slope-scaling rounds run.
        public var rounds: Int
        /// Shipments closed by the local searches.
        public var closed: Int
        /// A proven lower bound on the cost of any allocation over the candidate graph, in
        /// hundredths of a minute (the optimum itself when `provenOptimal`).
        public var lowerBound: Int64
        /// Whether branch and bound proved `chosen` optimal over the candidate graph.
        public var provenOptimal: Bool
    }

    /// Optimises a graph: slope-scaled flow, the local searches, a refill of short orders, then
    /// branch and bound over the shipments on graphs small enough (`exactSearchEdgeLimit`), else
    /// the root bound alone, so every plan states how far from the optimum it can at most be.
    public func optimise(_ graph: BatchCandidateGraph) -> Optimised {
        let heuristic = heuristicOptimise(graph)
        if graph.edges.count <= settings.exactSearchEdgeLimit {
            let exact = branchAndBound(graph, incumbent: heuristic.chosen, nodeLimit: settings.exactSearchNodeLimit)
            return Optimised(chosen: exact.chosen, rounds: heuristic.rounds, closed: heuristic.closed,
                             lowerBound: exact.bound, provenOptimal: exact.proven)
        }
        let root = branchAndBound(graph, incumbent: heuristic.chosen, nodeLimit: 1)
        return Optimised(chosen: root.chosen, rounds: heuristic.rounds, closed: heuristic.closed,
                         lowerBound: root.bound, provenOptimal: root.proven)
    }

    func heuristicOptimise(_ graph: BatchCandidateGraph) -> (chosen: [Int], rounds: Int, closed: Int) {
        let (flow, rounds) = scaledFlow(graph)
        var global = globalSearch(graph, flow).chosen
        if graph.edges.count <= settings.globalSearchEdgeLimit {
            // More starts on small graphs: every pair open, and greedy's pairs.
            for start in [solveFlow(graph, linear: [:]), greedy(graph)] {
                let other = globalSearch(graph, start).chosen
                if objective(graph, other) < objective(graph, global) { global = other }
            }
        }
        let (searched, closedBySearch) = hospitalSearch(graph, global)
        let (moved, closed) = closeShipments(graph, searched)
        let improved = refill(graph, moved)
        return objective(graph, improved) <= objective(graph, flow) ? (improved, rounds, closed + closedBySearch) : (flow, rounds, 0)
    }

    /// The greedy baseline's chosen edges on a graph.
    public func greedyChoice(_ graph: BatchCandidateGraph) -> [Int] { greedy(graph) }

    /// The true objective of chosen edges, in minutes (unserved demand included at its penalty).
    public func objectiveMinutes(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> Double {
        Double(objective(graph, chosen)) / Self.scale
    }
}
