import ArgumentParser
import BloodMatchIngest
import BloodMatchStore
import Foundation

/// `bloodmatch sites …`: the list of distribution centres and hospitals.
struct SitesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sites", abstract: "Manage distribution centres and hospitals.",
        subcommands: [Import.self, List.self])

    /// `bloodmatch sites list`: every site, and for each distribution centre its data in force.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the sites; each distribution centre with its snapshot in force and its age, or 'no data'.",
            discussion: "Exit codes: 0 listed, 5 database unavailable.")

        @Option(help: "Only one kind: distribution_centre or hospital.") var kind: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.sites")
            let only: BloodMatchCore.SiteKind?
            if let kind {
                guard let parsed = BloodMatchCore.SiteKind(rawValue: kind) else {
                    throw ValidationError("--kind '\(kind)' is not one of distribution_centre, hospital")
                }
                only = parsed
            } else {
                only = nil
            }
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let (sites, inForce) = try await withDeadline(.seconds(10)) {
                    try await Database.with(config, logger: logger) { db in
                        (try await PostgresSiteStore(database: db).all(), try await PostgresInventoryReader(database: db).snapshotsInForce())
                    }
                }
                let now = Date()
                let data = Dictionary(uniqueKeysWithValues: inForce.centres.map { ($0.centreID, $0) })
                let listed = sites.filter { only == nil || $0.kind == only }.sorted { $0.id < $1.id }
                func state(_ site: BloodMatchCore.Site) -> (text: String, ageMinutes: Int?, stale: Bool?) {
                    guard site.kind == .distributionCentre else { return ("", nil, nil) }
                    guard let c = data[site.id] else { return ("NO DATA: no snapshot ever — stock unknown, confirm by phone", nil, nil) }
                    let age = Int(now.timeIntervalSince(c.asOf) / 60)
                    let stale = now.timeIntervalSince(c.asOf) > Double(c.expectedIntervalSeconds)
                    return ((stale ? "STALE: " : "") + "snapshot \(c.snapshotID) as of \(SnapshotWriter.timestamp(c.asOf)), \(age) min old", age, stale)
                }
                if json {
                    let rows: [[String: Any]] = listed.map { site in
                        let s = state(site)
                        var row: [String: Any] = ["site_id": site.id, "name": site.name, "kind": site.kind.rawValue,
                                                  "latitude": site.location.latitude, "longitude": site.location.longitude, "region": site.region]
                        if site.kind == .distributionCentre {
                            row["data"] = data[site.id] == nil ? "no_data" : (s.stale == true ? "stale" : "current")
                            row["data_age_minutes"] = s.ageMinutes ?? NSNull()
                        }
                        return row
                    }
                    print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
                    return
                }
                let rows = listed.map { site in
                    [site.id, site.kind == .distributionCentre ? "centre" : "hospital", site.name,
                     String(format: "%.4f, %.4f", site.location.latitude, site.location.longitude), site.region, state(site).text]
                }
                for line in DecisionPrinter.table(header: ["site", "kind", "name", "location", "region", "data"], rows: rows) { print(line) }
                let centres = listed.filter { $0.kind == .distributionCentre }
                let unknown = centres.filter { data[$0.id] == nil }.count
                print("\(listed.count) site(s); \(centres.count) distribution centre(s), \(unknown) without data")
            }
        }
    }

    /// `bloodmatch sites import FILE`.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Insert or update sites from a CSV file (site_id,name,kind,latitude,longitude,region,address); all or nothing.")

        @Argument(help: "The site list CSV.") var file: String

        func run() async throws {
            let logger = makeLogger("bloodmatch.sites")
            try await runReportingFailures(logger: logger) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw ValidationFailure("\(file): cannot read the file")
                }
                let sites: [BloodMatchCore.Site]
                do {
                    sites = try SiteListDecoder.decode(data, fileName: URL(fileURLWithPath: file).lastPathComponent)
                } catch let error as SiteListError {
                    logger.error("site list refused", metadata: ["file": "\(file)", "error": "\(error.description)"])
                    print("refused: \(error.description)")
                    throw ExitStatus.rejected.exitCode
                }
                let config = try Environment.current.database(role: .importer)
                let (inserted, updated) = try await Database.with(config, logger: logger) { db in
                    try await PostgresSiteStore(database: db).upsert(sites, source: file)
                }
                logger.info("sites imported", metadata: ["file": "\(file)", "inserted": "\(inserted)", "updated": "\(updated)"])
                print("sites: \(inserted) inserted, \(updated) updated from \(file)")
            }
        }
    }
}

import BloodMatchCore
