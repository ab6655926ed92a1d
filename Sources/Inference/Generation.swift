import Foundation
import Tokenizers

/// Settings of one generation.
public struct GenerateParameters: Sendable, Equatable {
    /// Most tokens to generate.
    public var maxTokens: Int = 256
    /// Sampling temperature; 0 means greedy.
    public var temperature: Float = 0
    /// Top-k filter (0 = off).
    public var topK: Int = 0
    /// Top-p filter (1 = off).
    public var topP: Float = 1
    /// Seed for sampling.
    public var seed: UInt64 = 0
    /// Repetition penalty (nil = off).
    public var repetitionPenalty: Float?
    /// Generation stops before any of these strings; the string is not returned. Matched on UTF-8 bytes.
    public var stop: [String] = []
    /// OpenAI's presence penalty: subtracted once from the score of every token generated so far (0 = off).
    public var presencePenalty: Float = 0
    /// OpenAI's frequency penalty: subtracted from a token's score once per time it was generated (0 = off).
    public var frequencyPenalty: Float = 0
    /// Added to the scores of these token ids before sampling (OpenAI's `logit_bias`, -100…100).
    public var logitBias: [Int: Float] = [:]

    /// Defaults: greedy, 256 tokens.
    public init(maxTokens: Int = 256, temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0,
                repetitionPenalty: Float? = nil, stop: [String] = [], presencePenalty: Float = 0, frequencyPenalty: Float = 0,
                logitBias: [Int: Float] = [:]) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.repetitionPenalty = repetitionPenalty
        self.stop = stop
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logitBias = logitBias
    }
}

/// Why generation ended.
public enum StopReason: Sendable, Equatable {
    /// The model ended its turn (end-of-sequence or end-of-turn token).
    case endOfTurn
    /// A stop string appeared.
    case stopString(String)
    /// The token budget ran out.
    case maxTokens
    /// The context is full.
    case contextFull
    /// The consumer stopped listening.
    case cancelled
    /// A logits processor declared the output complete (a constrained value ended).
    case complete
}

/// One step of a generation stream.
public enum GenerationEvent: Sendable {
    /// A generated token, the text it completes (may be empty while a UTF-8 sequence or possible stop string is pending),
    /// and its log-probability under the model (before processors).
    case token(id: Int, text: String, logProbability: Double)
    /// The end, with a summary.
    case finished(GenerationSummary)
}

/// What a finished generation did.
public struct GenerationSummary: Sendable {
    /// Why it stopped.
    public var reason: StopReason
    /// Generated text (without the stop string).
    public var text: String
    /// Generated token ids (including an end-of-turn token if one was produced).
    public var tokens: [Int]
    /// Prompt length in tokens.
    public var promptTokens: Int
    /// Seconds spent evaluating the prompt.
    public var promptSeconds: Double
    /// Seconds spent generating.
    public var generationSeconds: Double
}

/// The token-by-token loop: evaluate, process scores, sample, decode text, check stops.
///
/// Text is byte-exact: each `.token` event carries the UTF-8 that became final with that token
/// (``StreamingDetokenizer`` holds back unfinished sequences, ``StopMatcher`` a tail that may still become a stop
/// string), so the events' texts concatenate to the summary's text, which is what the generated tokens decode to,
/// cut before the first stop string.
///
/// Synchronous and single-sequence; ``generate(_:prompt:parameters:processors:)`` streams it asynchronously.
public struct TokenGenerator {
    let model: any LanguageModel
    let tokenizer: any Tokenizer
    let parameters: GenerateParameters
    var processors: [any LogitProcessor]
    var sampler: any LogitSampler
    let cache: KVCache
    var logits: [Float] = []
    var generated: [Int] = []
    var detokenizer = StreamingDetokenizer()
    var stops: StopMatcher
    var emitted: [UInt8] = []
    var finished: StopReason?
    var summaryDelivered = false
    let promptTokens: Int
    var promptSeconds = 0.0
    var generationSeconds = 0.0

    /// Evaluates `prompt` and prepares to generate.
    /// With `prefixes`, the prompt starts from the longest stored prefix it begins with, and its shared beginning with
    /// recent prompts is kept for the next ones.
    public init(model: any LanguageModel, tokenizer: any Tokenizer, prompt: [Int], parameters: GenerateParameters,
                processors: [any LogitProcessor] = [], prefixes: PrefixCache? = nil) throws {
        guard !prompt.isEmpty else { throw InferenceError.emptyInput }
        self.model = model
        self.tokenizer = tokenizer
        self.parameters = parameters
        // Penalties and biases first, constraints (the caller's processors) last: nothing can lift a masked token.
        var chain: [any LogitProcessor] = []
        if let p = parameters.repetitionPenalty { chain.append(RepetitionPenalty(penalty: p)) }
        if parameters.presencePenalty != 0 || parameters.frequencyPenalty != 0 {
            chain.append(OccurrencePenalty(presence: parameters.presencePenalty, frequency: parameters.frequencyPenalty))
        }
        if !parameters.logitBias.isEmpty { chain.append(LogitBias(parameters.logitBias)) }
        chain += processors
        for i in chain.indices { chain[i].prompt(prompt) }
        self.processors = chain
        stops = StopMatcher(stops: parameters.stop)
        sampler = parameters.temperature <= 0
            ? ArgMaxSampler()
            : CategoricalSampler(temperature: parameters.temperature, topK: parameters.topK, topP: parameters.topP, seed: parameters.seed)
        let capacity = min(model.contextLength, prompt.count + max(parameters.maxTokens, 0))
        guard prompt.count <= capacity else { throw InferenceError.contextFull(needed: prompt.count, capacity: capacity) }
        let usable = prefixes.flatMap { $0.model === model ? $0 : nil }
        cache = try usable?.cache(for: prompt, capacity: capacity) ?? model.newCache(capacity: capacity)
        promptTokens = prompt.count
        let clock = ContinuousClock.now
        logits = Array(try model.forward(Array(prompt[cache.count...]), cache: cache, outputs: .last).logits)
        usable?.remember(prompt, cache: cache)
        promptSeconds = (ContinuousClock.now - clock).seconds
        if parameters.maxTokens <= 0 { finished = .maxTokens }
    }

    /// The `count` most probable next tokens under the model (before processors), best first, with their
    /// log-probabilities: what `top_logprobs` reports for the token that ``next()`` will sample.
    public func topLogProbabilities(_ count: Int) -> [(token: Int, logProbability: Double)] {
        guard count > 0, !logits.isEmpty else { return [] }
        let top = CategoricalSampler.topIndices(logits, count: min(count, logits.count))
            .sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let logSum = LogProbabilities.logSumExp(logits)
        return top.map { ($0, Double(logits[$0]) - logSum) }
    }

    /// The next event, or nil after `.finished` has been returned.
    public mutating func next() throws -> GenerationEvent? {
        if let reason = finished {
            if summaryDelivered { return nil }
            summaryDelivered = true
            return .finished(GenerationSummary(reason: reason, text: String(decoding: emitted, as: UTF8.self), tokens: generated,
                                               promptTokens: promptTokens, promptSeconds: promptSeconds, generationSeconds: generationSeconds))
        }
        let clock = ContinuousClock.now
        defer { generationSeconds += (ContinuousClock.now - clock).seconds }
        var scores = logits
        for p in processors { p.process(&scores) }
        let token = sampler.sample(scores)
        for i in processors.indices { processors[i].didSample(token) }
        generated.append(token)
        let logProbability = LogProbabilities.of(token, in: logits)

        if tokenizer.isEndOfGeneration(token) {
            finished = .endOfTurn
            let out = flush()
            emitted += out
            return .token(id: token, text: String(decoding: out, as: UTF8.self), logProbability: logProbability)
        }
        var (out, stop) = stops.feed(detokenizer.append(tokenizer.bytes(of: token, special: false)))
        if let stop {
            finished = .stopString(stop)
            _ = detokenizer.finish()
        } else if processors.contains(where: \.isFinished) {
            finished = .complete
            out += flush()
        } else if generated.count >= parameters.maxTokens {
            finished = .maxTokens
            out += flush()
        } else if cache.count >= cache.capacity {
            finished = .contextFull
            out += flush()
        } else {
            logits = Array(try model.forward([token], cache: cache, outputs: .last).logits)
        }
        emitted += out
        return .token(id: token, text: String(decoding: out, as: UTF8.self), logProbability: logProbability)
    }

    /// Releases everything held back at the end of generation: a tail that can no longer become a stop string.
    /// An unfinished UTF-8 sequence (the budget ended inside a character) is dropped, not shown as U+FFFD.
    private mutating func flush() -> [UInt8] {
        _ = detokenizer.finish()
        return stops.finish()
    }
}

/// Streams a generation: tokens as they are produced, then a summary. Stops on end-of-turn, a stop string or the
/// token budget; cancelling the consuming task stops the loop.
public func generate(_ model: any LanguageModel, tokenizer: any Tokenizer, prompt: [Int], parameters: GenerateParameters,
                     processors: [any LogitProcessor] = []) -> AsyncThrowingStream<GenerationEvent, Error> {
    let input = UncheckedBox((model, tokenizer, prompt, parameters, processors))
    return AsyncThrowingStream { continuation in
        let task = Task.detached {
            do {
                let (model, tokenizer, prompt, parameters, processors) = input.value
                var generator = try TokenGenerator(model: model, tokenizer: tokenizer, prompt: prompt,
                                                   parameters: parameters, processors: processors)
                while let event = try generator.next() {
                    if Task.isCancelled { break }
                    continuation.yield(event)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
    }
}

/// Moves non-Sendable values into the detached generation task, which then owns them alone.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
