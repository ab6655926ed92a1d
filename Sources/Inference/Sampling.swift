import Datasets
import Foundation

/// Adjusts next-token scores before sampling (penalties, constraints); processors chain in order.
public protocol LogitProcessor {
    /// Called once with the prompt tokens.
    mutating func prompt(_ tokens: [Int])
    /// Rewrites `logits` in place.
    func process(_ logits: inout [Float])
    /// Called after each sampled token.
    mutating func didSample(_ token: Int)
    /// Whether the output is complete and nothing but end-of-generation may follow (generation then stops
    /// without another forward pass).
    var isFinished: Bool { get }
}

extension LogitProcessor {
    public mutating func prompt(_ tokens: [Int]) {}
    public mutating func didSample(_ token: Int) {}
    public var isFinished: Bool { false }
}

/// Picks the next token from (processed) scores.
public protocol LogitSampler {
    /// The chosen token.
    mutating func sample(_ logits: [Float]) -> Int
}

/// Always the highest-scoring token (lowest id on ties).
public struct ArgMaxSampler: LogitSampler {
    /// Greedy sampling.
    public init() {}

    public mutating func sample(_ logits: [Float]) -> Int {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return best
    }
}

/// Temperature, then top-k, then top-p (nucleus) filtering, then a draw from the remaining distribution.
public struct CategoricalSampler: LogitSampler {
    /// Softmax temperature (> 0).
    public var temperature: Float
    /// Keep only the `topK` best tokens (0 keeps all).
    public var topK: Int
    /// Keep the smallest set of best tokens whose probability reaches `topP` (1 keeps all).
    public var topP: Float
    private var generator: SeededGenerator

    /// A sampler with a fixed seed.
    public init(temperature: Float, topK: Int = 0, topP: Float = 1, seed: UInt64) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        generator = SeededGenerator(seed: seed)
    }

    public mutating func sample(_ logits: [Float]) -> Int {
        // Work on the few tokens that can be chosen, never on a sort of the whole vocabulary.
        let maxLogit = logits.max() ?? 0
        let temperature = self.temperature
        let weight = { (l: Float) in Foundation.exp(Double((l - maxLogit) / temperature)) }
        let useTopK = topK > 0 && topK < logits.count
        // The whole vocabulary's weight, needed unless top-k alone decides.
        let vocabularyTotal = useTopK ? 0 : logits.reduce(0.0) { $0 + weight($1) }
        var candidates: [Int]
        if useTopK {
            candidates = Self.topIndices(logits, count: topK)
        } else if topP < 1 {
            // Tokens below ε = (1 - p) / 2V of the total carry less than (1 - p) / 2 together, so the nucleus lies
            // among the others.
            let floor = vocabularyTotal * Double(1 - topP) / Double(2 * logits.count)
            candidates = logits.indices.filter { weight(logits[$0]) >= floor }
        } else {
            var draw = Double.random(in: 0..<1, using: &generator) * vocabularyTotal
            for (i, l) in logits.enumerated() {
                draw -= weight(l)
                if draw < 0 { return i }
            }
            return logits.indices.last!
        }
        candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        var probabilities = candidates.map { weight(logits[$0]) }
        // Top-k renormalises over the k kept; top-p alone measures mass against the whole vocabulary.
        let total = useTopK ? probabilities.reduce(0, +) : vocabularyTotal
        for i in probabilities.indices { probabilities[i] /= total }
        var keep = probabilities.count
        if topP < 1 {
            var cumulative = 0.0
            for (i, p) in probabilities.enumerated() {
                cumulative += p
                if cumulative >= Double(topP) { keep = i + 1; break }
            }
        }
        let mass = probabilities[0..<keep].reduce(0, +)
        var draw = Double.random(in: 0..<1, using: &generator) * mass
        for i in 0..<keep {
            draw -= probabilities[i]
            if draw < 0 { return candidates[i] }
        }
        return candidates[keep - 1]
    }

    /// Indices of the `count` highest scores (ties to the lower index), unordered, in one pass with a rising cutoff.
    static func topIndices(_ logits: [Float], count: Int) -> [Int] {
        func better(_ a: Int, _ b: Int) -> Bool { logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }
        var kept = Array(logits.indices.prefix(count)).sorted(by: better)
        var cutoff = kept.last!
        var pending: [Int] = []
        for i in count..<logits.count where better(i, cutoff) {
            pending.append(i)
            if pending.count >= 4 * count {
                kept = Array((kept + pending).sorted(by: better).prefix(count))
                cutoff = kept.last!
                pending.removeAll(keepingCapacity: true)
            }
        }
        return Array((kept + pending).sorted(by: better).prefix(count))
    }
}

/// Divides positive scores (multiplies negative ones) of recently seen tokens by `penalty` (the CTRL rule).
public struct RepetitionPenalty: LogitProcessor {
    /// Penalty factor (> 1 discourages repeats).
    public var penalty: Float
    /// How many recent tokens count.
    public var window: Int
    private var history: [Int] = []

    /// A penalty over the last `window` tokens.
    public init(penalty: Float, window: Int = 64) {
        self.penalty = penalty
        self.window = window
    }

    public mutating func prompt(_ tokens: [Int]) { history = Array(tokens.suffix(window)) }

    public func process(_ logits: inout [Float]) {
        for t in Set(history) where t < logits.count {
            logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty
        }
    }

    public mutating func didSample(_ token: Int) {
        history.append(token)
        if history.count > window { history.removeFirst(history.count - window) }
    }
}

/// Log-probabilities from scores, computed in double precision.
public enum LogProbabilities {
    /// `log Σ exp(logits)`, computed from the largest logit so nothing overflows.
    public static func logSumExp<C: Collection>(_ logits: C) -> Double where C.Element == Float {
        let maxLogit = Double(logits.max() ?? 0)
        var sum = 0.0
        for l in logits { sum += Foundation.exp(Double(l) - maxLogit) }
        return maxLogit + Foundation.log(sum)
    }

    /// `log softmax(logits)`.
    public static func logSoftmax<C: Collection>(_ logits: C) -> [Double] where C.Element == Float {
        let logSum = logSumExp(logits)
        return logits.map { Double($0) - logSum }
    }

    /// `log softmax(logits)[token]` without materialising the whole vector.
    public static func of<C: Collection>(_ token: Int, in logits: C) -> Double where C.Element == Float, C.Index == Int {
        Double(logits[logits.startIndex + token]) - logSumExp(logits)
    }
}

/// OpenAI's presence and frequency penalties over the generated tokens (the prompt does not count):
/// `score[j] -= count[j] * frequency + (count[j] > 0 ? presence : 0)`, as the OpenAI API reference defines them.
public struct OccurrencePenalty: LogitProcessor {
    /// Subtracted once from every token that has appeared.
    public var presence: Float
    /// Subtracted once per appearance.
    public var frequency: Float
    private var counts: [Int: Int] = [:]

    /// Penalties as OpenAI's `presence_penalty` and `frequency_penalty` (-2…2).
    public init(presence: Float, frequency: Float) {
        self.presence = presence
        self.frequency = frequency
    }

    public func process(_ logits: inout [Float]) {
        for (token, count) in counts where token < logits.count {
            logits[token] -= Float(count) * frequency + presence
        }
    }

    public mutating func didSample(_ token: Int) { counts[token, default: 0] += 1 }
}

/// Adds a fixed bias to chosen tokens' scores (OpenAI's `logit_bias`: -100 bans a token, 100 forces it).
public struct LogitBias: LogitProcessor {
    /// Bias by token id.
    public let bias: [Int: Float]

    /// A bias table.
    public init(_ bias: [Int: Float]) { self.bias = bias }

    public func process(_ logits: inout [Float]) {
        for (token, b) in bias where token >= 0 && token < logits.count { logits[token] += b }
    }
}
