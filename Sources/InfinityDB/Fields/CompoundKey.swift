/// A key made of several keys, ordered by the first component, then the second, and so on.
///
/// ```swift
/// let key = CompoundKey<String, Int>("alice", 42)
/// let (name, number) = key.components
/// ```
///
/// The encoding is the components' encodings in a row. Because each is self-delimiting and
/// order-preserving, the first component that differs decides the byte order, exactly as it
/// decides tuple order. It also makes leading components a prefix of the whole key: every key
/// that starts with `"alice"` starts with `"alice".encodedKey`, so a range scan over that prefix
/// finds all of them (``KeyEncoder`` builds such prefixes of more than one component).
///
/// `CompoundKey` is `Equatable`, `Hashable` and `Comparable` when all its components are.
/// (`Data` and `[UInt8]` are not `Comparable`; a compound key holding one still sorts correctly
/// in a map, which compares encodings.)
public struct CompoundKey<each Component: IndexKey>: IndexKey {
    /// The components, in order.
    public var components: (repeat each Component)

    /// A key of these components, in order.
    public init(_ components: repeat each Component) {
        self.components = (repeat each components)
    }

    public func encodeKey(into encoder: inout KeyEncoder) {
        for component in repeat each components {
            component.encodeKey(into: &encoder)
        }
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> CompoundKey {
        // Pack expansions evaluate left to right, so components are read in the order written.
        CompoundKey(repeat try (each Component).decodeKey(from: &decoder))
    }
}

extension CompoundKey: Equatable where repeat each Component: Equatable {
    public static func == (lhs: CompoundKey, rhs: CompoundKey) -> Bool {
        for (left, right) in repeat (each lhs.components, each rhs.components) {
            guard left == right else { return false }
        }
        return true
    }
}

extension CompoundKey: Hashable where repeat each Component: Hashable {
    public func hash(into hasher: inout Hasher) {
        for component in repeat each components {
            hasher.combine(component)
        }
    }
}

extension CompoundKey: Comparable where repeat each Component: Comparable {
    /// Lexicographic: the first components that differ decide.
    public static func < (lhs: CompoundKey, rhs: CompoundKey) -> Bool {
        for (left, right) in repeat (each lhs.components, each rhs.components) {
            if left < right { return true }
            if right < left { return false }
        }
        return false
    }
}
