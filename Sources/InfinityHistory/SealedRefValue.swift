import InfinityChunks
import InfinityCrypto
import InfinityPacks

/// Seals the secret half of a ref value (a commit's chunk key and length), and reflog messages, for the refs
/// database, bound to where it is stored.
///
/// Stored form: version (1) | nonce (12) | AES-256-GCM ciphertext of key (32) and length
/// (u64 LE) | tag (16). The associated data names the table, the row's name and the clear
/// chunk id, so a sealed value copied to another ref, another table or beside another id no
/// longer opens. The key is `HKDF-Expand(metadataKey, "infinitydb/v1/refs-key")`.
struct RefValueSealer: Sendable {
    static let version: UInt8 = 1
    static let keyLabel = Array("infinitydb/v1/refs-key".utf8)
    private static let associatedDataDomain = Array("infinitydb-ref-value-v1".utf8)
    private static let messageDomain = Array("infinitydb-reflog-message-v1".utf8)
    private static let plaintextByteCount = ChunkKey.byteCount + 8
    static let sealedByteCount = 1 + AES256GCM.nonceByteCount + plaintextByteCount + AES256GCM.tagByteCount

    let key: SecureBytes

    init(metadataKey: SecureBytes) throws {
        do {
            key = try HKDF.expand(pseudoRandomKey: metadataKey, info: Self.keyLabel, outputByteCount: AES256GCM.keyByteCount)
        } catch {
            throw HistoryError(.invalidArgument, "the metadata key cannot key the refs database", cause: error)
        }
    }

    func seal(_ ref: ChunkRef, table: String, name: String) throws -> [UInt8] {
        var plaintext = ref.key.bytes
        withUnsafeBytes(of: UInt64(ref.length).littleEndian) { plaintext.append(contentsOf: $0) }
        return try sealBytes(plaintext, authenticating: Self.associatedData(table: table, name: name, id: ref.id))
    }

    /// Opens a value sealed by ``seal(_:table:name:)`` for the same table, name and id.
    ///
    /// - Parameter subject: names the row in errors, e.g. "ref refs/heads/main".
    /// - Throws: ``HistoryError/Code/corrupt`` naming `subject` when the value was altered,
    ///   moved, or sealed under another key.
    func open(_ sealed: [UInt8], id: ChunkID, table: String, name: String, subject: String) throws -> ChunkRef {
        guard sealed.count == Self.sealedByteCount, sealed.first == Self.version else {
            throw HistoryError(.corrupt, "\(subject): its sealed value is malformed (\(sealed.count) bytes)")
        }
        guard let plaintext = openBytes(sealed, authenticating: Self.associatedData(table: table, name: name, id: id)) else {
            throw HistoryError(
                .corrupt,
                "\(subject): its sealed value does not authenticate (the refs database was altered or a value was moved)")
        }
        var length: UInt64 = 0
        for (shift, byte) in plaintext[ChunkKey.byteCount...].enumerated() { length |= UInt64(byte) << (8 * UInt64(shift)) }
        guard let chunkKey = ChunkKey(bytes: Array(plaintext[..<ChunkKey.byteCount])), chunkKey.chunkID == id,
            length <= UInt64(Int.max)
        else {
            throw HistoryError(.corrupt, "\(subject): its sealed value does not belong to commit \(id.shortDescription)")
        }
        return ChunkRef(id: id, key: chunkKey, length: Int(length))
    }

    /// Seals a reflog message. The associated data binds it to its entry (ref, time, old and new
    /// commit ids), so it cannot be moved to another entry unnoticed.
    func sealMessage(_ message: String, ref: String, time: Int64, old: ChunkID?, new: ChunkID?) throws -> [UInt8] {
        try sealBytes(Array(message.utf8), authenticating: Self.messageAssociatedData(ref: ref, time: time, old: old, new: new))
    }

    /// Opens a message sealed by ``sealMessage(_:ref:time:old:new:)`` for the same entry.
    func openMessage(_ sealed: [UInt8], ref: String, time: Int64, old: ChunkID?, new: ChunkID?, subject: String) throws -> String {
        guard sealed.count >= 1 + AES256GCM.nonceByteCount + AES256GCM.tagByteCount, sealed.first == Self.version else {
            throw HistoryError(.corrupt, "\(subject): its sealed message is malformed (\(sealed.count) bytes)")
        }
        guard let plaintext = openBytes(sealed, authenticating: Self.messageAssociatedData(ref: ref, time: time, old: old, new: new))
        else {
            throw HistoryError(.corrupt, "\(subject): its sealed message does not authenticate (the refs database was altered)")
        }
        return String(decoding: plaintext, as: UTF8.self)
    }

    /// version | random nonce | AES-256-GCM ciphertext and tag under the refs key.
    private func sealBytes(_ plaintext: [UInt8], authenticating associatedData: [UInt8]) throws -> [UInt8] {
        let nonce = AES256GCM.randomNonce()
        return [Self.version] + nonce + (try AES256GCM.seal(plaintext, key: key, nonce: nonce, authenticating: associatedData))
    }

    /// Opens what ``sealBytes(_:authenticating:)`` made (the caller checked version and length);
    /// nil when it does not authenticate.
    private func openBytes(_ sealed: [UInt8], authenticating associatedData: [UInt8]) -> [UInt8]? {
        let nonce = Array(sealed[1..<(1 + AES256GCM.nonceByteCount)])
        return try? AES256GCM.open(
            Array(sealed[(1 + AES256GCM.nonceByteCount)...]), key: key, nonce: nonce, authenticating: associatedData)
    }

    private static func messageAssociatedData(ref: String, time: Int64, old: ChunkID?, new: ChunkID?) -> [UInt8] {
        var writer = ByteWriter(reservingCapacity: 128 + ref.utf8.count)
        writer.append(contentsOf: messageDomain)
        writer.appendLengthPrefixed(Array(ref.utf8))
        withUnsafeBytes(of: time.littleEndian) { writer.append(contentsOf: Array($0)) }
        writer.appendLengthPrefixed(old?.bytes ?? [])
        writer.appendLengthPrefixed(new?.bytes ?? [])
        return writer.bytes
    }

    /// Domain | table | name | id, each variable part length-prefixed so no two different
    /// triples share an encoding.
    static func associatedData(table: String, name: String, id: ChunkID) -> [UInt8] {
        var writer = ByteWriter(reservingCapacity: 64 + table.utf8.count + name.utf8.count)
        writer.append(contentsOf: associatedDataDomain)
        writer.appendLengthPrefixed(Array(table.utf8))
        writer.appendLengthPrefixed(Array(name.utf8))
        writer.append(contentsOf: id.bytes)
        return writer.bytes
    }
}
