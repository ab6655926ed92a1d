import Foundation

/// BERT's normalizer, as `tokenizer.json` configures it: remove control characters and map white space to spaces,
/// put spaces around CJK ideographs, strip accents (NFD, then drop non-spacing marks), lower-case.
public struct BertNormalizer: Sendable, Equatable {
    /// Remove control characters, map white space to ' '.
    public var cleanText = true
    /// Surround CJK ideographs with spaces.
    public var handleChineseCharacters = true
    /// Strip accents (defaults to `lowercase` when the configuration leaves it unset).
    public var stripAccents = true
    /// Lower-case.
    public var lowercase = true

    /// A normalizer with explicit settings.
    public init(cleanText: Bool = true, handleChineseCharacters: Bool = true, stripAccents: Bool? = nil, lowercase: Bool = true) {
        self.cleanText = cleanText
        self.handleChineseCharacters = handleChineseCharacters
        self.stripAccents = stripAccents ?? lowercase
        self.lowercase = lowercase
    }

    /// The normalized text.
    public func normalize(_ text: String) -> String {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        for s in text.unicodeScalars {
            if cleanText {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
                if Self.isWhitespace(s) { scalars.append(" "); continue }
            }
            if handleChineseCharacters && Self.isCJKIdeograph(s) {
                scalars.append(" "); scalars.append(s); scalars.append(" ")
                continue
            }
            scalars.append(s)
        }
        var out = String(String.UnicodeScalarView(scalars))
        if stripAccents {
            let decomposed = out.decomposedStringWithCanonicalMapping.unicodeScalars
            out = String(String.UnicodeScalarView(decomposed.filter { $0.properties.generalCategory != .nonspacingMark }))
        }
        if lowercase { out = Self.lowercased(out) }
        return out
    }

    /// White space as BERT counts it: tab, newline, carriage return, and Unicode White_Space.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    /// Control, format and private-use characters (categories Cc, Cf, Co), except tab, newline and return.
    /// Unassigned code points are kept, as the reference tokenizer keeps them.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// CJK Unified Ideographs and their extensions and compatibility blocks (not kana or hangul), with the
    /// ranges the reference tokenizer uses (its extension E range starts at U+2B920).
    static func isCJKIdeograph(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Full Unicode lower-casing, character by character (no context rules such as word-final sigma, as in the
    /// reference tokenizer).
    static func lowercased(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars { out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars) }
        return String(out)
    }
}

/// BERT's pre-tokenizer: split on white space (dropped) and isolate every punctuation character.
public struct BertPreTokenizer: Sendable {
    /// The splitter.
    public init() {}

    /// The words of normalized `text`.
    public func split(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        func flush() {
            if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
        }
        for s in text.unicodeScalars {
            if s.properties.isWhitespace {
                flush()
            } else if Self.isPunctuation(s) {
                flush()
                words.append(String(s))
            } else {
                current.append(s)
            }
        }
        flush()
        return words
    }

    /// ASCII punctuation (which includes symbols such as `$`, `+`, `^`) and Unicode punctuation (categories P*).
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII {
            let v = s.value
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}
