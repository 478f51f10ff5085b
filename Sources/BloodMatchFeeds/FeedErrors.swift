import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// A feed address that cannot be fetched as given: a usage error (exit 2) naming it.
public struct FeedAddressError: Error, CustomStringConvertible {
    /// The `--url` value.
    public var address: String
    /// What is wrong with it.
    public var problem: String
    public var description: String { "--url '\(address)' \(problem)" }
}

/// This host failed a fetch or a spool move (a folder it cannot create, a file it cannot write or
/// rename): not the feed's fault, never tried again. The message names the path and the reason.
public struct FeedFileSystemError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A feed that could not be fetched. Recorded as an import run with the outcome `fetch_failed`.
///
/// Unreachable (exit 4: the feed may answer later) or refused (exit 3: a person must look,
/// because trying again cannot help): a certificate that does not verify, credentials the feed
/// refuses, a body over the size cap, an index document that names no snapshot.
public struct FeedFetchError: Error, CustomStringConvertible {
    /// Whether trying later may help.
    public enum Kind: Sendable { case unreachable, refused }

    /// The feed's address as given on the command line (it carries no credentials).
    public var feed: String
    /// The file that failed (`NAME.csv`, `NAME.ctl.json` or the index document).
    public var file: String
    /// Unreachable (try later) or refused (a person must look).
    public var kind: Kind
    /// Why, in words that name the offending value (the certificate problem, the HTTP status, …).
    public var reason: String
    /// The centre its control record named, when the control record arrived before the failure.
    public var centre: String?

    public var description: String {
        switch kind {
        case .unreachable: "feed \(feed) unreachable: \(reason)"
        case .refused: "feed \(feed) refused: \(reason)"
        }
    }
}

/// How one try at one file failed, and whether another try may help.
struct FeedAttemptFailure: Error, CustomStringConvertible {
    enum Kind: Sendable {
        /// Connection refused or reset, a timeout, HTTP 5xx or 429: tried again.
        case transient
        /// Not found, a protocol error, any other failure: not tried again, reported unreachable.
        case unreachable
        /// The certificate does not verify (either side), credentials refused, over the size cap.
        case refused
        /// The server's certificate did not verify; `certificateProblem` says why once diagnosed.
        case certificate
    }
    var kind: Kind
    var reason: String
    var description: String { reason }
}

enum FeedFailureClassifier {
    /// Classifies an error thrown while connecting, sending or reading one response.
    static func classify(_ error: any Error) -> FeedAttemptFailure {
        if let failure = error as? FeedAttemptFailure { return failure }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .writeTimeout, .remoteConnectionClosed, .tlsHandshakeTimeout,
                 .getConnectionFromPoolTimeout, .uncleanShutdown, .deadlineExceeded:
                return .init(kind: .transient, reason: describe(httpClientError: error))
            default:
                return .init(kind: .unreachable, reason: describe(httpClientError: error))
            }
        }
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return .init(kind: .certificate, reason: "certificate name mismatch: \(error)")
        }
        if error is NIOSSLError || error is BoringSSLError {
            let text = sslReasons(error)
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return .init(kind: .certificate, reason: "the server's certificate does not verify")
            }
            // The server's alerts about our own certificate: none sent, or one it does not trust.
            for (marker, reason) in [("CERTIFICATE_REQUIRED", "the feed requires a client certificate and none was accepted"),
                                     ("UNKNOWN_CA", "the feed does not trust the client certificate (unknown CA)"),
                                     ("BAD_CERTIFICATE", "the feed refused the client certificate (bad certificate)"),
                                     ("CERTIFICATE_EXPIRED", "the feed refused the client certificate (expired)"),
                                     ("HANDSHAKE_FAILURE", "the TLS handshake was refused (a client certificate may be required)")]
            where text.contains(marker) {
                return .init(kind: .refused, reason: "certificate problem: \(reason)")
            }
            if case .uncleanShutdown? = error as? NIOSSLError {
                return .init(kind: .transient, reason: "connection closed mid-answer (unclean TLS shutdown)")
            }
            return .init(kind: .unreachable, reason: "TLS: \(text)")
        }
        if let error = error as? IOError {
            return transientIf(errno: error.errnoCode, "\(String(cString: strerror(error.errnoCode))) (errno \(error.errnoCode))")
        }
        if let error = error as? NIOConnectionError {
            let errnos = error.connectionErrors.compactMap { ($0.error as? IOError)?.errnoCode }
            return transientIf(errno: errnos.first ?? ECONNREFUSED, "cannot connect: \(errnos.map { String(cString: strerror($0)) }.first ?? String(describing: error))")
        }
        if error is ChannelError {
            return .init(kind: .transient, reason: "connection failed: \(error)")
        }
        return .init(kind: .unreachable, reason: String(describing: error))
    }

    /// The HTTP status of an answer other than 200: refused credentials, transient or not found.
    static func classify(status: Int, phrase: String) -> FeedAttemptFailure {
        let reason = "HTTP \(status) \(phrase)".trimmingCharacters(in: .whitespaces)
        switch status {
        case 401, 403: return .init(kind: .refused, reason: "\(reason): the feed refused the credentials")
        case 429, 500...599: return .init(kind: .transient, reason: reason)
        case 300...399: return .init(kind: .unreachable, reason: "\(reason) (redirects are not followed; give the final address)")
        default: return .init(kind: .unreachable, reason: reason)
        }
    }

    /// BoringSSL's reason codes in a TLS error (`TLSV1_ALERT_CERTIFICATE_REQUIRED`, …), without
    /// the library's source paths; the whole description when it has none.
    private static func sslReasons(_ error: any Error) -> String {
        let text = String(describing: error)
        let reasons = text.components(separatedBy: "OPENSSL_internal:").dropFirst()
            .map { $0.prefix { $0.isLetter || $0.isNumber || $0 == "_" } }
            .filter { !$0.isEmpty }
        return reasons.isEmpty ? text : reasons.joined(separator: ", ")
    }

    private static func transientIf(errno code: Int32, _ text: String) -> FeedAttemptFailure {
        let transient: Set<Int32> = [ECONNREFUSED, ECONNRESET, ECONNABORTED, EPIPE, ETIMEDOUT, ENETUNREACH, EHOSTUNREACH, EAGAIN]
        return .init(kind: transient.contains(code) ? .transient : .unreachable, reason: text)
    }

    private static func describe(httpClientError error: HTTPClientError) -> String {
        switch error {
        case .connectTimeout: "connection timed out"
        case .readTimeout: "no byte for longer than the read timeout"
        case .remoteConnectionClosed: "the server closed the connection mid-answer"
        case .tlsHandshakeTimeout: "TLS handshake timed out"
        default: String(describing: error)
        }
    }
}
