import Foundation
import CKernels
import Kernels

/// Element-wise steps of a transformer block.
enum Ops {
    /// `out[r] = x[r] / sqrt(mean(x[r]²) + ε) * weight`, squares summed in double as ggml does.
    static func rmsNorm(_ x: [Float], weight: [Float], rows: Int, epsilon: Float, into out: inout [Float]) {
        let d = weight.count
        for r in 0..<rows {
            let base = r * d
            var sum: Double = 0
            for i in 0..<d { let v = x[base + i]; sum += Double(v * v) }
            let scale = 1 / (Float(sum / Double(d)) + epsilon).squareRoot()
            for i in 0..<d { out[base + i] = (x[base + i] * scale) * weight[i] }
        }
    }

    /// `x += y`.
    static func add(_ x: inout [Float], _ y: [Float]) {
        for i in 0..<x.count { x[i] += y[i] }
    }

    /// `gate = silu(gate) * up`, with `silu(g) = g / (1 + e^-g)`.
    static func swiGLU(gate: inout [Float], up: [Float]) {
        let n = Int32(gate.count)
        gate.withUnsafeMutableBufferPointer { g in
            up.withUnsafeBufferPointer { ms_swiglu(n, g.baseAddress!, $0.baseAddress!, g.baseAddress!) }
        }
    }
}

/// Rotary position embeddings, llama.cpp's "normal" mode: adjacent pairs `(x[2i], x[2i+1])` rotate by
/// `pos · base^(-2i/dims)`. (GGUF converters permute Q and K so this matches the Hugging Face layout.)
struct RotaryEmbedding {
    let dimensions: Int
    /// cos and sin per position and pair, `positions × dimensions/2`.
    private var cosines: [Float] = []
    private var sines: [Float] = []

    init(dimensions: Int, base: Float, positions: Range<Int>) {
        self.dimensions = dimensions
        let thetaScale = Foundation.pow(base, -2 / Float(dimensions))
        for p in positions {
            // The angle advances by repeated multiplication in single precision, as ggml computes it.
            var theta = Float(p)
            for _ in 0..<(dimensions / 2) {
                cosines.append(Foundation.cos(theta))
                sines.append(Foundation.sin(theta))
                theta *= thetaScale
            }
        }
    }

    /// Rotates each head of each row of `x` (`rows × heads × headSize`).
    func apply(_ x: inout [Float], heads: Int, headSize: Int) {
        let pairs = dimensions / 2
        let rows = x.count / (heads * headSize)
        x.withUnsafeMutableBufferPointer { x in
            cosines.withUnsafeBufferPointer { c in
                sines.withUnsafeBufferPointer { s in
                    for r in 0..<rows {
                        for h in 0..<heads {
                            ms_rope_pairs(Int32(pairs), c.baseAddress! + r * pairs, s.baseAddress! + r * pairs,
                                          x.baseAddress! + (r * heads + h) * headSize)
                        }
                    }
                }
            }
        }
    }
}

/// Causal scaled dot-product attention over a half-precision KV cache, grouped-query (several query heads share a KV head).
enum Attention {
    /// Batches shorter than this take llama.cpp's half-precision-accumulator path (see `ms_attend`).
    static let halfAccumulatorBelow = 64

    static func causal(q: [Float], keys: [UInt16], values: [UInt16], start: Int, tokens: Int,
                       heads: Int, kvHeads: Int, headSize: Int, threads: Int, into out: inout [Float]) {
        let group = heads / kvHeads
        let kvWidth = kvHeads * headSize
        let scale = 1 / Float(headSize).squareRoot()
        let qWidth = heads * headSize
        let halfAccumulator: Int32 = tokens < halfAccumulatorBelow ? 1 : 0
        q.withUnsafeBufferPointer { q in
            keys.withUnsafeBufferPointer { keys in
                values.withUnsafeBufferPointer { values in
                    out.withUnsafeMutableBufferPointer { out in
                        let q = q.baseAddress!, keys = keys.baseAddress!, values = values.baseAddress!, out = out.baseAddress!
                        parallelFor(chunks: tokens * heads, threads: threads) { job in
                            let t = job / heads, h = job % heads
                            let kvOffset = (h / group) * headSize
                            ms_attend(Int32(start + t + 1), Int32(headSize), scale, q + t * qWidth + h * headSize,
                                      keys + kvOffset, values + kvOffset, Int32(kvWidth), halfAccumulator,
                                      out + t * qWidth + h * headSize)
                        }
                    }
                }
            }
        }
    }
}
