import Foundation
import Statistics

/// Word and word-pair TF-IDF features, learnt from the training texts and stored in the adapter.
///
/// A sentence encoder blurs exact wording that intents often hinge on ("top up" versus "top-up failed"); sparse
/// lexical features beside the embedding give the head that wording back. Words are lower-cased runs of two or more
/// letters or digits; term frequency is sublinear (1 + ln tf), inverse document frequency smoothed
/// (ln((1 + n) / (1 + df)) + 1), and each row is L2-normalised.
public struct LexicalFeatures: Codable, Sendable, Equatable {
    /// The vocabulary: words and space-joined word pairs, sorted.
    public let terms: [String]
    /// Inverse document frequency of each term.
    public let idf: [Float]
    /// Column of each term (derived from `terms`, not stored).
    let index: [String: Int]

    enum CodingKeys: String, CodingKey { case terms, idf }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        terms = try c.decode([String].self, forKey: .terms)
        idf = try c.decode([Float].self, forKey: .idf)
        guard terms.count == idf.count, Set(terms).count == terms.count else {
            throw DecodingError.dataCorruptedError(forKey: .terms, in: c, debugDescription: "terms must be distinct, one idf each")
        }
        index = Dictionary(uniqueKeysWithValues: terms.enumerated().map { ($1, $0) })
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(terms, forKey: .terms)
        try c.encode(idf, forKey: .idf)
    }

    public static func == (a: LexicalFeatures, b: LexicalFeatures) -> Bool { a.terms == b.terms && a.idf == b.idf }

    /// Learns the vocabulary from `texts`: every word and pair found in at least `minDocuments` of them.
    public init(fitting texts: [String], minDocuments: Int = 2) {
        var documentFrequency = [String: Int]()
        for text in texts { for term in Set(Self.terms(of: text)) { documentFrequency[term, default: 0] += 1 } }
        terms = documentFrequency.filter { $0.value >= minDocuments }.keys.sorted()
        let n = Float(texts.count)
        idf = terms.map { logf((1 + n) / (1 + Float(documentFrequency[$0]!))) + 1 }
        index = Dictionary(uniqueKeysWithValues: terms.enumerated().map { ($1, $0) })
    }

    /// Number of features.
    public var count: Int { terms.count }

    /// Words and adjacent pairs of a text, in order, with repeats.
    static func terms(of text: String) -> [String] {
        var words = [String](), current = ""
        for scalar in text.lowercased().unicodeScalars {
            if CharacterSet.alphanumerics.contains(scalar) || scalar == "_" {
                current.unicodeScalars.append(scalar)
            } else {
                if current.unicodeScalars.count >= 2 { words.append(current) }
                current = ""
            }
        }
        if current.unicodeScalars.count >= 2 { words.append(current) }
        return words + zip(words, words.dropFirst()).map { $0 + " " + $1 }
    }

    /// The sparse rows of `texts`.
    public func rows(_ texts: [String]) -> SparseRows {
        SparseRows(columns: count, rows: texts.map { text in
            var counts = [Int: Int]()
            for term in Self.terms(of: text) { if let j = index[term] { counts[j, default: 0] += 1 } }
            var row = counts.keys.sorted().map { j in (j, (1 + logf(Float(counts[j]!))) * idf[j]) }
            let norm = row.reduce(0) { $0 + $1.1 * $1.1 }.squareRoot()
            if norm > 0 { row = row.map { ($0.0, $0.1 / norm) } }
            return row
        })
    }
}
