import BloodMatchCore
import BloodMatchIngest
import BloodMatchService
import BloodMatchStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The map's data and the live stream.
extension ConsoleHandlers {
    /// `GET /console/api/overview?component=RBC&abo=O&rhd=NEG`: every centre's usable units of the
    /// component (and group, when both `abo` and `rhd` are given), days of supply and data age;
    /// hospitals with pending orders; the last run's shipments. "Unable to verify" (503) when the
    /// index or the database cannot be trusted: no number is given as if it were certain.
    func overview(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        let componentText = query.get("component") ?? "RBC"
        guard let component = Component(rawValue: componentText) else {
            throw ConsoleError.invalid("component", "must be one of \(Component.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var group: BloodGroup?
        switch (query.get("abo"), query.get("rhd")) {
        case (nil, nil), ("", ""): group = nil
        case (let abo?, let rhd?):
            guard let a = ABO(rawValue: abo), let r = RhD(rawValue: rhd) else {
                throw ConsoleError.invalid("abo", "abo must be O, A, B or AB and rhd POS or NEG")
            }
            group = BloodGroup(a, r)
        default:
            throw ConsoleError.invalid("abo", "give abo and rhd together, or neither (every group)")
        }
        let now = services.now()
        let verified = try await verifiedIndex(now: now)
        let facts: ConsoleFacts
        let held: [HeldUnit]
        do {
            let (database, window) = (services.database, services.configuration.supplyWindowDays)
            facts = try await withDeadline(.seconds(4)) { try await PostgresConsoleStore(database: database).facts(issueWindowDays: window) }
            let directory = services.heldUnits
            held = try await withDeadline(.seconds(4)) { try await directory.current(database: database) }
        } catch {
            throw ConsoleError.unableToVerify("sites, orders and holds could not be read: \(ConsoleError.reason(error))")
        }
        return jsonResponse(ConsoleOverview.render(index: verified, facts: facts, planner: services.planner, held: held,
                                                   component: component, group: group, now: now))
    }

    /// The index, checked against the snapshots in force, or "unable to verify".
    func verifiedIndex(now: Date) async throws -> VerifiedIndex {
        do {
            return try await services.dataGuard.verifiedIndex(now: now)
        } catch {
            throw ConsoleError.unableToVerify("the stock in force could not be checked: \(ConsoleError.reason(error))")
        }
    }

    /// `GET /console/api/live`: server-sent events, one `status` event every `liveInterval`: whether
    /// the data can be verified (and why not), the index version, the held-unit count and the
    /// stale and no-data centres. The page reloads its data when any of these changes. A stream
    /// lasts `liveStreamLifetime`; the browser reconnects by itself.
    func live(_ context: ConsoleRequestContext) -> Response {
        let services = self.services
        let session = context.session
        let interval = services.configuration.liveInterval
        let lifetime = services.configuration.liveStreamLifetime
        let body = ResponseBody { writer in
            let end = ContinuousClock.now + lifetime
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            // The stream ends with the session (log-out, time-out, a disabled login).
            while ContinuousClock.now < end, !Task.isCancelled, session?.isOpen ?? false, !services.stopping.withLock({ $0 }) {
                let status = await Self.liveStatus(services)
                let line = "event: status\ndata: " + String(decoding: ResponseJSON.encode(status), as: UTF8.self) + "\n\n"
                try await writer.write(ByteBuffer(string: line))
                try await Task.sleep(for: interval)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }

    /// `GET /console/health` (no session): for probes and the on-call engineer. 200 while the
    /// console serves, with whether the stock in force can be verified and how many sessions are
    /// open; no data of any centre or operator.
    func health() async -> Response {
        let status = await Self.liveStatus(services)
        let verified: Bool = if case .object(let fields) = status, case .bool(let v)? = fields["verified"] { v } else { false }
        return jsonResponse(["status": "serving", "verified": .bool(verified), "sessions": .int(services.sessions.count)])
    }

    /// One live status.
    static func liveStatus(_ services: ConsoleServices) async -> JSONValue {
        let now = services.now()
        let nowSeconds = Int64(now.timeIntervalSince1970)
        do {
            let verified = try await services.dataGuard.verifiedIndex(now: now)
            let database = services.database
            let directory = services.heldUnits
            let held = try await withDeadline(.seconds(3)) { try await directory.current(database: database) }
            let stale = verified.index.centres.filter { $0.isStale(now: nowSeconds) }.map(\.siteID)
            return [
                "verified": true, "index_version": .string(verified.version), "held_units": .int(held.count),
                "stale_centres": .strings(stale), "no_data_centres": .strings(verified.index.centresWithoutData.map(\.siteID)),
                "at": .string(isoUTC(seconds: nowSeconds)),
            ]
        } catch {
            return ["verified": false, "message": .string("unable to verify — manual review required: \(ConsoleError.reason(error))"),
                    "at": .string(isoUTC(seconds: nowSeconds))]
        }
    }
}
