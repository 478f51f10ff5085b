import BloodMatchCore
import Foundation
import PostgresNIO

/// A unit as one hospital may see it: in stock and free for anyone to order, or held for or
/// issued to that hospital. Read from the database (the stock in force, holds and distributions),
/// never from the index, so a read is the truth at the time of the read.
public struct VisibleUnit: Sendable, Hashable {
    /// Where the unit stands for the caller.
    public enum Standing: String, Sendable, Hashable {
        /// In a centre's stock in force, `AVAILABLE`, unexpired, not held or issued.
        case available
        /// Held (an active hold) for the caller's hospital.
        case heldForCaller = "held"
        /// Issued to the caller's hospital.
        case issuedToCaller = "issued"
    }

    /// DIN and product code.
    public var key: UnitKey
    /// Component.
    public var component: Component
    /// Group.
    public var group: BloodGroup
    /// Collection instant, when the stock in force lists the unit.
    public var collectedAt: Date?
    /// Expiry.
    public var expiresAt: Date
    /// Attributes, when the stock in force lists the unit.
    public var attributes: AttributeSet
    /// The centre.
    public var centreID: String
    /// The as-of time of the centre's stock in force, when the view comes from it.
    public var stockAsOf: Date?
    /// Whether that stock is older than the centre's expected feed interval.
    public var stale: Bool
    /// Where it stands.
    public var standing: Standing
}

/// Reads of single units for a hospital.
public struct PostgresUnitVisibility: Sendable {
    /// The pool.
    public let database: Database

    /// Creates the reader.
    public init(database: Database) { self.database = database }

    /// The unit as `hospital` may see it, or nil when it is neither free stock nor held for or
    /// issued to that hospital (another hospital's unit is as invisible as one that does not exist).
    public func unit(_ key: UnitKey, hospital: String, now: Date) async throws -> VisibleUnit? {
        try await database.observe("units.visible") {
            let logger = database.logger
            // Held for or issued to the caller: the hold's or the issue's own record of the unit.
            for try await (centre, component, abo, rhd, expires, state) in try await database.client.query("""
                SELECT ru.centre, ru.component, ru.abo, ru.rhd, ru.expires_at, ru.state
                FROM reservation_units ru JOIN reservations r USING (reservation_id)
                WHERE ru.din = \(key.din) AND ru.product_code = \(key.productCode) AND r.hospital = \(hospital)
                  AND ((ru.state = 'active' AND r.held_until > \(now)) OR ru.state = 'issued')
                ORDER BY ru.state_changed_at DESC LIMIT 1
                """, logger: logger).decode((String, String, String, String, Date, String).self) {
                guard let c = Component(rawValue: component), let a = ABO(rawValue: abo), let r = RhD(rawValue: rhd) else { continue }
                return VisibleUnit(key: key, component: c, group: BloodGroup(a, r), collectedAt: nil, expiresAt: expires, attributes: [],
                                   centreID: centre, stockAsOf: nil, stale: false, standing: state == "issued" ? .issuedToCaller : .heldForCaller)
            }
            // Free stock: in exactly one centre's stock in force, AVAILABLE, unexpired, not held or issued.
            var found: [VisibleUnit] = []
            for try await (centre, component, abo, rhd, collected, expires, attributes, asOf, interval, blocked) in try await database.client.query("""
                SELECT u.site_id, u.component, u.abo, u.rhd, u.collected_at, u.expires_at, u.attributes, cs.last_as_of,
                       extract(epoch FROM t.expected_feed_interval)::float8,
                       EXISTS (SELECT 1 FROM reservation_units ru JOIN reservations r USING (reservation_id)
                               WHERE ru.din = u.din AND ru.product_code = u.product_code
                                 AND ((ru.state = 'active' AND r.held_until > \(now))
                                      OR (ru.state IN ('issued', 'returned') AND ru.state_changed_at >= cs.last_as_of)))
                FROM inventory_units u
                  JOIN centre_status cs ON cs.current_snapshot_id = u.snapshot_id
                  JOIN sites t ON t.site_id = cs.centre
                WHERE u.din = \(key.din) AND u.product_code = \(key.productCode) AND u.status = 'AVAILABLE' AND u.expires_at > \(now)
                """, logger: logger).decode((String, String, String, String, Date, Date, String, Date, Double, Bool).self) {
                guard !blocked, let c = Component(rawValue: component), let a = ABO(rawValue: abo), let r = RhD(rawValue: rhd) else { continue }
                let set = AttributeSet(attributes.split(separator: ";").compactMap { UnitAttribute(rawValue: String($0)) })
                found.append(VisibleUnit(key: key, component: c, group: BloodGroup(a, r), collectedAt: collected, expiresAt: expires,
                                         attributes: set, centreID: centre, stockAsOf: asOf,
                                         stale: now.timeIntervalSince(asOf) > interval, standing: .available))
            }
            // Listed by two centres at once: held for a human to resolve, never offered.
            return found.count == 1 ? found[0] : nil
        }
    }
}
