import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// Sites (distribution centres and hospitals) in PostgreSQL.
public struct PostgresSiteStore: Sendable {
    /// The pool.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Inserts or updates every site in one transaction; returns (inserted, updated).
    ///
    /// A site never changes kind: a distribution centre listed as a hospital (or the reverse) is
    /// refused, because stock and decisions already refer to it.
    public func upsert(_ sites: [Site], source: String) async throws -> (inserted: Int, updated: Int) {
        let logger = database.logger
        return try await database.withTransaction { conn in
            var existing: [String: String] = [:]
            for try await (id, kind) in try await conn.query(
                "SELECT site_id, kind FROM sites WHERE site_id = ANY(\(sites.map(\.id)))", logger: logger
            ).decode((String, String).self) { existing[id] = kind }
            for site in sites {
                if let kind = existing[site.id], kind != site.kind.rawValue {
                    throw SiteKindChangeError(siteID: site.id, from: kind, to: site.kind.rawValue, source: source)
                }
            }
            try await conn.query("""
                INSERT INTO sites (site_id, name, kind, latitude, longitude, region, address)
                SELECT * FROM unnest(\(sites.map(\.id))::text[], \(sites.map(\.name))::text[], \(sites.map(\.kind.rawValue))::text[],
                  \(sites.map(\.location.latitude))::float8[], \(sites.map(\.location.longitude))::float8[], \(sites.map(\.region))::text[],
                  \(sites.map(\.address))::text[])
                ON CONFLICT (site_id) DO UPDATE SET name = EXCLUDED.name, latitude = EXCLUDED.latitude,
                  longitude = EXCLUDED.longitude, region = EXCLUDED.region,
                  address = CASE WHEN EXCLUDED.address = '' THEN sites.address ELSE EXCLUDED.address END, updated_at = now()
                """, logger: logger)
            let inserted = sites.filter { existing[$0.id] == nil }.count
            let payload = #"{"source":\#(jsonString(source)),"sites":\#(sites.count),"inserted":\#(inserted)}"#
            try await conn.query("""
                INSERT INTO event_log (actor, action, subject, payload)
                VALUES ('import', 'sites.imported', 'sites', \(payload)::jsonb)
                """, logger: logger)
            return (inserted, sites.count - inserted)
        }
    }

    /// Every site.
    public func all() async throws -> [Site] {
        try await database.observe("sites.all") {
            try await database.client.withConnection { conn in try await Self.all(on: conn, logger: database.logger) }
        }
    }

    /// Every site, by id, read on `conn`.
    static func all(on conn: PostgresConnection, logger: Logger) async throws -> [Site] {
        var sites: [Site] = []
        for try await (id, name, kind, lat, lon, region, address) in try await conn.query(
            "SELECT site_id, name, kind, latitude, longitude, region, address FROM sites ORDER BY site_id", logger: logger
        ).decode((String, String, String, Double, Double, String, String).self) {
            sites.append(Site(id: id, name: name, kind: SiteKind(rawValue: kind) ?? .hospital,
                              location: GeoPoint(latitude: lat, longitude: lon), region: region, address: address))
        }
        return sites
    }
}

/// A site list tried to turn a centre into a hospital or the reverse.
public struct SiteKindChangeError: Error, Sendable, CustomStringConvertible {
    /// The site.
    public var siteID: String
    /// Its recorded kind.
    public var from: String
    /// The kind the file claims.
    public var to: String
    /// The file.
    public var source: String
    public var description: String {
        "\(source): site \(siteID) is recorded as \(from) but the file says \(to); a site never changes kind. Nothing was changed."
    }
}
