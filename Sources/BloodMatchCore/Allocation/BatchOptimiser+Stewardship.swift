import Foundation

/// Stewardship in batch plans: the live matcher's band rule, over every eligible unit.
///
/// A plan must not give an order a unit while a better-ranked unit eligible for the same order is
/// left unallocated and arrives at most the urgency's band tolerance later (`preferenceBandMinutes`),
/// and by the deadline when the allocated unit arrives by it (`PreferenceBands.bandEnd`). So O
/// RhD-negative is never spent on a non-O recipient, nor an RhD-positive unit on an RhD-negative
/// one, to save a courier run while a unit of a better rank is in the band (Data/SOURCES.md §S26,
/// §S30). Units at one centre share an ETA, so the rule always holds inside one fridge.
///
/// The time ceiling holds the same way: a plan gives no order a unit arriving after its deadline
/// (the urgency's time ceiling, or its needed-by time when sooner) while a unit that could arrive
/// by it is left free (§S27).
///
/// The check searches the whole index with the live matcher, not only the candidate lists, and
/// treats units held or allocated to another order as taken. The repair replaces such a unit with
/// what a live match restricted to the better ranks would choose (the best of the band of the
/// nearest free better-ranked unit, or of the nearest free unit for a late one), most urgent
/// orders first, until no breach is left. Every replacement either makes a late allocation one
/// in time (a unit in time is never replaced by a late one: a band that starts by the deadline
/// ends there) or lowers an allocation's rank without making it late, so the repair ends; it
/// never changes how many units an order gets, and never takes a low-titre group O whole-blood
/// unit past the per-request limit.
extension BatchOptimiser {
    /// An order's query and what the band rule needs of it, computed once per order.
    struct StewardshipQuery {
        var query: UnitQuery
        var bestRank: Int
        /// Groups whose units count against the per-request limit, and the limit.
        var limitedGroups: Set<BloodGroup>
        var limit: Int
        var bands: PreferenceBands
    }

    func stewardshipQuery(_ order: BatchOrder, index: InventoryIndex, now: Int64) -> StewardshipQuery {
        var request = order.matchRequest
        request.quantity = 1
        let (query, _, _) = planner.query(for: request, destination: order.destination)
        let bands = PreferenceBands(toleranceMinutes: planner.settings.preferenceBandMinutes[order.urgency] ?? 0, usesPreference: true,
                                    index: index, deadlineMinutes: deadlineMinutes(order, now: now) ?? .infinity)
        return StewardshipQuery(query: query, bestRank: query.choices.map(\.rank).min() ?? 1,
                                limitedGroups: Set(query.choices.filter { $0.maximumUnits != nil }.map(\.group)),
                                limit: query.choices.compactMap(\.maximumUnits).min() ?? .max, bands: bands)
    }

    /// The unit the rules prefer to `unit` for the order, if any, among units not in `taken`:
    /// - when `unit` arrives after the deadline and a unit could arrive by it, what a live match
    ///   would choose (the band of the nearest unit, which ends at the deadline): a unit in time is
    ///   never passed over for a late one;
    /// - else, when the nearest unit of a better rank arrives within `unit`'s band, what a live
    ///   match restricted to the better ranks would choose.
    /// `limitedHeld` counts the order's allocated units of a limited choice.
    func preferredUnit(_ s: StewardshipQuery, unit: ProposedUnit, limitedHeld: Int, taken: Set<UnitKey>,
                       index: InventoryIndex, now: Int64) -> ProposedUnit? {
        let late = unit.etaMinutes > s.bands.deadlineMinutes
        guard late || unit.rank > s.bestRank else { return nil }
        let full = limitedHeld >= s.limit && !s.limitedGroups.contains(unit.group)
        var quiet = planner.settings
        quiet.rejectedCandidatesKept = 0
        let matcher = UnitMatcher(index: index, settings: quiet, travelTimes: planner.travelTimes, ordering: .preferenceBands)
        func best(ranksBelow rank: Int) -> ProposedUnit? {
            var query = s.query
            query.choices = query.choices.filter { $0.rank < rank && !(full && $0.maximumUnits != nil) }
            guard !query.choices.isEmpty else { return nil }
            query.excludedUnits = taken
            return matcher.match(query, now: now).chosen.first
        }
        if late, let inTime = best(ranksBelow: .max), let nearest = inTime.bandStartMinutes, nearest <= s.bands.deadlineMinutes {
            return inTime
        }
        guard unit.rank > s.bestRank, let better = best(ranksBelow: unit.rank), let nearest = better.bandStartMinutes,
              nearest <= s.bands.bandEnd(start: unit.etaMinutes) else { return nil }
        return better
    }

    /// Repairs `allocations` until no allocation breaks the band rule or the deadline, giving units
    /// a replacement frees to orders still short; returns them (new ones appended) with, per
    /// allocation replaced, the unit it first had and the unit first preferred to it.
    func steward(orders: [BatchOrder], allocations: [(order: Int, unit: ProposedUnit)], index: InventoryIndex,
                 excluded: Set<UnitKey>, now: Int64)
        -> (allocations: [(order: Int, unit: ProposedUnit)], replaced: [Int: ProposedUnit], preferred: [Int: ProposedUnit]) {
        var out = allocations
        var taken = excluded
        for a in out { taken.insert(a.unit.key) }
        var queries: [Int: StewardshipQuery] = [:]
        var limitedHeld: [Int: Int] = [:]
        for a in out {
            if queries[a.order] == nil { queries[a.order] = stewardshipQuery(orders[a.order], index: index, now: now) }
            if queries[a.order]!.limitedGroups.contains(a.unit.group) { limitedHeld[a.order, default: 0] += 1 }
        }
        var replaced: [Int: ProposedUnit] = [:]
        var preferred: [Int: ProposedUnit] = [:]
        var filled: [Int: Int] = [:]
        for a in out { filled[a.order, default: 0] += 1 }
        var changed = true
        while changed {
            changed = false
            // Most urgent orders first, so a unit a replacement frees goes to them first.
            let sequence = out.indices.sorted { (orders[out[$0].order].urgency.priority, $0) < (orders[out[$1].order].urgency.priority, $1) }
            for i in sequence {
                let o = out[i].order, s = queries[o]!
                guard let better = preferredUnit(s, unit: out[i].unit, limitedHeld: limitedHeld[o] ?? 0, taken: taken,
                                                index: index, now: now) else { continue }
                if replaced[i] == nil {
                    replaced[i] = out[i].unit
                    preferred[i] = better
                }
                if s.limitedGroups.contains(out[i].unit.group) { limitedHeld[o, default: 0] -= 1 }
                if s.limitedGroups.contains(better.group) { limitedHeld[o, default: 0] += 1 }
                taken.remove(out[i].unit.key)
                taken.insert(better.key)
                out[i].unit = better
                changed = true
            }
            guard changed else { break }
            // A replaced unit is free again: an order still short takes it (or any free unit) as a
            // live match would, most urgent first.
            for o in orders.indices.sorted(by: { (orders[$0].urgency.priority, $0) < (orders[$1].urgency.priority, $1) })
            where (filled[o] ?? 0) < orders[o].quantity {
                if queries[o] == nil { queries[o] = stewardshipQuery(orders[o], index: index, now: now) }
                let s = queries[o]!
                var query = s.query
                // The limit counts the limited units the order holds already.
                let limitLeft = s.limit - (limitedHeld[o] ?? 0)
                if limitLeft <= 0 { query.choices = query.choices.filter { $0.maximumUnits == nil } }
                for k in query.choices.indices where query.choices[k].maximumUnits != nil {
                    query.choices[k].maximumUnits = min(query.choices[k].maximumUnits!, limitLeft)
                }
                guard !query.choices.isEmpty else { continue }
                query.quantity = orders[o].quantity - (filled[o] ?? 0)
                query.excludedUnits = taken
                var quiet = planner.settings
                quiet.rejectedCandidatesKept = 0
                let found = UnitMatcher(index: index, settings: quiet, travelTimes: planner.travelTimes, ordering: .preferenceBands)
                    .match(query, now: now).chosen
                for unit in found {
                    out.append((o, unit))
                    taken.insert(unit.key)
                    filled[o, default: 0] += 1
                    if s.limitedGroups.contains(unit.group) { limitedHeld[o, default: 0] += 1 }
                }
            }
        }
        return (out, replaced, preferred)
    }

    /// The plan kept to the stewardship rules at the least cost found.
    ///
    /// The optimiser's allocation is repaired (`steward`); then, up to `stewardshipRounds` times,
    /// the graph is optimised again with each rule the last repair enforced priced in, as a
    /// Lagrangian relaxation prices a broken constraint: an allocation (o, u) that left a preferred
    /// unit v free costs more, and every use of v costs less, by a price that grows each round
    /// the rule is broken by what keeping it costs o (v's cost less u's, at least one shipment
    /// charge) and halves each round it is kept (a subgradient step). So the optimiser may keep (o, u) and give v
    /// to another order, as the constrained optimum often does, or give o its v. The preferred
    /// units are offered to the orders already drawing on their centres. Each round's plan is
    /// repaired too, and so is greedy's; every candidate keeps the rules, and the cheapest, priced
    /// on one graph of every list, wins. Graphs larger than `exactSearchEdgeLimit` get one round
    /// and no offers (each round is a whole optimisation). Returns that graph, the chosen edges,
    /// greedy's repaired edges (the baseline), the units the winner's repair replaced (by position
    /// in `chosen`) and how many allocations of the optimiser's first plan broke the rules.
    func stewardedPlan(orders: [BatchOrder], lists: inout [OrderCandidates], graph: BatchCandidateGraph, chosen: [Int],
                       index: InventoryIndex, excluded: Set<UnitKey>, now: Int64)
        -> (graph: BatchCandidateGraph, chosen: [Int], greedy: [Int], replaced: [Int: ProposedUnit], breaches: Int) {
        typealias Allocations = [(order: Int, unit: ProposedUnit)]
        var attempts: [(allocations: Allocations, replaced: [Int: ProposedUnit])] = []
        var listed = lists.map { Set($0.units.map(\.key)) }
        var added = false
        func list(_ allocations: Allocations) {
            for a in allocations where listed[a.order].insert(a.unit.key).inserted {
                lists[a.order].units.append(a.unit)
                added = true
            }
        }
        func allocations(_ graph: BatchCandidateGraph, _ chosen: [Int]) -> Allocations {
            chosen.map { (order: graph.edges[$0].order, unit: graph.edges[$0].proposal) }
        }
        // Greedy, repaired: the baseline the plan is compared with keeps the rules too (live
        // answers do), and it is one more candidate.
        let greedyFixed = steward(orders: orders, allocations: allocations(graph, greedy(graph)), index: index, excluded: excluded, now: now).allocations
        list(greedyFixed)
        var current = allocations(graph, chosen)
        var prices: [RulePrice: Int64] = [:]
        var offered = Set<UnitKey>()
        var breaches = 0
        // Large graphs (national batches) get one priced round: each costs a whole optimisation.
        let rounds = graph.edges.count <= settings.exactSearchEdgeLimit ? max(0, settings.stewardshipRounds ?? 0) : min(1, settings.stewardshipRounds ?? 0)
        for round in 0...rounds {
            let (fixed, replaced, preferred) = steward(orders: orders, allocations: current, index: index, excluded: excluded, now: now)
            if round == 0 { breaches = replaced.count }
            attempts.append((fixed, replaced))
            list(fixed)
            if round == rounds || round == 0 && replaced.isEmpty { break }
            // A subgradient step: a rule priced before and kept this round loses half its price (it
            // may be over-priced); a rule broken this round, new or not, gains.
            let used = Set(current.map(\.unit.key))
            var broken: [(rule: RulePrice, held: UnitKey)] = []
            for rule in prices.keys {
                let o = rule.order, bands = stewardshipQuery(orders[o], index: index, now: now).bands
                if !used.contains(rule.preferred.key),
                   let held = current.first(where: { $0.order == o && prefers(rule.preferred, to: $0.unit, bands: bands) }) {
                    broken.append((rule, held.unit.key))
                } else {
                    prices[rule]! /= 2
                }
            }
            for (i, before) in replaced {
                let o = fixed[i].order
                let better = preferred[i]!
                let rule = RulePrice(order: o, preferred: better)
                if prices[rule] == nil { broken.append((rule, before.key)) }
                list([(o, better)])
                // Offers search a centre's whole stock per order: on small graphs only.
                if graph.edges.count <= settings.exactSearchEdgeLimit, offered.insert(better.key).inserted {
                    offer(better, component: orders[o].component, orders: orders, lists: &lists, listed: &listed, index: index, excluded: excluded, now: now)
                }
            }
            let plain = assemble(orders: orders, lists: lists, now: now)
            var cost: [Int: [UnitKey: Int64]] = [:]
            for edge in plain.edges { cost[edge.order, default: [:]][plain.units[edge.unit].key] = edge.cost }
            // A broken rule's price grows by what keeping it costs the order (its preferred unit
            // less the unit it held), and by at least one shipment charge.
            for (rule, held) in broken {
                let gap = (cost[rule.order]?[rule.preferred.key] ?? 0) - (cost[rule.order]?[held] ?? 0)
                prices[rule, default: 0] += max(shipmentCharge, gap)
            }
            let next = priced(plain, prices, index: index, now: now)
            // The heuristics only: branch and bound on a priced graph proves nothing of the plan.
            current = allocations(next, heuristicOptimise(next).chosen)
        }
        attempts.append((greedyFixed, [:]))
        let planGraph = added ? assemble(orders: orders, lists: lists, now: now) : graph
        var edgeOf: [Int: [UnitKey: Int]] = [:]
        for (e, edge) in planGraph.edges.enumerated() { edgeOf[edge.order, default: [:]][planGraph.units[edge.unit].key] = e }
        // Every allocation of every attempt was listed above, so each has its edge; an attempt that
        // had not would be skipped rather than priced wrong.
        func edges(_ allocations: Allocations) -> [Int]? {
            var out: [Int] = []
            for a in allocations {
                guard let e = edgeOf[a.order]?[a.unit.key] else { return nil }
                out.append(e)
            }
            return out
        }
        var best: (chosen: [Int], replaced: [Int: ProposedUnit], value: Int64)? = nil
        for attempt in attempts {
            guard let chosen = edges(attempt.allocations) else { continue }
            let value = objective(planGraph, chosen)
            if best == nil || value < best!.value { best = (chosen, attempt.replaced, value) }
        }
        guard let best else { return (graph, chosen, greedy(graph), [:], breaches) }
        return (planGraph, best.chosen, edges(greedyFixed) ?? greedy(planGraph), best.replaced, breaches)
    }

    /// Adds `unit` to the lists of the orders of its component that already list a unit of its
    /// centre, where the rules allow it (the live matcher, searching that centre only).
    func offer(_ unit: ProposedUnit, component: Component, orders: [BatchOrder], lists: inout [OrderCandidates], listed: inout [Set<UnitKey>],
               index: InventoryIndex, excluded: Set<UnitKey>, now: Int64) {
        var quiet = planner.settings
        quiet.rejectedCandidatesKept = 0
        let matcher = UnitMatcher(index: index, settings: quiet, travelTimes: planner.travelTimes, ordering: .cost)
        var offered = 0
        for (o, order) in orders.enumerated() where offered < Self.offersPerUnit && order.component == component && !lists[o].noGroup {
            guard !listed[o].contains(unit.key), lists[o].units.contains(where: { $0.centreID == unit.centreID }) else { continue }
            var request = order.matchRequest
            request.quantity = index.unitCount
            var (query, _, _) = planner.query(for: request, destination: order.destination, excluded: excluded)
            query.quantity = index.bucket(centre: index.centres.firstIndex { $0.siteID == unit.centreID } ?? 0, component: component, group: unit.group).count
            query.choices = query.choices.filter { $0.group == unit.group && $0.maximumUnits == nil }
            guard !query.choices.isEmpty else { continue }
            query.onlyCentreIDs = [unit.centreID]
            if let mine = matcher.match(query, now: now).chosen.first(where: { $0.key == unit.key }) {
                lists[o].units.append(mine)
                listed[o].insert(mine.key)
                offered += 1
            }
        }
    }

    /// Most orders a preferred unit is offered to.
    static let offersPerUnit = 20
}

/// A stewardship rule the optimiser is made to pay for breaking: order `order` holding a unit
/// `preferred` is preferred to (`BatchOptimiser.prefers`) while `preferred` is free.
struct RulePrice: Hashable {
    var order: Int
    var preferred: ProposedUnit
}

extension BatchOptimiser {
    /// Whether the rules prefer `better` to `held` for an order with these bands: `held` is late
    /// and `better` in time, or `better` ranks better and arrives within `held`'s band.
    func prefers(_ better: ProposedUnit, to held: ProposedUnit, bands: PreferenceBands) -> Bool {
        if held.etaMinutes > bands.deadlineMinutes && better.etaMinutes <= bands.deadlineMinutes { return true }
        return better.rank < held.rank && better.etaMinutes <= bands.bandEnd(start: held.etaMinutes)
    }

    /// `graph` with each rule's price added to every allocation that would break it (a unit of its
    /// order the preferred unit is preferred to) and taken off every use of the preferred unit;
    /// edges re-sorted by cost within each order.
    func priced(_ graph: BatchCandidateGraph, _ prices: [RulePrice: Int64], index: InventoryIndex, now: Int64) -> BatchCandidateGraph {
        guard !prices.isEmpty else { return graph }
        var rules: [Int: [(preferred: ProposedUnit, price: Int64)]] = [:]
        var discount: [UnitKey: Int64] = [:]
        for (rule, price) in prices {
            rules[rule.order, default: []].append((rule.preferred, price))
            discount[rule.preferred.key, default: 0] += price
        }
        var out = graph
        for (o, orderRules) in rules {
            let bands = PreferenceBands(toleranceMinutes: planner.settings.preferenceBandMinutes[graph.orders[o].urgency] ?? 0,
                                        usesPreference: true, index: index, deadlineMinutes: deadlineMinutes(graph.orders[o], now: now) ?? .infinity)
            for e in graph.edgesByOrder[o] {
                let held = graph.edges[e].proposal
                for rule in orderRules where rule.preferred.key != held.key && prefers(rule.preferred, to: held, bands: bands) {
                    out.edges[e].cost += rule.price
                }
            }
        }
        for e in out.edges.indices { out.edges[e].cost -= discount[graph.units[graph.edges[e].unit].key] ?? 0 }
        for range in out.edgesByOrder {
            out.edges[range].sort { ($0.cost, out.units[$0.unit].key) < ($1.cost, out.units[$1.unit].key) }
        }
        return out
    }
}
