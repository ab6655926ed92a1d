import GGUF
import Tokenizers

/// Which positions of an evaluated batch return results.
public enum OutputRows: Sendable, Equatable {
    /// Only the last token (what generation needs).
    case last
    /// Every token (perplexity, log-probabilities, features).
    case all
    /// None: the batch only extends the cache.
    case none
    /// Tokens from this index of the batch on (perplexity scores only the second half of a chunk).
    case from(Int)

    /// The batch indices selected from a batch of `count` tokens.
    public func rows(in count: Int) -> Range<Int> {
        switch self {
        case .last: return (count - 1)..<count
        case .all: return 0..<count
        case .none: return count..<count
        case let .from(i): return min(max(i, 0), count)..<count
        }
    }
}

/// What one forward pass returns.
public struct ForwardResult: Sendable {
    /// Rows of next-token scores, `rows × vocabularySize`, row-major.
    public var logits: [Float]
    /// Final (normalised) hidden states, `rows × hiddenSize`, when requested.
    public var hiddenStates: [Float]?
    /// Number of rows returned.
    public var rows: Int
    /// Vocabulary size (row length of `logits`).
    public var vocabularySize: Int

    /// Scores of row `i`.
    public func logits(row i: Int) -> ArraySlice<Float> {
        logits[(i * vocabularySize)..<((i + 1) * vocabularySize)]
    }
}

/// A decoder language model: tokens in, next-token scores out, with a cache of past keys and values.
///
/// Implementations are immutable and safe to share; each sequence owns its ``KVCache``.
public protocol LanguageModel: AnyObject, Sendable {
    /// Vocabulary size.
    var vocabularySize: Int { get }
    /// Width of the hidden states.
    var hiddenSize: Int { get }
    /// Longest context the model was trained for.
    var contextLength: Int { get }
    /// A cache for one sequence of up to `capacity` tokens.
    func newCache(capacity: Int) -> KVCache
    /// Evaluates `tokens` after what `cache` holds, appends them to it, and returns the requested rows.
    func forward(_ tokens: [Int], cache: KVCache, outputs: OutputRows, hiddenStates: Bool) throws -> ForwardResult
}

extension LanguageModel {
    /// Evaluates `tokens` and returns next-token scores for the requested rows.
    public func forward(_ tokens: [Int], cache: KVCache, outputs: OutputRows = .last) throws -> ForwardResult {
        try forward(tokens, cache: cache, outputs: outputs, hiddenStates: false)
    }
}

/// Errors raised while loading or running a model.
public enum InferenceError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No implementation for the file's architecture.
    case unsupportedArchitecture(String, supported: [String])
    /// The file's hyper-parameters are inconsistent.
    case invalidConfiguration(String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(Int, vocabularySize: Int)
    /// The sequence would exceed the cache.
    case contextFull(needed: Int, capacity: Int)
    /// An empty batch.
    case emptyInput

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(name, supported):
            return "model architecture '\(name)' is not supported (supported: \(supported.joined(separator: ", ")))"
        case let .invalidConfiguration(reason):
            return "invalid model configuration: \(reason)"
        case let .tokenOutOfRange(id, size):
            return "token id \(id) is outside the vocabulary of \(size) tokens"
        case let .contextFull(needed, capacity):
            return "the sequence needs \(needed) positions but the context holds \(capacity); shorten the input or raise the context size"
        case .emptyInput:
            return "nothing to evaluate: the token list is empty"
        }
    }
}

extension LanguageModel {
    /// The log-probability of each token of `continuation` after `prompt`, from one forward pass over both.
    public func logProbabilities(of continuation: [Int], after prompt: [Int]) throws -> [Double] {
        guard !prompt.isEmpty else { throw InferenceError.emptyInput }
        guard !continuation.isEmpty else { return [] }
        let tokens = prompt + continuation
        let cache = newCache(capacity: tokens.count)
        // Rows from the last prompt token on predict the continuation; its last token predicts nothing we score.
        let result = try forward(Array(tokens.dropLast()), cache: cache, outputs: .from(prompt.count - 1))
        return continuation.indices.map { i in LogProbabilities.of(continuation[i], in: result.logits(row: i)) }
    }
}
