import Datasets
import Foundation
import Testing
import Tokenizers
@testable import Inference

/// A byte-level tokenizer with one token per byte plus an end-of-turn control token (id 256).
func byteTokenizer() throws -> BPETokenizer {
    let tokens = (0..<256).map { String(Character(ByteLevel.scalarForByte[$0])) } + ["<|im_end|>"]
    return try BPETokenizer(tokens: tokens, types: Array(repeating: 1, count: 256) + [3], merges: [],
                            preTokenizer: GPT2PreTokenizer(), bos: nil, eos: nil, eot: 256, addsBOS: false, chatTemplate: nil)
}

/// A model that plays back a script: after n tokens it strongly prefers `script[n - promptLength]`.
final class ScriptedModel: LanguageModel, @unchecked Sendable {
    let script: [Int]
    let vocabularySize = 257
    let hiddenSize = 4
    let contextLength = 4096
    var promptLength = 0
    init(_ script: [Int]) { self.script = script }

    func newCache(capacity: Int) -> KVCache { KVCache(layers: 1, width: 1, capacity: capacity) }

    func forward(_ tokens: [Int], cache: KVCache, outputs: OutputRows, hiddenStates: Bool) throws -> ForwardResult {
        guard cache.count + tokens.count <= cache.capacity else {
            throw InferenceError.contextFull(needed: cache.count + tokens.count, capacity: cache.capacity)
        }
        if cache.count == 0 { promptLength = tokens.count }
        cache.count += tokens.count
        let step = cache.count - promptLength
        var logits = [Float](repeating: 0, count: vocabularySize)
        // A second choice with a known margin, for sampling tests.
        logits[Int(UInt8(ascii: "z"))] = 1
        if step < script.count { logits[script[step]] = 3 }
        return ForwardResult(logits: logits, hiddenStates: nil, rows: 1, vocabularySize: vocabularySize)
    }
}

func bytes(_ s: String) -> [Int] { s.utf8.map(Int.init) }

func run(_ model: ScriptedModel, _ parameters: GenerateParameters) async throws -> (pieces: [String], summary: GenerationSummary) {
    let tokenizer = try byteTokenizer()
    var pieces: [String] = []
    var summary: GenerationSummary?
    for try await event in generate(model, tokenizer: tokenizer, prompt: bytes("hi"), parameters: parameters) {
        switch event {
        case let .token(_, text, _): pieces.append(text)
        case let .finished(s): summary = s
        }
    }
    return (pieces, try #require(summary))
}

@Suite struct GenerationTests {
    @Test func stopsAtEndOfTurn() async throws {
        let (pieces, summary) = try await run(ScriptedModel(bytes("Paris.") + [256] + bytes("more")), GenerateParameters(maxTokens: 50))
        #expect(summary.reason == .endOfTurn)
        #expect(summary.text == "Paris.")
        #expect(pieces.joined() == "Paris.")
        #expect(summary.tokens.last == 256)
        #expect(summary.promptTokens == 2)
    }

    @Test func stopsAtTheTokenBudget() async throws {
        let (_, summary) = try await run(ScriptedModel(bytes("abcdefgh")), GenerateParameters(maxTokens: 3))
        #expect(summary.reason == .maxTokens)
        #expect(summary.text == "abc")
        #expect(summary.tokens.count == 3)
    }

    @Test func stopStringIsWithheldAndNotReturned() async throws {
        let (pieces, summary) = try await run(ScriptedModel(bytes("answer: 42\nUser: more")), GenerateParameters(maxTokens: 50, stop: ["\nUser:"]))
        #expect(summary.reason == .stopString("\nUser:"))
        #expect(summary.text == "answer: 42")
        // Nothing of the stop string leaks into the stream, even though its first characters arrived earlier.
        #expect(pieces.joined() == "answer: 42")
    }

    @Test func multiByteCharactersArriveWhole() async throws {
        let (pieces, summary) = try await run(ScriptedModel(bytes("é🤗") + [256]), GenerateParameters(maxTokens: 20))
        #expect(summary.text == "é🤗")
        #expect(pieces.filter { !$0.isEmpty } == ["é", "🤗"])
    }

    @Test func seededSamplingIsReproducibleAndFollowsTemperature() {
        var logits = [Float](repeating: -10, count: 100)
        logits[3] = 2; logits[7] = 1.5; logits[9] = 0
        func draws(_ seed: UInt64, temperature: Float, topK: Int = 0, topP: Float = 1) -> [Int] {
            var s = CategoricalSampler(temperature: temperature, topK: topK, topP: topP, seed: seed)
            return (0..<2000).map { _ in s.sample(logits) }
        }
        #expect(draws(1, temperature: 1) == draws(1, temperature: 1))
        #expect(draws(1, temperature: 1) != draws(2, temperature: 1))
        let counts = Dictionary(grouping: draws(5, temperature: 1), by: { $0 }).mapValues(\.count)
        // p(3) : p(7) = e^0.5 ≈ 1.65.
        let ratio = Double(counts[3]!) / Double(counts[7]!)
        #expect(ratio > 1.4 && ratio < 1.9)
        #expect(Set(draws(5, temperature: 1, topK: 2)).isSubset(of: [3, 7]))
        #expect(Set(draws(5, temperature: 1, topP: 0.5)) == [3])
        #expect(Set(draws(5, temperature: 0.05)) == [3])
    }

    @Test func repetitionPenaltyLowersSeenTokens() {
        var penalty = RepetitionPenalty(penalty: 2)
        penalty.prompt([1])
        penalty.didSample(2)
        var logits: [Float] = [1, 4, -2, 3]
        penalty.process(&logits)
        #expect(logits == [1, 2, -4, 3])
    }

    @Test func logProbabilitiesNormalise() {
        let lp = LogProbabilities.logSoftmax([Float(1), 2, 3, 1000])
        #expect(abs(lp.map { Foundation.exp($0) }.reduce(0, +) - 1) < 1e-12)
        #expect(abs(LogProbabilities.of(2, in: [Float(1), 2, 3, 1000]) - lp[2]) < 1e-12)
    }
}

@Suite struct SamplerSelectionTests {
    /// The one-pass top-k selection agrees with a full sort, ties going to the lower index.
    @Test func topIndicesMatchAFullSort() {
        var rng = SeededGenerator(seed: 3)
        for count in [1, 5, 40, 300] {
            let logits = (0..<5000).map { _ in Float(rng.next() % 1000) / 10 }  // many ties
            let expected = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(count)
            #expect(Set(CategoricalSampler.topIndices(logits, count: count)) == Set(expected))
        }
    }

    /// With top-p alone, every draw lies in the nucleus computed over the whole vocabulary.
    @Test func nucleusIsExact() {
        var rng = SeededGenerator(seed: 4)
        let logits = (0..<3000).map { _ in Float(Double(rng.next() % 10_000) / 1000) }
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let m = logits.max()!
        let weights = logits.map { Foundation.exp(Double($0 - m) / 0.7) }
        let total = weights.reduce(0, +)
        var cumulative = 0.0, nucleus = Set<Int>()
        for i in order {
            nucleus.insert(i)
            cumulative += weights[i] / total
            if cumulative >= 0.8 { break }
        }
        var sampler = CategoricalSampler(temperature: 0.7, topP: 0.8, seed: 9)
        let draws = (0..<3000).map { _ in sampler.sample(logits) }
        #expect(Set(draws).isSubset(of: nucleus))
        #expect(Set(draws).count > nucleus.count / 2)
    }
}
