import Foundation
import Metrics
import Prometheus

/// The service's metrics, all made from one factory so tests can read them from their own
/// registry. Production bootstraps the process-wide `MetricsSystem` with the same registry
/// (`ServiceMetrics.bootstrapPrometheus()`), so metrics added elsewhere through swift-metrics land
/// on the same `/metrics` page.
public struct ServiceMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    let factory: HelpfulMetricsFactory

    /// Buckets of every duration histogram, 1 ms to 10 s.
    public static let durationBuckets: [Duration] = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                              .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                                              .milliseconds(2500), .seconds(5), .seconds(10)]

    /// Metrics on `registry`, each with its `# HELP` text (`MetricHelp`).
    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.factory = HelpfulMetricsFactory(registry: registry, durationBuckets: Self.durationBuckets)
    }

    /// The one process-wide bootstrap: a Prometheus registry behind swift-metrics. Call once, at
    /// start-up of `serve`, before anything records a metric.
    public static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(HelpfulMetricsFactory(registry: registry, durationBuckets: durationBuckets))
        return registry
    }

    /// One finished HTTP request.
    func request(route: String, method: String, status: Int, duration: Duration) {
        Counter(label: "bloodmatch_http_requests_total",
                dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory).increment()
        Metrics.Timer(label: "bloodmatch_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    /// One match decision.
    func match(outcome: String, duration: Duration) {
        Counter(label: "bloodmatch_matches_total", dimensions: [("outcome", outcome)], factory: factory).increment()
        Metrics.Timer(label: "bloodmatch_match_duration_seconds", dimensions: [], factory: factory)
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    /// One fail-safe answer, by the data affected.
    func unableToVerify(route: String) {
        Counter(label: "bloodmatch_unable_to_verify_total", dimensions: [("route", route)], factory: factory).increment()
    }

    /// The `/metrics` page.
    public func render() -> [UInt8] { registry.emitToBuffer() }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}
