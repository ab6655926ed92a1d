import ArgumentParser
import Foundation
import GGUF
import Inference
import StructuredOutput
import Tokenizers

/// JSON Schema coverage: MaskBench (JSONSchemaBench's LLM-free half) through the automaton, and the official
/// JSON-Schema-Test-Suite through the validator. Both are read from fetched copies; nothing of them is committed.
struct BenchSchemas: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-schemas",
        abstract: "Run MaskBench's schemas and instances through the constraint, and the JSON-Schema-Test-Suite through the validator.")

    @Option(help: "MaskBench's data folder (guidance-ai/jsonschemabench, maskbench/data).")
    var maskbench: String?

    @Option(help: "A JSON-Schema-Test-Suite draft folder (json-schema-org/JSON-Schema-Test-Suite, tests/draft2020-12).")
    var testSuite: String?

    @Option(help: "Whitespace bytes allowed at each structural position (MaskBench's instances are written by Python's json.dumps, with ', ' and ': ').")
    var whitespace: UInt8 = 1

    @Flag(help: "Accept any spelling JSON allows (declared members in any order, any escape) instead of the canonical one generation writes.")
    var anySpelling = false

    @Option(help: "A .gguf model whose tokenizer measures mask time per token (MaskBench's protocol: a mask per token of each instance).")
    var model: String?

    @Option(help: "Schemas whose masks are timed with --model (every Nth schema, spread over the subsets; 0: none).")
    var maskSchemas = 500

    @Option(help: "Generate with --model for this many compiled schemas (every Nth, prompt: the schema and \"produce an example\"), greedy.")
    var generate = 0

    @Option(help: "Token budget of each generation.")
    var maxTokens = 512

    @Option(help: "Longest prompt in tokens; longer schemas are passed over (and counted).")
    var maxPromptTokens = 2048

    @Option(help: "Write the generations (schema file, schema, output, tokens, whether the budget cut it) to this JSON Lines file, for scripts/check-generated.py.")
    var generatedOutput = "reports/maskbench-generated.jsonl"

    @Option(help: "Write one line per schema (compile result, instance results) to this JSON Lines file.")
    var output: String?

    @Option(help: "Only schema files whose name contains this text.")
    var filter: String?

    func run() throws {
        if let maskbench { try runMaskBench(maskbench) }
        if let testSuite { try runTestSuite(testSuite) }
        if maskbench == nil && testSuite == nil { throw ValidationError("give --maskbench DIR, --test-suite DIR or both") }
    }

    /// The subset a MaskBench file belongs to (`Github_easy---o1234.json` → Github_easy, `BFCL_java_3.json` → BFCL_java).
    static func subset(_ file: String) -> String {
        if let r = file.range(of: "---") { return String(file[..<r.lowerBound]) }
        let stem = file.replacingOccurrences(of: ".json", with: "")
        if let u = stem.lastIndex(of: "_"), Int(stem[stem.index(after: u)...]) != nil { return String(stem[..<u]) }
        return stem
    }

    /// An instance as MaskBench's runner writes it: Python's `json.dumps(data, ensure_ascii=False)` (", " and ": "
    /// separators; integers as written, other numbers as Python's float repr).
    static func pythonDumps(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(d, text):
            if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return text }
            return pythonRepr(d)
        case let .string(s): return JSONValue.quote(s)
        case let .array(items): return "[" + items.map(pythonDumps).joined(separator: ", ") + "]"
        case let .object(members): return "{" + members.map { JSONValue.quote($0.key) + ": " + pythonDumps($0.value) }.joined(separator: ", ") + "}"
        }
    }

    /// Python's `repr(float)`: the shortest round-trip digits, scientific below 1e-4 and from 1e16 on.
    static func pythonRepr(_ d: Double) -> String {
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        let magnitude = abs(d)
        if magnitude >= 1e16 || magnitude < 1e-4 {
            // Swift writes 1e-05 / 1e+16 the same way Python does.
            var s = "\(d)"
            if !s.contains("e") { s = String(format: "%.17g", d) }
            return s
        }
        var s = "\(d)"
        if s.contains("e") { s = String(format: "%.17g", d) }
        if !s.contains(".") { s += ".0" }
        return s
    }

    struct Row: Codable {
        var file: String
        var subset: String
        var compiled: Bool
        var error: String?
        var compileMs: Double
        var approximations: Int
        var valid = 0, invalid = 0, validRejected = 0, invalidAccepted = 0
        var validatorWrong = 0
        /// Invalid instances the automaton reads to an accepting end and only the validator's final check refuses.
        var invalidCaughtAtEnd = 0
        var firstWrong: String?
    }

    func runMaskBench(_ dir: String) throws {
        var files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".json") }.sorted()
        if let filter { files = files.filter { $0.contains(filter) } }
        guard !files.isEmpty else { throw ValidationError("no .json files in \(dir)") }
        var rows: [Row] = []
        var log: FileHandle?
        if let output {
            FileManager.default.createFile(atPath: output, contents: nil)
            log = FileHandle(forWritingAtPath: output)
        }
        let started = ContinuousClock.now
        for (i, file) in files.enumerated() {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))
            let entry = try JSONValue.parse(Array(data))
            guard let schemaDocument = entry["schema"] else { continue }
            var row = Row(file: file, subset: Self.subset(file), compiled: false, compileMs: 0, approximations: 0)
            let clock = ContinuousClock.now
            var automaton: SchemaAutomaton?
            do {
                let schema = try Schema(document: schemaDocument)
                automaton = SchemaAutomaton(schema: schema, maxWhitespace: whitespace, spelling: anySpelling ? .any : .canonical)
                row.compiled = true
                row.approximations = schema.approximations.count
            } catch {
                row.error = "\(error)"
            }
            row.compileMs = (ContinuousClock.now - clock).milliseconds
            if case let .array(tests)? = entry["tests"] {
                for (t, test) in tests.enumerated() {
                    guard let instance = test["data"], case let .bool(valid)? = test["valid"] else { continue }
                    if valid { row.valid += 1 } else { row.invalid += 1 }
                    guard let automaton else { continue }
                    let text = Self.pythonDumps(instance)
                    let accepted = automaton.accepts(text)
                    if valid && !accepted {
                        row.validRejected += 1
                        if row.firstWrong == nil {
                            // Where the automaton stops (the end when it ran to the end and only the validator refused).
                            var s = automaton.initial, at = 0
                            for b in text.utf8 { let n = automaton.step(s, b); if n < 0 { break }; s = n; at += 1 }
                            let bytes = Array(text.utf8)
                            let context = String(decoding: bytes[max(0, at - 80)..<min(bytes.count, at + 20)], as: UTF8.self)
                            row.firstWrong = "test \(t) valid, rejected at byte \(at) of \(bytes.count): …\(context)"
                        }
                    }
                    if !valid && accepted { row.invalidAccepted += 1; row.firstWrong = row.firstWrong ?? "test \(t) invalid, accepted: \(text.prefix(300))" }
                    if !valid && !accepted && automaton.needsValidation {
                        let end = automaton.step(automaton.initial, text.utf8)
                        if end >= 0 && automaton.isAccepting(end) { row.invalidCaughtAtEnd += 1 }
                    }
                    if automaton.schema.violations(of: instance).isEmpty != valid { row.validatorWrong += 1 }
                }
            }
            rows.append(row)
            if let log { log.write(Data((String(decoding: try JSONEncoder().encode(row), as: UTF8.self) + "\n").utf8)) }
            if (i + 1) % 1000 == 0 {
                FileHandle.standardError.write(Data(String(format: "%d/%d schemas, %.0f s\n", i + 1, files.count, (ContinuousClock.now - started).seconds).utf8))
            }
        }
        try? log?.close()
        printMaskBenchTable(rows)
        if let model, maskSchemas > 0 { try timeMasks(model: model, dir: dir, files: files, rows: rows) }
        if generate > 0 {
            guard let model else { throw ValidationError("--generate needs --model") }
            try generateExamples(model: model, dir: dir, rows: rows)
        }
    }

    struct Generated: Codable {
        var file: String
        var schema: String
        var output: String
        var tokens: Int
        var promptTokens: Int
        var cutByBudget: Bool
        var violations: [String]
        var seconds: Double
    }

    /// Generation over a spread sample of compiled schemas: the schema and "produce an example" in the chat template,
    /// greedy, one output per schema, written for an independent validator (scripts/check-generated.py).
    func generateExamples(model path: String, dir: String, rows: [Row]) throws {
        let loaded = try LoadedModel(path: path)
        let vocabulary = VocabularyTrie(tokenizer: loaded.tokenizer)
        let compiled = rows.filter(\.compiled)
        let stride = max(1, compiled.count / generate)
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: generatedOutput).deletingLastPathComponent().path, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: generatedOutput, contents: nil), let log = FileHandle(forWritingAtPath: generatedOutput) else {
            throw ValidationError("cannot write \(generatedOutput)")
        }
        var done = 0, tooLong = 0, cut = 0, invalid = 0, tokens = 0
        var seconds = 0.0
        var index = 0
        while done < generate && index < compiled.count {
            let row = compiled[index]
            index += stride
            let entry = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + row.file))))
            guard let document = entry["schema"] else { continue }
            let schema = try Schema(document: document)
            let messages = [
                ChatMessage(role: "system", content: "You write JSON that is valid under the JSON Schema you are given."),
                ChatMessage(role: "user", content: "JSON Schema:\n\(document.description)\n\nProduce an example: one JSON value valid under this schema."),
            ]
            let prompt = try loaded.chatTokens(messages)
            if prompt.count > maxPromptTokens { tooLong += 1; continue }
            let constraint = TokenConstraint(schema: schema, vocabulary: vocabulary)
            let clock = ContinuousClock.now
            let result = try generateStructured(loaded.model, tokenizer: loaded.tokenizer, prompt: prompt, constraint: constraint,
                                                parameters: GenerateParameters(maxTokens: maxTokens))
            let elapsed = (ContinuousClock.now - clock).seconds
            let line = Generated(file: row.file, schema: document.description, output: result.text, tokens: result.tokens, promptTokens: prompt.count,
                                 cutByBudget: result.completedByConstraint, violations: result.violations.map { "\($0.path): \($0.reason)" }, seconds: elapsed)
            log.write(Data((String(decoding: try JSONEncoder().encode(line), as: UTF8.self) + "\n").utf8))
            done += 1
            tokens += result.tokens
            seconds += elapsed
            if result.completedByConstraint { cut += 1 }
            if !result.violations.isEmpty { invalid += 1 }
            if done % 20 == 0 { FileHandle.standardError.write(Data("\(done)/\(generate) generated, \(Int(seconds)) s\n".utf8)) }
        }
        try log.close()
        print(String(format: "\ngeneration (%@, greedy, budget %d tokens): %d schemas (%d passed over: prompt over %d tokens); valid under our validator %d of %d; cut by the budget %d; %d tokens, %.1f s; outputs in %@ (check them with scripts/check-generated.py)",
                     URL(fileURLWithPath: path).lastPathComponent, maxTokens, done, tooLong, maxPromptTokens, done - invalid, done, cut, tokens, seconds, generatedOutput))
    }

    func printMaskBenchTable(_ rows: [Row]) {
        func line(_ name: String, _ rs: [Row]) -> String {
            let compiled = rs.filter(\.compiled)
            let right = compiled.filter { $0.validRejected == 0 && $0.invalidAccepted == 0 }
            let withTests = rs.filter { $0.valid + $0.invalid > 0 }
            let rightWithTests = right.filter { $0.valid + $0.invalid > 0 }
            let valid = rs.reduce(0) { $0 + $1.valid }, invalid = rs.reduce(0) { $0 + $1.invalid }
            let validRejected = rs.reduce(0) { $0 + $1.validRejected }, invalidAccepted = rs.reduce(0) { $0 + $1.invalidAccepted }
            let times = rs.map(\.compileMs).sorted()
            func q(_ p: Double) -> Double { times.isEmpty ? 0 : times[min(times.count - 1, Int(p * Double(times.count)))] }
            return String(format: "| %@ | %d | %d (%.1f%%) | %d (%.1f%%) | %d of %d (%.1f%%) | %d of %d (%.2f%%) | %d of %d | %.2f / %.1f / %.0f |",
                          name, rs.count, compiled.count, 100 * Double(compiled.count) / Double(max(1, rs.count)),
                          right.count, 100 * Double(right.count) / Double(max(1, rs.count)),
                          rightWithTests.count, withTests.count, 100 * Double(rightWithTests.count) / Double(max(1, withTests.count)),
                          validRejected, valid, 100 * Double(validRejected) / Double(max(1, valid)), invalidAccepted, invalid,
                          q(0.5), q(0.95), times.last ?? 0)
        }
        print("| subset | schemas | compiled | every instance right | of schemas with tests | valid instances rejected | invalid instances accepted | compile ms p50 / p95 / max |")
        print("|---|---|---|---|---|---|---|---|")
        for subset in Set(rows.map(\.subset)).sorted() { print(line(subset, rows.filter { $0.subset == subset })) }
        print(line("**total**", rows))
        let approximated = rows.filter { $0.approximations > 0 }
        let validatorWrong = rows.reduce(0) { $0 + $1.validatorWrong }
        let caughtAtEnd = rows.reduce(0) { $0 + $1.invalidCaughtAtEnd }
        print("\nspelling: \(anySpelling ? "any (members in any order, any escape)" : "canonical, as generated (declaration order, \\u escapes only for control characters)"); schemas compiled with a keyword the validator completes (approximations): \(approximated.count)")
        print("invalid instances the automaton reads to the end and only the validator's final check refuses (a token mask alone would accept them): \(caughtAtEnd)")
        print("validator disagrees with MaskBench's label on \(validatorWrong) instances of compiled schemas")
        var reasons: [String: Int] = [:]
        for r in rows {
            guard let e = r.error else { continue }
            var reason = e
            if let colon = e.range(of: ": ") { reason = String(e[colon.upperBound...]) }
            reason = String(reason.prefix(90))
            reasons[reason, default: 0] += 1
        }
        print("\ncompile errors by reason (first 30):")
        for (reason, n) in reasons.sorted(by: { $0.value > $1.value }).prefix(30) { print("  \(n)  \(reason)") }
    }

    /// MaskBench's protocol for mask time: for each token of each instance, compute the allowed-token mask of the
    /// current state, then advance by the token.
    func timeMasks(model path: String, dir: String, files: [String], rows: [Row]) throws {
        let file = try GGUFFile(path: path)
        let tokenizer = try BPETokenizer(gguf: file)
        let vocabulary = VocabularyTrie(tokenizer: tokenizer)
        let compiled = rows.filter(\.compiled)
        let stride = max(1, compiled.count / max(1, maskSchemas))
        var perToken: [Double] = []
        var firstVisits = 0
        for row in Swift.stride(from: 0, to: compiled.count, by: stride).map({ compiled[$0] }) {
            let entry = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + row.file))))
            guard let document = entry["schema"], let schema = try? Schema(document: document), case let .array(tests)? = entry["tests"] else { continue }
            let constraint = TokenConstraint(schema: schema, vocabulary: vocabulary, maxWhitespace: whitespace, spelling: anySpelling ? .any : .canonical)
            for test in tests {
                guard let instance = test["data"] else { continue }
                var state = constraint.automaton.initial
                for token in tokenizer.encode(Self.pythonDumps(instance), parseSpecial: false) {
                    let clock = ContinuousClock.now
                    let before = constraint.masksComputed
                    let mask = constraint.mask(state)
                    let allowed = mask[token >> 6] & (1 << UInt64(token & 63)) != 0
                    if allowed { state = constraint.automaton.step(state, vocabulary.tokenBytes[token]) }
                    perToken.append((ContinuousClock.now - clock).seconds * 1e6)
                    firstVisits += constraint.masksComputed - before
                    if !allowed || state < 0 { break }
                }
            }
        }
        perToken.sort()
        func q(_ p: Double) -> Double { perToken.isEmpty ? 0 : perToken[min(perToken.count - 1, Int(p * Double(perToken.count)))] }
        let mean = perToken.reduce(0, +) / Double(max(1, perToken.count))
        print(String(format: "\nmask time per token (%@ tokenizer, %d tokens of %d schemas' instances, %d first visits): mean %.1f µs, p50 %.1f µs, p75 %.1f µs, p99 %.0f µs, max %.0f µs",
                     URL(fileURLWithPath: path).lastPathComponent, perToken.count, (compiled.count + stride - 1) / stride, firstVisits,
                     mean, q(0.5), q(0.75), q(0.99), perToken.last ?? 0))
    }

    func runTestSuite(_ dir: String) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".json") }.sorted()
        // Remote and dynamic references are outside the target; everything else counts.
        let excluded: Set<String> = ["refRemote.json", "dynamicRef.json"]
        var total = 0, passed = 0, excludedTests = 0
        var failures: [String] = []
        print("| file | passed |")
        print("|---|---|")
        for file in files {
            let groups = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))))
            guard case let .array(list) = groups else { continue }
            var filePassed = 0, fileTotal = 0
            for group in list {
                guard let schema = group["schema"], case let .array(tests)? = group["tests"] else { continue }
                let validator = JSONSchemaValidator(document: schema)
                for test in tests {
                    guard let data = test["data"], case let .bool(valid)? = test["valid"] else { continue }
                    fileTotal += 1
                    if validator.violations(of: data).isEmpty == valid { filePassed += 1 } else if !excluded.contains(file) {
                        failures.append("\(file): \(group["description"]?.stringValue ?? "") / \(test["description"]?.stringValue ?? "")")
                    }
                }
            }
            if excluded.contains(file) { excludedTests += fileTotal } else { total += fileTotal; passed += filePassed }
            print("| \(file)\(excluded.contains(file) ? " (excluded)" : "") | \(filePassed) of \(fileTotal) |")
        }
        print(String(format: "\nvalidator: %d of %d required tests passed (%.1f%%), %d in remote/dynamic references excluded", passed, total,
                     100 * Double(passed) / Double(max(1, total)), excludedTests))
        for f in failures.prefix(80) { print("  fails: \(f)") }
    }
}
