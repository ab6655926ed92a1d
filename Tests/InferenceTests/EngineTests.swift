import Foundation
import Testing
import Tokenizers
@testable import Inference

/// Batched decoding of several sequences and prefix reuse give the numbers of evaluating each alone.
@Suite(.serialized) struct EngineTests {
    func prompts(_ loaded: LoadedModel) -> [[Int]] {
        ["I lost my card yesterday and need a new one",
         "Why was I charged twice for the same purchase?",
         "What is the exchange rate for euros",
         "Hello",
         "My transfer has been pending for three days, what is going on with it?"].map {
            loaded.tokenizer.encode($0, parseSpecial: false)
        }
    }

    /// Five sequences of different lengths, two decoding steps (one token, then two) in batched passes: every
    /// sequence's scores are bit-identical to evaluating it alone.
    @Test func batchedSequencesEqualSeparateEvaluation() throws {
        let loaded = try SmolLM2.loaded.get()
        let model = try #require(loaded.model as? LlamaModel)
        let prompts = prompts(loaded)
        let alone = prompts.map { _ in model.newCache(capacity: 64) }
        let together = prompts.map { _ in model.newCache(capacity: 64) }
        for (p, (a, b)) in zip(prompts, zip(alone, together)) {
            _ = try model.forward(p, cache: a, outputs: .last)
            _ = try model.forward(p, cache: b, outputs: .last)
        }
        for step in [[17], [42, 1000]] {
            var batch: [(tokens: [Int], cache: KVCache)] = []
            for (i, cache) in together.enumerated() { batch.append((step.map { $0 + i }, cache)) }
            let batched = try model.forward(batch: batch)
            #expect(batched.count == prompts.count)
            for (i, cache) in alone.enumerated() {
                let single = try model.forward(step.map { $0 + i }, cache: cache, outputs: .last).logits
                #expect(batched[i].map(\.bitPattern) == single.map(\.bitPattern), "sequence \(i)")
                #expect(together[i].count == cache.count)
            }
        }
        #expect(throws: InferenceError.self) { try model.forward(batch: [([1], together[0]), ([2], together[0])]) }
        #expect(throws: InferenceError.tokenOutOfRange(-1, vocabularySize: model.vocabularySize)) {
            try model.forward(batch: [([1], together[0]), ([-1], together[1])])
        }
    }

    /// A stored prefix, copied into a new cache, continues exactly as the cache it was evaluated in; prefixes shared
    /// by recent prompts are learned from the caches they were evaluated in.
    @Test func prefixReuseEqualsContinuingTheSameCache() throws {
        let loaded = try SmolLM2.loaded.get()
        let model = loaded.model
        let prefix = loaded.tokenizer.encode(String(repeating: "You route bank support messages to one of 77 intents. ", count: 3), parseSpecial: false)
        let input = loaded.tokenizer.encode("I still have not received my new card", parseSpecial: false)
        let direct = model.newCache(capacity: 128)
        _ = try model.forward(prefix, cache: direct, outputs: .none)
        let expected = try model.forward(input, cache: direct, outputs: .last).logits

        let prefixes = PrefixCache(model: model, entries: 2, minimumTokens: 8)
        try prefixes.store(prefix: prefix)
        let cache = try prefixes.cache(for: prefix + input, capacity: 128)
        #expect(cache.count == prefix.count)
        let reused = try model.forward(input, cache: cache, outputs: .last).logits
        #expect(reused.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(prefixes.statistics == PrefixCache.Statistics(hits: 1, misses: 0, reusedTokens: prefix.count))

        // Never the whole prompt: its last token is always evaluated.
        #expect(try prefixes.cache(for: prefix, capacity: 128).count == 0)

        // Learned: two prompts sharing a beginning; the third starts from it.
        let learner = PrefixCache(model: model, entries: 2, minimumTokens: 8)
        let a = prefix + input, b = prefix + loaded.tokenizer.encode("Where is my refund", parseSpecial: false)
        for p in [a, b] {
            let c = try learner.cache(for: p, capacity: 128)
            _ = try model.forward(Array(p[c.count...]), cache: c, outputs: .last)
            learner.remember(p, cache: c)
        }
        let third = prefix + loaded.tokenizer.encode("Can I change my PIN", parseSpecial: false)
        #expect(try learner.cache(for: third, capacity: 128).count >= prefix.count)
    }

    /// A generator given a prefix cache learns the system prompt two requests share and starts later ones from it.
    @Test func generatorReusesPrefixes() throws {
        let loaded = try SmolLM2.loaded.get()
        let prefixes = PrefixCache(model: loaded.model, minimumTokens: 8)
        let system = ChatMessage(role: "system", content: "Answer with one word: the intent of the bank customer's message.")
        var texts: [String] = []
        for question in ["I lost my card", "Where is my money transfer", "Can I change my PIN", "I lost my card"] {
            let prompt = try loaded.chatTokens([system, ChatMessage(role: "user", content: question)])
            var generator = try TokenGenerator(model: loaded.model, tokenizer: loaded.tokenizer, prompt: prompt,
                                               parameters: GenerateParameters(maxTokens: 6), prefixes: prefixes)
            var text = ""
            while let event = try generator.next() { if case let .token(_, piece, _) = event { text += piece } }
            texts.append(text)
        }
        #expect(texts.allSatisfy { !$0.isEmpty })
        #expect(prefixes.statistics.hits == 2)
        #expect(prefixes.statistics.misses == 2)
        #expect(prefixes.statistics.reusedTokens >= 2 * 16)
    }
}
