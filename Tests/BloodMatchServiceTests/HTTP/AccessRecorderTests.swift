import BloodMatchService
import BloodMatchStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The access recorder on its own: batches, refusal when it cannot write, flush at shutdown, the
/// arrival time kept through an outage, and failed authentications counted per minute.
@Suite("Access recorder")
struct AccessRecorderTests {
    actor Sink {
        var batches: [[AccessRecord]] = []
        var failing = false
        func write(_ records: [AccessRecord]) throws {
            if failing { throw DatabaseUnavailableError(target: "test", underlying: "down") }
            batches.append(records)
        }
        func setFailing(_ value: Bool) { failing = value }
        var count: Int { batches.reduce(0) { $0 + $1.count } }
    }

    static func record(_ i: Int) -> AccessRecord {
        AccessRecord(actor: "H", subject: "/health", payloadJSON: "{}", requestID: "r\(i)", traceID: nil, clientAddress: nil,
                     requestedAt: Date())
    }

    /// A wall clock that moves only when told, starting at 2026-12-02T10:11:12.345Z.
    final class WallClock: Sendable {
        static let start = Date(timeIntervalSince1970: 1_796_206_272.345)
        let date = Mutex(WallClock.start)
        func now() -> Date { date.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { date.withLock { $0 += seconds } }
    }

    /// A refused request with an unknown key id.
    static func unknownKey(_ i: Int, at date: Date, from address: String = "203.0.113.9") -> FailedAuthenticationTally.Attempt {
        FailedAuthenticationTally.Attempt(clientAddress: address, route: "/v1/availability", reason: .unknown, requestedAt: date,
                                          requestID: "r\(i)", keyID: String(format: "%016lx", i))
    }

    /// Runs the recorder as a service for a moment, then shuts it down gracefully.
    static func runUntilGracefulShutdown(_ recorder: AccessRecorder) async throws {
        let group = ServiceGroup(configuration: .init(services: [recorder], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(100))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// A record's payload, parsed.
    static func payload(_ record: AccessRecord) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(record.payloadJSON.utf8)) as? [String: Any])
    }

    @Test("records are written in batches; a failed write keeps them and refuses new requests until it succeeds")
    func failureRefusesNewRequests() async throws {
        let sink = Sink()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), capacity: 10, batchSize: 4)
        for i in 0..<6 { recorder.commit(try #require(recorder.reserve()), Self.record(i)) }
        await sink.setFailing(true)
        #expect(await recorder.flush() == false)
        #expect(recorder.pendingCount == 6)
        #expect(recorder.reserve() == nil)
        #expect(recorder.refusal != nil)
        await sink.setFailing(false)
        #expect(await recorder.flush())
        #expect(await sink.batches.map(\.count) == [4, 2])
        #expect(recorder.reserve() != nil)
    }

    @Test("a write that never answers counts as failed after its deadline; the records are written again, at least once",
          .timeLimit(.minutes(1)))
    func hungWrite() async throws {
        // The writer hangs, ignoring cancellation, as a query on a connection to a frozen server can.
        let hanging = Mutex(true)
        let written = Mutex<[String]>([])
        let recorder = AccessRecorder(writer: { batch in
            while hanging.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(20)) }
            written.withLock { $0.append(contentsOf: batch.map(\.requestID)) }
        }, logger: Logger(label: "test"), capacity: 10, writeDeadline: .milliseconds(300))
        for i in 0..<6 { recorder.commit(try #require(recorder.reserve()), Self.record(i)) }
        // It returns at all (the time limit fails the test otherwise): the write is given up on.
        #expect(await recorder.flush() == false)
        #expect(recorder.pendingCount == 6)
        #expect(recorder.reserve() == nil)
        #expect(recorder.refusal?.reason.contains("no answer from the database") == true)
        hanging.withLock { $0 = false }
        #expect(await recorder.flush())
        #expect(recorder.pendingCount == 0)
        #expect(recorder.reserve() != nil)
        #expect(Set(written.withLock { $0 }) == Set((0..<6).map { "r\($0)" }))
    }

    @Test("a full queue refuses new requests rather than dropping records")
    func fullQueue() async throws {
        let sink = Sink()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), capacity: 3)
        for i in 0..<3 { recorder.commit(try #require(recorder.reserve()), Self.record(i)) }
        #expect(recorder.reserve() == nil)
        #expect(await recorder.flush())
        #expect(await sink.count == 3)
    }

    @Test("graceful shutdown writes every accepted record")
    func flushOnShutdown() async throws {
        let sink = Sink()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), interval: .seconds(60))
        for i in 0..<25 { recorder.commit(try #require(recorder.reserve()), Self.record(i)) }
        try await Self.runUntilGracefulShutdown(recorder)
        #expect(await sink.count == 25)
    }

    @Test("a record queued while the database refuses writes keeps the time its request arrived, not the time it is written")
    func requestedAtSurvivesAnOutage() async throws {
        let sink = Sink()
        let clock = WallClock()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), now: clock.now)
        let arrived = clock.now()
        recorder.commit(try #require(recorder.reserve()),
                        AccessRecord(actor: "H0001", subject: "/v1/availability", payload: ["status": 200], requestedAt: arrived,
                                     requestID: "during-outage", traceID: nil, clientAddress: "203.0.113.9"))
        await sink.setFailing(true)
        #expect(await recorder.flush() == false)
        clock.advance(27)
        #expect(await recorder.flush() == false)
        await sink.setFailing(false)
        clock.advance(0.5)
        #expect(await recorder.flush())
        let written = try #require(await sink.batches.first?.first)
        #expect(written.requestedAt == arrived)
        #expect(try Self.payload(written)["requested_at"] as? String == "2026-12-02T10:11:12.345Z")
    }

    @Test("10,000 unknown-key failures from one address in one minute are one record, written once the minute has closed")
    func unknownKeysCountedPerMinute() async throws {
        let sink = Sink()
        let clock = WallClock()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), now: clock.now)
        for i in 0..<10_000 {
            recorder.count(try #require(recorder.reserve()), Self.unknownKey(i, at: clock.now().addingTimeInterval(Double(i) * 0.004)))
        }
        #expect(recorder.countedAttempts == 10_000)
        // The minute is still open (and then within its allowance for late look-ups): nothing is written.
        #expect(await recorder.flush())
        clock.advance(47.655 + AccessRecorder.lateAttemptAllowance - 0.1)
        #expect(await recorder.flush())
        #expect(await sink.count == 0)
        clock.advance(0.2)
        #expect(await recorder.flush())
        let records = await sink.batches.flatMap { $0 }
        #expect(records.count == 1)
        let record = try #require(records.first)
        #expect(record.actor == "anonymous" && record.subject == "/v1/availability" && record.clientAddress == "203.0.113.9")
        let payload = try Self.payload(record)
        #expect(payload["aggregate"] as? Bool == true)
        #expect(payload["count"] as? Int == 10_000)
        #expect(payload["reason"] as? String == "unknown")
        #expect(payload["minute"] as? String == "2026-12-02T10:11Z")
        #expect(payload["first_request_id"] as? String == "r0" && payload["last_request_id"] as? String == "r9999")
        #expect(payload["key_ids"] as? [String] == (0..<5).map { String(format: "%016lx", $0) })
        #expect(recorder.countedAttempts == 0)
        #expect(recorder.reserve() != nil)
    }

    @Test("groups are kept apart by address, route, reason and minute; past the bound the rest go to one overflow record per minute")
    func boundedGroups() async throws {
        let clock = WallClock()
        var tally = FailedAuthenticationTally(maximumGroups: 3)
        let start = clock.now()
        tally.add(Self.unknownKey(0, at: start, from: "203.0.113.1"))
        tally.add(Self.unknownKey(1, at: start, from: "203.0.113.1"))
        tally.add(FailedAuthenticationTally.Attempt(clientAddress: "203.0.113.1", route: "/v1/availability", reason: .missing,
                                                    requestedAt: start, requestID: "m1", keyID: nil))
        tally.add(Self.unknownKey(2, at: start.addingTimeInterval(60), from: "203.0.113.1"))
        for i in 3..<53 { tally.add(Self.unknownKey(i, at: start, from: "198.51.100.\(i)")) }
        #expect(tally.attemptCount == 54)
        let firstMinute = FailedAuthenticationTally.minute(of: start)
        let closed = tally.close(before: firstMinute + 1)
        #expect(closed.map(\.subject) == ["/v1/availability", "/v1/availability", FailedAuthenticationTally.overflowSubject])
        let counts = try closed.map { try Self.payload($0)["count"] as? Int }
        #expect(counts == [1, 2, 50])
        let overflow = try Self.payload(try #require(closed.last))
        #expect(overflow["overflow"] as? Bool == true)
        #expect(overflow["reasons"] as? [String: Int] == ["unknown": 50])
        #expect((overflow["key_ids"] as? [String])?.count == FailedAuthenticationTally.keyIDsKept)
        // The next minute's group is still open; closing everything (shutdown) writes it.
        #expect(tally.attemptCount == 1)
        let rest = tally.closeAll()
        #expect(try rest.map { try Self.payload($0)["minute"] as? String } == ["2026-12-02T10:12Z"])
    }

    @Test("graceful shutdown writes the counts of the minute still open")
    func countsFlushedOnShutdown() async throws {
        let sink = Sink()
        let clock = WallClock()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), interval: .seconds(60), now: clock.now)
        for i in 0..<3 { recorder.count(try #require(recorder.reserve()), Self.unknownKey(i, at: clock.now())) }
        try await Self.runUntilGracefulShutdown(recorder)
        let records = await sink.batches.flatMap { $0 }
        #expect(try records.map { try Self.payload($0)["count"] as? Int } == [3])
    }
}
