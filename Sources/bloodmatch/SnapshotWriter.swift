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
    static let sitesHeader = "site_id,name,kind,latitude,longitude,region,address\n"
    /// The header of site lists before sites had addresses, which the site-list decoder still reads.
    static let sitesHeaderWithoutAddress = "site_id,name,kind,latitude,longitude,region\n"

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

    /// The sites CSV, with the `address` column; a list in which no site has an address (one read
    /// from an older file) is written in the older six-column form, since the decoder refuses an
    /// empty address. Throws when only some sites have one.
    static func sitesCSV(_ sites: [Site]) throws -> String {
        let withAddress = sites.filter { !$0.address.isEmpty }.count
        guard withAddress == 0 || withAddress == sites.count else {
            throw ValidationFailure("\(sites.count - withAddress) of \(sites.count) sites have no address; a site list gives every site one or none")
        }
        var out = withAddress > 0 ? sitesHeader : sitesHeaderWithoutAddress
        for s in sites {
            out += "\(s.id),\(csvField(s.name)),\(s.kind.rawValue),\(String(format: "%.6f", s.location.latitude)),\(String(format: "%.6f", s.location.longitude)),\(csvField(s.region))"
            if withAddress > 0 { out += "," + csvField(s.address) }
            out += "\n"
        }
        return out
    }

    /// `text`, quoted (RFC 4180, `"` doubled) when it holds a comma, a quote or a line end.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
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
            throw ValidationFailure(environment: "cannot write \(url.path): \(error.localizedDescription); the previous file, if any, is unchanged")
        }
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: tmp, to: url)
    }
}
