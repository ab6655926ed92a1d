import Foundation
import GGUF
import Kernels

/// Hyper-parameters of a llama-architecture decoder, read from `llama.*` metadata.
public struct LlamaConfiguration: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headSize: Int
    public var feedForwardSize: Int
    public var ropeBase: Float
    public var ropeDimensions: Int
    public var rmsEpsilon: Float
    public var vocabularySize: Int
    public var contextLength: Int

    /// Reads the configuration for architecture prefix `arch` (normally `llama`).
    public init(gguf: GGUFFile, arch: String = "llama") throws {
        hiddenSize = try gguf.int("\(arch).embedding_length")
        layers = try gguf.int("\(arch).block_count")
        heads = try gguf.int("\(arch).attention.head_count")
        kvHeads = (try? gguf.int("\(arch).attention.head_count_kv")) ?? heads
        feedForwardSize = try gguf.int("\(arch).feed_forward_length")
        rmsEpsilon = Float(try gguf.double("\(arch).attention.layer_norm_rms_epsilon"))
        ropeBase = Float((try? gguf.double("\(arch).rope.freq_base")) ?? 10000)
        contextLength = (try? gguf.int("\(arch).context_length")) ?? 2048
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0, hiddenSize % heads == 0, layers > 0 else {
            throw InferenceError.invalidConfiguration("\(heads) heads, \(kvHeads) KV heads, width \(hiddenSize), \(layers) layers")
        }
        headSize = (try? gguf.int("\(arch).attention.key_length")) ?? hiddenSize / heads
        ropeDimensions = (try? gguf.int("\(arch).rope.dimension_count")) ?? headSize
        guard ropeDimensions % 2 == 0, ropeDimensions <= headSize else {
            throw InferenceError.invalidConfiguration("rope dimension \(ropeDimensions) for head size \(headSize)")
        }
        guard let embeddings = gguf.tensor(named: "token_embd.weight"), embeddings.shape.count == 2 else {
            throw GGUFError.missingTensor("token_embd.weight")
        }
        vocabularySize = embeddings.shape[1]
    }
}

/// The llama decoder: RMSNorm, rotary position embeddings, grouped-query attention, SwiGLU feed-forward,
/// optionally tied output embeddings.
public final class LlamaModel: LanguageModel, @unchecked Sendable {
    /// Hyper-parameters.
    public let configuration: LlamaConfiguration
    /// Worker threads per forward pass.
    public let threads: Int

    struct Layer {
        let attentionNorm: [Float]
        let q, k, v, o: WeightMatrix
        let ffnNorm: [Float]
        let gate, up, down: WeightMatrix
    }

    private let file: GGUFFile
    private let embeddings: WeightMatrix
    private let blocks: [Layer]
    private let outputNorm: [Float]
    private let output: WeightMatrix

    public var vocabularySize: Int { configuration.vocabularySize }
    public var hiddenSize: Int { configuration.hiddenSize }
    public var contextLength: Int { configuration.contextLength }

    /// Binds the weights of `file` (memory-mapped, not copied).
    public init(file: GGUFFile, threads: Int = 2) throws {
        let config = try LlamaConfiguration(gguf: file)
        self.configuration = config
        self.file = file
        self.threads = threads

        func tensor(_ name: String) throws -> GGUFTensorInfo {
            guard let t = file.tensor(named: name) else { throw GGUFError.missingTensor(name) }
            return t
        }
        func matrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
            let t = try tensor(name)
            guard t.shape == [columns, rows] else {
                throw InferenceError.invalidConfiguration("\(name) has shape \(t.shape), expected [\(columns), \(rows)]")
            }
            return try WeightMatrix(t, in: file)
        }
        func vector(_ name: String, count: Int) throws -> [Float] {
            let t = try tensor(name)
            guard t.elementCount == count else {
                throw InferenceError.invalidConfiguration("\(name) has \(t.elementCount) elements, expected \(count)")
            }
            var out = [Float](repeating: 0, count: count)
            try out.withUnsafeMutableBufferPointer { try Dequantize.row(t.type, file.data(of: t).baseAddress!, $0.baseAddress!, count: count) }
            return out
        }

        let d = config.hiddenSize, kv = config.kvHeads * config.headSize, qw = config.heads * config.headSize
        embeddings = try matrix("token_embd.weight", rows: config.vocabularySize, columns: d)
        outputNorm = try vector("output_norm.weight", count: d)
        output = file.tensor(named: "output.weight") != nil
            ? try matrix("output.weight", rows: config.vocabularySize, columns: d)
            : embeddings
        blocks = try (0..<config.layers).map { i in
            let p = "blk.\(i)."
            return Layer(
                attentionNorm: try vector(p + "attn_norm.weight", count: d),
                q: try matrix(p + "attn_q.weight", rows: qw, columns: d),
                k: try matrix(p + "attn_k.weight", rows: kv, columns: d),
                v: try matrix(p + "attn_v.weight", rows: kv, columns: d),
                o: try matrix(p + "attn_output.weight", rows: d, columns: qw),
                ffnNorm: try vector(p + "ffn_norm.weight", count: d),
                gate: try matrix(p + "ffn_gate.weight", rows: config.feedForwardSize, columns: d),
                up: try matrix(p + "ffn_up.weight", rows: config.feedForwardSize, columns: d),
                down: try matrix(p + "ffn_down.weight", rows: d, columns: config.feedForwardSize))
        }
    }

    public func newCache(capacity: Int) -> KVCache {
        KVCache(layers: configuration.layers, width: configuration.kvHeads * configuration.headSize, capacity: capacity)
    }

    public func forward(_ tokens: [Int], cache: KVCache, outputs: OutputRows, hiddenStates wantHidden: Bool) throws -> ForwardResult {
        try run(tokens, cache: cache, outputs: outputs, hiddenStates: wantHidden, layers: blocks.count).result!
    }

    /// The residual stream after the first `afterLayer` blocks (no final norm), for the selected rows: features
    /// from an intermediate layer.
    public func residualStream(_ tokens: [Int], cache: KVCache, afterLayer: Int, outputs: OutputRows) throws -> [Float] {
        guard afterLayer >= 1 && afterLayer <= blocks.count else {
            throw InferenceError.invalidConfiguration("layer \(afterLayer) is outside 1...\(blocks.count)")
        }
        let (_, stream) = try run(tokens, cache: cache, outputs: outputs, hiddenStates: false, layers: afterLayer)
        let rows = outputs.rows(in: tokens.count), d = configuration.hiddenSize
        return Array(stream[(rows.lowerBound * d)..<(rows.upperBound * d)])
    }

    /// Runs the first `layers` blocks; with all of them, also the output norm and head.
    private func run(_ tokens: [Int], cache: KVCache, outputs: OutputRows, hiddenStates wantHidden: Bool,
                     layers: Int) throws -> (result: ForwardResult?, stream: [Float]) {
        let c = configuration
        guard !tokens.isEmpty else { throw InferenceError.emptyInput }
        for t in tokens where t < 0 || t >= c.vocabularySize {
            throw InferenceError.tokenOutOfRange(t, vocabularySize: c.vocabularySize)
        }
        let start = cache.count
        guard start + tokens.count <= cache.capacity else {
            throw InferenceError.contextFull(needed: start + tokens.count, capacity: cache.capacity)
        }
        let n = tokens.count, d = c.hiddenSize, hs = c.headSize
        let qWidth = c.heads * hs, kvWidth = c.kvHeads * hs, f = c.feedForwardSize

        var x = [Float](repeating: 0, count: n * d)
        var h = [Float](repeating: 0, count: n * d)
        var q = [Float](repeating: 0, count: n * qWidth)
        var k = [Float](repeating: 0, count: n * kvWidth)
        var v = [Float](repeating: 0, count: n * kvWidth)
        var attn = [Float](repeating: 0, count: n * qWidth)
        var gate = [Float](repeating: 0, count: n * f)
        var up = [Float](repeating: 0, count: n * f)
        var mm = MatMul(threads: threads, columns: d)

        x.withUnsafeMutableBufferPointer { x in
            for (i, t) in tokens.enumerated() { embeddings.dequantizeRow(t, into: x.baseAddress! + i * d) }
        }
        let rope = RotaryEmbedding(dimensions: c.ropeDimensions, base: c.ropeBase, positions: start..<(start + n))

        for (l, layer) in blocks.prefix(layers).enumerated() {
            Ops.rmsNorm(x, weight: layer.attentionNorm, rows: n, epsilon: c.rmsEpsilon, into: &h)
            h.withUnsafeBufferPointer { hp in
                q.withUnsafeMutableBufferPointer { mm.multiply(layer.q, hp.baseAddress!, tokens: n, into: $0.baseAddress!) }
                k.withUnsafeMutableBufferPointer { mm.multiply(layer.k, hp.baseAddress!, tokens: n, into: $0.baseAddress!) }
                v.withUnsafeMutableBufferPointer { mm.multiply(layer.v, hp.baseAddress!, tokens: n, into: $0.baseAddress!) }
            }
            rope.apply(&q, heads: c.heads, headSize: hs)
            rope.apply(&k, heads: c.kvHeads, headSize: hs)
            cache.store(layer: l, position: start, rows: n, keys: k, values: v)
            Attention.causal(q: q, keys: cache.keys[l], values: cache.values[l], start: start, tokens: n,
                             heads: c.heads, kvHeads: c.kvHeads, headSize: hs, threads: threads, into: &attn)
            attn.withUnsafeBufferPointer { ap in
                h.withUnsafeMutableBufferPointer { mm.multiply(layer.o, ap.baseAddress!, tokens: n, into: $0.baseAddress!) }
            }
            Ops.add(&x, h)

            Ops.rmsNorm(x, weight: layer.ffnNorm, rows: n, epsilon: c.rmsEpsilon, into: &h)
            h.withUnsafeBufferPointer { hp in
                gate.withUnsafeMutableBufferPointer { mm.multiply(layer.gate, hp.baseAddress!, tokens: n, into: $0.baseAddress!) }
                up.withUnsafeMutableBufferPointer { mm.multiply(layer.up, hp.baseAddress!, tokens: n, into: $0.baseAddress!) }
            }
            Ops.swiGLU(gate: &gate, up: up)
            gate.withUnsafeBufferPointer { gp in
                h.withUnsafeMutableBufferPointer { mm.multiply(layer.down, gp.baseAddress!, tokens: n, into: $0.baseAddress!) }
            }
            Ops.add(&x, h)
        }
        cache.count = start + n
        if layers < blocks.count { return (nil, x) }

        let rows = outputs.rows(in: n)
        var normed = [Float](repeating: 0, count: rows.count * d)
        if !rows.isEmpty {
            let selected = Array(x[(rows.lowerBound * d)..<(rows.upperBound * d)])
            Ops.rmsNorm(selected, weight: outputNorm, rows: rows.count, epsilon: c.rmsEpsilon, into: &normed)
        }
        var logits = [Float](repeating: 0, count: rows.count * c.vocabularySize)
        if !rows.isEmpty {
            normed.withUnsafeBufferPointer { np in
                logits.withUnsafeMutableBufferPointer { mm.multiply(output, np.baseAddress!, tokens: rows.count, into: $0.baseAddress!) }
            }
        }
        return (ForwardResult(logits: logits, hiddenStates: wantHidden ? normed : nil, rows: rows.count, vocabularySize: c.vocabularySize), x)
    }
}
