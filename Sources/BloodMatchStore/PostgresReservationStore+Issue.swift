import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

extension PostgresReservationStore {
    /// Issues (dispatches) units of a hold to its hospital, all or none, after re-checking each in
    /// the transaction that issues it.
    ///
    /// Under the centres' import locks (no snapshot can be swapped in meanwhile), a unit is refused,
    /// with the reason, when its hold is past `held_until`, when its centre's snapshot in force no
    /// longer lists it as `AVAILABLE` (quarantined, removed, moved to another centre, current at two),
    /// when it is expired, or when it would arrive with less than the component's minimum remaining
    /// life (`minimumRemainingSeconds`; arrival is taken as now, the earliest it can arrive: the
    /// match that chose the unit checked its ETA), and the whole issue is refused when the consignee
    /// has no address on file (21 CFR 606.165 needs it). Then every unit becomes `issued` with a
    /// distribution record. A retry with the same key returns the records written; the key used for
    /// another reservation, or for other units, is refused.
    public func issue(_ reservationID: UUID, units wanted: [UnitKey]?, by actor: String, idempotencyKey: String,
                      minimumRemainingSeconds: [String: Int] = [:], note: String? = nil, requestID: String? = nil,
                      traceID: String? = nil) async throws -> IssueOutcome {
        try await database.observe("reservation.issue") {
            let logger = database.logger
            let wanted = wanted.map { Array(Set($0)).sorted() }
            do {
                return try await database.withTransaction { conn -> IssueOutcome in
                    // Attempts with one key take turns, so the check below sees a committed first attempt.
                    _ = try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\("bloodmatch.issue-key:" + idempotencyKey)))",
                                             logger: logger).collect()
                    let already = try await Self.distributions(
                        PostgresQuery(unsafeSQL: Self.distributionSelect + "WHERE idempotency_key = $1 ORDER BY issued_at, din, product_code",
                                      binds: Self.binds(idempotencyKey)), on: conn, logger: logger)
                    if !already.isEmpty {
                        let sameHold = already.allSatisfy { $0.reservationID == reservationID }
                        let sameUnits = wanted.map { Set($0) == Set(already.map(\.key)) } ?? true
                        guard sameHold && sameUnits else {
                            let other = already[0].reservationID.uuidString.lowercased()
                            throw IdempotencyKeyReuseError(key: idempotencyKey, usedFor: "issue of reservation \(other)"
                                + (sameHold ? " with units \(already.map(\.key.description).sorted().joined(separator: ", "))" : ""))
                        }
                        return .issued(already, isNew: false)
                    }
                    guard let reservation = try await Self.find(where: "reservation_id = $1::uuid", reservationID.uuidString,
                                                                on: conn, logger: logger)?.reservation else {
                        throw ReservationNotFoundError(reservationID: reservationID)
                    }
                    // Lock the hold's rows, then the centres' imports.
                    var active: [UnitKey: (centre: String, component: String)] = [:]
                    for try await (din, code, centre, component) in try await conn.query("""
                        SELECT din, product_code, centre, component FROM reservation_units
                        WHERE reservation_id = \(reservationID) AND state = 'active' ORDER BY din, product_code FOR UPDATE
                        """, logger: logger).decode((String, String, String, String).self) {
                        active[UnitKey(din: din, productCode: code)] = (centre, component)
                    }
                    let units = wanted ?? active.keys.sorted()
                    if let wanted {
                        let stray = wanted.filter { active[$0] == nil }
                        if !stray.isEmpty {
                            throw ReservationStateError(reservationID: reservationID,
                                detail: "units \(stray.map(\.description).joined(separator: ", ")) are not actively held by this reservation")
                        }
                    }
                    guard !units.isEmpty else {
                        throw ReservationStateError(reservationID: reservationID, detail: "no unit of it is actively held (released, expired or issued already)")
                    }
                    try await Self.lockCentres(Set(units.compactMap { active[$0]?.centre }), on: conn, logger: logger)
                    let blocks = try await Self.issueBlockers(units, reservation: reservation, active: active,
                                                              minimumRemainingSeconds: minimumRemainingSeconds, on: conn, logger: logger)
                    if !blocks.isEmpty { throw Refused(conflicts: blocks) }

                    let dins = units.map(\.din), codes = units.map(\.productCode)
                    var issued = 0
                    for try await _ in try await conn.query("""
                        UPDATE reservation_units ru SET state = 'issued'
                        FROM unnest(\(dins)::text[], \(codes)::text[]) AS w(din, product_code)
                        WHERE ru.reservation_id = \(reservationID) AND ru.state = 'active'
                          AND ru.din = w.din AND ru.product_code = w.product_code
                        RETURNING 1
                        """, logger: logger).decode(Int.self) { issued += 1 }
                    guard issued == units.count else {
                        throw ReservationStateError(reservationID: reservationID, detail: "its units changed state while being issued; nothing was issued")
                    }
                    // The product as the centre's feed reports it now: the component and its attributes.
                    _ = try await conn.query("""
                        INSERT INTO distributions (distribution_id, reservation_id, din, product_code, product_name, consignee,
                          consignee_name, consignee_address, consignee_place, centre, component, abo, rhd, expires_at, issued_by,
                          idempotency_key, note)
                        SELECT gen_random_uuid(), ru.reservation_id, ru.din, ru.product_code,
                          \(unescaped: Self.productNameSQL), r.hospital, s.name, s.address, s.region,
                          ru.centre, ru.component, ru.abo, ru.rhd, coalesce(u.expires_at, ru.expires_at), \(actor), \(idempotencyKey), \(note)
                        FROM reservation_units ru JOIN reservations r USING (reservation_id) JOIN sites s ON s.site_id = r.hospital
                          JOIN unnest(\(dins)::text[], \(codes)::text[]) AS w(din, product_code) ON w.din = ru.din AND w.product_code = ru.product_code
                          LEFT JOIN centre_status c ON c.centre = ru.centre
                          LEFT JOIN inventory_units u ON u.snapshot_id = c.current_snapshot_id AND u.din = ru.din AND u.product_code = ru.product_code
                        WHERE ru.reservation_id = \(reservationID)
                        """, logger: logger).collect()
                    try await PostgresAuditLog.append(NewAuditEvent(
                        actor: actor, action: "unit.issued", subject: "reservation:" + reservationID.uuidString.lowercased(),
                        payloadJSON: #"{"units":\#(Self.unitsJSON(units)),"consignee":\#(jsonString(reservation.hospital)),"idempotency_key":\#(jsonString(idempotencyKey))}"#,
                        requestID: requestID ?? idempotencyKey, traceID: traceID), on: conn, logger: logger)
                    let records = try await Self.distributions(
                        PostgresQuery(unsafeSQL: Self.distributionSelect + "WHERE idempotency_key = $1 ORDER BY issued_at, din, product_code",
                                      binds: Self.binds(idempotencyKey)), on: conn, logger: logger)
                    return .issued(records, isNew: true)
                }
            } catch let refused as Refused {
                return .blocked(refused.conflicts)
            }
        }
    }

    /// `Red cells (RBC) E0336V00; IRRADIATED, CMV_NEG`: the component class, the product code and
    /// the attributes of the unit in force (the ICCBBA product description table is licensed and not
    /// shipped, so the description code is not spelled out).
    static let productNameSQL = """
        (CASE ru.component WHEN 'RBC' THEN 'Red cells' WHEN 'PLT' THEN 'Platelets' WHEN 'PLASMA' THEN 'Plasma'
           WHEN 'CRYO' THEN 'Cryoprecipitate' ELSE 'Whole blood' END) || ' (' || ru.component || ') ' || ru.product_code
         || CASE WHEN coalesce(u.attributes, '') = '' THEN '' ELSE '; ' || replace(u.attributes, ';', ', ') END
        """

    /// Why each unit cannot be issued now, in the caller's transaction (empty: all can).
    static func issueBlockers(_ units: [UnitKey], reservation: Reservation, active: [UnitKey: (centre: String, component: String)],
                              minimumRemainingSeconds: [String: Int], on conn: PostgresConnection, logger: Logger) async throws -> [ReservationConflict] {
        var blocks: [ReservationConflict] = []
        var address = ""
        for try await (text,) in try await conn.query("SELECT address FROM sites WHERE site_id = \(reservation.hospital)", logger: logger)
            .decode((String,).self) { address = text }
        if address.trimmingCharacters(in: .whitespaces).isEmpty {
            let why = "consignee \(reservation.hospital) has no address on file (a distribution record needs it, 21 CFR 606.165): add it with `bloodmatch sites import`"
            return units.map { ReservationConflict(unit: $0, reason: why) }
        }
        let dins = units.map(\.din), codes = units.map(\.productCode)
        let centres = units.map { active[$0]?.centre ?? "" }
        let minimum = units.map { minimumRemainingSeconds[active[$0]?.component ?? ""] ?? 0 }
        for try await (din, code, overdue, blocker, expires, short) in try await conn.query("""
            SELECT w.din, w.product_code, r.held_until <= now(), bm.unit_blocker(w.din, w.product_code, w.centre),
                   u.expires_at, u.expires_at <= now() + make_interval(secs => w.minimum)
            FROM unnest(\(dins)::text[], \(codes)::text[], \(centres)::text[], \(minimum)::int[]) AS w(din, product_code, centre, minimum)
              JOIN reservations r ON r.reservation_id = \(reservation.reservationID)
              LEFT JOIN centre_status c ON c.centre = w.centre
              LEFT JOIN inventory_units u ON u.snapshot_id = c.current_snapshot_id AND u.din = w.din AND u.product_code = w.product_code
            ORDER BY w.din, w.product_code
            """, logger: logger).decode((String, String, Bool, String?, Date?, Bool?).self) {
            let key = UnitKey(din: din, productCode: code)
            if overdue {
                blocks.append(ReservationConflict(unit: key, reason: "hold expired at \(iso(reservation.heldUntil)) (held_until); hold it again", heldBy: reservation.reservationID))
            } else if let blocker {
                blocks.append(ReservationConflict(unit: key, reason: blocker))
            } else if short == true, let expires {
                let hours = (minimumRemainingSeconds[active[key]?.component ?? ""] ?? 0) / 3600
                blocks.append(ReservationConflict(unit: key, reason: "expires \(iso(expires)): less than the \(hours) h minimum remaining life at arrival"))
            }
        }
        return blocks
    }

    /// Distribution records written under a key.
    public func distributions(idempotencyKey: String) async throws -> [DistributionRecord] {
        try await distributions(where: "idempotency_key = $1", Self.binds(idempotencyKey))
    }

    /// Distribution records of every component of a donation (all product codes), or of one unit.
    public func distributions(din: String, productCode: String? = nil) async throws -> [DistributionRecord] {
        var binds = PostgresBindings()
        binds.append(din)
        binds.append(productCode)
        return try await distributions(where: "din = $1 AND ($2::text IS NULL OR product_code = $2)", binds)
    }

    /// Distribution records issued in `[from, to)`, for a recall export.
    public func distributions(from: Date, to: Date) async throws -> [DistributionRecord] {
        var binds = PostgresBindings()
        binds.append(from)
        binds.append(to)
        return try await distributions(where: "issued_at >= $1 AND issued_at < $2", binds)
    }

    static let distributionSelect = """
        SELECT distribution_id, reservation_id, din, product_code, product_name, consignee, consignee_name, consignee_address,
               consignee_place, centre, component, abo, rhd, quantity, expires_at, issued_at, issued_by FROM distributions

        """

    static func binds(_ value: String) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(value)
        return binds
    }

    private func distributions(where condition: String, _ binds: PostgresBindings) async throws -> [DistributionRecord] {
        try await database.client.withConnection { conn in
            try await Self.distributions(PostgresQuery(unsafeSQL: Self.distributionSelect + "WHERE \(condition) ORDER BY issued_at, din, product_code",
                                                       binds: binds), on: conn, logger: database.logger)
        }
    }

    static func distributions(_ query: PostgresQuery, on conn: PostgresConnection, logger: Logger) async throws -> [DistributionRecord] {
        var out: [DistributionRecord] = []
        for try await r in try await conn.query(query, logger: logger)
            .decode((UUID, UUID, String, String, String, String, String, String, String, String, String, String, String, Int, Date, Date, String).self) {
            out.append(DistributionRecord(distributionID: r.0, reservationID: r.1, din: r.2, productCode: r.3, productName: r.4,
                                          consignee: r.5, consigneeName: r.6, consigneeAddress: r.7, consigneePlace: r.8,
                                          centre: r.9, component: r.10, abo: r.11, rhd: r.12, quantity: r.13,
                                          expiresAt: r.14, issuedAt: r.15, issuedBy: r.16))
        }
        return out
    }
}
