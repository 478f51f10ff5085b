import BloodMatchCore
import Crypto
import Foundation
import PostgresNIO

/// What happened when a batch plan was written.
public enum BatchRecordOutcome: Sendable, Hashable {
    /// Written: runs, shipments, allocations, reservations, order statuses and events. The plan
    /// and solve time are those written (made again under a fence when units were taken).
    case recorded(runID: UUID, plan: BatchPlan, solveMilliseconds: Int)
    /// A run with this key already exists; nothing was written.
    case alreadyRun(runID: UUID)
    /// Some units were taken (reserved or issued) since planning; nothing was written.
    case unitsTaken(Set<UnitKey>)
    /// Some orders are no longer pending (cancelled or decided by another run); nothing was written.
    case ordersChanged(Set<String>)
}

/// Another batch run is writing right now.
public struct BatchBusyError: Error, Sendable, CustomStringConvertible {
    /// Creates the error.
    public init() {}
    /// Text for people and logs.
    public var description: String { "another batch run is being recorded; try again when it has finished" }
}

/// How the last attempt of a run plans again inside its write (see `PostgresBatchStore.record`).
public struct BatchFence: Sendable {
    /// Makes the plan for these orders without these units (besides those the caller already
    /// excluded); returns it with its solve time in milliseconds.
    public var replan: @Sendable (_ orders: [BatchOrder], _ excluded: Set<UnitKey>) async -> (BatchPlan, Int)
    /// Plans made under the fence before giving up (only the clock can still change a unit there).
    public var maximumReplans: Int

    /// Creates a fence.
    public init(maximumReplans: Int = 4, replan: @escaping @Sendable (_ orders: [BatchOrder], _ excluded: Set<UnitKey>) async -> (BatchPlan, Int)) {
        self.replan = replan
        self.maximumReplans = maximumReplans
    }
}

/// A recorded run, as `batch show` reads it.
public struct StoredBatchRun: Sendable {
    /// Run id.
    public var runID: UUID
    /// The key it was run under.
    public var runKey: String
    /// Who ran it.
    public var operatorName: String
    /// When it finished.
    public var finishedAt: Date
    /// Milliseconds spent solving.
    public var solveMilliseconds: Int
    /// The plan.
    public var plan: BatchPlan
}

/// Batch runs in PostgreSQL: one transaction writes a whole run together with the reservations
/// (one per shipment, source `batch`) that hold its units, so live matches exclude them; a unit
/// taken meanwhile makes the write fail safe (nothing written) and the caller re-plans.
public struct PostgresBatchStore: Sendable {
    /// The pool, as `bloodmatch_app`.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// The run recorded under a key or id, if any.
    public func find(keyOrID: String) async throws -> StoredBatchRun? {
        let byID = UUID(uuidString: keyOrID) != nil
        var binds = PostgresBindings()
        binds.append(keyOrID)
        let sql = """
            SELECT run_id::text, run_key, operator, extract(epoch FROM finished_at)::float8, solve_ms, plan::text FROM batch_runs
            WHERE \(byID ? "run_id = $1::uuid OR run_key = $1" : "run_key = $1") LIMIT 1
            """
        return try await one(PostgresQuery(unsafeSQL: sql, binds: binds))
    }

    /// The most recent run.
    public func latest() async throws -> StoredBatchRun? {
        try await one(PostgresQuery(unsafeSQL: """
            SELECT run_id::text, run_key, operator, extract(epoch FROM finished_at)::float8, solve_ms, plan::text FROM batch_runs
            ORDER BY finished_at DESC LIMIT 1
            """))
    }

    private func one(_ query: PostgresQuery) async throws -> StoredBatchRun? {
        for try await (id, key, who, finished, ms, json) in try await database.client.query(query, logger: database.logger)
            .decode((String, String, String, Double, Int, String).self) {
            let plan = try Self.decoder().decode(BatchPlan.self, from: Data(json.utf8))
            return StoredBatchRun(runID: UUID(uuidString: id) ?? UUID(), runKey: key, operatorName: who,
                                  finishedAt: Date(timeIntervalSince1970: finished), solveMilliseconds: ms, plan: plan)
        }
        return nil
    }

    /// JSON with sorted keys and ISO 8601 dates: the stored form of plans.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The decoder matching `encoder()`.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Writes a run in one transaction, or nothing (see `BatchRecordOutcome`).
    ///
    /// With a `fence`, the write first takes every centre's lock exclusively (the lock each live
    /// hold and issue takes shared and each import takes exclusively), so no unit can be held,
    /// issued or re-imported until it commits; under it, the run re-reads every hold, and if a
    /// unit or order of the plan is no longer free it is planned again there (`fence.replan`)
    /// until the plan's units are all offered. A run that live traffic keeps overtaking is thus
    /// recorded on its last attempt, at the cost of live holds waiting for one solve.
    public func record(plan: BatchPlan, orders: [BatchOrder], runID: UUID, runKey: String, operatorName: String,
                       startedAt: Date, solveMilliseconds: Int, holdUntil: Date, fence: BatchFence? = nil) async throws -> BatchRecordOutcome {
        try await database.observe("batch.record") {
            let logger = database.logger
            let run = runID.uuidString.lowercased()
            let allUnits = plan.allocations.map(\.unit.key)
            do {
                return try await database.client.withTransaction(logger: logger) { conn -> BatchRecordOutcome in
                    var locked = false
                    for try await (ok,) in try await conn.query("SELECT pg_try_advisory_xact_lock(hashtext('bloodmatch.batch.record'))",
                                                                logger: logger).decode((Bool,).self) { locked = ok }
                    guard locked else { throw BatchBusyError() }
                    // Every event of the run carries the command's request id (else the run key).
                    _ = try await conn.query("SELECT set_config('bm.request_id', \(AuditContext.requestID ?? runKey), true)",
                                             logger: logger).collect()
                    for try await (existing,) in try await conn.query("SELECT run_id FROM batch_runs WHERE run_key = \(runKey)",
                                                                      logger: logger).decode((UUID,).self) {
                        return .alreadyRun(runID: existing)
                    }
                    var pending = Set<String>()
                    for try await (id,) in try await conn.query("""
                        SELECT order_id FROM orders WHERE order_id = ANY(\(orders.map(\.orderID))) AND status = 'pending' FOR UPDATE
                        """, logger: logger).decode((String,).self) { pending.insert(id) }
                    let changed = Set(orders.map(\.orderID)).subtracting(pending)
                    var plan = plan, orders = orders, solveMilliseconds = solveMilliseconds
                    if let fence {
                        orders.removeAll { changed.contains($0.orderID) }
                        var centres = Set<String>()
                        for try await (centre,) in try await conn.query("SELECT centre FROM centre_status", logger: logger)
                            .decode((String,).self) { centres.insert(centre) }
                        try await PostgresReservationStore.lockCentres(centres, exclusive: true, on: conn, logger: logger)
                        _ = try await PostgresReservationStore.expireOverdue(on: conn, units: nil, actor: operatorName, logger: logger)
                        var excluded = try await PostgresInventoryReader.heldUnits(on: conn, logger: logger)
                        var replan = !changed.isEmpty || plan.allocations.contains { excluded.contains($0.unit.key) }
                        var taken = Set<UnitKey>()
                        for _ in 0..<fence.maximumReplans {
                            if replan { (plan, solveMilliseconds) = await fence.replan(orders, excluded) }
                            taken = try await Self.taken(plan, on: conn, logger: logger)
                            if taken.isEmpty { break }
                            excluded.formUnion(taken)
                            replan = true
                        }
                        if !taken.isEmpty { return .unitsTaken(taken) }
                    } else {
                        if !changed.isEmpty { return .ordersChanged(changed) }
                        // Holds past their time are marked expired first (as live reservations do), so only
                        // live holds and issued units count as taken.
                        _ = try await PostgresReservationStore.expireOverdue(on: conn, units: allUnits, actor: operatorName, logger: logger)
                        // The index proposed; the snapshots in force decide. Under the centres' import locks, a
                        // unit no longer offered (held, issued, quarantined, removed, moved, expired, returned
                        // since) sends the plan back to be made again without it.
                        try await PostgresReservationStore.lockCentres(Set(plan.allocations.map(\.unit.centreID)), on: conn, logger: logger)
                        let taken = try await Self.taken(plan, on: conn, logger: logger)
                        if !taken.isEmpty { return .unitsTaken(taken) }
                    }
                    try await Self.write(plan: plan, orders: orders, run: run, runKey: runKey, operatorName: operatorName,
                                         startedAt: startedAt, solveMilliseconds: solveMilliseconds, holdUntil: holdUntil,
                                         on: conn, logger: logger)
                    return .recorded(runID: runID, plan: plan, solveMilliseconds: solveMilliseconds)
                }
            } catch let error as PostgresTransactionError where error.closureError is BatchBusyError {
                throw BatchBusyError()
            } catch where sqlState(error) == "23505" {
                // A unit was reserved by someone else between the check and the insert: nothing was written.
                var taken = Set<UnitKey>()
                for try await (din, code) in try await database.client.query("""
                    SELECT ru.din, ru.product_code FROM reservation_units ru
                      JOIN unnest(\(allUnits.map(\.din))::text[], \(allUnits.map(\.productCode))::text[]) AS w(din, product_code)
                        ON w.din = ru.din AND w.product_code = ru.product_code
                    WHERE ru.state IN ('active', 'issued')
                    """, logger: logger).decode((String, String).self) { taken.insert(UnitKey(din: din, productCode: code)) }
                if taken.isEmpty {
                    if let existing = try await find(keyOrID: runKey) { return .alreadyRun(runID: existing.runID) }
                    throw error
                }
                return .unitsTaken(taken)
            }
        }
    }

    /// SHA-256 of a shipment's sorted units (`DIN/PRODUCTCODE`): what the reservation holds.
    static func fingerprint(_ units: [UnitKey]) -> String {
        SHA256.hash(data: Data(units.sorted().map(\.description).joined(separator: ",").utf8)).lowercaseHex
    }
}
