/// Minimum-cost flow by successive shortest paths with node potentials (Edmonds–Karp 1972,
/// Tomizawa 1971; Ahuja, Magnanti and Orlin, *Network Flows*, ch. 9).
///
/// Written here rather than taken from a package: no Swift package in reach offers min-cost flow
/// (SwiftGraph 4.0.0 has shortest paths and max-flow-free traversals only), and the algorithm is
/// small. Costs are integers so ties and optimality are exact.
///
/// `solve` routes fixed supplies to one sink. Optional demand is modelled by the caller with an
/// extra arc from each supply node straight to the sink at the price of not serving it, so the
/// optimum trades that price against the units' costs exactly. Every intermediate flow is of
/// minimum cost for its supplies (reduced costs stay non-negative), so the final flow is optimal.
public struct MinCostFlow: Sendable {
    /// Number of nodes.
    public let nodeCount: Int
    private var head: [Int32]
    private var next: [Int32] = []
    private var target: [Int32] = []
    private var capacity: [Int32] = []
    private var cost: [Int64] = []
    private var originalCapacity: [Int32] = []

    /// Creates an empty network of `nodeCount` nodes.
    public init(nodeCount: Int) {
        self.nodeCount = nodeCount
        head = [Int32](repeating: -1, count: nodeCount)
    }

    /// Number of arcs added (without their residual twins).
    public var arcCount: Int { target.count / 2 }

    /// Adds an arc and returns its id (for `flow(on:)`).
    @discardableResult
    public mutating func addArc(from: Int, to: Int, capacity arcCapacity: Int, cost arcCost: Int64) -> Int {
        let id = target.count
        target.append(Int32(to)); capacity.append(Int32(arcCapacity)); cost.append(arcCost)
        next.append(head[from]); head[from] = Int32(id)
        target.append(Int32(from)); capacity.append(0); cost.append(-arcCost)
        next.append(head[to]); head[to] = Int32(id + 1)
        originalCapacity.append(Int32(arcCapacity)); originalCapacity.append(0)
        return id / 2
    }

    /// Flow on an arc after `solve`.
    public func flow(on arc: Int) -> Int { Int(capacity[arc * 2 + 1]) }

    /// Sends every supply node's supply to `sink` at minimum total cost, by successive shortest
    /// paths from one supply node at a time (Ahuja, Magnanti and Orlin, *Network Flows*, §9.7:
    /// successive shortest paths with excesses). Returns the flow sent and its total cost.
    ///
    /// Each search is a Dijkstra from a single node with excess that stops at the sink, so it
    /// explores only the part of the graph the shortest augmenting path can use (the node's
    /// candidate units and the few orders holding them), not every node with excess. The caller
    /// makes the sink reachable from every supply node (the batch optimiser's "unserved" arc at the
    /// urgency's penalty); supply that cannot reach it is left unsent. The network must have no
    /// negative cycle (the batch networks are acyclic).
    public mutating func solve(supplies: [(node: Int, amount: Int)], sink: Int) -> (flow: Int, cost: Int64) {
        let infinity = Int64.max / 4
        // Initial potentials: shortest distances from a virtual root joined to every supply node
        // by a zero-cost arc (queue-based Bellman–Ford), so every reduced cost is non-negative.
        var potential = [Int64](repeating: infinity, count: nodeCount)
        var queue: [Int32] = []
        var inQueue = [Bool](repeating: false, count: nodeCount)
        for s in supplies where potential[s.node] != 0 {
            potential[s.node] = 0
            inQueue[s.node] = true
            queue.append(Int32(s.node))
        }
        var q = 0
        while q < queue.count {
            let u = Int(queue[q]); q += 1
            inQueue[u] = false
            var e = head[u]
            while e >= 0 {
                let ei = Int(e)
                if capacity[ei] > 0 {
                    let v = Int(target[ei])
                    let nd = potential[u] + cost[ei]
                    if nd < potential[v] {
                        potential[v] = nd
                        if !inQueue[v] { inQueue[v] = true; queue.append(Int32(v)) }
                    }
                }
                e = next[ei]
            }
            if q > 4096 && q * 2 > queue.count { queue.removeFirst(q); q = 0 }
        }
        for i in 0..<nodeCount where potential[i] == infinity { potential[i] = 0 }

        var distance = [Int64](repeating: infinity, count: nodeCount)
        var done = [Bool](repeating: false, count: nodeCount)
        var parentArc = [Int32](repeating: -1, count: nodeCount)
        var touched: [Int32] = []
        var heap = DistanceHeap()
        var totalFlow = 0
        var totalCost: Int64 = 0

        for supply in supplies {
            let source = supply.node
            var excess = supply.amount
            while excess > 0 {
                for t in touched { distance[Int(t)] = infinity; done[Int(t)] = false; parentArc[Int(t)] = -1 }
                touched.removeAll(keepingCapacity: true)
                heap.removeAll()
                distance[source] = 0
                touched.append(Int32(source))
                heap.push(0, Int32(source))
                var reached = false
                while let (d, node) = heap.pop() {
                    let u = Int(node)
                    if done[u] || d > distance[u] { continue }
                    done[u] = true
                    if u == sink { reached = true; break }
                    var e = head[u]
                    while e >= 0 {
                        let ei = Int(e)
                        if capacity[ei] > 0 {
                            let v = Int(target[ei])
                            if !done[v] {
                                let nd = d + cost[ei] + potential[u] - potential[v]
                                if nd < distance[v] {
                                    if distance[v] == infinity { touched.append(Int32(v)) }
                                    distance[v] = nd
                                    parentArc[v] = e
                                    heap.push(nd, Int32(v))
                                }
                            }
                        }
                        e = next[ei]
                    }
                }
                guard reached else { break }
                let sinkDistance = distance[sink]
                // Settled nodes move by (their distance − the sink's); every other node keeps its
                // potential, which is the usual update shifted by a constant: reduced costs stay ≥ 0.
                for t in touched where done[Int(t)] {
                    let v = Int(t)
                    potential[v] += distance[v] - sinkDistance
                }
                var push = Int32(clamping: excess)
                var v = sink
                var pathCost: Int64 = 0
                while v != source {
                    let e = Int(parentArc[v])
                    push = min(push, capacity[e])
                    pathCost += cost[e]
                    v = Int(target[e ^ 1])
                }
                v = sink
                while v != source {
                    let e = Int(parentArc[v])
                    capacity[e] -= push
                    capacity[e ^ 1] += push
                    v = Int(target[e ^ 1])
                }
                excess -= Int(push)
                totalFlow += Int(push)
                totalCost += Int64(push) * pathCost
            }
        }
        return (totalFlow, totalCost)
    }
}

/// A binary min-heap of (distance, node) pairs with lazy deletion, for Dijkstra.
struct DistanceHeap {
    private var keys: [Int64] = []
    private var nodes: [Int32] = []

    mutating func removeAll() { keys.removeAll(keepingCapacity: true); nodes.removeAll(keepingCapacity: true) }

    mutating func push(_ key: Int64, _ node: Int32) {
        keys.append(key); nodes.append(node)
        var i = keys.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if keys[p] <= keys[i] { break }
            keys.swapAt(p, i); nodes.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> (Int64, Int32)? {
        guard let firstKey = keys.first, let firstNode = nodes.first else { return nil }
        let lastKey = keys.removeLast(), lastNode = nodes.removeLast()
        if !keys.isEmpty {
            keys[0] = lastKey; nodes[0] = lastNode
            var i = 0
            let n = keys.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && keys[l] < keys[m] { m = l }
                if r < n && keys[r] < keys[m] { m = r }
                if m == i { break }
                keys.swapAt(m, i); nodes.swapAt(m, i)
                i = m
            }
        }
        return (firstKey, firstNode)
    }
}
