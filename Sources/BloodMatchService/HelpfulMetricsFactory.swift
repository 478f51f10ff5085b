import CoreMetrics
import Foundation
import Prometheus

/// A swift-metrics factory over a Prometheus registry that gives every metric its `# HELP` line.
///
/// swift-prometheus's own `PrometheusMetricsFactory` registers every metric with an empty help
/// text, and its registry refuses (fatally) a second registration of a name with another help
/// text, so help cannot be added afterwards: this factory registers each metric once, through the
/// registry's public API, with the text from `MetricHelp`. Same mapping as the library's factory:
/// counters are counters, timers duration histograms, aggregating recorders value histograms,
/// other recorders and meters gauges.
public struct HelpfulMetricsFactory: MetricsFactory {
    /// The registry the metrics live in.
    public let registry: PrometheusCollectorRegistry
    /// Buckets of every timer.
    public var durationBuckets: [Duration]
    /// Buckets of every aggregating recorder.
    public var valueBuckets: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    /// A factory on `registry`.
    public init(registry: PrometheusCollectorRegistry, durationBuckets: [Duration]) {
        self.registry = registry
        self.durationBuckets = durationBuckets
    }

    /// The metric's name as is (no unit suffix added) with its help text.
    private func name(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricHelp.text[label] ?? "")
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: name(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: name(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: name(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: name(label), labels: dimensions, buckets: valueBuckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: name(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: name(label), labels: dimensions, buckets: durationBuckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}

/// What each BloodMatch metric measures: the `# HELP` text of `/metrics` and of the job textfiles.
public enum MetricHelp {
    /// Help text by metric name.
    public static let text: [String: String] = [
        // HTTP API
        "bloodmatch_http_requests_total": "HTTP requests answered, by route template, method and status.",
        "bloodmatch_http_request_duration_seconds": "Time from a request's arrival to its answer, by route template.",
        "bloodmatch_matches_total": "Match decisions answered through the API, by outcome (fulfilled, partial, late, none_compatible_available, unable_to_verify).",
        "bloodmatch_match_duration_seconds": "Time to answer one match request through the API, recording included.",
        "bloodmatch_unable_to_verify_total": "Answers that were 'unable to verify - manual review required', by route.",
        // Database
        "bloodmatch_database_up": "1 when the last health read of PostgreSQL succeeded within its deadline, 0 when it did not.",
        "bloodmatch_clock_skew_seconds": "The database's clock minus this host's, seconds; answers fail safe beyond the configured limit.",
        "bloodmatch_db_operations_in_flight": "Database operations holding or waiting for a pool connection.",
        "bloodmatch_db_operations_waiting": "Database operations beyond the pool's size, waiting for a connection.",
        "bloodmatch_db_pool_max_connections": "Connections the database pool may open.",
        "bloodmatch_db_operation_duration_seconds": "Time of each database operation, by operation name.",
        "bloodmatch_db_errors_total": "Failed database operations, by operation and kind (unavailable: connection lost or refused; refused: the server rejected the statement).",
        // Index
        "bloodmatch_index_age_seconds": "Seconds since the index in use was built.",
        "bloodmatch_index_units": "Units in the index in use.",
        "bloodmatch_index_behind_seconds": "How far the index in use is behind the newest snapshot loaded, seconds (0 when current).",
        "bloodmatch_index_build_duration_seconds": "Time of the last index rebuild, seconds.",
        "bloodmatch_index_rebuilds_total": "Index rebuilds by this process.",
        // Centres and imports
        "bloodmatch_centre_data_age_seconds": "Age of each centre's snapshot in force, seconds.",
        "bloodmatch_centre_expected_interval_seconds": "Each centre's expected feed interval, seconds: older data is stale.",
        "bloodmatch_centre_last_load_timestamp_seconds": "When each centre's snapshot in force was loaded, Unix time.",
        "bloodmatch_centre_failed_imports_last_hour": "Each centre's imports refused or failed, feeds not fetched included, in the last hour (centre=\"unknown\": runs whose centre is not known).",
        "bloodmatch_centre_last_import_rows": "Rows of each centre's last import, by result (accepted, rejected).",
        "bloodmatch_stale_centres": "Distribution centres whose data is older than their expected feed interval.",
        "bloodmatch_centres_without_data": "Distribution centres that have never delivered a snapshot: their stock is unknown.",
        // Holds
        "bloodmatch_reservations_active_units": "Units under an active hold.",
        "bloodmatch_reservation_units_expired_last_hour": "Held units whose hold expired unissued in the last hour.",
        // Audit
        "bloodmatch_audit_chain_length": "Events in the tamper-evident chain (its head's position).",
        "bloodmatch_audit_unsealed_events": "Committed events not yet chained.",
        "bloodmatch_audit_oldest_unsealed_seconds": "Age of the oldest committed event not yet chained, seconds.",
        "bloodmatch_audit_segments_ahead": "Event-log segments made ahead and not yet used; events cannot be written once none is left.",
        "bloodmatch_audit_segments_closed": "Event-log segments wholly chained and still in the database.",
        "bloodmatch_audit_checkpoint_age_seconds": "Seconds since the last audit checkpoint.",
        "bloodmatch_audit_last_verification_ok": "1 when the last 'audit verify' found the chain and records intact, 0 when it did not.",
        "bloodmatch_audit_last_verification_timestamp_seconds": "When 'audit verify' last ran, Unix time.",
        // Batch
        "bloodmatch_batch_last_run_timestamp_seconds": "When the last batch run finished, Unix time.",
        "bloodmatch_batch_run_duration_seconds": "Time of the last batch run, seconds.",
        "bloodmatch_batch_solve_duration_seconds": "Time the last batch run spent in the optimiser, seconds.",
        "bloodmatch_batch_allocated_units": "Units allocated by the last batch run.",
        "bloodmatch_batch_shipments": "Shipments planned by the last batch run.",
        "bloodmatch_batch_orders": "Orders of the last batch run, by status.",
        "bloodmatch_batch_orders_short": "Orders the last batch run left short, by urgency.",
    ]
}
