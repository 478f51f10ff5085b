import BloodMatchCore
import BloodMatchStore
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes sites and inventory snapshots in the feed formats of `Data/feed-format.md`.
enum SnapshotWriter {
    static let inventoryHeader = "din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes\n"
    static let sitesHeader = "site_id,name,kind,latitude,longitude,region\n"

    /// `2026-11-29T07:00:00Z`.
    static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var p = tm()
        gmtime_r(&t, &p)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", p.tm_year + 1900, p.tm_mon + 1, p.tm_mday,
                      p.tm_hour, p.tm_min, p.tm_sec)
    }

    /// `2026-11-29T07:00:00.123456Z` from epoch microseconds (audit records keep the database's precision).
    static func timestampMicros(_ micros: Int64) -> String {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        let whole = timestamp(Date(timeIntervalSince1970: Double(seconds)))
        return String(whole.dropLast()) + String(format: ".%06lldZ", fraction)
    }

    /// The sites CSV.
    static func sitesCSV(_ sites: [Site]) -> String {
        var out = sitesHeader
        for s in sites {
            let name = s.name.contains(",") || s.name.contains("\"") ? "\"\(s.name.replacingOccurrences(of: "\"", with: "\"\""))\"" : s.name
            out += "\(s.id),\(name),\(s.kind.rawValue),\(String(format: "%.6f", s.location.latitude)),\(String(format: "%.6f", s.location.longitude)),\(s.region)\n"
        }
        return out
    }

    /// One centre's snapshot CSV bytes.
    static func inventoryCSV(_ units: [InventoryUnit]) -> Data {
        var out = inventoryHeader
        out.reserveCapacity(units.count * 110)
        for u in units {
            out += u.din.value; out += ","
            out += u.productCode; out += ","
            out += u.component.rawValue; out += ","
            out += u.group.abo.rawValue; out += ","
            out += u.group.rhd.rawValue; out += ","
            out += timestamp(u.collectedAt); out += ","
            out += timestamp(u.expiresAt); out += ","
            out += u.siteID; out += ","
            out += u.status.rawValue; out += ","
            out += u.attributes.description; out += "\n"
        }
        return Data(out.utf8)
    }

    /// The control record that vouches for a snapshot file's completeness.
    static func controlRecord(centre: String, asOf: Date, csv: Data, rowCount: Int) -> Data {
        let sha = SHA256.hash(data: csv).lowercaseHex
        let json = """
        {
          "format": "bloodmatch-inventory/1",
          "centre": "\(centre)",
          "as_of": "\(timestamp(asOf))",
          "row_count": \(rowCount),
          "sha256": "\(sha)",
          "empty_stock": \(rowCount == 0)
        }

        """
        return Data(json.utf8)
    }

    /// Writes `DIR/NAME.csv` and `DIR/NAME.ctl.json`, the control record last (it is what makes
    /// the snapshot complete for a spool reader), each through a temporary file and a rename.
    static func writeSnapshot(units: [InventoryUnit], centre: String, asOf: Date, to directory: URL, name: String) throws {
        let csv = inventoryCSV(units)
        let ctl = controlRecord(centre: centre, asOf: asOf, csv: csv, rowCount: units.count)
        try atomicWrite(csv, to: directory.appendingPathComponent("\(name).csv"))
        try atomicWrite(ctl, to: directory.appendingPathComponent("\(name).ctl.json"))
    }

    /// Writes through `.NAME.tmp` and renames, so no reader ever sees a half-written file.
    static func atomicWrite(_ data: Data, to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
        do {
            try data.write(to: tmp)
        } catch {
            // A full or read-only disk: leave no partial file; the previous one stays in place.
            try? FileManager.default.removeItem(at: tmp)
            throw ValidationFailure("cannot write \(url.path): \(error.localizedDescription); the previous file, if any, is unchanged")
        }
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: tmp, to: url)
    }
}
