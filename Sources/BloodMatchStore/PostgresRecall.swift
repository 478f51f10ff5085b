import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// Where one component of a donation is now, for a recall notice.
public struct RecallEntry: Sendable, Hashable, Codable {
    /// The unit.
    public var din: String
    /// Its product code.
    public var productCode: String
    /// Component class, when known.
    public var component: String?
    /// `in_stock`, `quarantined_in_stock`, `held`, `issued`, `received`, `transfused`, `returned`,
    /// `discarded`, or `left_stock` (its centre's feed no longer lists it and it was never issued).
    public var whereNow: String
    /// The centre that lists it now, or that last listed or issued it.
    public var centre: String?
    /// The hold, when held.
    public var reservationID: UUID?
    /// The consignee of its latest issue.
    public var consignee: String?
    /// Consignee name.
    public var consigneeName: String?
    /// Consignee address.
    public var consigneeAddress: String?
    /// Latest issue.
    public var issuedAt: Date?
    /// Receipt of that issue.
    public var receivedAt: Date?
    /// Final fate of that issue and its reason.
    public var fate: String?
    /// Why returned or discarded.
    public var fateReason: String?
    /// When the fate was recorded.
    public var fateAt: Date?
    /// Expiry as last known.
    public var expiresAt: Date?

    /// The unit's identity.
    public var key: UnitKey { UnitKey(din: din, productCode: productCode) }
}

extension PostgresUnitLifecycleStore {
    /// Every component of the donation `din` (or only `productCode`) ever seen by BloodMatch: in a
    /// snapshot, a hold or an issue; where each is now, and who received it.
    public func recall(din: String, productCode: String? = nil) async throws -> [RecallEntry] {
        try await database.observe("unit.recall") {
            var entries: [RecallEntry] = []
            for try await r in try await database.client.query("""
                WITH units AS (
                  SELECT din, product_code FROM inventory_units WHERE din = \(din)
                  UNION SELECT din, product_code FROM unit_movements WHERE din = \(din)
                  UNION SELECT din, product_code FROM reservation_units WHERE din = \(din)
                  UNION SELECT din, product_code FROM distributions WHERE din = \(din)
                )
                SELECT k.din, k.product_code,
                  coalesce(stock.component, hold.component, iss.component), stock.centre, stock.status, stock.expires_at,
                  hold.reservation_id, hold.centre, hold.state, hold.expires_at,
                  iss.centre, iss.consignee, iss.consignee_name, iss.consignee_address, iss.issued_at, iss.expires_at,
                  rec.recorded_at, fin.event, fin.reason, fin.recorded_at, gone.centre,
                  coalesce(stock.last_as_of > hold.state_changed_at, false)
                FROM units k
                LEFT JOIN LATERAL (SELECT s.centre, u.status, u.expires_at, u.component, s.last_as_of FROM inventory_units u
                                   JOIN centre_status s ON s.current_snapshot_id = u.snapshot_id
                                   WHERE u.din = k.din AND u.product_code = k.product_code ORDER BY s.centre LIMIT 1) stock ON true
                LEFT JOIN LATERAL (SELECT ru.reservation_id, ru.centre, ru.state, ru.expires_at, ru.component, ru.state_changed_at FROM reservation_units ru
                                   WHERE ru.din = k.din AND ru.product_code = k.product_code
                                   ORDER BY ru.state_changed_at DESC LIMIT 1) hold ON true
                LEFT JOIN LATERAL (SELECT d.* FROM distributions d WHERE d.din = k.din AND d.product_code = k.product_code
                                   ORDER BY d.issued_at DESC LIMIT 1) iss ON true
                LEFT JOIN LATERAL (SELECT f.recorded_at FROM unit_fates f WHERE f.distribution_id = iss.distribution_id
                                   AND f.event = 'received') rec ON true
                LEFT JOIN LATERAL (SELECT f.event, f.reason, f.recorded_at FROM unit_fates f WHERE f.distribution_id = iss.distribution_id
                                   AND f.event <> 'received') fin ON true
                LEFT JOIN LATERAL (SELECT m.centre FROM unit_movements m WHERE m.din = k.din AND m.product_code = k.product_code
                                   ORDER BY m.snapshot_id DESC LIMIT 1) gone ON true
                WHERE \(productCode)::text IS NULL OR k.product_code = \(productCode)
                ORDER BY k.product_code
                """, logger: database.logger).decode((String, String, String?, String?, String?, Date?, UUID?, String?, String?, Date?,
                                                      String?, String?, String?, String?, Date?, Date?, Date?, String?, String?, Date?, String?, Bool).self) {
                var e = RecallEntry(din: r.0, productCode: r.1, component: r.2, whereNow: "left_stock", centre: r.3 ?? r.7 ?? r.10 ?? r.20)
                e.expiresAt = r.5 ?? r.9 ?? r.15
                e.consignee = r.11; e.consigneeName = r.12; e.consigneeAddress = r.13; e.issuedAt = r.14; e.receivedAt = r.16
                e.fate = r.17; e.fateReason = r.18; e.fateAt = r.19
                switch r.8 {
                case "active":
                    e.whereNow = "held"
                    e.reservationID = r.6
                case "issued":
                    e.whereNow = r.17 ?? (r.16 == nil ? "issued" : "received")
                case "returned" where !r.21:
                    // Its centre's snapshot in force predates the return: back at the centre, not yet in stock.
                    e.whereNow = "returned"
                default:
                    if let status = r.4 {
                        e.whereNow = status == "AVAILABLE" ? "in_stock" : status.lowercased() + "_in_stock"
                    } else if r.8 == "returned" {
                        e.whereNow = "returned"
                    }
                }
                entries.append(e)
            }
            return entries
        }
    }
}
