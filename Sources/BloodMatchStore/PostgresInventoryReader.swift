import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// The freshness of one centre's data, as the database knows it.
public struct CentreFreshness: Sendable, Hashable, Codable {
    /// Centre id.
    public var centreID: String
    /// The snapshot in force.
    public var snapshotID: Int64
    /// Its `as_of`.
    public var asOf: Date
    /// When it was imported.
    public var importedAt: Date
    /// The expected feed interval in seconds.
    public var expectedIntervalSeconds: Int64
}

/// Reads current stock and snapshot pointers: what the index is built from and checked against.
public struct PostgresInventoryReader: Sendable {
    /// The pool (application or import role).
    public let database: Database

    /// Creates the reader.
    public init(database: Database) { self.database = database }

    /// Every distribution centre with a snapshot in force, and its freshness.
    public func currentSnapshots() async throws -> [CentreFreshness] {
        var out: [CentreFreshness] = []
        for try await (centre, snapshot, asOf, importedAt, interval) in try await database.client.query("""
            SELECT s.centre, s.current_snapshot_id, s.last_as_of, s.last_import_at,
                   extract(epoch FROM t.expected_feed_interval)::bigint
            FROM centre_status s JOIN sites t ON t.site_id = s.centre ORDER BY s.centre
            """, logger: database.logger).decode((String, Int64, Date, Date, Int64).self) {
            out.append(CentreFreshness(centreID: centre, snapshotID: snapshot, asOf: asOf, importedAt: importedAt,
                                       expectedIntervalSeconds: interval))
        }
        return out
    }

    /// Builds the spatial index from the snapshots in force, in one repeatable-read transaction so
    /// the stock and the snapshot pointers agree. DINs current at two centres at once (a transfer
    /// in flight) are left out of both: they are held for review, never double counted.
    public func buildIndex(now: Date) async throws -> InventoryIndex {
        let logger = database.logger
        return try await database.client.withConnection { conn in
            try await conn.withTransaction(logger: logger) { conn in
                try await conn.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                var centres: [IndexedCentre] = []
                for try await (id, lat, lon, snapshot, asOf, interval) in try await conn.query("""
                    SELECT s.centre, t.latitude, t.longitude, s.current_snapshot_id, s.last_as_of,
                           extract(epoch FROM t.expected_feed_interval)::bigint
                    FROM centre_status s JOIN sites t ON t.site_id = s.centre ORDER BY s.centre
                    """, logger: logger).decode((String, Double, Double, Int64, Date, Int64).self) {
                    centres.append(IndexedCentre(siteID: id, location: GeoPoint(latitude: lat, longitude: lon), snapshotID: snapshot,
                                                 asOf: Int64(asOf.timeIntervalSince1970), expectedIntervalSeconds: interval))
                }
                var units: [InventoryUnit] = []
                let rows = try await conn.query("""
                    SELECT u.din, u.product_code, u.component, u.abo, u.rhd, u.collected_at, u.expires_at, u.site_id, u.attributes
                    FROM inventory_units u JOIN centre_status s ON s.current_snapshot_id = u.snapshot_id
                    WHERE u.status = 'AVAILABLE'
                      AND NOT EXISTS (SELECT 1 FROM inventory_units o JOIN centre_status os ON os.current_snapshot_id = o.snapshot_id
                                      WHERE o.din = u.din AND o.snapshot_id <> u.snapshot_id)
                    """, logger: logger)
                for try await (din, code, component, abo, rhd, collected, expires, site, attributes) in rows.decode(
                    (String, String, String, String, String, Date, Date, String, String).self) {
                    guard let din = try? DonationNumber(parsing: din), let component = Component(rawValue: component),
                          let abo = ABO(rawValue: abo), let rhd = RhD(rawValue: rhd) else { continue }
                    var set = AttributeSet()
                    for name in attributes.split(separator: ";") {
                        if let a = UnitAttribute(rawValue: String(name)) { set.insert(a) }
                    }
                    units.append(InventoryUnit(din: din, productCode: code, component: component, group: BloodGroup(abo, rhd),
                                               collectedAt: collected, expiresAt: expires, siteID: site, status: .available,
                                               attributes: set))
                }
                return InventoryIndex(centres: centres, units: units, builtAt: now)
            }
        }
    }

    /// Of the given DINs, those that are no longer offerable: not in a snapshot in force, not
    /// `AVAILABLE` there, current at two centres, or held by an active reservation.
    public func unavailable(dins: [String]) async throws -> Set<String> {
        guard !dins.isEmpty else { return [] }
        var available: Set<String> = []
        for try await (din,) in try await database.client.query("""
            SELECT u.din FROM inventory_units u JOIN centre_status s ON s.current_snapshot_id = u.snapshot_id
            WHERE u.din = ANY(\(dins)) AND u.status = 'AVAILABLE'
              AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.din = u.din AND r.state = 'active' AND r.held_until > now())
            GROUP BY u.din HAVING count(*) = 1
            """, logger: database.logger).decode((String,).self) { available.insert(din) }
        return Set(dins).subtracting(available)
    }
}
