import Foundation
import Inference

/// The model's exact distribution over a fixed set of label strings.
public struct LabelScores: Sendable {
    /// Full-sequence log-probability of each label (every token, including its terminator), in input order.
    public var logProbabilities: [Double]
    /// The log-probabilities normalised over the labels.
    public var probabilities: [Double]
    /// Forward passes run (the prompt counts as one).
    public var forwardPasses: Int
    /// Tokens evaluated, prompt included.
    public var tokensEvaluated: Int

    /// Index of the most likely label.
    public var best: Int { probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? 0 }
}

/// Scores candidate labels after a prompt: the prompt is evaluated once, and the labels' token sequences are walked
/// as a trie, so a shared prefix is evaluated once and each branch runs as one batch from the cached state.
public struct LabelScorer {
    /// The model.
    public let model: any LanguageModel
    /// Token sequences of the labels as the model would write them (including a terminator, so a label that is a
    /// prefix of another is not credited with the longer one's probability).
    public let labels: [[Int]]
    private let trie: Trie

    /// A scorer for `labels` (token sequences, each non-empty and distinct).
    public init(model: any LanguageModel, labels: [[Int]]) throws {
        guard !labels.isEmpty, labels.allSatisfy({ !$0.isEmpty }) else { throw InferenceError.emptyInput }
        guard Set(labels).count == labels.count else {
            throw InferenceError.invalidConfiguration("two labels have the same tokens; add a terminator token to each label")
        }
        self.model = model
        self.labels = labels
        trie = Trie(labels)
    }

    /// The distribution over the labels after `prompt`.
    public func score(prompt: [Int]) throws -> LabelScores {
        guard !prompt.isEmpty else { throw InferenceError.emptyInput }
        let depth = labels.map(\.count).max()!
        let cache = model.newCache(capacity: prompt.count + depth)
        let first = try model.forward(prompt, cache: cache, outputs: .last)
        var totals = [Double](repeating: 0, count: labels.count)
        var passes = 1, tokens = prompt.count
        // Depth-first: `logits` predict the children of `node`; the cache holds the prompt and the path to `node`.
        func visit(_ node: Int, logits: ArraySlice<Float>, base: Double) throws {
            let position = cache.count
            for (token, child) in trie.children[node] {
                var score = base + LogProbabilities.of(token, in: logits)
                // Follow the chain of single children: one batch scores all of it.
                var chain = [token]
                var end = child
                while trie.children[end].count == 1 && trie.label[end] == nil {
                    chain.append(trie.children[end][0].token)
                    end = trie.children[end][0].node
                }
                let needsLast = !trie.children[end].isEmpty
                let batch = needsLast ? chain : Array(chain.dropLast())
                // A lone leaf token needs no pass: the parent's logits scored it.
                guard !batch.isEmpty else {
                    if let l = trie.label[end] { totals[l] = score }
                    continue
                }
                let result = try model.forward(batch, cache: cache, outputs: .all)
                passes += 1
                tokens += batch.count
                for i in 1..<chain.count { score += LogProbabilities.of(chain[i], in: result.logits(row: i - 1)) }
                if let l = trie.label[end] { totals[l] = score }
                if needsLast { try visit(end, logits: result.logits(row: batch.count - 1), base: score) }
                cache.truncate(to: position)
            }
        }
        try visit(0, logits: first.logits(row: 0), base: 0)
        return LabelScores(logProbabilities: totals, probabilities: Self.normalised(totals), forwardPasses: passes, tokensEvaluated: tokens)
    }

    /// The same scores the slow way, the prompt evaluated again for every label (the reference for tests and the
    /// benchmark). Each label is a second batch after its own prompt pass, so the arithmetic is the trie's
    /// (attention over a few new positions), and only the sharing differs.
    public func scoreSeparately(prompt: [Int]) throws -> LabelScores {
        guard !prompt.isEmpty else { throw InferenceError.emptyInput }
        var totals: [Double] = []
        for label in labels {
            let cache = model.newCache(capacity: prompt.count + label.count)
            let first = try model.forward(prompt, cache: cache, outputs: .last)
            var total = LogProbabilities.of(label[0], in: first.logits(row: 0))
            if label.count > 1 {
                let rest = try model.forward(Array(label.dropLast()), cache: cache, outputs: .all)
                for i in 1..<label.count { total += LogProbabilities.of(label[i], in: rest.logits(row: i - 1)) }
            }
            totals.append(total)
        }
        return LabelScores(logProbabilities: totals, probabilities: Self.normalised(totals), forwardPasses: 2 * labels.count,
                           tokensEvaluated: labels.reduce(0) { $0 + prompt.count + $1.count - 1 })
    }

    /// Log-probabilities to a distribution over the labels.
    private static func normalised(_ logProbabilities: [Double]) -> [Double] {
        let top = logProbabilities.max()!
        let weights = logProbabilities.map { Foundation.exp($0 - top) }
        let sum = weights.reduce(0, +)
        return weights.map { $0 / sum }
    }

    private struct Trie {
        var children: [[(token: Int, node: Int)]] = [[]]
        var label: [Int?] = [nil]

        init(_ sequences: [[Int]]) {
            for (l, seq) in sequences.enumerated() {
                var n = 0
                for t in seq {
                    if let c = children[n].first(where: { $0.token == t }) { n = c.node; continue }
                    children.append([])
                    label.append(nil)
                    children[n].append((t, children.count - 1))
                    n = children.count - 1
                }
                label[n] = l
            }
        }
    }
}
