import ArgumentParser
import BloodMatchCore
import Foundation

/// Loads and validates the transfusion policy: `--policy FILE`, else `BLOODMATCH_POLICY`, else
/// `Data/policy.json`. A policy that fails validation (for example one that would allow an
/// ABO-incompatible red cell) stops the command; nothing is matched under it.
func loadPolicy(path: String?) throws -> CompatibilityPolicy {
    let file = path ?? ProcessInfo.processInfo.environment["BLOODMATCH_POLICY"].flatMap { $0.isEmpty ? nil : $0 } ?? "Data/policy.json"
    guard let data = FileManager.default.contents(atPath: file) else {
        throw ValidationFailure("policy file \(file) cannot be read (set --policy or BLOODMATCH_POLICY)")
    }
    let result: Result<CompatibilityPolicy, PolicyError> = Result { () throws(PolicyError) in try CompatibilityPolicy(jsonData: data) }
    switch result {
    case .success(let policy): return policy
    case .failure(let error): throw ValidationFailure("policy file \(file) refused: \(error)")
    }
}

/// The policy as the matcher's rules.
func loadMatchRules(path: String?) throws -> any MatchRules { try loadPolicy(path: path) }
