import HTTPTypes

/// The console's paths, for the gate and the records.
enum ConsoleRoute {
    /// Path templates served (records name these, never a concrete id).
    static let templates = [
        "/console", "/console/login", "/console/logout", "/console/health", "/console/assets/{file}", "/console/api/session", "/console/api/overview",
        "/console/api/match", "/console/api/reservations", "/console/api/reservations/{id}/release",
        "/console/api/reservations/{id}/issue", "/console/api/live", "/console/api/orders", "/console/api/wastage", "/console/api/trace",
    ]

    /// The template a path matches, or "unmatched".
    static func template(for path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for template in templates {
            let t = template.split(separator: "/", omittingEmptySubsequences: false)
            guard t.count == parts.count else { continue }
            if zip(t, parts).allSatisfy({ $0.hasPrefix("{") || $0 == $1 }) { return template }
        }
        return "unmatched"
    }

    /// Whether a request is answered without a session: the log-in page and form, the health
    /// probe, and the page's static files (scripts, styles, outlines: nothing of the service's data).
    static func isPublic(path: String, method: HTTPRequest.Method) -> Bool {
        if path == "/console/login" { return method == .get || method == .head || method == .post }
        if path == "/console/health" { return method == .get || method == .head }
        return path.hasPrefix("/console/assets/") && (method == .get || method == .head)
    }
}
