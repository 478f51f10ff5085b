import Foundation
import Logging
import PostgresNIO

/// The request a unit of work belongs to, for the event log: set once at the edge (a CLI
/// command, an HTTP request) and written to the transaction's `bm.request_id` setting, which the
/// event log's trigger copies onto every event that does not carry its own.
public enum AuditContext {
    /// The current request id.
    @TaskLocal public static var requestID: String?
}

extension Database {
    /// Leases a connection and runs `body` in a transaction on it (see `transaction(on:…)`).
    public func withTransaction<T: Sendable>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending T
    ) async throws -> sending T {
        try await client.withConnection { conn in
            try await self.transaction(on: conn) { try await body($0) }
        }
    }

    /// BEGIN, `body`, COMMIT on one connection; ROLLBACK when `body` throws. `readOnlySnapshot`
    /// makes it one read-only REPEATABLE READ snapshot.
    ///
    /// Used instead of PostgresNIO's `withTransaction`, which (in 1.33) sends ROLLBACK even when the
    /// server has closed the session, for example `pg_terminate_backend` during COPY: a statement
    /// written to a closed connection is never answered, and the caller hung with no backend left.
    /// Here ROLLBACK is skipped on a closed connection (the server rolled back when the session
    /// ended), BEGIN, COMMIT and ROLLBACK give up once the connection closes unanswered, and any
    /// failure on a closed connection is reported as `DatabaseUnavailableError` (exit code 5), unless
    /// `isExpectedRollback` says the error was the caller's own decision to roll back.
    public func transaction<T>(
        on conn: PostgresConnection, isolation: isolated (any Actor)? = #isolation,
        readOnlySnapshot: Bool = false,
        isExpectedRollback: (any Error) -> Bool = { _ in false },
        _ body: (PostgresConnection) async throws -> sending T
    ) async throws -> sending T {
        try await control(conn, readOnlySnapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" : "BEGIN")
        let value: T
        do {
            if let requestID = AuditContext.requestID {
                // Every event of the transaction (record events from triggers too) carries it.
                _ = try await conn.query("SELECT set_config('bm.request_id', \(requestID), true)", logger: logger).collect()
            }
            value = try await body(conn)
        } catch {
            if !conn.isClosed { try? await control(conn, "ROLLBACK") }
            if conn.isClosed && !isExpectedRollback(error) {
                // The session ended under the work (terminated, server restart): nothing committed.
                throw DatabaseUnavailableError(target: configuration.displayName,
                                               underlying: "the connection closed during the transaction: \(serverMessage(error))")
            }
            throw error
        }
        try await control(conn, "COMMIT")
        return value
    }

    /// Runs a transaction-control statement, or throws `DatabaseUnavailableError` if the connection
    /// closes before it is answered. A statement lost that way stays suspended until the process exits.
    func control(_ conn: PostgresConnection, _ statement: String) async throws {
        let target = configuration.displayName
        let logger = self.logger
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let gate = ResumeOnce(continuation)
            Task {
                do {
                    _ = try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                    gate.resume(with: .success(()))
                } catch {
                    gate.resume(with: .failure(error))
                }
            }
            Task {
                while !gate.isResumed {
                    if conn.isClosed {
                        gate.resume(with: .failure(DatabaseUnavailableError(
                            target: target, underlying: "the connection closed before \(statement) was answered")))
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
        }
    }
}

/// Resumes a continuation exactly once, whichever of several tasks gets there first.
private final class ResumeOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, any Error>?

    init(_ continuation: CheckedContinuation<Void, any Error>) { self.continuation = continuation }

    var isResumed: Bool { lock.withLock { continuation == nil } }

    func resume(with result: Result<Void, any Error>) {
        let pending: CheckedContinuation<Void, any Error>? = lock.withLock {
            defer { continuation = nil }
            return continuation
        }
        pending?.resume(with: result)
    }
}
