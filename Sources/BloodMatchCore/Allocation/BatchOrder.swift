import Foundation

/// A hospital's pending order, as the batch allocation sees it.
public struct BatchOrder: Sendable, Hashable, Codable {
    /// The order id, unique across all orders.
    public var orderID: String
    /// The ordering hospital (the destination of every unit).
    public var hospitalID: String
    /// The hospital's location.
    public var destination: GeoPoint
    /// Component wanted.
    public var component: Component
    /// The recipient: group (nil = not yet determined) and clinical context.
    public var recipient: Recipient
    /// Units wanted.
    public var quantity: Int
    /// Special requirements every unit must meet.
    public var requirements: [UnitAttribute]
    /// Maximum unit age in days (fresh red cells for neonates), if any.
    public var maximumUnitAgeDays: Int?
    /// Urgency: emergency orders are served before urgent, urgent before routine.
    public var urgency: Urgency
    /// When the units are needed, if said.
    public var neededBy: Date?
    /// When the order was placed (ties within an urgency are broken by it in the greedy baseline).
    public var placedAt: Date

    /// Creates an order.
    public init(orderID: String, hospitalID: String, destination: GeoPoint, component: Component, recipient: Recipient,
                quantity: Int, requirements: [UnitAttribute] = [], maximumUnitAgeDays: Int? = nil, urgency: Urgency,
                neededBy: Date? = nil, placedAt: Date) {
        self.orderID = orderID
        self.hospitalID = hospitalID
        self.destination = destination
        self.component = component
        self.recipient = recipient
        self.quantity = quantity
        self.requirements = requirements.sorted()
        self.maximumUnitAgeDays = maximumUnitAgeDays
        self.urgency = urgency
        self.neededBy = neededBy
        self.placedAt = placedAt
    }

    /// The order as a match request (the same rules and requirement plan as a live match).
    public var matchRequest: MatchRequest {
        MatchRequest(requestID: orderID, hospitalID: hospitalID, destination: destination, component: component,
                     recipient: recipient, quantity: quantity, requirements: requirements,
                     maximumUnitAgeDays: maximumUnitAgeDays, urgency: urgency, neededBy: neededBy)
    }
}

/// Weights of the batch objective, in minutes of courier time; operating choices, not clinical rules.
///
/// Each allocated unit costs its matcher score (ETA plus the rules' rank penalty for a less
/// preferred group plus the surplus-attribute penalty, `MatchingSettings`) times its order's
/// urgency weight (`urgencyWeight`: urgency buys time), plus lateness, minus
/// a wastage credit for short-dated units; each distinct centre → hospital shipment costs
/// `shipmentCostMinutes`; each unit of demand left unserved costs `unservedPenaltyMinutes` of its
/// urgency, so filling orders always comes first and an emergency order is never left short for
/// an urgent or routine one.
public struct BatchSettings: Sendable, Hashable, Codable {
    /// Fixed cost of one shipment (one courier run from a centre to a hospital), in minutes.
    public var shipmentCostMinutes: Double
    /// Largest credit for using a unit at the end of its life, in minutes.
    ///
    /// Credited only when the unit's group is the best rank the rules give the recipient, so a
    /// short-dated unit never pulls a less preferred group — never O RhD-negative to a non-O
    /// patient merely to avoid waste (LB-ONEG; Data/SOURCES.md §S2).
    public var wastageCreditMinutes: Double
    /// Remaining life under which a unit counts as short-dated, per component, in hours; the
    /// credit grows linearly from 0 at this horizon to the full credit at expiry.
    public var wastageHorizonHours: [Component: Double]
    /// Minutes of cost per minute a unit arrives after the order's deadline: its urgency's time
    /// ceiling, or its needed-by time when sooner (`MatchingSettings.timeCeilingMinutes`).
    public var latenessWeight: Double
    /// What a minute of an order's unit score weighs, per urgency: an urgent minute counts
    /// twice a routine one, an emergency minute four times, so of two orders at one hospital
    /// (whose shipments are the same whichever takes which unit) the more urgent takes the nearer
    /// unit, and a more urgent order waits less to save a courier run (Data/SOURCES.md §S29).
    /// Nil in plans recorded before it existed (every weight 1).
    public var urgencyWeight: [Urgency: Double]? = nil
    /// Cost of one unit of demand left unserved, per urgency (orders of magnitude apart).
    public var unservedPenaltyMinutes: [Urgency: Double]
    /// Candidates kept per unit ordered in the first round (more for orders left short).
    public var candidatesPerUnit: Int
    /// Fewest candidates kept per order in the first round.
    public var minimumCandidates: Int
    /// Rounds that widen the candidate lists of orders left short.
    public var wideningRounds: Int
    /// Re-costing rounds for the shipment charge (slope scaling), at least 1.
    public var rescalingRounds: Int
    /// Largest candidate graph (edges) on which the drop/add/swap search over open shipments
    /// re-solves the whole flow per move; larger graphs use the per-hospital search only.
    public var globalSearchEdgeLimit: Int = 1500
    /// Largest number of centres able to serve one hospital for which the per-hospital search
    /// tries every set of open shipments (2ⁿ small flows) instead of drop/add moves.
    public var exactHospitalPairLimit: Int = 8
    /// Largest candidate graph (edges) on which branch and bound over the shipments runs after
    /// the heuristics; larger graphs get the root lower bound only.
    public var exactSearchEdgeLimit: Int = 3000
    /// Most flows branch and bound solves before it stops with the best plan found.
    public var exactSearchNodeLimit: Int = 20000
    /// Times the plan is optimised again without the allocations the stewardship repair replaced
    /// (`BatchOptimiser.stewardedPlan`); 0 keeps the first repair. Nil in plans recorded before
    /// the rounds existed (read as 0).
    public var stewardshipRounds: Int? = 3

    /// Creates settings.
    public init(shipmentCostMinutes: Double, wastageCreditMinutes: Double, wastageHorizonHours: [Component: Double],
                latenessWeight: Double, unservedPenaltyMinutes: [Urgency: Double], candidatesPerUnit: Int,
                minimumCandidates: Int, wideningRounds: Int, rescalingRounds: Int) {
        self.shipmentCostMinutes = shipmentCostMinutes
        self.wastageCreditMinutes = wastageCreditMinutes
        self.wastageHorizonHours = wastageHorizonHours
        self.latenessWeight = latenessWeight
        self.unservedPenaltyMinutes = unservedPenaltyMinutes
        self.candidatesPerUnit = candidatesPerUnit
        self.minimumCandidates = minimumCandidates
        self.wideningRounds = wideningRounds
        self.rescalingRounds = rescalingRounds
    }

    /// Defaults: a shipment costs 120 min; up to 60 min of wastage credit within 72 h of expiry
    /// (red cells, whole blood), 24 h (platelets), 7 days (plasma, cryoprecipitate); 2 min per
    /// minute late; unit scores weighted 4 / 2 / 1 and unserved units costing 10⁹ / 10⁷ / 10⁵ min
    /// (emergency / urgent / routine).
    public static let standard: BatchSettings = {
        var s = BatchSettings(
            shipmentCostMinutes: 120, wastageCreditMinutes: 60,
            wastageHorizonHours: [.redCells: 72, .wholeBlood: 72, .platelets: 24, .plasma: 168, .cryoprecipitate: 168],
            latenessWeight: 2, unservedPenaltyMinutes: [.emergency: 1e9, .urgent: 1e7, .routine: 1e5],
            candidatesPerUnit: 4, minimumCandidates: 30, wideningRounds: 3, rescalingRounds: 4)
        s.urgencyWeight = [.emergency: 4, .urgent: 2, .routine: 1]
        return s
    }()

    /// The weight of `urgency`'s unit scores (1 when not set).
    public func weight(_ urgency: Urgency) -> Double { urgencyWeight?[urgency] ?? 1 }
}
