import Foundation

/// Perplexity of a token sequence by llama.cpp's rule: split into chunks of `context` tokens, evaluate each chunk
/// from an empty cache, and score only the second half of each chunk (every scored token then has at least
/// `context / 2` tokens of history).
public struct Perplexity: Sendable {
    /// The estimate over all scored tokens: `exp(mean negative log-likelihood)`.
    public var value: Double
    /// The running estimate after each chunk (what llama-perplexity prints as `[1]…,[2]…`).
    public var runningEstimates: [Double]
    /// Standard error of the estimate (delta method over per-token negative log-likelihoods).
    public var standardError: Double
    /// Tokens scored.
    public var scoredTokens: Int
    /// Chunks evaluated.
    public var chunks: Int

    /// Evaluates `tokens` in `tokens.count / context` chunks; `bos`, if given, replaces each chunk's first token.
    public static func evaluate(_ model: any LanguageModel, tokens: [Int], context: Int, bos: Int? = nil,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Perplexity {
        guard context >= 4 else { throw InferenceError.invalidConfiguration("perplexity context \(context) is too small") }
        let chunks = tokens.count / context
        guard chunks >= 1 && tokens.count >= 2 * context else {
            throw InferenceError.invalidConfiguration("perplexity needs at least \(2 * context) tokens for a context of \(context); the text has \(tokens.count)")
        }
        let first = context / 2
        var nll = 0.0, nll2 = 0.0, count = 0
        var running: [Double] = []
        let cache = model.newCache(capacity: context)
        for c in 0..<chunks {
            var chunk = Array(tokens[(c * context)..<((c + 1) * context)])
            if let bos { chunk[0] = bos }
            cache.reset()
            let result = try model.forward(chunk, cache: cache, outputs: .from(first))
            for i in 0..<(context - 1 - first) {
                let lp = LogProbabilities.of(chunk[first + i + 1], in: result.logits(row: i))
                nll -= lp
                nll2 += lp * lp
                count += 1
            }
            running.append(Foundation.exp(nll / Double(count)))
            progress?(c + 1, chunks)
        }
        let mean = nll / Double(count)
        let variance = nll2 / Double(count) - mean * mean
        let error = count > 1 && variance > 0 ? (variance / Double(count - 1)).squareRoot() * Foundation.exp(mean) : 0
        return Perplexity(value: Foundation.exp(mean), runningEstimates: running, standardError: error, scoredTokens: count, chunks: chunks)
    }
}
