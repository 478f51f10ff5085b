@testable import BloodMatchCore
import Testing

/// Invariants that hold whatever the policy file says.
///
/// Source: JPAC-HB §2.4.1 (ABO-incompatible red cells are a never event), LB-OLD plasma page
/// (plasma must be compatible with the recipient's ABO group: the reverse of the red-cell rule).
@Suite("Compatibility invariants")
struct CompatibilityPropertyTests {
    static let contexts = ["", "male,age=40"]
    static let recipients: [Recipient?] = BloodGroup.all.map { Recipient(group: $0) } + [Recipient(group: nil)]

    @Test("the plasma rule is the red-cell rule with donor and recipient exchanged")
    func plasmaIsReverseOfRedCells() {
        for donor in ABO.allCases {
            for recipient in ABO.allCases {
                #expect(recipient.acceptsPlasma(from: donor) == donor.acceptsRedCells(from: recipient))
            }
        }
        // Known antigen/antibody facts (JPAC-HB Table 2.1).
        #expect(ABO.O.acceptsRedCells(from: .O) && !ABO.O.acceptsRedCells(from: .A))
        #expect(ABO.AB.acceptsRedCells(from: .O) && ABO.AB.acceptsRedCells(from: .A))
        #expect(ABO.O.acceptsPlasma(from: .AB) && !ABO.AB.acceptsPlasma(from: .O))
    }

    @Test("with the policy in force, unflagged plasma choices are exactly the reverse-rule groups",
          arguments: [Component.plasma, .cryoprecipitate])
    func policyPlasmaFollowsReverseRule(_ component: Component) throws {
        let policy = try RulesFixture.loadPolicy()
        for recipientABO in ABO.allCases {
            for rhd in RhD.allCases {
                let result = policy.compatibility(
                    of: component, for: Recipient(group: BloodGroup(recipientABO, rhd), context: .adultMale), urgency: .routine)
                for verdict in result.verdicts {
                    let compatible = recipientABO.acceptsPlasma(from: verdict.group.abo)
                    if compatible { #expect(verdict.isAcceptable, "\(component) \(verdict.group) to \(recipientABO)") }
                    if verdict.isAcceptable {
                        #expect(verdict.flags.contains(.abOIncompatiblePlasmaMinor) == !compatible)
                        if !compatible { #expect(verdict.requiredAttributes.contains(.lowTitre)) }
                    }
                }
            }
        }
    }

    @Test("seeded random recipients never get ABO-incompatible red cells or whole blood", arguments: [1, 2, 3] as [UInt64])
    func randomRecipientsNeverIncompatible(seed: UInt64) throws {
        let policy = try RulesFixture.loadPolicy()
        var rng = SeededRandom(seed: seed)
        var violations: [String] = []
        for _ in 0..<500 {
            let context = RecipientContext(
                sex: RecipientSex.allCases.randomElement(using: &rng) ?? .unknown,
                ageYears: Bool.random(using: &rng) ? Int.random(in: 0...100, using: &rng) : nil,
                childbearingPotential: [true, false, nil].randomElement(using: &rng) ?? nil,
                hasAntiD: Bool.random(using: &rng), likelyTransfusionDependent: Bool.random(using: &rng),
                isNeonate: Bool.random(using: &rng))
            let group = Bool.random(using: &rng) ? BloodGroup.all.randomElement(using: &rng) : nil
            let recipient = Recipient(group: group, context: context)
            for component in [Component.redCells, .wholeBlood] {
                let result = policy.compatibility(of: component, for: recipient, urgency: Urgency.allCases.randomElement(using: &rng) ?? .routine)
                for verdict in result.acceptable where !recipient.abo.acceptsRedCells(from: verdict.group.abo) {
                    violations.append("\(verdict.group) \(component.rawValue) for \(recipient.abo) [\(context.tokens)]")
                }
            }
        }
        #expect(violations.isEmpty)
    }

    /// Strings a mutation may write into the policy file.
    static let vocabulary: [String] = [
        "O", "A", "B", "AB", "unknown", "LOW_TITRE", "IRRADIATED", "emergency", "routine", "not_allowed", "before_o_negative",
        "after_rhd_negative", "STRICT", "LB-CC", "LB-OLD", "low_titre_preferred", "a2_subgroup_preferable", "", "X",
        "may_serve_plain_request", "never", "RBC", "WB",
    ]

    /// Applies one random mutation; many target red-cell tables so the validator is exercised.
    static func mutate(
        _ tree: inout JSONValue, using rng: inout SeededRandom,
        nodes knownNodes: [(path: [JSONValue.PathElement], kind: JSONValue.Kind)]? = nil
    ) {
        let nodes = knownNodes ?? tree.nodes()
        func paths(_ kind: JSONValue.Kind? = nil, where keep: ([JSONValue.PathElement]) -> Bool = { _ in true }) -> [[JSONValue.PathElement]] {
            nodes.filter { (kind == nil || $0.kind == kind) && keep($0.path) }.map(\.path)
        }
        switch Int.random(in: 0..<8, using: &rng) {
        case 0, 1:
            // Add a random donor group (sometimes with a low-titre emergency restriction) to a red-cell tier.
            let redCellTiers = paths(.array) { path in
                guard path.count == 7, case .key("components") = path[0], case .key(let component) = path[1] else { return false }
                return component == "RBC" || component == "WB"
            }
            guard let tier = redCellTiers.randomElement(using: &rng), case .array(var choices)? = tree[tier] else { return }
            let abo = ["O", "A", "B", "AB"].randomElement(using: &rng) ?? "A"
            if Bool.random(using: &rng) {
                choices.append(.string(abo))
            } else {
                choices.append(.object([
                    "abo": .string(abo), "requires": .array([.string("LOW_TITRE")]), "urgencies": .array([.string("emergency")]),
                ]))
            }
            tree[tier] = .array(choices)
        case 2:
            // Replace a random string.
            guard let path = paths(.string).randomElement(using: &rng) else { return }
            tree[path] = .string(vocabulary.randomElement(using: &rng) ?? "")
        case 3:
            // Replace a random number or boolean.
            guard let path = paths(.scalar).randomElement(using: &rng) else { return }
            tree[path] = Bool.random(using: &rng) ? .number(Double(Int.random(in: -5...2000, using: &rng))) : .bool(Bool.random(using: &rng))
        case 4:
            // Delete a random value.
            guard let path = paths().dropFirst().randomElement(using: &rng) else { return }
            tree[path] = nil
        case 5:
            // Swap two recipient rows of a table (e.g. give O's row to AB).
            let rows = paths { $0.count == 6 && $0[4] == .key("recipients") }
            guard let a = rows.randomElement(using: &rng), let b = rows.randomElement(using: &rng),
                  let va = tree[a], let vb = tree[b] else { return }
            tree[a] = vb
            tree[b] = va
        case 6:
            // Select another named table.
            guard let path = paths(where: { $0.count == 3 && $0[2] == .key("selectedTable") }).randomElement(using: &rng) else { return }
            tree[path] = .string(["LB-CC", "LB-OLD", "STRICT", "ANY-GROUP", "PLASMA-RULE", "IDENTICAL-OR-LTOWB"].randomElement(using: &rng) ?? "")
        default:
            // Rename a random object key.
            guard let path = paths(.object).randomElement(using: &rng), case .object(var object)? = tree[path],
                  let key = object.keys.sorted().randomElement(using: &rng), let value = object[key] else { return }
            object[key] = nil
            object[vocabulary.randomElement(using: &rng) ?? "X"] = value
            tree[path] = .object(object)
        }
    }

    /// 4 seeds × 75 mutations = 300 mutated policy files.
    @Test("seeded random mutations of the policy file are refused or never accept an ABO-incompatible red cell",
          arguments: [2026, 2027, 2028, 2029] as [UInt64])
    func mutatedPoliciesNeverAcceptIncompatibleRedCells(seed: UInt64) throws {
        let original = try RulesFixture.policyTree()
        let originalNodes = original.nodes()
        var rng = SeededRandom(seed: seed)
        var loaded = 0
        var refused = 0
        var refusedForRedCells = 0
        var violations: [String] = []
        for _ in 0..<75 {
            var tree = original
            Self.mutate(&tree, using: &rng, nodes: originalNodes)
            if Int.random(in: 0..<3, using: &rng) == 0 { Self.mutate(&tree, using: &rng) }
            let policy: CompatibilityPolicy
            do {
                policy = try RulesFixture.load(tree)
            } catch {
                refused += 1
                if case .aboIncompatibleRedCells = error { refusedForRedCells += 1 }
                continue
            }
            loaded += 1
            for recipient in Self.recipients.compactMap({ $0 }) {
                for context in Self.contexts {
                    var r = recipient
                    r.context = try RecipientContext(parsing: context)
                    for urgency in [Urgency.emergency, .routine] {
                        for component in [Component.redCells, .wholeBlood] {
                            for verdict in policy.compatibility(of: component, for: r, urgency: urgency).acceptable
                            where !r.abo.acceptsRedCells(from: verdict.group.abo) {
                                violations.append("policy accepted \(verdict.group) \(component.rawValue) for \(r.abo)")
                            }
                        }
                    }
                }
            }
        }
        #expect(violations.isEmpty)
        #expect(loaded >= 3, "too few mutated policies loaded (\(loaded)) for the property to mean anything")
        #expect(refusedForRedCells >= 3, "too few mutations hit the red-cell check (\(refusedForRedCells))")
        #expect(loaded + refused == 75)
    }
}
