import ArgumentParser

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
            ServeCommand.self, HospitalCommand.self,
            OrderCommand.self, BatchCommand.self,
        ]
    )
}
