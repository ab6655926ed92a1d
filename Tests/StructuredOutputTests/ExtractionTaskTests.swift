import Datasets
import Foundation
import Testing
@testable import Cascade
@testable import StructuredOutput

struct ExtractionTaskTests {
    func write(_ yaml: String, schema: String? = nil) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("extraction-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if let schema { try schema.write(to: folder.appendingPathComponent("schema.json"), atomically: true, encoding: .utf8) }
        let file = folder.appendingPathComponent("task.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    static let schema = #"{"type":"object","properties":{"category":{"enum":["billing","outage"]},"invoice_id":{"type":["string","null"]}},"required":["category","invoice_id"]}"#

    @Test("the example task loads, with its schema and validators")
    func exampleLoads() throws {
        let task = try ExtractionTask.load(ProjectPaths.root + "/examples/extraction/task.yaml")
        #expect(task.schema.topLevelProperties == ["category", "urgency", "invoice_id"])
        #expect(task.rules.count == 3)
        #expect(task.messages(for: "hello").last?.content == "hello")
    }

    @Test("field rules: regex, value sets, grounding in the input, and cross-field rules report why a field fails")
    func rules() throws {
        let path = try write("""
            name: t
            schema: schema.json
            validators:
              - {field: invoice_id, regex: "INV-[0-9]{4}-[0-9]{5}"}
              - {field: invoice_id, in_text: true}
              - {field: invoice_id, null_unless: {category: [billing]}}
              - {field: invoice_id, required_when: {category: billing}}
              - {field: category, values: [billing]}
            """, schema: Self.schema)
        let task = try ExtractionTask.load(path)
        func run(_ json: String, input: String) throws -> ExtractionResult {
            let value = try JSONValue.parse(json)
            let generation = StructuredGeneration(text: json, value: value, violations: task.schema.violations(of: value),
                                                  completedByConstraint: false, tokens: 1, meanLogProbability: 0, promptSeconds: 0, generationSeconds: 0)
            return task.check(generation, input: input)
        }
        let good = try run(#"{"category":"billing","invoice_id":"INV-2025-12345"}"#, input: "invoice INV-2025-12345 is wrong")
        #expect(good.valid)
        let invented = try run(#"{"category":"billing","invoice_id":"INV-2025-99999"}"#, input: "invoice INV-2025-12345 is wrong")
        #expect(!invented.valid)
        #expect(invented.fields[1].reasons == ["'INV-2025-99999' does not appear in the input"])
        let badShape = try run(#"{"category":"billing","invoice_id":"12345"}"#, input: "12345")
        #expect(badShape.fields[1].reasons.contains { $0.contains("does not match") })
        let crossField = try run(#"{"category":"outage","invoice_id":"INV-2025-12345"}"#, input: "INV-2025-12345")
        #expect(crossField.fields[1].reasons.contains { $0.contains("must be null unless category") })
        #expect(crossField.fields[0].reasons.contains { $0.contains("is not one of") })
        let missing = try run(#"{"category":"billing","invoice_id":null}"#, input: "x")
        #expect(missing.fields[1].reasons == ["required when category is \"billing\""])
    }

    @Test("task files with mistakes fail with the file, key path and reason")
    func errors() throws {
        let cases: [(String, String)] = [
            ("name: t\nschema: schema.json\nvalidators:\n  - {field: nope, in_text: true}\n", "not a property of the schema"),
            ("name: t\nschema: schema.json\nvalidators:\n  - {field: category, regex: \"([\"}\n", "not a valid regular expression"),
            ("name: t\nschema: schema.json\ntemplate: no placeholder\n", "must contain {text}"),
            ("name: t\nschema: schema.json\nmax_token: 3\n", "unknown key"),
            ("name: t\nschema: '{\"type\":\"string\",\"pattern\":\"(?=a)b\"}'\n", "lookaround"),
        ]
        for (yaml, message) in cases {
            let path = try write(yaml, schema: Self.schema)
            #expect(performing: { try ExtractionTask.load(path) }, throws: { error in
                guard let e = error as? SpecError else { return false }
                return e.description.contains(message) && e.file == path
            })
        }
    }
}
