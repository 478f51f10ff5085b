import BloodMatchCore
import BloodMatchIngest
import BloodMatchService
import BloodMatchStore
import Foundation
import Hummingbird

/// Orders, the last batch run, stock at risk, and a unit's or donation's history.
extension ConsoleHandlers {
    // MARK: GET /console/api/orders

    /// Pending orders, most urgent first (then needed-by, then placed); the last batch run's
    /// dispatch list and the orders it could not fill, with why.
    func orders(_ context: ConsoleRequestContext) async throws -> Response {
        let database = services.database
        let pending: [OrderRecord]
        let run: StoredBatchRun?
        do {
            (pending, run) = try await withDeadline(.seconds(4)) {
                (try await PostgresOrderStore(database: database).list(status: "pending", limit: 500),
                 try await PostgresBatchStore(database: database).latest())
            }
        } catch {
            throw ConsoleError.unableToVerify("orders could not be read: \(ConsoleError.reason(error))")
        }
        let sorted = pending.sorted {
            ($0.urgency.priority, $0.neededBy ?? .distantFuture, $0.placedAt ?? .distantFuture, $0.orderID)
                < ($1.urgency.priority, $1.neededBy ?? .distantFuture, $1.placedAt ?? .distantFuture, $1.orderID)
        }
        var last: JSONValue = .null
        if let run {
            let plan = run.plan
            last = [
                "run_id": .string(run.runID.uuidString.lowercased()), "finished_at": .string(iso(run.finishedAt)),
                "operator": .string(run.operatorName),
                "shipments": .array(plan.shipments.map { s in
                    ["number": .int(s.number), "centre": .string(s.centreID), "hospital": .string(s.hospitalID),
                     "units": .strings(s.units.map(\.description)), "orders": .strings(s.orderIDs),
                     "eta_minutes": .double((s.etaMinutes * 10).rounded() / 10), "needed_by_met": s.neededByMet.map { .bool($0) } ?? .null,
                     "stale_centre": .bool(s.staleCentre)]
                }),
                "short": .array(plan.outcomes.filter { $0.status != .allocated }.map { o in
                    ["order_id": .string(o.orderID), "urgency": .string(o.urgency.rawValue), "quantity": .int(o.quantity),
                     "allocated": .int(o.allocated), "status": .string(o.status.rawValue), "reason": .nullable(o.reason)]
                }),
            ]
        }
        return jsonResponse([
            "pending": .array(sorted.map { o in
                ["order_id": .string(o.orderID), "hospital": .string(o.hospitalID), "component": .string(o.component.rawValue),
                 "group": .string(o.group?.description ?? "unknown"), "quantity": .int(o.quantity), "urgency": .string(o.urgency.rawValue),
                 "needed_by": o.neededBy.map { .string(iso($0)) } ?? .null, "placed_at": o.placedAt.map { .string(iso($0)) } ?? .null,
                 "requirements": .strings(o.requirements.map(\.rawValue)), "immediate": .bool(o.immediate)]
            }),
            "last_run": last,
        ])
    }

    // MARK: GET /console/api/wastage

    /// Short-dated stock at risk of expiring unused against the last 7 days of demand, and the
    /// transfers suggested (`bloodmatch batch wastage`'s report, on the verified index).
    func wastage(_ context: ConsoleRequestContext) async throws -> Response {
        let now = services.now()
        let verified = try await verifiedIndex(now: now)
        let database = services.database
        let directory = services.heldUnits
        let held: [HeldUnit]
        let demand: [DemandSample]
        let sites: [Site]
        do {
            (held, demand, sites) = try await withDeadline(.seconds(4)) {
                (try await directory.current(database: database),
                 try await PostgresOrderStore(database: database).recentDemand(since: now.addingTimeInterval(-7 * 86_400)),
                 try await PostgresSiteStore(database: database).all())
            }
        } catch {
            throw ConsoleError.unableToVerify("holds and demand could not be read: \(ConsoleError.reason(error))")
        }
        let regions = Dictionary(sites.map { ($0.id, $0.region) }, uniquingKeysWith: { a, _ in a })
        let report = WastageReport.build(index: verified.index, held: Set(held.map(\.key)), demand: demand, demandDays: 7,
                                         horizonHours: BatchSettings.standard.wastageHorizonHours, now: now,
                                         settings: services.planner.settings, regions: regions, scope: .country)
        return jsonResponse([
            "demand_days": 7,
            "rows": .array(report.rows.prefix(100).map { r in
                ["centre": .string(r.centreID), "component": .string(r.component.rawValue), "group": .string(r.group.description),
                 "stock": .int(r.stock), "short_dated": .int(r.shortDated), "at_risk": .int(r.atRisk),
                 "daily_demand": .double((r.dailyDemand * 10).rounded() / 10),
                 "days_of_supply": r.daysOfSupply.map { .double(($0 * 10).rounded() / 10) } ?? .null]
            }),
            "transfers": .array(report.transfers.map { t in
                ["from": .string(t.fromCentreID), "to": .string(t.toCentreID), "component": .string(t.component.rawValue),
                 "group": .string(t.group.description), "units": .int(t.units.count), "reason": .string(t.reason)]
            }),
        ])
    }

    // MARK: GET /console/api/trace?din=…[&product_code=…]

    /// Everything recorded about a donation (every unit of the DIN) or one unit, as one timeline.
    func trace(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        let dinText = (query.get("din") ?? "").trimmingCharacters(in: .whitespaces).uppercased()
        guard (13...16).contains(dinText.count), dinText.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "=" }) else {
            throw ConsoleError.invalid("din", "a donation identification number (13 characters, e.g. A999926123456)")
        }
        let din = dinText.hasPrefix("=") ? String(dinText.dropFirst().prefix(13)) : String(dinText.prefix(13))
        let code = query.get("product_code").flatMap { $0.isEmpty ? nil : $0 }
        let database = services.database
        let trace: UnitTrace
        let recall: [RecallEntry]
        do {
            (trace, recall) = try await withDeadline(.seconds(5)) {
                (try await PostgresUnitTrace(database: database).trace(din: din, productCode: code),
                 try await PostgresUnitLifecycleStore(database: database).recall(din: din, productCode: code))
            }
        } catch {
            throw ConsoleError.unableToVerify("the history could not be read: \(ConsoleError.reason(error))")
        }
        var lines: [(Date, JSONValue)] = []
        func add(_ at: Date, _ kind: String, _ unit: String?, _ text: String, by: String? = nil) {
            lines.append((at, ["at": .string(iso(at)), "kind": .string(kind), "unit": .nullable(unit), "text": .string(text), "by": .nullable(by)]))
        }
        for m in trace.movements {
            add(m.importedAt, "stock", m.productCode, "\(m.change) in \(m.centre)'s snapshot of \(iso(m.asOf)): \(m.status), expires \(iso(m.expiresAt))")
        }
        for d in trace.decisions {
            add(d.recordedAt, "decision", d.productCode,
                "\(d.chosen ? "chosen" : "not chosen") by decision \(d.decisionID.uuidString.lowercased()) for \(d.hospital ?? "?") (\(d.outcome)): \(d.reason)")
        }
        for h in trace.holds {
            add(h.createdAt, "hold", h.productCode, "held for \(h.hospital) by reservation \(h.reservationID.uuidString.lowercased()) until \(iso(h.heldUntil))",
                by: h.reservedBy)
            if h.state != "active" { add(h.stateChangedAt, "hold", h.productCode, "hold \(h.state)") }
            if let blocked = h.blocked { add(h.stateChangedAt, "hold", h.productCode, "cannot be issued: \(blocked)") }
        }
        for d in trace.distributions {
            add(d.issuedAt, "issue", d.productCode, "issued from \(d.centre) to \(d.consigneeName) (\(d.consignee)), expires \(iso(d.expiresAt))", by: d.issuedBy)
        }
        for f in trace.fates {
            add(f.recordedAt, "fate", f.productCode, "\(f.event.rawValue)\(f.reason.map { " (\($0.rawValue))" } ?? "") at \(f.hospital)\(f.note.map { ": \($0)" } ?? "")",
                by: f.recordedBy)
        }
        for c in trace.conflicts {
            add(c.detectedAt, "conflict", c.productCode, "reported current at both \(c.centre) and \(c.otherCentre)")
        }
        lines.sort { $0.0 < $1.0 }
        return jsonResponse([
            "din": .string(trace.din), "product_code": .nullable(trace.productCode), "product_codes": .strings(trace.productCodes),
            "found": .bool(!trace.movements.isEmpty || !trace.decisions.isEmpty || !trace.holds.isEmpty),
            "timeline": .array(lines.map(\.1)),
            // Where each unit is now, for a recall notice (`bloodmatch recall`).
            "where_now": .array(recall.map { r in
                ["unit": .string(r.productCode), "component": .nullable(r.component), "where": .string(r.whereNow),
                 "centre": .nullable(r.centre), "consignee": .nullable(r.consigneeName), "address": .nullable(r.consigneeAddress),
                 "fate": .nullable(r.fate)]
            }),
            "events": .int(trace.events.count),
        ])
    }

    func iso(_ date: Date) -> String { isoUTC(seconds: Int64(date.timeIntervalSince1970.rounded(.down))) }
}
