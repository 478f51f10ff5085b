import AsyncHTTPClient
import BloodMatchStore
import Foundation
import Logging
import NIOCore
import NIOSSL

/// A feed could not be fetched; the scheduler sees exit code 4.
struct FeedUnreachableError: Error, CustomStringConvertible, ClassifiedError {
    var url: String
    var reason: String
    var description: String { "feed \(url) unreachable: \(reason)" }
    var exitStatus: ExitStatus { .feedUnreachable }
}

/// Fetches a snapshot pair over HTTPS: the control record first, then the CSV, each with a
/// deadline, retries with exponential backoff, and a size cap; the certificate is always verified
/// (against the system roots, or `BLOODMATCH_FEED_CA_FILE` when set).
struct FeedFetcher {
    var logger: Logger
    var attempts = 3
    var timeout: TimeAmount = .seconds(20)
    var maximumBytes = 512 * 1024 * 1024

    /// Downloads `URL` (ending `.csv`) and its `.ctl.json` into `var/feeds/` and returns the source.
    func fetchSnapshot(csvURL: String) async throws -> SnapshotSource {
        guard let url = URL(string: csvURL), url.scheme == "https", url.host != nil else {
            throw ValidationFailure("--url '\(csvURL)' must be an https:// address of a snapshot .csv")
        }
        guard url.lastPathComponent.hasSuffix(".csv"), SpoolFolder.isSafe(url.lastPathComponent) else {
            throw ValidationFailure("--url '\(csvURL)' must end in a snapshot file name NAME.csv of [A-Za-z0-9._-]")
        }
        let name = url.lastPathComponent
        let controlURL = url.deletingLastPathComponent().appendingPathComponent(String(name.dropLast(4)) + ".ctl.json")
        let folder = URL(fileURLWithPath: "var/feeds/\(url.host ?? "feed")-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        if let ca = ProcessInfo.processInfo.environment["BLOODMATCH_FEED_CA_FILE"], !ca.isEmpty {
            tls.trustRoots = .file(ca)
        }
        var config = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                              timeout: .init(connect: .seconds(10), read: timeout))
        config.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        do {
            // Control record first: it names what the CSV must hash to.
            try await download(controlURL.absoluteString, to: folder.appendingPathComponent(controlURL.lastPathComponent), client: client, cap: 64 * 1024)
            try await download(url.absoluteString, to: folder.appendingPathComponent(name), client: client, cap: maximumBytes)
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
        return SnapshotSource(csvPath: folder.appendingPathComponent(name).path, origin: csvURL)
    }

    private func download(_ address: String, to file: URL, client: HTTPClient, cap: Int) async throws {
        var lastError = "no attempt made"
        for attempt in 1...attempts {
            do {
                var request = HTTPClientRequest(url: address)
                request.method = .GET
                let response = try await client.execute(request, timeout: timeout)
                guard response.status == .ok else {
                    lastError = "HTTP \(response.status.code)"
                    if (400..<500).contains(Int(response.status.code)) && response.status.code != 429 { break }
                    throw FeedUnreachableError(url: address, reason: lastError)
                }
                if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > cap {
                    throw ValidationFailure("\(address): \(length) bytes is over the \(cap)-byte limit; refused")
                }
                var data = Data()
                for try await buffer in response.body {
                    data.append(contentsOf: buffer.readableBytesView)
                    if data.count > cap { throw ValidationFailure("\(address): over the \(cap)-byte limit; refused") }
                }
                try data.write(to: file)
                return
            } catch let error as ValidationFailure {
                throw error
            } catch {
                lastError = String(describing: error)
                logger.warning("feed fetch failed", metadata: ["url": "\(address)", "attempt": "\(attempt)", "error": "\(lastError)"])
                if attempt < attempts { try await Task.sleep(for: .milliseconds(500 * (1 << (attempt - 1)))) }
            }
        }
        throw FeedUnreachableError(url: address, reason: lastError)
    }
}
