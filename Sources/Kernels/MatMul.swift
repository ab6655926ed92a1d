import CKernels

/// What a matrix product does with its results.
public enum Epilogue: Sendable {
    /// `y = x Wᵀ`.
    case store
    /// `y += x Wᵀ` (a residual connection folded into the product).
    case accumulate
    /// Two matrices (gate, up): `y0 = silu(x W0ᵀ) · (x W1ᵀ)`; `y1` is scratch.
    case swiGLU

    var flags: Int32 {
        switch self {
        case .store: return 0
        case .accumulate: return MS_MATMUL_ACCUMULATE
        case .swiGLU: return MS_MATMUL_SWIGLU
        }
    }
}

/// Up to three weight matrices that read the same input (a layer's Q, K and V, or gate and up), multiplied in one
/// job on the thread pool with the activations quantized once.
public struct MatrixGroup: @unchecked Sendable {
    let matrices: [ms_matrix]
    /// Input width shared by every matrix.
    public let columns: Int

    public init(_ weights: [WeightMatrix]) {
        precondition(!weights.isEmpty && weights.count <= Int(MS_MATMUL_MAX), "a group holds 1 to \(MS_MATMUL_MAX) matrices")
        precondition(weights.allSatisfy { $0.columns == weights[0].columns }, "matrices of a group share their input width")
        matrices = weights.map(\.matrix)
        columns = weights[0].columns
    }
}

/// Matrix products `y = x Wᵀ` of a batch of activation rows with stored weight matrices. The loops run in C
/// (`ms_matmul`): activations quantized once per product, rows split over the persistent pool, four tokens per
/// unpacked weight row during prefill.
public struct MatMul {
    /// Worker threads.
    public let threads: Int
    private let scratch: Scratch

    /// A product engine run on `threads` threads; its activation buffer starts at `columns` wide and grows as needed.
    public init(threads: Int, columns: Int) {
        self.threads = max(1, threads)
        scratch = Scratch(bytes: ms_matmul_scratch(1, Int32(max(32, columns))))
    }

    /// `y[t][r] = Σ_c w[r][c] · x[t][c]` for `tokens` rows of `x` (each `w.columns` wide); `y` is `tokens × w.rows`.
    public func multiply(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                         epilogue: Epilogue = .store) {
        var matrix = w.matrix
        withUnsafePointer(to: &matrix) { m in
            run(m, count: 1, columns: w.columns, x, tokens: tokens, outputs: (y, nil, nil), flags: epilogue.flags)
        }
    }

    /// The products of every matrix of `group` with `x`, into `y0`, `y1`, … in the group's order.
    public func multiply(_ group: MatrixGroup, _ x: UnsafePointer<Float>, tokens: Int, into y0: UnsafeMutablePointer<Float>,
                         _ y1: UnsafeMutablePointer<Float>? = nil, _ y2: UnsafeMutablePointer<Float>? = nil,
                         epilogue: Epilogue = .store) {
        precondition(epilogue != .swiGLU || (group.matrices.count == 2 && group.matrices[0].rows == group.matrices[1].rows),
                     "SwiGLU takes two matrices of the same shape")
        group.matrices.withUnsafeBufferPointer { m in
            run(m.baseAddress!, count: m.count, columns: group.columns, x, tokens: tokens, outputs: (y0, y1, y2),
                flags: epilogue.flags)
        }
    }

    private func run(_ m: UnsafePointer<ms_matrix>, count: Int, columns: Int, _ x: UnsafePointer<Float>, tokens: Int,
                     outputs: (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?),
                     flags: Int32) {
        guard tokens > 0 else { return }
        scratch.reserve(ms_matmul_scratch(Int32(tokens), Int32(columns)))
        var outputs = outputs
        withUnsafePointer(to: &outputs) { tuple in
            tuple.withMemoryRebound(to: UnsafeMutablePointer<Float>?.self, capacity: 3) { y in
                ms_matmul(Int32(count), m, Int32(tokens), x, y, flags, Int32(threads), scratch.pointer)
            }
        }
    }
}

/// A growable, 64-byte-aligned raw buffer reused across calls (no allocation once it is large enough).
public final class Scratch: @unchecked Sendable {
    public private(set) var pointer: UnsafeMutableRawPointer
    public private(set) var bytes: Int

    public init(bytes: Int) {
        self.bytes = max(64, bytes)
        pointer = UnsafeMutableRawPointer.allocate(byteCount: self.bytes, alignment: 64)
    }

    /// Makes room for at least `bytes` (contents are not kept).
    public func reserve(_ bytes: Int) {
        guard bytes > self.bytes else { return }
        pointer.deallocate()
        self.bytes = bytes
        pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }

    deinit { pointer.deallocate() }
}
