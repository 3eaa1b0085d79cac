import Foundation

/// Byte counts as people read and type them: `1.5 GiB` out, `500MiB`, `20GiB`, `1TB` or plain
/// bytes in. Shared by messages, store URLs and command options.
public enum ByteCount {
    /// `bytes` in the largest binary unit that keeps it at 1 or more, with one decimal.
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : "\(String(format: "%.1f", value)) \(units[unit])"
    }

    public static func format(_ bytes: Int) -> String { format(Int64(bytes)) }

    /// A size such as `500MiB`, `16M` (binary), `1GB` (decimal) or `4096`; nil when `text` is none.
    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let multipliers: [String: Double] = [
            "": 1, "b": 1, "k": 0x1p10, "kib": 0x1p10, "kb": 1e3, "m": 0x1p20, "mib": 0x1p20, "mb": 1e6,
            "g": 0x1p30, "gib": 0x1p30, "gb": 1e9, "t": 0x1p40, "tib": 0x1p40, "tb": 1e12,
        ]
        guard let value = Double(digits), let multiplier = multipliers[unit], value >= 0, value * multiplier < 9e18 else {
            return nil
        }
        return Int64(value * multiplier)
    }
}
