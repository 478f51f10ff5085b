import ArgumentParser
import BloodMatchCore
import Foundation

/// `bloodmatch isbt …`: check ISBT 128 identifiers and codes by hand.
struct IsbtCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "isbt", abstract: "Check ISBT 128 donation numbers and blood-group codes (ST-001).",
        subcommands: [Din.self, Group.self])

    /// `bloodmatch isbt din G123417654321`.
    struct Din: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "din",
            abstract: "Print the ISO 7064 Mod 37-2 check character and type-3 flag of a DIN, or validate DIN+check or =DIN+flags.",
            discussion: """
                13 characters: prints the check character and type-3 flag (G123417654321 → A, 70).
                14 characters: verifies the last character is the check character.
                16 characters starting with '=' (Data Structure 001): verifies the flag (reserved values refused, a type-3
                flag must match the DIN) and names it. Anything else, including the DIN and flags without '=', is refused.
                """)

        @Argument(help: "A 13-character DIN, a 14-character DIN + check character, or =DIN+flags.") var text: String
        @Flag(help: "Print JSON (sorted keys).") var json = false

        struct Report: Encodable {
            var din: String
            var checkCharacter: String
            var type3Flag: Int
            var inputCheckCharacter: String?
            var flag: String?
            var valid: Bool
        }

        func run() async throws {
            let report: Report
            if text.hasPrefix("=") {
                let structure: DonationIdentificationDataStructure
                do {
                    structure = try DonationIdentificationDataStructure(parsing: text)
                } catch {
                    throw RulesCommandSupport.usage(error.description)
                }
                report = Report(
                    din: structure.din.value, checkCharacter: String(structure.din.checkCharacter),
                    type3Flag: structure.din.type3Flag, inputCheckCharacter: nil, flag: structure.flag.description, valid: true)
            } else {
                let din: DonationNumber
                do {
                    din = try DonationNumber(parsing: text)
                } catch {
                    throw RulesCommandSupport.usage(error.description)
                }
                let given = text.unicodeScalars.count == 14 ? text.unicodeScalars.last.map { String($0) } : nil
                report = Report(
                    din: din.value, checkCharacter: String(din.checkCharacter), type3Flag: din.type3Flag,
                    inputCheckCharacter: given, flag: nil, valid: true)
            }
            if json {
                print(try RulesCommandSupport.json(report))
                return
            }
            var rows = [
                ["DIN", report.din],
                ["check character", report.checkCharacter],
                ["type-3 flag", "\(report.type3Flag)"],
            ]
            if let given = report.inputCheckCharacter { rows.append(["input check character", "\(given) (valid)"]) }
            if let flag = report.flag { rows.append(["flag", "\(flag) (valid)"]) }
            print(RulesCommandSupport.aligned(rows).joined(separator: "\n"))
        }
    }

    /// `bloodmatch isbt group 62`.
    struct Group: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "group",
            abstract: "Decode a Data Structure 002 blood-group code (gg, or =%ggre) and say whether the unit is allocatable.")

        @Argument(help: "A two-character code such as 95, 62, Md, or a full =%ggre structure.") var code: String
        @Flag(help: "Print JSON (sorted keys).") var json = false

        struct Report: Encodable {
            var code: String
            var meaning: String
            var group: String?
            var allocation: String
            var allocatableRoutine: Bool
            var allocatableEmergency: Bool
        }

        func run() async throws {
            let parsed: ISBTBloodGroupCode
            do {
                parsed = code.hasPrefix("=")
                    ? try ISBTBloodGroupDataStructure(parsing: code).bloodGroup : try ISBTBloodGroupCode(code: code)
            } catch {
                throw RulesCommandSupport.usage(error.description)
            }
            let allocation: String
            switch parsed.allocation {
            case .general: allocation = "general allocation"
            case .emergencyOnly: allocation = "emergency release only"
            case .namedRecipientOnly: allocation = "named (directed/autologous) recipient only"
            case .never(let reason): allocation = "never: \(reason)"
            }
            let report = Report(
                code: parsed.code, meaning: parsed.description, group: parsed.bloodGroup?.description, allocation: allocation,
                allocatableRoutine: parsed.isAllocatable(urgency: .routine),
                allocatableEmergency: parsed.isAllocatable(urgency: .emergency))
            if json {
                print(try RulesCommandSupport.json(report))
                return
            }
            print(RulesCommandSupport.aligned([
                ["code", report.code],
                ["meaning", report.meaning],
                ["allocation", report.allocation],
                ["allocatable (routine)", report.allocatableRoutine ? "yes" : "no"],
                ["allocatable (emergency)", report.allocatableEmergency ? "yes" : "no"],
            ]).joined(separator: "\n"))
        }
    }
}
