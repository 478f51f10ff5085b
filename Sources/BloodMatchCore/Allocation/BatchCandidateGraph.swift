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
        /// Cost in hundredths of a minute (urgency weight × score + lateness − wastage credit).
        public var cost: Int64
        /// Shipment key: centre position × hospital count + hospital position.
        public var shipment: Int
        /// Minutes late against the order's deadline (its urgency's time ceiling, or its needed-by
        /// time when sooner).
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
    /// minute: the cut's score (the matcher lists the best scores first) less the most wastage
    /// credit a unit of the order's component can earn. Nil where the list holds every eligible unit.
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

/// Building the candidate graph: per-order lists from the live matcher, consolidation candidates,
/// and the edges with their costs.
extension BatchOptimiser {
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
        /// The soonest any unit left out can arrive (minutes): a score is the ETA plus at most the
        /// worst rank's penalty and every scarce attribute's, so the ETA is at least the cut's
        /// score less those.
        var beyondEarliestETA: Double? = nil
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
        let cut = found.count >= limit ? found.map(\.score).max() : nil
        let worstRank = query.choices.map(\.rank).max() ?? 1
        let penalties = Double(worstRank - 1) * (quiet.rankPenaltyMinutes[query.urgency] ?? 0)
            + Double(query.scarce.count) * quiet.surplusAttributePenaltyMinutes
        return OrderCandidates(units: found, truncated: found.count >= limit, notes: notes, noGroup: false,
                               bestRank: query.choices.map(\.rank).min() ?? 1, cutScore: cut,
                               beyondEarliestETA: cut.map { max(0, $0 - penalties) })
    }

    /// Adds consolidation candidates to capped lists: for an order whose list was cut at its
    /// limit, up to its quantity of units from every centre that appears in the lists of its
    /// hospital's orders, so the optimiser can fill the order from a shipment the hospital
    /// receives anyway even when those units rank after the cut. Units of a choice limited per
    /// request (low-titre group O whole blood) are added only up to the limit, counting those the
    /// list holds already, so no allocation can exceed it.
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
            let limitedGroups = Set(query.choices.filter { $0.maximumUnits != nil }.map(\.group))
            let limit = query.choices.compactMap(\.maximumUnits).min() ?? .max
            var limitedListed = lists[o].units.filter { limitedGroups.contains($0.group) }.count
            for centre in (centresOfHospital[order.hospitalID] ?? []).sorted() where (present[centre] ?? 0) < order.quantity {
                query.onlyCentreIDs = [centre]
                for unit in matcher.match(query, now: now).chosen where known.insert(unit.key).inserted {
                    if limitedGroups.contains(unit.group) {
                        guard limitedListed < limit else { continue }
                        limitedListed += 1
                    }
                    lists[o].units.append(unit)
                }
            }
        }
    }

    /// The ETA (minutes from `now`) by which an order's units should arrive: its urgency's time
    /// ceiling, or its needed-by time when sooner (as in live matches, Data/SOURCES.md §S27), never
    /// before now. Nil when neither is set.
    public func deadlineMinutes(_ order: BatchOrder, now: Int64) -> Double? {
        planner.settings.arrivalDeadlineMinutes(urgency: order.urgency, neededBy: order.neededBy.map { Int64($0.timeIntervalSince1970) },
                                                now: now).map { max(0, $0) }
    }

    /// Minutes a unit arriving `etaMinutes` from now is late against the order's deadline.
    /// Lateness counts from the deadline, or from now when that is already past: an overdue order
    /// is served as soon as possible, never priced out of the plan by the time that passed before
    /// it was planned.
    func lateMinutes(_ order: BatchOrder, etaMinutes: Double, now: Int64) -> Double {
        deadlineMinutes(order, now: now).map { max(0, etaMinutes - $0) } ?? 0
    }

    /// The most wastage credit a unit of `component` can earn: the matcher proposes none that
    /// arrives with less than the component's minimum remaining life, and the credit grows only as
    /// the remaining life at arrival falls below the horizon (so platelets, whose 24-h margin
    /// equals their 24-h horizon, earn none).
    func maximumWastageCredit(_ component: Component) -> Double {
        let horizon = settings.wastageHorizonHours[component] ?? 0
        guard horizon > 0 else { return 0 }
        let margin = planner.settings.minimumRemainingHoursAtArrival[component] ?? 0
        return settings.wastageCreditMinutes * min(1, max(0, 1 - margin / horizon))
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
                let late = lateMinutes(order, etaMinutes: unit.etaMinutes, now: now)
                var credit = 0.0
                // Only the recipient's best-ranked group earns the credit (LB-ONEG; Data/SOURCES.md §S2).
                if unit.rank == bestRank, horizon > 0 {
                    let remaining = Double(unit.expiresAt) - arrival
                    credit = settings.wastageCreditMinutes * min(1, max(0, 1 - remaining / horizon))
                }
                let minutes = settings.weight(order.urgency) * unit.score + settings.latenessWeight * late - credit
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
        // The least a unit beyond an order's cut can cost: the cut's score, less the most wastage
        // credit a unit of its component can earn, plus the lateness it cannot avoid when even its
        // soonest possible arrival is late.
        let beyond = orders.indices.map { o -> Int64? in
            guard let cut = lists[o].cutScore, let soonest = lists[o].beyondEarliestETA else { return nil }
            let late = lateMinutes(orders[o], etaMinutes: soonest, now: now)
            let weighted = settings.weight(orders[o].urgency) * cut
            let credit = maximumWastageCredit(orders[o].component)
            return Int64(((weighted - credit + settings.latenessWeight * late) * Self.scale).rounded(.down))
        }
        return BatchCandidateGraph(
            orders: orders, units: units, edges: edges, edgesByOrder: ranges, truncated: lists.map(\.truncated), beyondCost: beyond,
            ruleNotes: lists.map(\.notes), noAcceptableGroup: lists.map(\.noGroup), centres: centres,
            hospitals: hospitals, unitCentre: unitCentre, orderHospital: orderHospital)
    }
}
