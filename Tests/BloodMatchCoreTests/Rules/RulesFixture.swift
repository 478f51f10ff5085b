@testable import BloodMatchCore
import Foundation

/// The repository's `Data/policy.json`, found by walking up from this file (or `BLOODMATCH_REPO`),
/// and helpers for writing compatibility expectations as text.
enum RulesFixture {
    /// Candidate locations of `Data/policy.json`.
    static var policyURLs: [URL] {
        var urls: [URL] = []
        if let repo = ProcessInfo.processInfo.environment["BLOODMATCH_REPO"], !repo.isEmpty {
            urls.append(URL(fileURLWithPath: repo).appendingPathComponent("Data/policy.json"))
        }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<6 {
            urls.append(directory.appendingPathComponent("Data/policy.json"))
            directory = directory.deletingLastPathComponent()
        }
        return urls
    }

    /// The bytes of the policy file.
    static let policyBytes: Data = {
        for url in policyURLs {
            if let data = try? Data(contentsOf: url) { return data }
        }
        return Data()
    }()

    /// The policy in force, loaded and validated once per test run.
    static let loaded: Result<CompatibilityPolicy, PolicyError> = Result { () throws(PolicyError) in
        try CompatibilityPolicy(jsonData: policyBytes)
    }

    /// The policy, failing the calling test with the load error if it is refused.
    static func loadPolicy() throws -> CompatibilityPolicy { try loaded.get() }

    /// Group → rank of every acceptable group, for comparing a whole result in one expectation.
    static func ranks(of result: CompatibilityResult) -> [BloodGroup: Int] {
        var ranks: [BloodGroup: Int] = [:]
        for verdict in result.verdicts where verdict.isAcceptable { ranks[verdict.group] = verdict.rank ?? 0 }
        return ranks
    }

    /// The policy file as a JSON tree, parsed once.
    static let originalTree: Result<JSONValue, DecodingError> = Result { () throws(DecodingError) in
        do { return try JSONDecoder().decode(JSONValue.self, from: policyBytes) } catch let error as DecodingError {
            throw error
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(error)"))
        }
    }

    /// The policy file as a JSON tree for mutation.
    static func policyTree() throws -> JSONValue { try originalTree.get() }

    /// Loads a policy from a JSON tree.
    static func load(_ tree: JSONValue) throws(PolicyError) -> CompatibilityPolicy {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data: Data
        do { data = try encoder.encode(tree) } catch { throw .malformed(path: "", detail: "\(error)") }
        return try CompatibilityPolicy(jsonData: data)
    }

    /// `A+`, `O-`.
    static func group(_ text: String) -> BloodGroup? {
        guard let sign = text.last, sign == "+" || sign == "-", let abo = ABO(rawValue: String(text.dropLast())) else {
            return nil
        }
        return BloodGroup(abo, sign == "+" ? .positive : .negative)
    }

    /// Parses `AB+ > A+=B+ > O-` into group → expected rank; `none` is the empty order.
    static func order(_ text: String) -> [BloodGroup: Int] {
        var ranks: [BloodGroup: Int] = [:]
        if text == "none" { return ranks }
        for (offset, tier) in text.split(separator: ">").enumerated() {
            for name in tier.split(separator: "=") {
                let trimmed = name.trimmingCharacters(in: .whitespaces)
                if let group = group(trimmed) { ranks[group] = offset + 1 }
            }
        }
        return ranks
    }

    /// The result as the same text form, for readable failure messages.
    static func order(of result: CompatibilityResult) -> String {
        let acceptable = result.acceptable
        if acceptable.isEmpty { return "none" }
        var tiers: [[String]] = []
        var last: Int?
        for verdict in acceptable {
            if verdict.rank != last { tiers.append([]) }
            tiers[tiers.count - 1].append(verdict.group.description)
            last = verdict.rank
        }
        return tiers.map { $0.joined(separator: "=") }.joined(separator: " > ")
    }

    /// A recipient from `A-` or `unknown` and context tokens.
    static func recipient(_ group: String, _ context: String) throws -> Recipient {
        Recipient(group: group == "unknown" ? nil : Self.group(group), context: try RecipientContext(parsing: context))
    }
}

/// A deterministic generator for seeded property tests.
typealias SeededRandom = SplitMix64

/// A JSON tree that keeps every value, for mutating the policy file in property tests.
indirect enum JSONValue: Codable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if n == n.rounded(), abs(n) < 1e15 { try c.encode(Int(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// What kind of value sits at a path.
    enum Kind { case null, string, scalar, array, object }

    /// Every path to a value with its kind, in a deterministic order (object keys sorted).
    func nodes() -> [(path: [PathElement], kind: Kind)] {
        var result: [(path: [PathElement], kind: Kind)] = []
        collect(prefix: [], into: &result)
        return result
    }

    private func collect(prefix: [PathElement], into result: inout [(path: [PathElement], kind: Kind)]) {
        switch self {
        case .null: result.append((prefix, .null))
        case .string: result.append((prefix, .string))
        case .bool, .number: result.append((prefix, .scalar))
        case .array(let a):
            result.append((prefix, .array))
            for (i, v) in a.enumerated() { v.collect(prefix: prefix + [.index(i)], into: &result) }
        case .object(let o):
            result.append((prefix, .object))
            for key in o.keys.sorted() { o[key]?.collect(prefix: prefix + [.key(key)], into: &result) }
        }
    }

    enum PathElement: Hashable { case key(String), index(Int) }

    subscript(path: [PathElement]) -> JSONValue? {
        get {
            guard let first = path.first else { return self }
            let rest = Array(path.dropFirst())
            switch (self, first) {
            case (.array(let a), .index(let i)) where a.indices.contains(i): return a[i][rest]
            case (.object(let o), .key(let k)): return o[k]?[rest]
            default: return nil
            }
        }
        set {
            guard let first = path.first else {
                if let newValue { self = newValue }
                return
            }
            let rest = Array(path.dropFirst())
            switch (self, first) {
            case (.array(var a), .index(let i)) where a.indices.contains(i):
                if rest.isEmpty, newValue == nil { a.remove(at: i) } else { a[i][rest] = newValue }
                self = .array(a)
            case (.object(var o), .key(let k)):
                if rest.isEmpty { o[k] = newValue } else if var child = o[k] {
                    child[rest] = newValue
                    o[k] = child
                }
                self = .object(o)
            default: break
            }
        }
    }
}
