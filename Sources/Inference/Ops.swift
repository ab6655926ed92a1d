import Foundation
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
        for i in 0..<gate.count {
            let g = gate[i]
            gate[i] = g / (1 + Foundation.exp(-g)) * up[i]
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
        for r in 0..<rows {
            for h in 0..<heads {
                let base = (r * heads + h) * headSize
                for i in 0..<pairs {
                    let c = cosines[r * pairs + i], s = sines[r * pairs + i]
                    let x0 = x[base + 2 * i], x1 = x[base + 2 * i + 1]
                    x[base + 2 * i] = x0 * c - x1 * s
                    x[base + 2 * i + 1] = x0 * s + x1 * c
                }
            }
        }
    }
}

/// Causal scaled dot-product attention over a half-precision KV cache, grouped-query (several query heads share a KV head).
enum Attention {
    static func causal(q: [Float], keys: [Float16], values: [Float16], start: Int, tokens: Int,
                       heads: Int, kvHeads: Int, headSize: Int, threads: Int, into out: inout [Float]) {
        let group = heads / kvHeads
        let kvWidth = kvHeads * headSize
        let scale = 1 / Float(headSize).squareRoot()
        let qWidth = heads * headSize
        q.withUnsafeBufferPointer { q in
            keys.withUnsafeBufferPointer { keys in
                values.withUnsafeBufferPointer { values in
                    out.withUnsafeMutableBufferPointer { out in
                        let q = q.baseAddress!, keys = keys.baseAddress!, values = values.baseAddress!, out = out.baseAddress!
                        parallelFor(chunks: tokens * heads, threads: threads) { job in
                            let t = job / heads, h = job % heads
                            let kvh = h / group
                            let length = start + t + 1
                            // Queries are rounded to half precision, as llama.cpp does before its F16 dot products.
                            var query = [Float](repeating: 0, count: headSize)
                            for i in 0..<headSize { query[i] = Float(Float16(q[t * qWidth + h * headSize + i])) }
                            var scores = [Float](repeating: 0, count: length)
                            var maxScore = -Float.infinity
                            for p in 0..<length {
                                let key = keys + p * kvWidth + kvh * headSize
                                var s: Float = 0
                                for i in 0..<headSize { s += query[i] * Float(key[i]) }
                                s *= scale
                                scores[p] = s
                                maxScore = max(maxScore, s)
                            }
                            var total: Float = 0
                            for p in 0..<length {
                                let e = Foundation.exp(scores[p] - maxScore)
                                scores[p] = e
                                total += e
                            }
                            let o = out + t * qWidth + h * headSize
                            for i in 0..<headSize { o[i] = 0 }
                            for p in 0..<length {
                                let w = scores[p] / total
                                let value = values + p * kvWidth + kvh * headSize
                                for i in 0..<headSize { o[i] += w * Float(value[i]) }
                            }
                        }
                    }
                }
            }
        }
    }
}
