/// GPT-2's reversible mapping between bytes and printable Unicode scalars, used by byte-level BPE vocabularies.
///
/// Printable Latin-1 bytes map to themselves; the rest (control characters, space, 0x7F–0xA0, 0xAD) map in order to
/// U+0100 upwards, so every byte string becomes a string of visible characters.
public enum ByteLevel {
    /// Scalar for each byte value.
    public static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Byte for each mapped scalar (nil for scalars outside the mapping).
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? { byteForScalar[scalar] }

    private static let byteForScalar: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (b, s) in scalarForByte.enumerated() { map[s] = UInt8(b) }
        return map
    }()

    /// The bytes a byte-level token string stands for, or nil if it contains a scalar outside the mapping.
    public static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard let b = byteForScalar[s] else { return nil }
            out.append(b)
        }
        return out
    }
}
