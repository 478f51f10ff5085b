import ArgumentParser
import BloodMatchStore
import Foundation

/// `bloodmatch hospital key create|list|revoke`: per-hospital API keys.
struct HospitalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hospital",
        abstract: "Manage hospitals' API access.",
        subcommands: [KeyCommand.self])

    struct KeyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "key",
            abstract: "Create, list and revoke hospital API keys (stored hashed; shown once).",
            subcommands: [Create.self, List.self, Revoke.self])
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key for a hospital and print it once.",
            discussion: "Example: bloodmatch hospital key create H0001 --label 'LIS integration' --expires-in-days 90")

        @Argument(help: "Hospital site id.") var hospital: String
        @Option(help: "Who the key is for.") var label: String = ""
        @Option(help: "Days until the key expires (1…730).") var expiresInDays: Int = 90
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            guard (1...730).contains(expiresInDays) else { throw ValidationError("--expires-in-days \(expiresInDays) is not 1…730") }
        }

        func run() async throws {
            let logger = makeLogger("bloodmatch.hospital")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let expires = Date().addingTimeInterval(Double(expiresInDays) * 86_400)
                let (record, token) = try await Database.with(config, logger: logger) { db in
                    try await keyOperation { try await PostgresAPIKeyStore(database: db).create(hospital: hospital, label: label, expiresAt: expires,
                                                                                           createdBy: operatorName()) }
                }
                if json {
                    print(#"{"key_id":"\#(record.keyID)","hospital":"\#(record.hospital)","expires_at":"\#(iso(record.expiresAt))","token":"\#(token.text)"}"#)
                } else {
                    print("key \(record.keyID) for \(record.hospital), expires \(iso(record.expiresAt))")
                    print("token (shown once; store it in the hospital's secret store):")
                    print(token.text)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never their secrets).")
        @Argument(help: "Hospital site id (all hospitals when omitted).") var hospital: String?

        func run() async throws {
            let logger = makeLogger("bloodmatch.hospital")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let keys = try await Database.with(config, logger: logger) { db in try await PostgresAPIKeyStore(database: db).list(hospital: hospital) }
                let now = Date()
                print("key_id            hospital    created               expires               state    label")
                for k in keys {
                    let state = k.revokedAt != nil ? "revoked" : (now >= k.expiresAt ? "expired" : "active")
                    print("\(k.keyID)  \(k.hospital.padding(toLength: 10, withPad: " ", startingAt: 0))  \(iso(k.createdAt))  \(iso(k.expiresAt))  \(state.padding(toLength: 7, withPad: " ", startingAt: 0))  \(k.label)")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key (takes effect on every instance within 5 s).")
        @Argument(help: "Key id (the 16 hex digits after bmk_).") var keyID: String
        @Option(help: "Why (recorded).") var reason: String = ""

        func run() async throws {
            let logger = makeLogger("bloodmatch.hospital")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let record = try await Database.with(config, logger: logger) { db in
                    try await keyOperation { try await PostgresAPIKeyStore(database: db).revoke(keyID: keyID, revokedBy: operatorName(), reason: reason) }
                }
                print("key \(record.keyID) for \(record.hospital) revoked at \(record.revokedAt.map(iso) ?? "now")")
            }
        }
    }
}

/// Runs a key operation, turning a refused key or hospital into a usage error (exit 2).
private func keyOperation<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as APIKeyError {
        throw ValidationError(error.description)
    }
}

private func iso(_ date: Date) -> String { Date.ISO8601FormatStyle().format(date) }
