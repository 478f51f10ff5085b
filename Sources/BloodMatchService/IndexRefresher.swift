import BloodMatchCore
import BloodMatchStore
import Foundation
import Logging
import PostgresNIO
import Tracing

/// Keeps a decision engine's index current: listens for `bloodmatch_snapshots` notifications
/// (sent by every import that swaps a snapshot) and rebuilds the index from the database, at most
/// once per `debounce`. If the connection drops it reconnects with backoff; meanwhile the engine
/// still checks each answer's index against the snapshots in force, so nothing stale is served.
public struct IndexRefresher: Sendable {
    /// The pool to listen on and rebuild from.
    public let database: Database
    /// The engine whose index is replaced.
    public let engine: DecisionEngine
    /// Quiet time after a notification before rebuilding (imports arrive in bursts).
    public var debounce: Duration = .milliseconds(500)
    /// Called after each rebuild with the new index (for logs and metrics).
    public var onRebuild: @Sendable (InventoryIndex, Duration) -> Void = { _, _ in }

    /// Creates a refresher.
    public init(database: Database, engine: DecisionEngine) {
        self.database = database
        self.engine = engine
    }

    /// Listens until cancelled.
    public func run() async {
        let logger = database.logger
        var backoff: Duration = .milliseconds(200)
        while !Task.isCancelled {
            do {
                try await database.client.withConnection { conn in
                    let notifications = try await conn.listen("bloodmatch_snapshots")
                    backoff = .milliseconds(200)
                    // Catch up on anything that landed while not listening: rebuilt only when the
                    // index no longer names the snapshots in force (a current preloaded index is
                    // kept, saving a full read of the stock at every start).
                    try await rebuild(onlyIfOutOfDate: true)
                    var pending = false
                    for try await notification in notifications {
                        logger.debug("snapshot swapped", metadata: ["payload": "\(notification.payload)"])
                        if pending { continue }
                        pending = true
                        try await Task.sleep(for: debounce)
                        try await rebuild()
                        pending = false
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning("index refresher lost its connection; retrying", metadata: ["error": "\(serverMessage(error))"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(10))
            }
        }
    }

    private func rebuild(onlyIfOutOfDate: Bool = false) async throws {
        // A root span: a rebuild answers a notification, not a request.
        try await withSpan("index.refresh", context: .topLevel) { _ in
            let started = ContinuousClock.now
            let index: InventoryIndex
            if onlyIfOutOfDate {
                let (current, rebuilt) = try await engine.indexCheckedAgainstSnapshots(now: Date())
                guard rebuilt else { return }
                index = current
            } else {
                index = try await PostgresInventoryReader(database: database).buildIndex(now: Date())
                await engine.install(index)
            }
            let elapsed = ContinuousClock.now - started
            onRebuild(index, elapsed)
            database.logger.info("index rebuilt", metadata: [
                "index_version": "\(index.version)", "units": "\(index.unitCount)",
                "duration_ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)"])
        }
    }
}
