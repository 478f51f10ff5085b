import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

extension PostgresBatchStore {
    /// Of the plan's units, those no longer free: not offered by their centre's snapshot in force
    /// (quarantined, removed, moved, expired, returned since), or under an active hold or issued.
    static func taken(_ plan: BatchPlan, on conn: PostgresConnection, logger: Logger) async throws -> Set<UnitKey> {
        let units = plan.allocations.map(\.unit.key)
        guard !units.isEmpty else { return [] }
        let offered = try await PostgresReservationStore.offered(units, on: conn, logger: logger)
        let centreOf = Dictionary(plan.allocations.map { ($0.unit.key, $0.unit.centreID) }, uniquingKeysWith: { a, _ in a })
        var taken = Set(units.filter { offered[$0]?.centre != centreOf[$0] })
        for try await (din, code) in try await conn.query("""
            SELECT ru.din, ru.product_code FROM reservation_units ru
              JOIN unnest(\(units.map(\.din))::text[], \(units.map(\.productCode))::text[]) AS w(din, product_code)
                ON w.din = ru.din AND w.product_code = ru.product_code
            WHERE ru.state IN ('active', 'issued')
            """, logger: logger).decode((String, String).self) { taken.insert(UnitKey(din: din, productCode: code)) }
        return taken
    }

    /// Inserts the run, its reservations (one per shipment), shipments, allocations, order
    /// outcomes and statuses, and their events, on the caller's transaction.
    static func write(plan: BatchPlan, orders: [BatchOrder], run: String, runKey: String, operatorName: String, startedAt: Date,
                      solveMilliseconds: Int, holdUntil: Date, on conn: PostgresConnection, logger: Logger) async throws {
        let planJSON = String(decoding: try encoder().encode(plan), as: UTF8.self)
        let componentOf = Dictionary(orders.map { ($0.orderID, $0.component.rawValue) }, uniquingKeysWith: { a, _ in a })
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
    }
}
