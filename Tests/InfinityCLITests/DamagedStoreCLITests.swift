import Foundation
import InfinityTestSupport
import Testing

/// A store with damage in it: what can still be read is restored exactly, what cannot is named.
@Suite struct DamagedStoreCLITests {
    /// Three files of 400 KiB in packs of 1 MiB, so damage to one pack loses some files only.
    private func storeWithThreeFiles(in directory: String) async throws -> (Infinity, store: String, data: String) {
        let store = directory + "/store"
        let data = directory + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        for index in 0..<3 {
            try Data(SampleData.bytes(count: 400 << 10, seed: UInt64(index))).write(to: URL(fileURLWithPath: data + "/file-\(index)"))
        }
        try Data("small\n".utf8).write(to: URL(fileURLWithPath: data + "/small.txt"))
        let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "damage", "INFINITY_HOME": directory + "/home", "INFINITY_STORE": store])
        #expect(try await cli.call("init", "--bare", store, "--pack-size", "1MiB", "-q").status == 0)
        #expect(try await cli.call("commit", data, "-m", "three files", "-q").status == 0)
        return (cli, store, data)
    }

    private func packs(of store: String) throws -> [(path: String, size: Int)] {
        try FileManager.default.subpathsOfDirectory(atPath: store + "/packs").compactMap { sub in
            let path = store + "/packs/" + sub
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            guard attributes[.type] as? FileAttributeType == .typeRegular else { return nil }
            return (path, attributes[.size] as! Int)
        }.sorted { $0.size > $1.size }
    }

    @Test func aDamagedPackLosesOnlyItsFilesAndNamesThem() async throws {
        try await withTemporaryDirectory { directory in
            let (cli, store, data) = try await storeWithThreeFiles(in: directory)
            let largest = try #require(try packs(of: store).first)
            var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: largest.path)))
            bytes[1000] ^= 0x40
            try Data(bytes).write(to: URL(fileURLWithPath: largest.path))
            let pack = String(largest.path.dropFirst(store.count + 1))

            let check = try await cli.call("check", "--read-data")
            #expect(check.status == 1 && (check.output + check.error).contains(pack), "\(check.output)\(check.error)")

            let restored = directory + "/restored"
            let checkout = try await cli.call("checkout", "main", "--to", restored, "-q")
            #expect(checkout.status == 3, "\(checkout.error)")
            #expect(checkout.error.contains("not restored") && checkout.error.contains("could not be restored"), "\(checkout.error)")
            var lost = 0
            for name in ["file-0", "file-1", "file-2", "small.txt"] {
                let original = data + "/" + name
                let copy = restored + data + "/" + name
                if FileManager.default.fileExists(atPath: copy) {
                    #expect(FileManager.default.contentsEqual(atPath: original, andPath: copy), "\(name) is restored exactly")
                } else {
                    lost += 1
                    #expect(checkout.error.contains(String(data.dropFirst()) + "/" + name), "\(name) is named as lost")
                }
            }
            #expect(lost >= 1 && lost < 4, "only the files in the damaged pack are lost")

            // repair names the same files, by ref: reading the data, or from a pack that is gone.
            let repair = try await cli.call("repair", "--read-data")
            #expect(repair.status == 3 && repair.output.contains("refs/heads/main: \(lost) file"), "\(repair.output)\(repair.error)")
            try FileManager.default.removeItem(atPath: largest.path)
            let withoutPack = try await cli.call("repair", "--json")
            #expect(withoutPack.status == 3 && withoutPack.output.contains(pack) && withoutPack.output.contains("file-"), "\(withoutPack.output)")
        }
    }

    @Test func aDamagedIndexIsSetAsideAndRebuiltFromThePacks() async throws {
        try await withTemporaryDirectory { directory in
            let (cli, store, data) = try await storeWithThreeFiles(in: directory)
            let index = store + "/local/index.sqlite"
            var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: index)))
            for offset in 100..<min(4000, bytes.count) { bytes[offset] = 0 }
            try Data(bytes).write(to: URL(fileURLWithPath: index))

            let check = try await cli.call("check", "--read-data")
            #expect(check.status == 0, "\(check.output)\(check.error)")
            #expect(check.error.contains("rebuilt from the packs") && check.error.contains(index), "\(check.error)")
            let aside = try FileManager.default.contentsOfDirectory(atPath: store + "/local").filter { $0.hasPrefix("index.sqlite.damaged-") }
            #expect(!aside.isEmpty, "the damaged index is kept for inspection")
            #expect(try await cli.call("checkout", "main", "--to", directory + "/restored", "-q").status == 0)
            #expect(FileManager.default.contentsEqual(atPath: data, andPath: directory + "/restored" + data))
        }
    }

    @Test func aMissingRefsDatabaseIsNamedNotReplacedByAnEmptyOne() async throws {
        try await withTemporaryDirectory { directory in
            let (cli, store, _) = try await storeWithThreeFiles(in: directory)
            try FileManager.default.removeItem(atPath: store + "/refs.sqlite")
            for command in ["log", "check"] {
                let result = try await cli.call(command)
                #expect(result.status == 1 && result.error.contains(store + "/refs.sqlite") && result.error.contains("missing"), "\(result.error)")
            }
            #expect(!FileManager.default.fileExists(atPath: store + "/refs.sqlite"), "no empty history was started in its place")
        }
    }

    @Test func aDamagedKeyFileIsNamedBesideTheWrongPassphrase() async throws {
        try await withTemporaryDirectory { directory in
            let (cli, store, _) = try await storeWithThreeFiles(in: directory)
            let keyFile = try #require(try FileManager.default.contentsOfDirectory(atPath: store + "/keys").first)
            let path = store + "/keys/" + keyFile
            var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
            // One letter of the sealed secret changed for another: still a well-formed file.
            let text = String(decoding: bytes, as: UTF8.self)
            let sealed = try #require(text.range(of: #""[A-Za-z0-9+/]{40,}"#, options: .regularExpression))
            let letter = text.index(sealed.lowerBound, offsetBy: 20)
            bytes = Array((text[..<letter] + (text[letter] == "A" ? "B" : "A") + text[text.index(after: letter)...]).utf8)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let log = try await cli.call("log")
            #expect(log.status == 1 && log.error.contains("keys/" + keyFile), "\(log.error)")
            #expect(log.error.contains("damaged") || log.error.contains("corrupt"), "\(log.error)")
        }
    }
}
