import CKernels
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
///
/// A pass runs in micro-batches of at most ``microBatch`` tokens over scratch buffers reused across calls (no
/// allocation per token beyond the returned scores). Per layer it makes four matrix-product jobs (Q, K and V
/// together; the output projection with the residual added; gate and up with SwiGLU fused; down with the residual
/// added) and one attention job on the thread pool.
public final class LlamaModel: LanguageModel, @unchecked Sendable {
    /// Hyper-parameters.
    public let configuration: LlamaConfiguration
    /// Worker threads per forward pass.
    public let threads: Int
    /// Most tokens evaluated in one pass of the layers (llama.cpp's default micro-batch); longer inputs take several.
    public static let microBatch = 512

    struct Layer {
        let attentionNorm: [Float]
        let qkv: MatrixGroup
        let o: WeightMatrix
        let ffnNorm: [Float]
        let gateUp: MatrixGroup
        let down: WeightMatrix
    }

    private let file: GGUFFile
    private let embeddings: WeightMatrix
    private let blocks: [Layer]
    private let outputNorm: [Float]
    private let output: WeightMatrix
    private let workspaces = WorkspacePool()

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
                qkv: MatrixGroup([try matrix(p + "attn_q.weight", rows: qw, columns: d),
                                  try matrix(p + "attn_k.weight", rows: kv, columns: d),
                                  try matrix(p + "attn_v.weight", rows: kv, columns: d)]),
                o: try matrix(p + "attn_output.weight", rows: d, columns: qw),
                ffnNorm: try vector(p + "ffn_norm.weight", count: d),
                gateUp: MatrixGroup([try matrix(p + "ffn_gate.weight", rows: config.feedForwardSize, columns: d),
                                     try matrix(p + "ffn_up.weight", rows: config.feedForwardSize, columns: d)]),
                down: try matrix(p + "ffn_down.weight", rows: d, columns: config.feedForwardSize))
        }
    }

    public func newCache(capacity: Int) -> KVCache {
        KVCache(layers: configuration.layers, width: configuration.kvHeads * configuration.headSize, capacity: capacity)
    }

    public func forward(_ tokens: [Int], cache: KVCache, outputs: OutputRows, hiddenStates wantHidden: Bool) throws -> ForwardResult {
        try run(tokens, cache: cache, outputs: outputs, hiddenStates: wantHidden, layers: blocks.count)
    }

    /// The residual stream after the first `afterLayer` blocks (no final norm), for the selected rows: features
    /// from an intermediate layer.
    public func residualStream(_ tokens: [Int], cache: KVCache, afterLayer: Int, outputs: OutputRows) throws -> [Float] {
        guard afterLayer >= 1 && afterLayer <= blocks.count else {
            throw InferenceError.invalidConfiguration("layer \(afterLayer) is outside 1...\(blocks.count)")
        }
        return try run(tokens, cache: cache, outputs: outputs, hiddenStates: true, layers: afterLayer).hiddenStates ?? []
    }

    /// Evaluates the next tokens of several independent sequences in one batched pass: the matrix products see every
    /// sequence's rows at once (weights read once for all), attention stays within each sequence's cache. Returns the
    /// scores after each sequence's last token, in order. Each cache must be distinct.
    public func forward(batch: [(tokens: [Int], cache: KVCache)]) throws -> [[Float]] {
        guard !batch.isEmpty else { return [] }
        guard Set(batch.map { ObjectIdentifier($0.cache) }).count == batch.count else {
            throw InferenceError.invalidConfiguration("each sequence of a batch needs its own cache")
        }
        var segments: [Segment] = []
        var ids: [Int] = []
        for (tokens, cache) in batch {
            try validate(tokens, cache: cache)
            segments.append(Segment(cache: cache, first: ids.count, count: tokens.count))
            ids += tokens
        }
        guard ids.count <= Self.microBatch else {
            throw InferenceError.invalidConfiguration("a batch of \(ids.count) tokens exceeds the micro-batch of \(Self.microBatch)")
        }
        let v = configuration.vocabularySize
        var logits = [Float](repeating: 0, count: batch.count * v)
        let ws = workspaces.take(self)
        defer { workspaces.give(ws) }
        ids.withUnsafeBufferPointer { idp in
            logits.withUnsafeMutableBufferPointer { lp in
                let rows = segments.map { $0.first + $0.count - 1 }
                pass(idp, segments: segments, outputRows: rows, ws: ws, layers: blocks.count, logits: lp.baseAddress!, hidden: nil)
            }
        }
        return (0..<batch.count).map { Array(logits[($0 * v)..<(($0 + 1) * v)]) }
    }

    private func validate(_ tokens: [Int], cache: KVCache) throws {
        guard !tokens.isEmpty else { throw InferenceError.emptyInput }
        for t in tokens where t < 0 || t >= configuration.vocabularySize {
            throw InferenceError.tokenOutOfRange(t, vocabularySize: configuration.vocabularySize)
        }
        guard cache.count + tokens.count <= cache.capacity else {
            throw InferenceError.contextFull(needed: cache.count + tokens.count, capacity: cache.capacity)
        }
    }

    /// Runs the first `layers` blocks over `tokens` in micro-batches; with all of them, the output norm and head for
    /// the selected rows (hidden states are the normalised rows), otherwise the residual stream of those rows.
    private func run(_ tokens: [Int], cache: KVCache, outputs: OutputRows, hiddenStates wantHidden: Bool,
                     layers: Int) throws -> ForwardResult {
        try validate(tokens, cache: cache)
        let c = configuration, n = tokens.count, d = c.hiddenSize
        let selected = outputs.rows(in: n)
        let full = layers == blocks.count
        var logits = [Float](repeating: 0, count: full ? selected.count * c.vocabularySize : 0)
        var hidden = [Float](repeating: 0, count: wantHidden ? selected.count * d : 0)
        let ws = workspaces.take(self)
        defer { workspaces.give(ws) }
        tokens.withUnsafeBufferPointer { idp in
            logits.withUnsafeMutableBufferPointer { lp in
                hidden.withUnsafeMutableBufferPointer { hp in
                    var b0 = 0
                    while b0 < n {
                        let b1 = min(n, b0 + Self.microBatch)
                        ws.segments.removeAll(keepingCapacity: true)
                        ws.segments.append(Segment(cache: cache, first: 0, count: b1 - b0))
                        ws.outputRows.removeAll(keepingCapacity: true)
                        let first = max(b0, selected.lowerBound), end = min(b1, selected.upperBound)
                        if first < end { ws.outputRows += (first - b0)..<(end - b0) }
                        let done = max(0, min(b0, selected.upperBound) - selected.lowerBound)  // selected rows before b0
                        pass(UnsafeBufferPointer(rebasing: idp[b0..<b1]), segments: ws.segments, outputRows: ws.outputRows, ws: ws,
                             layers: layers, logits: full ? lp.baseAddress.map { $0 + done * c.vocabularySize } : nil,
                             hidden: wantHidden ? hp.baseAddress.map { $0 + done * d } : nil)
                        b0 = b1
                    }
                }
            }
        }
        return ForwardResult(logits: logits, hiddenStates: wantHidden ? hidden : nil, rows: selected.count, vocabularySize: c.vocabularySize)
    }

    /// One micro-batch: `ids` (at most ``microBatch``) split into sequence segments, each continuing its cache.
    /// Writes the scores of `outputRows` to `logits` and their hidden states (normalised after the last layer, the
    /// residual stream otherwise) to `hidden`, each when given.
    private func pass(_ ids: UnsafeBufferPointer<Int>, segments: [Segment], outputRows: [Int], ws: Workspace, layers: Int,
                      logits: UnsafeMutablePointer<Float>?, hidden: UnsafeMutablePointer<Float>?) {
        let c = configuration, n = ids.count, d = c.hiddenSize, hs = c.headSize
        let kvWidth = c.kvHeads * hs, pairs = c.ropeDimensions / 2
        let b = ws.buffers(tokens: n)
        let x = b.x, h = b.h, q = b.q, k = b.k, v = b.v, attn = b.attn
        for (i, t) in ids.enumerated() { embeddings.dequantizeRow(t, into: x + i * d) }
        // Rotation angles and attention extents per row.
        for s in segments {
            for i in 0..<s.count {
                let row = s.first + i, position = s.cache.count + i
                RotaryEmbedding.angles(position: position, dimensions: c.ropeDimensions, base: c.ropeBase,
                                       cosines: b.cosines + row * pairs, sines: b.sines + row * pairs)
                b.lengths[row] = Int32(position + 1)
            }
        }
        let halfAccumulator: Int32 = n < Attention.halfAccumulatorBelow ? 1 : 0
        for l in 0..<layers {
            let layer = blocks[l]
            layer.attentionNorm.withUnsafeBufferPointer { ms_rms_norm(Int32(n), Int32(d), x, $0.baseAddress!, c.rmsEpsilon, h) }
            ws.mm.multiply(layer.qkv, h, tokens: n, into: q, k, v)
            RotaryEmbedding.apply(q, rows: n, heads: c.heads, headSize: hs, pairs: pairs, cosines: b.cosines, sines: b.sines)
            RotaryEmbedding.apply(k, rows: n, heads: c.kvHeads, headSize: hs, pairs: pairs, cosines: b.cosines, sines: b.sines)
            for s in segments {
                s.cache.store(layer: l, position: s.cache.count, rows: s.count, keys: k + s.first * kvWidth, values: v + s.first * kvWidth)
                let keys = s.cache.keys(layer: l), values = s.cache.values(layer: l)
                for i in s.first..<(s.first + s.count) {
                    b.keys[i] = UnsafePointer(keys)
                    b.values[i] = UnsafePointer(values)
                }
            }
            // A long single-sequence batch goes through tiles; decoding steps and mixed batches per token and head.
            let tiled = halfAccumulator == 0 && segments.count == 1
                && ms_attention_tiled(Int32(n), Int32(segments[0].cache.count), Int32(c.heads), Int32(c.kvHeads), Int32(hs), q,
                                      segments[0].cache.keys(layer: l), segments[0].cache.values(layer: l), attn, Int32(threads)) != 0
            if !tiled {
                ms_attention(Int32(n), Int32(c.heads), Int32(c.kvHeads), Int32(hs), b.lengths, b.keys, b.values,
                             halfAccumulator, q, attn, Int32(threads))
            }
            ws.mm.multiply(layer.o, attn, tokens: n, into: x, epilogue: .accumulate)
            layer.ffnNorm.withUnsafeBufferPointer { ms_rms_norm(Int32(n), Int32(d), x, $0.baseAddress!, c.rmsEpsilon, h) }
            ws.mm.multiply(layer.gateUp, h, tokens: n, into: b.gate, b.up, epilogue: .swiGLU)
            ws.mm.multiply(layer.down, b.gate, tokens: n, into: x, epilogue: .accumulate)
        }
        for s in segments { s.cache.count += s.count }
        guard !outputRows.isEmpty else { return }
        // The selected rows, gathered, normalised and projected to the vocabulary.
        for (j, r) in outputRows.enumerated() { (h + j * d).update(from: x + r * d, count: d) }
        let m = outputRows.count
        if layers < blocks.count {
            hidden?.update(from: h, count: m * d)
            return
        }
        outputNorm.withUnsafeBufferPointer { ms_rms_norm(Int32(m), Int32(d), h, $0.baseAddress!, c.rmsEpsilon, q) }
        hidden?.update(from: q, count: m * d)
        if let logits { ws.mm.multiply(output, q, tokens: m, into: logits) }
    }

    /// Tokens of one sequence within a micro-batch.
    struct Segment {
        let cache: KVCache
        let first: Int
        let count: Int
    }

    /// Scratch rows of one pass, carved out of one allocation: activations, rotation angles, and each row's
    /// attention extent and cache.
    struct Buffers {
        let storage: UnsafeMutableRawPointer
        let tokens: Int
        let x, h, q, k, v, attn, gate, up, cosines, sines: UnsafeMutablePointer<Float>
        let lengths: UnsafeMutablePointer<Int32>
        let keys, values: UnsafeMutablePointer<UnsafePointer<UInt16>?>

        init(_ c: LlamaConfiguration, tokens n: Int) {
            let qWidth = c.heads * c.headSize, kvWidth = c.kvHeads * c.headSize, pairs = c.ropeDimensions / 2
            // Each float buffer rounded up to 16 floats (64 bytes); `h` also gathers output rows and `q` normalises them.
            let widths = [c.hiddenSize, max(c.hiddenSize, qWidth), max(qWidth, c.hiddenSize), kvWidth, kvWidth, qWidth,
                          c.feedForwardSize, c.feedForwardSize, pairs, pairs]
            let sizes = widths.map { ($0 * n + 15) / 16 * 16 }
            let floats = sizes.reduce(0, +)
            storage = UnsafeMutableRawPointer.allocate(byteCount: floats * 4 + n * 20, alignment: 64)
            var p = storage.bindMemory(to: Float.self, capacity: floats)
            var buffers: [UnsafeMutablePointer<Float>] = []
            for size in sizes { buffers.append(p); p += size }
            (x, h, q, k, v, attn, gate, up, cosines, sines) = (buffers[0], buffers[1], buffers[2], buffers[3], buffers[4],
                                                               buffers[5], buffers[6], buffers[7], buffers[8], buffers[9])
            let rest = UnsafeMutableRawPointer(p)
            keys = rest.bindMemory(to: UnsafePointer<UInt16>?.self, capacity: n)
            values = (rest + n * 8).bindMemory(to: UnsafePointer<UInt16>?.self, capacity: n)
            lengths = (rest + n * 16).bindMemory(to: Int32.self, capacity: n)
            tokens = n
        }
    }

    /// What one pass needs besides the weights, kept between passes: the product engine and its quantization
    /// scratch, the rows (grown, never shrunk), and the lists of segments and output rows.
    final class Workspace {
        let configuration: LlamaConfiguration
        let mm: MatMul
        private var rows: Buffers
        var segments: [Segment] = []
        var outputRows: [Int] = []

        init(_ configuration: LlamaConfiguration, threads: Int) {
            self.configuration = configuration
            mm = MatMul(threads: threads, columns: max(configuration.hiddenSize, configuration.feedForwardSize))
            rows = Buffers(configuration, tokens: 1)
            segments.reserveCapacity(1)
            outputRows.reserveCapacity(LlamaModel.microBatch)
        }

        /// Buffers for at least `count` tokens.
        func buffers(tokens count: Int) -> Buffers {
            if count > rows.tokens {
                rows.storage.deallocate()
                rows = Buffers(configuration, tokens: count)
            }
            return rows
        }

        deinit { rows.storage.deallocate() }
    }

    /// Workspaces kept between passes (one per concurrent caller).
    final class WorkspacePool: @unchecked Sendable {
        private let lock = NSLock()
        private var free: [Workspace] = []

        func take(_ model: LlamaModel) -> Workspace {
            lock.lock()
            let ws = free.popLast()
            lock.unlock()
            return ws ?? Workspace(model.configuration, threads: model.threads)
        }

        func give(_ ws: Workspace) {
            lock.lock()
            if free.count < 4 { free.append(ws) }
            lock.unlock()
        }
    }
}
