import Foundation
import InfinityDB

/// One path that differs between two snapshots, or between a snapshot and a working directory.
public struct PathChange: Sendable, Hashable {
    public enum Kind: String, Sendable, Codable {
        case added
        case removed
        /// Content, kind or link target differ.
        case modified
        /// Only mode, owner, modification time or extended attributes differ.
        case metadata
    }

    public var kind: Kind
    public var path: SnapshotPath
    /// The entry's kind on the newer side (the older side for removals).
    public var entryKind: FileEntry.Kind
    public var oldSize: Int64?
    public var newSize: Int64?

    init(_ kind: Kind, _ path: SnapshotPath, old: FileEntry?, new: FileEntry?) {
        self.kind = kind
        self.path = path
        entryKind = (new ?? old)!.kind
        oldSize = old?.size
        newSize = new?.size
    }

    /// The change between two entries of one path, or nil if a restore could not tell them apart.
    static func between(_ path: SnapshotPath, old: FileEntry?, new: FileEntry?) -> PathChange? {
        switch (old, new) {
        case (nil, nil): return nil
        case (nil, let new?): return PathChange(.added, path, old: nil, new: new)
        case (let old?, nil): return PathChange(.removed, path, old: old, new: nil)
        case (let old?, let new?):
            if old.contentDiffers(from: new) { return PathChange(.modified, path, old: old, new: new) }
            if old.metadataDiffers(from: new) { return PathChange(.metadata, path, old: old, new: new) }
            return nil
        }
    }
}

/// `status --json` and `diff --json` print changes with the path as text and the kind by name.
extension PathChange: Encodable {
    enum CodingKeys: String, CodingKey {
        case kind = "change", path, entryKind = "type", oldSize, newSize
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(path.description, forKey: .path)
        try container.encode(entryKind.description, forKey: .entryKind)
        try container.encodeIfPresent(oldSize, forKey: .oldSize)
        try container.encodeIfPresent(newSize, forKey: .newSize)
    }
}

/// Differences between snapshots and working directories.
public enum SnapshotChanges {
    /// What changed from `old` to `new` within `paths` (everywhere when empty), in path order.
    /// Costs about (changes × depth) node reads: the parts of the two trees they share are
    /// skipped unread.
    public static func between(
        _ old: Snapshot, _ new: Snapshot, within paths: [SnapshotPath] = [], _ visit: (PathChange) throws -> Void
    ) async throws {
        try await new.changes(in: SnapshotIndex.files, since: old) { change in
            let pathChange: PathChange?
            switch change {
            case .added(let path, let entry): pathChange = PathChange.between(path, old: nil, new: entry)
            case .removed(let path, let entry): pathChange = PathChange.between(path, old: entry, new: nil)
            case .changed(let path, let before, let after): pathChange = PathChange.between(path, old: before, new: after)
            }
            guard let pathChange, paths.isEmpty || paths.contains(where: { pathChange.path.isWithin($0) }) else { return }
            try visit(pathChange)
        }
    }

    /// What differs between `snapshot` (nil: nothing committed yet) and the directory on disk,
    /// judged by metadata: a file is modified when its size or modification time differ (its
    /// bytes are not read).
    public static func workingDirectory(
        _ directory: String, against snapshot: Snapshot?, skipping skipped: [String], _ visit: (PathChange) throws -> Void
    ) async throws {
        var options = TreeWalker.Options()
        options.skippedDiskPaths = skipped.map { Array($0.utf8) }
        var walker = try TreeWalker(source: Array(directory.utf8), prefix: .root, options: options)
        var cursor: EntryCursor? = snapshot.map { EntryCursor(snapshot: $0, subtree: .root) }
        var item = try walker.next()
        if item?.path.isRoot == true { item = try walker.next() }
        var old = try await cursor?.peek()
        while item != nil || old != nil {
            if let committed = old, item == nil || committed.path < item!.path {
                try visit(PathChange(.removed, committed.path, old: committed.entry, new: nil))
                old = try await cursor?.advance()
                continue
            }
            let current = item!
            item = try walker.next()
            let onDisk = FileEntry(walked: current)
            guard let committed = old, committed.path == current.path else {
                try visit(PathChange(.added, current.path, old: nil, new: onDisk))
                continue
            }
            old = try await cursor?.advance()
            var comparable = committed.entry
            if comparable.kind == .hardLink && onDisk.kind == .file {
                // Another name of a file compared under its first name.
                comparable = onDisk
                comparable.mode = committed.entry.mode
                comparable.userID = committed.entry.userID
                comparable.groupID = committed.entry.groupID
            }
            if comparable.kind != onDisk.kind || comparable.linkTarget != onDisk.linkTarget
                || (onDisk.kind == .file && (comparable.size != onDisk.size || comparable.modified != onDisk.modified))
            {
                try visit(PathChange(.modified, current.path, old: committed.entry, new: onDisk))
            } else if comparable.mode != onDisk.mode || comparable.userID != onDisk.userID || comparable.groupID != onDisk.groupID
                || (comparable.kind != .file && comparable.kind != .directory && comparable.modified != onDisk.modified)
            {
                try visit(PathChange(.metadata, current.path, old: committed.entry, new: onDisk))
            }
        }
    }
}
