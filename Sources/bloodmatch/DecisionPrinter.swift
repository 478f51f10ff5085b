import BloodMatchCore
import Foundation

/// Renders a decision for a dispatcher: a headline, a table of units, the rules and rejections.
enum DecisionPrinter {
    static func render(_ d: MatchDecision, recorded: Bool, isNew: Bool, retryOf: UUID? = nil) -> String {
        var out: [String] = []
        let r = d.request
        let recipient = r.recipient.group.map { "a \($0) recipient" } ?? "a recipient of unknown group"
        let destination = r.hospitalID ?? r.destination.map { String(format: "%.4f,%.4f", $0.latitude, $0.longitude) } ?? "?"
        out.append("Request \(r.requestID): \(r.quantity) × \(r.component.rawValue) for \(recipient) at \(destination), \(r.urgency.rawValue)"
                   + (r.requirements.isEmpty ? "" : ", requires \(r.requirements.map(\.rawValue).joined(separator: "+"))"))
        out.append("Outcome: \(d.outcome.rawValue.uppercased()) — \(d.summary)")
        if d.outcome == .unableToVerify {
            out.append("UNABLE TO VERIFY — MANUAL REVIEW REQUIRED. Do not read this as \"no units\".")
        }
        if d.whatIf == true {
            out.append("WHAT-IF: evaluated at \(timestamp(Int64(d.evaluatedAt.timeIntervalSince1970))) on the stock in force when asked; recorded, but it cannot be reserved or issued.")
        }
        if let deadline = d.arrivalDeadlineMinutes {
            let late = d.chosen.filter { $0.late == true }.count
            out.append("Deadline: units should arrive within \(formatMinutes(max(0, deadline))) (\(r.urgency.rawValue) ceiling \(d.settings.timeCeilingMinutes[r.urgency].map(formatMinutes) ?? "none")"
                       + (r.neededBy.map { ", needed by \(timestamp(Int64($0.timeIntervalSince1970)))" } ?? "") + ", Data/SOURCES.md §S27)"
                       + (late > 0 ? "; \(late) of \(d.chosen.count) LATE" : ""))
        }
        if !d.chosen.isEmpty {
            out.append("")
            let header = ["#", "DIN", "product", "group", "centre", "km", "ETA", "expires (UTC)", "rank", "why"]
            var rows: [[String]] = []
            for (i, u) in d.chosen.enumerated() {
                var why = u.rule
                if !u.flags.isEmpty { why += " [" + u.flags.joined(separator: ", ") + "]" }
                if u.staleCentre { why += " STALE DATA (\(u.dataAgeSeconds / 60) min old): confirm before dispatch" }
                if u.late == true { why += " LATE: arrives after the deadline" } else if u.meetsNeededBy == false { why += " arrives after needed-by" }
                rows.append([String(i + 1), u.din, u.productCode, u.group.description, u.centreID, String(format: "%.0f", u.distanceKm),
                             formatMinutes(u.etaMinutes), timestamp(u.expiresAt), String(u.rank), why])
            }
            out.append(contentsOf: table(header: header, rows: rows))
            let starts = d.chosen.compactMap(\.bandStartMinutes)
            if let band = d.settings.preferenceBandMinutes[r.urgency], !starts.isEmpty {
                var seen: [String] = []
                for start in starts.map(formatMinutes) where !seen.contains(start) { seen.append(start) }
                out.append("Order: each unit from the units arriving within \(formatMinutes(band)) of the nearest one left (bands from \(seen.joined(separator: ", "))); "
                           + "inside a band rank first, then plain before scarce, then first to expire (Data/SOURCES.md §S26).")
            }
        }
        if !d.rulesApplied.isEmpty {
            out.append("")
            out.append("Acceptable groups (policy \(d.policyVersion)):")
            for c in d.rulesApplied.sorted(by: { ($0.rank, $0.group) < ($1.rank, $1.group) }) {
                out.append("  rank \(c.rank): \(c.group)" + (c.flags.isEmpty ? "" : " [\(c.flags.joined(separator: ", "))]") + " — \(c.rule)")
            }
        }
        if !d.requirementNotes.isEmpty {
            out.append("Requirements:")
            for note in d.requirementNotes { out.append("  \(note)") }
        }
        if !d.rejected.isEmpty {
            out.append("Not chosen:")
            for r in d.rejected {
                out.append("  \(r.centreID): \(r.count) × \(r.reason.rawValue) — \(r.detail)" + (r.exampleDIN.map { " (e.g. \($0)" + (r.exampleProductCode.map { "/" + $0 } ?? "") + ")" } ?? ""))
            }
        }
        let stale = d.centres.filter(\.stale)
        if !stale.isEmpty {
            out.append("Stale centres: " + stale.map { "\($0.centreID) (\($0.dataAgeMinutes) min old)" }.joined(separator: ", "))
        }
        if let unknown = d.centresNotChecked, !unknown.isEmpty {
            out.append("Not checked (no data — stock unknown, confirm by phone): "
                       + unknown.map { "\($0.centreID) (\(Int($0.distanceKm.rounded())) km)" }.joined(separator: ", "))
        }
        out.append("")
        let status = recorded ? (isNew ? "recorded" : "already recorded for this request id (original returned)") : "NOT RECORDED (database unavailable)"
        if let retryOf {
            out.append("Re-evaluates decision \(retryOf.uuidString.lowercased()) of this request id, which was unable to verify")
        }
        out.append("Decision \(d.decisionID.uuidString.lowercased()) — \(status); index \(d.indexVersion ?? "none"), evaluated \(timestamp(Int64(d.evaluatedAt.timeIntervalSince1970)))")
        return out.joined(separator: "\n")
    }

    static func formatMinutes(_ minutes: Double) -> String {
        let m = Int(minutes.rounded())
        return m >= 60 ? "\(m / 60) h \(m % 60) min" : "\(m) min"
    }

    static func timestamp(_ seconds: Int64) -> String {
        SnapshotWriter.timestamp(Date(timeIntervalSince1970: Double(seconds)))
    }

    static func table(header: [String], rows: [[String]]) -> [String] {
        RulesCommandSupport.aligned([header] + rows)
    }
}
