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
    /// Generation stops before any of these strings; the string is not returned.
    public var stop: [String] = []

    /// Defaults: greedy, 256 tokens.
    public init(maxTokens: Int = 256, temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0,
                repetitionPenalty: Float? = nil, stop: [String] = []) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.repetitionPenalty = repetitionPenalty
        self.stop = stop
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
    var pendingBytes: [UInt8] = []
    var text = ""
    var emittedCount = 0
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
        var chain = processors
        if let p = parameters.repetitionPenalty { chain.insert(RepetitionPenalty(penalty: p), at: 0) }
        for i in chain.indices { chain[i].prompt(prompt) }
        self.processors = chain
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

    /// The next event, or nil after `.finished` has been returned.
    public mutating func next() throws -> GenerationEvent? {
        if let reason = finished {
            if summaryDelivered { return nil }
            summaryDelivered = true
            return .finished(GenerationSummary(reason: reason, text: String(text.prefix(emittedCount)), tokens: generated,
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
            return .token(id: token, text: flush(), logProbability: logProbability)
        }
        pendingBytes += tokenizer.bytes(of: token, special: false)
        let completed = takeCompleteUTF8()
        text += completed
        var out = ""
        if let stop = firstStop() {
            finished = .stopString(stop.string)
            out = String(text[text.index(text.startIndex, offsetBy: emittedCount)..<stop.range.lowerBound])
            emittedCount = text.distance(from: text.startIndex, to: stop.range.lowerBound)
            return .token(id: token, text: out, logProbability: logProbability)
        }
        // Hold back a tail that may still become a stop string.
        let holdBack = parameters.stop.map { longestSuffixPrefix(of: text, stop: $0) }.max() ?? 0
        let safeEnd = text.count - holdBack
        if safeEnd > emittedCount {
            out = String(text.dropFirst(emittedCount).prefix(safeEnd - emittedCount))
            emittedCount = safeEnd
        }
        if processors.contains(where: \.isFinished) {
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
        return .token(id: token, text: out, logProbability: logProbability)
    }

    /// Emits everything still held back (at the end of generation).
    private mutating func flush() -> String {
        if !pendingBytes.isEmpty {
            text += String(decoding: pendingBytes, as: UTF8.self)
            pendingBytes = []
        }
        let rest = String(text.dropFirst(emittedCount))
        emittedCount = text.count
        return rest
    }

    /// Removes and returns the longest prefix of the pending bytes that is complete UTF-8.
    private mutating func takeCompleteUTF8() -> String {
        var end = pendingBytes.count
        // Back up over an unfinished multi-byte sequence at the end (at most 3 bytes).
        var i = pendingBytes.count - 1
        var continuation = 0
        while i >= 0 && continuation < 4 && pendingBytes[i] & 0xC0 == 0x80 { i -= 1; continuation += 1 }
        if i >= 0 {
            let lead = pendingBytes[i]
            let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            if length > continuation + 1 { end = i }
        }
        let done = String(decoding: pendingBytes[0..<end], as: UTF8.self)
        pendingBytes.removeFirst(end)
        return done
    }

    private func firstStop() -> (string: String, range: Range<String.Index>)? {
        var best: (String, Range<String.Index>)?
        for s in parameters.stop where !s.isEmpty {
            if let r = text.range(of: s), best == nil || r.lowerBound < best!.1.lowerBound { best = (s, r) }
        }
        return best
    }

    private func longestSuffixPrefix(of text: String, stop: String) -> Int {
        var n = min(text.count, stop.count - 1)
        while n > 0 {
            if text.hasSuffix(stop.prefix(n)) { return n }
            n -= 1
        }
        return 0
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
