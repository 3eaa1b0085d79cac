// The library guide as a program: every step of Docs/LIBRARY.md, compiled with the package.
// snippet.hide
import Foundation
// snippet.show
import InfinityDB

// snippet.define-index
/// The app's schema: a set of named, typed fields.
struct Book: Codable, Sendable {
    var title: String
    var author: String
    var read: Bool
}

struct Preferences: Codable, Sendable {
    var sortByAuthor: Bool
}

enum Library {
    static let books = VersionedMap<UUID, Book>("books")
    static let readingList = List<UUID>("reading-list")
    static let preferences = Serialized<Preferences>("preferences")
}
// snippet.end

// snippet.hide
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("library-guide-\(UUID())").path
defer { try? FileManager.default.removeItem(atPath: folder) }
let passphraseText = "a long passphrase"
var options = StoreOptions()
options.scrypt = .minimal
// snippet.show

// snippet.open
let store = try await Store.create(at: folder, agentName: "alice", passphrase: SecureBytes(utf8: passphraseText), options: options)
let database = try store.database()
// snippet.end

// snippet.edit-commit
let dune = UUID()
let draft = try await database.draft(on: "main")
try await draft.set(Book(title: "Dune", author: "Frank Herbert", read: false), for: dune, in: Library.books)
try await draft.append([dune], to: Library.readingList)
try await draft.set(Preferences(sortByAuthor: true), in: Library.preferences)
let first = try await draft.commit(message: "Add Dune")

try await draft.set(Book(title: "Dune", author: "Frank Herbert", read: true), for: dune, in: Library.books)
try await draft.remove(0..<1, from: Library.readingList)
try await draft.commit(message: "Finished Dune")
// snippet.end

// snippet.time-travel
let now = try await database.snapshot("main")
let before = try await database.snapshot("main~1")            // or an id prefix, a tag, main@{2026-05-01 12:00}
print(try await now.get(dune, in: Library.books)?.read ?? false)     // true
print(try await before.get(dune, in: Library.books)?.read ?? false)  // false
print(try await database.log("main").map(\.commit.message))        // ["Finished Dune", "Add Dune"]
// snippet.end

// snippet.fork-diff
try await database.createBranch("holiday", at: "main")
let holiday = try await database.draft(on: "holiday")
let emma = UUID()
try await holiday.set(Book(title: "Emma", author: "Jane Austen", read: false), for: emma, in: Library.books)
let holidayState = try await holiday.commit(message: "Holiday reading")

for change in try await holidayState.changes(in: Library.books, since: first) {
    switch change {
    case .added(let id, let book): print("added \(book.title) (\(id))")
    case .removed(_, let book): print("removed \(book.title)")
    case .changed(_, let old, let new): print("\(old.title): read \(old.read) → \(new.read)")
    }
}
// snippet.end

// snippet.merge
let main = try await database.draft(on: "main")
try await main.set(Book(title: "Dune", author: "F. Herbert", read: true), for: dune, in: Library.books)
try await main.commit(message: "Shorter author name")

let outcome = try await database.merge(
    "holiday", into: "main",
    policy: MergePolicy.theirs.resolving(Library.books) { _, _, ours, theirs in ours ?? theirs })
print(try await outcome.snapshot.count(of: Library.books))  // 2
// snippet.end
