/// The live matcher's order: time first, then preference inside a time band.
///
/// A unit is chosen from the band of the nearest unit still unchosen: every eligible unit whose ETA
/// is at most `toleranceMinutes` later than that nearest one. Inside the band the order is
/// preference rank (O RhD-negative for non-O recipients and RhD-positive for RhD-negative ones rank
/// last in the policy), then scarce attributes the request did not ask for (plain units first),
/// then expiry (first expiring first), then identity (DIN, then product code: reproducible only,
/// no clinical meaning). The next unit comes from the band of the nearest unit left, and so on.
/// Units at one centre share an ETA and so always fall in one band. Sources: Data/SOURCES.md §S26.
///
/// A band that starts by the arrival deadline (the urgency's time ceiling, or `needed_by`) ends
/// there: a unit in time is never passed over for a better-ranked one that would be late (§S27).
/// Units of a limited choice (low-titre group O whole blood: at most 2 per request, §S5) count
/// against `limit`; once it is reached the rest of them are passed over.
///
/// Pure: candidates come in ETA order, the order the matcher visits centres in; the index only
/// gives their identity order.
struct PreferenceBands {
    /// One eligible unit as the selection sees it.
    struct Candidate {
        // Rank and surplus as 32-bit values keep a candidate within 40 bytes with `limited`.
        /// Minutes to arrival (the band is measured in these).
        var eta: Double
        /// Preference rank of the unit's group, 1 = best.
        var rank: Int32
        /// Scarce attributes carried that the request did not ask for.
        var surplus: Int32
        /// Expiry, seconds since 1970.
        var expires: Int64
        /// Where the unit is in the index (its identity).
        var position: Int
        /// Whether the unit counts against the selection's `limit` (its choice is limited per request).
        var limited: Bool = false
    }

    /// How much later (minutes) a unit may arrive than the nearest unchosen one and still be in its band.
    var toleranceMinutes: Double
    /// Whether rank and scarce attributes order the band (false: the shared benchmark's distance-only
    /// semantics, where the band is one distance and expiry alone orders it).
    var usesPreference: Bool
    /// The index whose positions the candidates name (for the identity order).
    var index: InventoryIndex
    /// The ETA (minutes) by which units should arrive; a band starting by it ends at it.
    var deadlineMinutes: Double = .infinity

    /// Where the band that starts at `start` ends.
    @inline(__always)
    func bandEnd(start: Double) -> Double {
        let end = start + toleranceMinutes
        return start <= deadlineMinutes ? min(end, deadlineMinutes) : end
    }

    /// Whether `a` is chosen before `b` when both are in the band.
    @inline(__always)
    func precedes(_ a: Candidate, _ b: Candidate) -> Bool {
        if usesPreference {
            if a.rank != b.rank { return a.rank < b.rank }
            if a.surplus != b.surplus { return a.surplus < b.surplus }
        }
        if a.expires != b.expires { return a.expires < b.expires }
        return index.unitPrecedes(a.position, b.position)
    }

    /// The selection: indices into `candidates` (which must be in non-decreasing ETA order) of the
    /// chosen units, best first, each with the ETA its band started at. At most `limit` of the
    /// `limited` candidates are chosen.
    func select<C: RandomAccessCollection>(_ candidates: C, quantity: Int, limit: Int = .max) -> [(index: Int, bandStart: Double)]
    where C.Element == Candidate, C.Index == Int {
        guard quantity > 0, !candidates.isEmpty else { return [] }
        let count = candidates.count
        if quantity == 1 && limit > 0 {
            // The best of the first band: no bookkeeping needed.
            let start = candidates[0].eta
            let end = bandEnd(start: start)
            var best = 0
            var i = 1
            while i < count && candidates[i].eta <= end {
                if precedes(candidates[i], candidates[best]) { best = i }
                i += 1
            }
            return [(best, start)]
        }
        var chosen: [(index: Int, bandStart: Double)] = []
        chosen.reserveCapacity(min(quantity, count))
        var taken = [Bool](repeating: false, count: count)
        var heap: [Int] = []
        var nearest = 0
        var next = 0
        var limitedChosen = 0
        while chosen.count < quantity {
            // Limited units past the limit are out of the selection altogether.
            while nearest < count && (taken[nearest] || candidates[nearest].limited && limitedChosen >= limit) { nearest += 1 }
            guard nearest < count else { break }
            let start = candidates[nearest].eta
            let end = bandEnd(start: start)
            while next < count && candidates[next].eta <= end {
                push(&heap, next, candidates)
                next += 1
            }
            var best = pop(&heap, candidates)
            while candidates[best].limited && limitedChosen >= limit {
                taken[best] = true
                guard !heap.isEmpty else { best = -1; break }
                best = pop(&heap, candidates)
            }
            // Every unit of the band was a limited one past the limit: the next band.
            if best < 0 { continue }
            taken[best] = true
            if candidates[best].limited { limitedChosen += 1 }
            chosen.append((best, start))
        }
        return chosen
    }

    // A binary min-heap of candidate indices under `precedes`.
    private func push<C: RandomAccessCollection>(_ heap: inout [Int], _ i: Int, _ c: C) where C.Element == Candidate, C.Index == Int {
        heap.append(i)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(c[heap[child]], c[heap[parent]]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func pop<C: RandomAccessCollection>(_ heap: inout [Int], _ c: C) -> Int where C.Element == Candidate, C.Index == Int {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count && precedes(c[heap[left]], c[heap[smallest]]) { smallest = left }
                if right < heap.count && precedes(c[heap[right]], c[heap[smallest]]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
