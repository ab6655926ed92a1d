import Foundation

/// The text that a spec's rules are matched against: what a reader sees, not the code points that were typed.
///
/// A rule such as `(?i)\b(sue|court)\b` searched in the raw input is skipped by `s\u{200B}ue` (a zero-width space),
/// `s\u{00AD}ue` (a soft hyphen), `cоurt` (a Cyrillic о) or `ｃｏｕｒｔ` (full-width letters). ``normalized(_:)``
/// removes those differences in three steps:
///
/// 1. Compatibility normalisation (NFKC, Unicode UAX #15): full-width, mathematical, circled and ligature forms become
///    the plain letters and digits they stand for; combining marks compose (`e` + U+0301 is `é`). The steps work on
///    the decomposed form (NFKD) and compose at the end, which is NFKC.
/// 2. Invisible characters go: every Default_Ignorable_Code_Point and every format (Cf) character — zero-width
///    spaces and joiners, soft hyphens, the byte-order mark, bidirectional controls, variation selectors, tags.
/// 3. Look-alikes fold to Latin: a letter or digit of another script that is confusable with a Latin letter or an
///    ASCII digit becomes it, as in the skeleton of Unicode UTS #39 section 4 ("Confusable Detection"). The table,
///    ``confusables``, is a subset of UTS #39's confusables data for Latin targets (Cyrillic, Greek, Coptic,
///    Armenian, Cherokee, Lisu, and Latin look-alikes such as `ı`, `ɑ` and the small capitals).
///
/// Unlike the UTS #39 skeleton, ASCII itself is never changed (`m`, `I`, `0` and `1` stay: rules are written in
/// ASCII), case is kept (rules carry their own `(?i)`), and letters of scripts whose characters are not confusable
/// with Latin (Devanagari, Arabic, Hebrew, CJK, …) are left alone, digits included.
public enum RuleText {
    /// The form rules match against: NFKC, without invisible characters, with look-alikes folded to Latin.
    public static func normalized(_ text: String) -> String {
        if isASCII(text) { return text }
        return folded(visibleScalars(text))
    }

    /// Visible decomposed scalars with look-alikes folded to Latin, composed.
    static func folded(_ scalars: [Unicode.Scalar]) -> String {
        var out = String.UnicodeScalarView()
        for scalar in scalars {
            if let latin = confusables[scalar] { out.append(contentsOf: latin.unicodeScalars) } else { out.append(scalar) }
        }
        return composed(out)
    }

    /// The text in NFKC without invisible characters, look-alikes kept (what a rule written in another script needs).
    public static func visible(_ text: String) -> String {
        if isASCII(text) { return text }
        return composed(String.UnicodeScalarView(visibleScalars(text)))
    }

    /// Whether the text is empty once normalised, or only whitespace (the White_Space property): `""`, `"   "`,
    /// `"\u{200B}\u{00AD}"`, `"\u{FEFF}"` and `"\u{3000}"` are blank; `"a"`, `"नमस्ते"` and `"🇫🇷"` are not.
    public static func isBlank(_ text: String) -> Bool {
        normalized(text).unicodeScalars.allSatisfy(\.properties.isWhitespace)
    }

    /// Whether a scalar is invisible: default-ignorable or a format character.
    static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isDefaultIgnorableCodePoint || scalar.properties.generalCategory == .format
    }

    /// The texts a rule is tried on, in order and without repeats: normalised, visible, as given. Trying all three
    /// means normalising can only add matches: a rule written in Cyrillic, or one looking for the invisible
    /// characters themselves, still fires.
    static func forms(_ text: String) -> [String] {
        if isASCII(text) { return [text] }
        let scalars = visibleScalars(text)  // decomposed once for both derived forms
        var forms = [folded(scalars)]
        for form in [composed(String.UnicodeScalarView(scalars)), text] where !forms.contains(form) { forms.append(form) }
        return forms
    }

    /// ASCII needs none of the steps: NFKC leaves it as it is, and it has no invisible characters or look-alikes.
    static func isASCII(_ text: String) -> Bool { text.utf8.allSatisfy { $0 < 0x80 } }

    /// The scalars of the compatibility decomposition (NFKD) without the invisible ones. Folding the decomposed
    /// form, as UTS #39 does, also catches look-alikes under accents (Cyrillic `ё` is `е` + U+0308); the callers
    /// compose again (``composed(_:)``), so the result is NFKC.
    static func visibleScalars(_ text: String) -> [Unicode.Scalar] {
        text.decomposedStringWithCompatibilityMapping.unicodeScalars.filter { !isInvisible($0) }
    }

    /// Canonical composition (NFC) of decomposed scalars, which makes NFKD output NFKC. It is the standard library's:
    /// Foundation's `precomposedString…` on Linux misreads characters outside the BMP next to a combining mark
    /// (U+21FFE U+0301 composes to U+1FDE, U+103D2 U+0301 to U+03D3), while its decompositions are right.
    static func composed(_ scalars: String.UnicodeScalarView) -> String {
        String(decoding: String(scalars)._nfcCodeUnits, as: UTF8.self)
    }

    /// Look-alikes of Latin letters and ASCII digits, to what they show: a subset of the UTS #39 confusables data for
    /// Latin targets, keyed by scalars that NFKD leaves alone. Where UTS #39 maps to a non-ASCII prototype (Cyrillic
    /// `в` to small capital `ʙ`, `т` to `ᴛ`) or chains through ASCII (capital-I shapes to `l`), the table names the
    /// ASCII letter the glyph shows instead (`b`, `t`, `I`); the Latin small capitals themselves fold to their letter.
    static let confusables: [Unicode.Scalar: String] = [
        // Cyrillic capitals
        "\u{0410}": "A", "\u{0412}": "B", "\u{0415}": "E", "\u{0417}": "3", "\u{041A}": "K", "\u{041C}": "M",  // А→A В→B Е→E З→3 К→K М→M
        "\u{041D}": "H", "\u{041E}": "O", "\u{0420}": "P", "\u{0421}": "C", "\u{0422}": "T", "\u{0423}": "Y",  // Н→H О→O Р→P С→C Т→T У→Y
        "\u{0425}": "X", "\u{042C}": "b", "\u{0405}": "S", "\u{0406}": "I", "\u{0408}": "J", "\u{0474}": "V",  // Х→X Ь→b Ѕ→S І→I Ј→J Ѵ→V
        "\u{04AE}": "Y", "\u{04C0}": "I", "\u{04E0}": "3", "\u{050C}": "G", "\u{051C}": "W", "\u{A644}": "2",  // Ү→Y Ӏ→I Ӡ→3 Ԍ→G Ԝ→W Ꙅ→2
        // Cyrillic small letters
        "\u{0430}": "a", "\u{0431}": "6", "\u{0432}": "b", "\u{0433}": "r", "\u{0435}": "e", "\u{043A}": "k",  // а→a б→6 в→b г→r е→e к→k
        "\u{043C}": "m", "\u{043D}": "h", "\u{043E}": "o", "\u{0440}": "p", "\u{0441}": "c", "\u{0442}": "t",  // м→m н→h о→o р→p с→c т→t
        "\u{0443}": "y", "\u{0445}": "x", "\u{0455}": "s", "\u{0456}": "i", "\u{0458}": "j", "\u{0461}": "w",  // у→y х→x ѕ→s і→i ј→j ѡ→w
        "\u{0475}": "v", "\u{04AF}": "y", "\u{04BB}": "h", "\u{04BD}": "e", "\u{04CF}": "i", "\u{0501}": "d",  // ѵ→v ү→y һ→h ҽ→e ӏ→i ԁ→d
        "\u{051B}": "q", "\u{051D}": "w", "\u{A647}": "i",  // ԛ→q ԝ→w ꙇ→i
        // Greek capitals
        "\u{0391}": "A", "\u{0392}": "B", "\u{0395}": "E", "\u{0396}": "Z", "\u{0397}": "H", "\u{0399}": "I",  // Α→A Β→B Ε→E Ζ→Z Η→H Ι→I
        "\u{039A}": "K", "\u{039C}": "M", "\u{039D}": "N", "\u{039F}": "O", "\u{03A1}": "P", "\u{03A4}": "T",  // Κ→K Μ→M Ν→N Ο→O Ρ→P Τ→T
        "\u{03A5}": "Y", "\u{03A7}": "X", "\u{037F}": "J", "\u{03DC}": "F", "\u{03FA}": "M",  // Υ→Y Χ→X Ϳ→J Ϝ→F Ϻ→M
        // Greek small letters
        "\u{03B1}": "a", "\u{03B3}": "y", "\u{03B9}": "i", "\u{03BA}": "k", "\u{03BD}": "v", "\u{03BF}": "o",  // α→a γ→y ι→i κ→k ν→v ο→o
        "\u{03C1}": "p", "\u{03C3}": "o", "\u{03C4}": "t", "\u{03C5}": "u", "\u{03F3}": "j",  // ρ→p σ→o τ→t υ→u ϳ→j
        // Coptic
        "\u{2C8E}": "H", "\u{2C92}": "I", "\u{2C94}": "K", "\u{2C98}": "M", "\u{2C9A}": "N", "\u{2C9E}": "O",  // Ⲏ→H Ⲓ→I Ⲕ→K Ⲙ→M Ⲛ→N Ⲟ→O
        "\u{2CA2}": "P", "\u{2CA4}": "C", "\u{2CA6}": "T", "\u{2CA8}": "Y", "\u{2CAC}": "X", "\u{2CD0}": "L",  // Ⲣ→P Ⲥ→C Ⲧ→T Ⲩ→Y Ⲭ→X Ⳑ→L
        "\u{2C85}": "r", "\u{2C95}": "k", "\u{2C9F}": "o", "\u{2CA3}": "p", "\u{2CA5}": "c", "\u{2CD1}": "l",  // ⲅ→r ⲕ→k ⲟ→o ⲣ→p ⲥ→c ⳑ→l
        // Armenian
        "\u{054D}": "U", "\u{054F}": "S", "\u{0555}": "O", "\u{0561}": "w", "\u{0563}": "q", "\u{0566}": "q",  // Ս→U Տ→S Օ→O ա→w գ→q զ→q
        "\u{0570}": "h", "\u{0578}": "n", "\u{057C}": "n", "\u{057D}": "u", "\u{0581}": "g", "\u{0584}": "f",  // հ→h ո→n ռ→n ս→u ց→g ք→f
        "\u{0585}": "o",  // օ→o
        // Cherokee capitals
        "\u{13A0}": "D", "\u{13A1}": "R", "\u{13A2}": "T", "\u{13A5}": "i", "\u{13A9}": "Y", "\u{13AA}": "A",  // Ꭰ→D Ꭱ→R Ꭲ→T Ꭵ→i Ꭹ→Y Ꭺ→A
        "\u{13AB}": "J", "\u{13AC}": "E", "\u{13B3}": "W", "\u{13B7}": "M", "\u{13BB}": "H", "\u{13BD}": "Y",  // Ꭻ→J Ꭼ→E Ꮃ→W Ꮇ→M Ꮋ→H Ꮍ→Y
        "\u{13C0}": "G", "\u{13C2}": "h", "\u{13C3}": "Z", "\u{13CF}": "b", "\u{13D2}": "R", "\u{13D4}": "W",  // Ꮐ→G Ꮒ→h Ꮓ→Z Ꮟ→b Ꮢ→R Ꮤ→W
        "\u{13D5}": "S", "\u{13D9}": "V", "\u{13DA}": "S", "\u{13DE}": "L", "\u{13DF}": "C", "\u{13E2}": "P",  // Ꮥ→S Ꮩ→V Ꮪ→S Ꮮ→L Ꮯ→C Ꮲ→P
        "\u{13E6}": "K", "\u{13E7}": "d", "\u{13F3}": "G", "\u{13F4}": "B",  // Ꮶ→K Ꮷ→d Ᏻ→G Ᏼ→B
        // Cherokee small letters
        "\u{AB70}": "d", "\u{AB71}": "r", "\u{AB72}": "t", "\u{AB75}": "i", "\u{AB7A}": "a", "\u{AB7B}": "j",  // ꭰ→d ꭱ→r ꭲ→t ꭵ→i ꭺ→a ꭻ→j
        "\u{AB7C}": "e", "\u{AB81}": "r", "\u{AB83}": "w", "\u{AB87}": "m", "\u{AB8B}": "h", "\u{AB90}": "g",  // ꭼ→e ꮁ→r ꮃ→w ꮇ→m ꮋ→h ꮐ→g
        "\u{AB93}": "z", "\u{ABA2}": "r", "\u{ABA9}": "v", "\u{ABAA}": "s", "\u{ABAE}": "l", "\u{ABAF}": "c",  // ꮓ→z ꮢ→r ꮩ→v ꮪ→s ꮮ→l ꮯ→c
        "\u{ABB2}": "p", "\u{ABB6}": "k", "\u{13FB}": "g", "\u{13FC}": "b",  // ꮲ→p ꮶ→k ᏻ→g ᏼ→b
        // Lisu
        "\u{A4D0}": "B", "\u{A4D1}": "P", "\u{A4D2}": "d", "\u{A4D3}": "D", "\u{A4D4}": "T", "\u{A4D6}": "G",  // ꓐ→B ꓑ→P ꓒ→d ꓓ→D ꓔ→T ꓖ→G
        "\u{A4D7}": "K", "\u{A4D9}": "J", "\u{A4DA}": "C", "\u{A4DC}": "Z", "\u{A4DD}": "F", "\u{A4DF}": "M",  // ꓗ→K ꓙ→J ꓚ→C ꓜ→Z ꓝ→F ꓟ→M
        "\u{A4E0}": "N", "\u{A4E1}": "L", "\u{A4E2}": "S", "\u{A4E3}": "R", "\u{A4E6}": "V", "\u{A4E7}": "H",  // ꓠ→N ꓡ→L ꓢ→S ꓣ→R ꓦ→V ꓧ→H
        "\u{A4EA}": "W", "\u{A4EB}": "X", "\u{A4EC}": "Y", "\u{A4EE}": "A", "\u{A4F0}": "E", "\u{A4F2}": "I",  // ꓪ→W ꓫ→X ꓬ→Y ꓮ→A ꓰ→E ꓲ→I
        "\u{A4F3}": "O", "\u{A4F4}": "U",  // ꓳ→O ꓴ→U
        // Latin small capitals
        "\u{1D00}": "a", "\u{0299}": "b", "\u{1D04}": "c", "\u{1D05}": "d", "\u{1D07}": "e", "\u{0262}": "g",  // ᴀ→a ʙ→b ᴄ→c ᴅ→d ᴇ→e ɢ→g
        "\u{029C}": "h", "\u{026A}": "i", "\u{1D0A}": "j", "\u{1D0B}": "k", "\u{029F}": "l", "\u{1D0D}": "m",  // ʜ→h ɪ→i ᴊ→j ᴋ→k ʟ→l ᴍ→m
        "\u{0274}": "n", "\u{1D0F}": "o", "\u{1D18}": "p", "\u{0280}": "r", "\u{A731}": "s", "\u{1D1B}": "t",  // ɴ→n ᴏ→o ᴘ→p ʀ→r ꜱ→s ᴛ→t
        "\u{1D1C}": "u", "\u{1D20}": "v", "\u{1D21}": "w", "\u{028F}": "y", "\u{1D22}": "z", "\u{1D26}": "r",  // ᴜ→u ᴠ→v ᴡ→w ʏ→y ᴢ→z ᴦ→r
        // Other Latin look-alikes
        "\u{0131}": "i", "\u{0138}": "k", "\u{0184}": "b", "\u{018D}": "g", "\u{0196}": "l", "\u{01A6}": "R",  // ı→i ĸ→k Ƅ→b ƍ→g Ɩ→l Ʀ→R
        "\u{01A7}": "2", "\u{01B7}": "3", "\u{01BC}": "5", "\u{01BD}": "s", "\u{01C0}": "l", "\u{021C}": "3",  // Ƨ→2 Ʒ→3 Ƽ→5 ƽ→s ǀ→l Ȝ→3
        "\u{0222}": "8", "\u{0223}": "8", "\u{0251}": "a", "\u{0261}": "g", "\u{0263}": "y", "\u{0269}": "i",  // Ȣ→8 ȣ→8 ɑ→a ɡ→g ɣ→y ɩ→i
        "\u{026F}": "w", "\u{028B}": "u", "\u{1D11}": "o", "\u{1D83}": "g", "\u{1D8C}": "y", "\u{1E9D}": "f",  // ɯ→w ʋ→u ᴑ→o ᶃ→g ᶌ→y ẝ→f
        "\u{1EFF}": "y", "\u{A798}": "F", "\u{A799}": "f", "\u{A79F}": "u", "\u{A75A}": "2", "\u{A76A}": "3",  // ỿ→y Ꞙ→F ꞙ→f ꞟ→u Ꝛ→2 Ꝫ→3
        "\u{A76E}": "9", "\u{A7AB}": "3", "\u{A7B2}": "J", "\u{A7B3}": "X", "\u{A7B4}": "B", "\u{AB32}": "e",  // Ꝯ→9 Ɜ→3 Ʝ→J Ꭓ→X Ꞵ→B ꬲ→e
        "\u{AB35}": "f", "\u{AB3D}": "o", "\u{AB47}": "r", "\u{AB48}": "r", "\u{AB4E}": "u", "\u{AB52}": "u",  // ꬵ→f ꬽ→o ꭇ→r ꭈ→r ꭎ→u ꭒ→u
        "\u{AB5A}": "y", "\u{212E}": "e",  // ꭚ→y ℮→e
    ]
}
