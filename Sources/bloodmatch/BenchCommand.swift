import ArgumentParser
import BloodMatchCore
import Foundation

/// `bloodmatch bench match`: the matcher on a dataset of the shared benchmark harness
/// (`../shared/bench/gen_dataset.py`), in the harness's semantics, with per-query latencies.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print figures (not tests).", subcommands: [Match.self, LoadIndex.self])

    /// `bloodmatch bench load-index`: how long an index file takes to load, and its memory.
    struct LoadIndex: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "load-index", abstract: "Time loading an index file (5 loads) and report resident memory.")
        @Option(help: "Index file.") var index: String = IndexCommand.defaultPath

        func run() async throws {
            let before = residentMegabytes()
            var times: [Double] = []
            var units = 0
            for _ in 0..<5 {
                let start = ContinuousClock.now
                let loaded = try IndexLoader.load(path: index)
                times.append((ContinuousClock.now - start).seconds)
                units = loaded.unitCount
            }
            let loaded = try IndexLoader.load(path: index)
            let after = residentMegabytes()
            let report: [String: Any] = [
                "units": units, "load_s_median": (times.sorted()[2] * 1000).rounded() / 1000,
                "load_s_runs": times.map { ($0 * 1000).rounded() / 1000 }, "rss_mb_before": before, "rss_mb_with_index": after,
                "index_version": loaded.version,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    struct Match: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "match",
            abstract: "Run the harness's queries through the in-process matcher; write answers for oracle.py --check and print latencies as JSON.",
            discussion: """
            Semantics (like for like with the anchors): distance first, the harness's strict group table
            (RBC and PLT: red-cell ABO rule, RhD-negative recipients only RhD-negative; PLASMA and CRYO: plasma
            rule, RhD ignored), no arrival margin, order (km, expires_at, DIN), unexpired means expires_at > as_of.
            """)

        @Option(help: "Dataset folder: sites.csv, inventory.csv, queries.csv, manifest.json.") var dataset: String
        @Option(help: "Answers CSV to write (query_id,rank,din,site_id,distance_km,expires_at).") var answers: String
        @Option(help: "Measured passes after one warm-up pass.") var passes: Int = 3

        func run() async throws {
            let dir = URL(fileURLWithPath: dataset)
            let loadStart = ContinuousClock.now
            let sites = try BenchData.sites(dir.appendingPathComponent("sites.csv"))
            let asOf = try BenchData.asOf(dir.appendingPathComponent("manifest.json"))
            let units = try BenchData.units(dir.appendingPathComponent("inventory.csv"))
            let parse = ContinuousClock.now - loadStart
            let centres = sites.values.filter { $0.kind == .distributionCentre }.map {
                IndexedCentre(siteID: $0.id, location: $0.location, snapshotID: 0, asOf: asOf, expectedIntervalSeconds: Int64.max / 4)
            }
            let buildStart = ContinuousClock.now
            let index = InventoryIndex(centres: centres, units: units, builtAt: Date(timeIntervalSince1970: Double(asOf)))
            let build = ContinuousClock.now - buildStart
            let bytes = index.serialized()
            let loadIndexStart = ContinuousClock.now
            let reloaded = try InventoryIndex(serialized: bytes)
            let indexLoad = ContinuousClock.now - loadIndexStart
            let queries = try BenchData.queries(dir.appendingPathComponent("queries.csv"), sites: sites)
            let matcher = UnitMatcher(index: reloaded, settings: .benchmark, distanceOnly: true)

            var perQuery = [[Double]](repeating: [], count: queries.count)
            var passTimes: [Double] = []
            var results: [UnitMatch] = []
            for pass in 0...passes {
                let passStart = ContinuousClock.now
                var out: [UnitMatch] = []
                out.reserveCapacity(queries.count)
                for (i, q) in queries.enumerated() {
                    let t0 = ContinuousClock.now
                    let result = matcher.match(q.query, now: asOf)
                    let dt = ContinuousClock.now - t0
                    if pass > 0 { perQuery[i].append(dt.seconds * 1e6) }
                    out.append(result)
                }
                let elapsed = (ContinuousClock.now - passStart).seconds
                if pass > 0 { passTimes.append(elapsed) }
                results = out
            }
            var csv = "query_id,rank,din,site_id,distance_km,expires_at\n"
            for (q, result) in zip(queries, results) {
                for (rank, unit) in result.chosen.enumerated() {
                    csv += "\(q.id),\(rank + 1),\(unit.din),\(unit.centreID),\(String(format: "%.6f", unit.distanceKm)),\(SnapshotWriter.timestamp(Date(timeIntervalSince1970: Double(unit.expiresAt))))\n"
                }
            }
            try csv.write(toFile: answers, atomically: true, encoding: .utf8)
            let medians = perQuery.map { $0.sorted()[$0.count / 2] }.sorted()
            func pct(_ p: Double) -> Double { medians[min(medians.count - 1, Int(Double(medians.count) * p))] }
            let medianPass = passTimes.sorted()[passTimes.count / 2]
            let report: [String: Any] = [
                "method": "bloodmatch in-process matcher (one core)",
                "queries": queries.count, "units_indexed": index.unitCount, "centres": centres.count,
                "p50_us": (pct(0.5) * 100).rounded() / 100, "p99_us": (pct(0.99) * 100).rounded() / 100,
                "max_us": (medians.last ?? 0).rounded(), "queries_per_s": (Double(queries.count) / medianPass).rounded(),
                "csv_parse_s": (parse.seconds * 100).rounded() / 100, "index_build_from_rows_s": (build.seconds * 1000).rounded() / 1000,
                "index_file_bytes": bytes.count, "index_load_s": (indexLoad.seconds * 1000).rounded() / 1000,
            ]
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

/// Readers for the harness's trusted CSV files (benchmark input only; feeds go through Ingest).
enum BenchData {
    struct Query { var id: String; var query: UnitQuery }

    static func lines(_ url: URL) throws -> [Substring] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).dropFirst().map { $0 }
    }

    static func sites(_ url: URL) throws -> [String: Site] {
        var out: [String: Site] = [:]
        for line in try lines(url) {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 6, let lat = Double(f[3]), let lon = Double(f[4]), let kind = SiteKind(rawValue: String(f[2])) else {
                throw ValidationFailure("\(url.path): bad site row \(line.prefix(80))")
            }
            out[String(f[0])] = Site(id: String(f[0]), name: String(f[1]), kind: kind, location: GeoPoint(latitude: lat, longitude: lon), region: String(f[5]))
        }
        return out
    }

    static func asOf(_ url: URL) throws -> Int64 {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        guard let text = object?["as_of"] as? String else { throw ValidationFailure("\(url.path): no as_of") }
        return Int64(try parseInstant(text).timeIntervalSince1970)
    }

    static func units(_ url: URL) throws -> [InventoryUnit] {
        var units: [InventoryUnit] = []
        units.reserveCapacity(1_100_000)
        for line in try lines(url) {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count == 10, let din = try? DonationNumber(parsing: f[0]), let component = Component(rawValue: String(f[2])),
                  let abo = ABO(rawValue: String(f[3])), let rhd = RhD(rawValue: String(f[4])),
                  let collected = ISO8601Seconds.parse(f[5]), let expires = ISO8601Seconds.parse(f[6]),
                  let status = UnitStatus(rawValue: String(f[8])) else {
                throw ValidationFailure("\(url.path): bad inventory row \(line.prefix(80))")
            }
            var attributes = AttributeSet()
            for name in f[9].split(separator: ";") { if let a = UnitAttribute(rawValue: String(name)) { attributes.insert(a) } }
            units.append(InventoryUnit(din: din, productCode: String(f[1]), component: component, group: BloodGroup(abo, rhd),
                                       collectedAt: Date(timeIntervalSince1970: Double(collected)),
                                       expiresAt: Date(timeIntervalSince1970: Double(expires)), siteID: String(f[7]),
                                       status: status, attributes: attributes))
        }
        return units
    }

    /// The harness's group table (`oracle.py` `acceptable`).
    static func benchmarkChoices(component: Component, abo: ABO, rhd: RhD) -> [GroupChoice] {
        let redCell: [ABO: [ABO]] = [.O: [.O], .A: [.A, .O], .B: [.B, .O], .AB: [.AB, .A, .B, .O]]
        let plasma: [ABO: [ABO]] = [.O: [.O, .A, .B, .AB], .A: [.A, .AB], .B: [.B, .AB], .AB: [.AB]]
        let abos: [ABO]
        let rhds: [RhD]
        switch component {
        case .redCells, .platelets:
            abos = redCell[abo] ?? []
            rhds = rhd == .negative ? [.negative] : [.positive, .negative]
        default:
            abos = plasma[abo] ?? []
            rhds = [.positive, .negative]
        }
        return abos.flatMap { a in rhds.map { GroupChoice(group: BloodGroup(a, $0), rank: 1, rule: "benchmark harness table") } }
    }

    static func queries(_ url: URL, sites: [String: Site]) throws -> [Query] {
        try lines(url).map { line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 7, let site = sites[String(f[1])], let component = Component(rawValue: String(f[2])),
                  let abo = ABO(rawValue: String(f[3])), let rhd = RhD(rawValue: String(f[4])), let quantity = Int(f[5]) else {
                throw ValidationFailure("\(url.path): bad query row \(line.prefix(80))")
            }
            let required = AttributeSet(f[6].split(separator: ";").compactMap { UnitAttribute(rawValue: String($0)) })
            return Query(id: String(f[0]), query: UnitQuery(
                destination: site.location, destinationSiteID: site.id, component: component,
                choices: benchmarkChoices(component: component, abo: abo, rhd: rhd), required: required,
                quantity: quantity, urgency: .routine))
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` → seconds since 1970, by hand (days-from-civil).
enum ISO8601Seconds {
    static func parse(_ text: Substring) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 20, b[4] == 45, b[7] == 45, b[10] == 84, b[13] == 58, b[16] == 58, b[19] == 90 else { return nil }
        func n(_ r: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in r { guard (48...57).contains(b[i]) else { return nil }; v = v * 10 + Int64(b[i] - 48) }
            return v
        }
        guard var y = n(0..<4), let m = n(5..<7), let d = n(8..<10), let hh = n(11..<13), let mm = n(14..<16), let ss = n(17..<19) else { return nil }
        y -= m <= 2 ? 1 : 0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + hh * 3600 + mm * 60 + ss
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Resident set size of this process in MB (from /proc/self/status).
func residentMegabytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
    return kb / 1024
}
