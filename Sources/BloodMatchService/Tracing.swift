import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Distributed-tracing settings, read once at the edge (`bloodmatch` reads the environment).
///
/// W3C trace context is always accepted and propagated: every request gets a trace id (the
/// caller's when it sent a valid `traceparent`) that is stored on the rows the request writes and
/// printed on its log lines. Spans are exported over OTLP/HTTP only when an endpoint is set;
/// otherwise they are never recorded (a dropped span costs an id and no export work).
public struct TracingSettings: Sendable, Equatable {
    /// `service.name` of the exported spans.
    public var serviceName: String = "bloodmatch"
    /// OTLP/HTTP base endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, spans go to `/v1/traces` under
    /// it), or nil.
    public var otlpEndpoint: String?
    /// OTLP/HTTP traces endpoint used as given (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or nil.
    public var otlpTracesEndpoint: String?

    /// Creates settings; with no endpoint nothing is exported.
    public init(serviceName: String = "bloodmatch", otlpEndpoint: String? = nil, otlpTracesEndpoint: String? = nil) {
        self.serviceName = serviceName
        self.otlpEndpoint = otlpEndpoint
        self.otlpTracesEndpoint = otlpTracesEndpoint
    }

    /// The settings an environment gives (empty values count as unset).
    public init(environment: [String: String]) {
        func value(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        self.init(serviceName: value("OTEL_SERVICE_NAME") ?? "bloodmatch",
                  otlpEndpoint: value("OTEL_EXPORTER_OTLP_ENDPOINT"),
                  otlpTracesEndpoint: value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    }

    /// Whether spans are exported.
    public var exports: Bool { otlpEndpoint != nil || otlpTracesEndpoint != nil }
}

/// The process-wide tracer (swift-otel behind swift-distributed-tracing).
public enum TracingSystem {
    /// Bootstraps `InstrumentationSystem` with an OTel tracer for `settings` and returns the
    /// service that exports finished spans (run it beside the application; it flushes on graceful
    /// shutdown). Call once per process, before the first span.
    ///
    /// Not exporting: spans are sampled out (ratio 0), so each gets fresh W3C ids that propagate
    /// but is never recorded, and no exporter runs. Exporting: OTLP/HTTP protobuf, parent-based
    /// sampling (a caller's "not sampled" flag is honoured), batches every 5 s.
    public static func bootstrap(_ settings: TracingSettings, logger: Logger) throws -> any Service {
        var config = OTel.Configuration.default
        config.serviceName = settings.serviceName
        config.diagnosticLogger = .custom(logger)
        config.diagnosticLogLevel = .warning
        config.propagators = [.traceContext]
        config.logs.enabled = false
        config.metrics.enabled = false
        if settings.exports {
            config.traces.exporter = .otlp
            config.traces.otlpExporter.protocol = .httpProtobuf
            if let traces = settings.otlpTracesEndpoint {
                config.traces.otlpExporter.endpoint = traces
            } else if let base = settings.otlpEndpoint {
                config.traces.otlpExporter.endpoint = base.hasSuffix("/") ? base + "v1/traces" : base + "/v1/traces"
            }
            config.traces.sampler = .parentBasedAlwaysOn
        } else {
            config.traces.exporter = .none
            // Not a constant "off" sampler: that one skips id generation, and every request needs a
            // trace id for its rows and log lines.
            config.traces.sampler = .traceIDRatio(ratio: 0)!
        }
        let (tracer, service) = try OTel.makeTracingBackend(configuration: config)
        InstrumentationSystem.bootstrap(tracer)
        return service
    }

    /// Log metadata for the current span: `trace_id`, `span_id`, `trace_flags` (for
    /// `LoggingSystem.bootstrap(_:metadataProvider:)`).
    public static var loggingMetadataProvider: Logger.MetadataProvider {
        OTel.makeLoggingMetadataProvider()
    }
}

/// The W3C trace-context headers of one request or span, parsed with the bounds the API allows.
public struct TraceHeaders: Sendable, Equatable {
    /// `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
    public var traceparent: String?
    /// `tracestate`, passed through (at most 512 bytes, otherwise dropped).
    public var tracestate: String?

    /// Creates headers.
    public init(traceparent: String? = nil, tracestate: String? = nil) {
        self.traceparent = traceparent
        self.tracestate = tracestate
    }

    /// The headers a request sent, keeping only a well-formed `traceparent` (and its `tracestate`):
    /// a malformed one is ignored, so the request starts a new trace and is never refused for it.
    public static func received(traceparent: String?, tracestate: String?) -> TraceHeaders {
        guard let traceparent, isValid(traceparent) else { return TraceHeaders() }
        let state = tracestate.flatMap { $0.utf8.count <= 512 ? $0 : nil }
        return TraceHeaders(traceparent: traceparent, tracestate: state)
    }

    /// Whether `value` is a version-00 `traceparent`: lower-case hex, non-zero ids (W3C Trace
    /// Context §3.2).
    public static func isValid(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count == 55, bytes[2] == 0x2D, bytes[35] == 0x2D, bytes[52] == 0x2D else { return false }
        func hex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        func zero(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == 0x30 } }
        guard hex(0..<2), hex(3..<35), hex(36..<52), hex(53..<55) else { return false }
        guard bytes[0] == 0x30, bytes[1] == 0x30 else { return false }
        return !zero(3..<35) && !zero(36..<52)
    }

    /// The trace id (32 lowercase hex digits), if there is a `traceparent`.
    public var traceID: String? {
        guard let traceparent, traceparent.utf8.count == 55 else { return nil }
        return String(traceparent.dropFirst(3).prefix(32))
    }

    /// The span id (16 hex digits), if there is a `traceparent`.
    public var spanID: String? {
        guard let traceparent, traceparent.utf8.count == 55 else { return nil }
        return String(traceparent.dropFirst(36).prefix(16))
    }

    /// The headers that carry `context`'s span to a callee (empty when no tracer made ids).
    public static func of(_ context: InstrumentationContext) -> TraceHeaders {
        var headers = TraceHeaders()
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HeaderInjector())
        return headers
    }

    /// `context` with the span these headers name as its remote parent.
    public func extract(into context: inout InstrumentationContext) {
        guard traceparent != nil else { return }
        InstrumentationSystem.instrument.extract(self, into: &context, using: HeaderExtractor())
    }

    struct HeaderInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout TraceHeaders) {
            switch key.lowercased() {
            case "traceparent": carrier.traceparent = value
            case "tracestate": carrier.tracestate = value.isEmpty ? nil : value
            default: break
            }
        }
    }

    struct HeaderExtractor: Extractor {
        func extract(key: String, from carrier: TraceHeaders) -> String? {
            switch key.lowercased() {
            case "traceparent": carrier.traceparent
            case "tracestate": carrier.tracestate
            default: nil
            }
        }
    }
}
