import BloodMatchCore
import Foundation
import PostgresNIO

/// Available stock of one component at one centre, with the centre's data freshness.
public struct CentreAvailability: Sendable, Hashable, Codable {
    /// Centre id and name.
    public var centreID: String
    /// Human name.
    public var name: String
    /// Location.
    public var location: GeoPoint
    /// Snapshot instant.
    public var asOf: Date
    /// Expected feed interval in seconds.
    public var expectedIntervalSeconds: Int64
    /// Unexpired, available, unreserved units per group (`O-`, `A+`, …).
    public var unitsByGroup: [String: Int]
    /// Earliest expiry among them.
    public var earliestExpiry: Date?

    /// Whether the centre's data is stale at `now`.
    public func isStale(now: Date) -> Bool { now.timeIntervalSince(asOf) > Double(expectedIntervalSeconds) }
}

extension PostgresInventoryReader {
    /// Per-centre available stock of a component at `now`, straight from the snapshots in force
    /// (the truth, not the index): unexpired, `AVAILABLE`, not held by an active reservation and
    /// not current at two centres. Every centre with a snapshot is listed, even with zero units.
    public func availability(component: Component, now: Date) async throws -> [CentreAvailability] {
        var byCentre: [String: CentreAvailability] = [:]
        for try await (id, name, lat, lon, asOf, interval) in try await database.client.query("""
            SELECT s.centre, t.name, t.latitude, t.longitude, s.last_as_of, extract(epoch FROM t.expected_feed_interval)::bigint
            FROM centre_status s JOIN sites t ON t.site_id = s.centre
            """, logger: database.logger).decode((String, String, Double, Double, Date, Int64).self) {
            byCentre[id] = CentreAvailability(centreID: id, name: name, location: GeoPoint(latitude: lat, longitude: lon), asOf: asOf,
                                              expectedIntervalSeconds: interval, unitsByGroup: [:], earliestExpiry: nil)
        }
        for try await (centre, abo, rhd, n, earliest) in try await database.client.query("""
            SELECT s.centre, u.abo, u.rhd, count(*)::int, min(u.expires_at)
            FROM inventory_units u JOIN centre_status s ON s.current_snapshot_id = u.snapshot_id
            WHERE u.component = \(component.rawValue) AND u.status = 'AVAILABLE' AND u.expires_at > \(now)
              AND NOT EXISTS (SELECT 1 FROM reservation_units r JOIN reservations h USING (reservation_id)
                          WHERE r.din = u.din AND r.product_code = u.product_code
                            AND (r.state = 'issued' OR (r.state = 'active' AND h.held_until > \(now))
                                 OR (r.state = 'returned' AND r.state_changed_at >= s.last_as_of)))
              AND (u.din, u.product_code) NOT IN (\(unescaped: Self.liveConflictUnits))
            GROUP BY 1, 2, 3
            """, logger: database.logger).decode((String, String, String, Int, Date).self) {
            guard var entry = byCentre[centre], let a = ABO(rawValue: abo), let r = RhD(rawValue: rhd) else { continue }
            entry.unitsByGroup[BloodGroup(a, r).description] = n
            entry.earliestExpiry = min(entry.earliestExpiry ?? earliest, earliest)
            byCentre[centre] = entry
        }
        return byCentre.values.sorted { $0.centreID < $1.centreID }
    }

    /// A site's location, if it exists.
    public func site(_ id: String) async throws -> Site? {
        try await PostgresSiteStore(database: database).all().first { $0.id == id }
    }
}
