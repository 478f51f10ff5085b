import ArgumentParser
import BloodMatchCore
import BloodMatchStore
import Foundation

/// `bloodmatch stock --near H --component RBC`: per-centre availability, nearest first, with staleness.
struct StockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stock",
        abstract: "Show available stock of a component per centre, nearest first, with each centre's data age.")

    @Option(help: "Hospital site id to measure distances from.") var near: String
    @Option(help: "Component: RBC, PLT, PLASMA, CRYO or WB.") var component: String
    @Option(help: "How many centres to list.") var limit: Int = 10
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let logger = makeLogger("bloodmatch.stock")
        guard let component = Component(rawValue: component.uppercased()) else {
            throw ValidationError("--component '\(component)' is not one of RBC, PLT, PLASMA, CRYO, WB")
        }
        try await runReportingFailures(logger: logger) {
            let now = Date()
            let config = try Environment.current.database(role: .app)
            let (site, centres) = try await Database.with(config, logger: logger) { db in
                let reader = PostgresInventoryReader(database: db)
                return (try await reader.site(near), try await reader.availability(component: component, now: now))
            }
            guard let site else { throw ValidationError("--near '\(near)' is not a known site") }
            let ranked = centres.map { ($0, site.location.distanceKm(to: $0.location)) }.sorted { $0.1 < $1.1 }.prefix(limit)
            if json {
                struct Row: Encodable { var centre: CentreAvailability; var distanceKm: Double; var stale: Bool; var dataAgeMinutes: Int }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                encoder.dateEncodingStrategy = .iso8601
                let rows = ranked.map { Row(centre: $0.0, distanceKm: $0.1, stale: $0.0.isStale(now: now), dataAgeMinutes: Int(now.timeIntervalSince($0.0.asOf) / 60)) }
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
                return
            }
            print("\(component.rawValue) available near \(site.id) (\(site.name)), as of \(SnapshotWriter.timestamp(now)):")
            let groups = BloodGroup.all.map(\.description)
            var rows: [[String]] = []
            for (centre, km) in ranked {
                let age = Int(now.timeIntervalSince(centre.asOf) / 60)
                let total = centre.unitsByGroup.values.reduce(0, +)
                rows.append([centre.centreID, String(format: "%.0f", km)] + groups.map { String(centre.unitsByGroup[$0] ?? 0) }
                            + [String(total), centre.earliestExpiry.map { SnapshotWriter.timestamp($0) } ?? "-",
                               centre.isStale(now: now) ? "STALE: \(age) min old — last known stock" : "\(age) min old"])
            }
            for line in DecisionPrinter.table(header: ["centre", "km"] + groups + ["total", "earliest expiry", "data"], rows: rows) { print(line) }
        }
    }
}
