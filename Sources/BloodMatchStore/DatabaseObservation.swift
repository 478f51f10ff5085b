import CoreMetrics
import Foundation
import Synchronization
import Tracing

/// Pool usage, errors and spans around the store's database calls.
///
/// PostgresNIO 1.33 keeps its pool observability delegate internal, so usage is measured here,
/// around each instrumented call: `bloodmatch_db_operations_in_flight` counts calls holding or
/// waiting for a connection (against `bloodmatch_db_pool_max_connections`), `…_waiting` those
/// beyond the pool's size, `bloodmatch_db_operation_duration_seconds{operation}` times each, and
/// `bloodmatch_db_errors_total{operation,kind}` counts failures (`unavailable`: connection lost,
/// refused or over the deadline; `query`: the server refused the statement).
///
/// Each call is also a client span `db <operation>` under whatever span is current (an HTTP
/// request, a match), so a slow answer can be followed to the statement that made it slow.
public final class DatabaseObserver: Sendable {
    private let factory: any MetricsFactory
    private let inFlight = Atomic<Int>(0)
    private let maximumConnections: Int
    private let inFlightGauge: CoreMetrics.Gauge
    private let waitingGauge: CoreMetrics.Gauge

    /// Records through `factory` (the process-wide `MetricsSystem` when nil); the pool gauges carry
    /// `pool` (a service has one pool for writes, `main`, and one for lookups, `lookup`).
    public init(maximumConnections: Int, factory: (any MetricsFactory)? = nil, pool: String = "main") {
        let factory = factory ?? MetricsSystem.factory
        self.factory = factory
        self.maximumConnections = maximumConnections
        inFlightGauge = Gauge(label: "bloodmatch_db_operations_in_flight", dimensions: [("pool", pool)], factory: factory)
        waitingGauge = Gauge(label: "bloodmatch_db_operations_waiting", dimensions: [("pool", pool)], factory: factory)
        inFlightGauge.record(0)
        waitingGauge.record(0)
        Gauge(label: "bloodmatch_db_pool_max_connections", dimensions: [("pool", pool)], factory: factory).record(Double(maximumConnections))
    }

    /// Runs `body` as the database operation `operation` (a short static name such as
    /// `decision.record`), measured and traced.
    public func observe<T>(
        _ operation: String, isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        let now = inFlight.add(1, ordering: .relaxed).newValue
        publish(now)
        let started = ContinuousClock.now
        defer {
            let after = inFlight.subtract(1, ordering: .relaxed).newValue
            publish(after)
            let elapsed = ContinuousClock.now - started
            CoreMetrics.Timer(label: "bloodmatch_db_operation_duration_seconds", dimensions: [("operation", operation)], factory: factory)
                .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        do {
            // withSpan records the error on the span and ends it.
            return try await withSpan("db \(operation)", ofKind: .client, isolation: isolation) { span in
                if span.isRecording {
                    span.attributes["db.system.name"] = "postgresql"
                    span.attributes["db.operation.name"] = operation
                }
                return try await body()
            }
        } catch {
            let kind = isConnectionFailure(error) ? "unavailable" : "query"
            Counter(label: "bloodmatch_db_errors_total", dimensions: [("operation", operation), ("kind", kind)], factory: factory).increment()
            throw error
        }
    }

    /// Calls in flight now (for tests and the readiness page).
    public var operationsInFlight: Int { inFlight.load(ordering: .relaxed) }

    private func publish(_ count: Int) {
        inFlightGauge.record(Double(count))
        waitingGauge.record(Double(max(0, count - maximumConnections)))
    }
}
