import Foundation

/// One way a JSON value fails its schema.
public struct Violation: Sendable, Equatable, CustomStringConvertible {
    /// JSON Pointer of the offending value (`/invoice_id`).
    public var path: String
    /// Why it fails.
    public var reason: String
    public var description: String { (path.isEmpty ? "/" : path) + ": " + reason }
}

extension Schema {
    /// Every violation of the schema by `value` (empty when it validates). Exact JSON Schema semantics over the
    /// whole document (see ``JSONSchemaValidator``), whatever the constraint generates.
    public func violations(of value: JSONValue) -> [Violation] {
        validator.violations(of: value)
    }

    /// Whether `text` parses as JSON and validates.
    public func accepts(_ text: String) -> Bool {
        guard let value = try? JSONValue.parse(text) else { return false }
        return validator.violations(of: value).isEmpty
    }
}

/// The dialect a schema document declares with `$schema` (2020-12 when it declares none or one we do not know).
public enum SchemaDraft: Int, Comparable, Sendable {
    case draft4 = 4, draft6 = 6, draft7 = 7, draft2019 = 2019, draft2020 = 2020

    public static func < (a: SchemaDraft, b: SchemaDraft) -> Bool { a.rawValue < b.rawValue }

    /// The draft a `$schema` URI names.
    public init(uri: String?) {
        guard let uri else { self = .draft2020; return }
        if uri.contains("draft-04") || uri.contains("draft-03") { self = .draft4 }
        else if uri.contains("draft-06") { self = .draft6 }
        else if uri.contains("draft-07") { self = .draft7 }
        else if uri.contains("2019-09") { self = .draft2019 }
        else { self = .draft2020 }
    }
}

/// Exact validation of a JSON value against a JSON Schema document (draft 4, 6, 7, 2019-09 and 2020-12 keywords,
/// after JSON Schema Core and Validation 2020-12, with the earlier drafts' spellings: `dependencies`, array `items`
/// with `additionalItems`, boolean `exclusiveMinimum`/`exclusiveMaximum`, `id`).
///
/// References are resolved inside the document (JSON Pointers, `$id` and `$anchor` and draft-04 `id`); a reference
/// to another document is reported as a violation, never skipped. Before 2019-09, keywords beside `$ref` are ignored
/// as those drafts say. Formats in ``StringFormat`` are asserted (29 February only in leap years); other formats are
/// annotations. `pattern` uses the documented subset (the same automaton generation uses) and falls back to ICU
/// regular expressions for patterns outside it. Strings and member names compare by Unicode scalars, never by
/// canonical equivalence. `$dynamicRef` and `$recursiveRef` resolve statically, like `$ref`.
public final class JSONSchemaValidator: @unchecked Sendable {
    /// The schema document.
    public let document: JSONValue
    /// The draft its `$schema` names.
    public let draft: SchemaDraft
    static let rootURI = "https://microscale.invalid/schema.json"
    private var resources: [String: JSONValue] = [:]
    private var anchors: [String: (JSONValue, String)] = [:]
    private var patterns: [String: PatternMatcher] = [:]
    private let lock = NSLock()

    /// Indexes `document`'s identifiers. Never throws for a schema it can read; problems surface as violations.
    public init(document: JSONValue) {
        self.document = document
        draft = SchemaDraft(uri: document["$schema"]?.stringValue)
        index(document, base: Self.rootURI)
        resources[Self.rootURI] = document
    }

    /// Every violation of the schema by `value` (empty when it validates).
    public func violations(of value: JSONValue) -> [Violation] {
        lock.lock()
        defer { lock.unlock() }
        var out: [Violation] = []
        var depth = 0
        _ = evaluate(value, document, base: Self.rootURI, path: "", out: &out, depth: &depth)
        return out
    }

    // MARK: - Identifiers

    private func idKeyword(_ schema: [String: JSONValue]) -> String? {
        if let id = schema["$id"]?.stringValue { return id }
        if draft == .draft4, let id = schema["id"]?.stringValue { return id }
        return nil
    }

    /// Keywords whose values are not schemas (their contents hold no identifiers).
    private static let dataKeywords: Set<String> = ["enum", "const", "examples", "default", "required", "type", "$comment",
                                                     "description", "title", "dependentRequired", "format", "pattern"]

    private func index(_ value: JSONValue, base: String) {
        switch value {
        case let .object(members):
            let keys = Self.dictionary(members)
            var here = base
            if let id = idKeyword(keys) {
                if id.hasPrefix("#") && !id.hasPrefix("#/") && id.count > 1 {
                    anchors[URIs.stripFragment(base) + id] = (value, base)  // drafts 4–7 anchor form
                } else {
                    here = URIs.stripFragment(URIs.resolve(id, against: base))
                    if resources[here] == nil { resources[here] = value }
                }
            }
            for key in ["$anchor", "$dynamicAnchor"] {
                if let a = keys[key]?.stringValue { anchors[URIs.stripFragment(here) + "#" + a] = (value, here) }
            }
            for m in members where !Self.dataKeywords.contains(m.key) {
                if m.key == "properties" || m.key == "patternProperties" || m.key == "$defs" || m.key == "definitions"
                    || m.key == "dependentSchemas" || m.key == "dependencies" {
                    if case let .object(children) = m.value { for c in children { index(c.value, base: here) } }
                } else {
                    index(m.value, base: here)
                }
            }
        case let .array(items):
            for i in items { index(i, base: base) }
        default: break
        }
    }

    /// The schema a reference points to and the base URI to read it with.
    func resolveReference(_ ref: String, base: String) -> (JSONValue, String)? {
        let absolute = URIs.resolve(ref, against: base)
        let (resource, fragment) = URIs.split(absolute)
        if let f = fragment, !f.isEmpty, !f.hasPrefix("/") {
            return anchors[resource + "#" + (f.removingPercentEncoding ?? f)]
        }
        guard var value = resources[resource] else { return nil }
        var here = resource
        guard let pointer = fragment, !pointer.isEmpty else { return (value, here) }
        let tokens = pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            ($0.removingPercentEncoding ?? String($0)).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
        for (i, token) in tokens.enumerated() {
            if i > 0, case let .object(members) = value, let id = idKeyword(Self.dictionary(members)), !id.hasPrefix("#") {
                here = URIs.stripFragment(URIs.resolve(id, against: here))
            }
            switch value {
            case .object: guard let next = value[token] else { return nil }; value = next
            case let .array(items):
                guard let n = Int(token), n >= 0, n < items.count, String(n) == token else { return nil }
                value = items[n]
            default: return nil
            }
        }
        return (value, here)
    }

    static func dictionary(_ members: [(key: String, value: JSONValue)]) -> [String: JSONValue] {
        var d: [String: JSONValue] = [:]
        for m in members where d[m.key] == nil { d[m.key] = m.value }
        return d
    }

    // MARK: - Evaluation

    /// What a successful evaluation marked as evaluated (for `unevaluatedProperties` / `unevaluatedItems`).
    struct Evaluated {
        var properties: Set<[UInt8]> = []
        var items = 0
        var allItems = false
        var itemIndices: Set<Int> = []

        mutating func merge(_ o: Evaluated) {
            properties.formUnion(o.properties)
            items = max(items, o.items)
            allItems = allItems || o.allItems
            itemIndices.formUnion(o.itemIndices)
        }
    }

    private func evaluate(_ value: JSONValue, _ schema: JSONValue, base: String, path: String,
                          out: inout [Violation], depth: inout Int) -> Evaluated {
        switch schema {
        case .bool(true): return Evaluated()
        case .bool(false):
            out.append(Violation(path: path, reason: "no value is allowed here (the schema is false)"))
            return Evaluated()
        case .object: break
        default:
            out.append(Violation(path: path, reason: "the schema here is not an object or boolean"))
            return Evaluated()
        }
        guard case let .object(members) = schema else { return Evaluated() }
        depth += 1
        defer { depth -= 1 }
        if depth > 200 {
            out.append(Violation(path: path, reason: "schema references nest too deeply (a $ref cycle that consumes no input)"))
            return Evaluated()
        }
        let k = Self.dictionary(members)
        var base = base
        if let id = idKeyword(k), !id.hasPrefix("#") { base = URIs.stripFragment(URIs.resolve(id, against: base)) }
        var ev = Evaluated()
        let start = out.count

        func sub(_ v: JSONValue, _ s: JSONValue, _ p: String, _ o: inout [Violation]) -> Evaluated {
            evaluate(v, s, base: base, path: p, out: &o, depth: &depth)
        }
        func fail(_ reason: String) { out.append(Violation(path: path, reason: reason)) }

        for keyword in ["$ref", "$dynamicRef", "$recursiveRef"] {
            guard let r = k[keyword] else { continue }
            guard let ref = r.stringValue, let (target, targetBase) = resolveReference(ref, base: base) else {
                fail("\(keyword) \(r) points to nothing in this document (references to other documents are not fetched)")
                continue
            }
            var o: [Violation] = []
            let e = evaluate(value, target, base: targetBase, path: path, out: &o, depth: &depth)
            out.append(contentsOf: o)
            if o.isEmpty { ev.merge(e) }
            if draft < .draft2019 && keyword == "$ref" { return ev }
        }

        if let t = k["type"] {
            let names: [String] = t.stringValue.map { [$0] } ?? {
                if case let .array(a) = t { return a.compactMap(\.stringValue) } else { return [] }
            }()
            if !names.contains(where: { Self.value(value, hasType: $0) && !(draft == .draft4 && $0 == "integer" && !value.writtenAsInteger) }) {
                fail("expected \(names.joined(separator: " or ")), got \(Self.typeName(value))")
            }
        }
        if let e = k["enum"], case let .array(options) = e, !options.contains(where: { $0.sameValue(as: value) }) {
            fail("\(Self.short(value)) is not one of " + options.map { Self.short($0) }.joined(separator: ", "))
        }
        if let c = k["const"], !c.sameValue(as: value) { fail("\(Self.short(value)) is not \(Self.short(c))") }

        // Applicators: allOf, anyOf, oneOf, not, if/then/else.
        if case let .array(all)? = k["allOf"] {
            for (i, s) in all.enumerated() {
                var o: [Violation] = []
                let e = sub(value, s, path, &o)
                if o.isEmpty { ev.merge(e) } else { out.append(contentsOf: o.map { Violation(path: $0.path, reason: $0.reason + " (allOf/\(i))") }) }
            }
        }
        if case let .array(any)? = k["anyOf"] {
            var matched = false
            var first: Violation?
            for s in any {
                var o: [Violation] = []
                let e = sub(value, s, path, &o)
                if o.isEmpty { matched = true; ev.merge(e) } else if first == nil { first = o.first }
            }
            if !matched { fail("matches no branch of anyOf (first branch: \(first?.description ?? "?"))") }
        }
        if case let .array(one)? = k["oneOf"] {
            var matched = 0
            var first: Violation?
            for s in one {
                var o: [Violation] = []
                let e = sub(value, s, path, &o)
                if o.isEmpty { matched += 1; ev.merge(e) } else if first == nil { first = o.first }
            }
            if matched == 0 { fail("matches no branch of oneOf (first branch: \(first?.description ?? "?"))") }
            if matched > 1 { fail("matches \(matched) branches of oneOf; exactly one must match") }
        }
        if let n = k["not"] {
            var o: [Violation] = []
            _ = sub(value, n, path, &o)
            if o.isEmpty { fail("matches the schema under not") }
        }
        if let cond = k["if"], draft >= .draft7 {
            var o: [Violation] = []
            let e = sub(value, cond, path, &o)
            if o.isEmpty {
                ev.merge(e)
                if let then = k["then"] {
                    var t: [Violation] = []
                    let te = sub(value, then, path, &t)
                    if t.isEmpty { ev.merge(te) } else { out.append(contentsOf: t) }
                }
            } else if let els = k["else"] {
                var t: [Violation] = []
                let ee = sub(value, els, path, &t)
                if t.isEmpty { ev.merge(ee) } else { out.append(contentsOf: t) }
            }
        }

        switch value {
        case let .number(v, text):
            checkNumber(v, text: text, k, fail)
        case let .string(s):
            let length = s.unicodeScalars.count
            if let m = k["minLength"]?.intValue, length < m { fail("shorter than \(m) characters") }
            if let m = k["maxLength"]?.intValue, length > m { fail("longer than \(m) characters") }
            if let p = k["pattern"]?.stringValue {
                switch matcher(p).matches(s) {
                case true?: break
                case false?: fail("does not match the pattern \(p)")
                case nil: fail("the pattern \(p) is not a valid regular expression")
                }
            }
            if let f = k["format"]?.stringValue, let format = StringFormat(rawValue: f), !format.accepts(s) {
                fail("is not a valid \(f)")
            }
            if k["format"] == .string("regex"), matcher(s).matches("") == nil { fail("is not a valid regex") }
        case let .array(items):
            checkArray(items, k, base: base, path: path, ev: &ev, out: &out, depth: &depth)
        case let .object(members):
            checkObject(members, k, base: base, path: path, ev: &ev, out: &out, depth: &depth)
        default: break
        }

        // Dependent schemas apply to objects; the unevaluated keywords come last (they read the annotations).
        if case let .object(objMembers) = value {
            var dependents: [(String, JSONValue)] = []
            if case let .object(d)? = k["dependentSchemas"] { dependents += d.map { ($0.key, $0.value) } }
            if case let .object(d)? = k["dependencies"] { dependents += d.filter { if case .array = $0.value { false } else { true } }.map { ($0.key, $0.value) } }
            for (name, s) in dependents where objMembers.contains(where: { $0.key.unicodeScalars.elementsEqual(name.unicodeScalars) }) {
                var o: [Violation] = []
                let e = sub(value, s, path, &o)
                if o.isEmpty { ev.merge(e) } else { out.append(contentsOf: o) }
            }
            if let u = k["unevaluatedProperties"] {
                for m in objMembers where !ev.properties.contains(Array(m.key.utf8)) {
                    var o: [Violation] = []
                    _ = sub(m.value, u, path + "/" + Self.token(m.key), &o)
                    if !o.isEmpty { out.append(Violation(path: path + "/" + Self.token(m.key), reason: "member '\(m.key)' is not evaluated by any keyword and fails unevaluatedProperties")) }
                }
                for m in objMembers { ev.properties.insert(Array(m.key.utf8)) }
            }
        }
        if case let .array(items) = value, let u = k["unevaluatedItems"] {
            if !ev.allItems {
                for (i, item) in items.enumerated() where i >= ev.items && !ev.itemIndices.contains(i) {
                    var o: [Violation] = []
                    _ = sub(item, u, path + "/\(i)", &o)
                    if !o.isEmpty { out.append(Violation(path: path + "/\(i)", reason: "item \(i) is not evaluated by any keyword and fails unevaluatedItems")) }
                }
            }
            ev.allItems = true
        }
        return out.count == start ? ev : Evaluated()
    }

    private func checkNumber(_ v: Double, text: String, _ k: [String: JSONValue], _ fail: (String) -> Void) {
        /// The value against a bound, exactly: negative below, 0 equal, positive above.
        func against(_ key: String) -> (Int, String)? {
            guard case let .number(_, bound)? = k[key], let c = Decimals.compare(text, bound) else { return nil }
            return (c, bound)
        }
        let exclusiveMinBool = k["exclusiveMinimum"] == .bool(true), exclusiveMaxBool = k["exclusiveMaximum"] == .bool(true)
        if let (c, m) = against("minimum"), exclusiveMinBool ? c <= 0 : c < 0 { fail("\(text) is below the minimum \(m)\(exclusiveMinBool ? " (exclusive)" : "")") }
        if let (c, m) = against("maximum"), exclusiveMaxBool ? c >= 0 : c > 0 { fail("\(text) is above the maximum \(m)\(exclusiveMaxBool ? " (exclusive)" : "")") }
        if let (c, m) = against("exclusiveMinimum"), c <= 0 { fail("\(text) is not above the exclusive minimum \(m)") }
        if let (c, m) = against("exclusiveMaximum"), c >= 0 { fail("\(text) is not below the exclusive maximum \(m)") }
        if case let .number(_, m)? = k["multipleOf"], !Decimals.isMultiple(text, of: m) { fail("\(text) is not a multiple of \(m)") }
    }

    private func checkArray(_ items: [JSONValue], _ k: [String: JSONValue], base: String, path: String, ev: inout Evaluated,
                            out: inout [Violation], depth: inout Int) {
        func fail(_ reason: String) { out.append(Violation(path: path, reason: reason)) }
        if let m = k["minItems"]?.intValue, items.count < m { fail("has \(items.count) items, fewer than \(m)") }
        if let m = k["maxItems"]?.intValue, items.count > m { fail("has \(items.count) items, more than \(m)") }
        if k["uniqueItems"] == .bool(true) {
            outer: for i in items.indices { for j in items.indices where j > i && items[i].sameValue(as: items[j]) {
                fail("items \(i) and \(j) are equal (uniqueItems)"); break outer
            } }
        }
        var tuple: [JSONValue] = []
        var rest: JSONValue?
        if case let .array(prefix)? = k["prefixItems"] {
            tuple = prefix
            rest = k["items"]
        } else if case let .array(prefix)? = k["items"] {
            tuple = prefix
            rest = k["additionalItems"]
        } else {
            rest = k["items"]
        }
        for (i, item) in items.enumerated() {
            let s: JSONValue? = i < tuple.count ? tuple[i] : rest
            guard let s else { break }
            _ = evaluate(item, s, base: base, path: path + "/\(i)", out: &out, depth: &depth)
        }
        ev.items = max(ev.items, min(items.count, tuple.count))
        if rest != nil && items.count > tuple.count { ev.allItems = true }
        if let c = k["contains"] {
            var matching: [Int] = []
            for (i, item) in items.enumerated() {
                var o: [Violation] = []
                _ = evaluate(item, c, base: base, path: path + "/\(i)", out: &o, depth: &depth)
                if o.isEmpty { matching.append(i) }
            }
            let minimum = draft >= .draft2019 ? k["minContains"]?.intValue ?? 1 : 1
            if matching.count < minimum { fail(minimum == 1 ? "no item matches contains" : "\(matching.count) items match contains, fewer than minContains \(minimum)") }
            if draft >= .draft2019, let maximum = k["maxContains"]?.intValue, matching.count > maximum {
                fail("\(matching.count) items match contains, more than maxContains \(maximum)")
            }
            ev.itemIndices.formUnion(matching)
        }
    }

    private func checkObject(_ members: [(key: String, value: JSONValue)], _ k: [String: JSONValue], base: String, path: String,
                             ev: inout Evaluated, out: inout [Violation], depth: inout Int) {
        func fail(_ reason: String) { out.append(Violation(path: path, reason: reason)) }
        func has(_ name: String) -> Bool { members.contains { $0.key.unicodeScalars.elementsEqual(name.unicodeScalars) } }
        if let m = k["minProperties"]?.intValue, members.count < m { fail("has \(members.count) members, fewer than \(m)") }
        if let m = k["maxProperties"]?.intValue, members.count > m { fail("has \(members.count) members, more than \(m)") }
        if case let .array(required)? = k["required"] {
            for r in required.compactMap(\.stringValue) where !has(r) { fail("required member '\(r)' is missing") }
        }
        var dependentRequired: [(String, [JSONValue])] = []
        if case let .object(d)? = k["dependentRequired"] { dependentRequired += d.compactMap { if case let .array(a) = $0.value { ($0.key, a) } else { nil } } }
        if case let .object(d)? = k["dependencies"] { dependentRequired += d.compactMap { if case let .array(a) = $0.value { ($0.key, a) } else { nil } } }
        for (name, needs) in dependentRequired where has(name) {
            for n in needs.compactMap(\.stringValue) where !has(n) { fail("member '\(n)' is required when '\(name)' is present") }
        }
        var declared: [[UInt8]: JSONValue] = [:]
        if case let .object(p)? = k["properties"] { for m in p where declared[Array(m.key.utf8)] == nil { declared[Array(m.key.utf8)] = m.value } }
        var patternSchemas: [(String, JSONValue)] = []
        if case let .object(p)? = k["patternProperties"] { patternSchemas = p.map { ($0.key, $0.value) } }
        let additional = k["additionalProperties"]
        var seen: Set<[UInt8]> = []
        for m in members {
            let key = Array(m.key.utf8)
            let memberPath = path + "/" + Self.token(m.key)
            if !seen.insert(key).inserted { fail("member '\(m.key)' appears twice") }
            if let names = k["propertyNames"] {
                var o: [Violation] = []
                _ = evaluate(.string(m.key), names, base: base, path: memberPath, out: &o, depth: &depth)
                if !o.isEmpty { out.append(Violation(path: memberPath, reason: "the name '\(m.key)' fails propertyNames: \(o[0].reason)")) }
            }
            var covered = false
            if let s = declared[key] {
                covered = true
                _ = evaluate(m.value, s, base: base, path: memberPath, out: &out, depth: &depth)
            }
            for (p, s) in patternSchemas {
                switch matcher(p).matches(m.key) {
                case true?:
                    covered = true
                    _ = evaluate(m.value, s, base: base, path: memberPath, out: &out, depth: &depth)
                case false?: break
                case nil: fail("the patternProperties pattern \(p) is not a valid regular expression")
                }
            }
            if !covered, let additional {
                var o: [Violation] = []
                _ = evaluate(m.value, additional, base: base, path: memberPath, out: &o, depth: &depth)
                if !o.isEmpty {
                    out.append(additional == .bool(false) ? Violation(path: path, reason: "member '\(m.key)' is not allowed (additionalProperties is false)") : o[0])
                }
            }
            if covered || additional != nil { ev.properties.insert(key) }
        }
    }

    private func matcher(_ source: String) -> PatternMatcher {
        if let m = patterns[source] { return m }
        let m = PatternMatcher(source)
        patterns[source] = m
        return m
    }

    // MARK: - Helpers

    static func value(_ v: JSONValue, hasType t: String) -> Bool {
        switch (t, v) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("string", .string), ("array", .array), ("object", .object): return true
        case ("integer", .number): return v.isInteger
        default: return false
        }
    }

    static func typeName(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return v.isInteger ? "an integer" : "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    static func short(_ v: JSONValue) -> String {
        let d = v.description
        return d.unicodeScalars.count > 60 ? String(String.UnicodeScalarView(d.unicodeScalars.prefix(57))) + "…" : d
    }

    /// A JSON Pointer token (RFC 6901): "~" and "/" escaped.
    static func token(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}

/// A `pattern` matcher: the documented subset's automaton, or ICU for patterns outside it (validation only).
final class PatternMatcher {
    let own: Pattern?
    let icu: NSRegularExpression?

    init(_ source: String) {
        own = try? Pattern(source)
        icu = own == nil ? try? NSRegularExpression(pattern: source) : nil
    }

    /// Whether the pattern matches somewhere in `s` (nil: the pattern does not compile at all).
    func matches(_ s: String) -> Bool? {
        if let own { return own.matches(s) }
        guard let icu else { return nil }
        return icu.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }
}

/// Exact decimal arithmetic on JSON number text.
enum Decimals {
    /// `text` as an integer significand and a power of ten (`1.25e-3` → (125, -5)); nil past 38 digits.
    static func parse(_ text: String) -> (significand: [UInt8], negative: Bool, exponent: Int)? {
        var s = Substring(text)
        var negative = false
        if s.first == "-" { negative = true; s = s.dropFirst() }
        var exponent = 0
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            guard let x = Int(s[s.index(after: e)...].replacingOccurrences(of: "+", with: "")) else { return nil }
            exponent = x
            s = s[..<e]
        }
        var digits: [UInt8] = []
        var seenDot = false
        for c in s.utf8 {
            if c == UInt8(ascii: ".") { seenDot = true; continue }
            guard c >= 0x30 && c <= 0x39 else { return nil }
            digits.append(c - 0x30)
            if seenDot { exponent -= 1 }
        }
        while digits.count > 1 && digits.first == 0 { digits.removeFirst() }
        return (digits, negative, exponent)
    }

    /// The order of two JSON numbers, exactly (nil if either is not a number).
    static func compare(_ x: String, _ y: String) -> Int? {
        guard let a = parse(x), let b = parse(y) else { return nil }
        func sign(_ n: (significand: [UInt8], negative: Bool, exponent: Int)) -> Int {
            n.significand.allSatisfy { $0 == 0 } ? 0 : n.negative ? -1 : 1
        }
        let sa = sign(a), sb = sign(b)
        if sa != sb { return sa < sb ? -1 : 1 }
        if sa == 0 { return 0 }
        func trimmed(_ n: (significand: [UInt8], negative: Bool, exponent: Int)) -> ([UInt8], Int) {
            var d = n.significand, e = n.exponent
            while d.count > 1 && d.last == 0 { d.removeLast(); e += 1 }
            return (d, e)
        }
        let (da, ea) = trimmed(a), (db, eb) = trimmed(b)
        var magnitude = 0
        if da.count + ea != db.count + eb {
            magnitude = da.count + ea < db.count + eb ? -1 : 1
        } else {
            for i in 0..<max(da.count, db.count) {
                let p = i < da.count ? da[i] : 0, q = i < db.count ? db[i] : 0
                if p != q { magnitude = p < q ? -1 : 1; break }
            }
        }
        return sa > 0 ? magnitude : -magnitude
    }

    /// Whether the number `text` is an integer multiple of the number `divisor` (both JSON number text), exactly.
    static func isMultiple(_ text: String, of divisor: String) -> Bool {
        guard let v = parse(text), let m = parse(divisor), m.significand.contains(where: { $0 != 0 }) else { return false }
        if !v.significand.contains(where: { $0 != 0 }) { return true }
        // Align exponents: v = a·10^e1, m = b·10^e2; v/m = (a/b)·10^(e1−e2). Work in base-10 digit arrays.
        let shift = v.exponent - m.exponent
        guard abs(shift) < 4000, v.significand.count + max(shift, 0) < 5000 else { return false }
        var a = v.significand
        var b = m.significand
        if shift >= 0 { a += Array(repeating: 0, count: shift) } else { b += Array(repeating: 0, count: -shift) }
        return remainder(a, b).allSatisfy { $0 == 0 }
    }

    /// `a mod b` on big decimal digit arrays (most significant first).
    static func remainder(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        var r: [UInt8] = []
        for d in a {
            r.append(d)
            while r.count > 1 && r.first == 0 { r.removeFirst() }
            while compare(r, b) >= 0 { r = subtract(r, b) }
        }
        return r
    }

    static func compare(_ x: [UInt8], _ y: [UInt8]) -> Int {
        if x.count != y.count { return x.count < y.count ? -1 : 1 }
        for (p, q) in zip(x, y) where p != q { return p < q ? -1 : 1 }
        return 0
    }

    static func subtract(_ x: [UInt8], _ y: [UInt8]) -> [UInt8] {
        var out = x
        var borrow = 0
        var j = y.count - 1
        for i in stride(from: out.count - 1, through: 0, by: -1) {
            var d = Int(out[i]) - borrow - (j >= 0 ? Int(y[j]) : 0)
            j -= 1
            if d < 0 { d += 10; borrow = 1 } else { borrow = 0 }
            out[i] = UInt8(d)
        }
        while out.count > 1 && out.first == 0 { out.removeFirst() }
        return out
    }
}

/// Just enough of RFC 3986 reference resolution for `$id` and `$ref`.
enum URIs {
    static func split(_ uri: String) -> (String, String?) {
        guard let hash = uri.firstIndex(of: "#") else { return (uri, nil) }
        return (String(uri[..<hash]), String(uri[uri.index(after: hash)...]))
    }

    static func stripFragment(_ uri: String) -> String { split(uri).0 }

    static func hasScheme(_ s: String) -> Bool {
        guard let colon = s.firstIndex(of: ":"), let first = s.first, first.isASCII, first.isLetter else { return false }
        return s[..<colon].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }
    }

    static func resolve(_ ref: String, against base: String) -> String {
        if hasScheme(ref) { return ref }
        let b = stripFragment(base)
        if ref.isEmpty { return b }
        if ref.hasPrefix("#") { return b + ref }
        guard let schemeEnd = b.range(of: "://") else {
            // A base without an authority (urn:…): a relative reference replaces what follows the last ':' or '/'.
            if let cut = b.lastIndex(where: { $0 == "/" || $0 == ":" }) { return String(b[...cut]) + ref }
            return ref
        }
        let afterScheme = b[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(of: "/") ?? afterScheme.endIndex
        let origin = String(b[..<authorityEnd])
        if ref.hasPrefix("//") { return String(b[..<schemeEnd.lowerBound]) + ":" + ref }
        var path: String
        if ref.hasPrefix("/") {
            path = ref
        } else {
            let basePath = String(b[authorityEnd...])
            let dir = basePath.lastIndex(of: "/").map { String(basePath[...$0]) } ?? "/"
            path = dir + ref
        }
        // Remove dot segments.
        let (pathPart, rest): (String, String) = {
            if let q = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { return (String(path[..<q]), String(path[q...])) }
            return (path, "")
        }()
        var segments: [Substring] = []
        for seg in pathPart.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if seg == "." { continue }
            if seg == ".." { if !segments.isEmpty { segments.removeLast() }; continue }
            segments.append(seg)
        }
        if pathPart.hasSuffix("/.") || pathPart.hasSuffix("/..") { segments.append("") }
        return origin + "/" + segments.joined(separator: "/") + rest
    }
}

extension JSONValue {
    /// JSON Schema equality: numbers by value, strings and member names by Unicode scalars, objects regardless of
    /// member order.
    public func sameValue(as other: JSONValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x, _), .number(y, _)): return x == y
        case let (.string(x), .string(y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.sameValue(as: $1) }
        case let (.object(x), .object(y)):
            guard x.count == y.count else { return false }
            var right: [[UInt8]: JSONValue] = [:]
            for m in y { right[Array(m.key.utf8)] = m.value }
            return x.allSatisfy { m in right[Array(m.key.utf8)].map { $0.sameValue(as: m.value) } ?? false }
        default: return false
        }
    }

    /// Whether a number is written without fraction or exponent (draft 4's integers).
    var writtenAsInteger: Bool {
        guard case let .number(_, text) = self else { return false }
        return !text.contains { $0 == "." || $0 == "e" || $0 == "E" }
    }

    /// A non-negative whole number that fits an `Int`.
    var intValue: Int? {
        guard case let .number(d, _) = self, isInteger, d >= 0, d < 1e15 else { return nil }
        return Int(d)
    }
}
