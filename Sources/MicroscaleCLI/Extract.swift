import ArgumentParser
import Cascade
import Foundation
import Inference
import StructuredOutput

/// `microscale extract`: JSON that fits a schema, from text, with the model in-process.
struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extract a JSON object that fits a JSON Schema from text (constrained decoding), and check it.",
        discussion: """
        Give --task FILE (an extraction task: schema, prompt, field validators) or --model and --schema.
        Prints the JSON; with --details, the value with each field's validation and the reasons it failed.
        """)

    @Option(help: "An extraction task file (YAML).")
    var task: String?

    @Option(help: "Path of a .gguf model file (defaults to the task's model).")
    var model: String?

    @Option(help: "A JSON Schema: a file path or inline JSON.")
    var schema: String?

    @Option(name: [.customShort("n"), .long], help: "Most tokens to generate (defaults to the task's, else 256).")
    var maxTokens: Int?

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    @Flag(help: "Print the field-by-field validation as well as the value.")
    var details = false

    @Argument(help: "The text to extract from.")
    var text: String

    func run() throws {
        var spec: ExtractionTask
        if let task {
            spec = try ExtractionTask.load(task)
            if let schema { spec.schema = try Self.loadSchema(schema) }
        } else {
            guard let schema else { throw ValidationError("give --schema (a file or inline JSON) or --task FILE") }
            spec = ExtractionTask(schema: try Self.loadSchema(schema))
        }
        if let maxTokens { spec.maxTokens = maxTokens }
        guard let path = model ?? spec.model else { throw ValidationError("give --model FILE (the task names none)") }
        let loaded = try LoadedModel(path: path, threads: threads)
        let result = try spec.extract(text, model: loaded, constraints: ConstraintCache(tokenizer: loaded.tokenizer))
        print(details ? result.json.description : (result.value?.description ?? result.text))
        if !result.valid {
            for f in result.fields where !f.valid { FileHandle.standardError.write(Data("invalid \(f.name): \(f.reasons.joined(separator: "; "))\n".utf8)) }
            for o in result.otherViolations { FileHandle.standardError.write(Data("invalid: \(o)\n".utf8)) }
            throw ExitCode(3)
        }
    }

    static func loadSchema(_ source: String) throws -> Schema {
        if source.trimmingCharacters(in: .whitespaces).hasPrefix("{") { return try Schema(text: source) }
        guard let data = FileManager.default.contents(atPath: source), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("cannot read the schema file \(source)")
        }
        return try Schema(text: text)
    }
}
