import Foundation

/// The heuristics: slope scaling, the local searches over open shipments, refill and greedy.
extension BatchOptimiser {
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
}
