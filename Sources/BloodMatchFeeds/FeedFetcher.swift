import AsyncHTTPClient
import BloodMatchIngest
import BloodMatchStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// A snapshot fetched into a folder of its own; `remove()` deletes the copies after the import.
public struct FetchedSnapshot: Sendable {
    /// The CSV and control record on disk; `origin` is the feed address as given.
    public var source: SnapshotSource
    /// The fetch folder under `var/feeds/`.
    public var folder: FetchFolder
    /// Set when the control record named the centre's snapshot in force: the CSV was not fetched.
    public var alreadyInForce: (control: SnapshotControl, snapshotID: Int64)?

    /// Deletes the fetched copies (the database holds what was imported and how it ended).
    public func remove() { folder.remove() }
}

/// Fetches a snapshot pair over HTTPS into its own folder under `var/feeds/`.
///
/// The address names the snapshot (`…/NAME.csv`, or a FHIR Bundle `…/NAME.fhir.json`:
/// `NAME.ctl.json` is fetched from beside it), or an index document (`…/NAME.json`, e.g.
/// `latest.json`) that names the feed's newest snapshot: `{"snapshot": "NAME.csv"}` (or a Bundle
/// `NAME.json`), a file in the index's own folder. The control record comes first,
/// then the CSV, streamed to a temporary file with the size cap enforced as it arrives, unless the
/// control record names the centre's snapshot in force (a feed polled again: `inForce`). The whole
/// fetch has one deadline; only transient failures (connection refused or reset, timeouts, HTTP
/// 5xx and 429) are tried again. The server's certificate is always verified; a bearer token and a
/// client certificate are presented when configured and never appear in a log line or an error.
public struct FeedFetcher: Sendable {
    /// How to fetch: deadline, retries, size caps, TLS and credentials.
    public var settings: FeedSettings
    public var logger: Logger

    public init(settings: FeedSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// What `--url` names.
    public enum Address: Sendable {
        case snapshot(csv: URL)
        case index(URL)
    }

    /// Parses and checks a `--url` value.
    public static func address(_ text: String) throws(FeedAddressError) -> Address {
        guard let url = URL(string: text), url.scheme == "https", let host = url.host, !host.isEmpty else {
            throw FeedAddressError(address: text, problem: "must be an https:// address of a snapshot NAME.csv, a FHIR Bundle NAME.fhir.json, or an index NAME.json")
        }
        guard url.user == nil, url.password == nil else {
            throw FeedAddressError(address: "https://…@\(host)…", problem: "carries credentials, which would be logged and recorded; use --bearer-token-file or a client certificate")
        }
        let name = url.lastPathComponent
        guard SpoolFolder.isSafe(name) else {
            throw FeedAddressError(address: text, problem: "must end in a file name of [A-Za-z0-9._-]")
        }
        if name.hasSuffix(".csv") || name.hasSuffix(".fhir.json") { return .snapshot(csv: url) }
        if name.hasSuffix(".json") && !name.hasSuffix(".ctl.json") { return .index(url) }
        throw FeedAddressError(address: text, problem: "must name a snapshot NAME.csv, a FHIR Bundle NAME.fhir.json, or an index document NAME.json (such as latest.json)")
    }

    /// Fetches the snapshot `address` names. On failure nothing is left on disk.
    /// `inForce` answers whether a control record names the centre's snapshot in force (its id),
    /// nil when not or when it cannot tell; then the CSV is not fetched.
    public func fetchSnapshot(_ feed: String, inForce: @escaping @Sendable (SnapshotControl) async -> Int64? = { _ in nil }) async throws -> FetchedSnapshot {
        let address = try Self.address(feed)
        var config = HTTPClient.Configuration(
            tlsConfiguration: try FeedTLS.configuration(settings), redirectConfiguration: .disallow,
            timeout: .init(connect: .nanoseconds(Int64(settings.connectTimeout / .nanoseconds(1))),
                           read: .nanoseconds(Int64(settings.readTimeout / .nanoseconds(1)))))
        config.httpVersion = .http1Only
        config.connectionPool.retryConnectionEstablishment = false   // retries are ours, and counted

        let root = URL(fileURLWithPath: settings.folder)
        FetchFolder.removeAbandoned(under: root, logger: logger)
        let host: String
        switch address { case .snapshot(let url), .index(let url): host = url.host ?? "feed" }
        let fetchFolder = try FetchFolder(root: root, prefix: host)
        let folder = fetchFolder.url
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        let progress = FetchProgress()
        do {
            let (source, inForce) = try await withDeadlineAwaitingCancellation(settings.deadline) {
                try await self.fetch(address, feed: feed, into: folder, client: client, progress: progress, inForce: inForce)
            }
            try? await client.shutdown()
            return FetchedSnapshot(source: source, folder: fetchFolder, alreadyInForce: inForce)
        } catch {
            try? await client.shutdown()
            fetchFolder.remove()
            let file = await progress.file ?? ""
            let centre = await progress.centre
            if error is DeadlineExceededError {
                throw FeedFetchError(feed: feed, file: file, kind: .unreachable,
                                     reason: "no complete answer within \(settings.deadline.components.seconds) s", centre: centre)
            }
            if var failure = error as? FeedFetchError {
                failure.centre = failure.centre ?? centre
                throw failure
            }
            throw error
        }
    }

    /// What a fetch had reached when it failed: the file it was on and the centre its control record names.
    private actor FetchProgress {
        var file: String?
        var centre: String?
        func set(file: String) { self.file = file }
        func set(centre: String) { self.centre = centre }
    }

    private func fetch(_ address: Address, feed: String, into folder: URL, client: HTTPClient, progress: FetchProgress,
                       inForce: @Sendable (SnapshotControl) async -> Int64?) async throws -> (SnapshotSource, (control: SnapshotControl, snapshotID: Int64)?) {
        let csvURL: URL
        switch address {
        case .snapshot(let url):
            csvURL = url
        case .index(let url):
            await progress.set(file: url.lastPathComponent)
            let indexFile = folder.appendingPathComponent("index.json")
            try await download(url, to: indexFile, cap: settings.maximumSmallFileBytes, feed: feed, client: client)
            let name = try Self.snapshotName(inIndex: indexFile, feed: feed, indexName: url.lastPathComponent)
            logger.info("feed index names its latest snapshot", metadata: ["url": "\(url.absoluteString)", "snapshot": "\(name)"])
            csvURL = url.deletingLastPathComponent().appendingPathComponent(name)
        }
        let name = csvURL.lastPathComponent
        let controlName = SnapshotControl.controlFileName(forSnapshot: name)
        let controlURL = csvURL.deletingLastPathComponent().appendingPathComponent(controlName)
        // Control record first: it names what the CSV must hash to, and the centre.
        await progress.set(file: controlName)
        let controlFile = folder.appendingPathComponent(controlName)
        try await download(controlURL, to: controlFile, cap: settings.maximumSmallFileBytes, feed: feed, client: client)
        let csvFile = folder.appendingPathComponent(name)
        if let bytes = try? Data(contentsOf: controlFile), let control = try? SnapshotControl.decode(bytes, fileName: controlName) {
            await progress.set(centre: control.centre)
            if let snapshotID = await inForce(control) {
                logger.info("feed's control record names the snapshot in force; its CSV is not fetched again",
                            metadata: ["url": "\(csvURL.absoluteString)", "centre": "\(control.centre)", "snapshot_id": "\(snapshotID)"])
                return (SnapshotSource(csvPath: csvFile.path, origin: feed), (control, snapshotID))
            }
        }
        await progress.set(file: name)
        try await download(csvURL, to: csvFile, cap: settings.maximumBytes, feed: feed, client: client)
        return (SnapshotSource(csvPath: csvFile.path, origin: feed), nil)
    }

    /// The snapshot an index document names: `{"snapshot": "NAME.csv"}`, a safe file name.
    public static func snapshotName(inIndex file: URL, feed: String, indexName: String) throws(FeedFetchError) -> String {
        struct Index: Decodable { var snapshot: String }
        guard let data = try? Data(contentsOf: file), let index = try? JSONDecoder().decode(Index.self, from: data) else {
            throw FeedFetchError(feed: feed, file: indexName, kind: .refused,
                                 reason: "index document \(indexName) is not JSON of the form {\"snapshot\": \"NAME.csv\"}")
        }
        guard SpoolFolder.isSnapshotName(index.snapshot), SpoolFolder.isSafe(index.snapshot) else {
            throw FeedFetchError(feed: feed, file: indexName, kind: .refused,
                                 reason: "index document \(indexName) names '\(index.snapshot.prefix(200))', not a snapshot file (NAME.csv or a FHIR Bundle NAME.json) of [A-Za-z0-9._-] beside it")
        }
        return index.snapshot
    }

    /// Downloads one file, trying again after transient failures while the deadline allows.
    private func download(_ url: URL, to file: URL, cap: Int, feed: String, client: HTTPClient) async throws {
        for attempt in 1...settings.attempts {
            do {
                try await downloadOnce(url, to: file, cap: cap, client: client)
                return
            } catch let error as CancellationError {
                throw error
            } catch let error as FeedFileSystemError {
                throw error   // this host's disk, not the feed
            } catch {
                var failure = FeedFailureClassifier.classify(error)
                if failure.kind == .certificate {
                    let mismatch = failure.reason.hasPrefix("certificate name mismatch")
                    failure.reason = await FeedTLS.diagnose(host: url.host ?? "", port: url.port ?? 443, nameMismatch: mismatch)
                }
                logger.warning("feed fetch failed", metadata: [
                    "url": "\(url.absoluteString)", "attempt": "\(attempt)", "error": "\(failure.reason)",
                    "retry": "\(failure.kind == .transient && attempt < settings.attempts)",
                ])
                switch failure.kind {
                case .transient where attempt < settings.attempts:
                    try await Task.sleep(for: settings.backoff * (1 << (attempt - 1)))
                case .transient, .unreachable:
                    throw FeedFetchError(feed: feed, file: url.lastPathComponent, kind: .unreachable,
                                         reason: attempt > 1 ? "\(failure.reason) (after \(attempt) tries)" : failure.reason)
                case .refused, .certificate:
                    throw FeedFetchError(feed: feed, file: url.lastPathComponent, kind: .refused, reason: failure.reason)
                }
            }
        }
    }

    /// One GET, its body streamed to `file`'s temporary name and renamed into place when complete.
    private func downloadOnce(_ url: URL, to file: URL, cap: Int, client: HTTPClient) async throws {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        if let token = settings.bearerToken {
            request.headers.add(name: "Authorization", value: "Bearer " + token.secret)
        }
        let response = try await client.execute(request, timeout: .seconds(Int64(settings.deadline.components.seconds)))
        guard response.status == .ok else {
            throw FeedFailureClassifier.classify(status: Int(response.status.code), phrase: response.status.reasonPhrase)
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > cap {
            throw FeedAttemptFailure(kind: .refused, reason: "\(url.lastPathComponent): the feed announces \(length) bytes, over the limit of \(cap) bytes")
        }
        let part = PartFile(final: file)
        do {
            try part.open()
            var total = 0
            for try await buffer in response.body {
                total += buffer.readableBytes
                if total > cap {
                    throw FeedAttemptFailure(kind: .refused, reason: "\(url.lastPathComponent): over the limit of \(cap) bytes while arriving; refused, and the partial copy deleted")
                }
                try part.write(buffer)
            }
            try part.finish()
        } catch {
            part.discard()
            throw error
        }
    }
}

/// A file written through `NAME.part` and renamed into place when complete; removed on failure.
private final class PartFile {
    let final: URL
    let path: String
    private var descriptor: Int32 = -1

    init(final: URL) {
        self.final = final
        self.path = final.path + ".part"
    }

    func open() throws {
        descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure("cannot create") }
    }

    func write(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw failure("cannot write")
                }
                offset += written
            }
        }
    }

    func finish() throws {
        guard Glibc.close(descriptor) == 0 else { descriptor = -1; throw failure("cannot write") }
        descriptor = -1
        guard rename(path, final.path) == 0 else { throw failure("cannot rename") }
    }

    func discard() {
        if descriptor >= 0 { _ = Glibc.close(descriptor); descriptor = -1 }
        unlink(path)
    }

    private func failure(_ what: String) -> FeedFileSystemError {
        FeedFileSystemError("\(what) \(path): \(String(cString: strerror(errno))); nothing was imported")
    }
}
