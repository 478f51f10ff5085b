@testable import BloodMatchFeeds
import Foundation
import Testing

@Suite("Feed settings and credentials")
struct FeedSettingsTests {
    private static func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("feed-setting-\(UUID().uuidString)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("an option wins over its variable; a variable over the default")
    func precedence() throws {
        let environment = FeedSettings.Environment(caFile: "/etc/feed-ca.pem", deadline: "30")
        #expect(try FeedSettings.resolve(deadlineSeconds: nil, tokenFile: nil, clientCertificate: nil, clientKey: nil,
                                         environment: .init()).deadline == .seconds(120))
        let fromVariable = try FeedSettings.resolve(deadlineSeconds: nil, tokenFile: nil, clientCertificate: nil, clientKey: nil,
                                                    environment: environment)
        #expect(fromVariable.deadline == .seconds(30) && fromVariable.caFile == "/etc/feed-ca.pem")
        #expect(try FeedSettings.resolve(deadlineSeconds: 7, tokenFile: nil, clientCertificate: nil, clientKey: nil,
                                         environment: environment).deadline == .seconds(7))
    }

    @Test("a deadline out of range or not a number is refused, naming the setting and value", arguments: ["0", "3601", "ten", "-5"])
    func badDeadline(text: String) {
        do {
            _ = try FeedSettings.resolve(deadlineSeconds: nil, tokenFile: nil, clientCertificate: nil, clientKey: nil,
                                         environment: .init(deadline: text))
            Issue.record("deadline \(text) accepted")
        } catch {
            #expect(error.setting == "--fetch-deadline / BLOODMATCH_FEED_DEADLINE" && error.value == text)
        }
    }

    @Test("a client certificate needs its key, and both must be readable")
    func clientCertificatePair() throws {
        let certificate = try Self.file("-----BEGIN CERTIFICATE-----\n")
        defer { unlink(certificate) }
        do {
            _ = try FeedSettings.resolve(deadlineSeconds: nil, tokenFile: nil, clientCertificate: certificate, clientKey: nil, environment: .init())
            Issue.record("a certificate without its key was accepted")
        } catch {
            #expect(error.problem.contains("needs its pair"))
        }
        do {
            _ = try FeedSettings.resolve(deadlineSeconds: nil, tokenFile: nil, clientCertificate: certificate,
                                         clientKey: "/nonexistent/feed.key", environment: .init())
            Issue.record("an unreadable key was accepted")
        } catch {
            #expect(error.value == "/nonexistent/feed.key" && error.problem == "cannot be read")
        }
    }

    @Test("a bearer token is the file's first line; it never appears in a description")
    func bearerToken() throws {
        let path = try Self.file("  tok.en-123_ABC~+/=  \nsecond line\n")
        defer { unlink(path) }
        let token = try BearerToken(file: path)
        #expect(token.secret == "tok.en-123_ABC~+/=")
        #expect("\(token)" == "bearer token from \(path)" && !String(reflecting: token).contains("tok.en"))
        let settings = try FeedSettings.resolve(deadlineSeconds: nil, tokenFile: nil, clientCertificate: nil, clientKey: nil,
                                                environment: .init(tokenFile: path))
        #expect(settings.bearerToken?.secret == token.secret)
    }

    @Test("a token file that is empty, holds a space or a control character, or cannot be read is refused",
          arguments: ["", "\n", "two words\n", "tab\there\n", "caf\u{e9}\n"])
    func badToken(text: String) throws {
        let path = try Self.file(text)
        defer { unlink(path) }
        #expect(throws: FeedSettingsError.self) { try BearerToken(file: path) }
        #expect(throws: FeedSettingsError.self) { try BearerToken(file: path + ".missing") }
    }
}
