import Datasets
import Foundation
import Testing
import Tokenizers
@testable import Inference

/// Texts whose scalars extend the previous grapheme cluster, in several scripts.
let hardTexts = [
    "🇫🇷 🇫🇷 🇫🇷", "e\u{0301}te\u{0301}", "नमस्ते दुनिया", "क्षत्रिय", "👩🏽‍💻 and 👨‍👩‍👧‍👦", "👍🏿",
    "مرحبا بالعالم", "שָׁלוֹם", "a\u{200B}b\u{200D}c\u{FEFF}", "Z\u{0351}\u{0363}\u{0300}algo", "각", "🏳️‍🌈", "ｃｏｕｒｔ cоurt",
]

@Suite struct TextStreamTests {
    /// Every text split into byte chunks at every position comes out whole, nothing lost or invented.
    @Test func detokenizerIsByteExactAtEverySplit() {
        for text in hardTexts {
            let bytes = Array(text.utf8)
            for cut in 0...bytes.count {
                var d = StreamingDetokenizer()
                let out = d.append(bytes[0..<cut]) + d.append(bytes[cut...])
                #expect(out == bytes, "\(text) split at \(cut)")
                #expect(d.finish() == 0)
            }
            // One byte at a time: every release is valid UTF-8 on its own.
            var d = StreamingDetokenizer()
            var out: [UInt8] = []
            for b in bytes {
                let piece = d.append([b])
                #expect(String(validating: piece, as: UTF8.self) != nil)
                out += piece
            }
            #expect(out == bytes)
        }
    }

    /// Bytes of an unfinished character at the end are held back and dropped, never shown as U+FFFD.
    @Test func unfinishedCharacterAtTheEndIsNotInvented() {
        let bytes = Array("ok 🇫🇷".utf8)
        for drop in 1...3 {
            var d = StreamingDetokenizer()
            let out = d.append(bytes.dropLast(drop))
            #expect(String(decoding: out, as: UTF8.self) == "ok 🇫")
            #expect(d.finish() == 4 - drop)
        }
        // Bytes that can never be valid are replaced as every UTF-8 decoder does.
        var d = StreamingDetokenizer()
        #expect(String(decoding: d.append([0x61, 0x80, 0x62]), as: UTF8.self) == "a\u{FFFD}b")
    }

    /// A stop string that is one scalar of a grapheme cluster cuts right before that scalar (no crash).
    @Test func stopInsideGraphemeCluster() {
        let cases: [(text: String, stop: String, expected: String)] = [
            ("Repeat: 🇫🇷 🇫🇷", "🇷", "Repeat: 🇫"),
            ("e\u{0301}", "\u{0301}", "e"),
            ("नमस्ते", "\u{094D}", "नमस"),
            ("👩🏽‍💻", "\u{200D}", "👩🏽"),
            ("👍🏿 yes", "🏿", "👍"),
            ("{\"a\":1}", "}", "{\"a\":1"),
            ("abcabd", "abd", "abc"),
            ("no stop here", "zz", "no stop here"),
        ]
        for c in cases {
            let bytes = Array(c.text.utf8)
            // Fed in every pair of chunks, the result is the same.
            for cut in 0...bytes.count {
                var m = StopMatcher(stops: [c.stop])
                var d = StreamingDetokenizer()
                var out: [UInt8] = []
                var found: String?
                for chunk in [bytes[0..<cut], bytes[cut...]] where found == nil {
                    let r = m.feed(d.append(chunk))
                    out += r.release
                    found = r.stop
                }
                if found == nil { out += m.finish() }
                #expect(String(decoding: out, as: UTF8.self) == c.expected, "\(c.text) / \(c.stop) at \(cut)")
                #expect((found != nil) == (StopMatcher.firstIndex(of: Array(c.stop.utf8), in: bytes) != nil))
            }
        }
    }

    /// The earliest stop wins; held-back text that did not become a stop is released.
    @Test func earliestStopAndReleaseOfHeldText() {
        var m = StopMatcher(stops: ["END", "ab"])
        #expect(m.feed(Array("xxa".utf8)).release == Array("xx".utf8))
        let r = m.feed(Array("bEND".utf8))
        #expect(r.release == Array("".utf8))
        #expect(r.stop == "ab")
        var n = StopMatcher(stops: ["END"])
        #expect(n.feed(Array("E".utf8)).release.isEmpty)
        #expect(n.feed(Array("N".utf8)).release.isEmpty)
        #expect(n.finish() == Array("EN".utf8))
    }

    /// Through the generator: flags, Devanagari and combining marks come back whole, streamed and summarised, and
    /// a stop string inside a flag ends the text before it instead of trapping.
    @Test func generatorIsByteExact() async throws {
        for text in hardTexts {
            let (pieces, summary) = try await run(ScriptedModel(bytes(text) + [256]), GenerateParameters(maxTokens: 200))
            #expect(summary.text == text)
            #expect(pieces.joined() == text)
            #expect(Array(pieces.joined().utf8) == Array(text.utf8))
        }
        let (pieces, summary) = try await run(ScriptedModel(bytes("Repeat: 🇫🇷 🇫🇷") + [256]), GenerateParameters(maxTokens: 200, stop: ["🇷"]))
        #expect(summary.text == "Repeat: 🇫")
        #expect(pieces.joined() == "Repeat: 🇫")
        #expect(summary.reason == .stopString("🇷"))
        let (_, accent) = try await run(ScriptedModel(bytes("caf") + bytes("e\u{0301}") + [256]), GenerateParameters(maxTokens: 200, stop: ["\u{0301}"]))
        #expect(accent.text == "cafe")
    }

    /// A budget that ends inside a character holds its bytes back instead of ending in U+FFFD.
    @Test func budgetEndingInsideACharacter() async throws {
        let text = "hi 🇫🇷"
        for budget in 1...bytes(text).count {
            let (pieces, summary) = try await run(ScriptedModel(bytes(text)), GenerateParameters(maxTokens: budget))
            #expect(!summary.text.unicodeScalars.contains("\u{FFFD}"))
            #expect(text.utf8.starts(with: summary.text.utf8))
            #expect(pieces.joined() == summary.text)
            #expect(summary.reason == .maxTokens)
        }
    }

    /// Random token sequences from SmolLM2's real vocabulary: the released text always concatenates to the bytes
    /// the tokens decode to (minus an unfinished sequence at the very end), with and without stop strings.
    @Test func randomVocabularySequencesDecodeExactly() throws {
        let tokenizer = try SmolLM2.loaded.get().tokenizer
        var rng = SeededGenerator(seed: 14)
        let vocabulary = tokenizer.vocabularySize
        // Tokens that are pieces of multi-byte characters are the interesting ones: draw them often.
        let partial = (0..<vocabulary).filter { id in
            let b = tokenizer.bytes(of: id, special: false)
            return !b.isEmpty && String(validating: b, as: UTF8.self) == nil
        }
        #expect(partial.count > 100)
        for round in 0..<400 {
            let length = Int.random(in: 1...40, using: &rng)
            let tokens = (0..<length).map { _ in
                Bool.random(using: &rng) ? partial.randomElement(using: &rng)! : Int.random(in: 0..<vocabulary, using: &rng)
            }
            let all = tokens.flatMap { tokenizer.bytes(of: $0, special: false) }
            var d = StreamingDetokenizer()
            var released: [UInt8] = []
            for t in tokens { released += d.append(tokenizer.bytes(of: t, special: false)) }
            let dropped = d.finish()
            let complete = Array(all[0..<(all.count - dropped)])
            #expect(released == Array(String(decoding: complete, as: UTF8.self).utf8), "round \(round)")
            if String(validating: complete, as: UTF8.self) != nil { #expect(released == complete) }
            // With a stop string taken from the middle of the text, the release is the text before its first occurrence.
            let text = String(decoding: released, as: UTF8.self)
            let scalars = Array(text.unicodeScalars)
            guard scalars.count >= 3 else { continue }
            let start = Int.random(in: 0..<(scalars.count - 1), using: &rng)
            let stop = String(String.UnicodeScalarView(scalars[start..<min(scalars.count, start + Int.random(in: 1...3, using: &rng))]))
            var m = StopMatcher(stops: [stop])
            var d2 = StreamingDetokenizer()
            var out: [UInt8] = []
            var found = false
            for t in tokens where !found {
                let r = m.feed(d2.append(tokenizer.bytes(of: t, special: false)))
                out += r.release
                found = r.stop != nil
            }
            #expect(found)
            let expected = StopMatcher.firstIndex(of: Array(stop.utf8), in: released).map { Array(released[0..<$0]) }
            #expect(out == expected, "round \(round) stop \(stop.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }
}
