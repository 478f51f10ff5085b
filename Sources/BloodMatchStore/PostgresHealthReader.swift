import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// The latest batch allocation run, for metrics (`bloodmatch_batch_*`) and alerts.
public struct BatchRunSummary: Sendable, Hashable {
    /// When it finished, seconds since 1970.
    public var finishedAt: Double
    /// From start to the recorded write, seconds.
    public var durationSeconds: Double
    /// Building candidates and optimising, seconds.
    public var solveSeconds: Double
    /// Units allocated.
    public var allocatedUnits: Int
    /// Shipments planned.
    public var shipments: Int
    /// Orders by outcome (`allocated`, `partially_allocated`, `unfillable`), every status present.
    public var ordersByStatus: [String: Int]
    /// Orders not fully allocated, by urgency (`emergency`, `urgent`, `routine`), every urgency present.
    public var shortByUrgency: [String: Int]

    /// Creates a summary.
    public init(finishedAt: Double, durationSeconds: Double, solveSeconds: Double, allocatedUnits: Int, shipments: Int,
                ordersByStatus: [String: Int], shortByUrgency: [String: Int]) {
        self.finishedAt = finishedAt
        self.durationSeconds = durationSeconds
        self.solveSeconds = solveSeconds
        self.allocatedUnits = allocatedUnits
        self.shipments = shipments
        self.ordersByStatus = Dictionary(uniqueKeysWithValues: BatchOrderStatus.allCases.map { ($0.rawValue, ordersByStatus[$0.rawValue] ?? 0) })
        self.shortByUrgency = Dictionary(uniqueKeysWithValues: Urgency.allCases.map { ($0.rawValue, shortByUrgency[$0.rawValue] ?? 0) })
    }

    /// The summary of a plan just recorded.
    public init(plan: BatchPlan, finishedAt: Date, durationSeconds: Double, solveMilliseconds: Int) {
        var statuses: [String: Int] = [:]
        var short: [String: Int] = [:]
        for outcome in plan.outcomes {
            statuses[outcome.status.rawValue, default: 0] += 1
            if outcome.status != .allocated { short[outcome.urgency.rawValue, default: 0] += 1 }
        }
        self.init(finishedAt: finishedAt.timeIntervalSince1970, durationSeconds: durationSeconds, solveSeconds: Double(solveMilliseconds) / 1000,
                  allocatedUnits: plan.allocations.count, shipments: plan.shipments.count, ordersByStatus: statuses, shortByUrgency: short)
    }
}

/// The domain's health as the database sees it, for metrics and alerts: what the on-call engineer
/// needs to know is affected (which centre, since when), not only that something failed.
public struct DomainHealth: Sendable {
    /// One distribution centre's feed.
    public struct Centre: Sendable, Hashable {
        /// Centre id.
        public var centreID: String
        /// Age of the snapshot in force (database clock minus its as-of), seconds.
        public var dataAgeSeconds: Double
        /// The centre's expected feed interval, seconds.
        public var expectedIntervalSeconds: Double
        /// Older than its expected interval.
        public var isStale: Bool { dataAgeSeconds > expectedIntervalSeconds }
        /// When a snapshot last loaded (database clock), seconds since 1970.
        public var lastLoadedAt: Double
        /// Rows accepted and rejected by the centre's latest import run.
        public var lastRunAccepted: Int
        /// Rows rejected by the latest run.
        public var lastRunRejected: Int
        /// Outcome of the latest run (`loaded`, `refused`, …).
        public var lastRunOutcome: String
        /// Failed or refused runs in the last hour.
        public var failedRunsLastHour: Int
    }

    /// The database's clock when read, seconds since 1970.
    public var databaseTime: Double
    /// Centres with a snapshot in force.
    public var centres: [Centre]
    /// Distribution centres with no snapshot in force at all.
    public var centresWithoutData: [String]
    /// Units in active holds.
    public var activeHeldUnits: Int
    /// Units whose holds expired in the last hour.
    public var expiredHeldUnitsLastHour: Int
    /// Head of the audit chain.
    public var auditHeadChainSeq: Int64
    /// When the last audit checkpoint was exported (seconds since 1970), if ever.
    public var lastCheckpointAt: Double?
    /// Result of the last recorded verification: true intact, false broken, nil never run.
    public var lastVerificationIntact: Bool?
    /// When it ran.
    public var lastVerificationAt: Double?
    /// The newest snapshot's load time (for "index older than the newest snapshot").
    public var newestSnapshotLoadedAt: Double?
    /// The latest batch allocation run, if any.
    public var latestBatch: BatchRunSummary?
    /// Committed events the sealer has not yet chained.
    public var auditUnsealedEvents: Int = 0
    /// Age of the oldest of them, seconds (0 when none).
    public var auditOldestUnsealedSeconds: Double = 0
    /// Event-log segments made and wholly unused beyond the number in use (an insert finds no
    /// segment once none is left).
    public var auditSegmentsAhead: Int = 0
    /// Segments every event of which is chained, still in the database.
    public var auditSegmentsClosed: Int = 0

    /// Failed or refused runs in the last hour of each distribution centre with no snapshot in
    /// force, and under `unknownCentre` those whose centre is not known (a feed that failed before
    /// its control record arrived, a control record that could not be read). Holds every such
    /// centre and `unknownCentre` even at 0, so a gauge published from it goes back to 0.
    public var failedRunsLastHourWithoutSnapshot: [String: Int] = [:]
    /// The key of runs without a known centre in `failedRunsLastHourWithoutSnapshot`.
    public static let unknownCentre = "unknown"

    /// Centres whose data is older than their expected interval.
    public var staleCentres: [Centre] { centres.filter(\.isStale) }
}

/// Reads `DomainHealth` in one read-only transaction.
public struct PostgresHealthReader: Sendable {
    /// The pool (application role).
    public let database: Database

    /// Creates the reader.
    public init(database: Database) { self.database = database }

    /// The outcomes a failed-import count counts: refused, failed or replayed snapshots, and feeds
    /// that could not be fetched.
    static let failedOutcomes = "('refused', 'failed', 'replay_refused', 'fetch_failed')"

    /// Reads the current health.
    public func read() async throws -> DomainHealth {
        try await database.observe("health.read") {
            let logger = database.logger
            return try await database.client.withConnection { conn in
                try await database.transaction(on: conn, readOnlySnapshot: true) { conn in
                    var now = 0.0
                    for try await (t,) in try await conn.query("SELECT extract(epoch FROM now())::float8", logger: logger).decode((Double,).self) { now = t }
                    var centres: [DomainHealth.Centre] = []
                    for try await r in try await conn.query("""
                        SELECT s.centre, extract(epoch FROM now() - s.last_as_of)::float8, extract(epoch FROM t.expected_feed_interval)::float8,
                               extract(epoch FROM s.last_import_at)::float8,
                               coalesce(l.rows_accepted, 0), coalesce(l.rows_rejected, 0), coalesce(l.outcome, 'none'),
                               (SELECT count(*)::int FROM import_runs f WHERE f.centre = s.centre AND f.outcome IN \(unescaped: Self.failedOutcomes)
                                  AND f.finished_at > now() - interval '1 hour')
                        FROM centre_status s JOIN sites t ON t.site_id = s.centre
                        LEFT JOIN LATERAL (SELECT rows_accepted, rows_rejected, outcome FROM import_runs r
                                           WHERE r.centre = s.centre ORDER BY run_id DESC LIMIT 1) l ON true
                        ORDER BY s.centre
                        """, logger: logger).decode((String, Double, Double, Double, Int, Int, String, Int).self) {
                        centres.append(.init(centreID: r.0, dataAgeSeconds: r.1, expectedIntervalSeconds: r.2, lastLoadedAt: r.3,
                                             lastRunAccepted: r.4, lastRunRejected: r.5, lastRunOutcome: r.6, failedRunsLastHour: r.7))
                    }
                    var without: [String] = []
                    for try await (id,) in try await conn.query("""
                        SELECT site_id FROM sites WHERE kind = 'distribution_centre'
                          AND site_id NOT IN (SELECT centre FROM centre_status) ORDER BY site_id
                        """, logger: logger).decode((String,).self) { without.append(id) }
                    // Failed runs of centres with no snapshot in force, and of runs whose centre is not
                    // known (a feed that failed before its control record arrived) under "unknown".
                    var failedElsewhere: [String: Int] = [DomainHealth.unknownCentre: 0]
                    for id in without { failedElsewhere[id] = 0 }
                    for try await (id, n) in try await conn.query("""
                        SELECT f.centre, count(*)::int FROM import_runs f
                        WHERE f.centre = ANY(\(without)) AND f.outcome IN \(unescaped: Self.failedOutcomes)
                          AND f.finished_at > now() - interval '1 hour'
                        GROUP BY f.centre
                        UNION ALL
                        SELECT \(DomainHealth.unknownCentre), count(*)::int FROM import_runs f
                        WHERE f.centre IS NULL AND f.outcome IN \(unescaped: Self.failedOutcomes)
                          AND f.finished_at > now() - interval '1 hour'
                        """, logger: logger).decode((String, Int).self) { failedElsewhere[id] = n }
                    var held = 0, expired = 0
                    for try await (h, e) in try await conn.query("""
                        SELECT count(*) FILTER (WHERE state = 'active')::int,
                               count(*) FILTER (WHERE state = 'expired' AND state_changed_at > now() - interval '1 hour')::int
                        FROM reservation_units
                        """, logger: logger).decode((Int, Int).self) { (held, expired) = (h, e) }
                    var head: Int64 = 0
                    var next: Int64 = 1
                    for try await (seq, n) in try await conn.query("SELECT chain_seq, next_seq FROM audit_head", logger: logger)
                        .decode((Int64, Int64).self) { (head, next) = (seq, n) }
                    // What the sealer has still to chain: the rows from its place on, and the gaps it
                    // waits for, by primary key one row at a time (`OFFSET 0` keeps the subqueries from
                    // becoming joins that a table without statistics gets planned as whole scans).
                    var unsealed = (0, 0.0)
                    for try await (n, age) in try await conn.query("""
                        SELECT count(*)::int, coalesce(extract(epoch FROM clock_timestamp() - min(x.occurred_at)), 0)::float8
                        FROM (SELECT e.seq, e.occurred_at FROM event_log e WHERE e.seq >= \(next)
                              UNION ALL
                              SELECT e.seq, e.occurred_at FROM audit_gaps g
                                CROSS JOIN LATERAL (SELECT * FROM event_log e WHERE e.seq = g.seq OFFSET 0) e) x
                        WHERE NOT EXISTS (SELECT 1 FROM event_chain c WHERE c.seq = x.seq OFFSET 0)
                        """, logger: logger).decode((Int, Double).self) { unsealed = (n, age) }
                    var segments = (0, 0)
                    for try await (ahead, closed) in try await conn.query(
                        "SELECT ahead, closed FROM audit_segment_status()", logger: logger).decode((Int, Int).self) { segments = (ahead, closed) }
                    var checkpointAt: Double?
                    for try await (t,) in try await conn.query("""
                        SELECT extract(epoch FROM occurred_at)::float8 FROM event_log WHERE action = 'audit.checkpoint'
                        ORDER BY seq DESC LIMIT 1
                        """, logger: logger).decode((Double?,).self) { checkpointAt = t }
                    var verification: (Bool, Double)?
                    for try await (ok, t) in try await conn.query("""
                        SELECT (payload->>'intact')::boolean, extract(epoch FROM occurred_at)::float8 FROM event_log
                        WHERE action = 'audit.verified' ORDER BY seq DESC LIMIT 1
                        """, logger: logger).decode((Bool, Double).self) { verification = (ok, t) }
                    var newest: Double?
                    for try await (t,) in try await conn.query(
                        "SELECT extract(epoch FROM max(last_import_at))::float8 FROM centre_status", logger: logger).decode((Double?,).self) { newest = t }
                    var batch: BatchRunSummary?
                for try await r in try await conn.query("""
                    SELECT extract(epoch FROM r.finished_at)::float8, extract(epoch FROM r.finished_at - r.started_at)::float8,
                           r.solve_ms, r.units_allocated, r.shipments,
                           count(o.order_id) FILTER (WHERE o.status = 'allocated')::int,
                           count(o.order_id) FILTER (WHERE o.status = 'partially_allocated')::int,
                           count(o.order_id) FILTER (WHERE o.status = 'unfillable')::int,
                           count(o.order_id) FILTER (WHERE o.status <> 'allocated' AND d.urgency = 'emergency')::int,
                           count(o.order_id) FILTER (WHERE o.status <> 'allocated' AND d.urgency = 'urgent')::int,
                           count(o.order_id) FILTER (WHERE o.status <> 'allocated' AND d.urgency = 'routine')::int
                    FROM (SELECT * FROM batch_runs ORDER BY finished_at DESC LIMIT 1) r
                    LEFT JOIN batch_order_outcomes o ON o.run_id = r.run_id
                    LEFT JOIN orders d ON d.order_id = o.order_id
                    GROUP BY r.run_id, r.finished_at, r.started_at, r.solve_ms, r.units_allocated, r.shipments
                    """, logger: logger).decode((Double, Double, Int, Int, Int, Int, Int, Int, Int, Int, Int).self) {
                    batch = BatchRunSummary(
                        finishedAt: r.0, durationSeconds: r.1, solveSeconds: Double(r.2) / 1000, allocatedUnits: r.3, shipments: r.4,
                        ordersByStatus: ["allocated": r.5, "partially_allocated": r.6, "unfillable": r.7],
                        shortByUrgency: ["emergency": r.8, "urgent": r.9, "routine": r.10])
                }
                return DomainHealth(databaseTime: now, centres: centres, centresWithoutData: without, activeHeldUnits: held,
                                    expiredHeldUnitsLastHour: expired, auditHeadChainSeq: head, lastCheckpointAt: checkpointAt,
                                    lastVerificationIntact: verification?.0, lastVerificationAt: verification?.1,
                                    newestSnapshotLoadedAt: newest, latestBatch: batch, auditUnsealedEvents: unsealed.0,
                                    auditOldestUnsealedSeconds: unsealed.1, auditSegmentsAhead: segments.0,
                                    auditSegmentsClosed: segments.1, failedRunsLastHourWithoutSnapshot: failedElsewhere)
                }
            }
        }
    }
}
