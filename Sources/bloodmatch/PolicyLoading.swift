import BloodMatchCore

/// The policy as the matcher's rules: `--policy`, else `BLOODMATCH_POLICY`, else
/// `Data/policy.json`; a policy that fails validation stops the command (exit 2).
func loadMatchRules(path: String?) throws -> any MatchRules { try RulesCommandSupport.loadPolicy(path: path) }
