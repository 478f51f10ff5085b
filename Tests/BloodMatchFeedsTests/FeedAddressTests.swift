import BloodMatchFeeds
import Foundation
import Testing

@Suite("Feed addresses and index documents")
struct FeedAddressTests {
    @Test("an https address of NAME.csv or a FHIR Bundle NAME.fhir.json is a snapshot; of NAME.json an index")
    func accepted() throws {
        guard case .snapshot(let csv) = try FeedFetcher.address("https://feeds.example.org/centre-7/snap-2026.csv") else {
            Issue.record("a .csv address is not a snapshot")
            return
        }
        #expect(csv.lastPathComponent == "snap-2026.csv")
        guard case .index(let index) = try FeedFetcher.address("https://feeds.example.org:8443/centre-7/latest.json") else {
            Issue.record("a .json address is not an index")
            return
        }
        #expect(index.port == 8443)
        guard case .snapshot(let bundle) = try FeedFetcher.address("https://feeds.example.org/centre-7/snap-2026.fhir.json") else {
            Issue.record("a .fhir.json address is not a snapshot")
            return
        }
        #expect(bundle.lastPathComponent == "snap-2026.fhir.json")
    }

    @Test("refused addresses name what is wrong, and never repeat credentials", arguments: [
        ("http://feeds.example.org/a.csv", "must be an https:// address"),
        ("https:///a.csv", "must be an https:// address"),
        ("https://feeds.example.org/a.ctl.json", "must name a snapshot NAME.csv, a FHIR Bundle NAME.fhir.json, or an index document"),
        ("https://feeds.example.org/a.txt", "must name a snapshot NAME.csv, a FHIR Bundle NAME.fhir.json, or an index document"),
        ("https://feeds.example.org/..", "must end in a file name of [A-Za-z0-9._-]"),
        ("https://feeds.example.org/%E2%88%95etc.csv", "must end in a file name of [A-Za-z0-9._-]"),
        ("not a url", "must be an https:// address"),
    ])
    func refused(address: String, problem: String) {
        #expect(throws: FeedAddressError.self) { try FeedFetcher.address(address) }
        do {
            _ = try FeedFetcher.address(address)
        } catch {
            #expect(error.problem.hasPrefix(problem), "\(error.problem)")
            #expect(error.description.contains("--url"))
        }
    }

    @Test("an address carrying a user and password is refused without either in the message")
    func credentials() {
        do {
            _ = try FeedFetcher.address("https://feeduser:s3cret-pw@feeds.example.org/a.csv")
            Issue.record("an address with credentials was accepted")
        } catch {
            #expect(error.problem.contains("carries credentials"))
            #expect(!error.description.contains("s3cret-pw") && !error.description.contains("feeduser"))
        }
    }

    @Test("an index document names a snapshot beside it; anything else is refused, naming the index")
    func indexDocument() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("feed-index-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("index.json")
        func name(_ text: String) throws(FeedFetchError) -> String {
            try? Data(text.utf8).write(to: file)
            return try FeedFetcher.snapshotName(inIndex: file, feed: "https://f.example/latest.json", indexName: "latest.json")
        }
        #expect(try name(#"{"snapshot": "NB-2026-12-07T0800.csv"}"#) == "NB-2026-12-07T0800.csv")
        for (text, reason) in [
            ("not json", "is not JSON of the form"),
            (#"{"latest": "a.csv"}"#, "is not JSON of the form"),
            (#"{"snapshot": "../other/a.csv"}"#, "names '../other/a.csv', not a snapshot file"),
            (#"{"snapshot": "a.ctl.json"}"#, "names 'a.ctl.json', not a snapshot file"),
            (#"{"snapshot": "sub/a.csv"}"#, "names 'sub/a.csv', not a snapshot file"),
        ] {
            do {
                _ = try name(text)
                Issue.record("index \(text) was accepted")
            } catch {
                #expect(error.kind == .refused && error.file == "latest.json")
                #expect(error.reason.contains(reason), "\(error.reason)")
            }
        }
    }
}
