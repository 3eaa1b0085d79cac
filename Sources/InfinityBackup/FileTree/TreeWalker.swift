/// One path found by a ``TreeWalker``.
struct WalkItem: Sendable {
    /// Where it goes in the snapshot.
    var path: SnapshotPath
    /// Where it is on disk.
    var diskPath: [UInt8]
    var status: FileStatus
    var linkTarget: [UInt8]?
}

extension FileEntry {
    /// The entry for a walked path as it stands on disk, without content, extended attributes
    /// or hard-link sharing (the commit adds those).
    init(walked item: WalkItem) {
        let status = item.status
        self.init(
            kind: status.kind, mode: status.mode, userID: status.userID, groupID: status.groupID,
            size: status.kind == .file ? status.size : Int64(item.linkTarget?.count ?? 0), modified: status.modified,
            changed: status.changed, inode: status.inode, device: status.device, linkTarget: item.linkTarget,
            deviceNumber: status.kind == .characterDevice || status.kind == .blockDevice ? status.deviceNumber : nil)
    }
}

/// Walks a directory tree depth first, each directory's names sorted by their bytes, which is
/// the key order of the snapshot's files map: a commit compares the walk with its parent's map
/// in one pass. Memory holds one listing per level of depth, not the tree.
struct TreeWalker {
    struct Options: Sendable {
        var excludePatterns: [String] = []
        /// Skip the contents of directories tagged with a valid `CACHEDIR.TAG`.
        var excludeCaches = false
        /// Read `.infinityignore` files in every directory.
        var ignoreFileName: [UInt8]? = Array(".infinityignore".utf8)
        /// Disk paths never entered (the store's own folder inside a working directory).
        var skippedDiskPaths: [[UInt8]] = []
        /// Listings a warm-up already read, used instead of listing and reading statuses again.
        var listings: WalkedListings? = nil
    }

    private struct Frame {
        var directory: DirectoryHandle
        var path: SnapshotPath
        /// Names relative to the source root, for ignore rules.
        var relative: [[UInt8]]
        var names: [[UInt8]]
        /// Each name's status when a warm-up read it (nil for a name it has none of).
        var statuses: [FileStatus?]?
        var next = 0
        var ruleCount: Int
    }

    private let options: Options
    private let source: [UInt8]
    private let prefix: SnapshotPath
    private var rules = IgnoreRules()
    private var stack: [Frame] = []
    private var pendingRoot: WalkItem?
    /// Problems that did not stop the walk (an unreadable directory, a vanished file).
    private(set) var warnings: [String] = []

    static let cacheTagName = Array("CACHEDIR.TAG".utf8)
    static let cacheTagSignature = Array("Signature: 8a477f597d28d172789f06886806bc55".utf8)

    /// A walk of `source` (a path on disk), whose entries are recorded under `prefix`.
    init(source: [UInt8], prefix: SnapshotPath, options: Options) throws {
        self.source = source
        self.prefix = prefix
        self.options = options
        rules.add(patterns: options.excludePatterns)
        do {
            let status = try SystemCalls.status(path: source)
            pendingRoot = try Self.item(path: prefix, diskPath: source, status: status) {
                try SystemCalls.linkTarget(path: source)
            }
        } catch let error as SystemCallError {
            throw error.backupError
        }
    }

    /// The next path in key order, or nil at the end.
    mutating func next() throws -> WalkItem? {
        if let root = pendingRoot {
            pendingRoot = nil
            if root.status.kind == .directory { enter(root, relative: []) }
            return root
        }
        while var frame = stack.popLast() {
            guard frame.next < frame.names.count else {
                rules.truncate(to: frame.ruleCount)
                continue
            }
            let position = frame.next
            let name = frame.names[position]
            frame.next += 1
            stack.append(frame)
            let diskPath = frame.directory.path(of: name)
            let relative = frame.relative + [name]
            let status: FileStatus?
            do {
                // The warm-up's status when it read one, else this walk's own.
                status = try frame.statuses?[position] ?? SystemCalls.status(of: name, in: frame.directory)
            } catch {
                warnings.append("\(error)")
                continue
            }
            // Gone between the listing and now: not an error, just not in the snapshot.
            guard let status, Self.admits(status, diskPath: diskPath, relative: relative, rules: rules, options: options) else {
                continue
            }
            let item: WalkItem
            do {
                let directory = frame.directory
                item = try Self.item(path: frame.path.appending(name), diskPath: diskPath, status: status) {
                    try SystemCalls.linkTarget(of: name, in: directory)
                }
            } catch {
                warnings.append("\(error)")
                continue
            }
            if status.kind == .directory { enter(item, relative: relative) }
            return item
        }
        return nil
    }

    private static func item(
        path: SnapshotPath, diskPath: [UInt8], status: FileStatus, linkTarget: () throws -> [UInt8]
    ) throws -> WalkItem {
        // Extended attributes are read by the commit, and only for paths whose change time moved.
        let target = status.kind == .symlink ? try linkTarget() : nil
        return WalkItem(path: path, diskPath: diskPath, status: status, linkTarget: target)
    }

    /// Lists a directory and pushes it, so its entries come next.
    private mutating func enter(_ item: WalkItem, relative: [[UInt8]]) {
        do {
            let directory = try SystemCalls.openDirectory(path: item.diskPath)
            let ruleCount = rules.rules.count
            let listing = options.listings?.take(item.diskPath)
            let names = try Self.names(in: directory, listed: listing?.names, relative: relative, rules: &rules, options: options)
            stack.append(
                Frame(
                    directory: directory, path: item.path, relative: relative, names: names, statuses: listing?.statuses,
                    ruleCount: ruleCount))
        } catch {
            warnings.append("\(error)")
        }
    }

    /// The names to visit in `directory` (at `relative` from the source root) under the walk
    /// rules: only the tag of a tagged cache directory; the directory's ignore file is added to
    /// `rules`. `listed` is what this function returned for the directory before (to a warm-up).
    static func names(
        in directory: DirectoryHandle, listed: [[UInt8]]? = nil, relative: [[UInt8]], rules: inout IgnoreRules, options: Options
    ) throws -> [[UInt8]] {
        var names = try listed ?? SystemCalls.names(in: directory)
        if listed == nil, options.excludeCaches, names.contains(cacheTagName), isCacheTag(cacheTagName, in: directory) {
            names = [cacheTagName]
        }
        if let ignoreName = options.ignoreFileName, names.contains(ignoreName),
            let text = try? SystemCalls.readSmallFile(path: directory.path(of: ignoreName), limit: 1 << 20)
        {
            rules.add(text, base: relative)
        }
        return names
    }

    /// Whether the walk rules admit a path of this status.
    static func admits(_ status: FileStatus, diskPath: [UInt8], relative: [[UInt8]], rules: IgnoreRules, options: Options) -> Bool {
        if rules.excludes(relative[...], isDirectory: status.kind == .directory) { return false }
        // A list, not a set: there are none or one, and hashing every path costs more.
        return !options.skippedDiskPaths.contains(diskPath)
    }

    private static func isCacheTag(_ name: [UInt8], in directory: DirectoryHandle) -> Bool {
        let path = directory.path(of: name)
        guard let text = try? SystemCalls.readSmallFile(path: path, limit: cacheTagSignature.count) else { return false }
        return text.starts(with: cacheTagSignature)
    }
}
