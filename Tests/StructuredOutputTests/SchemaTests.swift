import Datasets
import Testing
@testable import StructuredOutput

/// Walks the automaton with random allowed bytes (then its shortest completion) and returns the texts produced.
func randomTexts(_ automaton: SchemaAutomaton, count: Int, seed: UInt64, maxSteps: Int = 120) -> [String] {
    var rng = SeededGenerator(seed: seed)
    let alphabet: [UInt8] = Array(0x20...0x7E) + [0x0A, 0xC3, 0xA9, 0xE2, 0x82, 0xAC]
    var out: [String] = []
    for _ in 0..<count {
        var state = automaton.initial
        var bytes: [UInt8] = []
        for _ in 0..<Int.random(in: 1...maxSteps, using: &rng) {
            let allowed = alphabet.filter { automaton.step(state, $0) >= 0 }
            if allowed.isEmpty { break }
            let b = allowed[Int.random(in: 0..<allowed.count, using: &rng)]
            bytes.append(b)
            state = automaton.step(state, b)
        }
        if let tail = automaton.shortestCompletion(from: state) { bytes += tail }
        out.append(String(decoding: bytes, as: UTF8.self))
    }
    return out
}

func schema(_ text: String) throws -> Schema { try Schema(text: text) }

/// For each supported keyword: texts the automaton must accept and reject, and agreement with the validator.
struct KeywordTests {
    struct Case: CustomStringConvertible, Sendable {
        var keyword: String
        var schema: String
        var valid: [String]
        var invalid: [String]
        /// Valid JSON the constraint still never generates (other member order, exponents).
        var stricter: [String] = []
        var description: String { keyword }
    }

    static let cases: [Case] = [
        Case(keyword: "type object / properties / required / additionalProperties",
             schema: #"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"],"additionalProperties":false}"#,
             valid: [#"{"b":1}"#, #"{"a":"x","b":2}"#, #"{"a": "x", "b": 2}"#, "{\n  \"b\": 3\n}", #"{"b":1,"a":"x"}"#],
             invalid: [#"{"a":"x"}"#, #"{"b":1,"c":2}"#, #"{"b":"1"}"#, #"{}"#, #"{"b":1,"b":2}"#, #"{"a":"x","a":"y","b":1}"#],
             stricter: [#"{"\u0062":1}"#]),
        Case(keyword: "type string", schema: #"{"type":"string"}"#,
             valid: [#""""#, #""héllo €""#, #""tab\tquote\"\u00e9""#], invalid: ["1", "\"a\u{01}\"", #""\x""#, "\"open"]),
        Case(keyword: "enum", schema: #"{"enum":["billing","outage",3,null]}"#,
             valid: [#""billing""#, "3", "null"], invalid: [#""bill""#, "4", #""Billing""#]),
        Case(keyword: "const", schema: #"{"const":"fixed"}"#, valid: [#""fixed""#], invalid: [#""fixe""#, #""fixedd""#]),
        Case(keyword: "pattern", schema: #"{"type":"string","pattern":"^INV-[0-9]{6}$"}"#,
             valid: [#""INV-004512""#], invalid: [#""INV-04512""#, #""inv-004512""#, #""INV-0045123""#]),
        Case(keyword: "pattern (unanchored)", schema: #"{"type":"string","pattern":"[0-9]+"}"#,
             valid: [#""a1b""#, #""42""#], invalid: [#""abc""#]),
        Case(keyword: "format date", schema: #"{"type":"string","format":"date"}"#,
             valid: [#""2026-11-23""#, #""2024-02-28""#], invalid: [#""2026-13-01""#, #""2026-04-31""#, #""26-11-23""#]),
        Case(keyword: "format date-time", schema: #"{"type":"string","format":"date-time"}"#,
             valid: [#""2026-11-23T15:04:05Z""#, #""2026-11-23T15:04:05.123+01:00""#], invalid: [#""2026-11-23 15:04:05Z""#, #""2026-11-23T25:00:00Z""#]),
        Case(keyword: "format email", schema: #"{"type":"string","format":"email"}"#,
             valid: [#""ana.silva@example.co.uk""#], invalid: [#""ana@""#, #""@x.com""#, #""a..b@x.com""#, #""a@x""#]),
        Case(keyword: "minLength / maxLength", schema: #"{"type":"string","minLength":2,"maxLength":3}"#,
             valid: [#""ab""#, #""abc""#, #""é€x""#], invalid: [#""a""#, #""abcd""#]),
        Case(keyword: "integer minimum / maximum", schema: #"{"type":"integer","minimum":-5,"maximum":120}"#,
             valid: ["0", "-5", "120", "7", "1.0", "-5.00"], invalid: ["121", "-6", "1.5", "007", "1.5e0", "2e2", "1.21e2", "120.5"],
             stricter: ["1e2"]),
        Case(keyword: "number minimum / maximum", schema: #"{"type":"number","minimum":0.5,"maximum":2}"#,
             valid: ["0.5", "1", "1.75", "2", "2.0"], invalid: ["0.49", "2.01", "-1", "3"]),
        Case(keyword: "boolean", schema: #"{"type":"boolean"}"#, valid: ["true", "false"], invalid: ["True", "1", "nul"]),
        Case(keyword: "null", schema: #"{"type":"null"}"#, valid: ["null"], invalid: ["\"null\"", "0"]),
        Case(keyword: "array items / minItems / maxItems", schema: #"{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}"#,
             valid: ["[1]", "[1,2,3]", "[1, 2]"], invalid: ["[]", "[1,2,3,4]", "[\"a\"]", "[1,]"]),
        Case(keyword: "anyOf", schema: #"{"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]}"#,
             valid: ["5", #""ab""#], invalid: [#""abc""#, "true"]),
        Case(keyword: "oneOf", schema: #"{"oneOf":[{"type":"object","properties":{"kind":{"const":"a"}},"required":["kind"]},{"type":"null"}]}"#,
             valid: [#"{"kind":"a"}"#, "null"], invalid: [#"{"kind":"b"}"#, "0"]),
        Case(keyword: "type list", schema: #"{"type":["string","null"],"maxLength":4}"#,
             valid: [#""abcd""#, "null"], invalid: [#""abcde""#, "1"]),
        Case(keyword: "$ref / $defs", schema: ##"{"$defs":{"id":{"type":"string","pattern":"^[A-Z]{2}$"}},"type":"object","properties":{"x":{"$ref":"#/$defs/id"}},"required":["x"]}"##,
             valid: [#"{"x":"AB"}"#], invalid: [#"{"x":"A"}"#, #"{"x":"abc"}"#]),
        Case(keyword: "$ref (recursive)", schema: ##"{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"]}},"$ref":"#/$defs/node"}"##,
             valid: [#"{"v":1,"next":null}"#, #"{"v":1,"next":{"v":2,"next":null}}"#], invalid: [#"{"v":1}"#, #"{"v":1,"next":{"v":2}}"#]),
    ]

    @Test("the automaton accepts valid and rejects invalid text, as the validator does", arguments: cases)
    func keyword(_ c: Case) throws {
        let s = try schema(c.schema)
        // With whitespace allowed between tokens, as when configured; the default compact form is tested below.
        let automaton = SchemaAutomaton(schema: s, maxWhitespace: 24)
        let compact = SchemaAutomaton(schema: s)
        for text in c.valid {
            // The compact automaton accepts a valid text exactly when it has no whitespace outside strings.
            if let parsed = try? JSONValue.parse(text), parsed.description == text { #expect(compact.accepts(text), "compact rejects \(text)") }
            if text.contains("\n") || text.contains(": ") { #expect(!compact.accepts(text), "compact accepts padded \(text)") }
            let violations = s.violations(of: try JSONValue.parse(text))
            #expect(violations.isEmpty, "validator rejects valid \(text): \(violations)")
            #expect(automaton.accepts(text), "automaton rejects valid \(text)")
        }
        for text in c.invalid {
            #expect(!automaton.accepts(text), "automaton accepts invalid \(text)")
            #expect(!s.accepts(text), "validator accepts invalid \(text)")
        }
        for text in c.stricter {
            #expect(s.accepts(text) && !automaton.accepts(text), "\(text)")
        }
    }

    @Test("random walks through the automaton always end in text that validates", arguments: cases)
    func randomWalksValidate(_ c: Case) throws {
        let s = try schema(c.schema)
        for automaton in [SchemaAutomaton(schema: s), SchemaAutomaton(schema: s, maxWhitespace: 24)] {
            for text in randomTexts(automaton, count: 150, seed: 7) {
                #expect(s.accepts(text), "\(c.keyword): generated \(text.debugDescription) does not validate")
            }
        }
    }

    @Test("an object with no declared members is any JSON object (json_object), and random walks through it validate")
    func anyObject() throws {
        let s = Schema.anyObject
        let automaton = SchemaAutomaton(schema: s)
        for text in [#"{}"#, #"{"a":1}"#, #"{"name":"Ana","tags":["x",{"k":null}],"n":-1.5,"ok":true}"#, #"{"é":"🇫🇷"}"#] {
            #expect(automaton.accepts(text), "\(text)")
            #expect(s.accepts(text))
        }
        for text in [#"[]"#, #""x""#, #"{"a"}"#, #"{"a":}"#, #"{,}"#, #"{"a":1,}"#, "null"] {
            #expect(!automaton.accepts(text), "\(text)")
        }
        let texts = randomTexts(automaton, count: 200, seed: 11)
        #expect(texts.contains { $0.count > 2 }, "random walks only produce {}")
        for text in texts {
            #expect(s.accepts(text), "generated \(text.debugDescription) does not validate")
            #expect((try? JSONValue.parse(text)).map { if case .object = $0 { true } else { false } } == true)
        }
    }
}

struct SchemaErrorTests {
    @Test("keywords JSON Schema does not define are annotations; defined keywords compile (exactly, or completed by the validator)",
          arguments: [
            // Keywords from MaskBench's failure counts: draft-04 id, links, vendor extensions, misspellings.
            ##"{"id":"http://x/y.json","self":{"href":"/a"},"_format":"x","x-kubernetes-preserve-unknown-fields":true,"readonly":true,"example":1,"name":"n","links":[],"type":"string"}"##,
            ##"{"type":"object","properties":{"n":{"type":"integer","multipleOf":5}}}"##,
            ##"{"type":"string","contentEncoding":"base64","contentMediaType":"image/png"}"##,
            ##"{"type":"array","items":{"type":"string"},"uniqueItems":true}"##,
            ##"{"type":"object","patternProperties":{"^x":{"type":"string"}}}"##,
            ##"{"allOf":[{"type":"string"}]}"##,
            ##"{"type":"integer","exclusiveMinimum":0}"##,
            ##"{"type":"array"}"##,
            ##"{}"##,
            ##"true"##,
            ##"{"type":"object","additionalProperties":{"type":"string"}}"##,
            ##"{"type":"integer","minLength":2}"##,
          ])
    func compiles(_ schemaText: String) throws {
        let s = try Schema(text: schemaText)
        #expect(SchemaAutomaton(schema: s).shortestCompletion(from: SchemaAutomaton(schema: s).initial) != nil)
    }

    @Test("malformed schemas, patterns outside the subset and schemas with no finite value are errors with their location")
    func malformed() {
        let cases: [(String, String, String)] = [
            (##"{"type":"string","pattern":"(?=a)b"}"##, "#/pattern", "lookaround"),
            (##"{"type":"string","pattern":"(a)\\1"}"##, "#/pattern", "backreference"),
            (##"{"type":"object","properties":{"a":{"$ref":"#/$defs/missing"}}}"##, "#/properties/a/$ref", "points to nothing"),
            (##"{"type":"string","minLength":5,"maxLength":2}"##, "#", "no finite JSON value"),
            (#"{"type":"string","pattern":"^a$","minLength":3}"#, "#", "no finite JSON value"),
            (##"{"type":"thing"}"##, "#/type", "unknown type"),
            (##"{"type":"integer","minimum":"0"}"##, "#/minimum", "must be a number"),
            (##"{"type":"array","maxItems":-1}"##, "#/maxItems", "non-negative integer"),
            // The issue's example: a required member that contains itself has no finite instance.
            (##"{"$defs":{"n":{"type":"object","properties":{"c":{"$ref":"#/$defs/n"}},"required":["c"],"additionalProperties":false}},"$ref":"#/$defs/n"}"##,
             "#", "a required cycle: /c"),
            (##"false"##, "#", "no finite JSON value"),
          ]
        for (text, path, reason) in cases {
            do {
                _ = try Schema(text: text)
                Issue.record("accepted \(text)")
            } catch let e as SchemaError {
                #expect(e.path == path && e.reason.contains(reason), "\(text): \(e)")
            } catch {
                Issue.record("\(text): unexpected \(error)")
            }
        }
    }
}

struct JSONValueTests {
    @Test("the parser accepts RFC 8259 JSON and rejects the rest with an offset")
    func parsing() throws {
        #expect(try JSONValue.parse(#" {"a":[1,2.5,-3e2,true,null,"\u00e9\ud83d\ude00"]} "#)["a"] ==
                .array([.number(1, text: "1"), .number(2.5, text: "2.5"), .number(-300, text: "-3e2"), .bool(true), .null, .string("é😀")]))
        for bad in ["{", "[1,]", "01", "\"\\x\"", "{\"a\" 1}", "1 2", "\"\u{01}\"", "nul", "\"\\ud800\""] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
        #expect(JSONValue.string("a\"\n").description == #""a\"\n""#)
    }
}
