import Foundation

/// How `import --url` fetches feeds, read once at the edge from the command line and the
/// environment (an option wins over its variable).
///
/// | option | environment | meaning | default |
/// |---|---|---|---|
/// | `--fetch-deadline S` | `BLOODMATCH_FEED_DEADLINE` | seconds for one snapshot's whole fetch: index, control record and CSV, every retry included | 120 |
/// | `--bearer-token-file F` | `BLOODMATCH_FEED_TOKEN_FILE` | a file holding the token sent as `Authorization: Bearer …` | none |
/// | `--client-cert F` | `BLOODMATCH_FEED_CLIENT_CERT` | PEM certificate (chain) presented to the feed (mutual TLS) | none |
/// | `--client-key F` | `BLOODMATCH_FEED_CLIENT_KEY` | its PEM private key | none |
/// | — | `BLOODMATCH_FEED_CA_FILE` | an extra trusted CA (PEM) for the feed's certificate | the system roots |
public struct FeedSettings: Sendable {
    /// The feed variables of the environment, read once at the edge by the caller.
    public struct Environment: Sendable {
        public var caFile: String?
        public var deadline: String?
        public var tokenFile: String?
        public var clientCertificate: String?
        public var clientKey: String?
        public init(caFile: String? = nil, deadline: String? = nil, tokenFile: String? = nil,
                    clientCertificate: String? = nil, clientKey: String? = nil) {
            (self.caFile, self.deadline, self.tokenFile) = (caFile, deadline, tokenFile)
            (self.clientCertificate, self.clientKey) = (clientCertificate, clientKey)
        }
    }

    /// The whole fetch of one snapshot must end by then; a server that drips its body is cut off.
    public var deadline: Duration = .seconds(120)
    /// Longest silence between two reads of one response.
    public var readTimeout: Duration = .seconds(20)
    /// Longest wait for a connection.
    public var connectTimeout: Duration = .seconds(10)
    /// Tries per file; only transient failures are tried again.
    public var attempts = 3
    /// First pause between tries, doubled each time.
    public var backoff: Duration = .milliseconds(500)
    /// Size cap of a snapshot CSV, enforced while it streams to disk.
    public var maximumBytes = 512 * 1024 * 1024
    /// Size cap of a control record or an index document.
    public var maximumSmallFileBytes = 64 * 1024
    /// An extra trusted CA file, when set.
    public var caFile: String?
    /// The bearer token, when the feed wants one.
    public var bearerToken: BearerToken?
    /// The client certificate presented to the feed, with its key.
    public var clientCertificateFile: String?
    /// The client certificate's private key.
    public var clientKeyFile: String?
    /// Where each fetch gets a folder of its own, removed after the import (`FetchFolder`).
    public var folder = "var/feeds"

    /// Deadline bounds, seconds.
    public static let deadlineRange = 1...3600

    /// The defaults above.
    public init() {}

    /// The settings for this run: command-line values first, then the environment, then defaults.
    /// Reads the token file, so a bad one is refused before anything is fetched.
    public static func resolve(deadlineSeconds: Int?, tokenFile: String?, clientCertificate: String?, clientKey: String?,
                               environment: Environment) throws(FeedSettingsError) -> FeedSettings {
        var settings = FeedSettings()
        settings.caFile = environment.caFile
        if let text = deadlineSeconds.map(String.init) ?? environment.deadline {
            guard let seconds = Int(text), deadlineRange.contains(seconds) else {
                throw .init(setting: "--fetch-deadline / BLOODMATCH_FEED_DEADLINE", value: text,
                            problem: "must be a whole number of seconds from \(deadlineRange.lowerBound) to \(deadlineRange.upperBound)")
            }
            settings.deadline = .seconds(seconds)
        }
        if let file = tokenFile ?? environment.tokenFile {
            settings.bearerToken = try BearerToken(file: file)
        }
        settings.clientCertificateFile = clientCertificate ?? environment.clientCertificate
        settings.clientKeyFile = clientKey ?? environment.clientKey
        switch (settings.clientCertificateFile, settings.clientKeyFile) {
        case (nil, nil): break
        case (let certificate?, let key?):
            for (name, file) in [("--client-cert / BLOODMATCH_FEED_CLIENT_CERT", certificate), ("--client-key / BLOODMATCH_FEED_CLIENT_KEY", key)]
            where !FileManager.default.isReadableFile(atPath: file) {
                throw .init(setting: name, value: file, problem: "cannot be read")
            }
        case (let certificate, _):
            throw .init(setting: certificate == nil ? "--client-key / BLOODMATCH_FEED_CLIENT_KEY" : "--client-cert / BLOODMATCH_FEED_CLIENT_CERT",
                        value: certificate ?? settings.clientKeyFile ?? "", problem: "needs its pair: a client certificate and its key are given together")
        }
        return settings
    }
}

/// A feed setting that cannot be used; a usage error (exit 2) naming the setting and its value.
public struct FeedSettingsError: Error, CustomStringConvertible {
    /// The option or variable.
    public var setting: String
    /// Its value (a file name, never a secret).
    public var value: String
    /// What is wrong with it.
    public var problem: String
    public var description: String { "\(setting) '\(value)' \(problem)" }

    public init(setting: String, value: String, problem: String) {
        (self.setting, self.value, self.problem) = (setting, value, problem)
    }
}

/// A bearer token read from a file. It prints as the file's name only, so string interpolation in
/// a log line, an error or a run record can never reveal it.
public struct BearerToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The file it was read from.
    public let file: String
    /// The token itself: only ever placed in the `Authorization` header.
    let secret: String

    /// Reads the token: the file's first line, surrounding white space removed.
    public init(file: String) throws(FeedSettingsError) {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw FeedSettingsError(setting: "--bearer-token-file / BLOODMATCH_FEED_TOKEN_FILE", value: file, problem: "cannot be read")
        }
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        // Header-safe visible ASCII only (RFC 6750 b64token and a little more); nothing to split a header with.
        guard !token.isEmpty, token.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            throw FeedSettingsError(setting: "--bearer-token-file / BLOODMATCH_FEED_TOKEN_FILE", value: file,
                                    problem: "holds no usable token (its first line must be the token: visible ASCII, no spaces)")
        }
        self.file = file
        self.secret = token
    }

    public var description: String { "bearer token from \(file)" }
    public var debugDescription: String { description }
}
