import Crypto
import Foundation

/// A JSON Schema keyword this engine cannot honour, or a schema that is malformed, with where it was found.
public struct SchemaError: Error, CustomStringConvertible, Equatable, Sendable {
    /// JSON Pointer of the schema location (`#/properties/invoice_id/pattern`).
    public var path: String
    /// What is wrong and what to do.
    public var reason: String
    public var description: String { "schema \(path): \(reason)" }
}

/// String formats the constraint and the validator both enforce, each defined by one pattern in the documented
/// subset (so generation and validation agree). Other formats are annotations, as JSON Schema 2020-12 allows.
public enum StringFormat: String, Sendable, CaseIterable {
    case date, dateTime = "date-time", time, duration, email, hostname, ipv4, ipv6, uuid, uri, iri
    case uriReference = "uri-reference", iriReference = "iri-reference", uriTemplate = "uri-template"
    case jsonPointer = "json-pointer", relativeJSONPointer = "relative-json-pointer"

    /// The pattern that defines the format (RFC 3339 full-date, date-time and full-time with leap years; RFC 5321
    /// dot-atom addresses; RFC 1123 host names; RFC 2673 dotted quads; RFC 4291 addresses (RFC 3986's grammar);
    /// RFC 4122 UUIDs; RFC 3986 URIs and URI references, checked for their character set and scheme).
    var pattern: String {
        switch self {
        case .date: return "^" + Self.fullDate + "$"
        case .dateTime: return "^" + Self.fullDate + "[Tt]" + Self.fullTime + "$"
        case .time: return "^" + Self.fullTime + "$"
        case .email:
            return "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@" + Self.label + "(\\." + Self.label + ")+$"
        case .hostname: return "^" + Self.label + "(\\." + Self.label + ")*$"
        case .ipv4: return "^" + Self.quad + "$"
        case .ipv6:
            let h = "[0-9A-Fa-f]{1,4}", ls32 = "(\(h):\(h)|\(Self.quad))"
            let forms = ["(\(h):){6}\(ls32)", "::(\(h):){5}\(ls32)", "(\(h))?::(\(h):){4}\(ls32)",
                         "((\(h):){0,1}\(h))?::(\(h):){3}\(ls32)", "((\(h):){0,2}\(h))?::(\(h):){2}\(ls32)",
                         "((\(h):){0,3}\(h))?::\(h):\(ls32)", "((\(h):){0,4}\(h))?::\(ls32)", "((\(h):){0,5}\(h))?::\(h)",
                         "((\(h):){0,6}\(h))?::"]
            return "^(" + forms.joined(separator: "|") + ")$"
        case .uuid: return "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        case .uri: return "^[A-Za-z][A-Za-z0-9+.-]*:" + Self.uriCharacters + "$"
        case .uriReference: return "^([A-Za-z][A-Za-z0-9+.-]*:" + Self.uriCharacters + "|" + Self.firstSegment + "([/?#]" + Self.uriCharacters + ")?)$"
        case .iri: return "^[A-Za-z][A-Za-z0-9+.-]*:" + Self.iriCharacters + "$"
        case .iriReference: return "^([A-Za-z][A-Za-z0-9+.-]*:" + Self.iriCharacters + "|" + Self.firstSegment + "([/?#]" + Self.iriCharacters + ")?)$"
        case .duration:
            let time = "T([0-9]+H([0-9]+M([0-9]+S)?)?|[0-9]+M([0-9]+S)?|[0-9]+S)"
            return "^P((([0-9]+D|[0-9]+M([0-9]+D)?|[0-9]+Y([0-9]+M([0-9]+D)?)?)(\(time))?)|\(time)|[0-9]+W)$"
        case .uriTemplate:
            let varchar = "([A-Za-z0-9_]|%[0-9A-Fa-f]{2})"
            let varspec = "\(varchar)(\\.?\(varchar))*(:[1-9][0-9]{0,3}|\\*)?"
            let literal = "([^\\u0000-\\u0020\"'%<>\\\\^`{|}\\u007F]|%[0-9A-Fa-f]{2})"
            return "^(\(literal)|\\{[+#./;?&=,!@|]?\(varspec)(,\(varspec))*\\})*$"
        case .jsonPointer: return "^(/([^~/]|~[01])*)*$"
        case .relativeJSONPointer: return "^(0|[1-9][0-9]*)(#|(/([^~/]|~[01])*)*)$"
        }
    }

    /// The longest value the format allows, in scalars (RFC 1123 host names: 253; RFC 5321 addresses: 254).
    var maxLength: Int? {
        switch self {
        case .hostname: return 253
        case .email: return 254
        default: return nil
        }
    }

    /// Whether `s` is a valid value of the format.
    func accepts(_ s: String) -> Bool {
        if let m = maxLength, s.unicodeScalars.count > m { return false }
        return Self.compiled(self).matches(s)
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [StringFormat: Pattern] = [:]

    /// The format's pattern, compiled once per process (matching is serialised: the pattern's states grow lazily).
    private static func compiled(_ f: StringFormat) -> PatternMatcherBox {
        lock.lock()
        defer { lock.unlock() }
        if cache[f] == nil { cache[f] = try! Pattern(f.pattern) }
        return PatternMatcherBox(pattern: cache[f]!, lock: lock)
    }

    private static let quad = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
    private static let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    private static let uriCharacters = "([A-Za-z0-9._~!$&'()*+,;=:@/?#\\[\\]-]|%[0-9A-Fa-f]{2})*"
    /// A relative reference's first path segment: no ':' (RFC 3986 path-noscheme), no '/', '?' or '#'.
    private static let firstSegment = "([A-Za-z0-9._~!$&'()*+,;=@\\u00A0-\\uD7FF\\uE000-\\uFFFD-]|%[0-9A-Fa-f]{2})*"
    /// RFC 3987: URI characters and any non-ASCII scalar outside the controls.
    private static let iriCharacters = "([A-Za-z0-9._~!$&'()*+,;=:@/?#\\[\\]\\u00A0-\\uD7FF\\uE000-\\uFFFD-]|[\u{10000}-\u{10FFFF}]|%[0-9A-Fa-f]{2})*"
    private static let fullTime = "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
    /// Days valid for each month; 29 February only in leap years (divisible by 4 and not by 100, or by 400).
    private static let fullDate = "([0-9]{4}-(02-(0[1-9]|1[0-9]|2[0-8])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01]))"
        + "|([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)-02-29)"
}

/// A format pattern matched under the process-wide lock.
private struct PatternMatcherBox {
    let pattern: Pattern
    let lock: NSLock
    func matches(_ s: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return pattern.matches(s)
    }
}

/// One node of a compiled schema.
enum SchemaNode: Sendable {
    struct Property: Sendable {
        var name: String
        var node: Int
        var required: Bool
    }
    struct ObjectShape: Sendable {
        /// Declared members in declaration order (generated in that order).
        var properties: [Property] = []
        /// Schema of members that are not declared and match no pattern; nil: none allowed.
        var additional: Int?
        /// `additionalProperties` was absent (JSON Schema's default, any value): the canonical spelling generation
        /// uses then writes no undeclared members on an object that declares some (see ``SchemaAutomaton/Spelling``).
        var additionalImplicit = false
        /// `patternProperties`: (index into ``Schema/patterns``, node).
        var patterns: [(pattern: Int, node: Int)] = []
        /// For members matching several patterns: the intersection's node, keyed by the bitmask of matching patterns.
        var patternMerges: [Int: Int] = [:]
        /// `propertyNames` as string constraints (patterns that must, or must not, match; length bounds).
        var names: StringShape?
        var minProperties = 0
        var maxProperties: Int?
        /// Declared member index → declared member indices it requires.
        var dependentRequired: [Int: [Int]] = [:]
    }
    struct StringShape: Sendable {
        /// Indices into ``Schema/patterns`` the value must match.
        var patterns: [Int] = []
        /// Indices into ``Schema/patterns`` the value must not match.
        var excluded: [Int] = []
        var minLength = 0
        var maxLength: Int?
    }
    struct NumberShape: Sendable {
        var integer = false
        /// Draft 4: an integer is a number written without fraction or exponent (`1.0` is not one).
        var integerSpelling = false
        var minimum: Double?
        var maximum: Double?
        /// The bounds as written (compared exactly; the doubles guide generation).
        var minimumText: String?
        var maximumText: String?
        var minimumExclusive = false
        var maximumExclusive = false
        /// `multipleOf` as JSON number text.
        var multipleOf: String?
    }
    case object(ObjectShape)
    case array(prefix: [Int], item: Int?, minItems: Int, maxItems: Int?, unique: Bool)
    case string(StringShape)
    /// A fixed set of scalar values: booleans, null, numbers (strings become patterns, objects and arrays shapes).
    case literal([JSONValue])
    case number(NumberShape)
    /// `exclusive` (oneOf): checked by the validator unless the branches are provably disjoint.
    case anyOf([Int], exclusive: Bool)
    /// A `$ref` to a compiled node.
    case reference(Int)
    /// No value (the schema `false`).
    case never
}

extension SchemaNode.NumberShape {
    /// Whether the JSON number `text` is a value of this shape, decided exactly on the decimal text.
    func admits(_ text: String) -> Bool {
        if integerSpelling && text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return false }
        if integer && !Decimals.isMultiple(text, of: "1") { return false }
        if let m = minimumText, let c = Decimals.compare(text, m), minimumExclusive ? c <= 0 : c < 0 { return false }
        if let m = maximumText, let c = Decimals.compare(text, m), maximumExclusive ? c >= 0 : c > 0 { return false }
        if let m = multipleOf, !Decimals.isMultiple(text, of: m) { return false }
        return true
    }
}

/// A JSON Schema compiled for constrained decoding, with an exact validator beside it.
///
/// Keywords JSON Schema does not define are annotations and are ignored, as the specification says; keywords it
/// defines are either compiled into the automaton exactly, compiled into a superset that the exact validator
/// completes at the end (``approximations``), or an error naming the keyword and its location.
public final class Schema: @unchecked Sendable {
    /// Keywords that constrain values, by the type they apply to, and what generation does with them.
    public static let supportedKeywords: [(keyword: String, appliesTo: String, meaning: String)] = [
        ("type", "any", "one type or a list of types"),
        ("enum / const", "any", "fixed JSON values (strings compared by Unicode scalars, numbers by value, any spelling)"),
        ("anyOf / oneOf", "any", "branches; oneOf's exclusivity is exact when branches are provably disjoint, otherwise checked by the validator"),
        ("allOf", "any", "intersected node by node (objects, arrays, strings, numbers, literals; anyOf/oneOf distributed)"),
        ("not", "any", "exact for types, required, patterns, enum/const; otherwise checked by the validator"),
        ("$ref / $defs / definitions / $id / $anchor", "any", "references inside the document (JSON Pointers, ids, anchors), recursion allowed"),
        ("true / false / {}", "any", "any value (bounded nesting) / no value"),
        ("properties / required", "object", "declared members, in any order (generation: declaration order)"),
        ("additionalProperties", "object", "true (the default), false, or a schema for undeclared members (generation writes them only when this or patternProperties is given)"),
        ("patternProperties / propertyNames", "object", "members by name pattern; constraints on every name"),
        ("minProperties / maxProperties", "object", "member count bounds"),
        ("dependentRequired / dependencies (arrays)", "object", "members required by a present member"),
        ("items / prefixItems / additionalItems", "array", "item schemas (2020-12 and draft-04 spellings)"),
        ("minItems / maxItems", "array", "item count bounds"),
        ("uniqueItems", "array", "exact for items from a fixed set of scalars; otherwise checked by the validator"),
        ("pattern", "string", "a regular expression in the documented subset (searched, as ECMA-262 does, unless anchored)"),
        ("format", "string", "date, date-time, time, duration, email, hostname, ipv4, ipv6, uuid, uri, uri-reference, iri, iri-reference, uri-template, json-pointer, relative-json-pointer asserted; regex checked by the validator; others are annotations"),
        ("minLength / maxLength", "string", "length bounds in Unicode scalars"),
        ("minimum / maximum / exclusiveMinimum / exclusiveMaximum", "number", "bounds (numbers, or draft-04 booleans)"),
        ("multipleOf", "number", "exact decimal divisibility"),
        ("contains / if / then / else / dependentSchemas / unevaluated*", "any", "checked by the validator; generation may leave them"),
    ]

    var nodes: [SchemaNode] = []

    /// Whether a string meets a string shape: length in Unicode scalars, every pattern matching, no excluded one.
    func admits(_ text: String, _ shape: SchemaNode.StringShape) -> Bool {
        let n = text.unicodeScalars.count
        return n >= shape.minLength && (shape.maxLength.map { n <= $0 } ?? true)
            && shape.patterns.allSatisfy { patterns[$0].matches(text) } && !shape.excluded.contains { patterns[$0].matches(text) }
    }
    var patterns: [Pattern] = []
    private(set) var root = 0
    /// The bounded any-value node.
    private(set) var anyNode = -1
    /// Where the automaton accepts a superset of the schema, with why; when non-empty, a text is complete only once
    /// the exact validator accepts it.
    public private(set) var approximations: [String] = []
    /// The schema text's SHA-256 (hex), the cache key for compiled constraints.
    public let digest: String
    /// The schema document.
    public let document: JSONValue
    /// The exact validator for the document.
    public let validator: JSONSchemaValidator

    /// Compiles schema text.
    public convenience init(text: String) throws {
        let document: JSONValue
        do { document = try JSONValue.parse(text) } catch {
            throw SchemaError(path: "#", reason: "the schema is not valid JSON (\(error))")
        }
        try self.init(document: document)
    }

    /// Compiles a parsed schema document.
    public init(document: JSONValue) throws {
        self.document = document
        digest = SHA256.hash(data: Data(document.description.utf8)).map { String(format: "%02x", $0) }.joined()
        validator = JSONSchemaValidator(document: document)
        var compiler = SchemaCompiler(schema: self, document: document)
        anyNode = compiler.anyValue()
        root = try compiler.compile(document, path: "#", base: JSONSchemaValidator.rootURI)
        approximations = compiler.approximations
        try compiler.checkTermination()
    }

    /// Follows references to a concrete node.
    func resolved(_ index: Int) -> Int {
        var i = index, hops = 0
        while case let .reference(target) = nodes[i], target >= 0, hops < nodes.count { i = target; hops += 1 }
        return i
    }

    /// Any JSON object (OpenAI's `json_object` response format).
    public static let anyObject: Schema = try! Schema(document: .object([("type", .string("object"))]))

    /// Member names of the root object (empty when the root is not an object).
    public var topLevelProperties: [String] {
        guard case let .object(shape) = nodes[resolved(root)] else { return [] }
        return shape.properties.map(\.name)
    }
}

/// Keywords JSON Schema (drafts 4 to 2020-12) defines that constrain a value. Everything else is an annotation.
let vocabulary: Set<String> = [
    "type", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef",
    "properties", "required", "additionalProperties", "patternProperties", "propertyNames", "minProperties", "maxProperties",
    "dependentRequired", "dependencies", "dependentSchemas", "unevaluatedProperties",
    "items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains",
    "unevaluatedItems",
    "pattern", "format", "minLength", "maxLength",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
]

struct SchemaCompiler {
    let schema: Schema
    let document: JSONValue
    let draft: SchemaDraft
    var refs: [String: Int] = [:]
    var approximations: [String] = []
    /// Approximations made so far, counting again each reuse of a reference whose schema holds one: a `not` over a
    /// schema that grew this count is not complemented (the complement of an over-approximation is too strict).
    var approximationCount = 0
    /// References whose schema holds an approximation.
    var inexactRefs: Set<String> = []
    var intersections: [Int64: Int] = [:]
    var complements: [Int: Int] = [:]
    var literalPatterns: [String: Int] = [:]
    var formatPatterns: [StringFormat: Int] = [:]
    var patternIndex: [String: Int] = [:]
    var nodeBudgetExceeded = false

    init(schema: Schema, document: JSONValue) {
        self.schema = schema
        self.document = document
        draft = SchemaDraft(uri: document["$schema"]?.stringValue)
    }

    mutating func add(_ node: SchemaNode) -> Int {
        schema.nodes.append(node)
        nodeBudgetExceeded = nodeBudgetExceeded || schema.nodes.count > 500_000
        return schema.nodes.count - 1
    }

    mutating func approximate(_ path: String, _ why: String) {
        approximationCount += 1
        if approximations.count < 50 { approximations.append(path + ": " + why) }
    }

    /// Any JSON value: string keys, values of any type (nesting is bounded by the automaton's depth).
    mutating func anyValue() -> Int {
        let value = add(.anyOf([], exclusive: false))
        var object = SchemaNode.ObjectShape()
        object.additional = value
        let o = add(.object(object))
        let a = add(.array(prefix: [], item: value, minItems: 0, maxItems: nil, unique: false))
        let s = add(.string(.init()))
        let n = add(.number(.init()))
        let l = add(.literal([.bool(true), .bool(false), .null]))
        schema.nodes[value] = .anyOf([o, a, s, n, l], exclusive: false)
        return value
    }

    var anyNode: Int { schema.anyNode }

    // MARK: - Schemas

    mutating func compile(_ value: JSONValue, path: String, base: String) throws -> Int {
        switch value {
        case .bool(true): return anyNode
        case .bool(false): return add(.never)
        case .object: break
        default: throw SchemaError(path: path, reason: "a schema must be a JSON object or a boolean")
        }
        guard case let .object(members) = value else { return anyNode }
        if nodeBudgetExceeded { throw SchemaError(path: path, reason: "the schema compiles to more than 500,000 nodes; simplify its allOf/not combinations") }
        var keys: [String: JSONValue] = [:]
        for m in members {
            guard keys[m.key] == nil else { throw SchemaError(path: path, reason: "keyword \(m.key) appears twice") }
            keys[m.key] = m.value
        }
        var base = base
        if let id = keys["$id"]?.stringValue ?? (draft == .draft4 ? keys["id"]?.stringValue : nil), !id.hasPrefix("#") {
            base = URIs.stripFragment(URIs.resolve(id, against: base))
        }
        // Before 2019-09 a $ref replaces its siblings.
        if draft < .draft2019, let ref = keys["$ref"] {
            return try reference(ref, path: path + "/$ref", base: base)
        }
        var parts: [Int] = []
        for keyword in ["$ref", "$dynamicRef", "$recursiveRef"] {
            if let ref = keys[keyword] { parts.append(try reference(ref, path: path + "/" + keyword, base: base)) }
        }
        if let all = keys["allOf"] {
            guard case let .array(list) = all, !list.isEmpty else { throw SchemaError(path: path + "/allOf", reason: "allOf must be a non-empty array of schemas") }
            for (i, s) in list.enumerated() { parts.append(try compile(s, path: path + "/allOf/\(i)", base: base)) }
        }
        for combinator in ["anyOf", "oneOf"] {
            guard let list = keys[combinator] else { continue }
            guard case let .array(branches) = list, !branches.isEmpty else {
                throw SchemaError(path: path + "/" + combinator, reason: "\(combinator) must be a non-empty array of schemas")
            }
            var indices: [Int] = []
            for (i, b) in branches.enumerated() { indices.append(try compile(b, path: path + "/\(combinator)/\(i)", base: base)) }
            let exclusive = combinator == "oneOf" && indices.count > 1
            if exclusive && !pairwiseDisjoint(indices) { approximate(path + "/oneOf", "branches may overlap; exactly-one is checked by the validator") }
            parts.append(add(.anyOf(indices, exclusive: exclusive)))
        }
        if let n = keys["not"] {
            let before = approximationCount
            let node = try compile(n, path: path + "/not", base: base)
            if approximationCount > before {
                approximate(path + "/not", "this not (over a schema that is itself only approximated) is checked by the validator")
                parts.append(anyNode)
            } else {
                parts.append(try complement(node, path: path + "/not"))
            }
        }
        for keyword in ["if", "contains", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems"] where keys[keyword] != nil {
            approximate(path + "/" + keyword, "\(keyword) is checked by the validator")
        }
        if case let .object(deps)? = keys["dependencies"], deps.contains(where: { if case .array = $0.value { false } else { true } }) {
            approximate(path + "/dependencies", "schema dependencies are checked by the validator")
        }
        // The local keywords first: their members' declaration order leads.
        parts.insert(try local(keys, path: path, base: base), at: 0)
        var node = parts[0]
        for p in parts.dropFirst() { node = try intersect(node, p, path: path) }
        return node
    }

    mutating func reference(_ ref: JSONValue, path: String, base: String) throws -> Int {
        guard let target = ref.stringValue else { throw SchemaError(path: path, reason: "$ref must be a string") }
        let absolute = URIs.resolve(target, against: base)
        if let known = refs[absolute] {
            if inexactRefs.contains(absolute) { approximationCount += 1 }
            return known
        }
        guard let (value, targetBase) = schema.validator.resolveReference(target, base: base) else {
            throw SchemaError(path: path, reason: "reference \(target) points to nothing in this document (references to other documents are not fetched)")
        }
        let placeholder = add(.reference(-1))
        refs[absolute] = placeholder
        let before = approximationCount
        let node = try compile(value, path: target, base: targetBase)
        if approximationCount > before { inexactRefs.insert(absolute) }
        schema.nodes[placeholder] = .reference(node)
        return placeholder
    }

    /// The keywords that apply to values of one type, as one node (an anyOf across the listed types).
    mutating func local(_ keys: [String: JSONValue], path: String, base: String) throws -> Int {
        let typed = keys.keys.filter { Self.typedKeywords.contains($0) }
        if keys["type"] == nil && typed.isEmpty && keys["enum"] == nil && keys["const"] == nil { return anyNode }
        if keys["type"] == nil && typed.isEmpty, let c = keys["const"] ?? keys["enum"] {
            if keys["const"] != nil { return try literals([c], path: path + "/const") }
            guard case let .array(list) = c else { throw SchemaError(path: path + "/enum", reason: "enum must be an array") }
            return try literals(list, path: path + "/enum")
        }
        var types: [String]
        if let t = keys["type"] { types = try typeNames(t, path: path) } else { types = ["object", "array", "string", "number", "boolean", "null"] }
        if types.contains("number") { types.removeAll { $0 == "integer" } }
        var nodes: [Int] = []
        for type in types { nodes.append(try compile(type: type, keys: keys, path: path, base: base)) }
        var node = nodes.count == 1 ? nodes[0] : add(.anyOf(nodes, exclusive: false))
        if let c = keys["const"] ?? keys["enum"] {
            let keyword = keys["const"] != nil ? "const" : "enum"
            var values: [JSONValue]
            if keyword == "const" { values = [c] } else {
                guard case let .array(list) = c else { throw SchemaError(path: path + "/enum", reason: "enum must be an array") }
                values = list
            }
            if keys["const"] != nil, case let .array(list)? = keys["enum"] { values = values.filter { v in list.contains { $0.sameValue(as: v) } } }
            node = try intersect(try literals(values, path: path + "/" + keyword), node, path: path)
        }
        return node
    }

    /// Keywords that constrain values of one type.
    static let typedKeywords: Set<String> = [
        "properties", "required", "additionalProperties", "patternProperties", "propertyNames", "minProperties", "maxProperties",
        "dependentRequired", "dependencies", "items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems",
        "pattern", "format", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    ]

    static let typeNames: Set<String> = ["object", "array", "string", "integer", "number", "boolean", "null"]

    func typeNames(_ value: JSONValue, path: String) throws -> [String] {
        let names: [String]
        switch value {
        case let .string(s): names = [s]
        case let .array(items):
            names = try items.map { item in
                guard case let .string(s) = item else { throw SchemaError(path: path + "/type", reason: "type entries must be strings") }
                return s
            }
        default: throw SchemaError(path: path + "/type", reason: "type must be a string or an array of strings")
        }
        for n in names where !Self.typeNames.contains(n) {
            throw SchemaError(path: path + "/type", reason: "unknown type '\(n)' (expected object, array, string, integer, number, boolean or null)")
        }
        return names
    }

    func count(_ keys: [String: JSONValue], _ key: String, path: String) throws -> Int? {
        guard let v = keys[key] else { return nil }
        guard v.isInteger, case let .number(d, _) = v, d >= 0 else {
            throw SchemaError(path: path + "/" + key, reason: "\(key) must be a non-negative integer")
        }
        return d > 1e9 ? Int(1e9) : Int(d)
    }

    mutating func compile(type: String, keys: [String: JSONValue], path: String, base: String) throws -> Int {
        switch type {
        case "object": return try object(keys, path: path, base: base)
        case "array": return try array(keys, path: path, base: base)
        case "string": return try string(keys, path: path)
        case "integer", "number":
            var shape = SchemaNode.NumberShape()
            shape.integer = type == "integer"
            shape.integerSpelling = shape.integer && draft == .draft4
            func bound(_ key: String) throws -> (Double, String)? {
                guard let v = keys[key] else { return nil }
                if case .bool = v, draft == .draft4 || key.hasPrefix("exclusive") { return nil }
                guard case let .number(d, text) = v else { throw SchemaError(path: path + "/" + key, reason: "\(key) must be a number") }
                return (d, text)
            }
            if let (d, t) = try bound("minimum") { shape.minimum = d; shape.minimumText = t }
            if let (d, t) = try bound("maximum") { shape.maximum = d; shape.maximumText = t }
            if keys["exclusiveMinimum"] == .bool(true) { shape.minimumExclusive = shape.minimum != nil }
            if keys["exclusiveMaximum"] == .bool(true) { shape.maximumExclusive = shape.maximum != nil }
            if let (x, t) = try bound("exclusiveMinimum"), shape.minimumText.map({ (Decimals.compare(t, $0) ?? 1) >= 0 }) ?? true {
                shape.minimum = x; shape.minimumText = t; shape.minimumExclusive = true
            }
            if let (x, t) = try bound("exclusiveMaximum"), shape.maximumText.map({ (Decimals.compare(t, $0) ?? -1) <= 0 }) ?? true {
                shape.maximum = x; shape.maximumText = t; shape.maximumExclusive = true
            }
            if let m = keys["multipleOf"] {
                guard case let .number(d, text) = m, d > 0 else { throw SchemaError(path: path + "/multipleOf", reason: "multipleOf must be a number above 0") }
                shape.multipleOf = text
            }
            return add(.number(shape))
        case "boolean": return add(.literal([.bool(false), .bool(true)]))
        default: return add(.literal([.null]))
        }
    }

    mutating func object(_ keys: [String: JSONValue], path: String, base: String) throws -> Int {
        var shape = SchemaNode.ObjectShape()
        var required: [String] = []
        if let r = keys["required"] {
            guard case let .array(items) = r else { throw SchemaError(path: path + "/required", reason: "required must be an array of names") }
            for item in items {
                guard case let .string(s) = item else { throw SchemaError(path: path + "/required", reason: "required must be an array of names") }
                if !required.contains(where: { $0.unicodeScalars.elementsEqual(s.unicodeScalars) }) { required.append(s) }
            }
        }
        if let p = keys["patternProperties"] {
            guard case let .object(members) = p else { throw SchemaError(path: path + "/patternProperties", reason: "patternProperties must be an object") }
            for m in members {
                let pattern = try patternIndex(m.key, path: path + "/patternProperties")
                shape.patterns.append((pattern, try compile(m.value, path: path + "/patternProperties/" + JSONSchemaValidator.token(m.key), base: base)))
            }
            guard shape.patterns.count <= 8 else {
                throw SchemaError(path: path + "/patternProperties", reason: "more than 8 patternProperties are not supported")
            }
        }
        if let a = keys["additionalProperties"] {
            let node = try compile(a, path: path + "/additionalProperties", base: base)
            if case .never = schema.nodes[node] { shape.additional = nil } else { shape.additional = node }
        } else {
            shape.additional = anyNode
            shape.additionalImplicit = true
        }
        if let p = keys["properties"] {
            guard case let .object(members) = p else { throw SchemaError(path: path + "/properties", reason: "properties must be an object") }
            for m in members {
                var node = try compile(m.value, path: path + "/properties/" + JSONSchemaValidator.token(m.key), base: base)
                for (pattern, patternNode) in shape.patterns where schema.patterns[pattern].matches(m.key) {
                    node = try intersect(node, patternNode, path: path + "/properties/" + JSONSchemaValidator.token(m.key))
                }
                shape.properties.append(.init(name: m.key, node: node, required: false))
            }
        }
        // Names that are required or that dependencies mention but that no property declares: declared here with
        // the schema undeclared members get (so they can be generated and tracked).
        var mentioned = required
        for key in ["dependentRequired", "dependencies"] {
            guard case let .object(deps)? = keys[key] else { continue }
            for d in deps {
                guard case let .array(names) = d.value else { continue }
                mentioned.append(d.key)
                mentioned.append(contentsOf: names.compactMap(\.stringValue))
            }
        }
        for name in mentioned where !shape.properties.contains(where: { $0.name.unicodeScalars.elementsEqual(name.unicodeScalars) }) {
            let node = try memberNode(shape, name, path: path)
            shape.properties.append(.init(name: name, node: node, required: false))
        }
        for i in shape.properties.indices where required.contains(where: { $0.unicodeScalars.elementsEqual(shape.properties[i].name.unicodeScalars) }) {
            shape.properties[i].required = true
            if case .never = schema.nodes[schema.resolved(shape.properties[i].node)] {
                throw SchemaError(path: path + "/required", reason: "required member '\(shape.properties[i].name)' is not allowed by the schema (no value fits it)")
            }
        }
        for key in ["dependentRequired", "dependencies"] {
            guard case let .object(deps)? = keys[key] else { continue }
            for d in deps {
                guard case let .array(names) = d.value, let i = shape.properties.firstIndex(where: { $0.name == d.key }) else { continue }
                shape.dependentRequired[i, default: []] += names.compactMap { n in shape.properties.firstIndex { $0.name == n.stringValue } }
            }
        }
        guard shape.properties.count < 4096 else { throw SchemaError(path: path + "/properties", reason: "more than 4,095 properties are not supported") }
        shape.minProperties = try count(keys, "minProperties", path: path) ?? 0
        shape.maxProperties = try count(keys, "maxProperties", path: path)
        if let names = keys["propertyNames"] {
            let node = try compile(names, path: path + "/propertyNames", base: base)
            shape.names = try nameShape(node, path: path + "/propertyNames")
        }
        // Members matching several patterns must satisfy each one's schema.
        if shape.patterns.count > 1 {
            for mask in 1..<(1 << shape.patterns.count) where mask.nonzeroBitCount > 1 {
                var node: Int?
                for (j, p) in shape.patterns.enumerated() where mask & (1 << j) != 0 {
                    node = try node.map { try intersect($0, p.node, path: path + "/patternProperties") } ?? p.node
                }
                shape.patternMerges[mask] = node
            }
        }
        return add(.object(shape))
    }

    /// The schema a member named `name` gets when it is not declared: its patterns' schemas, else additionalProperties.
    mutating func memberNode(_ shape: SchemaNode.ObjectShape, _ name: String, path: String) throws -> Int {
        let matching = shape.patterns.filter { schema.patterns[$0.pattern].matches(name) }
        if matching.isEmpty { return shape.additional ?? add(.never) }
        var node = matching[0].node
        for m in matching.dropFirst() { node = try intersect(node, m.node, path: path) }
        return node
    }

    /// `propertyNames` reduced to string constraints (names are strings, so other types drop out).
    mutating func nameShape(_ node: Int, path: String) throws -> SchemaNode.StringShape? {
        switch schema.nodes[schema.resolved(node)] {
        case let .string(s): return s
        case .never: return SchemaNode.StringShape(patterns: [literalPattern([])])
        case let .anyOf(branches, _):
            let strings = branches.compactMap { b -> SchemaNode.StringShape? in
                if case let .string(s) = schema.nodes[schema.resolved(b)] { return s } else { return nil }
            }
            if strings.count == 1 { return strings[0] }
            if strings.isEmpty { return SchemaNode.StringShape(patterns: [literalPattern([])]) }
            if schema.resolved(node) == schema.resolved(anyNode) { return nil }
            throw SchemaError(path: path, reason: "propertyNames with several string alternatives is not supported; use one pattern")
        default:
            return SchemaNode.StringShape(patterns: [literalPattern([])])
        }
    }

    mutating func array(_ keys: [String: JSONValue], path: String, base: String) throws -> Int {
        var prefix: [Int] = []
        var item: Int? = anyNode
        // 2020-12: prefixItems, then items for the rest. Earlier drafts: an items array, then additionalItems.
        var tuple: (String, [JSONValue])?
        var rest: (String, JSONValue)?
        if case let .array(list)? = keys["prefixItems"] {
            tuple = ("prefixItems", list)
            rest = keys["items"].map { ("items", $0) }
        } else if case let .array(list)? = keys["items"] {
            tuple = ("items", list)
            rest = keys["additionalItems"].map { ("additionalItems", $0) }
        } else {
            rest = keys["items"].map { ("items", $0) }
        }
        if let (keyword, list) = tuple {
            for (i, s) in list.enumerated() { prefix.append(try compile(s, path: path + "/\(keyword)/\(i)", base: base)) }
        }
        if let (keyword, s) = rest {
            let node = try compile(s, path: path + "/" + keyword, base: base)
            item = isNever(node) ? nil : node
        }
        let minItems = try count(keys, "minItems", path: path) ?? 0
        var maxItems = try count(keys, "maxItems", path: path)
        if item == nil { maxItems = min(maxItems ?? prefix.count, prefix.count) }
        var unique = keys["uniqueItems"] == .bool(true)
        if unique && (maxItems ?? 2) > 1, let fixedItem = item.map(fixedValues) ?? [], let fixedPrefix = Optional(prefix.map(fixedValues)),
           fixedPrefix.allSatisfy({ $0 != nil }) {
            // Items from fixed sets (enum strings included) become literals, so the array can track which are used.
            prefix = fixedPrefix.map { add(.literal($0!)) }
            if item != nil { item = add(.literal(fixedItem)) }
        }
        if unique && (maxItems ?? 2) > 1 {
            if !uniqueIsExact(prefix: prefix, item: item) {
                approximate(path + "/uniqueItems", "uniqueness of items that are not fixed scalars is checked by the validator")
                unique = false
            }
        } else { unique = false }
        return add(.array(prefix: prefix, item: item, minItems: minItems, maxItems: maxItems, unique: unique))
    }

    /// The fixed values a node allows (literals, exact string sets, and anyOfs of them), or nil.
    func fixedValues(_ n: Int) -> [JSONValue]? {
        switch schema.nodes[schema.resolved(n)] {
        case let .literal(values): return values
        case let .string(s) where s.patterns.count == 1 && s.excluded.isEmpty:
            guard let strings = literalSet(s.patterns[0]) else { return nil }
            return strings.filter { string in
                let n = string.unicodeScalars.count
                return n >= s.minLength && (s.maxLength.map { n <= $0 } ?? true)
            }.map(JSONValue.string)
        case let .anyOf(branches, false):
            var out: [JSONValue] = []
            for b in branches { guard let v = fixedValues(b) else { return nil }; out += v }
            return out
        default: return nil
        }
    }

    /// Uniqueness is tracked exactly (a bitmask of used values) when every item is one of at most 30 scalars.
    func uniqueIsExact(prefix: [Int], item: Int?) -> Bool {
        var values: [JSONValue] = []
        for n in prefix + (item.map { [$0] } ?? []) {
            guard case let .literal(list) = schema.nodes[schema.resolved(n)] else { return false }
            for v in list where !values.contains(where: { $0.sameValue(as: v) }) { values.append(v) }
        }
        return values.count <= 30
    }

    mutating func string(_ keys: [String: JSONValue], path: String) throws -> Int {
        var shape = SchemaNode.StringShape()
        if let p = keys["pattern"] {
            guard case let .string(source) = p else { throw SchemaError(path: path + "/pattern", reason: "pattern must be a string") }
            shape.patterns.append(try patternIndex(source, path: path + "/pattern"))
        }
        if keys["format"] == .string("regex") { approximate(path + "/format", "format regex is checked by the validator") }
        if case let .string(name)? = keys["format"], let format = StringFormat(rawValue: name) {
            if formatPatterns[format] == nil {
                schema.patterns.append(try! Pattern(format.pattern))
                formatPatterns[format] = schema.patterns.count - 1
            }
            shape.patterns.append(formatPatterns[format]!)
            shape.maxLength = format.maxLength
        }
        shape.minLength = try count(keys, "minLength", path: path) ?? 0
        if let m = try count(keys, "maxLength", path: path) { shape.maxLength = min(m, shape.maxLength ?? m) }
        // No string at all: the schema may say so, but nothing can be generated (the termination check names it).
        if let m = shape.maxLength, m < shape.minLength { return add(.never) }
        for p in shape.patterns where !schema.patterns[p].canFinish(from: schema.patterns[p].initial, count: 0, min: shape.minLength, max: shape.maxLength) {
            return add(.never)
        }
        return add(.string(shape))
    }

    mutating func patternIndex(_ source: String, path: String) throws -> Int {
        if let i = patternIndex[source] { return i }
        do { schema.patterns.append(try Pattern(source)) } catch let e as PatternError {
            throw SchemaError(path: path, reason: e.description)
        }
        patternIndex[source] = schema.patterns.count - 1
        return schema.patterns.count - 1
    }

    mutating func literalPattern(_ strings: [String]) -> Int {
        let key = strings.map { JSONValue.quote($0) }.joined(separator: ",")
        if let i = literalPatterns[key] { return i }
        schema.patterns.append(Pattern(literals: strings))
        literalPatterns[key] = schema.patterns.count - 1
        return schema.patterns.count - 1
    }

    /// Fixed values as nodes: scalars as literals, strings as an exact pattern (so any escaping is accepted), arrays
    /// and objects as shapes of fixed members.
    mutating func literals(_ values: [JSONValue], path: String) throws -> Int {
        var branches: [Int] = []
        var scalars: [JSONValue] = []
        var strings: [String] = []
        for v in values {
            switch v {
            case .null, .bool: if !scalars.contains(v) { scalars.append(v) }
            case let .number(d, _):
                // One canonical spelling per value; integral values also as integers.
                if !scalars.contains(where: { $0.sameValue(as: v) }) {
                    scalars.append(v)
                    if v.isInteger, abs(d) < 1e15 { let t = String(Int64(d)); if case let .number(_, text) = v, text != t { scalars.append(.number(d, text: t)) } }
                }
            case let .string(s): strings.append(s)
            case let .array(items):
                let prefix = try items.map { try literals([$0], path: path) }
                branches.append(add(.array(prefix: prefix, item: nil, minItems: items.count, maxItems: items.count, unique: false)))
            case let .object(members):
                var shape = SchemaNode.ObjectShape()
                for m in members { shape.properties.append(.init(name: m.key, node: try literals([m.value], path: path), required: true)) }
                shape.additional = nil
                branches.append(add(.object(shape)))
            }
        }
        if !scalars.isEmpty { branches.append(add(.literal(scalars))) }
        if !strings.isEmpty { branches.append(add(.string(.init(patterns: [literalPattern(strings)])))) }
        if branches.isEmpty { return add(.never) }
        return branches.count == 1 ? branches[0] : add(.anyOf(branches, exclusive: false))
    }

    // MARK: - Intersection (allOf) and complement (not)

    /// A node accepting exactly the values both accept. anyOf/oneOf distribute (exactly: the count of matching
    /// pairs is the product of the counts); pairs are memoised, so recursive schemas terminate.
    mutating func intersect(_ x: Int, _ y: Int, path: String) throws -> Int {
        let a = schema.resolved(x), b = schema.resolved(y)
        if a == b || b == anyNode { return x }
        if a == anyNode { return y }
        let key = Int64(min(a, b)) << 32 | Int64(max(a, b))
        if let known = intersections[key] { return known }
        let placeholder = add(.reference(-1))
        intersections[key] = placeholder
        let result = try intersectResolved(a, b, path: path)
        schema.nodes[placeholder] = .reference(result)
        return placeholder
    }

    private mutating func intersectResolved(_ a: Int, _ b: Int, path: String) throws -> Int {
        switch (schema.nodes[a], schema.nodes[b]) {
        case (.reference, _), (_, .reference):
            throw SchemaError(path: path, reason: "allOf (or keywords beside $ref) across a $ref that is still being compiled (a recursive reference) is not supported")
        case (.never, _), (_, .never): return add(.never)
        case let (.anyOf(branches, exclusive), _):
            if branchCount(a) * branchCount(b) > 64 {
                approximate(path, "an allOf or not too large to intersect exactly (\(branchCount(a)) × \(branchCount(b)) branches) is checked by the validator")
                return a
            }
            return flatAnyOf(try branches.map { try intersect($0, b, path: path) }, exclusive: exclusive, path: path, fallback: a)
        case let (_, .anyOf(branches, exclusive)):
            if branchCount(a) * branchCount(b) > 64 {
                approximate(path, "an allOf or not too large to intersect exactly (\(branchCount(a)) × \(branchCount(b)) branches) is checked by the validator")
                return a
            }
            return flatAnyOf(try branches.map { try intersect(a, $0, path: path) }, exclusive: exclusive, path: path, fallback: a)
        case let (.literal(values), _):
            return add(.literal(values.filter { satisfies($0, b) }))
        case let (_, .literal(values)):
            return add(.literal(values.filter { satisfies($0, a) }))
        case let (.string(s), .string(t)):
            var shape = s
            shape.patterns += t.patterns.filter { !s.patterns.contains($0) }
            shape.excluded += t.excluded.filter { !s.excluded.contains($0) }
            shape.minLength = max(s.minLength, t.minLength)
            shape.maxLength = [s.maxLength, t.maxLength].compactMap { $0 }.min()
            return add(.string(shape))
        case let (.number(s), .number(t)):
            var shape = s
            shape.integer = s.integer || t.integer
            shape.integerSpelling = s.integerSpelling || t.integerSpelling
            if let m = t.minimumText, shape.minimumText.map({ let c = Decimals.compare(m, $0) ?? 0; return c > 0 || (c == 0 && t.minimumExclusive) }) ?? true {
                shape.minimum = t.minimum; shape.minimumText = m; shape.minimumExclusive = t.minimumExclusive
            }
            if let m = t.maximumText, shape.maximumText.map({ let c = Decimals.compare(m, $0) ?? 0; return c < 0 || (c == 0 && t.maximumExclusive) }) ?? true {
                shape.maximum = t.maximum; shape.maximumText = m; shape.maximumExclusive = t.maximumExclusive
            }
            switch (s.multipleOf, t.multipleOf) {
            case let (p?, q?) where p != q:
                if Decimals.isMultiple(p, of: q) { shape.multipleOf = p } else if Decimals.isMultiple(q, of: p) { shape.multipleOf = q } else {
                    throw SchemaError(path: path, reason: "multipleOf \(p) together with multipleOf \(q) is not supported")
                }
            case let (nil, q?): shape.multipleOf = q
            default: break
            }
            return add(.number(shape))
        case let (.array(p1, i1, min1, max1, u1), .array(p2, i2, min2, max2, u2)):
            var prefix: [Int] = []
            for k in 0..<max(p1.count, p2.count) {
                let x = k < p1.count ? p1[k] : i1, y = k < p2.count ? p2[k] : i2
                guard let x, let y else { break }
                prefix.append(try intersect(x, y, path: path))
            }
            var item: Int?
            if let i1, let i2 { item = try intersect(i1, i2, path: path) }
            let maxBound = [max1, max2, item == nil ? prefix.count : nil].compactMap { $0 }.min()
            return add(.array(prefix: prefix, item: item, minItems: max(min1, min2), maxItems: maxBound, unique: u1 || u2))
        case let (.object(s), .object(t)):
            if !s.patterns.isEmpty && !t.patterns.isEmpty {
                throw SchemaError(path: path, reason: "allOf of two objects that both have patternProperties is not supported")
            }
            if (!s.patterns.isEmpty && t.additional.map({ schema.resolved($0) != schema.resolved(anyNode) }) ?? true)
                || (!t.patterns.isEmpty && s.additional.map({ schema.resolved($0) != schema.resolved(anyNode) }) ?? true) {
                throw SchemaError(path: path, reason: "allOf of an object with patternProperties and one that limits undeclared members is not supported")
            }
            var shape = SchemaNode.ObjectShape()
            shape.patterns = s.patterns + t.patterns
            shape.patternMerges = s.patterns.isEmpty ? t.patternMerges : s.patternMerges
            let (first, second) = s.properties.count >= t.properties.count ? (s, t) : (t, s)
            var names = first.properties.map(\.name)
            for p in second.properties where !names.contains(p.name) { names.append(p.name) }
            for name in names {
                let x = try s.properties.first { $0.name == name }.map(\.node) ?? memberNode(s, name, path: path)
                let y = try t.properties.first { $0.name == name }.map(\.node) ?? memberNode(t, name, path: path)
                let required = s.properties.contains { $0.name == name && $0.required } || t.properties.contains { $0.name == name && $0.required }
                shape.properties.append(.init(name: name, node: try intersect(x, y, path: path + "/properties/" + name), required: required))
            }
            switch (s.additional, t.additional) {
            case let (x?, y?): shape.additional = try intersect(x, y, path: path)
            default: shape.additional = nil
            }
            shape.additionalImplicit = s.additionalImplicit && t.additionalImplicit
            for (source, other) in [(s, t), (t, s)] {
                _ = other
                for (i, needs) in source.dependentRequired {
                    guard let j = names.firstIndex(of: source.properties[i].name) else { continue }
                    shape.dependentRequired[j, default: []] += needs.compactMap { names.firstIndex(of: source.properties[$0].name) }
                }
            }
            shape.minProperties = max(s.minProperties, t.minProperties)
            shape.maxProperties = [s.maxProperties, t.maxProperties].compactMap { $0 }.min()
            switch (s.names, t.names) {
            case let (x?, y?):
                var n = x
                n.patterns += y.patterns
                n.excluded += y.excluded
                n.minLength = max(x.minLength, y.minLength)
                n.maxLength = [x.maxLength, y.maxLength].compactMap { $0 }.min()
                shape.names = n
            case let (x, y): shape.names = x ?? y
            }
            for (i, p) in shape.properties.enumerated() where p.required && isNever(p.node) {
                _ = i
                return add(.never)
            }
            return add(.object(shape))
        default:
            return add(.never)
        }
    }

    /// An anyOf of `branches` without the ones that match nothing, nested non-exclusive anyOfs spliced in (an
    /// exclusive one keeps its structure: oneOf counts matches); past 256 branches, `fallback` (a superset) with an
    /// approximation noted.
    mutating func flatAnyOf(_ branches: [Int], exclusive: Bool, path: String, fallback: Int) -> Int {
        var out: [Int] = []
        var seen: Set<Int> = []
        for b in branches where !isNever(b) {
            let parts: [Int]
            if !exclusive, case let .anyOf(inner, false) = schema.nodes[schema.resolved(b)] { parts = inner.filter { !isNever($0) } } else { parts = [b] }
            // The same node twice adds nothing to an anyOf (it would to a oneOf's count).
            for p in parts where exclusive || seen.insert(schema.resolved(p)).inserted { out.append(p) }
        }
        if out.count > 256 {
            approximate(path, "an allOf or not too large to intersect exactly is checked by the validator")
            return fallback
        }
        return out.count == 1 && !exclusive ? out[0] : add(.anyOf(out, exclusive: exclusive))
    }

    /// Branches of an anyOf node (1 for any other node).
    func branchCount(_ n: Int) -> Int {
        if case let .anyOf(b, _) = schema.nodes[schema.resolved(n)] { return max(1, b.count) }
        return 1
    }

    func isNever(_ n: Int) -> Bool {
        if case .never = schema.nodes[schema.resolved(n)] { return true }
        if case let .literal(v) = schema.nodes[schema.resolved(n)], v.isEmpty { return true }
        if case let .anyOf(b, _) = schema.nodes[schema.resolved(n)], b.isEmpty { return true }
        return false
    }

    /// A node for the values `node` rejects: exact for type-only nodes, literals, single patterns and required
    /// members; anything else becomes "any value" with the validator checking `not` at the end.
    mutating func complement(_ node: Int, path: String) throws -> Int {
        let n = schema.resolved(node)
        if let c = complements[n] { return c }
        let result: Int
        // The any-value node's branches: object, array, string, number, true/false/null.
        guard case let .anyOf(kindNodes, _) = schema.nodes[anyNode] else { return anyNode }
        func others(except kind: String) -> [Int] {
            zip(["object", "array", "string", "number", "scalar"], kindNodes).filter { $0.0 != kind }.map(\.1)
        }
        switch schema.nodes[n] {
        case .never: result = anyNode
        case _ where n == schema.resolved(anyNode): result = add(.never)
        case let .string(s) where s.minLength == 0 && s.maxLength == nil && s.patterns.count + s.excluded.count == 1:
            var shape = SchemaNode.StringShape()
            if let p = s.patterns.first { shape.excluded = [p] } else { shape.patterns = [s.excluded[0]] }
            result = add(.anyOf(others(except: "string") + [add(.string(shape))], exclusive: false))
        case let .string(s) where s.minLength == 0 && s.maxLength == nil && s.patterns.isEmpty && s.excluded.isEmpty:
            result = add(.anyOf(others(except: "string"), exclusive: false))
        case let .number(s) where s.minimum == nil && s.maximum == nil && s.multipleOf == nil && !s.integer:
            _ = s
            result = add(.anyOf(others(except: "number"), exclusive: false))
        case let .array(prefix, item, minItems, maxItems, unique) where prefix.isEmpty && item.map(isAny) == true && minItems == 0 && maxItems == nil && !unique:
            result = add(.anyOf(others(except: "array"), exclusive: false))
        case let .object(s) where s.properties.isEmpty && s.patterns.isEmpty && s.additional.map(isAny) == true && s.names == nil
            && s.minProperties == 0 && s.maxProperties == nil:
            result = add(.anyOf(others(except: "object"), exclusive: false))
        case let .object(s) where s.properties.allSatisfy({ $0.required && isAny($0.node) }) && s.patterns.isEmpty
            && s.additional.map(isAny) == true && s.names == nil && s.minProperties == 0 && s.maxProperties == nil
            && s.dependentRequired.isEmpty && !s.properties.isEmpty:
            // not {required: [a, b]}: not an object, or an object missing one of them.
            var branches = others(except: "object")
            for p in s.properties {
                var o = SchemaNode.ObjectShape()
                o.additional = anyNode
                o.properties = [.init(name: p.name, node: add(.never), required: false)]
                branches.append(add(.object(o)))
            }
            result = add(.anyOf(branches, exclusive: false))
        case let .literal(values) where values.allSatisfy({ if case .number = $0 { false } else { true } }):
            let remaining = [JSONValue.bool(true), .bool(false), .null].filter { v in !values.contains(v) }
            var branches = others(except: "scalar")
            if !remaining.isEmpty { branches.append(add(.literal(remaining))) }
            result = add(.anyOf(branches, exclusive: false))
        case let .anyOf(branches, false):
            // not (A or B) = not A and not B; each complement is exact or a recorded approximation.
            var acc = anyNode
            for b in branches { acc = try intersect(acc, try complement(b, path: path), path: path) }
            result = acc
        default:
            approximate(path, "this not is checked by the validator")
            result = anyNode
        }
        complements[n] = result
        return result
    }

    func isAny(_ n: Int) -> Bool { schema.resolved(n) == schema.resolved(anyNode) }

    /// Whether oneOf branches can never both match (different kinds, disjoint fixed values, or a required member
    /// with disjoint fixed values).
    func pairwiseDisjoint(_ branches: [Int]) -> Bool {
        for i in branches.indices { for j in branches.indices where j > i { if !disjoint(branches[i], branches[j], depth: 0) { return false } } }
        return true
    }

    func disjoint(_ x: Int, _ y: Int, depth: Int) -> Bool {
        guard depth < 8 else { return false }
        let a = schema.resolved(x), b = schema.resolved(y)
        switch (schema.nodes[a], schema.nodes[b]) {
        case (.never, _), (_, .never): return true
        case let (.anyOf(bs, _), _): return bs.allSatisfy { disjoint($0, b, depth: depth + 1) }
        case let (_, .anyOf(bs, _)): return bs.allSatisfy { disjoint(a, $0, depth: depth + 1) }
        case (.reference, _), (_, .reference): return false
        case let (.literal(v), .literal(w)): return !v.contains { p in w.contains { $0.sameValue(as: p) } }
        case let (.literal(v), other), let (other, .literal(v)):
            if case .number = other { return !v.contains { if case .number = $0 { true } else { false } } }
            return true
        case let (.string(s), .string(t)):
            // Two exact literal sets.
            if s.patterns.count == 1, t.patterns.count == 1, let ls = literalSet(s.patterns[0]), let lt = literalSet(t.patterns[0]) {
                return !ls.contains { p in lt.contains { $0.unicodeScalars.elementsEqual(p.unicodeScalars) } }
            }
            return false
        case let (.number(s), .number(t)):
            if let hi = s.maximum, let lo = t.minimum, hi < lo || (hi == lo && (s.maximumExclusive || t.minimumExclusive)) { return true }
            if let hi = t.maximum, let lo = s.minimum, hi < lo || (hi == lo && (t.maximumExclusive || s.minimumExclusive)) { return true }
            return false
        case let (.object(s), .object(t)):
            // A member one side requires that the other cannot have, or that both require with disjoint values.
            for (x, y) in [(s, t), (t, s)] {
                for p in x.properties where p.required {
                    if let q = y.properties.first(where: { $0.name == p.name }) {
                        if isNever(q.node) || (q.required && disjoint(p.node, q.node, depth: depth + 1)) { return true }
                    } else if y.additional == nil && y.patterns.isEmpty {
                        return true
                    }
                }
            }
            return false
        case (.object, _), (_, .object), (.array, _), (_, .array), (.string, _), (_, .string): return true
        default: return false
        }
    }

    func literalSet(_ pattern: Int) -> [String]? {
        guard let i = literalPatterns.first(where: { $0.value == pattern })?.key else { return nil }
        guard case let .array(values)? = try? JSONValue.parse("[" + i + "]") else { return nil }
        return values.compactMap(\.stringValue)
    }

    /// Whether a fixed value satisfies a node (used to filter enum values under allOf and siblings).
    func satisfies(_ value: JSONValue, _ index: Int, depth: Int = 0) -> Bool {
        guard depth < 64 else { return false }
        switch schema.nodes[schema.resolved(index)] {
        case .reference, .never: return false
        case let .literal(values): return values.contains { $0.sameValue(as: value) }
        case let .anyOf(branches, _): return branches.contains { satisfies(value, $0, depth: depth + 1) }
        case let .number(s):
            guard case let .number(_, text) = value else { return false }
            return s.admits(text)
        case let .string(s):
            guard case let .string(str) = value else { return false }
            return schema.admits(str, s)
        case let .array(prefix, item, minItems, maxItems, _):
            guard case let .array(items) = value, items.count >= minItems, maxItems.map({ items.count <= $0 }) ?? true else { return false }
            for (i, v) in items.enumerated() {
                guard let node = i < prefix.count ? prefix[i] : item, satisfies(v, node, depth: depth + 1) else { return false }
            }
            return true
        case let .object(s):
            guard case let .object(members) = value, members.count >= s.minProperties, s.maxProperties.map({ members.count <= $0 }) ?? true else { return false }
            for p in s.properties where p.required && !members.contains(where: { $0.key == p.name }) { return false }
            for m in members {
                if let p = s.properties.first(where: { $0.name == m.key }) {
                    if !satisfies(m.value, p.node, depth: depth + 1) { return false }
                } else {
                    let matching = s.patterns.filter { schema.patterns[$0.pattern].matches(m.key) }
                    if matching.isEmpty {
                        guard let a = s.additional, satisfies(m.value, a, depth: depth + 1) else { return false }
                    } else if !matching.allSatisfy({ satisfies(m.value, $0.node, depth: depth + 1) }) {
                        return false
                    }
                }
            }
            return true
        }
    }

    // MARK: - Termination

    /// Every node a value can start with must have a finite value: a cycle of required members or minimum items
    /// (`{"$ref": "#"}` required inside itself) can never be closed, so it is an error naming the cycle.
    func checkTermination() throws {
        var finite = [Bool](repeating: false, count: schema.nodes.count)
        var changed = true
        while changed {
            changed = false
            for i in schema.nodes.indices where !finite[i] {
                let ok: Bool
                switch schema.nodes[i] {
                case .never: ok = false
                case let .reference(t): ok = t >= 0 && finite[t]
                case .literal(let v): ok = !v.isEmpty
                case .number, .string: ok = true
                case let .anyOf(b, _): ok = b.contains { finite[$0] }
                case let .array(prefix, item, minItems, _, _):
                    ok = prefix.prefix(minItems).allSatisfy { finite[$0] } && (minItems <= prefix.count || (item.map { finite[$0] } ?? false))
                case let .object(s):
                    ok = s.properties.allSatisfy { !$0.required || finite[$0.node] }
                        && (s.minProperties <= s.properties.filter(\.required).count || s.properties.contains { !$0.required && finite[$0.node] } || (s.additional.map { finite[$0] } ?? false) || s.patterns.contains { finite[$0.node] })
                }
                if ok { finite[i] = true; changed = true }
            }
        }
        if !finite[schema.root] {
            throw SchemaError(path: "#", reason: "no finite JSON value satisfies this schema (\(cycle(from: schema.root, finite: finite)))")
        }
    }

    /// A description of why `node` has no finite value: the chain of required members that loops back.
    func cycle(from node: Int, finite: [Bool]) -> String {
        var path: [String] = []
        var seen: Set<Int> = []
        var i = node
        while seen.insert(i).inserted && path.count < 20 {
            switch schema.nodes[i] {
            case let .reference(t) where t >= 0: i = t; continue
            case let .object(s):
                guard let p = s.properties.first(where: { $0.required && !finite[$0.node] }) else { return "no value fits: " + (path.isEmpty ? "#" : path.joined()) }
                path.append("/" + p.name)
                i = p.node
            case let .array(prefix, item, minItems, _, _):
                guard let next = prefix.prefix(minItems).first(where: { !finite[$0] }) ?? item else { return "empty" }
                path.append("/items")
                i = next
            case let .anyOf(b, _):
                guard let first = b.first else { return "no branch of anyOf/oneOf/allOf fits" + (path.isEmpty ? "" : " at " + path.joined()) }
                i = first
            case .never: return "no value fits at " + (path.isEmpty ? "#" : path.joined())
            default: return "no value fits at " + path.joined()
            }
        }
        return "a required cycle: " + path.joined() + " repeats"
    }
}
