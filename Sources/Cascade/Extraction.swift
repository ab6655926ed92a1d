import Foundation
import Inference
import StructuredOutput
import Tokenizers
import Yams

/// A business rule on one extracted field, checked after generation (the schema shapes the output; these say
/// whether its content can be trusted).
public enum FieldRule: Sendable, CustomStringConvertible {
    /// The value (a string) must match this regular expression (Foundation syntax, whole value).
    case regex(String)
    /// The value must be one of these.
    case values([JSONValue])
    /// A string value must appear verbatim in the input text (an extracted ID the input does not contain is invented).
    case inText
    /// The field must not be null when `field` has one of `values`.
    case requiredWhen(field: String, values: [JSONValue])
    /// The field must be null unless `field` has one of `values`.
    case nullUnless(field: String, values: [JSONValue])

    public var description: String {
        switch self {
        case let .regex(r): return "regex \(r)"
        case let .values(v): return "one of \(v.map(\.description).joined(separator: ", "))"
        case .inText: return "appears in the input"
        case let .requiredWhen(f, v): return "required when \(f) is \(v.map(\.description).joined(separator: " or "))"
        case let .nullUnless(f, v): return "null unless \(f) is \(v.map(\.description).joined(separator: " or "))"
        }
    }
}

/// One field of an extraction result.
public struct FieldResult: Sendable {
    /// Member name.
    public var name: String
    /// Extracted value (nil when the member is absent).
    public var value: JSONValue?
    /// Whether the schema and every rule accept it.
    public var valid: Bool
    /// Why not, one line per failed check.
    public var reasons: [String]
}

/// The outcome of one extraction.
public struct ExtractionResult: Sendable {
    /// The generated JSON text.
    public var text: String
    /// The parsed value.
    public var value: JSONValue?
    /// Per-field results, in schema order.
    public var fields: [FieldResult]
    /// Schema violations that do not belong to one top-level field.
    public var otherViolations: [String]
    /// Whether every field validated.
    public var valid: Bool { otherViolations.isEmpty && fields.allSatisfy(\.valid) }
    /// Whether the constraint had to close the value because the token budget ran out.
    public var completedByConstraint: Bool
    /// Tokens generated, and seconds for prompt and generation.
    public var tokens: Int
    public var promptSeconds: Double
    public var generationSeconds: Double

    /// The result as JSON: value, validity, per-field checks.
    public var json: JSONValue {
        .object([
            ("value", value ?? .null),
            ("valid", .bool(valid)),
            ("fields", .object(fields.map { f in
                (f.name, .object([("value", f.value ?? .null), ("valid", .bool(f.valid)), ("reasons", .array(f.reasons.map { .string($0) }))]))
            })),
            ("completed_by_constraint", .bool(completedByConstraint)),
            ("tokens", .integer(tokens)),
            ("milliseconds", .number(0, text: String(format: "%.1f", (promptSeconds + generationSeconds) * 1000))),
        ])
    }
}

/// An extraction task: a schema the output must fit, the prompt that asks for it, and field rules.
public struct ExtractionTask: Sendable {
    /// Task name.
    public var name: String
    /// The output schema.
    public var schema: Schema
    /// System message (nil = none).
    public var system: String?
    /// User message with `{text}` for the input and `{schema}` for the schema text.
    public var template: String
    /// Most tokens to generate.
    public var maxTokens: Int
    /// Longest input accepted, in characters.
    public var maxInputCharacters: Int
    /// Rules by field, in declaration order.
    public var rules: [(field: String, rule: FieldRule)]
    /// The model file named by the task, if any.
    public var model: String?

    /// A task around `schema` with a generic prompt that shows the schema to the model.
    public init(schema: Schema, name: String = "extract", rules: [(field: String, rule: FieldRule)] = []) {
        self.name = name
        self.schema = schema
        system = "You extract information from text. Reply with one JSON object that matches this JSON Schema:\n{schema}"
        template = "{text}"
        maxTokens = 256
        maxInputCharacters = 8000
        self.rules = rules
        model = nil
    }

    /// Loads a task file (YAML): `name`, `schema` (a file next to it or inline JSON), `system`, `template`,
    /// `max_tokens`, `max_input_characters`, `model`, `validators` (a list of `{field, regex | values | in_text |
    /// required_when | null_unless}`).
    public static func load(_ file: String) throws -> ExtractionTask {
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let r = try YAMLReader.load(file)
        try r.only(["name", "description", "model", "schema", "system", "template", "max_tokens", "max_input_characters", "validators"])
        let schemaReader = try r.required("schema")
        let schemaSource = try schemaReader.string()
        let schemaText: String
        if schemaSource.trimmingCharacters(in: .whitespaces).hasPrefix("{") {
            schemaText = schemaSource
        } else {
            let path = schemaSource.hasPrefix("/") ? schemaSource : folder + "/" + schemaSource
            guard let d = FileManager.default.contents(atPath: path), let t = String(data: d, encoding: .utf8) else {
                throw schemaReader.error("cannot read the schema file \(path)")
            }
            schemaText = t
        }
        let schema: Schema
        do { schema = try Schema(text: schemaText) } catch let e as SchemaError { throw schemaReader.error(e.description) }
        var task = ExtractionTask(schema: schema, name: try r.required("name").string())
        if let s = r.child("system") { task.system = try s.string() }
        if let t = r.child("template") {
            task.template = try t.string()
            guard task.template.contains("{text}") else { throw t.error("the template must contain {text}") }
        }
        if let m = r.child("max_tokens") { task.maxTokens = try m.int(in: 1...4096) }
        if let m = r.child("max_input_characters") { task.maxInputCharacters = try m.int(in: 1...1_000_000) }
        if let m = r.child("model") {
            let path = try m.string()
            task.model = path.hasPrefix("/") ? path : folder + "/" + path
        }
        let topLevel = Set(schema.topLevelProperties)
        for item in try r.child("validators")?.items() ?? [] {
            try item.only(["field", "regex", "values", "in_text", "required_when", "null_unless"])
            let fieldReader = try item.required("field")
            let field = try fieldReader.string()
            guard topLevel.contains(field) else {
                throw fieldReader.error("'\(field)' is not a property of the schema (properties: \(schema.topLevelProperties.joined(separator: ", ")))")
            }
            if let x = item.child("regex") {
                let pattern = try x.string()
                guard (try? NSRegularExpression(pattern: pattern)) != nil else { throw x.error("not a valid regular expression") }
                task.rules.append((field, .regex(pattern)))
            }
            if let x = item.child("values") { task.rules.append((field, .values(try x.items().map(jsonValue)))) }
            if let x = item.child("in_text") {
                guard x.node.bool == true else { throw x.error("in_text takes true") }
                task.rules.append((field, .inText))
            }
            for (key, make) in [("required_when", FieldRule.requiredWhen), ("null_unless", FieldRule.nullUnless)] {
                guard let x = item.child(key) else { continue }
                let entries = try x.entries()
                guard entries.count == 1, let (other, values) = entries.first else { throw x.error("give one field and its values: {category: [billing]}") }
                guard topLevel.contains(other) else { throw x.error("'\(other)' is not a property of the schema") }
                let list = values.node.sequence != nil ? try values.items().map(jsonValue) : [try jsonValue(values)]
                task.rules.append((field, make(other, list)))
            }
        }
        return task
    }

    /// The prompt messages for `text`.
    public func messages(for text: String) -> [ChatMessage] {
        let schemaText = schema.document.description
        var out: [ChatMessage] = []
        if let system { out.append(ChatMessage(role: "system", content: system.replacingOccurrences(of: "{schema}", with: schemaText))) }
        // {text} last, so text containing "{schema}" stays literal.
        let user = template.replacingOccurrences(of: "{schema}", with: schemaText).replacingOccurrences(of: "{text}", with: text)
        out.append(ChatMessage(role: "user", content: user))
        return out
    }

    /// Extracts from `text` with `model` under the schema constraint (compact JSON unless `maxWhitespace` allows
    /// whitespace runs), then checks the schema and every rule. Lengths are Unicode scalars.
    public func extract(_ text: String, model: LoadedModel, constraints: ConstraintCache, maxWhitespace: UInt8 = 0) throws -> ExtractionResult {
        switch InputProblem(text, maxCharacters: maxInputCharacters) {
        case .blank?: throw ExtractionError.emptyInput
        case let .tooLong(n, limit)?: throw ExtractionError.inputTooLong(n, limit: limit)
        case nil: break
        }
        let prompt = try model.chatTokens(messages(for: text))
        let generation = try generateStructured(model.model, tokenizer: model.tokenizer, prompt: prompt,
                                                constraint: constraints.constraint(for: schema, maxWhitespace: maxWhitespace),
                                                parameters: GenerateParameters(maxTokens: maxTokens), prefixes: model.prefixes)
        return check(generation, input: text)
    }

    /// Field results for a generation.
    public func check(_ generation: StructuredGeneration, input: String) -> ExtractionResult {
        var fields: [FieldResult] = []
        var other: [String] = []
        let value = generation.value
        let violations = generation.violations
        for name in schema.topLevelProperties {
            let v = value?[name]
            var reasons = violations.filter { Self.violation($0, concerns: name) }.map(\.reason)
            for (field, rule) in rules where field == name {
                if let problem = Self.check(rule, value: v, object: value, input: input) { reasons.append(problem) }
            }
            fields.append(FieldResult(name: name, value: v, valid: reasons.isEmpty, reasons: reasons))
        }
        let names = Set(schema.topLevelProperties)
        for violation in violations where !names.contains(where: { Self.violation(violation, concerns: $0) }) {
            other.append(violation.description)
        }
        return ExtractionResult(text: generation.text, value: value, fields: fields, otherViolations: other,
                                completedByConstraint: generation.completedByConstraint, tokens: generation.tokens,
                                promptSeconds: generation.promptSeconds, generationSeconds: generation.generationSeconds)
    }

    /// Whether a schema violation is in the top-level member `name` or below it.
    static func violation(_ v: Violation, concerns name: String) -> Bool {
        v.path == "/" + name || v.path.hasPrefix("/" + name + "/")
    }

    static func check(_ rule: FieldRule, value: JSONValue?, object: JSONValue?, input: String) -> String? {
        let isNull = value == nil || value == .null
        switch rule {
        case let .regex(pattern):
            guard let s = value?.stringValue else { return isNull ? nil : "not a string, so the regex cannot apply" }
            let whole = "^(?:" + pattern + ")$"
            return s.range(of: whole, options: .regularExpression) == nil ? "does not match \(pattern)" : nil
        case let .values(allowed):
            guard let value else { return nil }
            return allowed.contains(value) ? nil : "\(value) is not one of \(allowed.map(\.description).joined(separator: ", "))"
        case .inText:
            guard let s = value?.stringValue else { return nil }
            return input.contains(s) ? nil : "'\(s)' does not appear in the input"
        case let .requiredWhen(field, values):
            guard let other = object?[field], values.contains(other) else { return nil }
            return isNull ? "required when \(field) is \(other)" : nil
        case let .nullUnless(field, values):
            let other = object?[field] ?? .null
            return isNull || values.contains(other) ? nil : "must be null unless \(field) is \(values.map(\.description).joined(separator: " or ")) (it is \(other))"
        }
    }
}

/// Bad extraction input.
public enum ExtractionError: Error, CustomStringConvertible, Equatable, Sendable {
    case emptyInput
    case inputTooLong(Int, limit: Int)

    public var description: String {
        switch self {
        case .emptyInput: return "the input text is empty"
        case let .inputTooLong(n, limit): return "the input has \(n) characters; the task accepts at most \(limit) (max_input_characters)"
        }
    }
}

/// A YAML scalar or list as a JSON value (numbers, booleans, null, strings).
private func jsonValue(_ r: YAMLReader) throws -> JSONValue {
    if let items = r.node.sequence { return .array(try items.indices.map { try jsonValue(YAMLReader(file: r.file, node: items[$0], path: r.path)) }) }
    guard let scalar = r.node.scalar else { throw r.error("expected a value") }
    if scalar.style == .plain {
        if r.node.null != nil { return .null }
        if let b = r.node.bool { return .bool(b) }
        if let i = r.node.int { return .integer(i) }
        if let d = r.node.float { return .number(d, text: scalar.string) }
    }
    return .string(scalar.string)
}
