import InfinityPacks

/// Decoded, verified commits by chunk id, at most `capacity` of them.
///
/// Eviction is CLOCK (second chance): cheap on every hit, and close enough to least-recently-used
/// that the tips of busy branches stay in while a long `log` walk streams through.
struct CommitCache {
    private struct Slot {
        var id: ChunkID
        var commit: Commit
        var recentlyUsed: Bool
    }

    let capacity: Int
    private var slotByID: [ChunkID: Int] = [:]
    private var slots: [Slot] = []
    private var hand = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { slots.count }

    mutating func commit(_ id: ChunkID) -> Commit? {
        guard let index = slotByID[id] else { return nil }
        slots[index].recentlyUsed = true
        return slots[index].commit
    }

    mutating func insert(_ commit: Commit, for id: ChunkID) {
        if let index = slotByID[id] {
            slots[index].recentlyUsed = true
            return
        }
        guard slots.count == capacity else {
            slotByID[id] = slots.count
            slots.append(Slot(id: id, commit: commit, recentlyUsed: false))
            return
        }
        while slots[hand].recentlyUsed {
            slots[hand].recentlyUsed = false
            hand = (hand + 1) % capacity
        }
        slotByID[slots[hand].id] = nil
        slots[hand] = Slot(id: id, commit: commit, recentlyUsed: false)
        slotByID[id] = hand
        hand = (hand + 1) % capacity
    }
}

/// A binary heap that pops the element ranked highest by `ranksBefore`.
struct PriorityQueue<Element> {
    private var heap: [Element] = []
    private let ranksBefore: (Element, Element) -> Bool

    /// - Parameter ranksBefore: true when the first element must come out before the second.
    init(ranksBefore: @escaping (Element, Element) -> Bool) {
        self.ranksBefore = ranksBefore
    }

    var isEmpty: Bool { heap.isEmpty }

    mutating func push(_ element: Element) {
        heap.append(element)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard ranksBefore(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < heap.count && ranksBefore(heap[left], heap[first]) { first = left }
            if right < heap.count && ranksBefore(heap[right], heap[first]) { first = right }
            guard first != parent else { return top }
            heap.swapAt(parent, first)
            parent = first
        }
    }
}
