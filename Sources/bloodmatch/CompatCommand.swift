import ArgumentParser
import BloodMatchCore
import Foundation

/// `bloodmatch compat`: shows, for people checking the rules, which unit groups a recipient may
/// receive of a component, with rank, flags, the deciding rule and its source.
struct CompatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compat",
        abstract: "List every unit group as compatible or not for a recipient, with rank, flags and the rule's source.",
        discussion: """
            Example: bloodmatch compat --component RBC --recipient-abo A --recipient-rhd NEG --context female,age=34
            Context tokens: female, male, age=N, childbearing, not-childbearing, anti-d, transfusion-dependent, neonate.
            The policy file is --policy, else $BLOODMATCH_POLICY, else Data/policy.json.
            """)

    @Option(help: "Component: RBC, PLT, PLASMA, CRYO or WB.") var component: String
    @Option(name: .customLong("recipient-abo"), help: "Recipient ABO group: O, A, B, AB or UNKNOWN.") var recipientABO: String
    @Option(name: .customLong("recipient-rhd"), help: "Recipient RhD: POS or NEG (omit or UNKNOWN when the group is unknown).")
    var recipientRhD: String?
    @Option(help: "Comma-separated recipient context, e.g. female,age=34,anti-d.") var context: String = ""
    @Option(help: "Urgency: emergency, urgent or routine.") var urgency: String = "routine"
    @Option(help: "Policy file (default: $BLOODMATCH_POLICY, else Data/policy.json).") var policy: String?
    @Flag(help: "Print JSON (sorted keys) instead of a table.") var json = false

    func run() async throws {
        guard let component = Component(rawValue: component.uppercased()) else {
            throw RulesCommandSupport.usage("--component '\(component)' is not one of RBC, PLT, PLASMA, CRYO, WB")
        }
        guard let urgency = Urgency(rawValue: urgency.lowercased()) else {
            throw RulesCommandSupport.usage("--urgency '\(urgency)' is not one of emergency, urgent, routine")
        }
        let recipientContext: RecipientContext
        do {
            recipientContext = try RecipientContext(parsing: context)
        } catch {
            throw RulesCommandSupport.usage("--context: \(error.description)")
        }
        let group = try recipientGroup()
        let policy = try RulesCommandSupport.loadPolicy(path: policy)
        let result = policy.compatibility(of: component, for: Recipient(group: group, context: recipientContext), urgency: urgency)
        if json {
            print(try RulesCommandSupport.json(CompatReport(result)))
        } else {
            print(Self.table(result))
        }
    }

    private func recipientGroup() throws -> BloodGroup? {
        let aboText = recipientABO.uppercased()
        let rhdText = recipientRhD?.uppercased()
        if aboText == "UNKNOWN" {
            guard rhdText == nil || rhdText == "UNKNOWN" else {
                throw RulesCommandSupport.usage("--recipient-rhd '\(recipientRhD ?? "")' given with an unknown ABO group; omit it or use UNKNOWN")
            }
            return nil
        }
        guard let abo = ABO(rawValue: aboText) else {
            throw RulesCommandSupport.usage("--recipient-abo '\(recipientABO)' is not one of O, A, B, AB, UNKNOWN")
        }
        guard let rhdText else {
            throw RulesCommandSupport.usage("--recipient-rhd (POS or NEG) is required when the ABO group is known")
        }
        guard let rhd = RhD(rawValue: rhdText) else {
            throw RulesCommandSupport.usage(
                "--recipient-rhd '\(rhdText)' must be POS or NEG when the ABO group is known (use UNKNOWN for both if the group is not determined)")
        }
        return BloodGroup(abo, rhd)
    }

    /// The human table: acceptable groups best first, then refused ones, then the sources.
    static func table(_ result: CompatibilityResult) -> String {
        let context = result.recipient.context.tokens
        var lines = [
            "policy \(result.policyVersion)",
            "\(result.component.rawValue) for recipient \(result.recipient.group?.description ?? "unknown group")"
                + (context.isEmpty ? "" : " [\(context)]") + ", \(result.urgency.rawValue)",
        ]
        if !result.rhdNegativeReasons.isEmpty { lines.append("RhD-negative required: \(result.rhdNegativeReasons)") }
        lines.append("")
        var rows = [["GROUP", "COMPATIBLE", "RANK", "FLAGS", "RULE", "REASON"]]
        for verdict in result.acceptable + result.unacceptable {
            var flags = verdict.flagNames
            if !verdict.requiredAttributes.isEmpty { flags.append("requires:\(verdict.requiredAttributes.description)") }
            rows.append([
                verdict.group.description, verdict.isAcceptable ? "yes" : "no", verdict.rank.map(String.init) ?? "-",
                flags.isEmpty ? "-" : flags.joined(separator: ","), verdict.ruleID, verdict.reason,
            ])
        }
        lines += RulesCommandSupport.aligned(rows)
        lines.append("")
        lines.append("Sources:")
        var seen = Set<String>()
        for verdict in result.acceptable + result.unacceptable {
            for rule in verdict.rules where seen.insert(rule.id + rule.source).inserted {
                lines.append("  \(rule.id): \(rule.source)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// The JSON form of a compatibility result.
private struct CompatReport: Encodable {
    struct Unit: Encodable {
        var group: String
        var compatible: Bool
        var rank: Int?
        var flags: [String]
        var requiredAttributes: [String]
        var ruleID: String
        var reason: String
        var rules: [RuleCitation]
    }

    var policyVersion: String
    var component: String
    var recipientGroup: String
    var recipientContext: String
    var urgency: String
    var rhdNegativeReasons: String
    var units: [Unit]

    init(_ result: CompatibilityResult) {
        policyVersion = result.policyVersion
        component = result.component.rawValue
        recipientGroup = result.recipient.group?.description ?? "unknown"
        recipientContext = result.recipient.context.tokens
        urgency = result.urgency.rawValue
        rhdNegativeReasons = result.rhdNegativeReasons
        units = (result.acceptable + result.unacceptable).map {
            Unit(group: $0.group.description, compatible: $0.isAcceptable, rank: $0.rank, flags: $0.flagNames,
                 requiredAttributes: $0.requiredAttributes.attributes.map(\.rawValue), ruleID: $0.ruleID,
                 reason: $0.reason, rules: $0.rules)
        }
    }
}

/// Shared pieces of the rules commands: policy loading, usage errors, tables, JSON.
enum RulesCommandSupport {
    /// The policy path: `--policy`, else `BLOODMATCH_POLICY`, else `Data/policy.json`.
    static func policyPath(_ option: String?) -> String {
        if let option, !option.isEmpty { return option }
        if let env = ProcessInfo.processInfo.environment["BLOODMATCH_POLICY"], !env.isEmpty { return env }
        return "Data/policy.json"
    }

    /// Reads and validates the policy; a missing or refused file is a usage error (exit 2).
    static func loadPolicy(path option: String?) throws -> CompatibilityPolicy {
        let path = policyPath(option)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw usage("policy file '\(path)' cannot be read (set --policy or BLOODMATCH_POLICY)")
        }
        do {
            return try CompatibilityPolicy(jsonData: data)
        } catch {
            throw usage("policy file '\(path)' refused: \(error.description)")
        }
    }

    /// Prints the message to standard error and returns exit code 2 to throw.
    static func usage(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        return ExitCode(2)
    }

    /// Rows padded to aligned columns; the last column is not padded.
    static func aligned(_ rows: [[String]]) -> [String] {
        guard let columns = rows.map(\.count).max() else { return [] }
        var widths = Array(repeating: 0, count: columns)
        for row in rows {
            for (i, cell) in row.enumerated() where i < columns - 1 { widths[i] = max(widths[i], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i < columns - 1 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) : cell
            }.joined(separator: "  ")
        }
    }

    /// Pretty JSON with sorted keys.
    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
