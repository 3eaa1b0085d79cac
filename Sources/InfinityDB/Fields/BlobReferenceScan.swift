import InfinityChunks

extension BinaryValueFormat {
    /// Calls `visit` with every blob reference in an encoding of this format, in order, without
    /// knowing the value's type: containers are walked by their tags, and the contents of strings
    /// and byte strings are never looked into, so a byte that happens to equal the tag of a
    /// reference is never taken for one.
    ///
    /// - Throws: ``FieldError`` (``FieldError/Code/malformedValue``, or
    ///   ``FieldError/Code/unsupportedFormat`` for a newer format version) when the bytes are not
    ///   one well-formed value, and whatever `visit` throws.
    static func forEachBlobReference(in bytes: UnsafeRawBufferPointer, _ visit: (BlobRef) throws -> Void) throws {
        let input = DecodingInput(bytes)
        defer { input.invalidate() }
        do {
            let version = try input.byte(at: 0)
            guard version <= Self.version else {
                throw FieldError(.unsupportedFormat, "a value is in format version \(version); this build reads up to \(Self.version)")
            }
            guard version == Self.version else { throw DecodingFailure("unknown format version \(version)") }
            let end = try input.valueEnd(at: 1, limit: bytes.count)
            guard end == bytes.count else { throw DecodingFailure("\(bytes.count - end) byte(s) after the end of the value") }
            try scan(input, ValueRange(start: 1, end: end), depth: 0, visit)
        } catch let failure as DecodingFailure {
            throw FieldError(.malformedValue, "a value of \(bytes.count) byte(s) cannot be scanned for blob references: \(failure.message)")
        }
    }

    private static func scan(
        _ input: DecodingInput, _ range: ValueRange, depth: Int, _ visit: (BlobRef) throws -> Void
    ) throws {
        // One level more than the coders allow, so that whatever they write can be scanned.
        guard depth <= maximumDepth + 1 else { throw DecodingFailure("value nests deeper than \(maximumDepth) levels") }
        switch try input.tag(at: range.start) {
        case .blobReference:
            try visit(try input.blobReference(at: range.start, limit: range.end).blob)
        case .unkeyed:
            let header = try input.containerHeader(at: range.start, limit: range.end)
            let bodyEnd = header.bodyStart + header.bodySize
            var cursor = header.bodyStart
            for _ in 0..<header.count {
                let end = try input.valueEnd(at: cursor, limit: bodyEnd)
                try scan(input, ValueRange(start: cursor, end: end), depth: depth + 1, visit)
                cursor = end
            }
            guard cursor == bodyEnd else {
                throw DecodingFailure("unkeyed container at byte \(range.start) has \(bodyEnd - cursor) byte(s) after its elements")
            }
        case .keyed:
            for entry in try KeyedEntry.parse(input, range) {
                try scan(input, entry.value, depth: depth + 1, visit)
            }
        case .null, .falseValue, .trueValue, .signed, .unsigned, .float, .double, .string, .bytes:
            return
        }
    }
}
