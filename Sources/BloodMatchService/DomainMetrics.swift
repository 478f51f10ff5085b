import BloodMatchCore
import BloodMatchStore
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

extension ServiceMetrics {
    /// Publishes the domain's health: per-centre data age and import results, stale centres,
    /// holds, the audit chain's last verification and checkpoint, clock skew, the index's age.
    /// `health` nil means the database could not be read: `bloodmatch_database_up 0`.
    public func publish(_ health: DomainHealth?, clockSkew: Double?, index: InventoryIndex?, now: Date = Date()) {
        func gauge(_ label: String, _ value: Double, _ dimensions: [(String, String)] = []) {
            Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
        }
        gauge("bloodmatch_database_up", health == nil ? 0 : 1)
        if let skew = clockSkew { gauge("bloodmatch_clock_skew_seconds", skew) }
        if let index {
            gauge("bloodmatch_index_age_seconds", now.timeIntervalSince1970 - Double(index.builtAt))
            gauge("bloodmatch_index_units", Double(index.unitCount))
            if let newest = health?.newestSnapshotLoadedAt {
                gauge("bloodmatch_index_behind_seconds", max(0, newest - Double(index.builtAt)))
            }
        }
        guard let health else { return }
        for c in health.centres {
            let centre = [("centre", c.centreID)]
            gauge("bloodmatch_centre_data_age_seconds", c.dataAgeSeconds, centre)
            gauge("bloodmatch_centre_expected_interval_seconds", c.expectedIntervalSeconds, centre)
            gauge("bloodmatch_centre_last_load_timestamp_seconds", c.lastLoadedAt, centre)
            gauge("bloodmatch_centre_failed_imports_last_hour", Double(c.failedRunsLastHour), centre)
            gauge("bloodmatch_centre_last_import_rows", Double(c.lastRunAccepted), centre + [("result", "accepted")])
            gauge("bloodmatch_centre_last_import_rows", Double(c.lastRunRejected), centre + [("result", "rejected")])
        }
        // Centres without a snapshot in force, and failed runs whose centre is not known (a feed
        // that failed before its control record arrived) as centre="unknown".
        for (centre, failed) in health.failedRunsLastHourWithoutSnapshot.sorted(by: { $0.key < $1.key }) {
            gauge("bloodmatch_centre_failed_imports_last_hour", Double(failed), [("centre", centre)])
        }
        gauge("bloodmatch_stale_centres", Double(health.staleCentres.count))
        gauge("bloodmatch_centres_without_data", Double(health.centresWithoutData.count))
        gauge("bloodmatch_reservations_active_units", Double(health.activeHeldUnits))
        gauge("bloodmatch_reservation_units_expired_last_hour", Double(health.expiredHeldUnitsLastHour))
        gauge("bloodmatch_audit_chain_length", Double(health.auditHeadChainSeq))
        gauge("bloodmatch_audit_unsealed_events", Double(health.auditUnsealedEvents))
        gauge("bloodmatch_audit_oldest_unsealed_seconds", health.auditOldestUnsealedSeconds)
        gauge("bloodmatch_audit_segments_ahead", Double(health.auditSegmentsAhead))
        gauge("bloodmatch_audit_segments_closed", Double(health.auditSegmentsClosed))
        if let at = health.lastCheckpointAt { gauge("bloodmatch_audit_checkpoint_age_seconds", health.databaseTime - at) }
        if let ok = health.lastVerificationIntact { gauge("bloodmatch_audit_last_verification_ok", ok ? 1 : 0) }
        if let at = health.lastVerificationAt { gauge("bloodmatch_audit_last_verification_timestamp_seconds", at) }
        if let batch = health.latestBatch { publish(batch) }
    }

    /// Publishes the latest batch run: when it finished, how long it took, orders by outcome,
    /// orders left short by urgency, units and shipments.
    public func publish(_ batch: BatchRunSummary) {
        func gauge(_ label: String, _ value: Double, _ dimensions: [(String, String)] = []) {
            Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
        }
        gauge("bloodmatch_batch_last_run_timestamp_seconds", batch.finishedAt)
        gauge("bloodmatch_batch_run_duration_seconds", batch.durationSeconds)
        gauge("bloodmatch_batch_solve_duration_seconds", batch.solveSeconds)
        gauge("bloodmatch_batch_allocated_units", Double(batch.allocatedUnits))
        gauge("bloodmatch_batch_shipments", Double(batch.shipments))
        for (status, count) in batch.ordersByStatus.sorted(by: { $0.key < $1.key }) {
            gauge("bloodmatch_batch_orders", Double(count), [("status", status)])
        }
        for (urgency, count) in batch.shortByUrgency.sorted(by: { $0.key < $1.key }) {
            gauge("bloodmatch_batch_orders_short", Double(count), [("urgency", urgency)])
        }
    }

    /// One index rebuild by the refresher: its duration and size (the size is also published
    /// with the index's age on every collection).
    public func indexRebuilt(_ index: InventoryIndex, duration: Duration) {
        Gauge(label: "bloodmatch_index_build_duration_seconds", dimensions: [], factory: factory)
            .record(Double(Self.nanoseconds(duration)) / 1e9)
        Gauge(label: "bloodmatch_index_units", dimensions: [], factory: factory).record(Double(index.unitCount))
        Counter(label: "bloodmatch_index_rebuilds_total", dimensions: [], factory: factory).increment()
    }

    /// Reads the domain's health from the database (within `deadline`) and publishes it; a
    /// database that does not answer is published as down, and logged.
    public func collect(database: Database, engine: DecisionEngine?, deadline: Duration = .seconds(5), logger: Logger) async {
        let index = await engine?.currentIndex
        do {
            let (health, skew) = try await withDeadline(deadline) {
                (try await PostgresHealthReader(database: database).read(), try await database.clockSkew())
            }
            publish(health, clockSkew: skew, index: index)
            if !health.staleCentres.isEmpty {
                logger.warning("stale centres", metadata: [
                    "centres": "\(health.staleCentres.map(\.centreID).joined(separator: ","))",
                    "oldest_data_age_seconds": "\(Int(health.staleCentres.map(\.dataAgeSeconds).max() ?? 0))"])
            }
        } catch {
            publish(nil, clockSkew: nil, index: index)
            logger.error("database unavailable for health metrics", metadata: ["error": "\(DataGuard.describe(error))"])
        }
    }
}

/// Refreshes the domain metrics every `interval` while the service runs.
struct DomainMetricsService: Service {
    let metrics: ServiceMetrics
    let database: Database
    let engine: DecisionEngine
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await metrics.collect(database: database, engine: engine, logger: logger)
                try? await Task.sleep(for: interval)
            }
        }
    }
}

extension ServiceMetrics {
    /// A batch run's metrics as one Prometheus text page (`batch run --metrics-textfile`).
    public static func batchTextfile(_ batch: BatchRunSummary) -> [UInt8] {
        let metrics = ServiceMetrics(registry: PrometheusCollectorRegistry())
        metrics.publish(batch)
        return metrics.render()
    }

    /// The domain metrics as one Prometheus text page, for cron-only deployments (the node
    /// exporter's textfile collector): a fresh registry, one collection.
    public static func domainTextfile(database: Database, logger: Logger) async -> [UInt8] {
        let metrics = ServiceMetrics(registry: PrometheusCollectorRegistry())
        await metrics.collect(database: database, engine: nil, logger: logger)
        return metrics.render()
    }
}
