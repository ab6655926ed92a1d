/// Turns the bytes of generated tokens into text, incrementally and byte-exactly.
///
/// Byte-level BPE tokens can end inside a UTF-8 sequence (an emoji or a Devanagari conjunct spans several tokens), so
/// the bytes of a sequence that is not yet complete are held back until the token that completes it arrives. Complete
/// scalars are released as soon as they are known, even when the next scalar would extend the same grapheme cluster
/// (a combining mark, a skin-tone modifier, a zero-width joiner, the second half of a flag): text is counted in bytes
/// and scalars, never in `Character`s. Concatenating everything released equals decoding all the bytes at once, except
/// that an unfinished sequence at the very end is never released (``finish()`` reports it instead of inventing
/// U+FFFD). Bytes that can never be valid UTF-8 (a stray continuation byte, an overlong form) become U+FFFD, as every
/// UTF-8 decoder does (Unicode 15, section 3.9, "U+FFFD substitution of maximal subparts").
public struct StreamingDetokenizer: Sendable {
    private var pending: [UInt8] = []

    /// An empty stream.
    public init() {}

    /// Bytes held back because they end in an unfinished UTF-8 sequence (0 to 3).
    public var pendingByteCount: Int { pending.count }

    /// Adds a token's bytes; returns the UTF-8 of every complete scalar now known (valid UTF-8, possibly empty).
    public mutating func append(_ bytes: some Collection<UInt8>) -> [UInt8] {
        pending.append(contentsOf: bytes)
        let end = Self.completeLength(pending)
        guard end > 0 else { return [] }
        let done = Array(String(decoding: pending[0..<end], as: UTF8.self).utf8)
        pending.removeFirst(end)
        return done
    }

    /// Ends the stream: the bytes of an unfinished sequence at the end are dropped (never shown as U+FFFD);
    /// returns how many were dropped.
    public mutating func finish() -> Int {
        defer { pending = [] }
        return pending.count
    }

    /// The length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence that could still
    /// be completed by more bytes.
    static func completeLength(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1
        var continuation = 0
        while i >= 0 && continuation < 3 && bytes[i] & 0xC0 == 0x80 { i -= 1; continuation += 1 }
        guard i >= 0 else { return bytes.count }
        let lead = bytes[i]
        let length = lead < 0xC2 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF5 ? 4 : 1
        // A lead byte whose sequence still lacks continuation bytes: hold it and them back.
        return length > continuation + 1 ? i : bytes.count
    }
}

/// Finds stop strings in generated text, byte-exactly: text is released as soon as it cannot be the start of a stop
/// string, and generation ends at the first occurrence of any of them (the stop string itself is not released).
///
/// Matching is on UTF-8 bytes, so it is exact on scalars: a stop string that is one scalar of a grapheme cluster
/// (U+0301 after "e", 🇷 inside 🇫🇷) stops the text right before that scalar, as `str.find` would in Python.
/// Both the text fed in and the stop strings are valid UTF-8, so every cut falls on a scalar boundary.
public struct StopMatcher: Sendable {
    /// The stop strings (non-empty).
    public let stops: [String]
    private let stopBytes: [[UInt8]]
    private var held: [UInt8] = []

    /// A matcher for `stops`; empty strings are not stops (callers refuse them before).
    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
        stopBytes = self.stops.map { Array($0.utf8) }
    }

    /// Adds complete UTF-8 text; returns what can be released and, when a stop string was found, which one
    /// (everything after it is discarded).
    public mutating func feed(_ bytes: [UInt8]) -> (release: [UInt8], stop: String?) {
        guard !stopBytes.isEmpty else { return (bytes, nil) }
        held += bytes
        // Earliest occurrence of any stop; ties go to the longer stop, so the match covers the most.
        var best: (start: Int, stop: Int)?
        for (s, stop) in stopBytes.enumerated() {
            if let start = Self.firstIndex(of: stop, in: held), best.map({ start < $0.start || (start == $0.start && stop.count > stopBytes[$0.stop].count) }) ?? true {
                best = (start, s)
            }
        }
        if let best {
            let release = Array(held[0..<best.start])
            held = []
            return (release, stops[best.stop])
        }
        // Hold back the longest tail that is still the beginning of some stop string.
        let keep = stopBytes.map { Self.longestSuffixPrefix(held, $0) }.max() ?? 0
        let release = Array(held[0..<(held.count - keep)])
        held.removeFirst(held.count - keep)
        return (release, nil)
    }

    /// Ends the text: whatever is held back is released (no stop string can complete any more).
    public mutating func finish() -> [UInt8] {
        defer { held = [] }
        return held
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, needle.count <= haystack.count else { return nil }
        outer: for start in 0...(haystack.count - needle.count) {
            for j in needle.indices where haystack[start + j] != needle[j] { continue outer }
            return start
        }
        return nil
    }

    /// The length of the longest proper prefix of `stop` that `text` ends with.
    static func longestSuffixPrefix(_ text: [UInt8], _ stop: [UInt8]) -> Int {
        var n = min(text.count, stop.count - 1)
        while n > 0 {
            if text[(text.count - n)...].elementsEqual(stop[0..<n]) { return n }
            n -= 1
        }
        return 0
    }
}
