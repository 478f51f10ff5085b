import ArgumentParser
import BloodMatchCore
import BloodMatchStore
import Foundation

/// `bloodmatch trace DIN`: a unit's whole history, from the database alone.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show a unit's whole history: snapshots it appeared in, decisions that chose or rejected it, holds, issue, events.")
    @Argument(help: "The DIN: 13 characters, 14 with its check character, or '=', the DIN and two flag characters as scanned.") var din: String
    @Flag(help: "Print as JSON.") var json = false

    func validate() throws {
        do { _ = try DonationNumber(parsing: din) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        let logger = makeLogger("bloodmatch.trace")
        try await runReportingFailures(logger: logger) {
            let config = try Environment.current.database(role: .app)
            // Units are recorded under the 13-character DIN, whichever form was typed or scanned.
            let unit = (try? DonationNumber(parsing: din))?.value ?? din
            let t = try await Database.with(config, logger: logger) { db in
                let trace = try await PostgresUnitTrace(database: db).trace(din: unit)
                try await PostgresAuditLog(database: db).append(NewAuditEvent(
                    actor: operatorName(), action: "data.read", subject: "unit:" + unit, payloadJSON: #"{"command":"trace"}"#))
                return trace
            }
            if json { printJSON(traceJSON(t)); return }
            let ts = SnapshotWriter.timestamp
            print("Unit \(t.din)")
            if t.movements.isEmpty && t.decisions.isEmpty && t.holds.isEmpty && t.distributions.isEmpty {
                print("  nothing recorded for this DIN")
            }
            if !t.movements.isEmpty {
                print("Snapshots:")
                for m in t.movements {
                    print("  \(ts(m.importedAt))  \(m.centre) snapshot \(m.snapshotID) as of \(ts(m.asOf)): \(m.change), \(m.status), expires \(ts(m.expiresAt))")
                }
            }
            for c in t.conflicts { print("  \(ts(c.detectedAt))  reported current at both \(c.centre) and \(c.otherCentre): held for review") }
            if !t.decisions.isEmpty {
                print("Decisions:")
                for d in t.decisions {
                    print("  \(ts(d.recordedAt))  \(d.decisionID.uuidString.lowercased())  for \(d.hospital ?? "-")  \(d.chosen ? "CHOSEN" : "rejected"): \(d.reason)  (outcome \(d.outcome), policy \(d.policyVersion))")
                }
            }
            if !t.holds.isEmpty {
                print("Reservations:")
                for h in t.holds {
                    print("  \(ts(h.createdAt))  \(h.reservationID.uuidString.lowercased())  for \(h.hospital) by \(h.reservedBy), held until \(ts(h.heldUntil)): \(h.state) at \(ts(h.stateChangedAt))")
                }
            }
            if !t.distributions.isEmpty {
                print("Distribution (21 CFR 606.165):")
                for d in t.distributions {
                    print("  \(ts(d.issuedAt))  issued to \(d.consignee) \(d.consigneeName), \(d.consigneePlace) from \(d.centre): \(d.component) \(d.abo) \(d.rhd), quantity \(d.quantity), expires \(ts(d.expiresAt)), by \(d.issuedBy)")
                }
            }
            if !t.events.isEmpty {
                print("Audit events:")
                for e in t.events {
                    print("  #\(e.chainSeq)  \(SnapshotWriter.timestampMicros(e.occurredAtMicros))  \(e.action)  \(e.subject)  by \(e.actor) (\(e.actorRole))")
                }
            }
        }
    }
}

func traceJSON(_ t: UnitTrace) -> [String: Any] {
    let ts = SnapshotWriter.timestamp
    return [
        "din": t.din,
        "snapshots": t.movements.map { ["snapshot_id": $0.snapshotID, "centre": $0.centre, "as_of": ts($0.asOf),
                                        "imported_at": ts($0.importedAt), "change": $0.change, "status": $0.status,
                                        "expires_at": ts($0.expiresAt)] as [String: Any] },
        "conflicts": t.conflicts.map { ["centre": $0.centre, "other_centre": $0.otherCentre, "detected_at": ts($0.detectedAt)] },
        "decisions": t.decisions.map { ["decision_id": $0.decisionID.uuidString.lowercased(), "recorded_at": ts($0.recordedAt),
                                        "hospital": $0.hospital as Any, "outcome": $0.outcome, "chosen": $0.chosen,
                                        "reason": $0.reason, "policy_version": $0.policyVersion] as [String: Any] },
        "reservations": t.holds.map { ["reservation_id": $0.reservationID.uuidString.lowercased(), "hospital": $0.hospital,
                                       "state": $0.state, "created_at": ts($0.createdAt), "held_until": ts($0.heldUntil),
                                       "state_changed_at": ts($0.stateChangedAt), "reserved_by": $0.reservedBy] },
        "distributions": t.distributions.map(distributionJSON),
        "events": t.events.map { (try? JSONSerialization.jsonObject(with: Data(auditEventJSON($0).utf8))) ?? [:] },
    ]
}

func distributionJSON(_ d: DistributionRecord) -> [String: Any] {
    ["distribution_id": d.distributionID.uuidString.lowercased(), "reservation_id": d.reservationID.uuidString.lowercased(),
     "din": d.din, "consignee": d.consignee, "consignee_name": d.consigneeName, "consignee_place": d.consigneePlace,
     "centre": d.centre, "product": d.component, "abo": d.abo, "rhd": d.rhd, "quantity": d.quantity,
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
                let records = try await Database.with(config, logger: logger) { db in
                    let records = try await PostgresReservationStore(database: db).distributions(from: start, to: end)
                    try await PostgresAuditLog(database: db).append(NewAuditEvent(
                        actor: operatorName(), action: "data.export", subject: "distributions",
                        payloadJSON: #"{"from":"\#(SnapshotWriter.timestamp(start))","to":"\#(SnapshotWriter.timestamp(end))","rows":\#(records.count)}"#))
                    return records
                }
                let out = CheckedOutput()
                if format == "json" {
                    let data = try JSONSerialization.data(withJSONObject: records.map(distributionJSON), options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                    try out.line(String(decoding: data, as: UTF8.self))
                    try out.flush()
                    return
                }
                try out.line("din,product,abo,rhd,quantity,expires_at,issued_at,centre,consignee,consignee_name,consignee_place,issued_by,reservation_id")
                for d in records {
                    try out.line([d.din, d.component, d.abo, d.rhd, String(d.quantity), SnapshotWriter.timestamp(d.expiresAt),
                           SnapshotWriter.timestamp(d.issuedAt), d.centre, d.consignee, d.consigneeName, d.consigneePlace,
                           d.issuedBy, d.reservationID.uuidString.lowercased()].map(csvField).joined(separator: ","))
                }
                try out.flush()
            }
        }
    }
}

/// One CSV field: quoted when needed, and a leading `=`, `+`, `-`, `@`, tab or CR prefixed with `'`
/// so a spreadsheet never runs it as a formula (RELIABILITY.md §(f) 41).
func csvField(_ text: String) -> String {
    var value = text
    if let first = value.first, "=+-@\t\r".contains(first) { value = "'" + value }
    if value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return value
}
