import Foundation
import CKernels

/// Rotary position embeddings, llama.cpp's "normal" mode: adjacent pairs `(x[2i], x[2i+1])` rotate by
/// `pos · base^(-2i/dims)`. (GGUF converters permute Q and K so this matches the Hugging Face layout.)
enum RotaryEmbedding {
    /// Cosines and sines of position `position`'s angles, `dimensions / 2` of each.
    static func angles(position: Int, dimensions: Int, base: Float, cosines: UnsafeMutablePointer<Float>,
                       sines: UnsafeMutablePointer<Float>) {
        let thetaScale = Foundation.pow(base, -2 / Float(dimensions))
        // The angle advances by repeated multiplication in single precision, as ggml computes it.
        var theta = Float(position)
        for i in 0..<(dimensions / 2) {
            cosines[i] = Foundation.cos(theta)
            sines[i] = Foundation.sin(theta)
            theta *= thetaScale
        }
    }

    /// Rotates each head of each row of `x` (`rows × heads × headSize`) by its row's angles (`pairs` per row).
    static func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headSize: Int, pairs: Int,
                      cosines: UnsafePointer<Float>, sines: UnsafePointer<Float>) {
        for r in 0..<rows {
            for h in 0..<heads {
                ms_rope_pairs(Int32(pairs), cosines + r * pairs, sines + r * pairs, x + (r * heads + h) * headSize)
            }
        }
    }
}

/// Causal scaled dot-product attention over a half-precision KV cache (`ms_attention`).
enum Attention {
    /// Batches shorter than this take llama.cpp's half-precision-accumulator path (see `ms_attend`).
    static let halfAccumulatorBelow = 64
}
