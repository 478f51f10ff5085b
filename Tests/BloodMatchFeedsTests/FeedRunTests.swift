import BloodMatchFeeds
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Fetching several feeds in one run")
struct FeedRunTests {
    /// A loopback port with nothing listening: bound, then closed.
    private static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test("a feed nobody answers is recorded unreachable after its tries, the next feed is still fetched, and no copy is left")
    func unreachableDoesNotStopTheOthers() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("feed-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var settings = FeedSettings()
        settings.folder = root.path
        settings.attempts = 2
        settings.backoff = .milliseconds(10)
        settings.deadline = .seconds(20)
        let port = try Self.closedPort()
        let feeds = ["https://127.0.0.1:\(port)/centre-a/latest.json", "https://127.0.0.1:\(port)/centre-b/snap.csv"]
        let run = try await FeedFetcher(settings: settings, logger: Logger(label: "test")).fetchAll(feeds)
        #expect(run.fetched.isEmpty)
        #expect(run.failures.map(\.error.feed) == feeds)
        #expect(run.failures.map(\.error.file) == ["latest.json", "snap.ctl.json"])
        for failure in run.failures {
            #expect(failure.error.kind == .unreachable)
            #expect(failure.error.reason.contains("after 2 tries"), "\(failure.error.reason)")
            #expect(failure.durationMs >= 0)
        }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] == [])
    }

    @Test("every address is checked before anything is fetched: one bad address stops the run at once")
    func addressesCheckedFirst() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("feed-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var settings = FeedSettings()
        settings.folder = root.path
        await #expect(throws: FeedAddressError.self) {
            _ = try await FeedFetcher(settings: settings, logger: Logger(label: "test"))
                .fetchAll(["https://127.0.0.1:1/a.csv", "ftp://example.org/b.csv"])
        }
        #expect(!FileManager.default.fileExists(atPath: root.path))
    }
}
