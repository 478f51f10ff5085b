import BloodMatchCore
import Synchronization

/// Expiry tables for availability lookups, built once per index and per (component, required
/// attributes, never-substituted attributes) and dropped when the index changes.
///
/// Bounded by `budgetBytes`: once full, further combinations are answered by walking their buckets
/// (the same answer, slower), so a caller cycling through requirement combinations cannot grow
/// the process's memory.
final class ExpiryTables: Sendable {
    private struct Key: Hashable {
        var component: Component
        var required: AttributeSet
        var excluded: AttributeSet
    }

    private struct State {
        var indexKey = ""
        var tables: [Key: ExpiryTable] = [:]
        var bytes = 0
    }

    private let state = Mutex(State())
    /// The most memory the tables of one index may hold.
    let budgetBytes: Int

    init(budgetBytes: Int = 64 << 20) { self.budgetBytes = budgetBytes }

    /// The table for `component`, `required` and `excluded` over `verified`'s index, built on
    /// first use; nil when the budget is spent.
    func table(_ verified: VerifiedIndex, component: Component, required: AttributeSet, excluded: AttributeSet) -> ExpiryTable? {
        let indexKey = verified.cacheKey
        let key = Key(component: component, required: required, excluded: excluded)
        let cached: ExpiryTable?? = state.withLock { s in
            if s.indexKey != indexKey {
                s = State()
                s.indexKey = indexKey
            }
            if let table = s.tables[key] { return .some(table) }
            return s.bytes >= budgetBytes ? .some(nil) : .none
        }
        if let cached { return cached }
        // Built outside the lock: two requests may build the same table once each.
        let built = verified.index.expiryTable(component: component, required: required, excluded: excluded)
        state.withLock { s in
            guard s.indexKey == indexKey, s.tables[key] == nil else { return }
            s.tables[key] = built
            s.bytes += built.byteCount
        }
        return built
    }
}
