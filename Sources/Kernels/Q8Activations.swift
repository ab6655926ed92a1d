import CKernels

/// Activations quantized to 8-bit blocks of 32, once per matrix product, so the inner loops multiply integers.
///
/// Per block: scale `d = max|x| / 127` (rounded through half precision, as ggml stores it), `q = round(x / d)`, and
/// for Q8_1 also `s = d * Σq` (half-rounded), which carries a Q4_1 weight block's offset `m` through the product.
public struct Q8Activations {
    /// Rows (tokens).
    public private(set) var rows: Int
    /// Elements per row (of the last quantization).
    public private(set) var columns: Int
    /// Blocks per row.
    public var blocksPerRow: Int { columns / 32 }
    /// Quantized values, row-major.
    public private(set) var values: [Int8]
    /// Block scales, `rows * blocksPerRow`.
    public private(set) var scales: [Float]
    /// Block sums times scale (Q8_1's `s`), `rows * blocksPerRow`.
    public private(set) var sums: [Float]

    /// Storage for up to `rows` rows of `columns` elements (a multiple of 32).
    public init(rows: Int, columns: Int) {
        precondition(columns % 32 == 0, "row length must be a multiple of 32")
        self.rows = rows
        self.columns = columns
        values = [Int8](repeating: 0, count: rows * columns)
        scales = [Float](repeating: 0, count: rows * columns / 32)
        sums = [Float](repeating: 0, count: rows * columns / 32)
    }

    /// Quantizes `rows` rows of `x`, each `columns` wide (a multiple of 32; default: the current width), growing the
    /// storage only when it is too small.
    public mutating func quantize(_ x: UnsafePointer<Float>, rows: Int, columns: Int? = nil) {
        let columns = columns ?? self.columns
        precondition(columns % 32 == 0, "row length must be a multiple of 32")
        if rows * columns > values.count {
            values = [Int8](repeating: 0, count: rows * columns)
            scales = [Float](repeating: 0, count: rows * columns / 32)
            sums = [Float](repeating: 0, count: rows * columns / 32)
        }
        self.rows = rows
        self.columns = columns
        let blocks = Int32(rows * blocksPerRow)
        values.withUnsafeMutableBufferPointer { q in
            scales.withUnsafeMutableBufferPointer { d in
                sums.withUnsafeMutableBufferPointer { s in
                    ms_quantize_q8(blocks, x, q.baseAddress!, d.baseAddress!, s.baseAddress!)
                }
            }
        }
    }
}
