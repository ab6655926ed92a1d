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

/// String formats the constraint and the validator both enforce.
public enum StringFormat: String, Sendable, CaseIterable {
    case date, dateTime = "date-time", email

    /// The pattern that defines the format here (RFC 3339 full-date / date-time; a dot-atom e-mail address).
    var pattern: String {
        switch self {
        case .date: return "^" + StringFormat.fullDate + "$"
        case .dateTime:
            return "^" + StringFormat.fullDate + "T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
        case .email:
            return "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
        }
    }

    /// Days valid for each month. 29 February is left out, so generation never writes it in a common year; the
    /// validator accepts it in leap years.
    private static let fullDate = "[0-9]{4}-(02-(0[1-9]|1[0-9]|2[0-8])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01]))"
}

/// One node of a compiled schema.
enum SchemaNode: Sendable {
    struct Property: Sendable {
        var name: String
        var node: Int
        var required: Bool
    }
    /// Properties in declaration order (generated in that order); no others are generated.
    case object([Property], allowsOthers: Bool)
    case array(item: Int, minItems: Int, maxItems: Int?)
    /// `pattern` is an index into ``Schema/patterns``.
    case string(pattern: Int?, format: StringFormat?, minLength: Int, maxLength: Int?)
    /// A fixed set of values (`enum`, `const`, `boolean`, `null`).
    case literal([JSONValue])
    case number(integer: Bool, minimum: Double?, maximum: Double?)
    /// `oneOf` additionally requires exactly one branch to match.
    case anyOf([Int], exclusive: Bool)
    /// A `$ref` whose target is compiled later (resolved before use).
    case reference(Int)
    /// An object with any members: keys are strings of `key`, values of `value` (`{"type": "object"}` with no
    /// declared properties).
    case map(key: Int, value: Int)
}

/// A JSON Schema compiled for constrained decoding and validation.
///
/// Supported keywords are listed in ``Schema/supportedKeywords``; any other keyword is an error naming it and its
/// location. Objects are generated with their properties in declaration order and without undeclared properties.
public final class Schema: @unchecked Sendable {
    /// Keywords that constrain values, by the type they apply to.
    public static let supportedKeywords: [(keyword: String, appliesTo: String, meaning: String)] = [
        ("type", "any", "one type or a list of types (a list behaves as anyOf)"),
        ("enum", "any", "a fixed set of JSON values"),
        ("const", "any", "one fixed JSON value"),
        ("anyOf", "any", "at least one branch matches"),
        ("oneOf", "any", "exactly one branch matches (branches must not overlap; checked when validating)"),
        ("$ref", "any", "a reference to #, #/$defs/NAME or #/definitions/NAME (recursion allowed)"),
        ("$defs / definitions", "any", "named schemas for $ref"),
        ("properties", "object", "member schemas, generated in declaration order"),
        ("required", "object", "members that must appear"),
        ("additionalProperties", "object", "false; true is accepted but no undeclared member is generated, except that an object with no properties is any JSON object"),
        ("items", "array", "the schema of every item"),
        ("minItems / maxItems", "array", "item count bounds"),
        ("pattern", "string", "a regular expression in the documented subset (searched, as ECMA-262 does, unless anchored)"),
        ("format", "string", "date, date-time (RFC 3339) or email"),
        ("minLength / maxLength", "string", "length bounds in Unicode scalars"),
        ("minimum / maximum", "integer, number", "inclusive bounds"),
    ]
    /// Keywords that only annotate and are accepted anywhere.
    public static let annotations: Set<String> = ["title", "description", "default", "examples", "$comment", "$schema", "$id",
                                                   "deprecated", "readOnly", "writeOnly"]

    var nodes: [SchemaNode] = []
    var patterns: [Pattern] = []
    var formatPatterns: [StringFormat: Int] = [:]
    private(set) var root = 0
    /// The schema text's SHA-256 (hex), the cache key for compiled constraints.
    public let digest: String
    /// The schema document.
    public let document: JSONValue

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
        var compiler = SchemaCompiler(schema: self, document: document)
        root = try compiler.compile(document, path: "#")
        try compiler.resolveReferences()
    }

    /// Follows references to a concrete node.
    func resolved(_ index: Int) -> Int {
        var i = index, hops = 0
        while case let .reference(target) = nodes[i], hops < nodes.count { i = target; hops += 1 }
        return i
    }

    /// Any JSON object (OpenAI's `json_object` response format).
    public static let anyObject: Schema = try! Schema(document: .object([("type", .string("object"))]))

    /// Member names of the root object (empty when the root is not an object).
    public var topLevelProperties: [String] {
        guard case let .object(properties, _) = nodes[resolved(root)] else { return [] }
        return properties.map(\.name)
    }

    func pattern(for format: StringFormat) -> Pattern {
        patterns[formatPatterns[format]!]
    }
}

private struct SchemaCompiler {
    let schema: Schema
    let document: JSONValue
    var refs: [String: Int] = [:]
    var pendingRefs: [(node: Int, ref: String, path: String)] = []

    init(schema: Schema, document: JSONValue) {
        self.schema = schema
        self.document = document
    }

    /// Any JSON object: string keys, values of any type (nesting is bounded by the automaton's depth).
    mutating func anyObject() -> Int {
        let value = add(.anyOf([], exclusive: false))
        let key = add(.string(pattern: nil, format: nil, minLength: 0, maxLength: nil))
        let object = add(.map(key: key, value: value))
        let array = add(.array(item: value, minItems: 0, maxItems: nil))
        let number = add(.number(integer: false, minimum: nil, maximum: nil))
        let literal = add(.literal([.bool(true), .bool(false), .null]))
        schema.nodes[value] = .anyOf([object, array, key, number, literal], exclusive: false)
        return object
    }

    mutating func add(_ node: SchemaNode) -> Int {
        schema.nodes.append(node)
        return schema.nodes.count - 1
    }

    mutating func compile(_ value: JSONValue, path: String) throws -> Int {
        guard case let .object(members) = value else {
            if case .bool = value {
                throw SchemaError(path: path, reason: "boolean schemas (true/false) are not supported; give the value a type")
            }
            throw SchemaError(path: path, reason: "a schema must be a JSON object")
        }
        var keys: [String: JSONValue] = [:]
        for m in members {
            guard keys[m.key] == nil else { throw SchemaError(path: path, reason: "keyword \(m.key) appears twice") }
            keys[m.key] = m.value
        }
        let constraining = keys.keys.filter { !Schema.annotations.contains($0) && $0 != "$defs" && $0 != "definitions" }
        for key in ["$defs", "definitions"] {
            if let defs = keys[key] {
                guard case .object = defs else { throw SchemaError(path: path + "/" + key, reason: "\(key) must be an object") }
            }
        }

        let general: Set<String> = ["type", "enum", "const", "anyOf", "oneOf", "$ref"]
        if let unknown = constraining.sorted().first(where: { key in !general.contains(key) && !Self.keywordsByType.values.contains { $0.contains(key) } }) {
            throw SchemaError(path: path + "/" + unknown, reason: "keyword '\(unknown)' is not supported (see the supported-keyword table in the README); remove it or express it with supported keywords")
        }
        if let ref = keys["$ref"] {
            try only(["$ref"], of: constraining, path: path, why: "$ref cannot be combined with other constraining keywords here")
            guard case let .string(target) = ref else { throw SchemaError(path: path + "/$ref", reason: "$ref must be a string") }
            let node = add(.reference(-1))
            pendingRefs.append((node, target, path + "/$ref"))
            return node
        }
        for combinator in ["anyOf", "oneOf"] {
            guard let list = keys[combinator] else { continue }
            try only([combinator], of: constraining, path: path, why: "\(combinator) cannot be combined with other constraining keywords at the same level; move them into each branch")
            guard case let .array(branches) = list, !branches.isEmpty else {
                throw SchemaError(path: path + "/" + combinator, reason: "\(combinator) must be a non-empty array of schemas")
            }
            var indices: [Int] = []
            for (i, b) in branches.enumerated() { indices.append(try compile(b, path: path + "/\(combinator)/\(i)")) }
            return add(.anyOf(indices, exclusive: combinator == "oneOf"))
        }
        if let c = keys["const"] ?? keys["enum"] {
            let keyword = keys["const"] != nil ? "const" : "enum"
            try only([keyword, "type"], of: constraining, path: path, why: "\(keyword) cannot be combined with other constraining keywords")
            var values: [JSONValue]
            if keyword == "const" { values = [c] } else {
                guard case let .array(list) = c, !list.isEmpty else { throw SchemaError(path: path + "/enum", reason: "enum must be a non-empty array") }
                values = list
            }
            if let t = keys["type"] {
                let types = try typeNames(t, path: path)
                for v in values where !types.contains(where: { Self.value(v, hasType: $0) }) {
                    throw SchemaError(path: path + "/" + keyword, reason: "value \(v) does not have type \(types.joined(separator: " or "))")
                }
            }
            return add(.literal(values))
        }

        let types: [String]
        if let t = keys["type"] { types = try typeNames(t, path: path) } else { types = [try inferType(constraining, path: path)] }
        var branches: [Int] = []
        for type in types { branches.append(try compile(type: type, keys: keys, constraining: constraining, allTypes: types, path: path)) }
        return branches.count == 1 ? branches[0] : add(.anyOf(branches, exclusive: false))
    }

    static let keywordsByType: [String: Set<String>] = [
        "object": ["properties", "required", "additionalProperties"],
        "array": ["items", "minItems", "maxItems"],
        "string": ["pattern", "format", "minLength", "maxLength"],
        "integer": ["minimum", "maximum"],
        "number": ["minimum", "maximum"],
        "boolean": [], "null": [],
    ]

    func inferType(_ keys: [String], path: String) throws -> String {
        for (type, words) in Self.keywordsByType.sorted(by: { $0.key < $1.key }) where type != "integer" && keys.contains(where: words.contains) {
            return type
        }
        throw SchemaError(path: path, reason: keys.isEmpty ? "a schema that allows any value is not supported; give it a type"
                                                            : "no type given and none implied by its keywords; add \"type\"")
    }

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
        for n in names where Self.keywordsByType[n] == nil {
            throw SchemaError(path: path + "/type", reason: "unknown type '\(n)' (expected object, array, string, integer, number, boolean or null)")
        }
        guard !names.isEmpty else { throw SchemaError(path: path + "/type", reason: "type must not be empty") }
        return names
    }

    static func value(_ v: JSONValue, hasType t: String) -> Bool {
        switch (t, v) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("string", .string), ("array", .array), ("object", .object): return true
        case ("integer", .number): return v.isInteger
        default: return false
        }
    }

    func only(_ allowed: Set<String>, of keys: [String], path: String, why: String) throws {
        if let extra = keys.sorted().first(where: { !allowed.contains($0) }) {
            throw SchemaError(path: path + "/" + extra, reason: why)
        }
    }

    func nonNegativeInt(_ keys: [String: JSONValue], _ key: String, path: String) throws -> Int? {
        guard let v = keys[key] else { return nil }
        guard v.isInteger, case let .number(d, _) = v, d >= 0, d < 1e9 else {
            throw SchemaError(path: path + "/" + key, reason: "\(key) must be a non-negative integer")
        }
        return Int(d)
    }

    mutating func compile(type: String, keys: [String: JSONValue], constraining: [String], allTypes: [String], path: String) throws -> Int {
        let applicable = Self.keywordsByType[type]!
        for key in constraining.sorted() where key != "type" && !applicable.contains(key) {
            let known = Self.keywordsByType.values.contains { $0.contains(key) }
            if !known {
                throw SchemaError(path: path + "/" + key, reason: "keyword '\(key)' is not supported (see the supported-keyword table in the README); remove it or express it with supported keywords")
            }
            // A keyword for another listed type is fine when the type list covers it.
            if !allTypes.contains(where: { Self.keywordsByType[$0]!.contains(key) }) {
                throw SchemaError(path: path + "/" + key, reason: "keyword '\(key)' does not apply to type \(type)")
            }
        }
        switch type {
        case "object":
            var properties: [SchemaNode.Property] = []
            var required: [String] = []
            if let r = keys["required"] {
                guard case let .array(items) = r else { throw SchemaError(path: path + "/required", reason: "required must be an array of names") }
                required = try items.map {
                    guard case let .string(s) = $0 else { throw SchemaError(path: path + "/required", reason: "required must be an array of names") }
                    return s
                }
            }
            if let p = keys["properties"] {
                guard case let .object(members) = p else { throw SchemaError(path: path + "/properties", reason: "properties must be an object") }
                for m in members {
                    let node = try compile(m.value, path: path + "/properties/" + Self.escape(m.key))
                    properties.append(.init(name: m.key, node: node, required: required.contains(m.key)))
                }
            }
            for r in required where !properties.contains(where: { $0.name == r }) {
                throw SchemaError(path: path + "/required", reason: "required member '\(r)' has no schema under properties; declare it so it can be generated")
            }
            var allowsOthers = true
            if let a = keys["additionalProperties"] {
                guard case let .bool(b) = a else {
                    throw SchemaError(path: path + "/additionalProperties", reason: "only true or false is supported, not a schema")
                }
                allowsOthers = b
            }
            // An object that declares nothing and allows anything is any JSON object, not only {}.
            if properties.isEmpty && allowsOthers { return anyObject() }
            return add(.object(properties, allowsOthers: allowsOthers))
        case "array":
            guard let items = keys["items"] else {
                throw SchemaError(path: path, reason: "an array needs an items schema so its contents can be generated")
            }
            let item = try compile(items, path: path + "/items")
            let minItems = try nonNegativeInt(keys, "minItems", path: path) ?? 0
            let maxItems = try nonNegativeInt(keys, "maxItems", path: path)
            if let maxItems, maxItems < minItems { throw SchemaError(path: path + "/maxItems", reason: "maxItems is below minItems") }
            return add(.array(item: item, minItems: minItems, maxItems: maxItems))
        case "string":
            var pattern: Int?
            if let p = keys["pattern"] {
                guard case let .string(source) = p else { throw SchemaError(path: path + "/pattern", reason: "pattern must be a string") }
                do { schema.patterns.append(try Pattern(source)) } catch let e as PatternError {
                    throw SchemaError(path: path + "/pattern", reason: e.description)
                }
                pattern = schema.patterns.count - 1
            }
            var format: StringFormat?
            if let f = keys["format"] {
                guard case let .string(name) = f, let known = StringFormat(rawValue: name) else {
                    throw SchemaError(path: path + "/format", reason: "format \(f) is not supported (supported: \(StringFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                format = known
                if schema.formatPatterns[known] == nil {
                    schema.patterns.append(try! Pattern(known.pattern))
                    schema.formatPatterns[known] = schema.patterns.count - 1
                }
            }
            if pattern != nil && format != nil {
                throw SchemaError(path: path + "/format", reason: "pattern and format together are not supported; use one")
            }
            let minLength = try nonNegativeInt(keys, "minLength", path: path) ?? 0
            let maxLength = try nonNegativeInt(keys, "maxLength", path: path)
            if let maxLength, maxLength < minLength { throw SchemaError(path: path + "/maxLength", reason: "maxLength is below minLength") }
            let p = pattern ?? format.map { schema.formatPatterns[$0]! }
            if let p, !schema.patterns[p].canFinish(from: schema.patterns[p].initial, count: 0, min: minLength, max: maxLength) {
                throw SchemaError(path: path, reason: "no string satisfies this pattern or format together with its length bounds")
            }
            return add(.string(pattern: pattern, format: format, minLength: minLength, maxLength: maxLength))
        case "integer", "number":
            func bound(_ key: String) throws -> Double? {
                guard let v = keys[key] else { return nil }
                guard case let .number(d, _) = v else { throw SchemaError(path: path + "/" + key, reason: "\(key) must be a number") }
                return d
            }
            let lo = try bound("minimum"), hi = try bound("maximum")
            if let lo, let hi, lo > hi { throw SchemaError(path: path + "/maximum", reason: "maximum is below minimum") }
            if type == "integer", let lo, let hi, lo.rounded(.up) > hi.rounded(.down) {
                throw SchemaError(path: path, reason: "no integer lies between minimum and maximum")
            }
            return add(.number(integer: type == "integer", minimum: lo, maximum: hi))
        case "boolean":
            return add(.literal([.bool(false), .bool(true)]))
        default:
            return add(.literal([.null]))
        }
    }

    static func escape(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    mutating func resolveReferences() throws {
        var i = 0
        while i < pendingRefs.count {
            let (node, ref, path) = pendingRefs[i]
            i += 1
            let target: Int
            if let known = refs[ref] {
                target = known
            } else {
                guard ref == "#" || ref.hasPrefix("#/") else {
                    throw SchemaError(path: path, reason: "only references inside the schema (#/...) are supported, not '\(ref)'")
                }
                var value = document
                var walked = "#"
                for raw in ref.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) where ref != "#" {
                    let part = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                    walked += "/" + raw
                    guard let next = value[part] else { throw SchemaError(path: path, reason: "reference \(ref) points to nothing (no \(walked))") }
                    value = next
                }
                if ref == "#" {
                    target = schema.root
                } else {
                    refs[ref] = -1
                    target = try compile(value, path: ref)
                }
                refs[ref] = target
            }
            schema.nodes[node] = .reference(target)
        }
        // A reference cycle with no concrete node in between can never produce a value.
        for (i, n) in schema.nodes.enumerated() {
            guard case .reference = n else { continue }
            var seen: Set<Int> = [i], j = i
            while case let .reference(t) = schema.nodes[j] {
                guard t >= 0, seen.insert(t).inserted else {
                    throw SchemaError(path: "#", reason: "a $ref cycle never reaches a schema")
                }
                j = t
            }
        }
    }
}
