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
        /// Valid JSON the constraint still never generates (escaped member names, exponents).
        var stricter: [String] = []
        /// Valid JSON in a spelling generation never writes (declared members out of declaration order, needless `\u` escapes): accepted only with ``SchemaAutomaton/Spelling/any``.
        var otherSpelling: [String] = []
        var description: String { keyword }
    }

    static let cases: [Case] = [
        Case(keyword: "type object / properties / required / additionalProperties",
             schema: #"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"],"additionalProperties":false}"#,
             valid: [#"{"b":1}"#, #"{"a":"x","b":2}"#, #"{"a": "x", "b": 2}"#, "{\n  \"b\": 3\n}"],
             invalid: [#"{"a":"x"}"#, #"{"b":1,"c":2}"#, #"{"b":"1"}"#, #"{}"#, #"{"b":1,"b":2}"#, #"{"a":"x","a":"y","b":1}"#],
             stricter: [#"{"\u0062":1}"#], otherSpelling: [#"{"b":1,"a":"x"}"#]),
        Case(keyword: "type string", schema: #"{"type":"string"}"#,
             valid: [#""""#, #""héllo €""#, #""tab\tquote\"\u001fé""#], invalid: ["1", "\"a\u{01}\"", #""\x""#, "\"open"],
             otherSpelling: [#""tab\tquote\"\u00e9""#, #""a\/b""#]),
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
        // The keywords the JSONSchemaBench issue counted, each with the valid text that was rejected before.
        Case(keyword: "unknown keywords are annotations", schema: ##"{"id":"x","self":{"href":"/"},"_format":"date","x-kubernetes-int-or-string":true,"readonly":true,"type":"string"}"##,
             valid: [#""any""#], invalid: ["1"]),
        Case(keyword: "additionalProperties default, true and schema", schema: #"{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string","maxLength":3}}"#,
             valid: [#"{"a":1,"zz":"abc"}"#, #"{"zz":"abc","a":1}"#, #"{"é🇫🇷":"x"}"#, "{}"], invalid: [#"{"zz":"abcd"}"#, #"{"a":"1"}"#, #"{"zz":1}"#]),
        Case(keyword: "patternProperties / propertyNames / min/maxProperties", schema: #"{"type":"object","patternProperties":{"^x-":{"type":"integer"},"n$":{"type":"integer","minimum":5}},"additionalProperties":false,"propertyNames":{"maxLength":6},"minProperties":1,"maxProperties":2}"#,
             valid: [#"{"x-a":1}"#, #"{"x-n":5,"an":9}"#], invalid: ["{}", #"{"x-n":4}"#, #"{"b":1}"#, #"{"x-abcdef":1}"#, #"{"x-a":1,"x-b":2,"x-c":3}"#, #"{"x-a":"1"}"#]),
        Case(keyword: "dependentRequired / dependencies", schema: #"{"type":"object","properties":{"card":{"type":"string"},"billing":{"type":"string"}},"dependentRequired":{"card":["billing"]}}"#,
             valid: ["{}", #"{"billing":"x"}"#, #"{"card":"1","billing":"x"}"#], invalid: [#"{"card":"1"}"#],
             otherSpelling: [#"{"billing":"x","card":"1"}"#, #"{"billing":"x","other":1}"#]),
        // In declaration order a member may not be skipped when it is required or a written member needs it.
        Case(keyword: "dependentRequired backwards, required after optional members", schema: #"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"},"d":{"type":"integer"}},"required":["c"],"dependentRequired":{"b":["a"],"d":["b"]},"additionalProperties":false}"#,
             valid: [#"{"c":1}"#, #"{"a":1,"b":2,"c":3,"d":4}"#, #"{"a":1,"c":3}"#], invalid: [#"{"b":2,"c":3}"#, #"{"c":3,"d":4}"#, #"{"a":1}"#],
             otherSpelling: [#"{"c":3,"a":1}"#, #"{"b":2,"c":3,"a":1}"#]),
        Case(keyword: "prefixItems / items false / additionalItems", schema: #"{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}"#,
             valid: ["[]", #"["a"]"#, #"["a",1]"#], invalid: [#"["a",1,2]"#, "[1]", #"["a","b"]"#]),
        Case(keyword: "draft-04 items array / additionalItems / boolean exclusive bounds",
             schema: #"{"$schema":"http://json-schema.org/draft-04/schema#","type":"array","items":[{"type":"integer","minimum":0,"exclusiveMinimum":true}],"additionalItems":{"type":"boolean"}}"#,
             valid: ["[1]", "[1,true,false]", "[]"], invalid: ["[0]", "[1,1]", "[1.0]"]),
        Case(keyword: "exclusiveMinimum / exclusiveMaximum / multipleOf", schema: #"{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1,"multipleOf":0.25}"#,
             valid: ["0.25", "0.5", "0.75", "2.5e-1"], invalid: ["0", "1", "0.3", "1.25"]),
        Case(keyword: "integer multipleOf", schema: #"{"type":"integer","multipleOf":7,"minimum":10,"maximum":30}"#,
             valid: ["14", "21", "28"], invalid: ["7", "15", "35"]),
        Case(keyword: "number with exponents", schema: #"{"type":"number","minimum":0}"#,
             valid: ["1.256e-06", "1E+3", "0.5", "12e0"], invalid: ["-1e-3", "1e", "1.e3"]),
        Case(keyword: "uniqueItems over fixed values", schema: #"{"type":"array","items":{"enum":["a","b","c"]},"uniqueItems":true}"#,
             valid: ["[]", #"["a","c"]"#, #"["c","b","a"]"#], invalid: [#"["a","a"]"#, #"["b","c","b"]"#]),
        Case(keyword: "uniqueItems over free values (the validator completes)", schema: #"{"type":"array","items":{"type":"integer"},"uniqueItems":true,"maxItems":3}"#,
             valid: ["[]", "[1,2]"], invalid: ["[1,1]", "[1,2,1]"]),
        Case(keyword: "allOf and siblings beside $ref / anyOf", schema: ##"{"$defs":{"base":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}},"allOf":[{"$ref":"#/$defs/base"},{"properties":{"name":{"type":"string"}},"required":["name"]}],"anyOf":[{"properties":{"id":{"maximum":10}}},{"properties":{"name":{"const":"root"}}}]}"##,
             valid: [#"{"id":1,"name":"x"}"#, #"{"id":50,"name":"root"}"#], invalid: [#"{"id":50,"name":"x"}"#, #"{"id":1}"#, #"{"name":"x"}"#]),
        // Canonical names need no escape for '/' (`\/` is another spelling of the same name).
        Case(keyword: "declared names with '/' and '\"'", schema: #"{"properties":{"a/b":{"type":"integer"},"say \"hi\"":{}},"additionalProperties":false}"#,
             valid: [#"{"a/b":1}"#, #"{"say \"hi\"":1}"#], invalid: [#"{"a/b":"x"}"#, #"{"a\b":1}"#],
             otherSpelling: [#"{"a\/b":1}"#]),
        Case(keyword: "not", schema: #"{"type":"object","properties":{"kind":{"type":"string","not":{"enum":["admin","root"]}}},"not":{"required":["password"]}}"#,
             valid: [#"{"kind":"user"}"#, "{}", #"{"kind":"Admin"}"#], invalid: [#"{"kind":"admin"}"#, #"{"password":"x"}"#]),
        // propertyNames applies to declared names too (a declared name it refuses can never be written).
        Case(keyword: "propertyNames over declared names", schema: #"{"properties":{"abcdef":{},"ab":{"type":"integer"},"name":{}},"propertyNames":{"maxLength":4,"pattern":"^[a-z]+$"},"additionalProperties":false}"#,
             valid: [#"{"ab":1}"#, #"{"ab":1,"name":2}"#, "{}"], invalid: [#"{"abcdef":1}"#, #"{"ab":"x"}"#, #"{"zz":1}"#]),
        // The complement of an over-approximation would be too strict (here: no value at all), so it is not taken.
        Case(keyword: "not over a not (the validator completes)", schema: #"{"type":"object","properties":{"bar":{}},"not":{"not":{"properties":{"bar":{"type":"integer"}},"required":["bar"]}}}"#,
             valid: [#"{"bar":2}"#, #"{"bar":-7}"#], invalid: [#"{"bar":"x"}"#, "{}", "[]"]),
        Case(keyword: "boolean and any-value schemas", schema: #"{"type":"object","properties":{"free":true,"none":false,"any":{}},"required":["free"]}"#,
             valid: [#"{"free":[1,{"a":null}]}"#, #"{"free":"x","any":{"k":[true]}}"#], invalid: [#"{"free":1,"none":1}"#, "{}"]),
        Case(keyword: "oneOf with overlapping branches (the validator completes)", schema: #"{"oneOf":[{"type":"integer"},{"type":"number","minimum":10}]}"#,
             valid: ["5", "10.5"], invalid: ["12", "1.5"]),
        Case(keyword: "escapes and surrogate pairs in strings and enum values", schema: #"{"type":"object","properties":{"port":{"enum":["Sjöfart","Ελλάδα"]},"note":{"type":"string","maxLength":3}}}"#,
             valid: [#"{"port":"Sjöfart"}"#, #"{"note":"😀é"}"#, #"{"note":"\n\u0007"}"#],
             invalid: [#"{"port":"Sjofart"}"#, #"{"note":"\ud83d"}"#, #"{"note":"\ude00"}"#, #"{"note":"abcd"}"#],
             otherSpelling: [#"{"port":"Sj\u00f6fart"}"#, #"{"port":"\u0395\u03bb\u03bb\u03ac\u03b4\u03b1"}"#, #"{"note":"\ud83d\ude00"}"#, #"{"note":"😀\u00e9"}"#]),
        Case(keyword: "strings compare by Unicode scalars (combining marks, zero-width, look-alikes)", schema: #"{"enum":["é","नमस्ते","a"]}"#,
             valid: [#""é""#, #""नमस्ते""#, #""a""#], invalid: ["\"e\u{301}\"", "\"a\u{200B}\"", "\"а\""]),
        Case(keyword: "leap days under format date", schema: #"{"type":"string","format":"date"}"#,
             valid: [#""2024-02-29""#, #""2000-02-29""#], invalid: [#""2023-02-29""#, #""1900-02-29""#, #""2024-02-30""#]),
        Case(keyword: "formats: time, uuid, ipv4, ipv6, hostname, uri, uri-reference, duration", schema: #"{"type":"object","properties":{"t":{"format":"time"},"u":{"format":"uuid"},"i":{"format":"ipv4"},"j":{"format":"ipv6"},"h":{"format":"hostname"},"r":{"format":"uri"},"f":{"format":"uri-reference"},"d":{"format":"duration"},"n":{"type":"integer","format":"int32"}},"additionalProperties":false}"#,
             valid: [#"{"t":"10:00:00Z","u":"123e4567-e89b-12d3-a456-426614174000","i":"10.0.0.1","j":"::1","h":"example.com","r":"https://x.org/a?b#c","f":"../a","d":"P1DT2H","n":5}"#, #"{"j":"2001:db8::8a2e:370:7334"}"#],
             invalid: [#"{"t":"25:00:00Z"}"#, #"{"u":"123"}"#, #"{"i":"256.0.0.1"}"#, #"{"j":"1::2::3"}"#, #"{"h":"-a.com"}"#, #"{"r":"no scheme"}"#, #"{"f":"://"}"#, #"{"d":"P"}"#]),
        Case(keyword: "$ref through an array index", schema: ##"{"$defs":{"node":{"type":"object","properties":{"left":{"anyOf":[{"type":"integer"},{"type":"null"}]}}}},"type":"object","properties":{"x":{"$ref":"#/$defs/node/properties/left/anyOf/0"}}}"##,
             valid: [#"{"x":3}"#], invalid: [#"{"x":null}"#]),
        Case(keyword: "$ref (recursive)", schema: ##"{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"]}},"$ref":"#/$defs/node"}"##,
             valid: [#"{"v":1,"next":null}"#, #"{"v":1,"next":{"v":2,"next":null}}"#], invalid: [#"{"v":1}"#, #"{"v":1,"next":{"v":2}}"#]),
    ]

    @Test("the automaton accepts valid and rejects invalid text, as the validator does", arguments: cases)
    func keyword(_ c: Case) throws {
        let s = try schema(c.schema)
        // With whitespace allowed between tokens, as when configured; the default compact form is tested below.
        let automaton = SchemaAutomaton(schema: s, maxWhitespace: 24)
        let compact = SchemaAutomaton(schema: s)
        let anySpelling = SchemaAutomaton(schema: s, maxWhitespace: 24, spelling: .any)
        for text in c.valid {
            // The compact automaton accepts a valid text exactly when it has no whitespace outside strings.
            if let parsed = try? JSONValue.parse(text), parsed.description == text { #expect(compact.accepts(text), "compact rejects \(text)") }
            if text.contains("\n") || text.contains(": ") { #expect(!compact.accepts(text), "compact accepts padded \(text)") }
            let violations = s.violations(of: try JSONValue.parse(text))
            #expect(violations.isEmpty, "validator rejects valid \(text): \(violations)")
            #expect(automaton.accepts(text), "automaton rejects valid \(text)")
            #expect(anySpelling.accepts(text), "any-spelling automaton rejects valid \(text)")
        }
        for text in c.otherSpelling {
            #expect(s.accepts(text) && anySpelling.accepts(text) && !automaton.accepts(text), "\(text)")
        }
        for text in c.invalid {
            #expect(!automaton.accepts(text), "automaton accepts invalid \(text)")
            #expect(!anySpelling.accepts(text), "any-spelling automaton accepts invalid \(text)")
            #expect(!s.accepts(text), "validator accepts invalid \(text)")
        }
        for text in c.stricter {
            #expect(s.accepts(text) && !automaton.accepts(text), "\(text)")
        }
    }

    @Test("random walks through the automaton always end in text that validates", arguments: cases)
    func randomWalksValidate(_ c: Case) throws {
        let s = try schema(c.schema)
        #expect(s.approximations.isEmpty == !c.keyword.contains("the validator completes"), "\(s.approximations)")
        for automaton in [SchemaAutomaton(schema: s), SchemaAutomaton(schema: s, maxWhitespace: 24), SchemaAutomaton(schema: s, spelling: .any)] {
            var invalid = 0
            for text in randomTexts(automaton, count: 150, seed: 7) {
                if s.approximations.isEmpty {
                    // Exact: every walk ends in a valid text.
                    #expect(s.accepts(text), "\(c.keyword): generated \(text.debugDescription) does not validate")
                } else {
                    // Over-approximated: the automaton's walks parse, and its acceptance is the validator's.
                    #expect((try? JSONValue.parse(text)) != nil, "\(text.debugDescription)")
                    #expect(automaton.accepts(text) == s.accepts(text))
                    if !s.accepts(text) { invalid += 1 }
                }
            }
            if !s.approximations.isEmpty { #expect(invalid > 0, "the random walks never exercise the validator's part") }
        }
    }

    @Test("nesting stops at the depth limit without a dead end: every prefix the automaton accepts can still be completed")
    func depthLimitHasNoDeadEnd() throws {
        // MaskBench Handwritten/dep1: required members and any values, nested by the model past the limit.
        let s = try schema(#"{"type": "object", "allOf": [{"dependencies": {"a": ["b", "c"], "b": ["d"]}}, {"required": ["a"]}]}"#)
        let automaton = SchemaAutomaton(schema: s)
        var text = #"{"a":"#
        var deepest = 0
        while automaton.step(automaton.initial, (text + #"[{"x":"#).utf8) >= 0 {
            text += #"[{"x":"#
            deepest += 1
        }
        // The deepest prefix it accepts: a value can still start and every open frame close.
        let state = automaton.step(automaton.initial, text.utf8)
        let tail = try #require(automaton.shortestCompletion(from: state), "no completion after \(text)")
        #expect(s.accepts(text + String(decoding: tail, as: UTF8.self)))
        #expect(deepest >= 20 && deepest < 30, "\(deepest)")
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

/// Every prefix the automaton accepts can still be completed: the states reachable over an alphabet of structural
/// bytes, short names and a few non-ASCII bytes, each checked for a completion. Each schema is one a review found a
/// dead end in (the automaton let a model write itself into a corner), kept as a regression.
struct DeadEndTests {
    static let schemas: [String] = [
        // minProperties with optional members: after "c" (the last declared) too few members would be left.
        #"{"properties":{"a":{},"b":{},"c":{}},"minProperties":2}"#,
        // A required member that depends on one declared before a member already written.
        #"{"properties":{"a":{},"c":{},"b":{}},"required":["b"],"dependentRequired":{"b":["a"]}}"#,
        // A self-dependency, and transitive dependencies running backwards through declaration order.
        #"{"properties":{"a":{},"b":{}},"required":["b"],"dependentRequired":{"b":["b","a"]}}"#,
        #"{"properties":{"a":{},"x":{},"c":{}},"dependentRequired":{"x":["c"],"c":["a"]}}"#,
        // maxProperties leaves no room for an undeclared member beside the required one.
        #"{"properties":{"a":{},"b":{}},"required":["b"],"maxProperties":1,"additionalProperties":true}"#,
        #"{"properties":{"a":{},"b":{}},"minProperties":1,"maxProperties":2,"additionalProperties":{"type":"integer"}}"#,
        // A declared non-ASCII name beside patterns: a lead byte of another character is not a way on.
        #"{"properties":{"é":{"type":"integer"}},"patternProperties":{"^x":{}},"additionalProperties":false}"#,
        // Cycles through references that need nesting to finish.
        ##"{"$defs":{"a":{"type":"object","properties":{"b":{"$ref":"#/$defs/b"}},"required":["b"]},"b":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"array","minItems":1,"items":{"$ref":"#/$defs/b"}},{"type":"integer"}]}},"$ref":"#/$defs/a"}"##,
    ]

    @Test("no prefix the automaton accepts is a dead end", arguments: schemas)
    func noDeadEnd(_ text: String) throws {
        let s = try schema(text)
        let alphabet = Array("{}[]\",:abcxé€1".utf8)
        for automaton in [SchemaAutomaton(schema: s), SchemaAutomaton(schema: s, spelling: .any)] {
            var prefixes: [Int32: [UInt8]] = [automaton.initial: []]
            var queue = [automaton.initial]
            var i = 0
            while i < queue.count && prefixes.count < 400 {
                let state = queue[i]; i += 1
                let prefix = prefixes[state]!
                if !automaton.isAccepting(state), automaton.shortestCompletion(from: state, limit: 20_000) == nil {
                    Issue.record("dead end after \(String(decoding: prefix, as: UTF8.self).debugDescription) (\(automaton.spelling))")
                    return
                }
                for b in Set(alphabet) {
                    let next = automaton.step(state, b)
                    if next >= 0, prefixes[next] == nil { prefixes[next] = prefix + [b]; queue.append(next) }
                }
            }
            #expect(queue.count > 20, "the walk explored too little")
            // Completions validate, but for undeclared names written twice, which the automaton does not remember
            // (``SchemaLogitProcessor`` refuses them with a ``MemberNameTracker``).
            for state in queue.prefix(200) {
                let bytes = prefixes[state]! + (automaton.shortestCompletion(from: state) ?? [])
                var tracker = MemberNameTracker()
                if tracker.feed(bytes) { #expect(s.accepts(String(decoding: bytes, as: UTF8.self)), "\(String(decoding: bytes, as: UTF8.self))") }
            }
        }
    }

    @Test("the depth limit checks each member's and item's shortest value, so nesting never ends in a dead end")
    func nestedMembersFitTheDepthLimit() throws {
        // "d" needs two more levels, "e" one: near the limit only what fits is offered.
        let s = try schema(##"{"$defs":{"n":{"type":"object","properties":{"c":{"$ref":"#/$defs/n"},"d":{"type":"array","minItems":1,"items":{"type":"array","minItems":1,"items":{"type":"integer"}}},"e":{"type":"array","items":{"type":"array","minItems":1,"items":{"type":"integer"}}}}}},"$ref":"#/$defs/n"}"##)
        let automaton = SchemaAutomaton(schema: s)
        var text = ""
        while automaton.step(automaton.initial, (text + #"{"c":"#).utf8) >= 0 { text += #"{"c":"# }
        var checked = 0
        for depth in 0...4 {
            let base = String(text.dropLast(5 * depth))
            for tail in [#"{"d":"#, #"{"d":["#, #"{"d":[["#, #"{"e":"#, #"{"e":["#, #"{"e":[[1],"#, #"{"e":[[1],["#, "{", #"{"c":{"#] {
                let state = automaton.step(automaton.initial, (base + tail).utf8)
                guard state >= 0 else { continue }
                checked += 1
                let completion = try #require(automaton.shortestCompletion(from: state), "dead end after \(depth) levels less, \(tail)")
                #expect(s.accepts(base + tail + String(decoding: completion, as: UTF8.self)))
            }
        }
        #expect(checked > 20, "\(checked)")
        // At the deepest level an empty object is all that fits.
        #expect(automaton.step(automaton.initial, (text + "{}").utf8) >= 0)
        #expect(automaton.step(automaton.initial, (text + #"{"d""#).utf8) < 0)
    }
}

struct MemberNameTrackerTests {
    @Test("the name tracker reads a whole token even when it repeats a name, so what follows is tracked right")
    func repeatThenContinue() {
        var tracker = MemberNameTracker()
        var fresh = false
        fresh = tracker.feed(Array(#"{"a":1,"#.utf8))
        #expect(fresh)
        // One token repeats "a" and opens a nested object and its first name.
        fresh = tracker.feed(Array(#""a":{"x"#.utf8))
        #expect(!fresh)
        let open = tracker.openName
        #expect(open?.prefix == Array("x".utf8) && open?.used.isEmpty == true, "\(String(describing: open))")
        fresh = tracker.feed(Array(#"":1,"\u0078"#.utf8))
        #expect(fresh)
        fresh = tracker.feed(Array(#"""#.utf8))
        #expect(!fresh, "\\u0078 is x again")
        // Names compare by scalars: a combining sequence is not its precomposed form.
        fresh = tracker.feed(Array(":2,\"e\u{301}\":3,\"é\":4}}".utf8))
        #expect(fresh)
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
            // MaskBench Synthesized: an enum under allOf with a double not.
            ##"{"allOf": [{"enum": [{"bar": 2, "foo": "baz"}]}, {"not": {"not": {"allOf": [{"properties": {"bar": {"type": "integer"}}, "required": ["bar"]}, {"properties": {"foo": {"type": "string"}}, "required": ["foo"]}]}}}]}"##,
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
