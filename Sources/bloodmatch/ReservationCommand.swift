import ArgumentParser
import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation

/// `bloodmatch reserve DECISION`: holds the units a decision chose for its hospital.
struct ReserveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reserve", abstract: "Hold the units a recorded decision chose, all or none.",
        discussion: """
            Exit 0 when held (or when the same key already held them), 3 when any unit is held by someone else, \
            issued, or no longer available (nothing is held then), 5 when the database is unavailable.
            """)
    @Argument(help: "Decision id (UUID) or its request id.") var decision: String
    @Option(help: "Only these of the decision's chosen units, comma-separated, each DIN/PRODUCTCODE (or a DIN that names one chosen unit).") var units: String?
    @Option(help: "Hold length in minutes (default BLOODMATCH_HOLD_MINUTES or 240; 1–4320).") var holdMinutes: Int?
    @Option(help: "Idempotency key: a retry with the same key returns the original reservation.") var key: String
    @Flag(help: "Print the reservation as JSON.") var json = false

    func validate() throws {
        guard !key.isEmpty, key.count <= 200 else { throw ValidationError("--key must be 1–200 characters") }
        _ = try resolvedHoldMinutes(holdMinutes)
    }

    func run() async throws {
        let logger = makeLogger("bloodmatch.reserve")
        try await runReportingFailures(logger: logger) {
            let hold = try resolvedHoldMinutes(holdMinutes)
            let config = try Environment.current.database(role: .app)
            let (id, key) = (decision, key)
            let outcome = try await Database.with(config, logger: logger) { db -> ReservationOutcome in
                let decisions = PostgresDecisionStore(database: db)
                var found: StoredDecision?
                if let uuid = UUID(uuidString: id) { found = try await decisions.find(decisionID: uuid) }
                if found == nil { found = try await decisions.find(requestID: id) }
                guard let stored = found else { throw ValidationError("no decision with id or request id '\(id)'") }
                guard ["fulfilled", "partial", "late"].contains(stored.outcome) else {
                    throw ValidationError("decision \(stored.decisionID.uuidString.lowercased()) has outcome \(stored.outcome): it chose no units to hold")
                }
                guard let hospital = stored.hospital else {
                    throw ValidationError("decision \(stored.decisionID.uuidString.lowercased()) names no hospital to hold units for")
                }
                let chosen = stored.units.filter(\.chosen).map(\.key)
                let wanted = try resolveUnits(units, among: chosen, what: "chosen by this decision") ?? chosen
                return try await PostgresReservationStore(database: db).reserve(ReservationRequest(
                    idempotencyKey: key, source: .decision, decisionID: stored.decisionID, hospital: hospital,
                    reservedBy: operatorName(), units: wanted, holdSeconds: hold * 60, requestID: key))
            }
            injectFault(at: "reserve")
            switch outcome {
            case .reserved(let reservation, let isNew):
                logger.info("reservation held", metadata: [
                    "reservation_id": "\(reservation.reservationID.uuidString.lowercased())", "units": "\(reservation.units.count)",
                    "hospital": "\(reservation.hospital)", "new": "\(isNew)"])
                printReservation(reservation, json: json, note: isNew ? "held" : "already held under this key (nothing new held)")
            case .conflict(let conflicts):
                logger.warning("reservation refused", metadata: ["conflicts": "\(conflicts.map(\.description).joined(separator: "; "))"])
                if json {
                    printJSON(["outcome": "conflict", "conflicts": conflicts.map { ["din": $0.unit.din, "product_code": $0.unit.productCode,
                        "reason": $0.reason, "held_by": $0.heldBy?.uuidString.lowercased() as Any] }])
                } else {
                    print("NOT HELD — nothing was reserved; these units cannot be held:")
                    for c in conflicts { print("  \(c.unit): \(c.reason)") }
                }
                throw ExitStatus.rejected.exitCode
            }
        }
    }
}

/// `bloodmatch reservation …`: show, list, release, issue and expire holds.
struct ReservationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reservation", abstract: "Show, list, release, issue and expire reservations.",
        subcommands: [Show.self, List.self, Release.self, Issue.self, Expire.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one reservation and its units.")
        @Argument(help: "Reservation id.") var id: String
        @Flag(help: "JSON.") var json = false
        func run() async throws {
            let logger = makeLogger("bloodmatch.reservation")
            try await runReportingFailures(logger: logger) {
                let uuid = try parseUUID(id, what: "reservation id")
                let config = try Environment.current.database(role: .app)
                let found = try await Database.with(config, logger: logger) { db in
                    try await PostgresReservationStore(database: db).find(reservationID: uuid)
                }
                guard let found else { print("no reservation \(id)"); throw ExitStatus.usage.exitCode }
                printReservation(found, json: json, note: nil)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List reservations, newest first.")
        @Option(help: "Only this hospital.") var hospital: String?
        @Flag(help: "Only holds with units still active.") var active = false
        @Option(help: "At most this many.") var limit = 50
        func run() async throws {
            let logger = makeLogger("bloodmatch.reservation")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let (h, a, l) = (hospital, active, limit)
                let all = try await Database.with(config, logger: logger) { db in
                    try await PostgresReservationStore(database: db).list(hospital: h, activeOnly: a, limit: l)
                }
                if all.isEmpty { print("no reservations match") }
                for r in all {
                    let states = Dictionary(grouping: r.units, by: \.shownState).map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
                    print("\(r.reservationID.uuidString.lowercased())  \(r.hospital)  held until \(SnapshotWriter.timestamp(r.heldUntil))  \(states)  by \(r.reservedBy)")
                }
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a hold's active units (they become matchable again).")
        @Argument(help: "Reservation id.") var id: String
        @Option(help: "Why (recorded in the event log).") var reason: String
        func run() async throws {
            let logger = makeLogger("bloodmatch.reservation")
            try await runReportingFailures(logger: logger) {
                let uuid = try parseUUID(id, what: "reservation id")
                let config = try Environment.current.database(role: .app)
                let why = reason
                let r = try await Database.with(config, logger: logger) { db in
                    try await PostgresReservationStore(database: db).release(uuid, by: operatorName(), reason: why)
                }
                printReservation(r, json: false, note: "released")
            }
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record that held units were dispatched to the hospital (writes distribution records, 21 CFR 606.165).",
            discussion: """
                Every unit is re-checked in the transaction that issues it: its hold must not be past held_until, its \
                centre's snapshot in force must still list it AVAILABLE (not quarantined, removed or moved), it must not be \
                expired or below the component's minimum remaining life (Data/matching.json), and the hospital must have an \
                address on file. All units issue together or none do: exit 3 lists each unit that blocked and why, and \
                nothing is written. A key belongs to one issue: reusing it for another reservation or other units is \
                refused (exit 3).
                """)
        @Argument(help: "Reservation id.") var id: String
        @Option(help: "Only these units, comma-separated, each DIN/PRODUCTCODE (or a DIN naming one held unit); default all active units.") var units: String?
        @Option(help: "Idempotency key: a retry returns the records already written.") var key: String
        @Option(help: "Free-text note (courier, consignment number).") var note: String?
        func run() async throws {
            let logger = makeLogger("bloodmatch.reservation")
            try await runReportingFailures(logger: logger) {
                let uuid = try parseUUID(id, what: "reservation id")
                let config = try Environment.current.database(role: .app)
                let minimum = try loadMatchingSettings().minimumRemainingSecondsByComponent
                let (k, n, text) = (key, note, units)
                let outcome = try await Database.with(config, logger: logger) { db -> IssueOutcome in
                    let store = PostgresReservationStore(database: db)
                    guard let held = try await store.find(reservationID: uuid) else { throw ReservationNotFoundError(reservationID: uuid) }
                    let wanted = try resolveUnits(text, among: held.units.map(\.key), what: "held by this reservation")
                    return try await store.issue(uuid, units: wanted, by: operatorName(), idempotencyKey: k,
                                                 minimumRemainingSeconds: minimum, note: n)
                }
                injectFault(at: "issue")
                switch outcome {
                case .issued(let records, let isNew):
                    print(isNew ? "issued \(records.count) unit(s):" : "already issued under this key (nothing new written): \(records.count) unit(s):")
                    for d in records {
                        print("  \(d.din) \(d.productCode)  \(d.productName)  \(d.abo) \(d.rhd)  expires \(SnapshotWriter.timestamp(d.expiresAt))  \(d.centre) → \(d.consignee) \(d.consigneeName), \(d.consigneeAddress)  at \(SnapshotWriter.timestamp(d.issuedAt))")
                    }
                case .blocked(let blocks):
                    logger.warning("issue refused", metadata: ["blocked": "\(blocks.map(\.description).joined(separator: "; "))"])
                    print("NOT ISSUED — nothing was dispatched or recorded; these units block the issue:")
                    for b in blocks { print("  \(b.unit): \(b.reason)") }
                    throw ExitStatus.rejected.exitCode
                }
            }
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Expire every hold past its end (the scheduled job).")
        func run() async throws {
            let logger = makeLogger("bloodmatch.reservation")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let freed = try await Database.with(config, logger: logger) { db in
                    try await PostgresReservationStore(database: db).expireOverdue(actor: "job:reservation-expiry")
                }
                logger.info("reservation expiry", metadata: ["units_freed": "\(freed)"])
                print("expired holds on \(freed) unit(s)")
            }
        }
    }
}

/// The hold length in minutes: the option, else `BLOODMATCH_HOLD_MINUTES`, else 240. This is an
/// operational setting (no clinical source fixes a hold length; Data/SOURCES.md §S10), bounded
/// to 1 minute – 72 hours.
func resolvedHoldMinutes(_ option: Int?) throws -> Int {
    let value: Int
    if let option { value = option }
    else if let text = Environment.current.holdMinutes {
        guard let v = Int(text) else { throw ValidationError("BLOODMATCH_HOLD_MINUTES '\(text)' is not a whole number of minutes") }
        value = v
    } else { value = 240 }
    guard (1...4320).contains(value) else { throw ValidationError("hold of \(value) minutes is outside 1–4320") }
    return value
}

func parseUUID(_ text: String, what: String) throws -> UUID {
    guard let uuid = UUID(uuidString: text) else { throw ValidationError("\(what) '\(text)' is not a UUID") }
    return uuid
}

func printJSON(_ object: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()
    print(String(decoding: data, as: UTF8.self))
}

func printReservation(_ r: Reservation, json: Bool, note: String?) {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        print(String(decoding: (try? encoder.encode(r)) ?? Data(), as: UTF8.self))
        return
    }
    print("reservation \(r.reservationID.uuidString.lowercased())\(note.map { " — \($0)" } ?? "")")
    print("  for \(r.hospital), by \(r.reservedBy), \(r.source.rawValue)\(r.decisionID.map { " \($0.uuidString.lowercased())" } ?? ""), key \(r.idempotencyKey)")
    print("  created \(SnapshotWriter.timestamp(r.createdAt)), held until \(SnapshotWriter.timestamp(r.heldUntil))")
    for u in r.units {
        print("  \(u.din) \(u.productCode)  \(u.component) \(u.abo) \(u.rhd)  at \(u.centre)  expires \(SnapshotWriter.timestamp(u.expiresAt))  \(u.shownState)"
              + (u.blocked.map { " — BLOCKED: \($0); do not dispatch" } ?? ""))
    }
}

/// The units named by `text` (comma-separated `DIN/PRODUCTCODE`, or a DIN naming exactly one of
/// `among`), all of which must be among `among`; nil when `text` is nil.
func resolveUnits(_ text: String?, among: [UnitKey], what: String) throws -> [UnitKey]? {
    guard let text else { return nil }
    var out: [UnitKey] = []
    for token in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !token.isEmpty {
        if let key = UnitKey(parsing: token) {
            guard among.contains(key) else { throw ValidationError("\(key) is not \(what)") }
            out.append(key)
        } else {
            let matches = among.filter { $0.din == token }
            guard matches.count == 1 else {
                throw ValidationError(matches.isEmpty ? "'\(token)' is neither DIN/PRODUCTCODE nor the DIN of a unit \(what)"
                    : "DIN \(token) names \(matches.count) units \(what) (\(matches.map(\.productCode).joined(separator: ", "))): write DIN/PRODUCTCODE")
            }
            out.append(matches[0])
        }
    }
    guard !out.isEmpty else { throw ValidationError("--units names no unit") }
    return out
}
