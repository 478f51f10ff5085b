import BloodMatchStore
import Logging

/// Seals committed events into the audit chain every `interval` while the service runs. Every
/// instance runs one; the database lets one pass in at a time (the others return at once), so the
/// chain has one writer and no instance is special.
public struct AuditSealer: Sendable {
    /// The pool.
    public let database: Database
    /// Time between passes: with it, an event waits at most about this long to be chained.
    public var interval: Duration
    /// Called after each pass that sealed something (for metrics).
    public var onSeal: @Sendable (Int) -> Void = { _ in }

    /// Creates a sealer.
    public init(database: Database, interval: Duration = .milliseconds(250)) {
        self.database = database
        self.interval = interval
    }

    /// Seals until cancelled; database errors are logged and retried with backoff (events wait,
    /// nothing is lost: they are committed already).
    public func run() async {
        let log = PostgresAuditLog(database: database)
        var pause = interval
        while !Task.isCancelled {
            do {
                let (sealed, _) = try await AuditContext.$requestID.withValue(nil) { try await log.seal() }
                if sealed > 0 { onSeal(sealed) }
                pause = interval
            } catch {
                database.logger.warning("audit sealing failed; retrying", metadata: ["error": "\(String(describing: error).prefix(300))"])
                pause = min(pause * 2, .seconds(5))
            }
            try? await Task.sleep(for: pause)
        }
    }
}
