import BloodMatchCore
import BloodMatchStore
import Foundation

/// The index as last checked against the snapshots in force.
public struct VerifiedIndex: Sendable {
    /// The index.
    public var index: InventoryIndex
    /// When the check succeeded.
    public var verifiedAt: Date
    /// `index.version`, computed once per check rather than once per request.
    public var version: String

    /// What identifies the index's content for caches derived from it: its snapshots, build
    /// instant and unit count.
    public var cacheKey: String { "\(version)/\(index.builtAt)/\(index.unitCount)" }
}

/// Answers "is the index current and the database reachable?" at most once per `interval`, so a
/// burst of lookups costs one check. When the check fails, callers get `APIError.unableToVerify`
/// naming the data affected and the instant the failure was first seen.
public actor DataGuard {
    let engine: DecisionEngine
    /// The longest an index verification may be reused.
    public let interval: Duration
    /// How long one verification may take.
    public let deadline: Duration
    private var verified: (answer: VerifiedIndex, at: ContinuousClock.Instant)?
    private var failingSince: Date?
    private var inFlight: (task: Task<InventoryIndex, any Error>, started: ContinuousClock.Instant)?
    /// How long a running check is waited for before a new one replaces it (a query on a
    /// connection to a frozen or vanished server can hang until TCP gives up, many minutes).
    public let abandonAfter: Duration

    /// Creates a guard over the engine's index.
    public init(engine: DecisionEngine, interval: Duration = .seconds(1), deadline: Duration = .seconds(4),
                abandonAfter: Duration? = nil) {
        self.engine = engine
        self.interval = interval
        self.deadline = deadline
        self.abandonAfter = abandonAfter ?? max(deadline * 3, .seconds(10))
    }

    /// The index, checked against the snapshots in force within the last `interval` (rebuilt
    /// from the database when it no longer names them). One check runs at a time; callers wait
    /// for it at most `deadline`, and a check that overruns keeps running in the background
    /// instead of being started again by every request — until `abandonAfter`, when it is
    /// cancelled and a new check (on another pooled connection) takes its place, so one hung
    /// query cannot keep the instance "unable to verify" after the database is back.
    ///
    /// Once a verification is half `interval` old the next check starts behind the answer, so
    /// under steady traffic no request waits for the database's round trips (measured: one
    /// lookup a second paid them, 10 ms more under load). A check that fails there drops the
    /// verification, and the next request checks again itself and answers "unable to verify" if
    /// it fails too.
    public func verifiedIndex(now: Date) async throws -> VerifiedIndex {
        if let verified, failingSince == nil {
            let age = ContinuousClock.now - verified.at
            if age < interval {
                if age >= interval / 2 && inFlight == nil && !checkingAhead { checkAhead(now: now) }
                return verified.answer
            }
        }
        let task = runningCheck(now: now).task
        do {
            let index = try await answerWithin(deadline) { try await task.value }
            let answer = VerifiedIndex(index: index, verifiedAt: Date(), version: index.version)
            verified = (answer, ContinuousClock.now)
            failingSince = nil
            return answer
        } catch {
            let since = failingSince ?? Date()
            failingSince = since
            if let skew = error as? ClockSkewError {
                throw APIError.unableToVerify(affected: ["inventory", "clock"], since: since, reason: skew.description)
            }
            throw APIError.unableToVerify(affected: ["inventory", "index"], since: since,
                                          reason: "the index could not be checked against the snapshots in force: \(Self.describe(error))")
        }
    }

    /// The check in flight, or a new one (replacing one past `abandonAfter`).
    private func runningCheck(now: Date) -> (task: Task<InventoryIndex, any Error>, started: ContinuousClock.Instant) {
        if let inFlight, ContinuousClock.now - inFlight.started < abandonAfter { return inFlight }
        inFlight?.task.cancel()
        let engine = self.engine
        generation += 1
        let mine = generation
        let task = Task {
            let result: Result<InventoryIndex, any Error>
            do {
                let index = try await engine.currentIndex(now: now, check: true)
                // Availability reports expiry and data age from this host's clock: a clock the
                // database disagrees with fails the check like a stale index does.
                try await engine.checkClock()
                result = .success(index)
            } catch { result = .failure(error) }
            self.finished(generation: mine)
            return try result.get()
        }
        inFlight = (task, ContinuousClock.now)
        return (task, ContinuousClock.now)
    }

    /// Starts the next check without waiting for it: its success renews the verification from
    /// the instant it started; its failure drops the verification.
    ///
    /// `checkingAhead` stays set until the result is applied: the check's task clears `inFlight`
    /// before this guard hears its result, and a request in between would otherwise start a
    /// second check whose later result replaces the first.
    private func checkAhead(now: Date) {
        checkingAhead = true
        let (task, started) = runningCheck(now: now)
        Task {
            let result = await task.result
            self.checkedAhead(result, started: started)
        }
    }

    private func checkedAhead(_ result: Result<InventoryIndex, any Error>, started: ContinuousClock.Instant) {
        checkingAhead = false
        guard failingSince == nil else { return }
        switch result {
        case .success(let index):
            if verified.map({ $0.at < started }) ?? true {
                verified = (VerifiedIndex(index: index, verifiedAt: Date(), version: index.version), started)
            }
        case .failure:
            verified = nil
        }
    }

    private var generation = 0
    private var checkingAhead = false

    private func finished(generation finished: Int) {
        if finished == generation { inFlight = nil }
    }

    /// Since when verification has been failing, if it is.
    public var failing: Date? { failingSince }

    static func describe(_ error: any Error) -> String {
        if error is DeadlineExceededError { return "no answer from the database within the deadline" }
        if isConnectionFailure(error) { return "database unavailable" }
        return serverMessage(error)
    }
}
