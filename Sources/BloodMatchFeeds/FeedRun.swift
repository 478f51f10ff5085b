import BloodMatchIngest
import Foundation
import Logging

/// What the feeds of one run gave: snapshots on disk, and the failures to record as import runs.
public struct FeedRun: Sendable {
    /// Snapshots fetched (or recognised as the one in force) in the order their feeds were given.
    public var fetched: [FetchedSnapshot] = []
    /// Feeds that could not be fetched, with how long each try took in all.
    public var failures: [(error: FeedFetchError, durationMs: Int)] = []

    public init() {}

    /// Deletes every fetched copy; the database holds what was imported and how it ended.
    public func removeCopies() { for snapshot in fetched { snapshot.remove() } }
}

extension FeedFetcher {
    /// Fetches every address, one after another; a feed that fails is recorded in the run and does
    /// not stop the others. Every address is checked before anything is fetched. An error that is
    /// not the feed's (this host's disk) removes the copies already fetched and is thrown.
    public func fetchAll(_ addresses: [String],
                         inForce: @escaping @Sendable (SnapshotControl) async -> Int64? = { _ in nil }) async throws -> FeedRun {
        for address in addresses { _ = try Self.address(address) }
        var run = FeedRun()
        for address in addresses {
            let started = ContinuousClock.now
            do {
                run.fetched.append(try await fetchSnapshot(address, inForce: inForce))
            } catch let error as FeedFetchError {
                let elapsed = ContinuousClock.now - started
                logger.error("\(error.description)", metadata: ["url": "\(address)", "file": "\(error.file)",
                                                                "failure": "\(error.kind == .unreachable ? "unreachable" : "refused")"])
                run.failures.append((error, Int(elapsed / .milliseconds(1))))
            } catch {
                run.removeCopies()
                throw error
            }
        }
        return run
    }
}
