import ArgumentParser
import BloodMatchCore
import BloodMatchStore
import Foundation

/// `bloodmatch unit receive|transfuse|return|discard DIN/PRODUCTCODE`: the unit's life after issue.
struct UnitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unit", abstract: "Record an issued unit's receipt and its fate (transfused, returned, discarded).",
        discussion: """
            The order is enforced: receipt of an issued unit, once; then one fate. A returned unit re-enters stock only \
            when its centre's feed lists it again (the centre inspects it first). Return and discard need a reason from \
            the fixed list. A key belongs to one step: a retry returns the first record; another use is refused (exit 3).
            """,
        subcommands: [Receive.self, Transfuse.self, Return.self, Discard.self])

    struct Options: ParsableArguments {
        @Argument(help: "The unit, DIN/PRODUCTCODE (e.g. B001226999001/E0336V00).") var unit: String
        @Option(help: "Idempotency key for this step.") var key: String
        @Option(help: "Free-text note.") var note: String?
        @Flag(help: "Print the record as JSON.") var json = false

        func validate() throws {
            guard let key = UnitKey(parsing: unit) else { throw ValidationError("'\(unit)' is not DIN/PRODUCTCODE (13 and 8 characters)") }
            do { _ = try DonationNumber(parsing: key.din) } catch { throw ValidationError(error.description) }
            guard !self.key.isEmpty, self.key.count <= 200 else { throw ValidationError("--key must be 1–200 characters") }
        }
    }

    struct Receive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The hospital confirms an issued unit arrived (receipt record).")
        @OptionGroup var options: Options
        func run() async throws { try await record(.received, reason: nil, options) }
    }

    struct Transfuse: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The received unit was transfused.")
        @OptionGroup var options: Options
        func run() async throws { try await record(.transfused, reason: nil, options) }
    }

    struct Return: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The received unit was sent back to its centre.")
        @OptionGroup var options: Options
        @Option(help: "Why: \(UnitFateReason.allCases.filter { $0.applies(to: .returned) }.map(\.rawValue).joined(separator: ", ")).") var reason: String
        func run() async throws { try await record(.returned, reason: try parseReason(reason), options) }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The received unit was destroyed.")
        @OptionGroup var options: Options
        @Option(help: "Why: \(UnitFateReason.allCases.filter { $0.applies(to: .discarded) }.map(\.rawValue).joined(separator: ", ")).") var reason: String
        func run() async throws { try await record(.discarded, reason: try parseReason(reason), options) }
    }
}

private func parseReason(_ text: String) throws -> UnitFateReason {
    guard let reason = UnitFateReason(rawValue: text) else {
        throw ValidationError("reason '\(text)' is not one of \(UnitFateReason.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return reason
}

private func record(_ event: UnitFateEvent, reason: UnitFateReason?, _ options: UnitCommand.Options) async throws {
    let logger = makeLogger("bloodmatch.unit")
    try await runReportingFailures(logger: logger) {
        guard let unit = UnitKey(parsing: options.unit) else { throw ValidationError("'\(options.unit)' is not DIN/PRODUCTCODE") }
        let config = try Environment.current.database(role: .app)
        let (key, note) = (options.key, options.note)
        let (stored, isNew) = try await Database.with(config, logger: logger) { db in
            try await PostgresUnitLifecycleStore(database: db).record(event, unit: unit, reason: reason, note: note, hospital: nil,
                                                                      by: operatorName(), idempotencyKey: key, requestID: key)
        }
        logger.info("unit \(event.rawValue)", metadata: ["unit": "\(unit)", "new": "\(isNew)"])
        if options.json { printJSON(fateJSON(stored)); return }
        print("\(unit) \(event.rawValue)\(reason.map { " (\($0.rawValue))" } ?? "") at \(stored.hospital), recorded \(SnapshotWriter.timestamp(stored.recordedAt))"
              + (isNew ? "" : " — already recorded under this key (nothing new written)"))
    }
}

/// `bloodmatch recall DIN [--product CODE]`: every component of a donation, where each is now and who received it.
struct RecallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recall", abstract: "List every component of a donation: where each is now, who received it (CSV export for the recall notice).",
        discussion: "Components are every product code ever seen under the DIN: in a snapshot, a hold or an issue. Exit 3 when a component has been issued and not returned (hospitals must be notified).")
    @Argument(help: "The DIN: 13 characters, 14 with its check character, or '=', the DIN and two flags as scanned.") var din: String
    @Option(help: "Only this product code.") var product: String?
    @Option(help: "text, csv or json.") var format = "text"

    func validate() throws {
        do { _ = try DonationNumber(parsing: din) } catch { throw ValidationError(error.description) }
        guard ["text", "csv", "json"].contains(format) else { throw ValidationError("--format must be text, csv or json") }
    }

    func run() async throws {
        let logger = makeLogger("bloodmatch.recall")
        try await runReportingFailures(logger: logger) {
            let config = try Environment.current.database(role: .app)
            // Recorded under the 13-character DIN, whichever form was typed or scanned.
            let (unit, code) = ((try? DonationNumber(parsing: din))?.value ?? din, product)
            let entries = try await Database.with(config, logger: logger) { db in
                let entries = try await PostgresUnitLifecycleStore(database: db).recall(din: unit, productCode: code)
                try await PostgresAuditLog(database: db).append(NewAuditEvent(
                    actor: operatorName(), action: "data.read", subject: "unit:" + (code.map { unit + "/" + $0 } ?? unit),
                    payloadJSON: #"{"command":"recall","components":\#(entries.count)}"#))
                return entries
            }
            let ts = { (d: Date?) in d.map(SnapshotWriter.timestamp) ?? "" }
            let out = CheckedOutput()
            switch format {
            case "json":
                let rows: [[String: Any]] = entries.map { e in
                    ["din": e.din, "product_code": e.productCode, "component": e.component as Any, "where_now": e.whereNow,
                     "centre": e.centre as Any, "reservation_id": e.reservationID?.uuidString.lowercased() as Any,
                     "consignee": e.consignee as Any, "consignee_name": e.consigneeName as Any, "consignee_address": e.consigneeAddress as Any,
                     "issued_at": e.issuedAt.map(SnapshotWriter.timestamp) as Any, "received_at": e.receivedAt.map(SnapshotWriter.timestamp) as Any,
                     "fate": e.fate as Any, "fate_reason": e.fateReason as Any, "fate_at": e.fateAt.map(SnapshotWriter.timestamp) as Any,
                     "expires_at": e.expiresAt.map(SnapshotWriter.timestamp) as Any]
                }
                try out.line(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self))
            case "csv":
                try out.line("din,product_code,component,where_now,centre,reservation_id,consignee,consignee_name,consignee_address,issued_at,received_at,fate,fate_reason,fate_at,expires_at")
                for e in entries {
                    try out.line([e.din, e.productCode, e.component ?? "", e.whereNow, e.centre ?? "", e.reservationID?.uuidString.lowercased() ?? "",
                                  e.consignee ?? "", e.consigneeName ?? "", e.consigneeAddress ?? "", ts(e.issuedAt), ts(e.receivedAt),
                                  e.fate ?? "", e.fateReason ?? "", ts(e.fateAt), ts(e.expiresAt)].map(csvField).joined(separator: ","))
                }
            default:
                try out.line("Recall of donation \(unit)" + (code.map { ", product \($0)" } ?? "") + ": \(entries.count) component(s)")
                if entries.isEmpty { try out.line("  nothing recorded under this DIN") }
                for e in entries {
                    var line = "  \(e.din)/\(e.productCode)  \(e.component ?? "?")  \(e.whereNow.uppercased())"
                    if let c = e.centre { line += "  centre \(c)" }
                    if let h = e.consignee {
                        line += "  issued \(ts(e.issuedAt)) to \(h) \(e.consigneeName ?? ""), \(e.consigneeAddress ?? "")"
                        if let r = e.receivedAt { line += ", received \(SnapshotWriter.timestamp(r))" }
                        if let f = e.fate { line += ", \(f)\(e.fateReason.map { " (\($0))" } ?? "") \(ts(e.fateAt))" }
                    }
                    try out.line(line)
                }
            }
            try out.flush()
        }
    }
}
