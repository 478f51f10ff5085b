import Foundation

/// One unit allocated to one order, with why it went there.
public struct BatchAllocation: Sendable, Hashable, Codable {
    /// The order served.
    public var orderID: String
    /// The ordering hospital.
    public var hospitalID: String
    /// The unit, as the matcher proposed it (group, rank, rule, ETA, expiry, stale flag…).
    public var unit: ProposedUnit
    /// The unit's cost in the objective, in minutes (score + lateness − wastage credit).
    public var costMinutes: Double
    /// Minutes late against the order's deadline: its urgency's time ceiling, or its needed-by time
    /// when sooner (0 when on time). `unit.late` says whether it is late at all.
    public var lateMinutes: Double
    /// Wastage credit taken for a short-dated unit, in minutes.
    public var wastageCreditMinutes: Double
    /// The rationale in words.
    public var rationale: String
}

/// A planned courier run from a centre to a hospital.
public struct BatchShipment: Sendable, Hashable, Codable {
    /// Sequence number within the run, 1-based.
    public var number: Int
    /// The centre dispatching.
    public var centreID: String
    /// The hospital receiving.
    public var hospitalID: String
    /// The units, by DIN and product code.
    public var units: [UnitKey]
    /// The orders served.
    public var orderIDs: [String]
    /// Estimated minutes from dispatch to arrival.
    public var etaMinutes: Double
    /// Whether every unit arrives by its order's needed-by time (nil when no order gave one).
    public var neededByMet: Bool?
    /// Whether the centre's data was stale at planning: confirm stock by phone before dispatch.
    public var staleCentre: Bool
}

/// What became of one order in a run.
public enum BatchOrderStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every unit allocated.
    case allocated
    /// Some units allocated.
    case partiallyAllocated = "partially_allocated"
    /// None allocated.
    case unfillable
}

/// One order's outcome with the reason when it is short or was already overdue when planned.
public struct BatchOrderOutcome: Sendable, Hashable, Codable {
    /// The order.
    public var orderID: String
    /// Its urgency.
    public var urgency: Urgency
    /// Units asked for.
    public var quantity: Int
    /// Units allocated.
    public var allocated: Int
    /// The outcome.
    public var status: BatchOrderStatus
    /// Why it is short (nil when fully allocated).
    public var reason: String?
    /// Eligible units found for it by the rules (candidate lists may have been capped).
    public var eligibleFound: Int
}

/// Cost of a plan, split so two plans compare on the same terms.
public struct BatchCost: Sendable, Hashable, Codable {
    /// Sum of the allocated units' costs, in minutes.
    public var unitMinutes: Double
    /// Number of shipments.
    public var shipments: Int
    /// Shipment charges, in minutes.
    public var shipmentMinutes: Double
    /// Units left unserved per urgency.
    public var unserved: [Urgency: Int]
    /// Unit costs plus shipment charges (unserved demand is reported apart, never hidden in it).
    public var totalMinutes: Double { unitMinutes + shipmentMinutes }
}

/// The result of a batch allocation: allocations, shipments, per-order outcomes and costs.
public struct BatchPlan: Sendable, Hashable, Codable {
    /// Planning instant.
    public var evaluatedAt: Date
    /// Policy version the rules came from.
    public var policyVersion: String
    /// The index version (the snapshots in force).
    public var indexVersion: String
    /// Every allocation.
    public var allocations: [BatchAllocation]
    /// Shipments, by centre then hospital.
    public var shipments: [BatchShipment]
    /// One outcome per order, in the order given.
    public var outcomes: [BatchOrderOutcome]
    /// The optimiser's cost.
    public var cost: BatchCost
    /// The greedy baseline's cost on the same candidates (orders one by one, most urgent first,
    /// each taking its cheapest remaining units, as independent nearest-unit answers would), kept
    /// to the same stewardship rules as the plan (live answers keep them too); the repair gives a
    /// unit it frees to an order still short, searching the whole index.
    public var greedyCost: BatchCost
    /// Centres whose data was stale at planning (their units are flagged).
    public var staleCentres: [String]
    /// Candidate edges (order, unit) in the final graph.
    public var candidateEdges: Int
    /// Slope-scaling rounds run and local-search moves applied.
    public var rescalingRounds: Int
    /// Shipments closed by the local search.
    public var shipmentsClosedByLocalSearch: Int
    /// Settings used.
    public var settings: BatchSettings
    /// A proven lower bound on `cost.totalMinutes` of every allocation of the whole problem (every
    /// eligible unit, not only the candidates) serving as many units (absent in plans recorded
    /// before it was computed; in plans recorded before `ordersWithCutLists` existed, it was a
    /// bound over the candidate graph only).
    public var lowerBoundMinutes: Double?
    /// Whether the plan is proven optimal over the whole problem: its cost meets `lowerBoundMinutes`.
    public var provenOptimal: Bool?
    /// A proven lower bound over the candidate graph alone (the units listed per order).
    public var candidateLowerBoundMinutes: Double? = nil
    /// Whether branch and bound proved the plan optimal over the candidate graph.
    public var provenOptimalOverCandidates: Bool? = nil
    /// Orders whose candidate list was cut at its limit (more eligible units exist beyond it).
    public var ordersWithCutLists: Int? = nil
    /// Allocations of the optimiser's first plan that broke the stewardship rules (a better-ranked
    /// unit free in the band, or a unit in time free for a late one; Data/SOURCES.md §S30), all
    /// repaired before the plan was made. Nil in plans recorded before the rules applied to batches.
    public var stewardshipBreachesRepaired: Int? = nil
}
