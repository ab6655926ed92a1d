import Foundation
import Testing
import Datasets
@testable import Cascade
@testable import Statistics

/// Members of a JSON object line.
func jsonObject(_ line: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

/// A decision with every member set, for shape tests.
func sampleDecision(route: Route = .escalate, reason: Reason = .outOfScope) -> Decision {
    Decision(
        label: "billing", probability: 0.31, route: route, reason: reason, detail: "top probability 0.310 is below the floor",
        riskClass: "standard", destination: "large model at http://localhost:8000/v1", highRiskMass: ["high": 0.02],
        alternatives: [.init(label: "billing", probability: 0.31), .init(label: "refund", probability: 0.2)],
        timings: .init(backbone: 1.5, head: 0.1, policy: 0.05, total: 1.65))
}

/// The command line's shapes without a model: decision JSON, decide lines, labelled data, adapter messages, held-out checks.
@Suite struct CLIShapeTests {
    /// The API's names for routes, tiers and reasons; the raw values that specs and adapters use stay as they were.
    @Test func routesAndReasonsHaveTheAPINames() {
        #expect(Route.allCases.map(\.outcome) == ["accepted", "escalated", "review"])
        #expect(Route.allCases.map(\.tier) == ["small", "large", "human"])
        #expect(Route.allCases.map(\.rawValue) == ["accept", "escalate", "review"])
        #expect(Reason.outOfScope.apiName == "out_of_scope" && Reason.outOfScope.rawValue == "outOfScope")
        #expect(Reason.allCases.map(\.apiName) == [
            "confident", "below_threshold", "uncertified", "high_risk_mass", "out_of_scope", "always_review", "rule", "zero_shot",
        ])
        for route in Route.allCases { #expect(Route(outcome: route.outcome) == route) }
        for reason in Reason.allCases { #expect(Reason(apiName: reason.apiName) == reason) }
        #expect(Route(outcome: "accept") == nil && Reason(apiName: "outOfScope") == nil)
    }

    /// The user report: the CLI printed `route: "accept"`, `reason: "outOfScope"`, `riskClass`, `probability`; the API
    /// says `accepted`, `out_of_scope`, `risk_class`, `tier`, `confidence`, `latency_ms`. Now both say the latter.
    @Test func decisionEncodesInTheAPIShape() throws {
        let line = String(decoding: try JSONEncoder().encode(sampleDecision()), as: UTF8.self)
        let o = try jsonObject(line)
        #expect(Set(o.keys) == ["label", "confidence", "route", "reason", "detail", "risk_class", "tier", "alternatives",
                                "high_risk_mass", "latency_ms", "destination"])
        #expect(o["route"] as? String == "escalated" && o["reason"] as? String == "out_of_scope" && o["tier"] as? String == "large")
        #expect(o["confidence"] as? Double == 0.31 && o["risk_class"] as? String == "standard")
        let alternatives = try #require(o["alternatives"] as? [[String: Any]])
        #expect(alternatives.count == 2 && alternatives[1]["label"] as? String == "refund" && alternatives[1]["probability"] as? Double == 0.2)
        #expect((o["latency_ms"] as? [String: Any])?.keys.sorted() == ["backbone", "head", "policy", "total"])
        #expect((o["high_risk_mass"] as? [String: Any])?["high"] as? Double == 0.02)
        let accepted = try jsonObject(String(decoding: try JSONEncoder().encode(sampleDecision(route: .accept, reason: .confident)), as: UTF8.self))
        #expect(accepted["route"] as? String == "accepted" && accepted["tier"] as? String == "small" && accepted["reason"] as? String == "confident")
    }

    /// The user report: `decide "my internet is down" ""` printed one line for two inputs, without saying which. Now
    /// every input has a line with its index and text, a refused one an error object.
    @Test func everyInputHasALineThatNamesIt() throws {
        let inputs = ["my internet is down", "", "-"]
        func decide(_ text: String) throws -> Decision {
            if text.isEmpty { throw InputError(message: "the input is empty") }
            return sampleDecision(route: .accept, reason: .confident)
        }
        let lines = try inputs.enumerated().map { try DecisionLine(index: $0.offset, input: $0.element, decide: decide) }
        #expect(lines.map(\.refused) == [false, true, false])
        let objects = try lines.map { try jsonObject(try $0.json()) }
        #expect(objects.map { $0["index"] as? Int } == [0, 1, 2])
        #expect(objects.map { $0["input"] as? String } == inputs)
        #expect(objects[0]["route"] as? String == "accepted" && objects[0]["error"] == nil)
        let error = try #require(objects[1]["error"] as? [String: Any])
        #expect(error["message"] as? String == "the input is empty" && error["type"] as? String == "invalid_request_error")
        #expect(Set(objects[1].keys) == ["index", "input", "error"])
        #expect(try lines[0].json().hasPrefix("{\"index\":0,\"input\":\"my internet is down\",\"alternatives\":"))
        #expect(try lines[1].json() == "{\"index\":1,\"input\":\"\",\"error\":{\"message\":\"the input is empty\",\"type\":\"invalid_request_error\"}}")
        // Any encoder gives the same members.
        for (line, object) in zip(lines, objects) {
            let encoded = try jsonObject(String(decoding: try JSONEncoder().encode(line), as: UTF8.self))
            #expect(NSDictionary(dictionary: encoded).isEqual(to: object))
        }
        // Text is kept exactly, line breaks and all.
        let odd = DecisionLine(index: 7, input: "two\nlines \"quoted\" / é", result: .failure(InputError(message: "x")))
        #expect(try jsonObject(try odd.json())["input"] as? String == "two\nlines \"quoted\" / é")
        // Errors other than a refused input are not turned into lines.
        struct Broken: Error {}
        #expect(throws: Broken.self) { try DecisionLine(index: 0, input: "a") { _ in throw Broken() } }
    }

    func csv(_ rows: [(String, String)]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-\(UUID().uuidString).csv").path
        try (["text,label"] + rows.map { "\"\($0.0)\",\($0.1)" }).joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The user report: a file with labels outside the spec was refused with no way through. The refusal names every
    /// unknown label and the flag; with the flag those rows are left out and counted per label.
    @Test func unknownLabelsAreRefusedOrSkipped() throws {
        let spec = try loadSpec(baseSpec)
        let path = try csv([("a bill", "billing"), ("my cat", "pets"), ("down again", "outage"), ("a dog", "pets"), ("weather", "misc")])
        do {
            _ = try LabelledData.load(path, spec: spec)
            Issue.record("unknown labels were accepted")
        } catch let error as DataError {
            #expect(error.message.contains("'pets' (2 rows: 3, 5)") && error.message.contains("'misc' (1 row: 6)"))
            #expect(error.message.contains("--skip-unknown-labels"))
        }
        let data = try LabelledData.load(path, spec: spec, skipUnknownLabels: true)
        #expect(data.texts == ["a bill", "down again"] && data.labels == [0, 1])
        #expect(data.skipped == ["pets": 2, "misc": 1])
        #expect(data.skippedSummary?.contains("left out 3 rows with labels that are not the task's: 'pets' (2), 'misc' (1)") == true)
        #expect(try LabelledData.load(try csv([("a bill", "billing")]), spec: spec).skippedSummary == nil)
        #expect(throws: DataError.self) { try LabelledData.load(try csv([("x", "pets")]), spec: spec, skipUnknownLabels: true) }
    }

    /// The user report: the command suggested after an adapter mismatch could not be run as printed (no `--data`).
    @Test func retrainSuggestionsCarryData() throws {
        let spec = try loadSpec(baseSpec)
        var trained = adapter(for: spec, thresholds: [0.9, 0.9], massBound: 0.1)
        trained.labels = ["billing", "outage", "legal", "extra"]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-\(UUID().uuidString).adapter.json").path
        func message() throws -> String {
            try trained.write(to: path)
            do {
                _ = try Adapter.load(path, for: spec, backboneDigest: "b", backboneIdentifier: "b", templateDigest: "t")
            } catch let error as AdapterError {
                return error.message
            }
            Issue.record("a mismatched adapter was accepted")
            return ""
        }
        #expect(try message().contains("microscale train --task \(spec.file) --data LABELLED.csv"))
        let data = try csv([("a bill", "billing")])
        trained.dataFile = data
        #expect(try message().contains("microscale train --task \(spec.file) --data \(data)` (the file it was trained on)"))
        trained.kind = .zeroShot
        #expect(try message().contains("--zero-shot"))
        let missing = "/nonexistent-\(UUID().uuidString)/adapter.json"
        do {
            _ = try Adapter.load(missing, for: spec, backboneDigest: "b", backboneIdentifier: "b", templateDigest: "t")
        } catch let error as AdapterError {
            #expect(error.message.contains("--data LABELLED.csv"))
        }
    }

    /// The user report: `eval` on the training file printed "held-out" figures. The digest the adapter stores, and the
    /// fingerprints of its training texts, tell.
    @Test func evaluationOnTrainingDataIsFlagged() throws {
        let spec = try loadSpec(baseSpec)
        var trained = adapter(for: spec, thresholds: [0.9, 0.9], massBound: 0.1)
        trained.dataSHA256 = "abc123"
        trained.trainingTexts = Adapter.fingerprints(["a bill", "down again", "a bill"])
        #expect(trained.trainedOn(["a bill", "new text", "down again", "a bill "]) == [true, false, true, false])
        let same = Evaluation.trainingOverlap(adapter: trained, dataDigest: "abc123", texts: ["new text"])
        #expect(same.count == 1 && same[0].contains("trained on") && same[0].contains("NOT held-out"))
        let some = Evaluation.trainingOverlap(adapter: trained, dataDigest: "other", texts: ["a bill", "new", "newer", "newest"])
        #expect(some == ["1 of 4 evaluated texts (25%) are training texts of the adapter: figures on them are NOT held-out"])
        #expect(Evaluation.trainingOverlap(adapter: trained, dataDigest: "other", texts: ["new"]).isEmpty)
        // Adapters written before fingerprints were stored still load, and only the digest can tell.
        trained.trainingTexts = nil
        #expect(trained.trainedOn(["a bill"]) == nil)
        #expect(Evaluation.trainingOverlap(adapter: trained, dataDigest: "other", texts: ["a bill"]).isEmpty)
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(trained)) as! [String: Any]
        json["dataFile"] = nil
        json["trainingTexts"] = nil
        let old = try JSONDecoder().decode(Adapter.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.dataFile == nil && old.trainingTexts == nil)
    }
}

/// The `microscale` binary on the support task with a small adapter (release build and MiniLM needed): decide's
/// inputs and lines, eval on the training file, trial's adapter path, unknown labels, the retrain suggestion.
@Suite(.serialized) struct CLICommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    }

    static let binary: String? = ["release", "debug"].map { ProjectPaths.root + "/.build/\($0)/microscale" }
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    func run(_ arguments: [String], stdin: String? = nil, in folder: String) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.binary, "build the microscale binary first"))
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let out = folder + "/.out-\(UUID().uuidString)", err = folder + "/.err-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: try String(contentsOfFile: out, encoding: .utf8),
                   stderr: try String(contentsOfFile: err, encoding: .utf8))
    }

    /// `drift` reads a log; it never creates one where a path is mistyped, and refuses a task the file does not serve.
    @Test func driftRefusesAMissingLogAndAnUnknownTask() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-drift-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try """
        store: sqlite:typo/decisions.sqlite
        tasks: [\(ProjectPaths.root)/examples/support/task.yaml]
        """.write(toFile: folder + "/serve.yaml", atomically: true, encoding: .utf8)
        let missing = try run(["drift", "--config", "serve.yaml"], in: folder)
        #expect(missing.status != 0 && missing.stderr.contains("no decision log"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/typo"))
        let unknown = try run(["drift", "--config", "serve.yaml", "--task", "nope"], in: folder)
        #expect(unknown.status != 0 && unknown.stderr.contains("no task 'nope'"), "\(unknown.stderr)")
    }

    /// `run --stop` reads backslash escapes (a shell passes "\\n" as two characters): `\\n\\n` stops at a blank line,
    /// and an unknown escape is an error naming it.
    @Test func runReadsEscapesInStopStrings() throws {
        let model = ProjectPaths.models + "/SmolLM2-135M-Instruct.Q4_1.gguf"
        let folder = FileManager.default.temporaryDirectory.path
        let bad = try run(["run", "--model", model, "--stop", "\\q", "hi"], in: folder)
        #expect(bad.status != 0 && bad.stderr.contains("unknown escape \\q"), "\(bad.stderr)")
        let open = try run(["run", "--model", model, "--stop", "\\u{41", "hi"], in: folder)
        #expect(open.status != 0 && open.stderr.contains("no closing brace"), "\(open.stderr)")
        // A raw continuation with a paragraph break stops before it.
        let ok = try run(["run", "--model", model, "--raw", "-n", "60", "--stop", "\\n", "Title: A day at sea\n\nIt was"], in: folder)
        #expect(ok.status == 0, "\(ok.stderr)")
        // The command ends its output with one newline of its own; the generated text has none.
        #expect(ok.stdout.hasSuffix("\n") && !ok.stdout.dropLast().contains("\n"), "\(ok.stdout)")
    }

    /// A CSV of `rows`, quoted as RFC 4180 wants.
    func writeCSV(_ rows: [(text: String, label: String)], to path: String) throws {
        func quote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        try (["text,queue"] + rows.map { quote($0.text) + "," + quote($0.label) }).joined(separator: "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func commandsOnTheSupportTask() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let task = folder + "/task.yaml"
        try FileManager.default.copyItem(atPath: ProjectPaths.root + "/examples/support/task.yaml", toPath: task)
        let table = try CSVTable(path: ProjectPaths.root + "/examples/support/messages.csv")
        let rows = Array(zip(try table.column("text"), try table.column("queue")))
        // Training: the first 60 messages of each queue; unseen: the next 10 of each.
        var perLabel = [String: Int](), training = [(text: String, label: String)](), unseen = [(text: String, label: String)]()
        for row in rows {
            let n = perLabel[row.1, default: 0]
            perLabel[row.1] = n + 1
            if n < 60 { training.append(row) } else if n < 70 { unseen.append(row) }
        }
        let train = folder + "/train.csv", withUnknown = folder + "/unknown.csv", fresh = folder + "/fresh.csv", mixed = folder + "/mixed.csv"
        try writeCSV(training, to: train)
        try writeCSV(training + [("my cat ate the router cable", "pets"), ("the dog barks at the router", "pets")], to: withUnknown)
        try writeCSV(unseen, to: fresh)
        try writeCSV(unseen + training.prefix(10), to: mixed)

        // Unknown labels: refused by default, naming the flag; left out and counted with it.
        let refused = try run(["train", "--task", task, "--data", withUnknown], in: folder)
        #expect(refused.status != 0 && refused.stderr.contains("'pets' (2 rows") && refused.stderr.contains("--skip-unknown-labels"))
        let trained = try run(["train", "--task", task, "--data", withUnknown, "--skip-unknown-labels"], in: folder)
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stdout.contains("left out 2 rows with labels that are not the task's: 'pets' (2)"))
        let adapterPath = folder + "/support-queue.adapter.json"
        let adapterBytes = try Data(contentsOf: URL(fileURLWithPath: adapterPath))

        // decide: arguments, standard input, files; one line per input, in order, refused ones too.
        let args = try run(["decide", "--task", task, "my internet is down", ""], in: folder)
        #expect(args.status == 2 && args.lines.count == 2)
        let first = try jsonObject(args.lines[0]), second = try jsonObject(args.lines[1])
        #expect(first["index"] as? Int == 0 && first["input"] as? String == "my internet is down" && first["label"] as? String == "outage")
        #expect(["accepted", "escalated", "review"].contains(first["route"] as? String ?? "") && first["risk_class"] != nil && first["tier"] != nil)
        #expect(second["index"] as? Int == 1 && second["input"] as? String == "" && (second["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
        let piped = try run(["decide", "--task", task, "-"], stdin: "a\nb\r\n\nmy router will not connect\n", in: folder)
        #expect(piped.status == 2 && piped.lines.count == 4, "\(piped.stdout)")
        #expect(try piped.lines.map { try jsonObject($0)["input"] as? String } == ["a", "b", "", "my router will not connect"])
        #expect(try piped.lines.map { try jsonObject($0)["index"] as? Int } == [0, 1, 2, 3])
        let mixedArguments = try run(["decide", "--task", task, "first", "-", "last"], stdin: "middle\n", in: folder)
        #expect(try mixedArguments.lines.map { try jsonObject($0)["input"] as? String } == ["first", "middle", "last"])
        let fromStdinOption = try run(["decide", "--task", task, "--input", "-"], stdin: "one\ntwo", in: folder)
        #expect(fromStdinOption.status == 0 && fromStdinOption.lines.count == 2)
        let jsonl = folder + "/inputs.jsonl"
        try "{\"text\": \"my bill is wrong\"}\n\n{\"id\": 3}\n{\"text\": \"wifi drops\"}\n".write(toFile: jsonl, atomically: true, encoding: .utf8)
        let fromJSONL = try run(["decide", "--task", task, "--input", jsonl], in: folder)
        #expect(fromJSONL.status == 2 && fromJSONL.lines.count == 3)
        #expect(try jsonObject(fromJSONL.lines[1])["error"] != nil && jsonObject(fromJSONL.lines[2])["input"] as? String == "wifi drops")
        let fromCSV = try run(["decide", "--task", task, "--input", fresh], in: folder)
        #expect(fromCSV.status == 0 && fromCSV.lines.count == unseen.count)
        #expect(try jsonObject(fromCSV.lines[5])["input"] as? String == unseen[5].text)
        let text = folder + "/inputs.txt"
        try "a\n".write(toFile: text, atomically: true, encoding: .utf8)
        let wrongExtension = try run(["decide", "--task", task, "--input", text], in: folder)
        #expect(wrongExtension.status != 0 && wrongExtension.stderr.contains("unsupported extension '.txt'"))
        #expect(try run(["decide", "--task", task], in: folder).status != 0)

        // eval on the training file says the figures are not held-out; on unseen rows it does not; overlap is counted.
        let onTraining = try run(["eval", "--task", task, "--data", withUnknown, "--skip-unknown-labels", "--report", folder + "/eval.html",
                                  "--latency-samples", "0"], in: folder)
        #expect(onTraining.status == 0, "\(onTraining.stderr)")
        #expect(onTraining.stderr.contains("WARNING") && onTraining.stderr.contains("trained on"))
        #expect(onTraining.stdout.contains("evaluated (NOT held-out) items") && !onTraining.stdout.contains(" held-out items"))
        #expect(try String(contentsOfFile: folder + "/eval.html", encoding: .utf8).contains("WARNING"))
        let onFresh = try run(["eval", "--task", task, "--data", fresh, "--report", folder + "/fresh.html", "--latency-samples", "0"], in: folder)
        #expect(onFresh.status == 0 && !onFresh.stderr.contains("WARNING") && onFresh.stdout.contains("\(unseen.count) held-out items"))
        let onMixed = try run(["eval", "--task", task, "--data", mixed, "--report", folder + "/mixed.html", "--latency-samples", "0"], in: folder)
        #expect(onMixed.stderr.contains("10 of \(unseen.count + 10) evaluated texts"))

        // trial writes its own adapter, not the one serve and decide use.
        let trial = try run(["trial", "--task", task, "--data", train, "--resplits", "0", "--latency-samples", "0", "--report", folder + "/trial.html"], in: folder)
        #expect(trial.status == 0, "\(trial.stderr)")
        #expect(trial.stdout.contains("trial adapter written to reports/support-queue.trial.adapter.json"))
        #expect(FileManager.default.fileExists(atPath: folder + "/reports/support-queue.trial.adapter.json"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: adapterPath)) == adapterBytes, "trial must leave the spec's adapter alone")
        let explicit = try run(["trial", "--task", task, "--data", train, "--resplits", "0", "--latency-samples", "0", "--report",
                                folder + "/trial.html", "--output", adapterPath], in: folder)
        #expect(explicit.status == 0 && explicit.stdout.contains("serve and decide now use it"))

        // A mismatched adapter names the retrain command with the data it was trained on.
        try String(contentsOfFile: task, encoding: .utf8).replacingOccurrences(of: "target_error: 0.05", with: "target_error: 0.04")
            .write(toFile: task, atomically: true, encoding: .utf8)
        let mismatch = try run(["decide", "--task", task, "hello"], in: folder)
        #expect(mismatch.status != 0 && mismatch.stderr.contains("--data \(URL(fileURLWithPath: train).standardizedFileURL.path)"), "\(mismatch.stderr)")
        try? FileManager.default.removeItem(atPath: folder)
    }
}
