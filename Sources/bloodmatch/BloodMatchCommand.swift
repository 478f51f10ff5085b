import ArgumentParser
import Foundation

/// The `bloodmatch` command: dispatcher, auditor and job entry points.
@main
struct BloodMatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bloodmatch",
        abstract: "Blood-product matching and logistics: find the nearest compatible, available, unexpired units and record why.",
        subcommands: [
            MigrateCommand.self,
            OperatorCommand.self,
            ConfigurationCommand.self,
            SitesCommand.self,
            ImportCommand.self,
            IndexCommand.self,
            MatchCommand.self,
            DecisionCommand.self,
            ReserveCommand.self,
            ReservationCommand.self,
            TraceCommand.self,
            DistributionCommand.self,
            UnitCommand.self,
            RecallCommand.self,
            AuditCommand.self,
            MetricsCommand.self,
            StockCommand.self,
            BenchCommand.self,
            CompatCommand.self,
            IsbtCommand.self,
            GenerateCommand.self,
            ServeCommand.self, ConsoleCommand.self, HospitalCommand.self,
            OrderCommand.self, BatchCommand.self,
        ]
    )

    /// Parses and runs the command. A value the argument parser refuses (an unknown option, a
    /// malformed number, a failed validation) exits 2, the documented usage code, rather than the
    /// parser's own 64; everything else exits as the command says.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usage.exitCode.rawValue)
            }
            exit(withError: error)
        }
    }
}
