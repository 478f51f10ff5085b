import ArgumentParser
import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation
import Logging

/// `bloodmatch batch`: allocate every pending order at once, read the dispatch list, check the
/// optimiser against an exact solver, and benchmark it.
struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch", abstract: "Batch allocation of pending orders: run, show, solve (test instances), bench.",
        subcommands: [Run.self, Show.self, Wastage.self, Solve.self, Bench.self])

    static func optimiser(policy: String?, shipmentCost: Double?) throws -> BatchOptimiser {
        let planner = MatchPlanner(rules: try loadMatchRules(path: policy), settings: try loadMatchingSettings(),
                                   travelTimes: try loadTravelTimes())
        var settings = BatchSettings.standard
        if let shipmentCost {
            guard (0...10_000).contains(shipmentCost) else { throw ValidationError("--shipment-cost must be 0…10000 minutes") }
            settings.shipmentCostMinutes = shipmentCost
        }
        return BatchOptimiser(planner: planner, settings: settings)
    }

    /// `bloodmatch batch run`.
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Allocate every pending order; write shipments and reservations in one transaction; print the dispatch list.",
            discussion: """
            A run key already recorded returns that run unchanged (cron passes one per slot).
            --as-of T or --dry-run plans without recording or holding anything (a what-if).
            Exit codes: 0 every order allocated, 3 some orders short (each says why), 5 database unavailable, 6 busy.
            """)
        @Option(help: "What-if: plan at this instant (ISO 8601 with zone) on the stock in force now; nothing is recorded or held.") var asOf: String?
        @Flag(help: "Plan now, but record and hold nothing (a what-if).") var dryRun = false
        @Option(help: "Run key: a retry with the same key changes nothing and shows the first run.") var runKey: String?
        @Option(help: "Hours the reservations hold the units.") var holdHours: Double = 24
        @Option(help: "Shipment charge in minutes (default 120).") var shipmentCost: Double?
        @Option(help: "Transfusion policy file.") var policy: String?
        @Option(help: "Write the run's metrics here atomically (e.g. var/metrics/batch.prom, for the node exporter's textfile collector).")
        var metricsTextfile: String?
        @Flag(help: "Print the plan as JSON.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.batch")
            try await runReportingFailures(logger: logger) {
                try await withTracing("batch.run", logger: logger) { try await runTraced(logger: logger) }
            }
        }

        private func runTraced(logger: Logger) async throws {
            do {
                let now = try asOf.map(parseInstant) ?? Date()
                guard (0.1...168).contains(holdHours) else { throw ValidationError("--hold-hours must be 0.1…168") }
                let optimiser = try BatchCommand.optimiser(policy: policy, shipmentCost: shipmentCost)
                let key = runKey ?? UUID().uuidString.lowercased()
                let config = try Environment.current.database(role: .app)
                if asOf != nil || dryRun {
                    let plan = try await Database.with(config, logger: logger) { db in
                        try await BatchRunner(database: db, optimiser: optimiser, logger: logger).plan(now: now)
                    }
                    if json {
                        print(try BatchCommand.json(plan))
                    } else {
                        print("WHAT-IF (dry run) at \(SnapshotWriter.timestamp(now)) on the stock in force now: nothing was recorded or held.")
                        print(BatchPrinter.render(plan, runID: nil, runKey: nil, isNew: true, solveMilliseconds: 0))
                    }
                    logger.info("batch what-if", metadata: ["as_of": "\(SnapshotWriter.timestamp(now))", "orders": "\(plan.outcomes.count)",
                                                            "units": "\(plan.allocations.count)"])
                    if plan.outcomes.contains(where: { $0.status != .allocated }) { throw ExitStatus.rejected.exitCode }
                    return
                }
                let result: BatchRunResult
                let started = ContinuousClock.now
                do {
                    let (policyPath, policyVersion) = (RulesCommandSupport.policyPath(policy), (optimiser.planner.rules as? CompatibilityPolicy)?.version)
                    result = try await Database.with(config, logger: logger) { db in
                        // The files this run decides with are the ones in force (a change needs a supervisor).
                        try await recordConfiguration(db, policyPath: policyPath, policyVersion: policyVersion, actor: operatorName())
                        return try await BatchRunner(database: db, optimiser: optimiser, logger: logger)
                            .run(runKey: key, operatorName: operatorName(), now: now, holdHours: holdHours)
                    }
                } catch is BatchBusyError {
                    print("another batch run is being recorded; nothing was done")
                    throw ExitStatus.busy.exitCode
                }
                if json {
                    print(try BatchCommand.json(result.plan))
                } else {
                    print(BatchPrinter.render(result.plan, runID: result.runID, runKey: key, isNew: result.isNew,
                                              solveMilliseconds: result.solveMilliseconds))
                }
                logger.info("batch run", metadata: [
                    "run_id": "\(result.runID)", "run_key": "\(key)", "new": "\(result.isNew)",
                    "orders": "\(result.plan.outcomes.count)", "units": "\(result.plan.allocations.count)",
                    "shipments": "\(result.plan.shipments.count)", "total_cost_minutes": "\(result.plan.cost.totalMinutes)",
                    "greedy_cost_minutes": "\(result.plan.greedyCost.totalMinutes)", "stale_centres": "\(result.plan.staleCentres.count)",
                    "solve_ms": "\(result.solveMilliseconds)", "replans": "\(result.replans)",
                ])
                if let metricsTextfile, result.isNew {
                    let elapsed = ContinuousClock.now - started
                    let summary = BatchRunSummary(plan: result.plan, finishedAt: Date(),
                                                  durationSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                                                  solveMilliseconds: result.solveMilliseconds)
                    try SnapshotWriter.atomicWrite(Data(ServiceMetrics.batchTextfile(summary)), to: URL(fileURLWithPath: metricsTextfile))
                }
                if result.plan.outcomes.contains(where: { $0.status != .allocated }) { throw ExitStatus.rejected.exitCode }
            }
        }
    }

    /// `bloodmatch batch show RUN`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a recorded run's dispatch list (or the latest).")
        @Argument(help: "Run id or run key; omit for the latest run.") var run: String?
        @Flag(help: "Print the plan as JSON.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.batch")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let key = run
                let stored = try await Database.with(config, logger: logger) { db in
                    let store = PostgresBatchStore(database: db)
                    if let key { return try await store.find(keyOrID: key) }
                    return try await store.latest()
                }
                guard let stored else {
                    print("no batch run\(run.map { " with id or key '\($0)'" } ?? " recorded yet")")
                    throw ExitStatus.usage.exitCode
                }
                if json {
                    print(try BatchCommand.json(stored.plan))
                } else {
                    print(BatchPrinter.render(stored.plan, runID: stored.runID, runKey: stored.runKey, isNew: true,
                                              solveMilliseconds: stored.solveMilliseconds))
                    print("Recorded \(SnapshotWriter.timestamp(stored.finishedAt)) by \(stored.operatorName)")
                }
            }
        }
    }

    /// `bloodmatch batch wastage`: short-dated stock at risk of expiring unused, and transfers.
    struct Wastage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "wastage",
            abstract: "Units at risk of expiring unused (by centre, component and group, against recent demand) and suggested transfers.",
            discussion: """
            Demand: batch orders, live match decisions that found units (never what-ifs) and issues of holds made by hand; a recipient of
            unknown group counts as the group served. Transfers only meet demand of the unit's own group: O-negative is never sent to
            non-O demand to avoid waste (LB-ONEG; Data/SOURCES.md §S2); they move only units that arrive with the component's minimum
            remaining life (Data/matching.json), within the country unless --transfer-scope says otherwise.
            """)
        @Option(help: "Days of recent orders that make the demand.") var days: Double = 7
        @Option(help: "Evaluate at this instant (ISO 8601 with zone) instead of now.") var asOf: String?
        @Option(help: "Rows to print.") var limit: Int = 40
        @Option(help: "How far a transfer may go: region, country or any (default country).") var transferScope: String = "country"
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.batch")
            try await runReportingFailures(logger: logger) {
                guard (1...365).contains(days) else { throw ValidationError("--days must be 1…365") }
                guard let scope = TransferScope(rawValue: transferScope) else { throw ValidationError("--transfer-scope must be region, country or any") }
                let settings = try loadMatchingSettings()
                let now = try asOf.map(parseInstant) ?? Date()
                let config = try Environment.current.database(role: .app)
                let window = days
                let report = try await Database.with(config, logger: logger) { db in
                    let reader = PostgresInventoryReader(database: db)
                    let index = try await reader.buildIndex(now: now)
                    let held = try await reader.heldUnits()
                    let demand = try await PostgresOrderStore(database: db).recentDemand(since: now.addingTimeInterval(-window * 86_400))
                    let regions = Dictionary(try await PostgresSiteStore(database: db).all().map { ($0.id, $0.region) }, uniquingKeysWith: { a, _ in a })
                    return WastageReport.build(index: index, held: held, demand: demand, demandDays: window,
                                               horizonHours: BatchSettings.standard.wastageHorizonHours, now: now,
                                               settings: settings, regions: regions, scope: scope)
                }
                if json {
                    let encoder = PostgresBatchStore.encoder()
                    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                    print(String(decoding: try encoder.encode(report), as: UTF8.self))
                    return
                }
                print("Short-dated stock against \(Int(window)) day(s) of orders (at risk = would expire before demand uses it, first-expiring first)")
                for row in report.rows.prefix(limit) {
                    let supply = row.daysOfSupply.map { String(format: "%.1f days of supply", $0) } ?? "no recent demand"
                    print("  \(row.centreID)  \(row.component.rawValue) \(row.group)  stock \(row.stock), short-dated \(row.shortDated), at risk \(row.atRisk); " + String(format: "%.1f/day", row.dailyDemand) + ", \(supply)")
                }
                if report.rows.isEmpty { print("  none") }
                print("Suggested transfers (same group only, arriving with the minimum remaining life, within the \(scope.rawValue == "any" ? "network" : scope.rawValue)):")
                for t in report.transfers { print("  \(t.fromCentreID) → \(t.toCentreID): \(t.units.count) \(t.group) \(t.component.rawValue) — \(t.reason)") }
                if report.transfers.isEmpty { print("  none") }
            }
        }
    }

    /// `bloodmatch batch solve`: a small generated instance, its full candidate graph and the
    /// optimiser's and greedy's answers, for an independent exact solver (Jobs/checks/batch-optimum.sh).
    struct Solve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "solve", abstract: "Solve a generated instance in memory and print the graph and answers as JSON (for the exact-optimum check).")
        @Option(help: "Seed.") var seed: UInt64 = 1
        @Option(help: "Distribution centres.") var centres: Int = 4
        @Option(help: "Hospitals.") var hospitals: Int = 3
        @Option(help: "Units in stock.") var units: Int = 80
        @Option(help: "Orders.") var orders: Int = 10
        @Option(help: "Largest order quantity.") var maxQuantity: Int = 3
        @Option(help: "Side of the area in km.") var spreadKm: Double = 300
        @Option(help: "Shipment charge in minutes (default 120).") var shipmentCost: Double?
        @Option(help: "Candidates listed per unit ordered (default: the optimiser's); 1 makes most lists cut, so the optimum often lies beyond them.")
        var candidatesPerUnit: Int?
        @Option(help: "Fewest candidates listed per order (default: the optimiser's).") var minimumCandidates: Int?
        @Option(help: "Transfusion policy file.") var policy: String?

        func run() async throws {
            guard (1...200).contains(centres), (1...200).contains(hospitals), (1...5000).contains(units), (1...500).contains(orders) else {
                throw ValidationError("solve is for small instances: centres/hospitals ≤ 200, units ≤ 5000, orders ≤ 500")
            }
            var optimiser = try BatchCommand.optimiser(policy: policy, shipmentCost: shipmentCost)
            if let candidatesPerUnit {
                guard (1...100).contains(candidatesPerUnit) else { throw ValidationError("--candidates-per-unit must be 1…100") }
                optimiser = BatchOptimiser(planner: optimiser.planner, settings: { var s = optimiser.settings; s.candidatesPerUnit = candidatesPerUnit; return s }())
            }
            if let minimumCandidates {
                guard (0...1000).contains(minimumCandidates) else { throw ValidationError("--minimum-candidates must be 0…1000") }
                optimiser = BatchOptimiser(planner: optimiser.planner, settings: { var s = optimiser.settings; s.minimumCandidates = minimumCandidates; return s }())
            }
            let scenario = BatchScenario.generate(seed: seed, centres: centres, hospitals: hospitals, units: units, orders: orders,
                                                  maximumQuantity: maxQuantity, spreadKm: spreadKm)
            // The full graph: every eligible unit of every order (no candidate cap).
            let full = optimiser.candidateGraph(orders: scenario.orders, index: scenario.index, excluded: [], now: scenario.now) { _ in 100_000 }
            let (plan, graph) = optimiser.planWithGraph(orders: scenario.orders, index: scenario.index, excluded: [], now: scenario.now)
            let greedy = optimiser.greedyChoice(full)
            let scale = 100.0
            var out: [String: Any] = [:]
            out["shipment_cost"] = Int((optimiser.settings.shipmentCostMinutes * scale).rounded())
            // What the stewardship rules need: per order its band tolerance, deadline and limited
            // groups (low-titre group O whole blood); per edge the unit's rank and ETA.
            let seconds = Int64(scenario.now.timeIntervalSince1970)
            let limited = scenario.orders.map { o -> (groups: Set<BloodGroup>, limit: Int?) in
                let choices = optimiser.planner.query(for: o.matchRequest, destination: o.destination).0.choices
                return (Set(choices.filter { $0.maximumUnits != nil }.map(\.group)), choices.compactMap(\.maximumUnits).min())
            }
            out["orders"] = scenario.orders.enumerated().map { n, o -> [String: Any] in
                ["id": o.orderID, "hospital": o.hospitalID, "quantity": o.quantity, "urgency": o.urgency.rawValue,
                 "penalty": Int(((optimiser.settings.unservedPenaltyMinutes[o.urgency] ?? 1e5) * scale).rounded()),
                 "band_minutes": optimiser.planner.settings.preferenceBandMinutes[o.urgency] ?? 0,
                 "deadline_minutes": optimiser.deadlineMinutes(o, now: seconds) ?? NSNull(), "limit": limited[n].limit ?? NSNull()]
            }
            out["edges"] = full.edges.map { e -> [String: Any] in
                ["order": full.orders[e.order].orderID, "unit": full.units[e.unit].din, "centre": full.units[e.unit].centreID,
                 "hospital": full.orders[e.order].hospitalID, "cost": e.cost, "rank": e.proposal.rank, "eta": e.proposal.etaMinutes,
                 "limited": limited[e.order].groups.contains(e.proposal.group)]
            }
            out["stewardship_replacements"] = plan.stewardshipBreachesRepaired ?? 0
            out["chosen"] = plan.allocations.map { ["order": $0.orderID, "unit": $0.unit.din] }
            out["greedy"] = greedy.map { ["order": full.orders[full.edges[$0].order].orderID, "unit": full.units[full.edges[$0].unit].din] }
            out["optimiser_total_minutes"] = plan.cost.totalMinutes
            out["greedy_total_minutes"] = plan.greedyCost.totalMinutes
            out["plan_candidate_edges"] = plan.candidateEdges
            out["lower_bound_minutes"] = plan.lowerBoundMinutes ?? NSNull()
            out["proven_optimal"] = plan.provenOptimal ?? false
            out["candidate_lower_bound_minutes"] = plan.candidateLowerBoundMinutes ?? NSNull()
            out["proven_optimal_over_candidates"] = plan.provenOptimalOverCandidates ?? false
            out["orders_with_cut_lists"] = plan.ordersWithCutLists ?? 0
            out["plan_edges"] = graph.edges.map { ["order": graph.orders[$0.order].orderID, "unit": graph.units[$0.unit].din] }
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    /// `bloodmatch batch bench`: the optimiser and greedy on national-scale data, in memory.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench", abstract: "Benchmark: national dataset (bloodmatch generate's generator), pending orders, optimiser vs greedy; prints JSON.")
        @Option(help: "Seed.") var seed: UInt64 = 42
        @Option(help: "Sites (about one in five a distribution centre).") var sites: Int = 500
        @Option(help: "Units in stock.") var units: Int = 1_000_000
        @Option(help: "Pending orders.") var orders: Int = 2000
        @Option(help: "Largest order quantity (mean about half of it).") var maxQuantity: Int = 4
        @Option(help: "City table.") var cities: String = "Data/cities.csv"
        @Option(help: "Transfusion policy file.") var policy: String?

        func run() async throws {
            let optimiser = try BatchCommand.optimiser(policy: policy, shipmentCost: nil)
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let generator = SyntheticDataGenerator(seed: seed, siteCount: sites, unitCount: units, asOf: now, countries: ["AU", "US"])
            let siteList = generator.makeSites(cities: try City.load(from: cities))
            let stock = try generator.makeUnits(sites: siteList).values.flatMap { $0 }
            let centres = siteList.filter { $0.kind == .distributionCentre }.map {
                IndexedCentre(siteID: $0.id, location: $0.location, snapshotID: 1, asOf: Int64(now.timeIntervalSince1970) - 300,
                              expectedIntervalSeconds: 1800)
            }
            let index = InventoryIndex(centres: centres, units: stock, builtAt: now)
            let hospitals = siteList.filter { $0.kind == .hospital }
            let pending = BatchScenario.orders(seed: seed, count: orders, hospitals: hospitals, maximumQuantity: maxQuantity, now: now)
            let rssBefore = residentMegabytes()
            let start = ContinuousClock.now
            let plan = optimiser.plan(orders: pending, index: index, excluded: [], now: now)
            let elapsed = (ContinuousClock.now - start).seconds
            let requested = pending.map(\.quantity).reduce(0, +)
            let gap = plan.greedyCost.totalMinutes > 0 ? (plan.greedyCost.totalMinutes - plan.cost.totalMinutes) / plan.greedyCost.totalMinutes : 0
            let report: [String: Any] = [
                "units_in_stock": index.unitCount, "orders": pending.count, "units_requested": requested,
                "units_allocated": plan.allocations.count, "shipments": plan.shipments.count, "greedy_shipments": plan.greedyCost.shipments,
                "run_s": (elapsed * 1000).rounded() / 1000, "peak_rss_mb": peakResidentMegabytes(), "rss_mb_before_run": rssBefore,
                "total_cost_minutes": (plan.cost.totalMinutes * 10).rounded() / 10,
                "greedy_cost_minutes": (plan.greedyCost.totalMinutes * 10).rounded() / 10,
                "greedy_excess_percent": (gap / max(1e-9, 1 - gap) * 1000).rounded() / 10,
                "unserved": plan.cost.unserved.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: ","),
                "greedy_unserved": plan.greedyCost.unserved.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: ","),
                "lower_bound_minutes": ((plan.lowerBoundMinutes ?? 0) * 10).rounded() / 10,
                "gap_to_lower_bound_percent": plan.lowerBoundMinutes.map { lb in ((plan.cost.totalMinutes - lb) / max(1e-9, lb) * 1000).rounded() / 10 } ?? -1,
                "proven_optimal": plan.provenOptimal ?? false,
                "candidate_lower_bound_minutes": ((plan.candidateLowerBoundMinutes ?? 0) * 10).rounded() / 10,
                "gap_to_candidate_lower_bound_percent": plan.candidateLowerBoundMinutes.map { lb in ((plan.cost.totalMinutes - lb) / max(1e-9, lb) * 1000).rounded() / 10 } ?? -1,
                "orders_with_cut_lists": plan.ordersWithCutLists ?? 0,
                "stewardship_breaches_repaired": plan.stewardshipBreachesRepaired ?? 0,
                "late_units": plan.allocations.filter { $0.unit.late == true }.count,
                "cost_per_unit_served": (plan.cost.totalMinutes / Double(max(1, plan.allocations.count)) * 100).rounded() / 100,
                "greedy_cost_per_unit_served": (plan.greedyCost.totalMinutes / Double(max(1, requested - plan.greedyCost.unserved.values.reduce(0, +))) * 100).rounded() / 100,
                "candidate_edges": plan.candidateEdges, "rescaling_rounds": plan.rescalingRounds,
                "shipments_closed_by_local_search": plan.shipmentsClosedByLocalSearch,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    static func json(_ plan: BatchPlan) throws -> String {
        let encoder = PostgresBatchStore.encoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try encoder.encode(plan), as: UTF8.self)
    }
}

/// Peak resident memory of this process (VmHWM), in MB.
func peakResidentMegabytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
    return kb / 1024
}
