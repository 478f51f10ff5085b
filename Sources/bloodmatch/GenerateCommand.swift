import ArgumentParser
import BloodMatchCore
import BloodMatchIngest
import Foundation

/// `bloodmatch generate`: deterministic synthetic sites and stock at real places.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a deterministic synthetic dataset: sites.csv and one snapshot per distribution centre.",
        discussion: """
        National scale for benchmarks: --sites 500 --units 1000000 (100 distribution centres).
        Stock comes as donations: about one in five has two or more units sharing its DIN (red cells
        with plasma and a platelet unit, or the bags of a divided product), each with its own product
        code and expiry. Sites get a city-level address (city, region, country).
        Output: DIR/sites.csv, DIR/snapshots/<centre>.csv + .ctl.json, DIR/manifest.json.
        Cities come from Data/cities.csv (GeoNames, CC BY 4.0).
        """)

    @Option(help: "Random seed; the same seed and sizes give byte-identical files.") var seed: UInt64 = 42
    @Option(help: "Number of sites (about one in five is a distribution centre).") var sites: Int = 60
    @Option(help: "Number of units across all distribution centres.") var units: Int = 6000
    @Option(help: "Output folder.") var out: String
    @Option(help: "Snapshot instant (ISO 8601 with zone, or 'now').") var asOf: String = "now"
    @Option(help: "Countries to draw cities from, comma-separated ISO codes.") var countries: String = "AU,US"
    @Option(help: "City table.") var cities: String = "Data/cities.csv"
    @Option(help: "Use the sites in this site list instead of drawing new ones (stock is generated for its distribution centres).") var sitesFile: String?

    func validate() throws {
        guard sites >= 2, sites <= 5000 else { throw ValidationError("--sites must be 2…5000, got \(sites)") }
        guard units >= 0, units <= 10_000_000 else { throw ValidationError("--units must be 0…10000000, got \(units)") }
    }

    func run() async throws {
        // Failures as every command reports them: an `error:` line naming the file, and its exit code.
        try await runReportingFailures(logger: makeLogger("bloodmatch.generate")) { try generate() }
    }

    private func generate() throws {
        let asOfDate: Date
        if asOf == "now" {
            asOfDate = Date().roundedToSecond
        } else if let parsed = ISO8601DateFormatter().date(from: asOf) {
            asOfDate = parsed
        } else {
            throw ValidationError("--as-of '\(asOf)' is not an ISO 8601 instant with a zone (e.g. 2026-11-29T07:00:00Z)")
        }
        let generator = SyntheticDataGenerator(
            seed: seed, siteCount: sites, unitCount: units, asOf: asOfDate,
            countries: Set(countries.split(separator: ",").map(String.init)))
        let siteList: [Site]
        if let sitesFile {
            guard let data = FileManager.default.contents(atPath: sitesFile) else { throw ValidationError("cannot read \(sitesFile)") }
            siteList = try decodeSiteList(data, fileName: sitesFile)
        } else {
            siteList = generator.makeSites(cities: try City.load(from: cities))
        }
        let outURL = URL(fileURLWithPath: out)
        let snapshots = outURL.appendingPathComponent("snapshots")
        do {
            try FileManager.default.createDirectory(at: snapshots, withIntermediateDirectories: true)
        } catch {
            // Foundation's own text is "the operation could not be completed"; the system's reason is underneath.
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error
            let reason = underlying.map { ($0 as NSError).localizedFailureReason ?? "\($0)" } ?? error.localizedDescription
            throw ValidationFailure(environment: "cannot create the folder \(snapshots.path): \(reason)")
        }
        try SnapshotWriter.atomicWrite(Data(try SnapshotWriter.sitesCSV(siteList).utf8), to: outURL.appendingPathComponent("sites.csv"))
        let stock = try generator.makeUnits(sites: siteList)
        let stamp = SnapshotWriter.timestamp(asOfDate).replacingOccurrences(of: ":", with: "")
        for (centre, units) in stock.sorted(by: { $0.key < $1.key }) {
            try SnapshotWriter.writeSnapshot(units: units, centre: centre, asOf: asOfDate, to: snapshots, name: "\(centre)-\(stamp)")
        }
        // A donation's units are written together, so a centre's DIN changes only between donations.
        var donations = 0
        for units in stock.values {
            var previous: DonationNumber?
            for unit in units where unit.din != previous {
                donations += 1
                previous = unit.din
            }
        }
        let manifest = """
        {"seed": \(seed), "sites": \(siteList.count), "distribution_centres": \(stock.count), "units": \(units), "donations": \(donations), "as_of": "\(SnapshotWriter.timestamp(asOfDate))"}

        """
        try SnapshotWriter.atomicWrite(Data(manifest.utf8), to: outURL.appendingPathComponent("manifest.json"))
        print("wrote \(siteList.count) sites and \(stock.values.map(\.count).reduce(0, +)) units of \(donations) donations in \(stock.count) snapshots to \(out) (as of \(SnapshotWriter.timestamp(asOfDate)))")
    }
}

/// Decodes a site list, turning its typed error into a usage error that names file, line and field.
func decodeSiteList(_ data: Data, fileName: String) throws -> [Site] {
    let result: Result<[Site], SiteListError> = Result { () throws(SiteListError) in
        try SiteListDecoder.decode(data, fileName: fileName)
    }
    switch result {
    case .success(let sites): return sites
    case .failure(let error): throw ValidationError(error.description)
    }
}
