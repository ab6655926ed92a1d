import GGUF

/// Token kinds from `tokenizer.ggml.token_type`.
public enum TokenType: Int, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// Byte-level BPE tokenizer (GPT-2 family) built from a GGUF file's tokenizer metadata.
///
/// Pipeline: special-token partition, pre-tokenizer split, byte-level mapping, BPE merges, id lookup.
public final class BPETokenizer: Tokenizer, @unchecked Sendable {
    /// Token strings in byte-level form, by id.
    public let tokens: [String]
    /// Token kinds, by id.
    public let types: [TokenType]
    public let bosToken: Int?
    /// End-of-sequence token.
    public let eosToken: Int?
    /// End-of-turn token (`<|im_end|>` for ChatML models), if the vocabulary has one.
    public let eotToken: Int?
    public let addsBOS: Bool
    /// The chat template text the model carries, if any.
    public let chatTemplate: String?

    private let idForText: [String: Int]
    private let merges: BPEMerges
    private let preTokenizer: any PreTokenizer
    /// Special tokens matched in text, longest first (control and user-defined tokens).
    private let specials: [(text: [UInt8], id: Int, control: Bool)]
    /// Byte value to the id of its one-byte token, or -1 where the vocabulary has none.
    private let byteTokens: [Int32]
    private let tokenBytes: [[UInt8]]

    public var vocabularySize: Int { tokens.count }

    /// Builds the tokenizer described by `gguf`'s `tokenizer.ggml.*` keys.
    public convenience init(gguf: GGUFFile) throws {
        let model = try gguf.string("tokenizer.ggml.model")
        guard model == "gpt2" else { throw TokenizerError.unsupportedModel(model) }
        let tokens = try gguf.strings("tokenizer.ggml.tokens")
        let types = (try? gguf.ints("tokenizer.ggml.token_type")) ?? Array(repeating: 1, count: tokens.count)
        let merges = try gguf.strings("tokenizer.ggml.merges")
        let pre = (try? gguf.string("tokenizer.ggml.pre")) ?? "default"
        func id(_ key: String) -> Int? { gguf.metadata[key]?.intValue.flatMap { $0 >= 0 && $0 < tokens.count ? $0 : nil } }
        try self.init(
            tokens: tokens, types: types, merges: merges, preTokenizer: PreTokenizers.make(pre),
            bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
            eot: id("tokenizer.ggml.eot_token_id"),
            addsBOS: gguf.metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? false,
            chatTemplate: gguf.metadata["tokenizer.chat_template"]?.stringValue)
    }

    /// Builds a tokenizer from its parts.
    public init(tokens: [String], types: [Int], merges: [String], preTokenizer: any PreTokenizer,
                bos: Int?, eos: Int?, eot: Int?, addsBOS: Bool, chatTemplate: String?) throws {
        guard !tokens.isEmpty, types.count == tokens.count else {
            throw TokenizerError.invalidVocabulary("\(tokens.count) tokens but \(types.count) token types")
        }
        self.tokens = tokens
        self.types = types.map { TokenType(rawValue: $0) ?? .normal }
        var idForText: [String: Int] = [:]
        idForText.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where idForText[t] == nil { idForText[t] = i }
        self.idForText = idForText
        self.merges = try BPEMerges(merges: merges, idForText: idForText)
        self.preTokenizer = preTokenizer
        self.bosToken = bos
        self.eosToken = eos
        self.eotToken = eot ?? idForText["<|im_end|>"] ?? idForText["<|eot_id|>"] ?? idForText["<end_of_turn>"]
        self.addsBOS = addsBOS
        self.chatTemplate = chatTemplate

        // Some vocabularies lack a few control bytes; like llama.cpp, such bytes are dropped when encoding.
        let byteTokens = (0..<256).map { b in idForText[String(Character(ByteLevel.scalarForByte[b]))].map(Int32.init) ?? -1 }
        guard byteTokens.filter({ $0 >= 0 }).count >= 188 else {
            throw TokenizerError.invalidVocabulary("fewer than 188 of the 256 byte tokens are present; not a byte-level vocabulary")
        }
        self.byteTokens = byteTokens
        let kinds = self.types
        self.tokenBytes = tokens.enumerated().map { i, t in
            kinds[i] == .control || kinds[i] == .userDefined ? Array(t.utf8) : (ByteLevel.decode(t) ?? Array(t.utf8))
        }
        self.specials = tokens.enumerated()
            .filter { kinds[$0.offset] == .control || kinds[$0.offset] == .userDefined }
            .filter { !$0.element.isEmpty }
            .map { (Array($0.element.utf8), $0.offset, kinds[$0.offset] == .control) }
            .sorted { $0.text.count > $1.text.count }
    }

    public func encode(_ text: String, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        for fragment in partition(Array(text.utf8), parseSpecial: parseSpecial) {
            switch fragment {
            case let .special(id): out.append(id)
            case let .text(bytes): encodeText(bytes, into: &out)
            }
        }
        return out
    }

    /// Tokens of a formatted conversation: markers become their special tokens; adjacent text segments are
    /// encoded together (as they would be in one string) with special-token text kept literal.
    public func encode(_ segments: [ChatSegment]) throws -> [Int] {
        var out: [Int] = []
        var pending = ""
        for segment in segments {
            switch segment {
            case let .text(t):
                pending += t
            case let .marker(m):
                guard let id = idForText[m], types[id] == .control || types[id] == .userDefined else {
                    throw TokenizerError.unsupportedChatTemplate("marker \(m) is not a special token of this vocabulary")
                }
                if !pending.isEmpty { encodeText(Array(pending.utf8), into: &out) }
                pending = ""
                out.append(id)
            }
        }
        if !pending.isEmpty { encodeText(Array(pending.utf8), into: &out) }
        return out
    }

    private enum Fragment { case text([UInt8]), special(Int) }

    /// Splits `bytes` at special-token text: control tokens only with `parseSpecial`, user-defined ones always.
    private func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = [.text(bytes)]
        for special in specials where parseSpecial || !special.control {
            var next: [Fragment] = []
            for fragment in fragments {
                guard case let .text(t) = fragment, t.count >= special.text.count else { next.append(fragment); continue }
                var start = 0, i = 0
                while i + special.text.count <= t.count {
                    if t[i] == special.text[0] && t[i..<(i + special.text.count)].elementsEqual(special.text) {
                        if start < i { next.append(.text(Array(t[start..<i]))) }
                        next.append(.special(special.id))
                        i += special.text.count
                        start = i
                    } else {
                        i += 1
                    }
                }
                if start < t.count { next.append(.text(Array(t[start...]))) }
            }
            fragments = next
        }
        return fragments
    }

    private func encodeText(_ bytes: [UInt8], into out: inout [Int]) {
        let scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        var symbols: [Int32] = []
        for piece in preTokenizer.split(scalars) {
            symbols.removeAll(keepingCapacity: true)
            for scalar in scalars[piece] {
                for b in String(scalar).utf8 { symbols.append(byteTokens[Int(b)]) }
            }
            merges.apply(&symbols)
            for s in symbols where s >= 0 { out.append(Int(s)) }
        }
    }

    public func bytes(of token: Int, special: Bool) -> [UInt8] {
        guard token >= 0 && token < tokens.count else { return [] }
        if types[token] == .control && !special { return [] }
        return tokenBytes[token]
    }

    public func isEndOfGeneration(_ token: Int) -> Bool {
        token == eosToken || token == eotToken
    }

    /// The id of a token given its exact vocabulary text.
    public func id(of text: String) -> Int? { idForText[text] }
}
