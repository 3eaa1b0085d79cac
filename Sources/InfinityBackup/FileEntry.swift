import Foundation
import InfinityDB

/// One path of a snapshot: its kind, metadata, and for regular files the content.
///
/// Times are nanoseconds since 1970. `inode`, `device` and `changed` (ctime) are kept only to
/// notice, at the next commit, that a file is unchanged without reading it.
public struct FileEntry: Codable, Sendable, Hashable {
    public enum Kind: UInt8, Codable, Sendable, CustomStringConvertible {
        case file = 0
        case directory = 1
        case symlink = 2
        /// Another name for a file recorded earlier in the snapshot (`linkTarget`).
        case hardLink = 3
        case fifo = 4
        case socket = 5
        case characterDevice = 6
        case blockDevice = 7

        public var description: String {
            switch self {
            case .file: "file"
            case .directory: "directory"
            case .symlink: "symlink"
            case .hardLink: "hard link"
            case .fifo: "fifo"
            case .socket: "socket"
            case .characterDevice: "character device"
            case .blockDevice: "block device"
            }
        }
    }

    /// A name and value of an extended attribute.
    public struct ExtendedAttribute: Codable, Sendable, Hashable {
        public var name: [UInt8]
        public var value: [UInt8]

        enum CodingKeys: String, CodingKey {
            case name = "n"
            case value = "v"
        }
    }

    public var kind: Kind
    /// Permission bits, with set-user-id, set-group-id and sticky (`0o7777`).
    public var mode: UInt32
    public var userID: UInt32
    public var groupID: UInt32
    /// Bytes of content (files; for symlinks the target's length).
    public var size: Int64
    public var modified: Int64
    public var changed: Int64
    public var inode: UInt64
    public var device: UInt64
    /// The content of a file (nil for an empty file and for every other kind).
    public var content: BlobRef?
    /// A symlink's target, or for a hard link the slash-separated snapshot path it shares.
    public var linkTarget: [UInt8]?
    /// The device number of a character or block device.
    public var deviceNumber: UInt64?
    public var extendedAttributes: [ExtendedAttribute]?

    // Short keys: a snapshot holds one of these per path.
    enum CodingKeys: String, CodingKey {
        case kind = "k"
        case mode = "m"
        case userID = "u"
        case groupID = "g"
        case size = "s"
        case modified = "t"
        case changed = "c"
        case inode = "i"
        case device = "d"
        case content = "b"
        case linkTarget = "l"
        case deviceNumber = "r"
        case extendedAttributes = "x"
    }

    public init(
        kind: Kind, mode: UInt32, userID: UInt32, groupID: UInt32, size: Int64, modified: Int64, changed: Int64,
        inode: UInt64, device: UInt64, content: BlobRef? = nil, linkTarget: [UInt8]? = nil, deviceNumber: UInt64? = nil,
        extendedAttributes: [ExtendedAttribute]? = nil
    ) {
        self.kind = kind
        self.mode = mode
        self.userID = userID
        self.groupID = groupID
        self.size = size
        self.modified = modified
        self.changed = changed
        self.inode = inode
        self.device = device
        self.content = content
        self.linkTarget = linkTarget
        self.deviceNumber = deviceNumber
        self.extendedAttributes = extendedAttributes
    }

    /// Whether the two entries differ in content (a file's bytes, a link's target, the kind).
    public func contentDiffers(from other: FileEntry) -> Bool {
        kind != other.kind || content != other.content || linkTarget != other.linkTarget
            || deviceNumber != other.deviceNumber || (kind == .file && size != other.size)
    }

    /// Whether the two entries differ in what a restore sets: mode, owner, modification time,
    /// extended attributes. (ctime, inode and device cannot be restored and do not count.)
    public func metadataDiffers(from other: FileEntry) -> Bool {
        mode != other.mode || userID != other.userID || groupID != other.groupID || modified != other.modified
            || (extendedAttributes ?? []) != (other.extendedAttributes ?? [])
    }
}

/// What a snapshot commit records about itself.
public struct SnapshotSummary: Codable, Sendable, Hashable {
    public var hostname: String
    public var username: String
    /// The paths given to `commit`, as the user gave them.
    public var sources: [String]
    /// When the walk started and ended, seconds since 1970.
    public var started: Double
    public var finished: Double
    /// Totals over the whole snapshot.
    public var files: Int
    public var directories: Int
    public var otherEntries: Int
    /// Bytes of all regular files (hard links counted once).
    public var bytes: Int64

    public init(
        hostname: String, username: String, sources: [String], started: Double, finished: Double, files: Int, directories: Int,
        otherEntries: Int, bytes: Int64
    ) {
        self.hostname = hostname
        self.username = username
        self.sources = sources
        self.started = started
        self.finished = finished
        self.files = files
        self.directories = directories
        self.otherEntries = otherEntries
        self.bytes = bytes
    }
}

/// The fields of a snapshot commit: the schema the backup writes into a ``Database``.
public enum SnapshotIndex {
    /// Every path of the snapshot with its entry, in depth-first order.
    public static let files = VersionedMap<SnapshotPath, FileEntry>("files")
    /// Totals and provenance of the snapshot.
    public static let summary = Serialized<SnapshotSummary>("snapshot")
}

// A snapshot's entries are decoded by the tens of thousands in a restore, a listing or the
// comparison with the parent snapshot: read directly, skipping Codable's containers.
extension FileEntry: DirectlyDecodable {
    public static func decodeDirectly(_ reader: inout BinaryValueReader) -> FileEntry? {
        guard var fields = reader.keyedContainer() else { return nil }
        var kind: Kind?, mode: UInt32?, userID: UInt32?, groupID: UInt32?, size: Int64?, modified: Int64?
        var changed: Int64?, inode: UInt64?, device: UInt64?, content: BlobRef?, linkTarget: [UInt8]?
        var deviceNumber: UInt64?, extendedAttributes: [ExtendedAttribute]?
        // A required field left nil by an unreadable value is refused at the end; an optional one
        // is refused at once, since nil is what its absence gives.
        while let key = fields.nextKey() {
            guard key.count == 1 else { return nil }
            switch key[0] {
            case UInt8(ascii: "b"): guard let value = fields.blobReference() else { return nil }; content = value
            case UInt8(ascii: "c"): changed = fields.signed()
            case UInt8(ascii: "d"): device = fields.unsigned()
            case UInt8(ascii: "g"): groupID = fields.unsigned()
            case UInt8(ascii: "i"): inode = fields.unsigned()
            case UInt8(ascii: "k"): kind = fields.unsigned(UInt8.self).flatMap(Kind.init(rawValue:))
            case UInt8(ascii: "l"): guard let value = fields.byteString() else { return nil }; linkTarget = value
            case UInt8(ascii: "m"): mode = fields.unsigned()
            case UInt8(ascii: "r"): guard let value = fields.unsigned(UInt64.self) else { return nil }; deviceNumber = value
            case UInt8(ascii: "s"): size = fields.signed()
            case UInt8(ascii: "t"): modified = fields.signed()
            case UInt8(ascii: "u"): userID = fields.unsigned()
            case UInt8(ascii: "x"): guard let value = ExtendedAttribute.decodeList(&fields) else { return nil }; extendedAttributes = value
            default: return nil
            }
        }
        guard fields.isComplete, let kind, let mode, let userID, let groupID, let size, let modified, let changed,
            let inode, let device
        else { return nil }
        return FileEntry(
            kind: kind, mode: mode, userID: userID, groupID: groupID, size: size, modified: modified, changed: changed,
            inode: inode, device: device, content: content, linkTarget: linkTarget, deviceNumber: deviceNumber,
            extendedAttributes: extendedAttributes)
    }
}

extension FileEntry.ExtendedAttribute {
    /// An array of attributes, each a keyed container of `n` and `v`.
    static func decodeList(_ reader: inout BinaryValueReader) -> [Self]? {
        guard let (count, list) = reader.unkeyedContainer() else { return nil }
        var elements = list
        var attributes: [Self] = []
        attributes.reserveCapacity(count)
        while elements.nextElement() {
            guard var fields = elements.keyedContainer(),
                let nameKey = fields.nextKey(), nameKey.elementsEqual("n".utf8), let name = fields.byteString(),
                let valueKey = fields.nextKey(), valueKey.elementsEqual("v".utf8), let value = fields.byteString(),
                fields.isComplete
            else { return nil }
            attributes.append(Self(name: name, value: value))
        }
        return elements.isComplete ? attributes : nil
    }
}
