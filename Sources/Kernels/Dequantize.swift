import GGUF

/// Reads an IEEE half-precision value stored little-endian at `p + offset`.
@inline(__always)
func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// Errors of the numeric layer.
public enum KernelError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A tensor type with no kernel for the requested operation.
    case unsupportedType(GGMLType, operation: String)
    /// Shapes that do not fit together.
    case shapeMismatch(String)

    public var description: String {
        switch self {
        case let .unsupportedType(type, operation): return "tensor type \(type) is not supported for \(operation)"
        case let .shapeMismatch(reason): return "shape mismatch: \(reason)"
        }
    }
}

/// Block layouts (ggml): Q4_0 `{f16 d; u8 qs[16]}`, Q4_1 `{f16 d, m; u8 qs[16]}`, Q5_0 `{f16 d; u32 qh; u8 qs[16]}`,
/// Q8_0 `{f16 d; i8 qs[32]}`. In the 4- and 5-bit blocks, byte j holds element j in its low nibble and element j + 16
/// in its high nibble.
public enum Dequantize {
    /// Expands `count` elements of `type` at `src` into `dst` (count must be a whole number of blocks).
    public static func row(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) throws {
        switch type {
        case .f32:
            dst.update(from: src.assumingMemoryBound(to: Float.self), count: count)
        case .f16:
            for i in 0..<count { dst[i] = loadHalf(src, 2 * i) }
        case .bf16:
            for i in 0..<count {
                dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        case .q4_0:
            for b in 0..<(count / 32) {
                let block = src + b * 18
                let d = loadHalf(block, 0)
                let out = dst + b * 32
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: 2 + j, as: UInt8.self)
                    out[j] = Float(Int(q & 0x0F) - 8) * d
                    out[j + 16] = Float(Int(q >> 4) - 8) * d
                }
            }
        case .q4_1:
            for b in 0..<(count / 32) {
                let block = src + b * 20
                let d = loadHalf(block, 0), m = loadHalf(block, 2)
                let out = dst + b * 32
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: 4 + j, as: UInt8.self)
                    out[j] = Float(q & 0x0F) * d + m
                    out[j + 16] = Float(q >> 4) * d + m
                }
            }
        case .q5_0:
            for b in 0..<(count / 32) {
                let block = src + b * 22
                let d = loadHalf(block, 0)
                let qh = block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
                let out = dst + b * 32
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: 6 + j, as: UInt8.self)
                    let h0 = UInt8((qh >> UInt32(j)) << 4 & 0x10)
                    let h1 = UInt8((qh >> UInt32(j + 12)) & 0x10)
                    out[j] = Float(Int((q & 0x0F) | h0) - 16) * d
                    out[j + 16] = Float(Int((q >> 4) | h1) - 16) * d
                }
            }
        case .q8_0:
            for b in 0..<(count / 32) {
                let block = src + b * 34
                let d = loadHalf(block, 0)
                let out = dst + b * 32
                for j in 0..<32 {
                    out[j] = Float(block.load(fromByteOffset: 2 + j, as: Int8.self)) * d
                }
            }
        default:
            throw KernelError.unsupportedType(type, operation: "dequantization")
        }
    }
}
