import CKernels

/// Matrix products `y = x Wᵀ` of a batch of activation rows with a stored weight matrix.
public struct MatMul {
    /// Worker threads.
    public let threads: Int
    private var activations: Q8Activations

    /// A product engine run on `threads` threads; its activation buffer starts at `columns` and grows as needed.
    public init(threads: Int, columns: Int) {
        self.threads = max(1, threads)
        activations = Q8Activations(rows: 1, columns: columns)
    }

    /// `y[t][r] = Σ_c w[r][c] · x[t][c]` for `tokens` rows of `x` (each `w.columns` wide); `y` is `tokens × w.rows`.
    public mutating func multiply(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>) {
        switch w.type {
        case .q4_1, .q4_0, .q8_0:
            activations.quantize(x, rows: tokens, columns: w.columns)
            let act = activations
            let type = w.type
            act.values.withUnsafeBufferPointer { q in
                act.scales.withUnsafeBufferPointer { d in
                    act.sums.withUnsafeBufferPointer { s in
                        let blocks = w.columns / 32
                        let q = q.baseAddress!, d = d.baseAddress!, s = s.baseAddress!
                        // Four tokens per weight row: the row is unpacked once (same sums as four single dots).
                        let dot4: ((Int, Int, UnsafeMutablePointer<Float>) -> Void)? = type == .q4_0 ? nil : { r, t, out in
                            let row = w.data + r * w.rowBytes
                            if type == .q4_1 {
                                ms_dot4_q4_1_q8_1(Int32(blocks), row, q + t * w.columns, d + t * blocks, s + t * blocks, Int32(w.columns), out)
                            } else {
                                ms_dot4_q8_0_q8_0(Int32(blocks), row, q + t * w.columns, d + t * blocks, Int32(w.columns), out)
                            }
                        }
                        forEachTile(w, tokens: tokens, dot4: dot4) { r, t in
                            let row = w.data + r * w.rowBytes
                            let qa = q + t * w.columns, da = d + t * blocks
                            switch type {
                            case .q4_1: return ms_dot_q4_1_q8_1(Int32(blocks), row, qa, da, s + t * blocks)
                            case .q4_0: return ms_dot_q4_0_q8_0(Int32(blocks), row, qa, da)
                            default: return ms_dot_q8_0_q8_0(Int32(blocks), row, qa, da)
                            }
                        } store: { r, t, v in y[t * w.rows + r] = v }
                    }
                }
            }
        case .f16:
            forEachTile(w, tokens: tokens) { r, t in
                ms_dot_f16_f32(Int32(w.columns), (w.data + r * w.rowBytes).assumingMemoryBound(to: UInt16.self), x + t * w.columns)
            } store: { r, t, v in y[t * w.rows + r] = v }
        case .f32:
            forEachTile(w, tokens: tokens) { r, t in
                ms_dot_f32(Int32(w.columns), (w.data + r * w.rowBytes).assumingMemoryBound(to: Float.self), x + t * w.columns)
            } store: { r, t, v in y[t * w.rows + r] = v }
        default:
            preconditionFailure("WeightMatrix admits only types with kernels")
        }
    }

    /// Splits rows across threads; within a chunk, walks tokens in tiles so a weight row stays in cache, four
    /// tokens at a time through `dot4` where given.
    @inline(__always)
    private func forEachTile(_ w: WeightMatrix, tokens: Int, dot4: ((Int, Int, UnsafeMutablePointer<Float>) -> Void)? = nil,
                             _ dot: (Int, Int) -> Float, store: (Int, Int, Float) -> Void) {
        let chunkRows = max(16, (w.rows + threads * 4 - 1) / (threads * 4))
        let chunks = (w.rows + chunkRows - 1) / chunkRows
        let tile = 16
        parallelFor(chunks: chunks, threads: threads) { chunk in
            let rows = (chunk * chunkRows)..<min(w.rows, (chunk + 1) * chunkRows)
            var t0 = 0
            while t0 < tokens {
                let t1 = min(tokens, t0 + tile)
                for r in rows {
                    var t = t0
                    if let dot4 {
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4) { four in
                            while t + 4 <= t1 {
                                dot4(r, t, four.baseAddress!)
                                for i in 0..<4 { store(r, t + i, four[i]) }
                                t += 4
                            }
                        }
                    }
                    while t < t1 { store(r, t, dot(r, t)); t += 1 }
                }
                t0 = t1
            }
        }
    }
}
