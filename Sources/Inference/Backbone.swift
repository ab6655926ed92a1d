/// Text in, a fixed-size feature vector out: what task adaptation needs from a model, whichever kind it is.
public protocol Backbone: Sendable {
    /// Length of each feature vector.
    var dimension: Int { get }
    /// A stable description of the model and settings (for cache keys and adapter hashes).
    var identifier: String { get }
    /// One feature vector per text, in order.
    func embed(_ texts: [String]) throws -> [[Float]]
    /// Tokens `text` becomes before truncation (with any tokens the backbone adds around it), and how many of them
    /// the backbone reads: fewer when the text is longer than its token limit.
    func tokenCounts(_ text: String) -> (tokens: Int, kept: Int)
}

/// How a decoder's per-token hidden states become one vector.
public enum Pooling: String, Sendable, CaseIterable {
    /// Mean over all tokens.
    case mean
    /// The last token's state.
    case last
}

/// A GGUF decoder as a backbone: hidden states of the final layer (after its norm) or of an earlier layer
/// (the residual stream after that block), pooled by mean or last token.
public struct DecoderBackbone: Backbone {
    /// The model.
    public let loaded: LoadedModel
    /// Pooling rule.
    public let pooling: Pooling
    /// Blocks to run (nil: all, with the final norm).
    public let layer: Int?
    /// Longest input in tokens; longer inputs keep their first tokens.
    public let maxTokens: Int

    /// A backbone over `loaded`.
    public init(_ loaded: LoadedModel, pooling: Pooling = .mean, layer: Int? = nil, maxTokens: Int = 256) {
        self.loaded = loaded
        self.pooling = pooling
        self.layer = layer
        self.maxTokens = maxTokens
    }

    public var dimension: Int { loaded.model.hiddenSize }

    public var identifier: String {
        "gguf:\(loaded.file.metadata["general.name"]?.stringValue ?? "model"):\(loaded.file.storage.count):\(pooling.rawValue):\(layer.map(String.init) ?? "final")"
    }

    public func tokenCounts(_ text: String) -> (tokens: Int, kept: Int) {
        let n = loaded.tokenizer.encode(text, parseSpecial: false).count
        return (n, min(n, maxTokens))
    }

    public func embed(_ texts: [String]) throws -> [[Float]] {
        try texts.map { text in
            var tokens = Array(loaded.tokenizer.encode(text, parseSpecial: false).prefix(maxTokens))
            if tokens.isEmpty { tokens = [loaded.tokenizer.bosToken ?? 0] }
            let cache = loaded.model.newCache(capacity: tokens.count)
            let rows: OutputRows = pooling == .last ? .last : .all
            let states: [Float]
            if let layer, let llama = loaded.model as? LlamaModel {
                states = try llama.residualStream(tokens, cache: cache, afterLayer: layer, outputs: rows)
            } else {
                states = try loaded.model.forward(tokens, cache: cache, outputs: rows, hiddenStates: true).hiddenStates ?? []
            }
            let d = dimension, n = states.count / d
            var pooled = [Float](repeating: 0, count: d)
            for r in 0..<n { for i in 0..<d { pooled[i] += states[r * d + i] } }
            return pooled.map { $0 / Float(n) }
        }
    }
}
