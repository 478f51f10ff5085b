import BloodMatchCore
import BloodMatchIngest
import BloodMatchService
import BloodMatchStore
import Foundation

/// Decisions and holds as the console's page shows them.
extension ConsoleHandlers {
    /// A decision: the chosen units in order with centre, ETA, expiry, the rule that admitted each
    /// and its flags; why other units were not chosen; the warnings a dispatcher must see.
    static func render(_ d: MatchDecision, replayed: Bool) -> JSONValue {
        let warnings = d.dispatcherWarnings
        let late = d.chosen.filter { $0.late == true }.count
        var flags = Set(d.chosen.flatMap(\.flags))
        if d.includesStaleData { flags.insert("stale_centre") }
        if late > 0 { flags.insert("late") }
        return [
            "decision_id": .string(d.decisionID.uuidString.lowercased()),
            "replayed": .bool(replayed),
            "outcome": .string(d.outcome.rawValue),
            "summary": .string(d.summary),
            "hospital_id": .nullable(d.request.hospitalID),
            "component": .string(d.request.component.rawValue),
            "quantity_requested": .int(d.request.quantity),
            "evaluated_at": .string(isoUTC(seconds: Int64(d.evaluatedAt.timeIntervalSince1970))),
            "units": .array(d.chosen.enumerated().map { i, u -> JSONValue in
                ["order": .int(i + 1), "din": .string(u.din), "product_code": .string(u.productCode), "centre_id": .string(u.centreID),
                 "group": .string(u.group.description), "distance_km": .double((u.distanceKm * 10).rounded() / 10),
                 "eta_minutes": .double((u.etaMinutes * 10).rounded() / 10), "expires_at": .string(isoUTC(seconds: u.expiresAt)),
                 "preference_rank": .int(u.rank), "rule": .string(u.rule), "flags": .strings(u.flags),
                 "attributes": .strings(u.attributes.attributes.map(\.rawValue)), "stale_centre": .bool(u.staleCentre),
                 "data_age_minutes": .int(Int(u.dataAgeSeconds / 60)), "late": .bool(u.late == true)]
            }),
            "not_chosen": .array(notChosen(d).prefix(20).map {
                ["centre_id": .string($0.centre), "reason": .string($0.reason), "count": .int($0.count)]
            }),
            "groups_refused": .strings(d.groupsRefused),
            "requirement_notes": .strings(d.requirementNotes),
            "centres_not_checked": .strings((d.centresNotChecked ?? []).map(\.centreID)),
            "flags": .strings(flags.sorted()),
            "warnings": .strings(warnings),
            "policy_version": .string(d.policyVersion),
        ]
    }

    /// Units passed over, one line per centre and reason (the matcher counts them per group),
    /// most first.
    static func notChosen(_ d: MatchDecision) -> [(centre: String, reason: String, count: Int)] {
        var counts: [String: [String: Int]] = [:]
        for r in d.rejected { counts[r.centreID, default: [:]][r.reason.rawValue, default: 0] += r.count }
        return counts.flatMap { centre, reasons in reasons.map { (centre: centre, reason: $0.key, count: $0.value) } }
            .sorted { ($1.count, $0.centre, $0.reason) < ($0.count, $1.centre, $1.reason) }
    }

    /// A hold and its units.
    static func render(_ r: Reservation, replayed: Bool) -> JSONValue {
        [
            "reservation_id": .string(r.reservationID.uuidString.lowercased()),
            "replayed": .bool(replayed),
            "hospital": .string(r.hospital),
            "reserved_by": .string(r.reservedBy),
            "held_until": .string(isoUTC(seconds: Int64(r.heldUntil.timeIntervalSince1970))),
            "units": .array(r.units.map { u in
                ["din": .string(u.din), "product_code": .string(u.productCode), "centre": .string(u.centre),
                 "group": .string("\(u.abo) \(u.rhd)"), "state": .string(u.state),
                 "expires_at": .string(isoUTC(seconds: Int64(u.expiresAt.timeIntervalSince1970)))]
            }),
        ]
    }
}
