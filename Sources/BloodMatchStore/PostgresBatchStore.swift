import BloodMatchCore
import Crypto
import Foundation
import PostgresNIO

/// What happened when a batch plan was written.
public enum BatchRecordOutcome: Sendable, Hashable {
    /// Written: runs, shipments, allocations, reservations, order statuses and events.
    case recorded(runID: UUID)
    /// A run with this key already exists; nothing was written.
    case alreadyRun(runID: UUID)
    /// Some units were taken (reserved or issued) since planning; nothing was written.
    case unitsTaken(Set<UnitKey>)
    /// Some orders are no longer pending (cancelled or decided by another run); nothing was written.
    case ordersChanged(Set<String>)
}

/// Another batch run is writing right now.
public struct BatchBusyError: Error, Sendable, CustomStringConvertible {
    /// Creates the error.
    public init() {}
    /// Text for people and logs.
    public var description: String { "another batch run is being recorded; try again when it has finished" }
}

/// A recorded run, as `batch show` reads it.
public struct StoredBatchRun: Sendable {
    /// Run id.
    public var runID: UUID
    /// The key it was run under.
    public var runKey: String
    /// Who ran it.
    public var operatorName: String
    /// When it finished.
    public var finishedAt: Date
    /// Milliseconds spent solving.
    public var solveMilliseconds: Int
    /// The plan.
    public var plan: BatchPlan
}

/// Batch runs in PostgreSQL: one transaction writes a whole run together with the reservations
/// (one per shipment, source `batch`) that hold its units, so live matches exclude them; a unit
/// taken meanwhile makes the write fail safe (nothing written) and the caller re-plans.
public struct PostgresBatchStore: Sendable {
    /// The pool, as `bloodmatch_app`.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// The run recorded under a key or id, if any.
    public func find(keyOrID: String) async throws -> StoredBatchRun? {
        let byID = UUID(uuidString: keyOrID) != nil
        var binds = PostgresBindings()
        binds.append(keyOrID)
        let sql = """
            SELECT run_id::text, run_key, operator, extract(epoch FROM finished_at)::float8, solve_ms, plan::text FROM batch_runs
            WHERE \(byID ? "run_id = $1::uuid OR run_key = $1" : "run_key = $1") LIMIT 1
            """
        return try await one(PostgresQuery(unsafeSQL: sql, binds: binds))
    }

    /// The most recent run.
    public func latest() async throws -> StoredBatchRun? {
        try await one(PostgresQuery(unsafeSQL: """
            SELECT run_id::text, run_key, operator, extract(epoch FROM finished_at)::float8, solve_ms, plan::text FROM batch_runs
            ORDER BY finished_at DESC LIMIT 1
            """))
    }

    private func one(_ query: PostgresQuery) async throws -> StoredBatchRun? {
        for try await (id, key, who, finished, ms, json) in try await database.client.query(query, logger: database.logger)
            .decode((String, String, String, Double, Int, String).self) {
            let plan = try Self.decoder().decode(BatchPlan.self, from: Data(json.utf8))
            return StoredBatchRun(runID: UUID(uuidString: id) ?? UUID(), runKey: key, operatorName: who,
                                  finishedAt: Date(timeIntervalSince1970: finished), solveMilliseconds: ms, plan: plan)
        }
        return nil
    }

    /// JSON with sorted keys and ISO 8601 dates: the stored form of plans.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The decoder matching `encoder()`.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Writes a run in one transaction, or nothing (see `BatchRecordOutcome`).
    public func record(plan: BatchPlan, orders: [BatchOrder], runID: UUID, runKey: String, operatorName: String,
                       startedAt: Date, solveMilliseconds: Int, holdUntil: Date) async throws -> BatchRecordOutcome {
        try await database.observe("batch.record") {
            let logger = database.logger
            let planJSON = String(decoding: try Self.encoder().encode(plan), as: UTF8.self)
            let run = runID.uuidString.lowercased()
            let allUnits = plan.allocations.map(\.unit.key)
            let componentOf = Dictionary(orders.map { ($0.orderID, $0.component.rawValue) }, uniquingKeysWith: { a, _ in a })
            do {
                return try await database.client.withTransaction(logger: logger) { conn -> BatchRecordOutcome in
                    var locked = false
                    for try await (ok,) in try await conn.query("SELECT pg_try_advisory_xact_lock(hashtext('bloodmatch.batch.record'))",
                                                                logger: logger).decode((Bool,).self) { locked = ok }
                    guard locked else { throw BatchBusyError() }
                    // Every event of the run carries the command's request id (else the run key).
                    _ = try await conn.query("SELECT set_config('bm.request_id', \(AuditContext.requestID ?? runKey), true)",
                                             logger: logger).collect()
                    for try await (existing,) in try await conn.query("SELECT run_id FROM batch_runs WHERE run_key = \(runKey)",
                                                                      logger: logger).decode((UUID,).self) {
                        return .alreadyRun(runID: existing)
                    }
                    var pending = Set<String>()
                    for try await (id,) in try await conn.query("""
                        SELECT order_id FROM orders WHERE order_id = ANY(\(orders.map(\.orderID))) AND status = 'pending' FOR UPDATE
                        """, logger: logger).decode((String,).self) { pending.insert(id) }
                    let changed = Set(orders.map(\.orderID)).subtracting(pending)
                    if !changed.isEmpty { return .ordersChanged(changed) }
                    // Holds past their time are marked expired first (as live reservations do), so only
                    // live holds and issued units count as taken.
                    _ = try await PostgresReservationStore.expireOverdue(on: conn, units: allUnits, actor: operatorName, logger: logger)
                    // The index proposed; the snapshots in force decide. Under the centres' import locks, a
                    // unit no longer offered (held, issued, quarantined, removed, moved, expired, returned
                    // since) sends the plan back to be made again without it.
                    try await PostgresReservationStore.lockCentres(Set(plan.allocations.map(\.unit.centreID)), on: conn, logger: logger)
                    let offered = try await PostgresReservationStore.offered(allUnits, on: conn, logger: logger)
                    let centreOf = Dictionary(plan.allocations.map { ($0.unit.key, $0.unit.centreID) }, uniquingKeysWith: { a, _ in a })
                    let taken = Set(allUnits.filter { offered[$0]?.centre != centreOf[$0] })
                    if !taken.isEmpty { return .unitsTaken(taken) }

                    try await conn.query("""
                        INSERT INTO batch_runs (run_id, run_key, as_of, started_at, operator, policy_version, index_version,
                          orders_considered, units_allocated, shipments, total_cost_minutes, greedy_cost_minutes, stale_centres,
                          solve_ms, plan)
                        VALUES (\(run)::uuid, \(runKey), \(plan.evaluatedAt), \(startedAt), \(operatorName), \(plan.policyVersion),
                          \(plan.indexVersion), \(plan.outcomes.count), \(plan.allocations.count), \(plan.shipments.count),
                          \(plan.cost.totalMinutes), \(plan.greedyCost.totalMinutes), \(plan.staleCentres)::text[], \(solveMilliseconds),
                          \(planJSON)::jsonb)
                        """, logger: logger)
                    if !plan.shipments.isEmpty {
                        let reservationIDs = plan.shipments.map { _ in UUID().uuidString.lowercased() }
                        let s = plan.shipments
                        try await conn.query("""
                            INSERT INTO reservations (reservation_id, source, batch_run_id, hospital, reserved_by, idempotency_key,
                              request_fingerprint, held_until)
                            SELECT x.id::uuid, 'batch', \(run)::uuid, x.hospital, \(operatorName), x.key, x.fingerprint, \(holdUntil)
                            FROM unnest(\(reservationIDs)::text[], \(s.map(\.hospitalID))::text[],
                              \(s.map { "batch:\(run):\($0.number)" })::text[], \(s.map { Self.fingerprint($0.units) })::text[])
                              AS x(id, hospital, key, fingerprint)
                            """, logger: logger)
                        let reservationOf = Dictionary(uniqueKeysWithValues: zip(s.map(\.number), reservationIDs))
                        let shipmentOf = Dictionary(s.flatMap { sh in sh.units.map { ($0, sh.number) } }, uniquingKeysWith: { a, _ in a })
                        let a = plan.allocations
                        try await conn.query("""
                            INSERT INTO reservation_units (reservation_id, din, product_code, centre, component, abo, rhd, expires_at, state)
                            SELECT x.reservation::uuid, x.din, x.code, x.centre, x.component, x.abo, x.rhd, to_timestamp(x.expires), 'active'
                            FROM unnest(\(a.map { reservationOf[shipmentOf[$0.unit.key] ?? 0] ?? "" })::text[], \(a.map(\.unit.din))::text[],
                              \(a.map(\.unit.productCode))::text[],
                              \(a.map(\.unit.centreID))::text[], \(a.map { componentOf[$0.orderID] ?? "RBC" })::text[],
                              \(a.map(\.unit.group.abo.rawValue))::text[], \(a.map(\.unit.group.rhd.rawValue))::text[],
                              \(a.map { Double($0.unit.expiresAt) })::float8[]) AS x(reservation, din, code, centre, component, abo, rhd, expires)
                            """, logger: logger)
                        try await conn.query("""
                            INSERT INTO batch_shipments (run_id, shipment_no, centre, hospital, units, eta_minutes, needed_by_met,
                              stale_centre, reservation_id)
                            SELECT \(run)::uuid, x.no, x.centre, x.hospital, x.units, x.eta, NULLIF(x.met, '')::boolean, x.stale, x.reservation::uuid
                            FROM unnest(\(s.map(\.number))::int[], \(s.map(\.centreID))::text[], \(s.map(\.hospitalID))::text[],
                              \(s.map(\.units.count))::int[], \(s.map(\.etaMinutes))::float8[],
                              \(s.map { $0.neededByMet.map { $0 ? "true" : "false" } ?? "" })::text[], \(s.map(\.staleCentre))::bool[],
                              \(reservationIDs)::text[]) AS x(no, centre, hospital, units, eta, met, stale, reservation)
                            """, logger: logger)
                        try await conn.query("""
                            INSERT INTO batch_allocations (run_id, shipment_no, order_id, din, product_code, centre, hospital, cost_minutes, rationale)
                            SELECT \(run)::uuid, x.no, x.order_id, x.din, x.code, x.centre, x.hospital, x.cost, x.rationale
                            FROM unnest(\(a.map { shipmentOf[$0.unit.key] ?? 0 })::int[], \(a.map(\.orderID))::text[],
                              \(a.map(\.unit.din))::text[], \(a.map(\.unit.productCode))::text[], \(a.map(\.unit.centreID))::text[],
                              \(a.map(\.hospitalID))::text[], \(a.map(\.costMinutes))::float8[], \(a.map(\.rationale))::text[])
                              AS x(no, order_id, din, code, centre, hospital, cost, rationale)
                            """, logger: logger)
                        // The same hold event as any other hold, naming the run, the shipment and the
                        // order each unit is for, so a unit's trace shows the allocation and the hold.
                        try await conn.query("""
                            INSERT INTO event_log (actor, action, subject, payload)
                            SELECT \(operatorName), 'reservation.made', 'reservation:' || r.reservation_id,
                              jsonb_build_object('reservation_id', r.reservation_id, 'source', 'batch', 'hospital', r.hospital,
                                'batch_run_id', r.batch_run_id, 'run_key', \(runKey)::text, 'shipment_no', s.shipment_no, 'centre', s.centre,
                                'hold_seconds', round(extract(epoch FROM r.held_until - r.created_at))::bigint,
                                'units', (SELECT jsonb_agg(jsonb_build_object('din', a.din, 'product_code', a.product_code,
                                            'order_id', a.order_id) ORDER BY a.din, a.product_code)
                                          FROM batch_allocations a WHERE a.run_id = s.run_id AND a.shipment_no = s.shipment_no))
                            FROM batch_shipments s JOIN reservations r ON r.reservation_id = s.reservation_id
                            WHERE s.run_id = \(run)::uuid ORDER BY s.shipment_no
                            """, logger: logger)
                    }
                    let o = plan.outcomes
                    if !o.isEmpty {
                        try await conn.query("""
                            INSERT INTO batch_order_outcomes (run_id, order_id, status, quantity, allocated, reason)
                            SELECT \(run)::uuid, x.id, x.status, x.quantity, x.allocated, NULLIF(x.reason, '')
                            FROM unnest(\(o.map(\.orderID))::text[], \(o.map(\.status.rawValue))::text[], \(o.map(\.quantity))::int[],
                              \(o.map(\.allocated))::int[], \(o.map { $0.reason ?? "" })::text[]) AS x(id, status, quantity, allocated, reason)
                            """, logger: logger)
                        try await conn.query("""
                            UPDATE orders SET status = x.status, status_reason = NULLIF(x.reason, ''), last_run_id = \(run)::uuid,
                              updated_at = clock_timestamp()
                            FROM unnest(\(o.map(\.orderID))::text[], \(o.map(\.status.rawValue))::text[], \(o.map { $0.reason ?? "" })::text[])
                              AS x(id, status, reason)
                            WHERE orders.order_id = x.id
                            """, logger: logger)
                        try await conn.query("""
                            INSERT INTO event_log (actor, action, subject, payload)
                            SELECT \(operatorName), CASE WHEN x.allocated > 0 THEN 'order.allocated' ELSE 'order.unfillable' END,
                              'order:' || x.id,
                              jsonb_build_object('run_id', \(run)::text, 'status', x.status, 'allocated', x.allocated,
                                'quantity', x.quantity, 'reason', NULLIF(x.reason, ''),
                                'units', coalesce((SELECT jsonb_agg(jsonb_build_object('din', a.din, 'product_code', a.product_code,
                                           'centre', a.centre, 'shipment_no', a.shipment_no) ORDER BY a.din, a.product_code)
                                         FROM batch_allocations a WHERE a.run_id = \(run)::uuid AND a.order_id = x.id), '[]'::jsonb))
                            FROM unnest(\(o.map(\.orderID))::text[], \(o.map(\.status.rawValue))::text[], \(o.map(\.quantity))::int[],
                              \(o.map(\.allocated))::int[], \(o.map { $0.reason ?? "" })::text[]) AS x(id, status, quantity, allocated, reason)
                            """, logger: logger)
                    }
                    let payload = #"{"run_key":\#(jsonString(runKey)),"orders":\#(o.count),"units":\#(plan.allocations.count),"shipments":\#(plan.shipments.count),"total_cost_minutes":\#(plan.cost.totalMinutes),"greedy_cost_minutes":\#(plan.greedyCost.totalMinutes),"stale_centres":\#(plan.staleCentres.count)}"#
                    try await conn.query("""
                        INSERT INTO event_log (actor, action, subject, payload)
                        VALUES (\(operatorName), 'batch.run', \("batch:" + run), \(payload)::jsonb)
                        """, logger: logger)
                    return .recorded(runID: runID)
                }
            } catch let error as PostgresTransactionError where error.closureError is BatchBusyError {
                throw BatchBusyError()
            } catch where sqlState(error) == "23505" {
                // A unit was reserved by someone else between the check and the insert: nothing was written.
                var taken = Set<UnitKey>()
                for try await (din, code) in try await database.client.query("""
                    SELECT ru.din, ru.product_code FROM reservation_units ru
                      JOIN unnest(\(allUnits.map(\.din))::text[], \(allUnits.map(\.productCode))::text[]) AS w(din, product_code)
                        ON w.din = ru.din AND w.product_code = ru.product_code
                    WHERE ru.state IN ('active', 'issued')
                    """, logger: logger).decode((String, String).self) { taken.insert(UnitKey(din: din, productCode: code)) }
                if taken.isEmpty {
                    if let existing = try await find(keyOrID: runKey) { return .alreadyRun(runID: existing.runID) }
                    throw error
                }
                return .unitsTaken(taken)
            }
        }
    }

    /// SHA-256 of a shipment's sorted units (`DIN/PRODUCTCODE`): what the reservation holds.
    static func fingerprint(_ units: [UnitKey]) -> String {
        SHA256.hash(data: Data(units.sorted().map(\.description).joined(separator: ",").utf8)).lowercaseHex
    }
}
