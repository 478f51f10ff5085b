import Foundation

/// From chosen edges to a plan: widening, the claims, shipments, allocations with their rationale,
/// per-order outcomes and the words that explain a short order.
extension BatchOptimiser {
    /// Plans a batch: candidate graph (widened for orders left short), optimisation, greedy
    /// baseline, shipments and per-order outcomes with reasons. `excluded` holds reserved DINs.
    public func plan(orders: [BatchOrder], index: InventoryIndex, excluded: Set<UnitKey>, now: Date) -> BatchPlan {
        planWithGraph(orders: orders, index: index, excluded: excluded, now: now).plan
    }

    /// `plan`, with the candidate graph its candidate-level claims are about (the graph the
    /// optimiser searched; units the stewardship pass put in place of allocated ones may lie
    /// outside it).
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
        // Stewardship: no allocated unit while a better-ranked one in its band, or one in time for
        // a late one, is left free (the whole index searched). The bounds stay those of the
        // searched graph: the rules only remove plans, so a bound on every plan bounds those left.
        let stewarded = stewardedPlan(orders: orders, lists: &lists, graph: graph, chosen: result.chosen, index: index,
                                      excluded: excluded, now: seconds)
        let planGraph = stewarded.graph
        let chosen = stewarded.chosen
        var notes: [Int: String] = [:]
        for (i, before) in stewarded.replaced {
            let e = planGraph.edges[chosen[i]]
            let order = orders[e.order]
            let tolerance = planner.settings.preferenceBandMinutes[order.urgency] ?? 0
            let why = before.late == true && e.proposal.late != true ? "in time where it was late"
                : "a better rank within \(Int(tolerance)) min of it"
            notes[chosen[i]] = "stewardship: in place of \(before.din) (\(before.group) rank \(before.rank) at \(before.centreID), ETA "
                + "\(Int(before.etaMinutes.rounded())) min), \(why) (Data/SOURCES.md §S30)"
        }
        var plan = makePlan(graph: planGraph, chosen: chosen, greedy: stewarded.greedy, rounds: result.rounds,
                            closed: result.closed, notes: notes, index: index, excluded: excluded, now: now)
        let wholeBound = whole.map { min($0.bound, result.lowerBound) } ?? result.lowerBound
        plan.lowerBoundMinutes = boundExcludingUnserved(planGraph, wholeBound, chosen: chosen)
        plan.provenOptimal = objective(planGraph, chosen) <= wholeBound
        plan.candidateLowerBoundMinutes = boundExcludingUnserved(graph, result.lowerBound, chosen: result.chosen)
        plan.provenOptimalOverCandidates = result.provenOptimal && stewarded.breaches == 0
        plan.ordersWithCutLists = graph.beyondCost.filter { $0 != nil }.count
        plan.stewardshipBreachesRepaired = stewarded.breaches
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

    func makePlan(graph: BatchCandidateGraph, chosen: [Int], greedy: [Int], rounds: Int, closed: Int, notes: [Int: String] = [:],
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
                let weight = settings.weight(graph.orders[edge.order].urgency)
                words += weight == 1 ? String(format: "; cost %.1f min = score %.1f", minutes, unit.score)
                    : String(format: "; cost %.1f min = score %.1f × %g (%@)", minutes, unit.score, weight, graph.orders[edge.order].urgency.rawValue)
                if edge.lateMinutes > 0 { words += String(format: " + lateness %.0f min × %.1f", edge.lateMinutes, settings.latenessWeight) }
                if edge.wastageCredit > 0 { words += String(format: " − wastage credit %.1f (expires in %.0f h)", edge.wastageCredit, Double(unit.expiresAt - seconds) / 3600) }
                if unit.late == true { words += "; LATE: arrives after the deadline" }
                if let note = notes[e] { words += "; \(note)" }
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
        var lateUnits = [Int](repeating: 0, count: graph.orders.count)
        for e in chosen {
            filled[graph.edges[e].order] += 1
            if graph.edges[e].proposal.late == true { lateUnits[graph.edges[e].order] += 1 }
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
            } else if lateUnits[o] > 0 {
                let why = MatchPlanner.deadlineReason(settings: planner.settings, urgency: order.urgency,
                                                      neededBy: order.neededBy.map { Int64($0.timeIntervalSince1970) }, now: seconds)
                let note = "\(lateUnits[o]) of \(got) unit(s) LATE: arriving after \(why); no eligible unit could arrive by it"
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
