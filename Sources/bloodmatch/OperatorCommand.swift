import ArgumentParser
import BloodMatchStore
import Foundation

/// `bloodmatch operator add|list|disable`: named, authenticated dispatchers, supervisors, jobs and viewers.
struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operator",
        abstract: "Manage the named database logins that dispatchers, supervisors and jobs act under.",
        discussion: """
            Each operator is a PostgreSQL login, authenticated by the database (password as SCRAM-SHA-256, \
            or peer / client certificate where the server is set up for it), and a member of one group: \
            dispatcher, supervisor, job or viewer (Data/POLICY.md, "Who may do what"). Commands act as the operator \
            named by BLOODMATCH_OPERATOR, reading its password from BLOODMATCH_OPERATOR_PASSWORD_FILE \
            (default ~/.config/bloodmatch/operators/NAME). Runs as the schema owner.
            """,
        subcommands: [Add.self, List.self, Disable.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an operator login and write its password to a file (mode 600).")
        @Argument(help: "Login name (2–31 of a-z, 0-9, _).") var name: String
        @Option(help: "dispatcher, supervisor, job or viewer (looks, changes nothing).") var role: String
        @Option(help: "Write the password here (default ~/.config/bloodmatch/operators/NAME; it must not exist).")
        var passwordFile: String?

        func validate() throws {
            guard OperatorRole(rawValue: role) != nil else { throw ValidationError("--role '\(role)' is not dispatcher, supervisor, job or viewer") }
            do { try PostgresOperatorStore.validate(name: name) } catch { throw ValidationError(error.description) }
        }

        func run() async throws {
            let logger = makeLogger("bloodmatch.operator")
            try await runReportingFailures(logger: logger) {
                let path = passwordFile ?? Environment.defaultPasswordFile(for: name)
                guard !FileManager.default.fileExists(atPath: path) else {
                    throw ValidationError("\(path) exists; remove it or give --password-file")
                }
                let password = PostgresOperatorStore.generatePassword()
                let (login, group) = (name, OperatorRole(rawValue: role)!)
                let config = try Environment.current.database(role: .owner)
                try await Database.with(config, logger: logger) { db in
                    try await PostgresOperatorStore(database: db).add(name: login, role: group, password: password)
                }
                try writeSecret(password + "\n", to: path)
                print("operator \(name) (\(role)) created; password written to \(path)")
                print("act as it with: BLOODMATCH_OPERATOR=\(name)\(passwordFile == nil ? "" : " BLOODMATCH_OPERATOR_PASSWORD_FILE=\(path)")")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List operator logins with their group.")

        func run() async throws {
            let logger = makeLogger("bloodmatch.operator")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .owner)
                let all = try await Database.with(config, logger: logger) { db in try await PostgresOperatorStore(database: db).list() }
                for o in all { print("\(o.name)\t\(o.role.rawValue)\t\(o.canLogin ? "active" : "disabled")") }
                if all.isEmpty { print("no operators; add one with `bloodmatch operator add NAME --role dispatcher`") }
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop an operator from logging in (its history stays).")
        @Argument(help: "Login name.") var name: String

        func run() async throws {
            let logger = makeLogger("bloodmatch.operator")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .owner)
                let login = name
                try await Database.with(config, logger: logger) { db in try await PostgresOperatorStore(database: db).disable(name: login) }
                print("operator \(name) disabled")
            }
        }
    }
}

/// Writes `text` to a new file readable by its owner only, creating the folder (mode 700).
func writeSecret(_ text: String, to path: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    if !folder.isEmpty {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
        throw ValidationError("cannot write \(path)")
    }
}
