import BloodMatchCore
import BloodMatchStore
import Foundation
import Logging
import Crypto
import Synchronization
import Tracing

/// This host's clock and the database's differ by more than the engine tolerates.
public struct ClockSkewError: Error, Sendable, CustomStringConvertible {
    /// The database's clock minus this host's, in seconds.
    public var skewSeconds: Double
    /// The largest difference tolerated, in seconds.
    public var limitSeconds: Double
    public var description: String {
        String(format: "this host's clock differs from the database's by %.1f s (limit %.0f s): expiry and data age cannot be trusted",
               skewSeconds, limitSeconds)
    }
}

/// A request that cannot be evaluated as stated (unknown hospital, quantity out of range…).
public struct MatchRequestError: Error, Sendable, CustomStringConvertible {
    /// The field at fault.
    public var field: String
    /// The value received.
    public var value: String
    /// What is wrong.
    public var reason: String
    /// Creates the error.
    public init(field: String, value: String, reason: String) {
        self.field = field
        self.value = value
        self.reason = reason
    }
    public var description: String { "\(field) '\(value)': \(reason)" }
}

/// The outcome of `DecisionEngine.decide`.
public struct EngineAnswer: Sendable {
    /// The decision (the original one when the request id was seen before).
    public var decision: MatchDecision
    /// Whether it is recorded in PostgreSQL; false only for `unable_to_verify` when the database
    /// itself is what failed (the log line then carries it instead).
    public var recorded: Bool
    /// Whether this call made it (false: a retry returned the original).
    public var isNew: Bool
    /// The `unable_to_verify` decision of the same request id that this one re-evaluates: such an
    /// answer is never final for its request id, a retry is evaluated again.
    public var retryOf: UUID?

    /// Creates an answer.
    public init(decision: MatchDecision, recorded: Bool, isNew: Bool, retryOf: UUID? = nil) {
        self.decision = decision
        self.recorded = recorded
        self.isNew = isNew
        self.retryOf = retryOf
    }
}

/// Answers match requests: proposal from the index, truth from PostgreSQL, one recorded decision.
///
/// 1. The index must name the snapshots in force; otherwise it is rebuilt from the database.
/// 2. The chosen units are re-checked against the database (reserved, removed or held since the
///    index was built are excluded and the search runs again).
/// 3. The decision and its units are written in one statement before the answer is given
///    (concurrent decisions share the statement and its commit: `groupWriter`); a request id
///    already answered returns the original decision instead, unless that answer was
///    `unable_to_verify`: it is never final, and the retry's decision names it (`retryOf`).
/// Any failure of the database or the index gives `unable_to_verify`, never "no units".
public actor DecisionEngine {
    let database: Database
    /// The pool of index checks and rebuilds, site reads and clock readings (`database` unless
    /// given): a stalled write path cannot hold up the lookups that need the index checked.
    let readDatabase: Database
    /// Writes decisions, concurrent ones together (group commit).
    let writer: CallBatcher<PendingDecision, (decision: StoredDecision, isNew: Bool)>
    /// Re-checks proposed units against the database, concurrent decisions' together.
    let recheck: CallBatcher<[UnitKey], Set<UnitKey>>
    let planner: MatchPlanner
    let logger: Logger
    /// How long the database may take for one decision before the answer is "unable to verify".
    let databaseDeadline: Duration
    /// Clock skew (seconds, either way) between this host and the database above which a warning is
    /// logged, and above which answers fail safe: expiry and data age cannot be trusted.
    let clockSkewWarning: Double
    let clockSkewLimit: Double
    let clock: @Sendable () -> Date
    /// How long a check of the index against the snapshots in force, a clock-skew measurement
    /// within the limits, and the set of held units are reused by later decisions. Zero (the
    /// default) checks all three on every decision; `serve` uses a second. Reusing the held set is
    /// safe: every proposed unit is re-checked against the database (holds included) before it is
    /// chosen, so a hold made since only costs one more search round.
    let reuseInterval: Duration
    private var indexCheckedAt: ContinuousClock.Instant?
    private var skewCheckedAt: ContinuousClock.Instant?
    private var held: (units: Set<UnitKey>, at: ContinuousClock.Instant)?
    private var index: InventoryIndex?
    private var hospitals: [String: GeoPoint] = [:]
    /// The last measured skew, server minus local, in seconds.
    public private(set) var lastClockSkew: Double?

    /// Creates an engine with an optional preloaded index. `groupSize` bounds how many concurrent
    /// decisions share one write statement and one re-check query (1: each alone).
    public init(database: Database, readDatabase: Database? = nil, planner: MatchPlanner, index: InventoryIndex?, logger: Logger,
                databaseDeadline: Duration = .seconds(5), clockSkewWarning: Double = 2, clockSkewLimit: Double = 30,
                clock: @escaping @Sendable () -> Date = Date.init, reuseInterval: Duration = .zero, groupSize: Int = 64) {
        self.database = database
        self.readDatabase = readDatabase ?? database
        self.writer = PostgresDecisionStore(database: database).groupWriter(maxBatch: groupSize)
        self.recheck = PostgresInventoryReader(database: database).groupRecheck(maxBatch: groupSize)
        self.reuseInterval = reuseInterval
        self.clockSkewWarning = clockSkewWarning
        self.clockSkewLimit = clockSkewLimit
        self.clock = clock
        self.databaseDeadline = databaseDeadline
        self.planner = planner
        self.index = index
        self.logger = logger
    }

    /// The index in use.
    public var currentIndex: InventoryIndex? { index }

    /// Replaces the index (after a rebuild or a reload on NOTIFY).
    public func install(_ index: InventoryIndex) {
        self.index = index
        indexCheckedAt = nil
    }

    /// Forgets the reused set of held units (after a reservation is made or released here).
    public func heldUnitsChanged() { held = nil }

    private func fresh(_ at: ContinuousClock.Instant?) -> Bool {
        guard let at, reuseInterval > .zero else { return false }
        return ContinuousClock.now - at < reuseInterval
    }

    /// Answers one request (a `match.decide` span under the current trace; `traceID` is stored on
    /// the decision row and its event). `requestID` and `clientAddress`, the HTTP request's, go on
    /// the `decision.made` event (without `requestID` it carries the decision's own request id).
    /// With `whatIf`, `now` is an instant the caller chose: the decision is evaluated there on the
    /// stock in force, recorded marked as a what-if (never reservable), and refused
    /// (`MatchRequestError`, field `as_of`) before the oldest snapshot in force.
    public func decide(_ request: MatchRequest, requestedBy: String, traceID: String?, requestID: String? = nil,
                       clientAddress: String? = nil, now: Date, whatIf: Bool = false) async throws -> EngineAnswer {
        try await withSpan("match.decide") { span in
            let origin = EventOrigin(requestID: requestID, clientAddress: clientAddress)
            let answer = try await decideUntraced(request, requestedBy: requestedBy, traceID: traceID, origin: origin, now: now,
                                                  whatIf: whatIf)
            let decision = answer.decision
            if span.isRecording {
                span.updateAttributes { a in
                    a["bloodmatch.outcome"] = decision.outcome.rawValue
                    a["bloodmatch.decision_id"] = decision.decisionID.uuidString.lowercased()
                    a["bloodmatch.component"] = request.component.rawValue
                    a["bloodmatch.quantity"] = request.quantity
                    a["bloodmatch.replayed"] = !answer.isNew
                }
            }
            logger.info("match decision", metadata: [
                "decision_id": "\(decision.decisionID.uuidString.lowercased())", "outcome": "\(decision.outcome.rawValue)",
                "hospital": "\(request.hospitalID ?? "")", "component": "\(request.component.rawValue)",
                "quantity": "\(request.quantity)", "units_chosen": "\(decision.chosen.count)",
                "recorded": "\(answer.recorded)", "replayed": "\(!answer.isNew)",
            ])
            return answer
        }
    }

    /// The HTTP request a decision's event comes from.
    private struct EventOrigin: Sendable {
        var requestID: String?
        var clientAddress: String?
    }

    private func decideUntraced(_ request: MatchRequest, requestedBy: String, traceID: String?, origin: EventOrigin,
                                now: Date, whatIf: Bool) async throws -> EngineAnswer {
        // Decisions are stored with whole-second instants (ISO 8601), so evaluate at one.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        guard (1...MatchRequest.maximumQuantity).contains(request.quantity) else {
            throw MatchRequestError(field: "quantity", value: "\(request.quantity)", reason: "must be 1…\(MatchRequest.maximumQuantity)")
        }
        let deadline = databaseDeadline
        // A request id answered before is found when its decision is written (the request id is
        // unique): the original is returned then, and this evaluation is discarded. New requests,
        // nearly all of them, save the round trip a look-up first would cost.
        let id = UUID()
        // The host's clock decides what is expired and how old each centre's data is: if it
        // disagrees with the database's by more than the limit, nothing it says can be trusted.
        do {
            let reused = fresh(skewCheckedAt) ? lastClockSkew : nil
            let skew: Double
            if let reused {
                skew = reused
            } else {
                skew = try await withDeadline(deadline) { [database, clock] in try await database.clockSkew(localClock: clock) }
                lastClockSkew = skew
                skewCheckedAt = abs(skew) > clockSkewWarning ? nil : ContinuousClock.now
            }
            if abs(skew) > clockSkewLimit {
                logger.critical("clock skew beyond the limit; answering unable to verify", metadata: [
                    "clock_skew_seconds": "\(skew)", "limit_seconds": "\(clockSkewLimit)"])
                return try await recordUnverified(
                    request, id: id, reason: String(format: "this host's clock differs from the database's by %.1f s (limit %.0f s): expiry and data age cannot be trusted", skew, clockSkewLimit),
                    now: now, requestedBy: requestedBy, traceID: traceID, origin: origin)
            }
            if abs(skew) > clockSkewWarning {
                logger.warning("clock skew", metadata: ["clock_skew_seconds": "\(skew)", "warning_seconds": "\(clockSkewWarning)"])
            }
        } catch let error where isConnectionFailure(error) {
            return unverified(request, reason: "database unavailable (\(serverMessage(error)))", now: now)
        }
        let decision: MatchDecision
        do {
            decision = try await withDeadline(deadline) { try await self.evaluate(request, id: id, now: now, whatIf: whatIf) }
        } catch let error as MatchRequestError {
            throw error
        } catch let error as IndexFileError {
            return try await recordUnverified(request, id: id, reason: error.description, now: now, requestedBy: requestedBy,
                                              traceID: traceID, origin: origin)
        } catch let error where isConnectionFailure(error) {
            return unverified(request, reason: "database unavailable (\(serverMessage(error)))", now: now)
        }
        do {
            let record = try await Self.encodeOffActor(decision, requestedBy: requestedBy, traceID: traceID)
            let (stored, isNew) = try await withDeadline(deadline) { [writer] in
                try await writer.call(PendingDecision(record, requestID: origin.requestID, clientAddress: origin.clientAddress))
            }
            return EngineAnswer(decision: isNew ? decision : try Self.decode(stored), recorded: true, isNew: isNew, retryOf: stored.retryOf)
        } catch let error where isConnectionFailure(error) {
            return unverified(request, reason: "the decision could not be recorded: database unavailable (\(serverMessage(error))); a retry with the same request id returns it if it was stored", now: now)
        }
    }

    /// Proposal from the index, re-checked against the database until the chosen units hold.
    private func evaluate(_ request: MatchRequest, id: UUID, now: Date, whatIf: Bool) async throws -> MatchDecision {
        let destination = try await resolveDestination(request)
        let index = try await currentIndex(now: now)
        if whatIf, let oldest = index.centres.min(by: { $0.asOf < $1.asOf }), Int64(now.timeIntervalSince1970) < oldest.asOf {
            throw MatchRequestError(
                field: "as_of", value: Self.makeISO(now),
                reason: "is before the oldest snapshot in force (\(oldest.siteID) as of \(Self.makeISO(Date(timeIntervalSince1970: Double(oldest.asOf))))): the stock then is not known")
        }
        let reader = PostgresInventoryReader(database: database)
        // Units under an active hold never reach the matcher (issued ones are left out of the index
        // when it is built); the re-check below catches units taken in the moments between.
        let held: Set<UnitKey>
        if let reused = self.held, fresh(reused.at) {
            held = reused.units
        } else {
            let started = ContinuousClock.now
            held = try await reader.heldUnits()
            self.held = (held, started)
        }
        var excluded: Set<UnitKey> = []
        var (query, refused, notes) = planner.query(for: request, destination: destination, excluded: held)
        var match = await Self.compute(planner, index, query, now: now)
        var clean = false
        for _ in 0..<8 {
            let keys = match.chosen.map(\.key)
            let gone = keys.isEmpty ? [] : try await recheck.call(keys)
            if gone.isEmpty { clean = true; break }
            excluded.formUnion(gone)
            (query, refused, notes) = planner.query(for: request, destination: destination, excluded: excluded.union(held))
            match = await Self.compute(planner, index, query, now: now)
        }
        guard clean else {
            // Never answer with units the database says are gone.
            throw IndexFileError(reason: "the index kept proposing units that are no longer available (\(excluded.count) excluded); rebuild the index")
        }
        if !excluded.isEmpty {
            notes.append("\(excluded.count) unit(s) proposed by the index were reserved or removed since it was built and were excluded: \(excluded.sorted().prefix(5).map(\.description).joined(separator: ", "))")
        }
        var decision = planner.decision(id: id, request: request, destination: destination, query: query, refused: refused,
                                        notes: notes, match: match, index: index, now: now)
        if whatIf {
            decision.whatIf = true
            decision.summary = "WHAT-IF at \(Self.makeISO(now)) on the stock in force now (cannot be reserved or issued): " + decision.summary
        }
        return decision
    }

    /// ISO 8601 in UTC, whole seconds.
    static func makeISO(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// The search itself, off the actor: it reads only the immutable index, so concurrent
    /// decisions search in parallel instead of queueing behind one another.
    @concurrent
    private static func compute(_ planner: MatchPlanner, _ index: InventoryIndex, _ query: UnitQuery, now: Date) async -> UnitMatch {
        withSpan("match.compute") { _ in planner.matcher(for: index).match(query, now: Int64(now.timeIntervalSince1970)) }
    }

    /// `encode`, off the actor (the rationale's JSON is the largest share of a decision's CPU time).
    @concurrent
    private static func encodeOffActor(_ decision: MatchDecision, requestedBy: String, traceID: String?) async throws -> StoredDecision {
        try encode(decision, requestedBy: requestedBy, traceID: traceID)
    }

    /// Measures this host's clock against the database's (recorded as `lastClockSkew`); throws
    /// `ClockSkewError` when they differ by more than the limit, since expiry and data age computed
    /// on this host can then not be trusted.
    public func checkClock() async throws {
        let skew = try await readDatabase.clockSkew(localClock: clock)
        lastClockSkew = skew
        if abs(skew) > clockSkewLimit {
            logger.critical("clock skew beyond the limit; answering unable to verify", metadata: [
                "clock_skew_seconds": "\(skew)", "limit_seconds": "\(clockSkewLimit)"])
            throw ClockSkewError(skewSeconds: skew, limitSeconds: clockSkewLimit)
        }
    }

    /// The index, rebuilt from the database when it no longer names the snapshots in force.
    /// With `check`, the snapshots in force are read whatever `reuseInterval` allows.
    func currentIndex(now: Date, check: Bool = false) async throws -> InventoryIndex {
        try await withSpan("index.verify") { span in
            let (index, rebuilt) = try await currentIndexUntraced(now: now, check: check)
            if span.isRecording { span.attributes["bloodmatch.index_rebuilt"] = rebuilt }
            return index
        }
    }

    /// The index checked against the snapshots in force now, rebuilt (and installed) when it no
    /// longer names them; `rebuilt` says whether it was.
    public func indexCheckedAgainstSnapshots(now: Date) async throws -> (index: InventoryIndex, rebuilt: Bool) {
        try await currentIndexUntraced(now: now, check: true)
    }

    private func currentIndexUntraced(now: Date, check: Bool) async throws -> (InventoryIndex, Bool) {
        if !check, let index, fresh(indexCheckedAt) { return (index, false) }
        let started = ContinuousClock.now
        let reader = PostgresInventoryReader(database: readDatabase)
        let current = try await reader.snapshotsInForce()
        if let index {
            let indexed = Dictionary(uniqueKeysWithValues: index.centres.map { ($0.siteID, $0.mark) })
            let inForce = Dictionary(uniqueKeysWithValues: current.centres.map { ($0.centreID, $0.mark) })
            // A centre added without data, or one that has since delivered, changes the index too.
            // (Compared as sets: the database's collation need not order ids as Swift does.)
            if indexed == inForce, Set(index.centresWithoutData.map(\.siteID)) == Set(current.withoutData) {
                indexCheckedAt = started
                return (index, false)
            }
            logger.notice("index out of date; rebuilding from the database", metadata: ["index_version": "\(index.version)"])
        }
        let rebuilt = try await reader.buildIndex(now: now)
        self.index = rebuilt
        indexCheckedAt = started
        return (rebuilt, true)
    }

    private func resolveDestination(_ request: MatchRequest) async throws -> GeoPoint {
        if let hospital = request.hospitalID {
            if let cached = hospitals[hospital] { return cached }
            let sites = try await PostgresSiteStore(database: readDatabase).all()
            for site in sites where site.kind == .hospital { hospitals[site.id] = site.location }
            guard let location = hospitals[hospital] else {
                throw MatchRequestError(field: "hospital", value: hospital, reason: "not a known hospital")
            }
            return location
        }
        guard let destination = request.destination, destination.isValid else {
            throw MatchRequestError(field: "destination", value: "\(String(describing: request.destination))", reason: "name a hospital or valid coordinates")
        }
        return destination
    }

    private func unverified(_ request: MatchRequest, reason: String, now: Date) -> EngineAnswer {
        let decision = planner.unableToVerify(id: UUID(), request: request, reason: reason, now: now)
        logger.error("unable to verify — manual review required", metadata: [
            "request_id": "\(request.requestID)", "reason": "\(reason)", "decision_id": "\(decision.decisionID)",
        ])
        return EngineAnswer(decision: decision, recorded: false, isNew: true)
    }

    private func recordUnverified(_ request: MatchRequest, id: UUID, reason: String, now: Date, requestedBy: String, traceID: String?,
                                  origin: EventOrigin) async throws -> EngineAnswer {
        let decision = planner.unableToVerify(id: id, request: request, reason: reason, now: now)
        do {
            let (stored, isNew) = try await writer.call(PendingDecision(
                try Self.encode(decision, requestedBy: requestedBy, traceID: traceID), requestID: origin.requestID,
                clientAddress: origin.clientAddress))
            return EngineAnswer(decision: isNew ? decision : try Self.decode(stored), recorded: true, isNew: isNew, retryOf: stored.retryOf)
        } catch {
            return unverified(request, reason: reason, now: now)
        }
    }

    /// JSON with sorted keys and ISO 8601 dates: the stored and exported form of decisions.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The last centres' data state encoded, with its JSON and digest: decisions of the same minute
    /// share it, so it is encoded once rather than with every decision.
    static let lastDataState = Mutex<(centres: [CentreDataState], json: String, digest: String)?>(nil)

    /// The data state's JSON and SHA-256 (hex), from the cache when it is the last one seen.
    static func dataState(_ centres: [CentreDataState], encoder: JSONEncoder) throws -> (json: String, digest: String) {
        if let hit = lastDataState.withLock({ last in last.flatMap { $0.centres == centres ? ($0.json, $0.digest) : nil } }) {
            return hit
        }
        let json = String(decoding: try encoder.encode(centres), as: UTF8.self)
        let digest = SHA256.hash(data: Data(json.utf8)).lowercaseHex
        lastDataState.withLock { $0 = (centres, json, digest) }
        return (json, digest)
    }

    static func encode(_ decision: MatchDecision, requestedBy: String, traceID: String?) throws -> StoredDecision {
        let encoder = makeEncoder()
        let requestJSON = String(decoding: try encoder.encode(decision.request), as: UTF8.self)
        // The centres' data state is stored once per distinct value and named by its digest.
        let (dataStateJSON, dataStateDigest) = try dataState(decision.centres, encoder: encoder)
        var slim = decision
        slim.centres = []
        let rationaleJSON = String(decoding: try encoder.encode(slim), as: UTF8.self)
        var units = decision.chosen.enumerated().map { i, u in
            DecisionUnit(rank: i + 1, din: u.din, productCode: u.productCode, centre: u.centreID, chosen: true,
                         reason: "rank \(u.rank) \(u.group) at \(u.centreID), \(Int(u.distanceKm.rounded())) km, ETA \(Int(u.etaMinutes.rounded())) min")
        }
        for r in decision.rejected {
            if let din = r.exampleDIN {
                units.append(DecisionUnit(rank: units.count + 1, din: din, productCode: r.exampleProductCode ?? "UNKNOWN",
                                          centre: r.centreID, chosen: false,
                                          reason: "\(r.reason.rawValue): \(r.detail) (\(r.count) like it)"))
            }
        }
        return StoredDecision(decisionID: decision.decisionID, requestID: decision.request.requestID, hospital: decision.request.hospitalID,
                              requestedBy: requestedBy, outcome: decision.outcome.rawValue, requestJSON: requestJSON,
                              rationaleJSON: rationaleJSON, policyVersion: decision.policyVersion, indexVersion: decision.indexVersion,
                              evaluatedAt: decision.evaluatedAt, traceID: traceID, units: units,
                              dataStateDigest: dataStateDigest, dataStateJSON: dataStateJSON)
    }

    /// Reads a stored decision's full rationale back.
    public static func decode(_ stored: StoredDecision) throws -> MatchDecision {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var decision = try decoder.decode(MatchDecision.self, from: Data(stored.rationaleJSON.utf8))
        if let centres = stored.dataStateJSON {
            decision.centres = try decoder.decode([CentreDataState].self, from: Data(centres.utf8))
        }
        return decision
    }
}
