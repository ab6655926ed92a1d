/// Splits text into the pieces that BPE encodes independently.
public protocol PreTokenizer: Sendable {
    /// Ranges of `scalars`, in order, covering all of it.
    func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>]
}

/// Builds the pre-tokenizer a GGUF file names in `tokenizer.ggml.pre`.
public enum PreTokenizers {
    /// Names this engine implements.
    public static let supported = ["default", "gpt2", "smollm"]

    /// The pre-tokenizer for `name`.
    public static func make(_ name: String) throws -> any PreTokenizer {
        switch name {
        case "default", "gpt2": return GPT2PreTokenizer()
        case "smollm": return DigitIsolatingPreTokenizer(then: GPT2PreTokenizer())
        default: throw TokenizerError.unsupportedPreTokenizer(name, supported: supported)
        }
    }
}

/// The Unicode classes the split rules test.
enum ScalarClass: UInt8 {
    case letter, number, whitespace, other

    init(_ s: Unicode.Scalar) {
        if s.value < 128 {
            self = Self.ascii[Int(s.value)]
            return
        }
        if s.properties.isWhitespace { self = .whitespace; return }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: self = .letter
        case .decimalNumber, .letterNumber, .otherNumber: self = .number
        default: self = .other
        }
    }

    private static let ascii: [ScalarClass] = (0..<128).map { v in
        switch v {
        case 0x09...0x0D, 0x20: return .whitespace
        case 0x30...0x39: return .number
        case 0x41...0x5A, 0x61...0x7A: return .letter
        default: return .other
        }
    }
}

/// GPT-2's rule, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, written out as a scanner.
public struct GPT2PreTokenizer: PreTokenizer {
    /// The rule.
    public init() {}

    public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(ScalarClass.init)
        return split(scalars, classes: classes, in: 0..<scalars.count)
    }

    func split(_ s: [Unicode.Scalar], classes: [ScalarClass], in bounds: Range<Int>) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        let end = bounds.upperBound
        var pos = bounds.lowerBound
        func cls(_ i: Int) -> ScalarClass? { i < end ? classes[i] : nil }
        while pos < end {
            let start = pos
            let c = s[pos]
            // Contractions, lower case only.
            if c == "'", pos + 1 < end {
                let n = s[pos + 1]
                if n == "s" || n == "t" || n == "m" || n == "d" {
                    pieces.append(pos..<(pos + 2)); pos += 2; continue
                }
                if pos + 2 < end {
                    let nn = s[pos + 2]
                    if (n == "r" && nn == "e") || (n == "v" && nn == "e") || (n == "l" && nn == "l") {
                        pieces.append(pos..<(pos + 3)); pos += 3; continue
                    }
                }
            }
            // An optional leading space, then a run of letters, of numbers, or of other non-space characters.
            let lead = c == " " ? cls(pos + 1) : classes[pos]
            if let kind = lead, kind != .whitespace {
                if c == " " { pos += 1 }
                while let k = cls(pos), k == kind { pos += 1 }
                pieces.append(start..<pos)
                continue
            }
            // Whitespace: a run followed by a non-space keeps its last space for the next piece.
            var run = 0
            while cls(pos + run) == .whitespace { run += 1 }
            if run > 1 && pos + run < end {
                pos += run - 1
            } else {
                pos += max(run, 1)
            }
            pieces.append(start..<pos)
        }
        return pieces
    }
}

/// Isolates every number character (`\p{N}`) as its own piece, then applies a second rule to the text between.
public struct DigitIsolatingPreTokenizer: PreTokenizer {
    let next: GPT2PreTokenizer

    /// Isolates digits, then applies `next`.
    public init(then next: GPT2PreTokenizer) { self.next = next }

    public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(ScalarClass.init)
        var pieces: [Range<Int>] = []
        var start = 0
        for i in 0..<scalars.count where classes[i] == .number {
            if start < i { pieces += next.split(scalars, classes: classes, in: start..<i) }
            pieces.append(i..<(i + 1))
            start = i + 1
        }
        if start < scalars.count { pieces += next.split(scalars, classes: classes, in: start..<scalars.count) }
        return pieces
    }
}
