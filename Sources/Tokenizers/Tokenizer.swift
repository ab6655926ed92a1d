/// Text to token ids and back.
public protocol Tokenizer: Sendable {
    /// Number of tokens in the vocabulary.
    var vocabularySize: Int { get }
    /// Tokens for `text`. With `parseSpecial`, special-token text (such as `<|im_end|>`) becomes that token;
    /// without it, such text is encoded as ordinary characters (use this for untrusted input).
    func encode(_ text: String, parseSpecial: Bool) -> [Int]
    /// The bytes a token stands for (empty for control tokens unless `special`).
    func bytes(of token: Int, special: Bool) -> [UInt8]
    /// The text of a token sequence; invalid UTF-8 from partial tokens is replaced.
    func decode(_ tokens: [Int], special: Bool) -> String
    /// Whether `token` ends a generated turn (end-of-sequence or end-of-turn).
    func isEndOfGeneration(_ token: Int) -> Bool
    /// Beginning-of-sequence token, if the model uses one.
    var bosToken: Int? { get }
    /// Whether prompts should start with the beginning-of-sequence token.
    var addsBOS: Bool { get }
}

extension Tokenizer {
    /// The text of a token sequence.
    public func decode(_ tokens: [Int], special: Bool = false) -> String {
        var bytes: [UInt8] = []
        for t in tokens { bytes.append(contentsOf: self.bytes(of: t, special: special)) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
