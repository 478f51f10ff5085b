import BloodMatchCore
import BloodMatchIngest
import Foundation
import Testing

/// The expected outcome stored beside each corpus case (see Fixtures/corpus/README.md).
struct CorpusExpectation: Decodable {
    struct ExpectedRejection: Decodable, CustomStringConvertible {
        var line: Int
        var field: String?
        var reason: String
        var message_contains: String
        var description: String { "\(line) \(field ?? "-") \(reason) ~\(message_contains)" }
    }

    struct ExpectedFileError: Decodable {
        var kind: String
        var file: String
        var line: Int?
        var field: String?
        var message_contains: String
    }

    var now: String
    var title: String
    var outcome: String
    var accepted: Int?
    var rejected: Int?
    var verdict: String?
    var rejections: [ExpectedRejection]?
    var expired_at_as_of: Int?
    var bom_skipped: Bool?
    var file_error: ExpectedFileError?
}

/// The outcome of one decoding run, comparable across chunk sizes.
enum CorpusOutcome: Equatable {
    case decoded(rows: [DecodedRow], summary: SnapshotSummary)
    case failed(SnapshotFileError)
}

enum Corpus {
    static let folder: URL? = Bundle.module.url(forResource: "corpus", withExtension: nil, subdirectory: "Fixtures")

    static let caseNames: [String] = {
        guard let folder, let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.filter { !$0.hasSuffix(".md") }.sorted()
    }()

    static func read(_ name: String, _ file: String) throws -> Data {
        let folder = try #require(folder)
        return try Data(contentsOf: folder.appendingPathComponent(name).appendingPathComponent(file))
    }

    static func instant(_ text: String) throws -> Date {
        Date(timeIntervalSince1970: try ISO8601Timestamp.secondsSince1970(text))
    }

    /// Decodes the case's control record and CSV, feeding the CSV in chunks of `chunkSize` bytes
    /// (nil: all at once).
    static func run(_ name: String, now: Date, chunkSize: Int?) throws -> CorpusOutcome {
        let controlBytes = try read(name, "inventory.ctl.json")
        let csv = [UInt8](try read(name, "inventory.csv"))
        let control: SnapshotControl
        do {
            control = try SnapshotControl.decode(controlBytes, fileName: "inventory.ctl.json")
        } catch {
            return .failed(error)
        }
        var decoder = InventorySnapshotDecoder(fileName: "inventory.csv", control: control, now: now)
        var rows: [DecodedRow] = []
        do {
            var offset = 0
            let size = chunkSize ?? max(csv.count, 1)
            while offset < csv.count {
                let end = min(offset + size, csv.count)
                rows += try decoder.consume(csv[offset..<end])
                offset = end
            }
            let completion = try decoder.finish()
            rows += completion.rows
            return .decoded(rows: rows, summary: completion.summary)
        } catch {
            return .failed(error)
        }
    }
}

@Suite("Inventory snapshot bad-input corpus")
struct InventorySnapshotCorpusTests {
    @Test("the corpus holds at least 45 cases")
    func corpusIsComplete() {
        #expect(Corpus.caseNames.count >= 45)
    }

    @Test("each case decodes exactly as its expect.json says", arguments: Corpus.caseNames)
    func caseMatchesExpectation(name: String) throws {
        let expectation = try JSONDecoder().decode(CorpusExpectation.self, from: Corpus.read(name, "expect.json"))
        let now = try Corpus.instant(expectation.now)
        let outcome = try Corpus.run(name, now: now, chunkSize: nil)

        switch (expectation.outcome, outcome) {
        case ("decoded", .decoded(let rows, let summary)):
            #expect(summary.acceptedCount == expectation.accepted, "\(expectation.title)")
            #expect(summary.rejectedCount == expectation.rejected)
            #expect(rows.count == summary.rowCount)
            let rejections = rows.compactMap { row -> RowRejection? in
                if case .rejected(let rejection) = row { return rejection }
                return nil
            }
            let expected = expectation.rejections ?? []
            #expect(rejections.count == expected.count, "got \(rejections.map(\.description))")
            for (got, want) in zip(rejections, expected) {
                #expect(got.line == want.line, "\(got)")
                #expect(got.field == want.field, "\(got)")
                #expect(got.reason.rawValue == want.reason, "\(got)")
                #expect(got.message.contains(want.message_contains) || got.value.contains(want.message_contains), "\(got) lacks '\(want.message_contains)'")
                #expect(got.file == "inventory.csv")
            }
            let verdict = RejectionPolicy.standard.verdict(for: summary)
            switch (expectation.verdict, verdict) {
            case ("load", .load), ("refuse", .refuse): break
            default: Issue.record("verdict \(verdict) but expected \(expectation.verdict ?? "nil")")
            }
            if let expired = expectation.expired_at_as_of { #expect(summary.expiredAtAsOfCount == expired) }
            #expect(summary.byteOrderMarkSkipped == (expectation.bom_skipped ?? false))
        case ("file_error", .failed(let error)):
            let want = try #require(expectation.file_error)
            #expect(error.kind.rawValue == want.kind, "\(error)")
            #expect(error.file == want.file, "\(error)")
            #expect(error.line == want.line, "\(error)")
            #expect(error.field == want.field, "\(error)")
            #expect(error.message.contains(want.message_contains), "\(error) lacks '\(want.message_contains)'")
            #expect(RejectionPolicy.standard.verdict(for: error) == .refuse(.fileError(error)))
        default:
            Issue.record("\(name): expected \(expectation.outcome), got \(outcome)")
        }
    }

    @Test("chunk boundaries never change the outcome", arguments: Corpus.caseNames)
    func chunkingIsInvisible(name: String) throws {
        let expectation = try JSONDecoder().decode(CorpusExpectation.self, from: Corpus.read(name, "expect.json"))
        let now = try Corpus.instant(expectation.now)
        let whole = try Corpus.run(name, now: now, chunkSize: nil)
        for size in [1, 7, 64] {
            let chunked = try Corpus.run(name, now: now, chunkSize: size)
            #expect(chunked == whole, "chunk size \(size)")
        }
    }
}
