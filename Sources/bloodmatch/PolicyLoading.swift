import BloodMatchCore
import BloodMatchStore
import Crypto
import Foundation

/// The policy as the matcher's rules: `--policy`, else `BLOODMATCH_POLICY`, else
/// `Data/policy.json`; a policy that fails validation stops the command (exit 2).
func loadMatchRules(path: String?) throws -> any MatchRules { try RulesCommandSupport.loadPolicy(path: path) }

/// Measured travel times: `BLOODMATCH_TRAVEL_TIMES`, else `Data/travel-times.csv` when present;
/// none means every pair uses the great-circle model. A file with a bad row stops the command.
func loadTravelTimes() throws -> TravelTimeMatrix {
    let configured = ProcessInfo.processInfo.environment["BLOODMATCH_TRAVEL_TIMES"].flatMap { $0.isEmpty ? nil : $0 }
    let path = configured ?? "Data/travel-times.csv"
    guard let data = FileManager.default.contents(atPath: path) else {
        if configured != nil { throw ValidationFailure("travel-time file \(path) cannot be read") }
        return TravelTimeMatrix()
    }
    let text = String(decoding: data, as: UTF8.self)
    let result: Result<TravelTimeMatrix, TravelTimeMatrix.ParseError> = Result { () throws(TravelTimeMatrix.ParseError) in
        try TravelTimeMatrix(csv: text, fileName: path)
    }
    switch result {
    case .success(let matrix): return matrix
    case .failure(let error): throw ValidationFailure("travel-time file refused: \(error.description)")
    }
}

/// Travel and ranking settings: `BLOODMATCH_MATCHING`, else `Data/matching.json`; local operating
/// choices (courier speed, margins, rank penalties, whether stale centres may be proposed), each
/// range-checked. Every decision records the values it used.
func loadMatchingSettings() throws -> MatchingSettings {
    let configured = ProcessInfo.processInfo.environment["BLOODMATCH_MATCHING"].flatMap { $0.isEmpty ? nil : $0 }
    let path = configured ?? "Data/matching.json"
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationFailure("matching settings \(path) cannot be read (set BLOODMATCH_MATCHING)")
    }
    do {
        return try MatchingSettings(jsonData: data)
    } catch {
        throw ValidationFailure("matching settings \(path) refused: \(error)")
    }
}

/// Records in the event log any change of the policy, matching settings or travel-time files since
/// the last process recorded them (name, path, SHA-256, version, previous SHA-256).
func recordConfiguration(_ db: Database, policyPath: String, policyVersion: String?, actor: String) async throws {
    let env = ProcessInfo.processInfo.environment
    let files: [(String, String, String?)] = [
        ("policy", policyPath, policyVersion),
        ("matching", env["BLOODMATCH_MATCHING"].flatMap { $0.isEmpty ? nil : $0 } ?? "Data/matching.json", nil),
        ("travel-times", env["BLOODMATCH_TRAVEL_TIMES"].flatMap { $0.isEmpty ? nil : $0 } ?? "Data/travel-times.csv", nil),
    ]
    let log = PostgresAuditLog(database: db)
    for (name, path, version) in files {
        guard let data = FileManager.default.contents(atPath: path) else { continue }
        let sha = SHA256.hash(data: data).lowercaseHex
        try await log.recordConfiguration(name: name, path: path, sha256: sha, version: version, actor: actor)
    }
}
