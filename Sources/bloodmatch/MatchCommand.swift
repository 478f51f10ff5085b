import ArgumentParser
import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation

/// `bloodmatch match`: the dispatcher's nearest-unit question, answered and recorded.
struct MatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "match",
        abstract: "Find the nearest compatible, available, unexpired units; print why; record the decision.",
        discussion: """
        Example: bloodmatch match --hospital H0001 --component PLT --abo O --rhd NEG --quantity 2 --require IRRADIATED --sex female --age 34
        Units arriving after the deadline (the urgency's time ceiling, or --needed-by when sooner) are
        offered marked LATE; when every unit found is late the outcome is `late`.
        --as-of T asks a what-if: evaluated at T on the stock in force now, recorded, never reservable;
        refused (exit 2) before the oldest snapshot in force.
        Exit codes: 0 fulfilled, 3 partial, late or none found, 5 unable to verify (manual review), 2 usage.
        """)

    @Option(help: "Hospital site id (its location is the destination).") var hospital: String?
    // `.unconditional`: a negative coordinate (`--latitude -33.87`) is a value, not an option.
    @Option(parsing: .unconditional, help: "Destination latitude, when no hospital is named.") var latitude: Double?
    @Option(parsing: .unconditional, help: "Destination longitude, when no hospital is named.") var longitude: Double?
    @Option(help: "Component: RBC, PLT, PLASMA, CRYO or WB.") var component: String
    @Option(help: "Recipient ABO group: O, A, B, AB, or UNKNOWN.") var abo: String
    @Option(help: "Recipient RhD: POS, NEG, or UNKNOWN.") var rhd: String
    @Option(help: "Units wanted (1…100).") var quantity: Int = 1
    @Option(help: "A special requirement (repeatable): IRRADIATED, CMV_NEG, WASHED, HBS_NEG, K_NEG, …") var require: [String] = []
    @Option(help: "Recipient sex: female, male or unknown.") var sex: String = "unknown"
    @Option(help: "Recipient age in years.") var age: Int?
    @Option(help: "More recipient context, comma-separated: anti-d, transfusion-dependent, neonate, childbearing, not-childbearing.") var context: String = ""
    @Option(help: "Maximum unit age in days (fresh units for neonates).") var maxAgeDays: Int?
    @Option(help: "Urgency: emergency, urgent or routine.") var urgency: String = "routine"
    @Option(help: "When the units are needed (ISO 8601 with zone); units arriving later are marked LATE.") var neededBy: String?
    @Option(help: "What-if: evaluate at this instant (ISO 8601 with zone) on the stock in force now; recorded, never reservable.") var asOf: String?
    @Option(help: "Request id: a retry with the same id returns the original decision (one that was 'unable to verify' is evaluated again).") var requestID: String?
    @Option(help: "Transfusion policy file.") var policy: String?
    @Option(help: "Index file.") var index: String = IndexCommand.defaultPath
    @Flag(help: "Print the full decision as JSON.") var json = false

    func run() async throws {
        let logger = makeLogger("bloodmatch.match")
        try await runReportingFailures(logger: logger) {
            let request = try buildRequest()
            let now = try asOf.map(parseInstant) ?? Date()
            let rules = try loadMatchRules(path: policy)
            let travelTimes = try loadTravelTimes()
            let settings = try loadMatchingSettings()
            let preloaded = try? IndexLoader.load(path: index)
            let config = try Environment.current.database(role: .app)
            let answer: EngineAnswer
            do {
                let policyPath = RulesCommandSupport.policyPath(policy)
                let policyVersion = (rules as? CompatibilityPolicy)?.version
                let actor = operatorName()
                answer = try await Database.with(config, logger: logger) { db in
                    try await recordConfiguration(db, policyPath: policyPath, policyVersion: policyVersion, actor: actor)
                    let engine = DecisionEngine(database: db, planner: MatchPlanner(rules: rules, settings: settings, travelTimes: travelTimes),
                                                index: preloaded, logger: logger)
                    return try await engine.decide(request, requestedBy: operatorName(), traceID: nil, now: now, whatIf: asOf != nil)
                }
            } catch let error as DatabaseUnavailableError {
                let decision = MatchPlanner(rules: rules, settings: settings).unableToVerify(id: UUID(), request: request, reason: error.description, now: now)
                answer = EngineAnswer(decision: decision, recorded: false, isNew: true)
            }
            if json {
                let encoder = DecisionEngine.makeEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try encoder.encode(answer.decision), as: UTF8.self))
            } else {
                print(DecisionPrinter.render(answer.decision, recorded: answer.recorded, isNew: answer.isNew, retryOf: answer.retryOf))
            }
            logger.info("decision", metadata: [
                "decision_id": "\(answer.decision.decisionID)", "request_id": "\(request.requestID)",
                "outcome": "\(answer.decision.outcome.rawValue)", "recorded": "\(answer.recorded)", "new": "\(answer.isNew)",
            ])
            switch answer.decision.outcome {
            case .fulfilled: return
            case .partial, .late, .noneCompatibleAvailable: throw ExitStatus.rejected.exitCode
            case .unableToVerify: throw ExitStatus.databaseUnavailable.exitCode
            }
        }
    }

    func buildRequest() throws -> MatchRequest {
        guard let component = Component(rawValue: component.uppercased()) else {
            throw ValidationError("--component '\(component)' is not one of RBC, PLT, PLASMA, CRYO, WB")
        }
        let group: BloodGroup?
        switch (abo.uppercased(), rhd.uppercased()) {
        case ("UNKNOWN", _), (_, "UNKNOWN"): group = nil
        default:
            guard let a = ABO(rawValue: abo.uppercased()) else { throw ValidationError("--abo '\(abo)' is not one of O, A, B, AB, UNKNOWN") }
            guard let r = RhD(rawValue: rhd.uppercased()) else { throw ValidationError("--rhd '\(rhd)' is not one of POS, NEG, UNKNOWN") }
            group = BloodGroup(a, r)
        }
        let recipient = Recipient(group: group, context: try buildContext())
        var requirements: [UnitAttribute] = []
        for name in require.flatMap({ $0.split(separator: ",") }).map(String.init) {
            guard let attribute = UnitAttribute(rawValue: name) else {
                throw ValidationError("--require '\(name)' is not a known requirement (\(UnitAttribute.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if !requirements.contains(attribute) { requirements.append(attribute) }
        }
        guard let urgencyValue = Urgency(rawValue: urgency.lowercased()) else {
            throw ValidationError("--urgency '\(urgency)' is not one of emergency, urgent, routine")
        }
        guard (1...MatchRequest.maximumQuantity).contains(quantity) else {
            throw ValidationError("--quantity \(quantity) is out of range 1…\(MatchRequest.maximumQuantity)")
        }
        let destination: GeoPoint?
        switch (hospital, latitude, longitude) {
        case (.some, nil, nil): destination = nil
        case (nil, .some(let lat), .some(let lon)):
            let point = GeoPoint(latitude: lat, longitude: lon)
            guard point.isValid else { throw ValidationError("--latitude/--longitude \(lat),\(lon) are not valid coordinates") }
            destination = point
        default: throw ValidationError("name --hospital, or --latitude and --longitude (not both)")
        }
        let needed = try neededBy.map { text in
            do { return try parseInstant(text) } catch { throw ValidationError("--needed-by \(error)") }
        }
        return MatchRequest(requestID: requestID ?? "cli-\(UUID().uuidString.lowercased())", hospitalID: hospital,
                            destination: destination, component: component, recipient: recipient, quantity: quantity,
                            requirements: requirements, maximumUnitAgeDays: maxAgeDays, urgency: urgencyValue,
                            neededBy: needed.map { Date(timeIntervalSince1970: $0.timeIntervalSince1970.rounded(.down)) })
    }

    func buildContext() throws -> RecipientContext {
        let sexToken = sex.lowercased() == "unknown" ? [] : [sex.lowercased()]
        let tokens = sexToken + (age.map { ["age=\($0)"] } ?? []) + context.split(separator: ",").map(String.init)
        let text = tokens.joined(separator: ",")
        let result: Result<RecipientContext, RecipientContext.ParseError> = Result { () throws(RecipientContext.ParseError) in
            try RecipientContext(parsing: text)
        }
        switch result {
        case .success(let context): return context
        case .failure(let error): throw ValidationError("recipient context: \(error.description)")
        }
    }
}

