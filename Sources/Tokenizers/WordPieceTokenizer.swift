import Foundation

/// BERT's WordPiece tokenizer built from a Hugging Face `tokenizer.json`: normalizer, pre-tokenizer, greedy
/// longest-match WordPiece with a continuation prefix, then `[CLS] … [SEP]`, truncated to a maximum length.
public final class WordPieceTokenizer: @unchecked Sendable {
    /// Vocabulary by id.
    public let vocabulary: [String]
    /// The normalizer.
    public let normalizer: BertNormalizer
    /// The pre-tokenizer.
    public let preTokenizer = BertPreTokenizer()
    /// Prefix of word-internal pieces (`##`).
    public let continuingPrefix: String
    /// Words longer than this many characters become the unknown token.
    public let maxCharactersPerWord: Int
    /// Ids of the special tokens.
    public let unknown: Int, classifier: Int, separator: Int, padding: Int
    /// Longest encoding, special tokens included.
    public var maxLength: Int

    private let ids: [String: Int]
    /// Added tokens matched in raw text before normalization (case-sensitive), longest first.
    private let addedTokens: [(text: String, id: Int)]

    /// Reads `tokenizer.json` at `path`; `maxLength` overrides its truncation length.
    public convenience init(path: String, maxLength: Int? = nil) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.invalidVocabulary("cannot read \(path)")
        }
        try self.init(json: data, maxLength: maxLength)
    }

    /// Builds the tokenizer from the contents of a `tokenizer.json`.
    public init(json data: Data, maxLength: Int? = nil) throws {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TokenizerError.invalidVocabulary("tokenizer.json is not a JSON object")
        }
        guard let model = root["model"] as? [String: Any], (model["type"] as? String) == "WordPiece",
              let vocab = model["vocab"] as? [String: Any] else {
            throw TokenizerError.unsupportedModel(((root["model"] as? [String: Any])?["type"] as? String) ?? "(missing)")
        }
        var byId = [String](repeating: "", count: vocab.count)
        var ids: [String: Int] = [:]
        for (token, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < vocab.count, byId[id].isEmpty else {
                throw TokenizerError.invalidVocabulary("token '\(token)' has an invalid or repeated id")
            }
            byId[id] = token
            ids[token] = id
        }
        vocabulary = byId
        self.ids = ids
        continuingPrefix = model["continuing_subword_prefix"] as? String ?? "##"
        maxCharactersPerWord = (model["max_input_chars_per_word"] as? NSNumber)?.intValue ?? 100
        let unknownText = model["unk_token"] as? String ?? "[UNK]"
        guard let unk = ids[unknownText], let cls = ids["[CLS]"], let sep = ids["[SEP]"] else {
            throw TokenizerError.invalidVocabulary("the vocabulary lacks \(unknownText), [CLS] or [SEP]")
        }
        unknown = unk; classifier = cls; separator = sep; padding = ids["[PAD]"] ?? 0
        if let n = root["normalizer"] as? [String: Any] {
            guard (n["type"] as? String) == "BertNormalizer" else {
                throw TokenizerError.unsupportedModel("normalizer \(n["type"] ?? "?") (supported: BertNormalizer)")
            }
            normalizer = BertNormalizer(cleanText: n["clean_text"] as? Bool ?? true,
                                        handleChineseCharacters: n["handle_chinese_chars"] as? Bool ?? true,
                                        stripAccents: n["strip_accents"] as? Bool, lowercase: n["lowercase"] as? Bool ?? true)
        } else {
            normalizer = BertNormalizer()
        }
        addedTokens = ((root["added_tokens"] as? [[String: Any]]) ?? [])
            .compactMap { t in (t["content"] as? String).flatMap { c in (t["id"] as? NSNumber).map { (c, $0.intValue) } } }
            .filter { !$0.0.isEmpty }
            .sorted { $0.0.count > $1.0.count }
        let configured = ((root["truncation"] as? [String: Any])?["max_length"] as? NSNumber)?.intValue
        self.maxLength = max(2, maxLength ?? configured ?? 512)
    }

    /// WordPiece ids of `text` without `[CLS]`/`[SEP]` around it or truncation. Added-token text in the input
    /// (`[SEP]`, `[MASK]`, …) becomes that token, as in the reference tokenizer.
    public func pieces(_ text: String) -> [Int] {
        var out: [Int] = []
        for fragment in splitAddedTokens(text) {
            switch fragment {
            case let .token(id): out.append(id)
            case let .text(t): out += wordPieces(t)
            }
        }
        return out
    }

    private enum Fragment { case text(String), token(Int) }

    private func splitAddedTokens(_ text: String) -> [Fragment] {
        var fragments: [Fragment] = [.text(text)]
        for (token, id) in addedTokens where text.contains(token) {
            fragments = fragments.flatMap { fragment -> [Fragment] in
                guard case let .text(t) = fragment else { return [fragment] }
                let parts = t.split(separator: token, omittingEmptySubsequences: false)
                var out: [Fragment] = []
                for (i, part) in parts.enumerated() {
                    if i > 0 { out.append(.token(id)) }
                    if !part.isEmpty { out.append(.text(String(part))) }
                }
                return out
            }
        }
        return fragments
    }

    private func wordPieces(_ text: String) -> [Int] {
        var out: [Int] = []
        for word in preTokenizer.split(normalizer.normalize(text)) {
            let chars = Array(word.unicodeScalars)
            if chars.count > maxCharactersPerWord { out.append(unknown); continue }
            var start = 0
            var wordIds: [Int] = []
            while start < chars.count {
                var end = chars.count
                var found: Int?
                while start < end {
                    var piece = String(String.UnicodeScalarView(chars[start..<end]))
                    if start > 0 { piece = continuingPrefix + piece }
                    if let id = ids[piece] { found = id; break }
                    end -= 1
                }
                guard let id = found else { wordIds = [unknown]; break }
                wordIds.append(id)
                start = end
            }
            out += wordIds
        }
        return out
    }

    /// `[CLS] pieces [SEP]`, the pieces truncated so the whole fits in `maxLength`.
    public func encode(_ text: String) -> [Int] {
        [classifier] + pieces(text).prefix(maxLength - 2) + [separator]
    }

    /// The vocabulary id of `token`.
    public func id(of token: String) -> Int? { ids[token] }
}
