import ArgumentParser
import BloodMatchCore
import BloodMatchStore
import Foundation

/// `bloodmatch trace DIN [--product CODE]`: every component of a donation, or one unit, from the database alone.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show the whole history of a donation's units (or one unit): snapshots, decisions, holds, issue, receipt, fate, events.",
        discussion: "A unit is its DIN and its product code: one donation's red cells, plasma and platelets share the DIN. Without --product every component of the donation is shown.")
    @Argument(help: "The DIN: 13 characters, 14 with its check character, or '=', the DIN and two flag characters as scanned.") var din: String
    @Option(help: "Only this product code (8 characters, e.g. E0336V00).") var product: String?
    @Flag(help: "Print as JSON.") var json = false

    func validate() throws {
        do { _ = try DonationNumber(parsing: din) } catch { throw ValidationError(error.description) }
        if let product, UnitKey(parsing: "T000100000000/" + product) == nil { throw ValidationError("'\(product)' is not an 8-character product code") }
    }

    func run() async throws {
        let logger = makeLogger("bloodmatch.trace")
        try await runReportingFailures(logger: logger) {
            let config = try Environment.current.database(role: .app)
            // Units are recorded under the 13-character DIN, whichever form was typed or scanned.
            let unit = (try? DonationNumber(parsing: din))?.value ?? din
            let code = product
            let t = try await Database.with(config, logger: logger) { db in
                let trace = try await PostgresUnitTrace(database: db).trace(din: unit, productCode: code)
                try await PostgresAuditLog(database: db).append(NewAuditEvent(
                    actor: operatorName(), action: "data.read", subject: "unit:" + (code.map { unit + "/" + $0 } ?? unit),
                    payloadJSON: #"{"command":"trace"}"#))
                return trace
            }
            if json { printJSON(traceJSON(t)); return }
            let ts = SnapshotWriter.timestamp
            print("Donation \(t.din)" + (t.productCode.map { ", product \($0)" } ?? "")
                  + (t.productCodes.isEmpty ? "" : " — units: " + t.productCodes.map { t.din + "/" + $0 }.joined(separator: ", ")))
            if t.movements.isEmpty && t.decisions.isEmpty && t.holds.isEmpty && t.distributions.isEmpty {
                print("  nothing recorded for this " + (t.productCode == nil ? "DIN" : "unit"))
            }
            if !t.movements.isEmpty {
                print("Snapshots:")
                for m in t.movements {
                    print("  \(ts(m.importedAt))  \(m.productCode)  \(m.centre) snapshot \(m.snapshotID) as of \(ts(m.asOf)): \(m.change), \(m.status), expires \(ts(m.expiresAt))")
                }
            }
            for c in t.conflicts { print("  \(ts(c.detectedAt))  \(c.productCode) reported current at both \(c.centre) and \(c.otherCentre): held for review") }
            if !t.decisions.isEmpty {
                print("Decisions:")
                for d in t.decisions {
                    print("  \(ts(d.recordedAt))  \(d.productCode)  \(d.decisionID.uuidString.lowercased())  for \(d.hospital ?? "-")  \(d.chosen ? "CHOSEN" : "rejected"): \(d.reason)  (outcome \(d.outcome), policy \(d.policyVersion))")
                }
            }
            if !t.holds.isEmpty {
                print("Reservations:")
                for h in t.holds {
                    let state = h.state == "active" && h.blocked != nil ? "BLOCKED (\(h.blocked ?? "")): do not dispatch" : h.state
                    print("  \(ts(h.createdAt))  \(h.productCode)  \(h.reservationID.uuidString.lowercased())  for \(h.hospital) by \(h.reservedBy), held until \(ts(h.heldUntil)): \(state) at \(ts(h.stateChangedAt))")
                }
            }
            if !t.distributions.isEmpty {
                print("Distribution (21 CFR 606.165):")
                for d in t.distributions {
                    print("  \(ts(d.issuedAt))  \(d.productCode) \(d.productName)  issued to \(d.consignee) \(d.consigneeName), \(d.consigneeAddress) from \(d.centre): \(d.abo) \(d.rhd), quantity \(d.quantity), expires \(ts(d.expiresAt)), by \(d.issuedBy)")
                }
            }
            if !t.fates.isEmpty {
                print("Receipt and fate:")
                for f in t.fates {
                    print("  \(ts(f.recordedAt))  \(f.productCode)  \(f.event.rawValue)\(f.reason.map { " (\($0.rawValue))" } ?? "") at \(f.hospital), by \(f.recordedBy)\(f.note.map { " — \($0)" } ?? "")")
                }
            }
            if !t.events.isEmpty {
                print("Audit events:")
                for e in t.events {
                    print("  #\(e.seq)\(e.chainSeq == 0 ? " (unsealed)" : "")  \(SnapshotWriter.timestampMicros(e.occurredAtMicros))  \(e.action)  \(e.subject)\(eventContext(e.payload))  by \(e.actor) (\(e.actorRole))\(e.requestID.map { "  request \($0)" } ?? "")")
                }
            }
        }
    }
}

/// What an event says about where it belongs: the batch run, shipment, order, source, status and
/// reason, when its payload names them (e.g. " [batch run cron-…, shipment 2, order DAY-1]").
func eventContext(_ payload: String) -> String {
    guard let object = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] else { return "" }
    var parts: [String] = []
    if let source = object["source"] as? String, source != "batch" { parts.append(source) }
    if let key = object["run_key"] as? String { parts.append("batch run \(key)") }
    else if let run = (object["batch_run_id"] ?? object["run_id"]) as? String { parts.append("batch run \(run)") }
    if let shipment = object["shipment_no"] as? Int { parts.append("shipment \(shipment)") }
    if let units = object["units"] as? [[String: Any]] {
        let orders = Set(units.compactMap { $0["order_id"] as? String }).sorted()
        if !orders.isEmpty { parts.append((orders.count == 1 ? "order " : "orders ") + orders.joined(separator: ", ")) }
    }
    if let status = object["status"] as? String { parts.append(status) }
    if let reason = object["reason"] as? String { parts.append(reason) }
    return parts.isEmpty ? "" : " [" + parts.joined(separator: ", ") + "]"
}

func traceJSON(_ t: UnitTrace) -> [String: Any] {
    let ts = SnapshotWriter.timestamp
    return [
        "din": t.din,
        "product_code": t.productCode as Any,
        "product_codes": t.productCodes,
        "snapshots": t.movements.map { ["product_code": $0.productCode, "snapshot_id": $0.snapshotID, "centre": $0.centre, "as_of": ts($0.asOf),
                                        "imported_at": ts($0.importedAt), "change": $0.change, "status": $0.status,
                                        "expires_at": ts($0.expiresAt)] as [String: Any] },
        "conflicts": t.conflicts.map { ["product_code": $0.productCode, "centre": $0.centre, "other_centre": $0.otherCentre,
                                        "detected_at": ts($0.detectedAt)] },
        "decisions": t.decisions.map { ["product_code": $0.productCode, "decision_id": $0.decisionID.uuidString.lowercased(),
                                        "recorded_at": ts($0.recordedAt), "hospital": $0.hospital as Any, "outcome": $0.outcome,
                                        "chosen": $0.chosen, "reason": $0.reason, "policy_version": $0.policyVersion] as [String: Any] },
        "reservations": t.holds.map { ["product_code": $0.productCode, "reservation_id": $0.reservationID.uuidString.lowercased(),
                                       "hospital": $0.hospital, "state": $0.state == "active" && $0.blocked != nil ? "blocked" : $0.state,
                                       "blocked_reason": $0.blocked as Any, "created_at": ts($0.createdAt), "held_until": ts($0.heldUntil),
                                       "state_changed_at": ts($0.stateChangedAt), "reserved_by": $0.reservedBy] as [String: Any] },
        "distributions": t.distributions.map(distributionJSON),
        "fates": t.fates.map(fateJSON),
        "events": t.events.map { (try? JSONSerialization.jsonObject(with: Data(auditEventJSON($0).utf8))) ?? [:] },
    ]
}

func fateJSON(_ f: UnitFateRecord) -> [String: Any] {
    ["din": f.din, "product_code": f.productCode, "event": f.event.rawValue, "reason": f.reason?.rawValue as Any, "note": f.note as Any,
     "hospital": f.hospital, "recorded_by": f.recordedBy, "recorded_at": SnapshotWriter.timestamp(f.recordedAt),
     "distribution_id": f.distributionID.uuidString.lowercased()]
}

func distributionJSON(_ d: DistributionRecord) -> [String: Any] {
    ["distribution_id": d.distributionID.uuidString.lowercased(), "reservation_id": d.reservationID.uuidString.lowercased(),
     "din": d.din, "product_code": d.productCode, "product_name": d.productName, "consignee": d.consignee,
     "consignee_name": d.consigneeName, "consignee_address": d.consigneeAddress, "consignee_place": d.consigneePlace,
     "centre": d.centre, "component": d.component, "abo": d.abo, "rhd": d.rhd, "quantity": d.quantity,
     "expires_at": SnapshotWriter.timestamp(d.expiresAt), "issued_at": SnapshotWriter.timestamp(d.issuedAt), "issued_by": d.issuedBy]
}

/// `bloodmatch distribution export`: distribution records for a recall.
struct DistributionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distribution", abstract: "Export distribution records (21 CFR 606.165) for a recall.",
        subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the units issued in [--from, --to) as CSV or JSON.")
        @Option(help: "Start, ISO 8601 with zone.") var from: String
        @Option(help: "End (exclusive), ISO 8601 with zone.") var to: String
        @Option(help: "csv or json.") var format = "csv"

        func run() async throws {
            let logger = makeLogger("bloodmatch.distribution")
            try await runReportingFailures(logger: logger) {
                let (start, end) = (try parseInstant(from), try parseInstant(to))
                guard format == "csv" || format == "json" else { throw ValidationError("--format must be csv or json") }
                let config = try Environment.current.database(role: .app)
                let (records, fates) = try await Database.with(config, logger: logger) { db in
                    let records = try await PostgresReservationStore(database: db).distributions(from: start, to: end)
                    var fates: [UUID: [UnitFateRecord]] = [:]
                    let lifecycle = PostgresUnitLifecycleStore(database: db)
                    for din in Set(records.map(\.din)).sorted() {
                        for f in try await lifecycle.fates(din: din) { fates[f.distributionID, default: []].append(f) }
                    }
                    try await PostgresAuditLog(database: db).append(NewAuditEvent(
                        actor: operatorName(), action: "data.export", subject: "distributions",
                        payloadJSON: #"{"from":"\#(SnapshotWriter.timestamp(start))","to":"\#(SnapshotWriter.timestamp(end))","rows":\#(records.count)}"#))
                    return (records, fates)
                }
                let out = CheckedOutput()
                if format == "json" {
                    let rows = records.map { d -> [String: Any] in
                        var row = distributionJSON(d)
                        row["receipt_and_fate"] = (fates[d.distributionID] ?? []).map(fateJSON)
                        return row
                    }
                    let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                    try out.line(String(decoding: data, as: UTF8.self))
                    try out.flush()
                    return
                }
                try out.line("din,product_code,product_name,component,abo,rhd,quantity,expires_at,issued_at,centre,consignee,consignee_name,consignee_address,consignee_place,issued_by,reservation_id,received_at,fate,fate_reason,fate_at")
                for d in records {
                    let steps = fates[d.distributionID] ?? []
                    let receipt = steps.first { $0.event == .received }, final = steps.first { $0.event.isFinal }
                    try out.line([d.din, d.productCode, d.productName, d.component, d.abo, d.rhd, String(d.quantity),
                                  SnapshotWriter.timestamp(d.expiresAt), SnapshotWriter.timestamp(d.issuedAt), d.centre, d.consignee,
                                  d.consigneeName, d.consigneeAddress, d.consigneePlace, d.issuedBy, d.reservationID.uuidString.lowercased(),
                                  receipt.map { SnapshotWriter.timestamp($0.recordedAt) } ?? "", final?.event.rawValue ?? "",
                                  final?.reason?.rawValue ?? "", final.map { SnapshotWriter.timestamp($0.recordedAt) } ?? ""]
                        .map(csvField).joined(separator: ","))
                }
                try out.flush()
            }
        }
    }
}

/// One CSV field: quoted when needed, and a leading `=`, `+`, `-`, `@`, tab or CR prefixed with `'`
/// so a spreadsheet never runs it as a formula (Data/SOURCES.md §S22, item 41).
func csvField(_ text: String) -> String {
    var value = text
    if let first = value.first, "=+-@\t\r".contains(first) { value = "'" + value }
    if value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return value
}
