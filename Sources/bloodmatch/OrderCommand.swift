import ArgumentParser
import BloodMatchCore
import BloodMatchIngest
import BloodMatchStore
import Foundation
import Logging

/// `bloodmatch order`: hospitals' orders for the batch run (add, import, list, cancel).
struct OrderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order", abstract: "Place, import, list and cancel orders for the batch allocation.",
        subcommands: [Add.self, Import.self, List.self, Cancel.self])

    /// `bloodmatch order add`: one order.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: "Place one order (status pending until a batch run decides it).",
            discussion: "Example: bloodmatch order add --order-id ORD-1 --hospital H0001 --component RBC --abo A --rhd POS --quantity 2 --urgency urgent --needed-by 2026-11-29T14:00:00Z")
        @Option(help: "Order id (unique).") var orderID: String
        @Option(help: "Hospital site id.") var hospital: String
        @Option(help: "Component: RBC, PLT, PLASMA, CRYO or WB.") var component: String
        @Option(help: "Recipient ABO group: O, A, B, AB, or UNKNOWN.") var abo: String
        @Option(help: "Recipient RhD: POS, NEG, or UNKNOWN.") var rhd: String
        @Option(help: "Units wanted (1…100).") var quantity: Int = 1
        @Option(help: "A special requirement (repeatable).") var require: [String] = []
        @Option(help: "Recipient context, comma-separated: female, male, age=N, anti-d, transfusion-dependent, neonate, …") var context: String = ""
        @Option(help: "Urgency: emergency, urgent or routine.") var urgency: String = "routine"
        @Option(help: "Needed by (ISO 8601 with zone).") var neededBy: String?
        @Option(help: "Maximum unit age in days.") var maxAgeDays: Int?

        func run() async throws {
            let logger = makeLogger("bloodmatch.order")
            let line = [orderID, hospital, component, abo, rhd, context.replacingOccurrences(of: ",", with: ";"), "\(quantity)",
                        require.joined(separator: ";"), urgency, neededBy ?? "", maxAgeDays.map(String.init) ?? ""].joined(separator: ",")
            let data = Data((OrderFileDecoder.header.joined(separator: ",") + "\n" + line + "\n").utf8)
            let decoded = try OrderCommand.decode(data, file: "command line")
            try await runReportingFailures(logger: logger) {
                try await OrderCommand.store(decoded, source: "cli", logger: logger)
                print("order \(orderID) placed: pending")
            }
        }
    }

    /// `bloodmatch order import FILE`: a whole file, all or nothing.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import", abstract: "Import an order file (Data/order-format.md), all or nothing.")
        @Argument(help: "Order CSV file.") var file: String

        func run() async throws {
            let logger = makeLogger("bloodmatch.order")
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            let decoded = try OrderCommand.decode(data, file: (file as NSString).lastPathComponent)
            try await runReportingFailures(logger: logger) {
                try await OrderCommand.store(decoded, source: (file as NSString).lastPathComponent, logger: logger)
                print("\(decoded.count) order(s) imported from \(file): pending")
            }
        }
    }

    /// `bloodmatch order list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List orders, newest first.")
        @Option(help: "Only this status: pending, allocated, partially_allocated, unfillable, cancelled.") var status: String?
        @Option(help: "At most this many.") var limit: Int = 200
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.order")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let orders = try await Database.with(config, logger: logger) { db in
                    try await PostgresOrderStore(database: db).list(status: status, limit: limit)
                }
                if json {
                    let encoder = PostgresBatchStore.encoder()
                    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                    print(String(decoding: try encoder.encode(orders), as: UTF8.self))
                    return
                }
                for o in orders {
                    let group = o.group.map(\.description) ?? "unknown"
                    var line = "\(o.orderID)  \(o.hospitalID)  \(o.quantity) \(o.component.rawValue) for \(group)  \(o.urgency.rawValue)  \(o.status)"
                    if let reason = o.statusReason { line += " — \(reason)" }
                    print(line)
                }
                if orders.isEmpty { print("no orders\(status.map { " with status \($0)" } ?? "")") }
            }
        }
    }

    /// `bloodmatch order cancel ID`.
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a pending order.")
        @Argument(help: "Order id.") var orderID: String
        @Option(help: "Why.") var reason: String = "cancelled by dispatcher"

        func run() async throws {
            let logger = makeLogger("bloodmatch.order")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let done = try await Database.with(config, logger: logger) { db in
                    try await PostgresOrderStore(database: db).cancel(orderID: orderID, actor: operatorName(), reason: reason)
                }
                guard done else {
                    print("order \(orderID) is not pending (or does not exist); nothing changed")
                    throw ExitStatus.rejected.exitCode
                }
                print("order \(orderID) cancelled")
            }
        }
    }

    static func decode(_ data: Data, file: String) throws -> [DecodedOrder] {
        let result: Result<[DecodedOrder], OrderFileError> = Result { () throws(OrderFileError) in
            try OrderFileDecoder.decode(data, file: file)
        }
        switch result {
        case .success(let orders): return orders
        case .failure(let error): throw ValidationError("order refused, nothing stored: \(error.description)")
        }
    }

    static func store(_ decoded: [DecodedOrder], source: String, logger: Logger) async throws {
        let records = decoded.map {
            OrderRecord(orderID: $0.orderID, hospitalID: $0.hospitalID, component: $0.component, group: $0.group, context: $0.context,
                        quantity: $0.quantity, requirements: $0.requirements, maximumUnitAgeDays: $0.maximumUnitAgeDays,
                        urgency: $0.urgency, neededBy: $0.neededBy, placedBy: operatorName(), source: source)
        }
        let config = try Environment.current.database(role: .app)
        do {
            try await Database.with(config, logger: logger) { db in
                try await PostgresOrderStore(database: db).add(records, actor: operatorName())
            }
        } catch let error as OrderStoreError {
            print("REFUSED: \(error.description)")
            throw ExitStatus.rejected.exitCode
        }
    }
}
