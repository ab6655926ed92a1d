import Foundation
import Testing
import Datasets
@testable import Cascade

@Suite struct RuleTextTests {
    @Test func invisibleCharactersAreRemoved() {
        #expect(RuleText.normalized("I will s\u{200B}ue you") == "I will sue you")  // zero-width space
        #expect(RuleText.normalized("I will s\u{00AD}ue you") == "I will sue you")  // soft hyphen
        #expect(RuleText.normalized("s\u{2060}ue") == "sue")  // word joiner
        #expect(RuleText.normalized("\u{FEFF}sue") == "sue")  // byte-order mark
        #expect(RuleText.normalized("s\u{200F}u\u{200E}e") == "sue")  // right-to-left and left-to-right marks
        #expect(RuleText.normalized("c\u{202E}ourt\u{202C}") == "court")  // bidirectional override and pop
        #expect(RuleText.normalized("co\u{FE0F}urt\u{E0041}") == "court")  // variation selector, tag character
    }

    @Test func lookAlikesFoldToLatin() {
        #expect(RuleText.normalized("c\u{043E}urt") == "court")  // Cyrillic о
        #expect(RuleText.normalized("c\u{03BF}\u{03C5}rt") == "court")  // Greek ο and υ
        #expect(RuleText.normalized("ｃｏｕｒｔ") == "court")  // full-width
        #expect(RuleText.normalized("𝐜𝐨𝐮𝐫𝐭") == "court")  // mathematical bold
        #expect(RuleText.normalized("\u{0421}\u{041E}\u{0423}\u{0420}\u{0422}") == "COYPT")  // Cyrillic capitals
        #expect(RuleText.normalized("\u{0405}\u{0399}\u{039D}") == "SIN")  // Cyrillic Ѕ, Greek Ι and Ν
        #expect(RuleText.normalized("\u{0432}\u{043A}\u{043C}\u{043D}\u{0442}") == "bkmht")  // small-capital shapes
        #expect(RuleText.normalized("\u{0455}\u{0585}\u{057D}") == "sou")  // Cyrillic ѕ, Armenian օ and ս
        #expect(RuleText.normalized("\u{0131}\u{2113}\u{1D04}\u{0280}") == "ilcr")  // dotless i, script l, small capitals
        // Mixed: full-width, Cyrillic, a zero-width space and Greek in one sentence.
        #expect(RuleText.normalized("Ｉ will \u{0455}\u{200B}u\u{0435} th\u{0435} \u{0441}\u{03BF}urt") == "I will sue the court")
        // Look-alikes under accents fold too, and the accent stays: Cyrillic ё is е + U+0308.
        #expect(RuleText.normalized("\u{0451}") == "ë")
    }

    @Test func otherScriptsAndDigitsAreLeftAlone() {
        for text in ["नमस्ते दुनिया", "مرحبا بالعالم", "שלום עולם", "你好世界", "안녕하세요", "٠١٢٣٤٥٦٧٨٩", "०१२३", "Grüße, São Paulo", "nǐ hǎo"] {
            #expect(RuleText.normalized(text) == text)
            #expect(RuleText.visible(text) == text)
        }
        // ASCII is never changed, even where UTS #39 would fold it (m to rn, 0 to O, 1 to l).
        let ascii = "m0 1I| claim 2026 \t\n"
        #expect(RuleText.normalized(ascii) == ascii)
        // The zero-width joiner is default-ignorable, so a ZWJ emoji sequence becomes its parts: 👩‍💻 is 👩 and 💻,
        // two emoji instead of one, which is fine for matching.
        #expect(RuleText.normalized("👩\u{200D}💻") == "\u{1F469}\u{1F4BB}")
        #expect(RuleText.normalized("👩\u{200D}💻").count == 2)
        #expect(RuleText.normalized("🇫🇷") == "🇫🇷")
    }

    @Test func combiningMarksCompose() {
        #expect(RuleText.normalized("e\u{0301}") == "é")
        #expect(RuleText.normalized("cafe\u{0301}") == "café")
        // A mark separated from its letter by an invisible character joins it once the character is gone.
        #expect(RuleText.normalized("e\u{200B}\u{0301}") == "é")
        #expect(RuleText.normalized("ﬁle") == "file")  // ligature
        // A character outside the BMP keeps its mark (Foundation's composition on Linux turns these into U+1FDE, U+03D3).
        #expect(RuleText.normalized("\u{21FFE}\u{0301}") == "\u{21FFE}\u{0301}")
        #expect(RuleText.normalized("\u{103D2}\u{0301}") == "\u{103D2}\u{0301}")
        #expect(RuleText.normalized("\u{1D41C}\u{0301}") == "ć")  // mathematical bold c with an acute
    }

    @Test func visibleKeepsLookAlikes() {
        #expect(RuleText.visible("с\u{200B}уд") == "суд")
        #expect(RuleText.normalized("с\u{200B}уд") == "cyд")
        #expect(RuleText.visible("ｃｏｕｒｔ") == "court")
    }

    @Test func blankInputs() {
        for text in ["", "   ", "\u{200B}\u{00AD}", "\u{FEFF}", "\u{3000}", " \n\t\u{00A0}", "\u{2060}\u{200D}\u{FE0F}", "\u{3164}"] {
            #expect(RuleText.isBlank(text), "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        for text in ["a", "नमस्ते", "🇫🇷", "\u{200B}a", ".", "\u{0000}"] {
            #expect(!RuleText.isBlank(text), "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    @Test func confusablesTableIsWellFormed() {
        for (scalar, latin) in RuleText.confusables {
            #expect(!scalar.isASCII, "U+\(String(scalar.value, radix: 16)) is ASCII")
            // Keys must survive NFKD and not be invisible, or the fold would never see them.
            #expect(String(scalar).decomposedStringWithCompatibilityMapping.unicodeScalars.elementsEqual([scalar]))
            #expect(!RuleText.isInvisible(scalar))
            #expect(!latin.isEmpty && latin.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
        }
        // At least every Cyrillic and Greek letter that looks like a Latin one, both cases.
        for cyrillicOrGreek in "аеорсухѕіјԁԛԝӏвкмнтАВЕКМНОРСТХЅІЈοανρτυικΑΒΕΖΗΙΚΜΝΟΡΤΥΧ".unicodeScalars {
            #expect(RuleText.confusables[cyrillicOrGreek] != nil, "\(cyrillicOrGreek)")
        }
    }

    @Test func normalizedIsIdempotentAndLeavesNothingInvisible() {
        let pool: [Unicode.Scalar] = [
            "\u{200B}", "\u{200C}", "\u{200D}", "\u{2060}", "\u{00AD}", "\u{FEFF}", "\u{200E}", "\u{200F}", "\u{202E}",
            "\u{2066}", "\u{FE0F}", "\u{E0041}", "\u{034F}", "\u{180E}", "\u{3164}", "\u{FFA0}", "\u{0600}",
            "\u{0301}", "\u{0308}", "\u{0316}", "\u{0327}", "\u{0345}", "\u{093C}", "\u{094D}", "\u{0F73}",
            "\u{0430}", "\u{043E}", "\u{0435}", "\u{0438}", "\u{0451}", "\u{0432}", "\u{03BF}", "\u{03B9}", "\u{03AC}",
            "\u{0399}", "\u{0585}", "\u{13A0}", "\u{AB70}", "\u{A4EE}", "\u{0131}", "\u{0299}", "\u{1D1B}",
            "\u{FF43}", "\u{1D41C}", "\u{2113}", "\u{FB01}", "\u{2460}", "\u{00BD}", "\u{3000}", "\u{00A0}",
            "\u{0915}", "\u{0958}", "\u{0627}", "\u{05D5}", "\u{0661}", "\u{4F60}", "\u{AC00}", "\u{1100}", "\u{1161}",
            "\u{1F469}", "\u{1F4BB}", "\u{1F1EB}", "\u{01C5}", "\u{00E9}", "\u{1E9B}",
        ]
        var g = SeededGenerator(seed: 39)
        for _ in 0..<500 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...24, using: &g) {
                switch Int.random(in: 0..<10, using: &g) {
                case 0..<4: scalars.append(Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &g)))
                case 4..<9: scalars.append(pool.randomElement(using: &g)!)
                default:  // anything at all, assigned or not, in the planes that hold text and tags
                    let value = Bool.random(using: &g) ? UInt32.random(in: 0...0x2FFFF, using: &g) : UInt32.random(in: 0xE0000...0xE0FFF, using: &g)
                    if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
                }
            }
            let s = String(scalars), once = RuleText.normalized(s)
            let hex = s.unicodeScalars.map { String($0.value, radix: 16) }
            #expect(RuleText.normalized(once) == once, "\(hex)")
            #expect(!once.unicodeScalars.contains(where: RuleText.isInvisible), "\(hex)")
            #expect(RuleText.normalized(RuleText.visible(s)) == once, "\(hex)")
        }
    }

    /// The base spec's policy with its rules replaced by `rules` (YAML list items).
    func policy(rules: String) throws -> Policy {
        let yaml = baseSpec.replacingOccurrences(of: "  - {name: lawyer, pattern: \"(?i)\\\\blawyer\\\\b\", route: review}", with: rules)
        try #require(yaml != baseSpec)
        let spec = try loadSpec(yaml)
        return Policy(spec: spec, adapter: adapter(for: spec, thresholds: [0.8, 0.95], massBound: 0.05))
    }

    @Test func rulesSeeThroughInvisibleAndLookAlikeCharacters() throws {
        let policy = try policy(rules: #"  - {name: threat, pattern: '(?i)\b(sue|court)\b', route: review}"#)
        func route(_ text: String) -> Route { policy.decide([0.9, 0.08, 0.02], text: text).route }
        for text in ["I will sue you", "I will s\u{200B}ue you", "I will s\u{00AD}ue you", "see you in c\u{043E}urt",
                     "ｃｏｕｒｔ", "𝐜𝐨𝐮𝐫𝐭", "c\u{03BF}\u{03C5}rt", "\u{0405}UE"] {
            #expect(route(text) == .review, "\(text)")
            #expect(policy.decide([0.9, 0.08, 0.02], text: text).reason == .rule)
        }
        for text in ["of course", "courteous", "pursue", "a s\u{200B}uede jacket", "नमस्ते दुनिया", ""] {
            #expect(route(text) == .accept, "\(text)")
        }
    }

    @Test func rulesInOtherScriptsAndOnInvisibleCharactersStillFire() throws {
        // Normalising only adds matches: the visible and the given text are tried too.
        let policy = try policy(rules: #"""
              - {name: russian, pattern: '(?i)\bсуд\b', route: review}
              - {name: hidden, pattern: '[\x{200B}-\x{200D}\x{2060}]', route: escalate}
            """#)
        func outcome(_ text: String) -> Policy.Outcome { policy.decide([0.9, 0.08, 0.02], text: text) }
        #expect(outcome("подам в суд").route == .review)
        #expect(outcome("подам в с\u{200B}уд").detail == "rule 'russian' matched")
        #expect(outcome("please call").route == .accept)
        let hidden = outcome("please c\u{200B}all")
        #expect(hidden.route == .escalate && hidden.detail == "rule 'hidden' matched")
    }
}
