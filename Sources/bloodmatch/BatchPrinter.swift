import BloodMatchCore
import Foundation

/// The dispatch list of a batch plan, for people.
enum BatchPrinter {
    static func render(_ plan: BatchPlan, runID: UUID?, runKey: String?, isNew: Bool, solveMilliseconds: Int) -> String {
        var lines: [String] = []
        let allocated = plan.outcomes.filter { $0.status == .allocated }.count
        let partial = plan.outcomes.filter { $0.status == .partiallyAllocated }.count
        let none = plan.outcomes.filter { $0.status == .unfillable }.count
        if let runID, let runKey {
            lines.append("Batch run \(runID.uuidString.lowercased()) (key \(runKey))\(isNew ? "" : " — already run with this key; shown unchanged")")
        } else {
            lines.append("Batch plan (not recorded)")
        }
        lines.append("Planned at \(SnapshotWriter.timestamp(plan.evaluatedAt)); policy \(plan.policyVersion); index \(plan.indexVersion)")
        lines.append("Orders: \(plan.outcomes.count) pending → \(allocated) allocated, \(partial) partially allocated, \(none) unfillable")
        let excess = plan.cost.totalMinutes > 0 ? (plan.greedyCost.totalMinutes / plan.cost.totalMinutes - 1) * 100 : 0
        lines.append(String(format: "Units: %d in %d shipment(s); cost %.0f min (units %.0f + shipments %.0f); greedy baseline %.0f min in %d shipment(s) (%+.1f %%); solved in %d ms",
                            plan.allocations.count, plan.shipments.count, plan.cost.totalMinutes, plan.cost.unitMinutes,
                            plan.cost.shipmentMinutes, plan.greedyCost.totalMinutes, plan.greedyCost.shipments, excess, solveMilliseconds))
        if let bound = plan.lowerBoundMinutes {
            let gap = { (b: Double) in max(0, (plan.cost.totalMinutes - b) / max(1e-9, b) * 100) }
            var line: String
            if let cut = plan.ordersWithCutLists {
                line = plan.provenOptimal == true ? "Optimality: proven optimal over every eligible unit"
                    : String(format: "Optimality: at most %.2f %% above the optimum over every eligible unit (proven lower bound %.0f min)", gap(bound), bound)
                if cut > 0 {
                    line += "; \(cut) order(s)' candidate lists were cut"
                    if let candidate = plan.candidateLowerBoundMinutes, plan.provenOptimal != true {
                        line += plan.provenOptimalOverCandidates == true ? ", over whose candidates the plan is proven optimal"
                            : String(format: ", over whose candidates it is at most %.2f %% above the optimum", gap(candidate))
                    }
                }
            } else {
                // A plan recorded before whole-problem bounds: its claims were about its candidates.
                line = plan.provenOptimal == true ? "Optimality: proven optimal over the candidate units (branch and bound)"
                    : String(format: "Optimality: at most %.2f %% above the optimum over the candidate units (proven lower bound %.0f min)", gap(bound), bound)
            }
            lines.append(line)
        }
        if let repaired = plan.stewardshipBreachesRepaired, repaired > 0 {
            lines.append("Stewardship: \(repaired) allocation(s) of the optimiser's first plan left a better-ranked unit in their band, or a unit in time, free; none in this plan does (Data/SOURCES.md §S30)")
        }
        if plan.cost.unserved != plan.greedyCost.unserved {
            lines.append("Unserved units: optimiser \(describe(plan.cost.unserved)); greedy \(describe(plan.greedyCost.unserved))")
        }
        if !plan.staleCentres.isEmpty {
            lines.append("STALE DATA at \(plan.staleCentres.joined(separator: ", ")): units from these centres are flagged — confirm by phone before dispatch")
        }
        let byUnit = Dictionary(plan.allocations.map { ($0.unit.key, $0) }, uniquingKeysWith: { a, _ in a })
        for shipment in plan.shipments {
            lines.append("")
            var head = "Shipment \(shipment.number)  \(shipment.centreID) → \(shipment.hospitalID)  \(shipment.units.count) unit(s)  ETA \(Int(shipment.etaMinutes.rounded())) min"
            if let met = shipment.neededByMet { head += met ? "  needed-by met" : "  LATE for needed-by" }
            let late = shipment.units.filter { byUnit[$0]?.unit.late == true }.count
            if late > 0 { head += "  \(late) unit(s) LATE: after the order's deadline" }
            if shipment.staleCentre { head += "  STALE centre data: confirm before dispatch" }
            lines.append(head)
            for unit in shipment.units {
                guard let a = byUnit[unit] else { continue }
                lines.append("  \(a.orderID)  \(unit)  \(a.rationale)")
            }
        }
        let short = plan.outcomes.filter { $0.status != .allocated }
        if !short.isEmpty {
            lines.append("")
            lines.append("Orders short:")
            for o in short.sorted(by: { ($0.urgency, $0.orderID) < ($1.urgency, $1.orderID) }) {
                lines.append("  \(o.orderID) (\(o.urgency.rawValue)) \(o.allocated) of \(o.quantity): \(o.reason ?? "")")
            }
        }
        let late = plan.outcomes.filter { $0.status == .allocated && $0.reason != nil }
        if !late.isEmpty {
            lines.append("")
            lines.append("Orders served late:")
            for o in late.sorted(by: { ($0.urgency, $0.orderID) < ($1.urgency, $1.orderID) }) {
                lines.append("  \(o.orderID) (\(o.urgency.rawValue)) \(o.allocated) of \(o.quantity): \(o.reason ?? "")")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func describe(_ unserved: [Urgency: Int]) -> String {
        Urgency.allCases.map { "\($0.rawValue) \(unserved[$0] ?? 0)" }.joined(separator: ", ")
    }
}
