import Foundation
import Logging
import PostgresNIO

/// What a named login may do; each is a PostgreSQL group role (migration 0009).
public enum OperatorRole: String, Sendable, CaseIterable {
    /// Matches, holds, releases, issues units, records receipts and fates, places orders.
    case dispatcher
    /// A dispatcher who may also create and revoke hospital API keys.
    case supervisor
    /// A scheduled job: imports, batch runs, expiry, checkpoints; never issues a unit.
    case job
    /// Looks at everything (the console's map, orders, traces) and changes nothing (migration 0016).
    case viewer

    /// The group role.
    public var groupRole: String { "bloodmatch_" + rawValue }
}

/// One named login as `operator list` shows it.
public struct OperatorRecord: Sendable, Hashable {
    /// The login name.
    public var name: String
    /// Its group.
    public var role: OperatorRole
    /// Whether it may log in.
    public var canLogin: Bool

    /// Creates a record.
    public init(name: String, role: OperatorRole, canLogin: Bool) {
        self.name = name
        self.role = role
        self.canLogin = canLogin
    }
}

/// A refused operator name or operation, naming the value.
public struct OperatorError: Error, Sendable, CustomStringConvertible {
    /// What was refused and why.
    public var description: String
}

/// Named, authenticated operators and jobs: one PostgreSQL login each, member of one group.
/// Managing them needs the schema owner (with CREATEROLE); every change is an event.
public struct PostgresOperatorStore: Sendable {
    /// The pool, as the schema owner.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Checks a login name: lower-case letters, digits and `_`, 2–31 characters, starting with a
    /// letter, and not one of PostgreSQL's or BloodMatch's own roles.
    public static func validate(name: String) throws(OperatorError) {
        guard name.range(of: "^[a-z][a-z0-9_]{1,30}$", options: .regularExpression) != nil,
              !name.hasPrefix("pg_"), !name.hasPrefix("bloodmatch"), name != "postgres"
        else {
            throw OperatorError(description: "operator name '\(name.prefix(40))' is not allowed: use 2–31 lower-case letters, digits or _, starting with a letter, not pg_*, bloodmatch* or postgres")
        }
    }

    /// Creates a login in `role`'s group with `password` (sent only as its SCRAM verifier).
    public func add(name: String, role: OperatorRole, password: String) async throws {
        try Self.validate(name: name)
        let verifier = ScramVerifier.make(password: password)
        let logger = database.logger
        try await database.withTransaction { conn in
            var exists = false
            for try await (_,) in try await conn.query("SELECT 1 FROM pg_roles WHERE rolname = \(name)", logger: logger).decode((Int,).self) {
                exists = true
            }
            if exists { throw OperatorError(description: "a database role named '\(name)' exists already") }
            // Identifiers cannot be bound; the name was checked against a strict pattern above.
            _ = try await conn.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(name) LOGIN PASSWORD '\(verifier)' IN ROLE \(role.groupRole)"),
                                     logger: logger).collect()
            try await PostgresAuditLog.append(NewAuditEvent(
                actor: "admin", action: "operator.added", subject: "operator:" + name,
                payloadJSON: #"{"name":"\#(name)","role":"\#(role.rawValue)"}"#), on: conn, logger: logger)
        }
    }

    /// Stops a login from logging in again (its history stays; it is never dropped).
    public func disable(name: String) async throws {
        try Self.validate(name: name)
        let logger = database.logger
        try await database.withTransaction { conn in
            guard try await Self.find(name, on: conn, logger: logger) != nil else {
                throw OperatorError(description: "no operator named '\(name)'")
            }
            _ = try await conn.query(PostgresQuery(unsafeSQL: "ALTER ROLE \(name) NOLOGIN"), logger: logger).collect()
            try await PostgresAuditLog.append(NewAuditEvent(
                actor: "admin", action: "operator.disabled", subject: "operator:" + name, payloadJSON: #"{"name":"\#(name)"}"#),
                on: conn, logger: logger)
        }
    }

    /// Every named login, by name.
    public func list() async throws -> [OperatorRecord] {
        try await database.client.withConnection { conn in try await Self.all(on: conn, logger: database.logger) }
    }

    static let listSQL = """
        SELECT r.rolname::text, g.rolname::text, r.rolcanlogin FROM pg_roles r
        JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles g ON g.oid = m.roleid
        WHERE g.rolname IN ('bloodmatch_dispatcher', 'bloodmatch_supervisor', 'bloodmatch_job', 'bloodmatch_viewer') AND r.rolcanlogin IS NOT NULL
          AND NOT r.rolname LIKE 'bloodmatch%'
        ORDER BY 1
        """

    static func all(on conn: PostgresConnection, logger: Logger) async throws -> [OperatorRecord] {
        var out: [OperatorRecord] = []
        for try await (name, group, login) in try await conn.query(PostgresQuery(unsafeSQL: listSQL), logger: logger)
            .decode((String, String, Bool).self) {
            guard let role = OperatorRole(rawValue: String(group.dropFirst("bloodmatch_".count))) else { continue }
            out.append(OperatorRecord(name: name, role: role, canLogin: login))
        }
        return out
    }

    static func find(_ name: String, on conn: PostgresConnection, logger: Logger) async throws -> OperatorRecord? {
        try await all(on: conn, logger: logger).first { $0.name == name }
    }

    /// A new random password: 24 bytes, URL-safe base64 (32 characters).
    public static func generatePassword() -> String {
        let bytes = (0..<24).map { _ in UInt8.random(in: 0...255) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }
}
