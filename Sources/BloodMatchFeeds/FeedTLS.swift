import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// TLS for feeds: the server's certificate is always verified (system roots, or the CA file), the
/// client presents its certificate when one is configured, and a certificate that does not verify
/// is diagnosed so the report names the problem (expired, unknown CA, name mismatch).
enum FeedTLS {
    /// The client configuration for `settings`.
    static func configuration(_ settings: FeedSettings) throws(FeedSettingsError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        // A closed fetch (the deadline, a refused body) waits at most this long for the server's
        // close_notify; a server busy dripping its body never sends one (the default is 5 s).
        tls.shutdownTimeout = .milliseconds(500)
        if let ca = settings.caFile {
            tls.trustRoots = .file(ca)
        }
        if let certificate = settings.clientCertificateFile, let key = settings.clientKeyFile {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            } catch {
                throw FeedSettingsError(setting: "--client-cert / BLOODMATCH_FEED_CLIENT_CERT", value: certificate, problem: "is not a PEM certificate (\(error))")
            }
            do {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw FeedSettingsError(setting: "--client-key / BLOODMATCH_FEED_CLIENT_KEY", value: key, problem: "is not an unencrypted PEM private key")
            }
        }
        return tls
    }

    /// Why the certificate of `host:port` does not verify, in words for the report.
    ///
    /// TLS says only that verification failed; this looks at the chain the server presents (one
    /// short extra connection that sends nothing) and names what is wrong with it: a certificate
    /// past its end or before its start, otherwise an issuer that is not trusted. With
    /// `nameMismatch` the chain verified but does not name `host`.
    static func diagnose(host: String, port: Int, nameMismatch: Bool, now: Date = Date(), timeout: TimeAmount = .seconds(5)) async -> String {
        let chain = await peerChain(host: host, port: port, timeout: timeout)
        guard let chain, let leaf = chain.first else {
            return nameMismatch ? "certificate name mismatch: the server's certificate does not name \(host)"
                                : "the server's certificate does not verify (unknown CA or expired; the chain could not be read again to tell which)"
        }
        let epoch = now.timeIntervalSince1970
        for (index, certificate) in chain.enumerated() {
            let which = index == 0 ? "the server's certificate" : "the certificate of its issuer"
            if Double(certificate.notValidAfter) < epoch {
                return "certificate expired: \(which) (\(name(certificate.subjectName))) expired on \(iso(certificate.notValidAfter))"
            }
            if Double(certificate.notValidBefore) > epoch {
                return "certificate not yet valid: \(which) (\(name(certificate.subjectName))) is valid from \(iso(certificate.notValidBefore))"
            }
        }
        if nameMismatch {
            return "certificate name mismatch: the server's certificate (\(name(leaf.subjectName))) is not valid for \(host) (not among its subject alternative names)"
        }
        let issuer = name(chain.last?.issuerName ?? leaf.issuerName)
        if chain.count == 1 && leaf.subjectName == leaf.issuerName {
            return "unknown CA: the server's certificate (\(name(leaf.subjectName))) is self-signed and not trusted (system roots, or BLOODMATCH_FEED_CA_FILE)"
        }
        return "unknown CA: the server's certificate (\(name(leaf.subjectName))) is issued by \(issuer), which is not trusted (system roots, or BLOODMATCH_FEED_CA_FILE)"
    }

    /// The certificates `host:port` presents (leaf first), or nil when they cannot be read.
    private static func peerChain(host: String, port: Int, timeout: TimeAmount) async -> [NIOSSLCertificate]? {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification   // the custom callback below replaces verification
        guard let context = try? NIOSSLContext(configuration: tls) else { return nil }
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.any().makePromise(of: [NIOSSLCertificate].self)
        let isAddress = (try? SocketAddress(ipAddress: host, port: port)) != nil
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host,
                                                          customVerificationCallback: { chain, verdict in
                        promise.succeed(chain)
                        verdict.succeed(.failed)   // only the chain was wanted: end the handshake here
                    })
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let timer = group.any().scheduleTask(in: timeout) { promise.fail(ChannelError.connectTimeout(timeout)) }
        do {
            let channel = try await bootstrap.connect(host: host, port: port).get()
            defer { channel.close(promise: nil) }
            let chain = try await promise.futureResult.get()
            timer.cancel()
            return chain
        } catch {
            timer.cancel()
            promise.fail(error)
            return nil
        }
    }

    private static func name(_ parts: [SSLCertificateName]) -> String {
        let labels: [(SSLCertificateNameType, String)] = [(.commonName, "CN"), (.organization, "O"), (.organizationalUnit, "OU"),
                                                          (.country, "C"), (.state, "ST"), (.city, "L")]
        let text = parts.compactMap { part in labels.first { $0.0 == part.type }.map { "\($0.1)=\(part.value)" } }.joined(separator: ", ")
        return text.isEmpty ? "no subject" : "'\(text)'"
    }

    private static func iso(_ time: time_t) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(time)))
    }
}
