import Foundation

/// The candidate graph of a batch: every order, the units the rules allow for it, and the cost of
/// each (order, unit) pair.
///
/// Candidates come from the spatial index through the live matcher (`UnitMatcher` with the
/// planner's `MatchRules`), so every edge satisfies exactly the rules a live match applies:
/// ABO/RhD compatibility and rank, special requirements, unit age, remaining life at arrival, and
/// excluded (reserved) units.
public struct BatchCandidateGraph: Sendable {
    /// One (order, unit) pair the rules allow.
    public struct Edge: Sendable, Hashable {
        /// Order position in `orders`.
        public var order: Int
        /// Unit position in `units`.
        public var unit: Int
        /// Cost in hundredths of a minute (score + lateness − wastage credit).
        public var cost: Int64
        /// Shipment key: centre position × hospital count + hospital position.
        public var shipment: Int
        /// Minutes late against the needed-by time.
        public var lateMinutes: Double
        /// Wastage credit in minutes.
        public var wastageCredit: Double
        /// The unit as the matcher proposed it for this order (rank, rule, ETA to this hospital).
        public var proposal: ProposedUnit
    }

    /// The orders.
    public var orders: [BatchOrder]
    /// Distinct candidate units (as first proposed; an edge carries its own order's proposal).
    public var units: [ProposedUnit]
    /// Edges, grouped by order and sorted by cost within an order.
    public var edges: [Edge]
    /// Edge ranges per order.
    public var edgesByOrder: [Range<Int>]
    /// Whether an order's candidate list was cut at its limit (more eligible units may exist).
    public var truncated: [Bool]
    /// Per order whose list was cut, the least any unit beyond the cut can cost, in hundredths of a
    /// minute: the cut's score (the matcher lists the best scores first) less the largest wastage
    /// credit. Nil where the list holds every eligible unit.
    public var beyondCost: [Int64?]
    /// Why an order has no acceptable group or requirement (rules' refusals and notes).
    public var ruleNotes: [[String]]
    /// Whether the rules left an order no acceptable group at all.
    public var noAcceptableGroup: [Bool]
    /// Centre ids by position.
    public var centres: [String]
    /// Hospital ids by position.
    public var hospitals: [String]
    /// Unit → centre position.
    public var unitCentre: [Int]
    /// Order → hospital position.
    public var orderHospital: [Int]
}

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

    private static let scale = 100.0

    /// Per-order candidate list from the live matcher, at most `limit` units.
    struct OrderCandidates {
        var units: [ProposedUnit]
        var truncated: Bool
        var notes: [String]
        var noGroup: Bool
        /// The best (lowest) rank the rules give any group for this recipient.
        var bestRank: Int
        /// The score of the last unit the matcher listed when the list was cut at its limit: no
        /// eligible unit left out scores less.
        var cutScore: Double? = nil
    }

    func candidates(for order: BatchOrder, index: InventoryIndex, excluded: Set<UnitKey>, now: Int64, limit: Int) -> OrderCandidates {
        var request = order.matchRequest
        request.quantity = limit
        let (query, refused, notes) = planner.query(for: request, destination: order.destination, excluded: excluded)
        if query.choices.isEmpty {
            return OrderCandidates(units: [], truncated: false, notes: refused + notes, noGroup: true, bestRank: 1)
        }
        var quiet = planner.settings
        quiet.rejectedCandidatesKept = 0
        let matcher = UnitMatcher(index: index, settings: quiet, travelTimes: planner.travelTimes, ordering: .cost)
        let found = matcher.match(query, now: now).chosen
        return OrderCandidates(units: found, truncated: found.count >= limit, notes: notes, noGroup: false,
                               bestRank: query.choices.map(\.rank).min() ?? 1,
                               cutScore: found.count >= limit ? found.map(\.score).max() : nil)
    }

    /// Adds consolidation candidates to capped lists: for an order whose list was cut at its
    /// limit, up to its quantity of units from every centre that appears in the lists of its
    /// hospital's orders, so the optimiser can fill the order from a shipment the hospital
    /// receives anyway even when those units rank after the cut.
    func addConsolidationCandidates(orders: [BatchOrder], lists: inout [OrderCandidates], index: InventoryIndex,
                                    excluded: Set<UnitKey>, now: Int64) {
        var centresOfHospital: [String: Set<String>] = [:]
        for (o, order) in orders.enumerated() {
            centresOfHospital[order.hospitalID, default: []].formUnion(lists[o].units.map(\.centreID))
        }
        var quiet = planner.settings
        quiet.rejectedCandidatesKept = 0
        let matcher = UnitMatcher(index: index, settings: quiet, travelTimes: planner.travelTimes, ordering: .cost)
        for (o, order) in orders.enumerated() where lists[o].truncated && !lists[o].noGroup {
            var request = order.matchRequest
            request.quantity = order.quantity
            var (query, _, _) = planner.query(for: request, destination: order.destination, excluded: excluded)
            var present: [String: Int] = [:]
            for unit in lists[o].units { present[unit.centreID, default: 0] += 1 }
            var known = Set(lists[o].units.map(\.key))
            for centre in (centresOfHospital[order.hospitalID] ?? []).sorted() where (present[centre] ?? 0) < order.quantity {
                query.onlyCentreIDs = [centre]
                for unit in matcher.match(query, now: now).chosen where known.insert(unit.key).inserted {
                    lists[o].units.append(unit)
                }
            }
        }
    }

    func initialLimit(_ order: BatchOrder) -> Int {
        max(order.quantity * settings.candidatesPerUnit, order.quantity + settings.minimumCandidates)
    }

    /// Builds the candidate graph with at most `limit(order)` candidates per order.
    public func candidateGraph(orders: [BatchOrder], index: InventoryIndex, excluded: Set<UnitKey>, now: Date,
                               limit: (BatchOrder) -> Int) -> BatchCandidateGraph {
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        let lists = orders.map { candidates(for: $0, index: index, excluded: excluded, now: seconds, limit: limit($0)) }
        return assemble(orders: orders, lists: lists, now: seconds)
    }

    func assemble(orders: [BatchOrder], lists: [OrderCandidates], now: Int64) -> BatchCandidateGraph {
        var centreIndex: [String: Int] = [:]
        var centres: [String] = []
        var hospitalIndex: [String: Int] = [:]
        var hospitals: [String] = []
        for order in orders where hospitalIndex[order.hospitalID] == nil {
            hospitalIndex[order.hospitalID] = hospitals.count
            hospitals.append(order.hospitalID)
        }
        var unitIndex: [UnitKey: Int] = [:]
        var units: [ProposedUnit] = []
        var unitCentre: [Int] = []
        var edges: [BatchCandidateGraph.Edge] = []
        var ranges: [Range<Int>] = []
        let orderHospital = orders.map { hospitalIndex[$0.hospitalID] ?? 0 }
        for (o, order) in orders.enumerated() {
            let start = edges.count
            let bestRank = lists[o].bestRank
            let horizon = (settings.wastageHorizonHours[order.component] ?? 0) * 3600
            for unit in lists[o].units {
                let u: Int
                if let known = unitIndex[unit.key] {
                    u = known
                } else {
                    u = units.count
                    unitIndex[unit.key] = u
                    units.append(unit)
                    let c: Int
                    if let known = centreIndex[unit.centreID] { c = known } else {
                        c = centres.count
                        centreIndex[unit.centreID] = c
                        centres.append(unit.centreID)
                    }
                    unitCentre.append(c)
                }
                let arrival = Double(now) + unit.etaMinutes * 60
                // Lateness counts from the needed-by time, or from now when that is already past: an
                // overdue order is served as soon as possible, never priced out of the plan by the
                // time that passed before it was planned.
                let late = order.neededBy.map { max(0, arrival - max($0.timeIntervalSince1970, Double(now))) / 60 } ?? 0
                var credit = 0.0
                // Only the recipient's best-ranked group earns the credit (LB-ONEG; Data/SOURCES.md §S2).
                if unit.rank == bestRank, horizon > 0 {
                    let remaining = Double(unit.expiresAt) - arrival
                    credit = settings.wastageCreditMinutes * min(1, max(0, 1 - remaining / horizon))
                }
                let minutes = unit.score + settings.latenessWeight * late - credit
                edges.append(.init(order: o, unit: u, cost: Int64((minutes * Self.scale).rounded()),
                                   shipment: unitCentre[u] * max(1, orders.count) + orderHospital[o],
                                   lateMinutes: late, wastageCredit: credit, proposal: unit))
            }
            edges[start..<edges.count].sort { ($0.cost, units[$0.unit].key) < ($1.cost, units[$1.unit].key) }
            ranges.append(start..<edges.count)
        }
        // Shipment keys use a stable hospital count.
        let h = max(1, hospitals.count)
        for i in edges.indices { edges[i].shipment = unitCentre[edges[i].unit] * h + orderHospital[edges[i].order] }
        let beyond = lists.map { list in list.cutScore.map { Int64((($0 - settings.wastageCreditMinutes) * Self.scale).rounded(.down)) } }
        return BatchCandidateGraph(
            orders: orders, units: units, edges: edges, edgesByOrder: ranges, truncated: lists.map(\.truncated), beyondCost: beyond,
            ruleNotes: lists.map(\.notes), noAcceptableGroup: lists.map(\.noGroup), centres: centres,
            hospitals: hospitals, unitCentre: unitCentre, orderHospital: orderHospital)
    }

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

    /// Slope scaling over the flow: the best chosen edges by the true objective, and the rounds run.
    func scaledFlow(_ graph: BatchCandidateGraph) -> (chosen: [Int], rounds: Int) {
        var demand: [Int: Int] = [:]
        for (o, order) in graph.orders.enumerated() { demand[graph.orderHospital[o], default: 0] += order.quantity }
        let h = max(1, graph.hospitals.count)
        var linear: [Int: Int64] = [:]
        for edge in graph.edges where linear[edge.shipment] == nil {
            linear[edge.shipment] = shipmentCharge / Int64(max(1, demand[edge.shipment % h] ?? 1))
        }
        var best: [Int] = []
        var bestValue = Int64.max
        var rounds = 0
        var seen = Set<[Int]>()
        for _ in 0..<max(1, settings.rescalingRounds) {
            rounds += 1
            let chosen = solveFlow(graph, linear: linear)
            let value = objective(graph, chosen)
            if value < bestValue { best = chosen; bestValue = value }
            if !seen.insert(chosen).inserted { break }
            var carried: [Int: Int] = [:]
            for e in chosen { carried[graph.edges[e].shipment, default: 0] += 1 }
            for (pair, count) in carried { linear[pair] = shipmentCharge / Int64(count) }
        }
        return (best, rounds)
    }

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
    /// score is no lower than the cut's, lateness only adds, the wastage credit takes at most
    /// `wastageCreditMinutes`), its shipment is charged nothing and units are not limited. Every
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

    /// Drop/add/swap local search over the set of open centre → hospital pairs with the whole flow
    /// as the oracle (the best allocation given the open pairs, charges then exact), for graphs
    /// small enough that a few hundred flows are cheap (`globalSearchEdgeLimit`).
    func globalSearch(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> (chosen: [Int], evaluations: Int) {
        guard graph.edges.count <= settings.globalSearchEdgeLimit else { return (chosen, 0) }
        var best = chosen
        var bestValue = objective(graph, chosen)
        var open = Set(chosen.map { graph.edges[$0].shipment })
        let all = Set(graph.edges.map(\.shipment))
        var evaluations = 0
        func attempt(_ allowed: Set<Int>, linear: [Int: Int64] = [:]) -> Bool {
            evaluations += 1
            let candidate = solveFlow(graph, linear: linear, allowed: allowed)
            let v = objective(graph, candidate)
            guard v < bestValue else { return false }
            best = candidate
            bestValue = v
            open = Set(candidate.map { graph.edges[$0].shipment })
            return true
        }
        _ = attempt(open)
        var moved = true
        while moved && evaluations < 150 {
            moved = false
            for p in open.sorted() where attempt(open.subtracting([p])) { moved = true; break }
            if moved { continue }
            // Drop a pair and let its units re-route anywhere, a closed pair charged in full per unit.
            var closedCharge: [Int: Int64] = [:]
            for q in all.subtracting(open) { closedCharge[q] = shipmentCharge }
            for p in open.sorted() where attempt(all.subtracting([p]), linear: closedCharge) { moved = true; break }
            if moved { continue }
            for q in all.subtracting(open).sorted() where attempt(open.union([q])) { moved = true; break }
            if moved { continue }
            outer: for p in open.sorted() {
                for q in all.subtracting(open).sorted() where attempt(open.subtracting([p]).union([q])) { moved = true; break outer }
                if evaluations >= 150 { break }
            }
        }
        return (best, evaluations)
    }

    /// Drop/add local search over each hospital's set of shipments, the other hospitals' units held
    /// fixed: for a hospital, the orders' best allocation given a set of open centre → hospital pairs
    /// is an exact small min-cost flow over the units free to it; a pair is dropped or added when
    /// that lowers the hospital's unit costs + shipment charges + unserved penalties. Shipment
    /// charges are per hospital, so these moves are exact in the charge; they only couple through
    /// units, which stay with the hospital that holds them. Returns the edges and the net shipments closed.
    func hospitalSearch(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> (chosen: [Int], closed: Int) {
        var holder = [Int](repeating: -1, count: graph.units.count)
        var current = [[Int]](repeating: [], count: graph.orders.count)
        for e in chosen {
            holder[graph.edges[e].unit] = graph.edges[e].order
            current[graph.edges[e].order].append(e)
        }
        var ordersOf = [[Int]](repeating: [], count: graph.hospitals.count)
        for o in graph.orders.indices { ordersOf[graph.orderHospital[o]].append(o) }
        let charge = shipmentCharge
        var closed = 0

        func value(_ edges: [Int], _ orders: [Int]) -> Int64 {
            var total: Int64 = 0
            var pairs = Set<Int>()
            var filled: [Int: Int] = [:]
            for e in edges {
                total += graph.edges[e].cost
                pairs.insert(graph.edges[e].shipment)
                filled[graph.edges[e].order, default: 0] += 1
            }
            for o in orders { total += Int64(graph.orders[o].quantity - (filled[o] ?? 0)) * penalty(graph.orders[o].urgency) }
            return total + Int64(pairs.count) * charge
        }

        for _ in 0..<3 {
            var improvedAny = false
            for h in graph.hospitals.indices where !ordersOf[h].isEmpty {
                let orders = ordersOf[h]
                let mine = Set(orders)
                // Edges of this hospital's orders whose unit is free or held by this hospital.
                var usable: [Int] = []
                for o in orders {
                    for e in graph.edgesByOrder[o] {
                        let u = holder[graph.edges[e].unit]
                        if u < 0 || mine.contains(u) { usable.append(e) }
                    }
                }
                let available = Set(usable.map { graph.edges[$0].shipment })
                var best = orders.flatMap { current[$0] }
                var bestValue = value(best, orders)
                var open = Set(best.map { graph.edges[$0].shipment })
                func solve(_ allowed: Set<Int>) -> [Int] {
                    let edges = usable.filter { allowed.contains(graph.edges[$0].shipment) }
                    var unitNode: [Int: Int] = [:]
                    for e in edges where unitNode[graph.edges[e].unit] == nil { unitNode[graph.edges[e].unit] = 2 + orders.count + unitNode.count }
                    var orderNode: [Int: Int] = [:]
                    for (i, o) in orders.enumerated() { orderNode[o] = 2 + i }
                    var network = MinCostFlow(nodeCount: 2 + orders.count + unitNode.count)
                    for o in orders { network.addArc(from: orderNode[o]!, to: 1, capacity: graph.orders[o].quantity, cost: penalty(graph.orders[o].urgency)) }
                    let arcs = edges.map { e in
                        network.addArc(from: orderNode[graph.edges[e].order]!, to: unitNode[graph.edges[e].unit]!, capacity: 1, cost: graph.edges[e].cost)
                    }
                    for node in unitNode.values.sorted() { network.addArc(from: node, to: 1, capacity: 1, cost: 0) }
                    _ = network.solve(supplies: orders.map { (orderNode[$0]!, graph.orders[$0].quantity) }, sink: 1)
                    return edges.indices.filter { network.flow(on: arcs[$0]) > 0 }.map { edges[$0] }
                }
                var moved = true
                var evaluations = 0
                let firstTry = solve(open)
                let firstValue = value(firstTry, orders)
                if firstValue < bestValue { best = firstTry; bestValue = firstValue; open = Set(best.map { graph.edges[$0].shipment }) }
                if available.count <= settings.exactHospitalPairLimit {
                    // Few centres can serve this hospital: try every set of open shipments, so the
                    // hospital's part is exact given the other hospitals' units.
                    let pairs = available.sorted()
                    for mask in 1..<(1 << pairs.count) {
                        let allowed = Set(pairs.indices.filter { mask & (1 << $0) != 0 }.map { pairs[$0] })
                        let candidate = solve(allowed)
                        let v = value(candidate, orders)
                        if v < bestValue { best = candidate; bestValue = v; open = Set(best.map { graph.edges[$0].shipment }) }
                    }
                    moved = false
                }
                while moved && evaluations < 200 {
                    moved = false
                    var trials: [Set<Int>] = open.sorted().map { open.subtracting([$0]) }
                    trials += available.subtracting(open).sorted().map { open.union([$0]) }
                    for allowed in trials {
                        evaluations += 1
                        let candidate = solve(allowed)
                        let v = value(candidate, orders)
                        if v < bestValue {
                            best = candidate
                            bestValue = v
                            open = Set(best.map { graph.edges[$0].shipment })
                            moved = true
                            break
                        }
                    }
                }
                let before = Set(orders.flatMap { current[$0] })
                if Set(best) != before {
                    let pairsBefore = Set(before.map { graph.edges[$0].shipment }).count
                    closed += pairsBefore - open.count
                    for e in before { holder[graph.edges[e].unit] = -1 }
                    for o in orders { current[o] = [] }
                    for e in best {
                        holder[graph.edges[e].unit] = graph.edges[e].order
                        current[graph.edges[e].order].append(e)
                    }
                    improvedAny = true
                }
            }
            if !improvedAny { break }
        }
        return (current.flatMap { $0 }.sorted(), max(0, closed))
    }

    /// Closes shipments whose units can all move to free candidates in shipments already open to
    /// the same hospital for less than the shipment charge; returns the new edges and the count closed.
    func closeShipments(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> (chosen: [Int], closed: Int) {
        var chosenSet = Set(chosen)
        var taken = [Bool](repeating: false, count: graph.units.count)
        var open: [Int: Int] = [:]
        for e in chosen {
            taken[graph.edges[e].unit] = true
            open[graph.edges[e].shipment, default: 0] += 1
        }
        var closed = 0
        var improved = true
        var passes = 0
        while improved && passes < 5 {
            improved = false
            passes += 1
            let pairs = open.filter { $0.value > 0 }.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
            for (pair, _) in pairs where (open[pair] ?? 0) > 0 {
                let members = chosenSet.filter { graph.edges[$0].shipment == pair }.sorted()
                var moves: [(from: Int, to: Int)] = []
                var reserved = Set<Int>()
                var delta: Int64 = 0
                var feasible = true
                for e in members {
                    let edge = graph.edges[e]
                    var found: Int?
                    for alt in graph.edgesByOrder[edge.order] {
                        let a = graph.edges[alt]
                        if a.shipment == pair || taken[a.unit] || reserved.contains(a.unit) { continue }
                        if (open[a.shipment] ?? 0) > 0 { found = alt; break }
                    }
                    guard let alt = found else { feasible = false; break }
                    reserved.insert(graph.edges[alt].unit)
                    delta += graph.edges[alt].cost - edge.cost
                    moves.append((e, alt))
                }
                guard feasible, delta < shipmentCharge else { continue }
                for (from, to) in moves {
                    chosenSet.remove(from)
                    chosenSet.insert(to)
                    taken[graph.edges[from].unit] = false
                    taken[graph.edges[to].unit] = true
                    open[graph.edges[from].shipment, default: 0] -= 1
                    open[graph.edges[to].shipment, default: 0] += 1
                }
                closed += 1
                improved = true
            }
        }
        return (chosenSet.sorted(), closed)
    }

    /// The greedy baseline: orders one by one (emergency, urgent, routine; then needed-by, placed,
    /// id), each taking its cheapest remaining candidates, as independent nearest-unit answers would.
    func greedy(_ graph: BatchCandidateGraph) -> [Int] {
        let sequence = graph.orders.indices.sorted { a, b in
            let x = graph.orders[a], y = graph.orders[b]
            let kx = (x.urgency.priority, x.neededBy ?? .distantFuture, x.placedAt, x.orderID)
            let ky = (y.urgency.priority, y.neededBy ?? .distantFuture, y.placedAt, y.orderID)
            return kx < ky
        }
        var taken = [Bool](repeating: false, count: graph.units.count)
        var chosen: [Int] = []
        for o in sequence {
            var need = graph.orders[o].quantity
            for e in graph.edgesByOrder[o] where need > 0 && !taken[graph.edges[e].unit] {
                taken[graph.edges[e].unit] = true
                chosen.append(e)
                need -= 1
            }
        }
        return chosen.sorted()
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

    /// Gives free candidate units to orders still short, emergency first, cheapest unit first.
    func refill(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> [Int] {
        var taken = [Bool](repeating: false, count: graph.units.count)
        var filled = [Int](repeating: 0, count: graph.orders.count)
        for e in chosen {
            taken[graph.edges[e].unit] = true
            filled[graph.edges[e].order] += 1
        }
        let short = graph.orders.indices.filter { filled[$0] < graph.orders[$0].quantity }
            .sorted { (graph.orders[$0].urgency.priority, $0) < (graph.orders[$1].urgency.priority, $1) }
        guard !short.isEmpty else { return chosen }
        var out = chosen
        for o in short {
            for e in graph.edgesByOrder[o] where filled[o] < graph.orders[o].quantity && !taken[graph.edges[e].unit] {
                taken[graph.edges[e].unit] = true
                filled[o] += 1
                out.append(e)
            }
        }
        return out.sorted()
    }

    /// The greedy baseline's chosen edges on a graph.
    public func greedyChoice(_ graph: BatchCandidateGraph) -> [Int] { greedy(graph) }

    /// The true objective of chosen edges, in minutes (unserved demand included at its penalty).
    public func objectiveMinutes(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> Double {
        Double(objective(graph, chosen)) / Self.scale
    }

    /// Plans a batch: candidate graph (widened for orders left short), optimisation, greedy
    /// baseline, shipments and per-order outcomes with reasons. `excluded` holds reserved DINs.
    public func plan(orders: [BatchOrder], index: InventoryIndex, excluded: Set<UnitKey>, now: Date) -> BatchPlan {
        planWithGraph(orders: orders, index: index, excluded: excluded, now: now).plan
    }

    /// `plan`, with the final candidate graph its candidate-level claims are about.
    public func planWithGraph(orders: [BatchOrder], index: InventoryIndex, excluded: Set<UnitKey>,
                              now: Date) -> (plan: BatchPlan, graph: BatchCandidateGraph) {
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        var limits = orders.map(initialLimit)
        var lists = orders.indices.map { candidates(for: orders[$0], index: index, excluded: excluded, now: seconds, limit: limits[$0]) }
        addConsolidationCandidates(orders: orders, lists: &lists, index: index, excluded: excluded, now: seconds)
        var graph = assemble(orders: orders, lists: lists, now: seconds)
        var result = optimise(graph)
        for _ in 0..<settings.wideningRounds {
            var filled = [Int](repeating: 0, count: orders.count)
            for e in result.chosen { filled[graph.edges[e].order] += 1 }
            let short = orders.indices.filter { filled[$0] < orders[$0].quantity && lists[$0].truncated }
            if short.isEmpty { break }
            for o in short {
                limits[o] = min(limits[o] * 4, 4000)
                lists[o] = candidates(for: orders[o], index: index, excluded: excluded, now: seconds, limit: limits[o])
            }
            addConsolidationCandidates(orders: orders, lists: &lists, index: index, excluded: excluded, now: seconds)
            graph = assemble(orders: orders, lists: lists, now: seconds)
            result = optimise(graph)
        }
        // Claims are about the whole problem: a list cut at its limit may hide better units. On
        // graphs small enough to search exactly, widen the lists whose beyond-the-cut arc the whole
        // bound uses, while the plan is above that bound.
        var whole = wholeProblemBound(graph)
        for _ in 0..<settings.wideningRounds {
            guard let w = whole, !w.beyondUsed.isEmpty, graph.edges.count <= settings.exactSearchEdgeLimit,
                  objective(graph, result.chosen) > w.bound else { break }
            for o in w.beyondUsed where limits[o] < 4000 {
                limits[o] = min(limits[o] * 4, 4000)
                lists[o] = candidates(for: orders[o], index: index, excluded: excluded, now: seconds, limit: limits[o])
            }
            addConsolidationCandidates(orders: orders, lists: &lists, index: index, excluded: excluded, now: seconds)
            graph = assemble(orders: orders, lists: lists, now: seconds)
            result = optimise(graph)
            whole = wholeProblemBound(graph)
        }
        let greedyChosen = greedy(graph)
        var plan = makePlan(graph: graph, chosen: result.chosen, greedy: greedyChosen, rounds: result.rounds,
                            closed: result.closed, index: index, excluded: excluded, now: now)
        let wholeBound = whole.map { min($0.bound, result.lowerBound) } ?? result.lowerBound
        plan.lowerBoundMinutes = boundExcludingUnserved(graph, wholeBound, chosen: result.chosen)
        plan.provenOptimal = objective(graph, result.chosen) <= wholeBound
        plan.candidateLowerBoundMinutes = boundExcludingUnserved(graph, result.lowerBound, chosen: result.chosen)
        plan.provenOptimalOverCandidates = result.provenOptimal
        plan.ordersWithCutLists = graph.beyondCost.filter { $0 != nil }.count
        return (plan, graph)
    }

    /// `plan` on a thread of its own with a large stack, for async callers: the cooperative
    /// pool's small thread stacks are not meant for a long CPU-bound computation (debug builds
    /// overflowed them).
    public func planOnOwnThread(orders: [BatchOrder], index: InventoryIndex, excluded: Set<UnitKey>, now: Date) async -> BatchPlan {
        await withCheckedContinuation { (continuation: CheckedContinuation<BatchPlan, Never>) in
            let thread = Thread {
                continuation.resume(returning: self.plan(orders: orders, index: index, excluded: excluded, now: now))
            }
            thread.stackSize = 256 << 20
            thread.start()
        }
    }

    func makePlan(graph: BatchCandidateGraph, chosen: [Int], greedy: [Int], rounds: Int, closed: Int,
                  index: InventoryIndex, excluded: Set<UnitKey>, now: Date) -> BatchPlan {
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        // Shipments: by centre, then hospital.
        var byPair: [Int: [Int]] = [:]
        for e in chosen { byPair[graph.edges[e].shipment, default: []].append(e) }
        let pairOrder = byPair.keys.sorted { a, b in
            let ea = graph.edges[byPair[a]![0]], eb = graph.edges[byPair[b]![0]]
            return (graph.centres[graph.unitCentre[ea.unit]], graph.hospitals[graph.orderHospital[ea.order]])
                < (graph.centres[graph.unitCentre[eb.unit]], graph.hospitals[graph.orderHospital[eb.order]])
        }
        var shipments: [BatchShipment] = []
        var allocations: [BatchAllocation] = []
        for (n, pair) in pairOrder.enumerated() {
            let members = (byPair[pair] ?? []).sorted { (graph.orders[graph.edges[$0].order].orderID, graph.units[graph.edges[$0].unit].key)
                < (graph.orders[graph.edges[$1].order].orderID, graph.units[graph.edges[$1].unit].key) }
            let first = graph.edges[members[0]]
            let centre = graph.centres[graph.unitCentre[first.unit]]
            let hospital = graph.hospitals[graph.orderHospital[first.order]]
            let units = members.map { graph.edges[$0].proposal }
            let verdicts = units.compactMap(\.meetsNeededBy)
            var orderIDs: [String] = []
            for e in members where !orderIDs.contains(graph.orders[graph.edges[e].order].orderID) {
                orderIDs.append(graph.orders[graph.edges[e].order].orderID)
            }
            shipments.append(BatchShipment(
                number: n + 1, centreID: centre, hospitalID: hospital, units: units.map(\.key), orderIDs: orderIDs,
                etaMinutes: units.map(\.etaMinutes).max() ?? 0, neededByMet: verdicts.isEmpty ? nil : !verdicts.contains(false),
                staleCentre: units.contains(where: \.staleCentre)))
            for e in members {
                let edge = graph.edges[e]
                let unit = edge.proposal
                let minutes = Double(edge.cost) / Self.scale
                var words = "\(unit.group) rank \(unit.rank) at \(unit.centreID), \(Int(unit.distanceKm.rounded())) km, ETA \(Int(unit.etaMinutes.rounded())) min"
                words += "; \(unit.rule)"
                words += String(format: "; cost %.1f min = score %.1f", minutes, unit.score)
                if edge.lateMinutes > 0 { words += String(format: " + lateness %.0f min × %.1f", edge.lateMinutes, settings.latenessWeight) }
                if edge.wastageCredit > 0 { words += String(format: " − wastage credit %.1f (expires in %.0f h)", edge.wastageCredit, Double(unit.expiresAt - seconds) / 3600) }
                words += "; shipment \(n + 1) \(centre) → \(hospital) with \(units.count) unit(s)"
                if unit.staleCentre { words += "; STALE centre data (\(unit.dataAgeSeconds / 60) min old): confirm before dispatch" }
                allocations.append(BatchAllocation(
                    orderID: graph.orders[edge.order].orderID, hospitalID: hospital, unit: unit, costMinutes: minutes,
                    lateMinutes: edge.lateMinutes, wastageCreditMinutes: edge.wastageCredit, rationale: words))
            }
        }
        // Outcomes with reasons.
        var filled = [Int](repeating: 0, count: graph.orders.count)
        var holder = [Int](repeating: -1, count: graph.units.count)
        for e in chosen {
            filled[graph.edges[e].order] += 1
            holder[graph.edges[e].unit] = graph.edges[e].order
        }
        var outcomes: [BatchOrderOutcome] = []
        for (o, order) in graph.orders.enumerated() {
            let got = filled[o]
            let eligible = graph.edgesByOrder[o].count
            var reason: String?
            let overdue = order.neededBy.map { Int64($0.timeIntervalSince1970) < seconds } ?? false
            if got < order.quantity {
                if graph.noAcceptableGroup[o] {
                    reason = "no acceptable unit group or requirement for this recipient: " + graph.ruleNotes[o].joined(separator: "; ")
                } else if eligible == 0 {
                    reason = "no eligible unit in the data in force: " + explainNone(order, index: index, excluded: excluded, now: seconds)
                } else {
                    var others: [String] = []
                    for e in graph.edgesByOrder[o] {
                        let h = holder[graph.edges[e].unit]
                        if h >= 0, h != o, !others.contains(graph.orders[h].orderID) { others.append(graph.orders[h].orderID) }
                    }
                    let free = graph.edgesByOrder[o].filter { holder[graph.edges[$0].unit] < 0 }.count
                    reason = "only \(eligible) eligible unit(s) found\(graph.truncated[o] ? " (list capped)" : "")"
                    if !others.isEmpty {
                        reason! += "; \(eligible - free) went to orders of equal or higher urgency or with no alternative: " + others.prefix(5).joined(separator: ", ")
                            + (others.count > 5 ? " and \(others.count - 5) more" : "")
                    }
                    if free > 0 {
                        // Should not happen (unserved demand costs more than any unit): say so rather than blame others.
                        reason! += "; \(free) eligible unit(s) were left unallocated by the optimiser"
                    }
                }
            }
            if overdue, let neededBy = order.neededBy {
                let note = "needed by \(Self.isoUTC(neededBy)), already past at planning: \(got > 0 ? "served as soon as possible, late" : "nothing could be served")"
                reason = reason.map { "\(note); \($0)" } ?? note
            }
            outcomes.append(BatchOrderOutcome(
                orderID: order.orderID, urgency: order.urgency, quantity: order.quantity, allocated: got,
                status: got >= order.quantity ? .allocated : got == 0 ? .unfillable : .partiallyAllocated,
                reason: reason, eligibleFound: eligible))
        }
        let stale = index.centres.filter { $0.isStale(now: seconds) }.map(\.siteID)
        return BatchPlan(
            evaluatedAt: now, policyVersion: planner.rules.version, indexVersion: index.version, allocations: allocations,
            shipments: shipments, outcomes: outcomes, cost: cost(graph, chosen), greedyCost: cost(graph, greedy),
            staleCentres: stale, candidateEdges: graph.edges.count, rescalingRounds: rounds,
            shipmentsClosedByLocalSearch: closed, settings: settings)
    }

    /// Why the matcher found nothing for an order: the most frequent reasons units of an acceptable
    /// group were turned down (too old, expiring before arrival, lacking a requirement, held…);
    /// units of other groups are named only when no unit of an acceptable group exists at all.
    func explainNone(_ order: BatchOrder, index: InventoryIndex, excluded: Set<UnitKey>, now: Int64) -> String {
        let (query, _, _) = planner.query(for: order.matchRequest, destination: order.destination, excluded: excluded)
        var loud = planner.settings
        loud.rejectedCandidatesKept = 100
        let match = UnitMatcher(index: index, settings: loud, travelTimes: planner.travelTimes, ordering: .cost).match(query, now: now)
        var totals: [CandidateRejection: Int] = [:]
        for r in match.rejected where r.reason != .incompatible { totals[r.reason, default: 0] += r.count }
        guard !totals.isEmpty else {
            let groups = query.choices.map(\.group.description).joined(separator: ", ")
            return "no \(order.component.rawValue) unit of an acceptable group (\(groups)) at any centre searched"
        }
        let ranked = totals.sorted { ($0.value, $0.key.rawValue) > ($1.value, $1.key.rawValue) }
        let example = { (reason: CandidateRejection) in match.rejected.first { $0.reason == reason }.map { " (e.g. at \($0.centreID): \($0.detail))" } ?? "" }
        return ranked.prefix(3).map { "\($0.value) unit(s) of an acceptable group \(Self.words($0.key))\(example($0.key))" }.joined(separator: "; ")
    }

    /// A rejection reason for people.
    static func words(_ reason: CandidateRejection) -> String {
        switch reason {
        case .incompatible: "of an incompatible group"
        case .expiredBeforeArrival: "would expire, or fall below the minimum remaining life, before arrival"
        case .missingAttribute: "lack a required attribute"
        case .notSubstitutable: "carry an attribute that may not serve this request"
        case .tooOld: "are older than the maximum unit age"
        case .reserved: "are held"
        case .staleCentre: "are at a centre whose data is stale"
        case .farther: "were farther or ranked after others"
        }
    }

    /// ISO 8601 in UTC.
    static func isoUTC(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}
