import BloodMatchCore
import Foundation
import PostgresNIO

/// A hospital's order as stored, with its status.
public struct OrderRecord: Sendable, Hashable, Codable {
    /// Order id (unique).
    public var orderID: String
    /// Ordering hospital.
    public var hospitalID: String
    /// Component wanted.
    public var component: Component
    /// Recipient group; nil when not yet determined.
    public var group: BloodGroup?
    /// Recipient context (sex, age, anti-D, …).
    public var context: RecipientContext
    /// Units wanted (1…100).
    public var quantity: Int
    /// Special requirements.
    public var requirements: [UnitAttribute]
    /// Maximum unit age in days, if any.
    public var maximumUnitAgeDays: Int?
    /// Urgency.
    public var urgency: Urgency
    /// When needed, if said.
    public var neededBy: Date?
    /// `pending`, `allocated`, `partially_allocated`, `unfillable` or `cancelled`.
    public var status: String
    /// Why the status is what it is (unfillable reason, cancellation reason).
    public var statusReason: String?
    /// The batch run that last decided it.
    public var lastRunID: UUID?
    /// When placed (set by the database).
    public var placedAt: Date?
    /// Who placed it.
    public var placedBy: String
    /// `cli` or the imported file's name.
    public var source: String
    /// The hospital's own identifier of the order (`system|value`), when it gave one (FHIR).
    public var clientIdentifier: String?
    /// Matched at once (FHIR priorities asap and stat) rather than by the batch.
    public var immediate = false
    /// When the order last changed (placed, decided or cancelled).
    public var updatedAt: Date?

    /// Creates a record (status `pending`).
    public init(orderID: String, hospitalID: String, component: Component, group: BloodGroup?, context: RecipientContext,
                quantity: Int, requirements: [UnitAttribute], maximumUnitAgeDays: Int?, urgency: Urgency, neededBy: Date?,
                placedBy: String, source: String) {
        self.orderID = orderID
        self.hospitalID = hospitalID
        self.component = component
        self.group = group
        self.context = context
        self.quantity = quantity
        self.requirements = requirements.sorted()
        self.maximumUnitAgeDays = maximumUnitAgeDays
        self.urgency = urgency
        self.neededBy = neededBy
        self.status = "pending"
        self.placedBy = placedBy
        self.source = source
    }
}

/// Why orders were refused; nothing was stored when this is thrown.
public enum OrderStoreError: Error, Sendable, CustomStringConvertible {
    /// An order id that is already stored (or given twice); carries it.
    case duplicateOrder(String)
    /// A hospital that is not a known hospital site; carries order id and hospital.
    case unknownHospital(orderID: String, hospital: String)

    /// Text for people and logs.
    public var description: String {
        switch self {
        case .duplicateOrder(let id): "order '\(id)' already exists; nothing was stored"
        case .unknownHospital(let id, let hospital): "order '\(id)': '\(hospital)' is not a known hospital site; nothing was stored"
        }
    }
}

/// Orders in PostgreSQL: added all or nothing, listed, cancelled; every change appends an event.
public struct PostgresOrderStore: Sendable {
    /// The pool, as `bloodmatch_app`.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Adds orders in one transaction (all or nothing) and logs `order.created` for each.
    public func add(_ orders: [OrderRecord], actor: String) async throws {
        guard !orders.isEmpty else { return }
        let logger = database.logger
        var seen = Set<String>()
        for order in orders where !seen.insert(order.orderID).inserted { throw OrderStoreError.duplicateOrder(order.orderID) }
        var hospitals = Set<String>()
        for try await (id,) in try await database.client.query(
            "SELECT site_id FROM sites WHERE kind = 'hospital' AND site_id = ANY(\(Array(Set(orders.map(\.hospitalID)))))",
            logger: logger).decode((String,).self) { hospitals.insert(id) }
        if let bad = orders.first(where: { !hospitals.contains($0.hospitalID) }) {
            throw OrderStoreError.unknownHospital(orderID: bad.orderID, hospital: bad.hospitalID)
        }
        do {
            try await database.withTransaction { conn in
                try await conn.query("""
                    INSERT INTO orders (order_id, hospital, component, abo, rhd, context, quantity, requirements, max_age_days,
                      urgency, needed_by, placed_by, source, client_identifier, routing)
                    SELECT x.id, x.hospital, x.component, NULLIF(x.abo, ''), NULLIF(x.rhd, ''), x.context, x.quantity,
                      x.requirements, NULLIF(x.max_age, -1), x.urgency,
                      CASE WHEN x.needed_by IS NULL OR x.needed_by = 'NaN' THEN NULL ELSE to_timestamp(x.needed_by) END,
                      \(actor), x.source, NULLIF(x.client_identifier, ''), CASE WHEN x.immediate THEN 'immediate' END
                    FROM unnest(\(orders.map(\.orderID))::text[], \(orders.map(\.hospitalID))::text[],
                      \(orders.map(\.component.rawValue))::text[], \(orders.map { $0.group?.abo.rawValue ?? "" })::text[],
                      \(orders.map { $0.group?.rhd.rawValue ?? "" })::text[], \(orders.map(\.context.tokens))::text[],
                      \(orders.map(\.quantity))::int[], \(orders.map { $0.requirements.map(\.rawValue).joined(separator: ";") })::text[],
                      \(orders.map { $0.maximumUnitAgeDays ?? -1 })::int[], \(orders.map(\.urgency.rawValue))::text[],
                      \(orders.map { $0.neededBy?.timeIntervalSince1970 ?? .nan })::float8[], \(orders.map(\.source))::text[],
                      \(orders.map { $0.clientIdentifier ?? "" })::text[], \(orders.map(\.immediate))::bool[])
                      AS x(id, hospital, component, abo, rhd, context, quantity, requirements, max_age, urgency, needed_by, source,
                           client_identifier, immediate)
                    """, logger: logger)
                try await conn.query("""
                    INSERT INTO event_log (actor, action, subject, payload)
                    SELECT \(actor), 'order.created', 'order:' || x.id,
                      jsonb_build_object('hospital', x.hospital, 'quantity', x.quantity, 'urgency', x.urgency, 'source', x.source)
                    FROM unnest(\(orders.map(\.orderID))::text[], \(orders.map(\.hospitalID))::text[], \(orders.map(\.quantity))::int[],
                      \(orders.map(\.urgency.rawValue))::text[], \(orders.map(\.source))::text[]) AS x(id, hospital, quantity, urgency, source)
                    """, logger: logger)
            }
        } catch where sqlState(error) == "23505" {
            var existing: [String] = []
            for try await (id,) in try await database.client.query(
                "SELECT order_id FROM orders WHERE order_id = ANY(\(orders.map(\.orderID))) ORDER BY order_id LIMIT 1",
                logger: logger).decode((String,).self) { existing.append(id) }
            throw OrderStoreError.duplicateOrder(existing.first ?? "?")
        }
    }

    /// Orders, newest first, optionally of one status.
    public func list(status: String? = nil, limit: Int = 1000) async throws -> [OrderRecord] {
        try await fetch(where: status.map { _ in "status = $1" } ?? "true", bind: status, limit: limit)
    }

    /// One hospital's orders, newest first.
    public func list(hospital: String, limit: Int = 100) async throws -> [OrderRecord] {
        try await fetch(where: "hospital = $1", bind: hospital, limit: limit)
    }

    /// The order a hospital placed under its own identifier (`system|value`).
    public func find(hospital: String, clientIdentifier: String) async throws -> OrderRecord? {
        try await fetch(where: "client_identifier = $1 AND hospital = $2", binds: [clientIdentifier, hospital], limit: 1).first
    }

    /// One order.
    public func find(orderID: String) async throws -> OrderRecord? {
        try await fetch(where: "order_id = $1", bind: orderID, limit: 1).first
    }

    /// Pending orders as the optimiser's input, with each hospital's location, oldest first.
    public func pendingForBatch() async throws -> [BatchOrder] {
        let logger = database.logger
        var locations: [String: GeoPoint] = [:]
        for try await (id, lat, lon) in try await database.client.query(
            "SELECT site_id, latitude, longitude FROM sites WHERE kind = 'hospital'", logger: logger
        ).decode((String, Double, Double).self) { locations[id] = GeoPoint(latitude: lat, longitude: lon) }
        // Orders matched at once (FHIR asap and stat) are never the batch's.
        return try await fetch(where: "status = $1 AND routing IS NULL", bind: "pending", limit: 100_000).reversed().compactMap { record in
            guard let location = locations[record.hospitalID] else { return nil }
            return BatchOrder(orderID: record.orderID, hospitalID: record.hospitalID, destination: location,
                              component: record.component, recipient: Recipient(group: record.group, context: record.context),
                              quantity: record.quantity, requirements: record.requirements,
                              maximumUnitAgeDays: record.maximumUnitAgeDays, urgency: record.urgency, neededBy: record.neededBy,
                              placedAt: record.placedAt ?? Date(timeIntervalSince1970: 0))
        }
    }

    /// Recent demand at each hospital, since `since`, that the wastage report compares stock with:
    /// - batch orders (any status but cancelled), by recipient group; an order for a recipient of
    ///   unknown group counts as the groups of the units allocated to it;
    /// - live match decisions that found units (never what-ifs), by recipient group, or for an
    ///   unknown group the groups of the units chosen;
    /// - issues of holds a dispatcher made by hand (neither from a decision nor from an order), by
    ///   the group of the unit issued.
    /// An issue that came from a decision or an order is that demand already, so it is not counted again.
    public func recentDemand(since: Date) async throws -> [DemandSample] {
        var out: [DemandSample] = []
        for try await (lat, lon, component, abo, rhd, quantity) in try await database.client.query("""
            WITH demand AS (
              SELECT o.hospital, o.component, o.abo, o.rhd, o.quantity AS n
              FROM orders o WHERE o.placed_at >= \(since) AND o.status <> 'cancelled' AND o.abo IS NOT NULL
              UNION ALL
              SELECT o.hospital, o.component, ru.abo, ru.rhd, 1
              FROM orders o
                JOIN batch_allocations a ON a.order_id = o.order_id AND a.run_id = o.last_run_id
                JOIN batch_shipments sh ON sh.run_id = a.run_id AND sh.shipment_no = a.shipment_no
                JOIN reservation_units ru ON ru.reservation_id = sh.reservation_id AND ru.din = a.din AND ru.product_code = a.product_code
              WHERE o.placed_at >= \(since) AND o.status <> 'cancelled' AND o.abo IS NULL
              UNION ALL
              SELECT d.hospital, d.request->>'component',
                     coalesce(d.request->'recipient'->'group'->>'abo', u->'group'->>'abo'),
                     coalesce(d.request->'recipient'->'group'->>'rhd', u->'group'->>'rhd'), 1
              FROM decisions d CROSS JOIN LATERAL jsonb_array_elements(d.rationale->'chosen') u
              WHERE d.recorded_at >= \(since) AND d.hospital IS NOT NULL AND d.outcome IN ('fulfilled', 'partial', 'late')
                AND NOT coalesce((d.rationale->>'whatIf')::boolean, false)
              UNION ALL
              SELECT r.hospital, x.component, x.abo, x.rhd, 1
              FROM distributions x JOIN reservations r ON r.reservation_id = x.reservation_id AND r.source = 'manual'
              WHERE x.issued_at >= \(since) AND x.corrects IS NULL
            )
            SELECT s.latitude, s.longitude, m.component, coalesce(m.abo, ''), coalesce(m.rhd, ''), sum(m.n)::int
            FROM demand m JOIN sites s ON s.site_id = m.hospital
            GROUP BY 1, 2, 3, 4, 5
            """, logger: database.logger).decode((Double, Double, String, String, String, Int).self) {
            guard let c = Component(rawValue: component) else { continue }
            let group = ABO(rawValue: abo).flatMap { a in RhD(rawValue: rhd).map { BloodGroup(a, $0) } }
            out.append(DemandSample(destination: GeoPoint(latitude: lat, longitude: lon), component: c, group: group, quantity: quantity))
        }
        return out
    }

    /// Cancels a pending order; false when it is not pending (or not found). Logs `order.cancelled`.
    public func cancel(orderID: String, actor: String, reason: String) async throws -> Bool {
        let logger = database.logger
        return try await database.withTransaction { conn in
            var changed = false
            for try await (_,) in try await conn.query("""
                UPDATE orders SET status = 'cancelled', status_reason = \(reason), updated_at = clock_timestamp()
                WHERE order_id = \(orderID) AND status = 'pending' RETURNING order_id
                """, logger: logger).decode((String,).self) { changed = true }
            if changed {
                try await conn.query("""
                    INSERT INTO event_log (actor, action, subject, payload)
                    VALUES (\(actor), 'order.cancelled', \("order:" + orderID), jsonb_build_object('reason', \(reason)::text))
                    """, logger: logger)
            }
            return changed
        }
    }

    private func fetch(where condition: String, bind: String?, limit: Int) async throws -> [OrderRecord] {
        try await fetch(where: condition, binds: bind.map { [$0] } ?? [], limit: limit)
    }

    private func fetch(where condition: String, binds values: [String], limit: Int) async throws -> [OrderRecord] {
        var binds = PostgresBindings()
        for value in values { binds.append(value) }
        let sql = """
            SELECT order_id, hospital, component, coalesce(abo, ''), coalesce(rhd, ''), context, quantity, requirements,
                   coalesce(max_age_days, -1), urgency, extract(epoch FROM needed_by)::float8, status, status_reason,
                   last_run_id::text, extract(epoch FROM placed_at)::float8, placed_by, source, client_identifier, routing IS NOT NULL,
                   extract(epoch FROM updated_at)::float8
            FROM orders WHERE \(condition) ORDER BY placed_at DESC, order_id LIMIT \(max(1, limit))
            """
        var out: [OrderRecord] = []
        for try await row in try await database.client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: database.logger)
            .decode((String, String, String, String, String, String, Int, String, Int, String, Double?, String, String?, String?, Double, String, String,
                     String?, Bool, Double).self) {
            let group: BloodGroup? = ABO(rawValue: row.3).flatMap { abo in RhD(rawValue: row.4).map { BloodGroup(abo, $0) } }
            let context = (try? RecipientContext(parsing: row.5)) ?? RecipientContext()
            var record = OrderRecord(
                orderID: row.0, hospitalID: row.1, component: Component(rawValue: row.2) ?? .redCells, group: group, context: context,
                quantity: row.6, requirements: row.7.split(separator: ";").compactMap { UnitAttribute(rawValue: String($0)) },
                maximumUnitAgeDays: row.8 < 0 ? nil : row.8, urgency: Urgency(rawValue: row.9) ?? .routine,
                neededBy: row.10.map { Date(timeIntervalSince1970: $0) }, placedBy: row.15, source: row.16)
            record.status = row.11
            record.statusReason = row.12
            record.lastRunID = row.13.flatMap(UUID.init(uuidString:))
            record.placedAt = Date(timeIntervalSince1970: row.14)
            record.clientIdentifier = row.17
            record.immediate = row.18
            record.updatedAt = Date(timeIntervalSince1970: row.19)
            out.append(record)
        }
        return out
    }
}
