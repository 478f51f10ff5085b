import BloodMatchCore
import BloodMatchStore
import Foundation
import Logging

/// The result of one `BatchRunner.run`.
public struct BatchRunResult: Sendable {
    /// The run id (the earlier run's when the key was already used).
    public var runID: UUID
    /// The plan as recorded.
    public var plan: BatchPlan
    /// False when the key had been run before and the earlier run is returned unchanged.
    public var isNew: Bool
    /// Milliseconds spent building candidates and optimising (last attempt).
    public var solveMilliseconds: Int
    /// Times the plan was re-made because units or orders changed under it.
    public var replans: Int
}

/// The batch could not be recorded after several re-plans (units keep being taken).
public struct BatchContentionError: Error, Sendable, CustomStringConvertible {
    /// Attempts made.
    public var attempts: Int
    /// Creates the error.
    public init(attempts: Int) { self.attempts = attempts }
    /// Text for people and logs.
    public var description: String { "the batch could not be recorded after \(attempts) attempts: units or orders kept changing; nothing was written" }
}

/// Runs a batch: pending orders and stock from PostgreSQL, plan in memory, one atomic write.
///
/// Units reserved or issued are excluded before planning. If a unit is reserved by a live match
/// between planning and writing (the reservation's unique index says so), nothing is written and
/// the plan is made again without it and without every hold made since (read again); if an order is cancelled meanwhile, it is made again
/// without the order. A run key already recorded returns that run and changes nothing.
public struct BatchRunner: Sendable {
    let database: Database
    let optimiser: BatchOptimiser
    let logger: Logger

    /// Creates a runner.
    public init(database: Database, optimiser: BatchOptimiser, logger: Logger) {
        self.database = database
        self.optimiser = optimiser
        self.logger = logger
    }

    /// A dry run (a what-if): the plan for every pending order at `now` on the stock in force and
    /// the holds as they are, with nothing recorded or held. A plan at an instant other than the
    /// present describes no real moment (units expired since, or holds ending in the past), so
    /// `bloodmatch batch run --as-of` makes one of these, never a run.
    public func plan(now: Date) async throws -> BatchPlan {
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let reader = PostgresInventoryReader(database: database)
        let index = try await reader.buildIndex(now: now)
        let excluded = try await reader.heldUnits()
        let orders = try await PostgresOrderStore(database: database).pendingForBatch()
        return await optimiser.planOnOwnThread(orders: orders, index: index, excluded: excluded, now: now)
    }

    /// Plans and records a run under `runKey` at `now`; reservations hold units for `holdHours`.
    /// Attempts before the last are optimistic (live holds go on; a clash re-plans); the last is
    /// fenced (see `PostgresBatchStore.record(…fence:)`).
    public func run(runKey: String, operatorName: String, now: Date, holdHours: Double = 24, maximumAttempts: Int = 3) async throws -> BatchRunResult {
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let batches = PostgresBatchStore(database: database)
        if let existing = try await batches.find(keyOrID: runKey) {
            return BatchRunResult(runID: existing.runID, plan: existing.plan, isNew: false,
                                  solveMilliseconds: existing.solveMilliseconds, replans: 0)
        }
        let startedAt = Date()
        // Issued units are left out of the index when it is built; active holds are excluded here,
        // and the write re-checks both, so a unit taken in between makes the run re-plan.
        let reader = PostgresInventoryReader(database: database)
        let index = try await reader.buildIndex(now: now)
        var excluded = try await reader.heldUnits()
        var orders = try await PostgresOrderStore(database: database).pendingForBatch()
        var replans = 0
        for attempt in 1...maximumAttempts {
            let clock = ContinuousClock.now
            let plan = await optimiser.planOnOwnThread(orders: orders, index: index, excluded: excluded, now: now)
            let runID = UUID()
            // The last attempt is fenced: it re-plans inside its write with every centre locked, so
            // live holds that keep overtaking the run cannot starve it.
            let fence: BatchFence? = attempt < maximumAttempts ? nil : { [optimiser, index, excluded] in
                BatchFence { orders, more in
                    let clock = ContinuousClock.now
                    let plan = await optimiser.planOnOwnThread(orders: orders, index: index, excluded: excluded.union(more), now: now)
                    return (plan, Self.milliseconds(since: clock))
                }
            }()
            let outcome = try await batches.record(
                plan: plan, orders: orders, runID: runID, runKey: runKey, operatorName: operatorName, startedAt: startedAt,
                solveMilliseconds: Self.milliseconds(since: clock), holdUntil: now.addingTimeInterval(holdHours * 3600), fence: fence)
            switch outcome {
            case .recorded(_, let plan, let ms):
                if fence != nil {
                    logger.notice("batch recorded under the fence", metadata: ["attempt": "\(attempt)", "units": "\(plan.allocations.count)"])
                }
                return BatchRunResult(runID: runID, plan: plan, isNew: true, solveMilliseconds: ms, replans: replans)
            case .alreadyRun:
                guard let existing = try await batches.find(keyOrID: runKey) else { throw BatchContentionError(attempts: attempt) }
                return BatchRunResult(runID: existing.runID, plan: existing.plan, isNew: false,
                                      solveMilliseconds: existing.solveMilliseconds, replans: replans)
            case .unitsTaken(let units):
                logger.notice("units held, issued or no longer in stock since planning; planning again without them",
                              metadata: ["units": "\(units.count)", "attempt": "\(attempt)"])
                // Live matches keep holding units while the batch plans: exclude every hold made since
                // the last read, not only the units that clashed, or each attempt clashes again.
                excluded.formUnion(units)
                excluded.formUnion(try await reader.heldUnits())
            case .ordersChanged(let ids):
                logger.notice("orders changed since planning; planning again without them",
                              metadata: ["orders": "\(ids.count)", "attempt": "\(attempt)"])
                orders.removeAll { ids.contains($0.orderID) }
            }
            replans += 1
        }
        throw BatchContentionError(attempts: maximumAttempts)
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Int {
        let elapsed = ContinuousClock.now - start
        return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }
}
