import Foundation
import InfinityDB
import InfinityTestSupport
import Testing

/// Random operations on two branches, checked against a plain Dictionary and Array after every
/// commit, checkout, diff and merge.
@Suite struct DatabasePropertyTests {
    static let map = VersionedMap<String, Int>("map")
    static let list = List<Int>("list")

    struct Model: Equatable {
        var map: [String: Int] = [:]
        var list: [Int] = []
    }

    func expectSnapshot(_ snapshot: Snapshot, matches model: Model, _ context: String) async throws {
        let entries = try await snapshot.entries(in: Self.map)
        #expect(entries.map(\.key) == model.map.keys.sorted(), "\(context): map keys")
        #expect(entries.map(\.value) == model.map.keys.sorted().map { model.map[$0]! }, "\(context): map values")
        #expect(try await snapshot.elements(of: Self.list) == model.list, "\(context): list")
        #expect(try await snapshot.count(of: Self.map) == model.map.count)
    }

    @Test(arguments: [UInt64(11), 22, 33])
    func randomOperationsMatchTheModel(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let database = try await makeDatabase()
        var drafts: [String: Draft] = ["main": try await database.draft(on: "main")]
        var working: [String: Model] = ["main": Model()]
        var committed: [ChunkID: Model] = [:]
        var commitRefs: [ChunkRef] = []
        var checks = (checkouts: 0, diffs: 0, merges: 0)

        for step in 0..<300 {
            let branch = drafts.keys.sorted().randomElement(using: &random)!
            let draft = drafts[branch]!
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<40:
                let key = "k\(Int.random(in: 0..<300, using: &random))"
                if Int.random(in: 0..<4, using: &random) == 0 {
                    try await draft.remove(key, from: Self.map)
                    working[branch]!.map[key] = nil
                } else {
                    let value = Int.random(in: 0..<1000, using: &random)
                    try await draft.set(value, for: key, in: Self.map)
                    working[branch]!.map[key] = value
                }
            case 40..<55 where branch == "main":
                // Only main edits the list, so merges never need a list policy.
                let count = working[branch]!.list.count
                let start = Int.random(in: 0...count, using: &random)
                let end = min(count, start + Int.random(in: 0...3, using: &random))
                let inserted = (0..<Int.random(in: 0...4, using: &random)).map { _ in Int.random(in: 0..<100, using: &random) }
                try await draft.replace(start..<end, with: inserted, in: Self.list)
                working[branch]!.list.replaceSubrange(start..<end, with: inserted)
            case 55..<75:
                let snapshot = try await draft.commit(message: "step \(step)")
                let ref = snapshot.commit!.ref
                committed[ref.id] = working[branch]!
                commitRefs.append(ref)
                try await expectSnapshot(snapshot, matches: working[branch]!, "commit at step \(step)")
            case 75..<83 where !commitRefs.isEmpty:
                let ref = commitRefs.randomElement(using: &random)!
                try await expectSnapshot(try await database.snapshot(commit: ref), matches: committed[ref.id]!, "checkout at step \(step)")
                checks.checkouts += 1
            case 83..<90 where commitRefs.count >= 2:
                let old = commitRefs.randomElement(using: &random)!
                let new = commitRefs.randomElement(using: &random)!
                let oldSnapshot = try await database.snapshot(commit: old)
                let newSnapshot = try await database.snapshot(commit: new)
                var rebuilt = committed[old.id]!.map
                for change in try await newSnapshot.changes(in: Self.map, since: oldSnapshot) {
                    switch change {
                    case .added(let key, let value):
                        #expect(rebuilt[key] == nil)
                        rebuilt[key] = value
                    case .removed(let key, let value):
                        #expect(rebuilt[key] == value)
                        rebuilt[key] = nil
                    case .changed(let key, let oldValue, let newValue):
                        #expect(rebuilt[key] == oldValue)
                        rebuilt[key] = newValue
                    }
                }
                #expect(rebuilt == committed[new.id]!.map, "map diff at step \(step)")
                var list = committed[old.id]!.list
                for hunk in try await newSnapshot.changes(in: Self.list, since: oldSnapshot).reversed() {
                    list.replaceSubrange(hunk.oldRange, with: hunk.inserted)
                }
                #expect(list == committed[new.id]!.list, "list diff at step \(step)")
                checks.diffs += 1
            case 90..<94 where drafts["side"] == nil && !commitRefs.isEmpty:
                try await database.createBranch("side", at: "main")
                drafts["side"] = try await database.draft(on: "side")
                let head = try await database.resolve("main")
                working["side"] = committed[head.id]!
            case 94..<100 where drafts["side"] != nil:
                // Commit both, then merge side into main with "theirs wins", as the model does.
                for name in ["main", "side"] {
                    let snapshot = try await drafts[name]!.commit(message: "before merge \(step)")
                    committed[snapshot.commit!.ref.id] = working[name]!
                    commitRefs.append(snapshot.commit!.ref)
                }
                let ours = try await database.resolve("main")
                let theirs = try await database.resolve("side")
                let baseRef = try await database.commits.mergeBase(ours, theirs)
                let base = baseRef.map { committed[$0.id]! } ?? Model()
                var expected = working["main"]!
                let sides = (working["main"]!.map, working["side"]!.map)
                for key in Set(sides.0.keys).union(sides.1.keys).union(base.map.keys) {
                    let (o, t, b) = (sides.0[key], sides.1[key], base.map[key])
                    if o == t || t == b { continue }
                    expected.map[key] = t
                }
                let outcome = try await database.merge("side", into: "main", policy: .theirs)
                try await expectSnapshot(outcome.snapshot, matches: expected, "merge at step \(step)")
                committed[outcome.snapshot.commit!.ref.id] = expected
                commitRefs.append(outcome.snapshot.commit!.ref)
                working["main"] = expected
                drafts["main"] = try await database.draft(on: "main")
                checks.merges += 1
            default:
                break
            }
        }
        #expect(checks.checkouts > 3 && checks.diffs > 3 && checks.merges > 1, "the run exercised every kind of check: \(checks)")
    }
}
