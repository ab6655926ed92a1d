import Foundation
import Inference
import Tokenizers

/// A tokenizer's vocabulary as a byte trie, built once per tokenizer and shared by every schema.
public final class VocabularyTrie: @unchecked Sendable {
    /// Tokens in the vocabulary.
    public let vocabularySize: Int
    /// Tokens that end generation (allowed only once the value is complete).
    let endTokens: [Int]
    // Node i's edges are edgeBytes/edgeTargets[edgeStart[i]..<edgeStart[i + 1]]; tokens ending at node i are
    // tokenIDs[tokenStart[i]..<tokenStart[i + 1]].
    let edgeStart: [Int32]
    let edgeBytes: [UInt8]
    let edgeTargets: [Int32]
    let tokenStart: [Int32]
    let tokenIDs: [Int32]
    /// Each token's bytes, by id (empty for control tokens).
    public let tokenBytes: [[UInt8]]
    /// Tokens with a '"' in their bytes (the only ones that can complete a member name).
    let quoteTokens: [Int]

    /// The tokens whose bytes are a prefix of `bytes` (walking the trie along them).
    func tokens(along bytes: ArraySlice<UInt8>) -> [Int] {
        var out: [Int] = []
        var n = 0
        for b in bytes {
            guard let e = (Int(edgeStart[n])..<Int(edgeStart[n + 1])).first(where: { edgeBytes[$0] == b }) else { break }
            n = Int(edgeTargets[e])
            out += (Int(tokenStart[n])..<Int(tokenStart[n + 1])).map { Int(tokenIDs[$0]) }
        }
        return out
    }

    /// Builds the trie of every token's bytes (control tokens, which have none, are left out).
    public init(tokenizer: any Tokenizer) {
        vocabularySize = tokenizer.vocabularySize
        endTokens = (0..<tokenizer.vocabularySize).filter { tokenizer.isEndOfGeneration($0) }
        let tokenBytes = (0..<tokenizer.vocabularySize).map { tokenizer.bytes(of: $0, special: false) }
        self.tokenBytes = tokenBytes
        quoteTokens = tokenBytes.indices.filter { tokenBytes[$0].contains(UInt8(ascii: "\"")) }
        var children: [[UInt8: Int32]] = [[:]]
        var ending: [[Int32]] = [[]]
        for t in 0..<tokenizer.vocabularySize where !tokenizer.isEndOfGeneration(t) {
            let bytes = tokenBytes[t]
            guard !bytes.isEmpty else { continue }
            var n = 0
            for b in bytes {
                if let c = children[n][b] { n = Int(c); continue }
                children.append([:])
                ending.append([])
                children[n][b] = Int32(children.count - 1)
                n = children.count - 1
            }
            ending[n].append(Int32(t))
        }
        var edgeStart: [Int32] = [], edgeBytes: [UInt8] = [], edgeTargets: [Int32] = []
        var tokenStart: [Int32] = [], tokenIDs: [Int32] = []
        for i in children.indices {
            edgeStart.append(Int32(edgeBytes.count))
            for (b, c) in children[i].sorted(by: { $0.key < $1.key }) { edgeBytes.append(b); edgeTargets.append(c) }
            tokenStart.append(Int32(tokenIDs.count))
            tokenIDs.append(contentsOf: ending[i])
        }
        edgeStart.append(Int32(edgeBytes.count))
        tokenStart.append(Int32(tokenIDs.count))
        self.edgeStart = edgeStart
        self.edgeBytes = edgeBytes
        self.edgeTargets = edgeTargets
        self.tokenStart = tokenStart
        self.tokenIDs = tokenIDs
    }

    /// Nodes in the trie.
    public var nodeCount: Int { edgeStart.count - 1 }
}

/// A schema compiled against a vocabulary: which tokens each automaton state allows, computed once per state.
///
/// Masks are bitsets over the vocabulary; a state's mask is found by walking the vocabulary trie alongside the
/// automaton and pruning at the first byte no allowed text continues with. Not thread-safe.
public final class TokenConstraint: @unchecked Sendable {
    /// The byte automaton.
    public let automaton: SchemaAutomaton
    /// The vocabulary.
    public let vocabulary: VocabularyTrie
    private var masks: [Int32: [UInt64]] = [:]
    private var closed: [Int32: Bool] = [:]
    /// Seconds spent computing masks (first visits of states).
    public private(set) var maskSeconds = 0.0
    /// Masks computed.
    public private(set) var masksComputed = 0

    /// Compiles `schema` for a tokenizer's vocabulary (`maxWhitespace`: see ``SchemaAutomaton/maxWhitespace``;
    /// `spelling`: see ``SchemaAutomaton/Spelling``).
    public init(schema: Schema, vocabulary: VocabularyTrie, maxWhitespace: UInt8 = 0, spelling: SchemaAutomaton.Spelling = .canonical) {
        automaton = SchemaAutomaton(schema: schema, maxWhitespace: maxWhitespace, spelling: spelling)
        self.vocabulary = vocabulary
    }

    /// The allowed-token bitset for `state`.
    public func mask(_ state: Int32) -> [UInt64] {
        if let m = masks[state] { return m }
        let clock = ContinuousClock.now
        var bits = [UInt64](repeating: 0, count: (vocabulary.vocabularySize + 63) / 64)
        let v = vocabulary
        var stack: [(node: Int32, state: Int32)] = [(0, state)]
        while let (node, s) = stack.popLast() {
            let n = Int(node)
            for e in Int(v.edgeStart[n])..<Int(v.edgeStart[n + 1]) {
                let t = automaton.step(s, v.edgeBytes[e])
                if t < 0 { continue }
                let child = Int(v.edgeTargets[e])
                for k in Int(v.tokenStart[child])..<Int(v.tokenStart[child + 1]) {
                    let id = Int(v.tokenIDs[k])
                    bits[id >> 6] |= 1 << UInt64(id & 63)
                }
                stack.append((Int32(child), t))
            }
        }
        closed[state] = automaton.isAccepting(state) && bits.allSatisfy { $0 == 0 }
        if automaton.isAccepting(state) {
            for id in v.endTokens { bits[id >> 6] |= 1 << UInt64(id & 63) }
        }
        masks[state] = bits
        masksComputed += 1
        maskSeconds += (ContinuousClock.now - clock).seconds
        return bits
    }

    /// Whether `state` is a complete value that nothing can extend.
    public func isClosed(_ state: Int32) -> Bool {
        if let c = closed[state] { return c }
        _ = mask(state)
        return closed[state]!
    }

    /// The state after `token`, or -1 if the token is not allowed.
    public func advance(_ state: Int32, token: Int) -> Int32 {
        automaton.step(state, vocabulary.tokenBytes[token])
    }

    /// Precomputes the masks of every state reachable by whole tokens from the start, up to `limit` states (the
    /// states inside free text are many; those are left to first use).
    public func warm(limit: Int = 256) {
        var seen: Set<Int32> = [automaton.initial]
        var queue = [automaton.initial]
        var i = 0
        while i < queue.count && seen.count < limit {
            let s = queue[i]; i += 1
            let bits = mask(s)
            for (w, word) in bits.enumerated() where word != 0 {
                var x = word
                while x != 0 {
                    let id = w * 64 + x.trailingZeroBitCount
                    x &= x - 1
                    guard id < vocabulary.tokenBytes.count, !vocabulary.tokenBytes[id].isEmpty else { continue }
                    let t = advance(s, token: id)
                    if t >= 0, seen.insert(t).inserted { queue.append(t) }
                    if seen.count >= limit { return }
                }
            }
        }
    }
}

/// A logits processor that keeps generation inside a schema: disallowed tokens get -infinity, end-of-generation
/// is allowed only once the value is complete, and only end-of-generation once nothing can follow. When the schema
/// has keywords the automaton only over-approximates (``Schema/approximations``), a complete value must also pass
/// the exact validator before end-of-generation is allowed, as long as anything else can still be written.
public struct SchemaLogitProcessor: LogitProcessor {
    /// The compiled constraint (shared).
    public let constraint: TokenConstraint
    /// The automaton state after the tokens sampled so far (-1 after a token the constraint did not allow).
    public private(set) var state: Int32
    /// The text so far (kept only when the validator has the last word).
    private var bytes: [UInt8] = []
    /// The member names written so far, when the schema lets undeclared names be written (nil otherwise).
    private var names: MemberNameTracker?

    /// A processor at the start of a value.
    public init(constraint: TokenConstraint) {
        self.constraint = constraint
        state = constraint.automaton.initial
        names = constraint.automaton.admitsUndeclaredMembers ? MemberNameTracker() : nil
    }

    public func process(_ logits: inout [Float]) {
        guard state >= 0 else { return }
        var bits = constraint.mask(state)
        if constraint.automaton.needsValidation, constraint.automaton.isAccepting(state), !constraint.isClosed(state),
           !((try? JSONValue.parse(bytes)).map { constraint.automaton.schema.violations(of: $0).isEmpty } ?? false) {
            for id in constraint.vocabulary.endTokens { bits[id >> 6] &= ~(1 << UInt64(id & 63)) }
        }
        if let names { refuseRepeatedNames(names, &bits) }
        logits.withUnsafeMutableBufferPointer { l in
            for w in 0..<bits.count {
                let word = bits[w]
                if word == ~0 { continue }
                let base = w * 64
                let end = min(base + 64, l.count)
                if word == 0 {
                    for i in base..<end { l[i] = -.infinity }
                    continue
                }
                for i in base..<end where word & (1 << UInt64(i - base)) == 0 { l[i] = -.infinity }
            }
        }
    }

    /// No member name twice in one object: refuses tokens that close a name its object already has, and tokens that
    /// leave a name unfinished where every way to finish it is a name already there. Only tokens with a '"' and tokens
    /// along the used names can do either, so only those are checked. If nothing would be left (a name set so small
    /// that every name is used), the mask is kept and the validator reports the repeat.
    private func refuseRepeatedNames(_ names: MemberNameTracker, _ bits: inout [UInt64]) {
        let v = constraint.vocabulary
        var candidates = v.quoteTokens
        if let (prefix, used) = names.openName {
            for name in used where name.starts(with: prefix) { candidates += v.tokens(along: name[prefix.count...]) }
        }
        var filtered = bits
        for id in candidates where filtered[id >> 6] & (1 << UInt64(id & 63)) != 0 {
            var copy = names
            var keep = copy.feed(v.tokenBytes[id])
            if keep, let (prefix, used) = copy.openName, used.contains(where: { $0.starts(with: prefix) }) {
                let next = constraint.advance(state, token: id)
                var budget = 4096
                keep = next >= 0 && nameCanFinish(next, prefix, used, budget: &budget)
            }
            if !keep { filtered[id >> 6] &= ~(1 << UInt64(id & 63)) }
        }
        if filtered.contains(where: { $0 != 0 }) { bits = filtered }
    }

    /// Whether the name being written (`prefix` so far, automaton at `state`) can end as a name not in `used`: a
    /// depth-first search over the bytes the automaton allows, cut short as soon as the prefix leaves every used name
    /// (then any way to finish is new). Escapes are not followed; past `budget` steps it answers yes.
    private func nameCanFinish(_ state: Int32, _ prefix: [UInt8], _ used: Set<[UInt8]>, budget: inout Int) -> Bool {
        budget -= 1
        if budget < 0 || !used.contains(where: { $0.starts(with: prefix) }) { return true }
        let automaton = constraint.automaton
        if automaton.step(state, UInt8(ascii: "\"")) >= 0 && !used.contains(prefix) { return true }
        for b in UInt8(0x20)...UInt8(0xFF) where b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") {
            let next = automaton.step(state, b)
            if next >= 0 && nameCanFinish(next, prefix + [b], used, budget: &budget) { return true }
        }
        return false
    }

    public mutating func didSample(_ token: Int) {
        // End-of-generation tokens have no bytes, so they leave the state as it is.
        if state >= 0 { state = constraint.advance(state, token: token) }
        if constraint.automaton.needsValidation { bytes += constraint.vocabulary.tokenBytes[token] }
        _ = names?.feed(constraint.vocabulary.tokenBytes[token])
    }

    /// Whether the text so far is a complete value.
    public var isComplete: Bool { state >= 0 && constraint.automaton.isAccepting(state) }

    public var isFinished: Bool { state >= 0 && constraint.isClosed(state) }

    /// The bytes that close the value from here: empty when it is complete, nil if no completion is found.
    public var completion: [UInt8]? {
        state >= 0 ? constraint.automaton.shortestCompletion(from: state) : nil
    }
}

/// Compiled constraints by schema digest, so a schema is compiled once per vocabulary.
public final class ConstraintCache: @unchecked Sendable {
    private let vocabulary: VocabularyTrie
    private var compiled: [String: TokenConstraint] = [:]

    /// A cache for one tokenizer.
    public init(tokenizer: any Tokenizer) {
        vocabulary = VocabularyTrie(tokenizer: tokenizer)
    }

    /// The constraint for `schema` with at most `maxWhitespace` whitespace bytes per structural position, compiled on
    /// first request.
    public func constraint(for schema: Schema, maxWhitespace: UInt8 = 0) -> TokenConstraint {
        let key = schema.digest + "/" + String(maxWhitespace)
        if let c = compiled[key] { return c }
        let c = TokenConstraint(schema: schema, vocabulary: vocabulary, maxWhitespace: maxWhitespace)
        compiled[key] = c
        return c
    }
}

/// The result of a schema-constrained generation.
public struct StructuredGeneration: Sendable {
    /// The JSON text.
    public var text: String
    /// The parsed value.
    public var value: JSONValue?
    /// Schema violations (empty when valid).
    public var violations: [Violation]
    /// Whether the token budget ran out and the constraint closed the value with its shortest completion.
    public var completedByConstraint: Bool
    /// Tokens generated.
    public var tokens: Int
    /// Mean log-probability per generated token under the model (before the constraint).
    public var meanLogProbability: Double
    /// Seconds for the prompt and for generation.
    public var promptSeconds: Double
    public var generationSeconds: Double
}

/// Generates a value that matches `constraint`'s schema (greedy unless `parameters` say otherwise).
///
/// If the budget runs out first, the shortest completion is appended so the output still parses and validates;
/// ``StructuredGeneration/completedByConstraint`` says so.
public func generateStructured(_ model: any LanguageModel, tokenizer: any Tokenizer, prompt: [Int],
                               constraint: TokenConstraint, parameters: GenerateParameters = GenerateParameters(),
                               prefixes: PrefixCache? = nil) throws -> StructuredGeneration {
    var processor = SchemaLogitProcessor(constraint: constraint)
    let processors: [any LogitProcessor] = [processor]
    var parameters = parameters
    parameters.stop = []
    var generator = try TokenGenerator(model: model, tokenizer: tokenizer, prompt: prompt, parameters: parameters,
                                       processors: processors, prefixes: prefixes)
    var logProbability = 0.0
    var summary: GenerationSummary?
    while let event = try generator.next() {
        switch event {
        case let .token(_, _, lp): logProbability += lp
        case let .finished(s): summary = s
        }
    }
    let generated = (summary?.tokens ?? []).filter { !tokenizer.isEndOfGeneration($0) }
    var bytes: [UInt8] = []
    for t in generated {
        bytes += tokenizer.bytes(of: t, special: false)
        processor.didSample(t)
    }
    var completed = false
    if let tail = processor.completion, !tail.isEmpty {
        bytes += tail
        completed = true
    }
    let text = String(decoding: bytes, as: UTF8.self)
    let value = try? JSONValue.parse(bytes)
    let violations = value.map { constraint.automaton.schema.violations(of: $0) } ?? [Violation(path: "", reason: "not valid JSON")]
    let count = summary?.tokens.count ?? 0
    return StructuredGeneration(text: text, value: value, violations: violations, completedByConstraint: completed, tokens: count,
                                meanLogProbability: count > 0 ? logProbability / Double(count) : 0,
                                promptSeconds: summary?.promptSeconds ?? 0, generationSeconds: summary?.generationSeconds ?? 0)
}

extension StructuredGeneration {
    /// A value that came from elsewhere (another tier), checked against `schema`.
    public init(value: JSONValue, schema: Schema) {
        self.init(text: value.description, value: value, violations: schema.violations(of: value), completedByConstraint: false,
                  tokens: 0, meanLogProbability: 0, promptSeconds: 0, generationSeconds: 0)
    }
}
