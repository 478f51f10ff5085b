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

    /// What an index must name for this centre to be current: the snapshot and its `as_of`.
    public var mark: SnapshotMark { SnapshotMark(snapshotID: snapshotID, asOf: Int64(asOf.timeIntervalSince1970)) }
}

/// A snapshot as an index names it. The id alone is not enough: every database numbers its
/// snapshots from 1, so an index file built from another database (a demo, a restore, another
/// site) would pass as current and offer that database's stock.
public struct SnapshotMark: Sendable, Hashable {
    /// The snapshot id.
    public var snapshotID: Int64
    /// Its `as_of`, seconds since 1970.
    public var asOf: Int64

    /// Creates a mark.
    public init(snapshotID: Int64, asOf: Int64) {
        self.snapshotID = snapshotID
        self.asOf = asOf
    }
}

extension IndexedCentre {
    /// The snapshot this centre's part of an index was built from.
    public var mark: SnapshotMark { SnapshotMark(snapshotID: snapshotID, asOf: asOf) }
}

/// Reads current stock and snapshot pointers: what the index is built from and checked against.
public struct PostgresInventoryReader: Sendable {
    /// The pool (application or import role).
    public let database: Database

    /// Creates the reader.
    public init(database: Database) { self.database = database }

    /// Every distribution centre with a snapshot in force, and its freshness.
    public func currentSnapshots() async throws -> [CentreFreshness] {
        try await snapshotsInForce().centres
    }

    /// Every distribution centre with a snapshot in force and its freshness, and the ids of those
    /// that have never delivered one (their stock is unknown), in one query: what an index must
    /// name to be current.
    public func snapshotsInForce() async throws -> (centres: [CentreFreshness], withoutData: [String]) {
        try await database.observe("inventory.current_snapshots") {
            var out: [CentreFreshness] = []
            var without: [String] = []
            for try await (centre, snapshot, asOf, importedAt, interval) in try await database.client.query("""
                SELECT t.site_id, s.current_snapshot_id, s.last_as_of, s.last_import_at,
                       extract(epoch FROM t.expected_feed_interval)::bigint
                FROM sites t LEFT JOIN centre_status s ON s.centre = t.site_id
                WHERE t.kind = 'distribution_centre' OR s.centre IS NOT NULL ORDER BY t.site_id
                """, logger: database.logger).decode((String, Int64?, Date?, Date?, Int64).self) {
                guard let snapshot, let asOf, let importedAt else { without.append(centre); continue }
                out.append(CentreFreshness(centreID: centre, snapshotID: snapshot, asOf: asOf, importedAt: importedAt,
                                           expectedIntervalSeconds: interval))
            }
            return (out, without)
        }
    }

    /// Builds the spatial index from the snapshots in force, in one repeatable-read transaction so
    /// the stock and the snapshot pointers agree; distribution centres that have never delivered
    /// a snapshot are carried as centres without data (stock unknown). DINs current at two centres at once (a transfer
    /// in flight) are left out of both: they are held for review, never double counted.
    public func buildIndex(now: Date) async throws -> InventoryIndex {
        try await database.observe("index.build") {
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
                    var withoutData: [CentreWithoutData] = []
                    for try await (id, lat, lon) in try await conn.query("""
                        SELECT t.site_id, t.latitude, t.longitude FROM sites t
                        WHERE t.kind = 'distribution_centre' AND NOT EXISTS (SELECT 1 FROM centre_status s WHERE s.centre = t.site_id)
                        ORDER BY t.site_id
                        """, logger: logger).decode((String, Double, Double).self) {
                        withoutData.append(CentreWithoutData(siteID: id, location: GeoPoint(latitude: lat, longitude: lon)))
                    }
                    // One row per centre, its units packed into one text (`din,code,kind,collected,expires,attrs`
                    // lines): decoding 100 large values is far cheaper than 900k rows or array elements.
                    var units: [InventoryUnit] = []
                    var unreadable: [String] = []
                    var attributeSets: [String: AttributeSet] = ["": AttributeSet()]
                    let components = Component.allCases.sorted()
                    let rows = try await conn.query("""
                        SELECT u.site_id, string_agg(u.din || ',' || u.product_code || ','
                            || ((CASE u.component WHEN 'RBC' THEN 0 WHEN 'PLT' THEN 1 WHEN 'PLASMA' THEN 2 WHEN 'CRYO' THEN 3 ELSE 4 END) * 8
                                + (CASE u.abo WHEN 'O' THEN 0 WHEN 'A' THEN 1 WHEN 'B' THEN 2 ELSE 3 END) * 2
                                + (CASE u.rhd WHEN 'NEG' THEN 0 ELSE 1 END))::text
                            || ',' || extract(epoch FROM u.collected_at)::int8::text || ',' || extract(epoch FROM u.expires_at)::int8::text
                            || ',' || u.attributes, E'\n')
                        FROM inventory_units u JOIN centre_status s ON s.current_snapshot_id = u.snapshot_id
                        WHERE u.status = 'AVAILABLE' AND (u.din, u.product_code) NOT IN (\(unescaped: Self.liveConflictUnits))
                          AND NOT EXISTS (SELECT 1 FROM reservation_units r WHERE r.din = u.din AND r.product_code = u.product_code
                                          AND (r.state = 'issued' OR (r.state = 'returned' AND r.state_changed_at >= s.last_as_of)))
                        GROUP BY u.site_id
                        """, logger: logger)
                    for try await (site, packedText) in rows.decode((String, String).self) {
                        // No per-centre reserveCapacity: an exact reservation each time defeats the array's
                        // geometric growth and copies the whole array once per centre.
                        var text = packedText
                        text.withUTF8 { bytes in
                            for line in bytes.split(separator: 10, omittingEmptySubsequences: true) {
                                let parts = line.split(separator: 44, maxSplits: 5, omittingEmptySubsequences: false)
                                guard parts.count == 6,
                                      let din = try? DonationNumber(parsing: String(decoding: parts[0], as: UTF8.self)),
                                      let kind = Self.integer(parts[2]), (0..<40).contains(kind),
                                      let collected = Self.integer(parts[3]), let expires = Self.integer(parts[4]) else {
                                    // Never silently: a row the index cannot read (a DIN stored before the strict
                                    // ST-001 parser, say) is left out, and named in the log.
                                    if unreadable.count < 5 { unreadable.append(String(decoding: line.prefix(40), as: UTF8.self)) } else { unreadable.append("") }
                                    continue
                                }
                                let attributeText = String(decoding: parts[5], as: UTF8.self)
                                let set: AttributeSet
                                if let known = attributeSets[attributeText] {
                                    set = known
                                } else {
                                    set = AttributeSet(attributeText.split(separator: ";").compactMap { UnitAttribute(rawValue: String($0)) })
                                    attributeSets[attributeText] = set
                                }
                                units.append(InventoryUnit(
                                    din: din, productCode: String(decoding: parts[1], as: UTF8.self), component: components[Int(kind / 8)],
                                    group: BloodGroup.all[Int(kind % 8)],   // `all` is in `index` order
                                    collectedAt: Date(timeIntervalSince1970: Double(collected)),
                                    expiresAt: Date(timeIntervalSince1970: Double(expires)), siteID: site, status: .available,
                                    attributes: set))
                            }
                        }
                    }
                    if !unreadable.isEmpty {
                        logger.error("units left out of the index: their stored row cannot be read", metadata: [
                            "count": "\(unreadable.count)", "examples": "\(unreadable.filter { !$0.isEmpty }.joined(separator: "; "))"])
                    }
                    return InventoryIndex(centres: centres, units: units, builtAt: now, centresWithoutData: withoutData)
                }
            }
        }
    }

    /// A decimal integer from ASCII bytes (optionally negative); nil if anything else is there.
    static func integer(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Int64? {
        var value: Int64 = 0
        var negative = false
        var any = false
        for (offset, byte) in bytes.enumerated() {
            if offset == 0 && byte == 45 { negative = true; continue }
            guard (48...57).contains(byte) else { return nil }
            value = value &* 10 &+ Int64(byte - 48)
            any = true
        }
        return any ? (negative ? -value : value) : nil
    }

    /// Units (DIN and product code) current at two centres at once, held for review: the recorded
    /// conflicts whose unit both centres still list in their snapshots in force. Every such pair was
    /// recorded by the import that made the second snapshot current, so this small table is all
    /// that needs checking.
    static let liveConflictUnits = """
        SELECT c.din, c.product_code FROM unit_conflicts c
        WHERE EXISTS (SELECT 1 FROM inventory_units x JOIN centre_status xs ON xs.current_snapshot_id = x.snapshot_id
                      WHERE x.din = c.din AND x.product_code = c.product_code AND xs.centre = c.centre)
          AND EXISTS (SELECT 1 FROM inventory_units y JOIN centre_status ys ON ys.current_snapshot_id = y.snapshot_id
                      WHERE y.din = c.din AND y.product_code = c.product_code AND ys.centre = c.other_centre)
        """

    /// Units not to be proposed although their snapshot lists them: under an active, unexpired
    /// hold, issued, or returned after their centre's snapshot in force was taken (a returned unit
    /// re-enters stock only when its centre's feed lists it again).
    public func heldUnits() async throws -> Set<UnitKey> {
        try await database.observe("inventory.held_units") {
            var out: Set<UnitKey> = []
            for try await (din, code) in try await database.client.query(PostgresQuery(unsafeSQL: Self.heldUnitsSQL), logger: database.logger)
                .decode((String, String).self) { out.insert(UnitKey(din: din, productCode: code)) }
            return out
        }
    }

    /// `heldUnits()` read on a connection, inside the caller's transaction.
    static func heldUnits(on conn: PostgresConnection, logger: Logger) async throws -> Set<UnitKey> {
        var out: Set<UnitKey> = []
        for try await (din, code) in try await conn.query(PostgresQuery(unsafeSQL: heldUnitsSQL), logger: logger)
            .decode((String, String).self) { out.insert(UnitKey(din: din, productCode: code)) }
        return out
    }

    static let heldUnitsSQL = """
        SELECT r.din, r.product_code FROM reservation_units r JOIN reservations h USING (reservation_id)
        WHERE r.state = 'active' AND h.held_until > now()
        UNION ALL
        SELECT r.din, r.product_code FROM reservation_units r JOIN centre_status s ON s.centre = r.centre
        WHERE r.state = 'returned' AND r.state_changed_at >= s.last_as_of
        """

    /// Units no match may choose although the index may still hold them, with their centre,
    /// component and group: under an active hold, or issued or returned since their centre's
    /// snapshot (one issued earlier is left out of the index when it is built, so the read stays
    /// as small as the recent activity, however long the history). What availability counts leave out.
    public func heldUnitPlaces() async throws -> [HeldUnit] {
        try await database.observe("inventory.held_unit_places") {
            var out: [HeldUnit] = []
            for try await (din, code, centre, component, abo, rhd) in try await database.client.query("""
                SELECT r.din, r.product_code, r.centre, r.component, r.abo, r.rhd
                FROM reservation_units r JOIN reservations h USING (reservation_id)
                WHERE r.state = 'active' AND h.held_until > now()
                UNION ALL
                SELECT r.din, r.product_code, r.centre, r.component, r.abo, r.rhd
                FROM reservation_units r JOIN centre_status s ON s.centre = r.centre
                WHERE r.state IN ('issued', 'returned') AND r.state_changed_at >= s.last_as_of
                """, logger: database.logger).decode((String, String, String, String, String, String).self) {
                guard let component = Component(rawValue: component), let a = ABO(rawValue: abo), let r = RhD(rawValue: rhd) else { continue }
                out.append(HeldUnit(key: UnitKey(din: din, productCode: code), centreID: centre, component: component, group: BloodGroup(a, r)))
            }
            return out
        }
    }

    /// Of the given units, those that are no longer offerable: not in a snapshot in force, not
    /// `AVAILABLE` there, expired, current at two centres, held, issued, or returned since.
    public func unavailable(units: [UnitKey]) async throws -> Set<UnitKey> {
        try await database.observe("inventory.recheck_units") {
            guard !units.isEmpty else { return [] }
            var available: Set<UnitKey> = []
            for try await unit in try await database.client.execute(RecheckUnitsStatement(units: units), logger: database.logger) {
                available.insert(unit)
            }
            return Set(units).subtracting(available)
        }
    }
}

/// The units, among those given, that are available in the snapshots in force, unexpired, and not
/// held, issued or returned since (a unit in two snapshots in force is ambiguous and counts as
/// unavailable). Prepared once per connection: planning it took six times as long as running it.
struct RecheckUnitsStatement: PostgresPreparedStatement {
    static let sql = """
        SELECT u.din, u.product_code FROM inventory_units u JOIN centre_status s ON s.current_snapshot_id = u.snapshot_id
          JOIN unnest($1::text[], $2::text[]) AS w(din, product_code) ON w.din = u.din AND w.product_code = u.product_code
        WHERE u.status = 'AVAILABLE' AND u.expires_at > now()
          AND NOT EXISTS (SELECT 1 FROM reservation_units r JOIN reservations h USING (reservation_id)
                      WHERE r.din = u.din AND r.product_code = u.product_code
                        AND (r.state = 'issued' OR (r.state = 'active' AND h.held_until > now())
                             OR (r.state = 'returned' AND r.state_changed_at >= s.last_as_of)))
        GROUP BY u.din, u.product_code HAVING count(*) = 1
        """
    static let bindingDataTypes: [PostgresDataType] = [.textArray, .textArray]
    typealias Row = UnitKey

    let units: [UnitKey]

    func makeBindings() throws -> PostgresBindings {
        var b = PostgresBindings(capacity: 2)
        b.append(units.map(\.din))
        b.append(units.map(\.productCode))
        return b
    }

    func decodeRow(_ row: PostgresRow) throws -> UnitKey {
        let (din, code) = try row.decode((String, String).self)
        return UnitKey(din: din, productCode: code)
    }
}
