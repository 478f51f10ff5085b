import HTTPTypes
import Hummingbird
import Tracing

/// The outermost middleware: one server span per request, continuing the caller's W3C trace when
/// it sent a valid `traceparent` (a malformed one starts a new trace; the request is never refused
/// for it). The span's trace id goes into the request context, from where it reaches the access
/// record, the decision and reservation rows; the span's own `traceparent` is echoed in the
/// response so a hospital can quote it.
///
/// Hummingbird's `TracingMiddleware` is not used: it hands every request header to the
/// propagator, which logs the whole header set (Authorization included) when it cannot parse a
/// `traceparent`.
struct TraceMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    static let traceparentHeader = HTTPField.Name("traceparent")!
    static let tracestateHeader = HTTPField.Name("tracestate")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let received = TraceHeaders.received(traceparent: request.headers[Self.traceparentHeader],
                                             tracestate: request.headers[Self.tracestateHeader])
        var parent = InstrumentationContext.current ?? .topLevel
        received.extract(into: &parent)
        let route = APIRoute.template(for: request.uri.path) ?? "unmatched"
        return try await withSpan(request.method.rawValue + " " + route, context: parent, ofKind: .server) { span in
            let own = TraceHeaders.of(span.context)
            var context = context
            context.traceID = own.traceID
            var response = try await next(request, context)
            if span.isRecording {
                span.updateAttributes { attributes in
                    attributes["http.request.method"] = request.method.rawValue
                    attributes["http.route"] = route
                    attributes["http.response.status_code"] = Int(response.status.code)
                    if let requestID = response.headers[APIMiddleware.requestIDHeader] { attributes["bloodmatch.request_id"] = requestID }
                    if let outcome = response.headers[APIMiddleware.outcomeHeader] { attributes["bloodmatch.outcome"] = outcome }
                }
                if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
            }
            if let traceparent = own.traceparent { response.headers[Self.traceparentHeader] = traceparent }
            return response
        }
    }
}
