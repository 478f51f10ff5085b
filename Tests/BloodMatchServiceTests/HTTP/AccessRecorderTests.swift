import BloodMatchService
import BloodMatchStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The access recorder on its own: batches, refusal when it cannot write, flush at shutdown, the
/// arrival time kept through an outage.
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
        let group = ServiceGroup(configuration: .init(services: [recorder], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(100))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(await sink.count == 25)
    }

    @Test("a record queued while the database refuses writes keeps the time its request arrived, not the time it is written")
    func requestedAtSurvivesAnOutage() async throws {
        let sink = Sink()
        let clock = WallClock()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"))
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
}
