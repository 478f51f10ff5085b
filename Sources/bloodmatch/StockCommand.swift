import ArgumentParser
import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation

/// `bloodmatch stock --near H --component RBC`: per-centre stock a match for that hospital could
/// use, nearest first, with staleness; the same counts as `GET /v1/availability` (`Availability`).
struct StockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stock",
        abstract: "Show, per centre and nearest first, the units of a component a match for a hospital could use, with each centre's data age.",
        discussion: """
        Counted as a match would choose: acceptable groups for the recipient (--abo/--rhd; without them each group
        as a plain request of that group), the requirements, held and issued units out, and only units with the
        component's minimum remaining life left when they arrive from that centre. The same numbers as
        GET /v1/availability on the same data.
        Exit codes: 0 listed, 2 usage, 5 unable to verify (database, index or clock).
        """)

    @Option(help: "Hospital site id to measure distances and arrival from.") var near: String
    @Option(help: "Component: RBC, PLT, PLASMA, CRYO or WB.") var component: String
    @Option(help: "Recipient ABO group: O, A, B, AB or UNKNOWN (with --rhd).") var abo: String?
    @Option(help: "Recipient RhD: POS, NEG or UNKNOWN (with --abo).") var rhd: String?
    @Option(help: "A special requirement (repeatable): IRRADIATED, CMV_NEG, …") var require: [String] = []
    @Option(help: "How many centres to list.") var limit: Int = 10
    @Option(help: "Transfusion policy file.") var policy: String?
    @Option(help: "Index file.") var index: String = IndexCommand.defaultPath
    @Flag(help: "Print JSON (the API's centre fields).") var json = false
    @Option(help: "Seconds the database may take before the answer is 'unable to verify' (exit 5).") var deadlineSeconds: Int = 10

    func run() async throws {
        let logger = makeLogger("bloodmatch.stock")
        guard let component = Component(rawValue: component.uppercased()) else {
            throw ValidationError("--component '\(component)' is not one of RBC, PLT, PLASMA, CRYO, WB")
        }
        let group: BloodGroup?
        switch (abo?.uppercased(), rhd?.uppercased()) {
        case (nil, nil), ("UNKNOWN", _), (_, "UNKNOWN"): group = nil
        case (let a?, let r?):
            guard let a = ABO(rawValue: a) else { throw ValidationError("--abo '\(a)' is not one of O, A, B, AB, UNKNOWN") }
            guard let r = RhD(rawValue: r) else { throw ValidationError("--rhd '\(r)' is not one of POS, NEG, UNKNOWN") }
            group = BloodGroup(a, r)
        default: throw ValidationError("give --abo and --rhd together, or neither")
        }
        var requirements: [UnitAttribute] = []
        for name in require.flatMap({ $0.split(separator: ",") }).map(String.init) {
            guard let attribute = UnitAttribute(rawValue: name) else { throw ValidationError("--require '\(name)' is not a known requirement") }
            if !requirements.contains(attribute) { requirements.append(attribute) }
        }
        try await runReportingFailures(logger: logger) {
            let planner = MatchPlanner(rules: try loadMatchRules(path: policy), settings: try loadMatchingSettings(),
                                       travelTimes: try loadTravelTimes())
            let preloaded = try? IndexLoader.load(path: index)
            let config = try Environment.current.database(role: .app)
            // A database that does not answer (a locked table, a paused server) ends in "unable to
            // verify" (exit 5) by the deadline, never a wait without end.
            let (site, inForce, held, now) = try await withDeadline(.seconds(deadlineSeconds)) {
                try await Database.with(config, logger: logger) { db in
                    let engine = DecisionEngine(database: db, planner: planner, index: preloaded, logger: logger)
                    // Expiry and data age are this host's: refused when its clock cannot be trusted.
                    try await engine.checkClock()
                    let now = Date()
                    return (try await PostgresInventoryReader(database: db).site(near),
                            try await engine.indexCheckedAgainstSnapshots(now: now).index,
                            try await PostgresInventoryReader(database: db).heldUnitPlaces(), now)
                }
            }
            guard let site, site.kind == .hospital else { throw ValidationError("--near '\(near)' is not a known hospital") }
            let request = MatchRequest(requestID: "stock", hospitalID: site.id, destination: site.location, component: component,
                                       recipient: Recipient(group: group), quantity: 1, requirements: requirements, urgency: .routine)
            let answer = Availability.answer(index: inForce, planner: planner, request: request, destination: site.location,
                                             held: held, now: now, anyGroup: group == nil)
            let seconds = Int64(now.timeIntervalSince1970)
            let listed = answer.centres.filter { $0.total > 0 || $0.centre.isStale(now: seconds) }.prefix(limit)
            if json {
                let rows: [[String: Any]] = listed.map { entry in
                    [
                        "centre_id": entry.centre.siteID,
                        "units_by_group": Dictionary(uniqueKeysWithValues: entry.unitsByGroup.map { ($0.key.description, $0.value) }),
                        "total_units": entry.total, "distance_km": (entry.distanceKm * 10).rounded() / 10,
                        "eta_minutes": (entry.etaMinutes * 10).rounded() / 10,
                        "earliest_expiry": entry.earliestExpiry.map { DecisionPrinter.timestamp($0) } ?? NSNull(),
                        "data_as_of": DecisionPrinter.timestamp(entry.centre.asOf),
                        "data_age_minutes": Int(entry.centre.dataAgeSeconds(now: seconds) / 60), "stale": entry.centre.isStale(now: seconds),
                    ]
                }
                let unknown: [[String: Any]] = answer.centresWithoutData.map {
                    ["centre_id": $0.centreID, "distance_km": ($0.distanceKm * 10).rounded() / 10, "status": "no_data", "warning": noDataWarning]
                }
                let body: [String: Any] = ["hospital_id": site.id, "component": component.rawValue, "centres": rows,
                                           "centres_without_data": unknown,
                                           "acceptable_groups": answer.query.choices.map { $0.group.description },
                                           "evaluated_at": DecisionPrinter.timestamp(seconds), "index_version": inForce.version]
                print(String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
                return
            }
            let who = group.map { "a \($0) recipient" } ?? "any group (each as a plain request of its own group)"
            print("\(component.rawValue) a match could use at \(site.id) (\(site.name)) for \(who)"
                  + (requirements.isEmpty ? "" : ", requiring \(requirements.map(\.rawValue).joined(separator: "+"))")
                  + ", as of \(SnapshotWriter.timestamp(now)):")
            let groups = answer.query.choices.map(\.group)
            var rows: [[String]] = []
            for entry in listed {
                let age = Int(entry.centre.dataAgeSeconds(now: seconds) / 60)
                rows.append([entry.centre.siteID, String(format: "%.0f", entry.distanceKm), DecisionPrinter.formatMinutes(entry.etaMinutes)]
                            + groups.map { String(entry.unitsByGroup[$0] ?? 0) }
                            + [String(entry.total), entry.earliestExpiry.map { DecisionPrinter.timestamp($0) } ?? "-",
                               entry.centre.isStale(now: seconds) ? "STALE: \(age) min old — last known stock" : "\(age) min old"])
            }
            // Never left out: a centre that has never delivered a snapshot has unknown stock, not none.
            for unknown in answer.centresWithoutData {
                rows.append([unknown.centreID, String(format: "%.0f", unknown.distanceKm), "-"] + groups.map { _ in "?" }
                            + ["?", "-", "NO DATA: " + noDataWarning])
            }
            for line in DecisionPrinter.table(header: ["centre", "km", "ETA"] + groups.map(\.description) + ["total", "earliest expiry", "data"], rows: rows) {
                print(line)
            }
            print("Counted as a match would choose: held and issued units out, and units without the minimum remaining life on arrival (\(Int(planner.settings.minimumRemainingHoursAtArrival[component] ?? 0)) h for \(component.rawValue)) out.")
        }
    }
}
