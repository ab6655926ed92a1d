// Builds the out-of-scope protocol (issue 16; README, "Out-of-scope traffic and audits") from the shared data:
//
//   swift scripts/make-scope-data.swift [OUTPUT_FOLDER]        (default reports/scope)
//
// Banking77: every fourth intent of the file (the 4th, 8th, … 76th in order of first appearance: 19 of 77) is held
// out as unknown. The even-numbered ones of those (10 intents) are the *seen* kinds of out-of-scope input: 80% of
// their rows go into the training file labelled `out_of_scope`, the rest into the test. The other 9 are *unseen*:
// they appear only in the test. The 58 in-scope intents are split 80/20 per intent. The test mixes the in-scope
// 20% with out-of-scope items at the share they have in the training file (seen and unseen kinds in equal numbers),
// so the certificate's assumption about the out-of-scope share holds and only the kinds differ.
//
// Support: the synthetic support messages (examples/support/messages.csv) split 80/20 per queue; SMS messages
// (ham and spam) are the seen far-out-of-domain kind (400 in training, 100 in the test) and SNIPS voice-assistant
// requests the unseen kind (100 in the test). Its spec configures `expected_share: 0.1`.
//
// Writes banking77-train.csv, banking77-test.csv, banking77-outside.csv (every held-out out-of-scope row), three
// Banking77 specs (banking77-oos.yaml: out-of-scope calibration items scored by the served head; -kinds.yaml: each
// scored by a head that never saw its intent; -kinds-5.yaml: that, at an expected 5% out-of-scope share), support-train.csv, support-test.csv and
// support-oos.yaml (columns text,label,kind,source; kind is in_scope, seen or unseen, source the row's intent, queue
// or dataset and label, which the specs name as out_of_scope.kind_column). A seeded SplitMix64 drives every
// choice: each run writes the same files.

import Foundation

struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Fisher-Yates with this generator (the standard library's shuffle may change with the toolchain).
    mutating func shuffled<T>(_ items: [T]) -> [T] {
        var a = items
        if a.count < 2 { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(next() % UInt64(i + 1))) }
        return a
    }
}

/// RFC 4180 rows of a UTF-8 file (quoted fields may hold commas, quotes and line breaks), header first.
func readCSV(_ path: String) throws -> [[String]] {
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    var rows: [[String]] = [], row: [String] = [], field: [UInt8] = [], quoted = false, i = 0
    func endField() { row.append(String(decoding: field, as: UTF8.self)); field = [] }
    while i < bytes.count {
        let b = bytes[i]
        if quoted {
            if b == UInt8(ascii: "\"") {
                if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") { field.append(b); i += 1 } else { quoted = false }
            } else { field.append(b) }
        } else if b == UInt8(ascii: "\"") && field.isEmpty {
            quoted = true
        } else if b == UInt8(ascii: ",") {
            endField()
        } else if b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") {
            if b == UInt8(ascii: "\r") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\n") { i += 1 }
            endField(); rows.append(row); row = []
        } else { field.append(b) }
        i += 1
    }
    if !field.isEmpty || !row.isEmpty { endField(); rows.append(row) }
    return rows
}

/// (text, label) pairs of a CSV with columns `text` and `label`.
func pairs(_ path: String, label: String = "label") throws -> [(text: String, label: String)] {
    let rows = try readCSV(path)
    guard let t = rows[0].firstIndex(of: "text"), let l = rows[0].firstIndex(of: label) else {
        fatalError("\(path): expected columns text and \(label), found \(rows[0])")
    }
    return rows.dropFirst().filter { $0.count == rows[0].count }.map { ($0[t], $0[l]) }
}

func csvField(_ value: String) -> String {
    let special = value.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 }
    return special ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
}

func write(_ rows: [(text: String, label: String, kind: String, source: String)], to path: String) throws {
    var out = "text,label,kind,source\n"
    for r in rows { out += [r.text, r.label, r.kind, r.source].map(csvField).joined(separator: ",") + "\n" }
    try out.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Splits each label's items: `fraction` of them (rounded) to the second part.
func split(_ items: [(text: String, label: String)], fraction: Double, rng: inout SplitMix64) -> (first: [(text: String, label: String)], second: [(text: String, label: String)]) {
    var order: [String] = [], groups: [String: [(text: String, label: String)]] = [:]
    for item in items {
        if groups[item.label] == nil { order.append(item.label) }
        groups[item.label, default: []].append(item)
    }
    var first: [(text: String, label: String)] = [], second: [(text: String, label: String)] = []
    for label in order {
        let shuffled = rng.shuffled(groups[label]!)
        let take = Int((Double(shuffled.count) * fraction).rounded())
        second += shuffled.prefix(take)
        first += shuffled.dropFirst(take)
    }
    return (first, second)
}

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
let shared = root + "/../shared/data"
let output = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : root + "/reports/scope"
try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
var rng = SplitMix64(seed: 16)

// MARK: Banking77

let banking = try pairs(shared + "/banking77/train.csv")
var intents: [String] = []
for item in banking where !intents.contains(item.label) { intents.append(item.label) }
let unknown = intents.enumerated().filter { $0.offset % 4 == 3 }.map(\.element)
let seenKinds = Set(unknown.enumerated().filter { $0.offset % 2 == 0 }.map(\.element))
let unseenKinds = Set(unknown).subtracting(seenKinds)
let inScopeIntents = intents.filter { !unknown.contains($0) }

let (inTrain, inTest) = split(banking.filter { !unknown.contains($0.label) }, fraction: 0.2, rng: &rng)
let (seenTrain, seenTest) = split(banking.filter { seenKinds.contains($0.label) }, fraction: 0.2, rng: &rng)
let unseen = rng.shuffled(banking.filter { unseenKinds.contains($0.label) })
// The test's out-of-scope share is the training file's, half seen kinds and half unseen.
let trainShare = Double(seenTrain.count) / Double(seenTrain.count + inTrain.count)
let outCount = Int((trainShare / (1 - trainShare) * Double(inTest.count)).rounded())
let seenInTest = Array(rng.shuffled(seenTest).prefix(outCount / 2)), unseenInTest = Array(unseen.prefix(outCount - outCount / 2))
precondition(seenInTest.count == outCount / 2 && unseenInTest.count == outCount - outCount / 2, "not enough out-of-scope rows")

try write(inTrain.map { ($0.text, $0.label, "in_scope", $0.label) } + seenTrain.map { ($0.text, "out_of_scope", "seen", $0.label) },
          to: output + "/banking77-train.csv")
try write(inTest.map { ($0.text, $0.label, "in_scope", $0.label) } + seenInTest.map { ($0.text, "out_of_scope", "seen", $0.label) }
          + unseenInTest.map { ($0.text, "out_of_scope", "unseen", $0.label) }, to: output + "/banking77-test.csv")
// Every held-out out-of-scope row, for out-of-scope recall by kind on more items than the mixed test holds.
try write(seenTest.map { ($0.text, "out_of_scope", "seen", $0.label) } + unseen.map { ($0.text, "out_of_scope", "unseen", $0.label) },
          to: output + "/banking77-outside.csv")
/// The Banking77 spec: `name`, and the lines added under `out_of_scope:`.
func bankingSpec(_ name: String, _ extra: [String], note: String) -> String {
    """
    # Banking77 with a quarter of its intents held out as unknown (scripts/make-scope-data.swift writes this file).
    # \(note)
    # Seen out-of-scope kinds in training: \(seenKinds.sorted().joined(separator: ", ")).
    # Unseen kinds, only in the test: \(unseenKinds.sorted().joined(separator: ", ")).
    name: \(name)
    description: Route a bank customer's message to one of 58 intents, or say it is none of them.
    backbone: {model: minilm, layers: [4, 6]}
    template: "{text}"
    max_input_tokens: 128
    confidence: 0.95
    risk_classes:
      standard: {target_error: 0.02, on_reject: escalate}
    labels:
    \(inScopeIntents.map { "  \"\($0)\": standard" }.joined(separator: "\n"))
    out_of_scope:
      label: out_of_scope
      description: A banking question outside these intents.
    \(extra.map { "  " + $0 }.joined(separator: "\n"))
    tiers:
      currency: "$"
      small: {name: MiniLM adapter (in-process), cost_per_1k: 0.01}
      large: {name: large model, endpoint: "http://localhost:8000/v1", model: large, cost_per_1k: 1.50}
      human: {name: review, queue: banking-review, cost_per_1k: 250}
    adapter: \(name).adapter.json
    data: {text_column: text, label_column: label}
    training:
      calibration_fraction: 0.25
      seed: 7
      folds: 5
      l2_grid: [0.001, 0.003]
      lexical: {min_documents: 2, l2_grid: [0.00001]}

    """
}
for (name, extra, note) in [
    ("banking77-oos", [String](), "Out-of-scope calibration items are scored by the served head, at the training file's share."),
    ("banking77-oos-kinds", ["kind_column: source"], "Each out-of-scope calibration item is scored by a head that never saw its intent, at the training file's share."),
    ("banking77-oos-kinds-5", ["kind_column: source", "expected_share: 0.05"], "As banking77-oos-kinds, with calibration at an expected 5% out-of-scope share."),
] {
    try bankingSpec(name, extra, note: note).write(toFile: output + "/\(name).yaml", atomically: true, encoding: .utf8)
}

// MARK: Support

let support = try pairs(root + "/examples/support/messages.csv", label: "queue")
/// The items with each text's first occurrence only (the SMS corpus repeats messages).
func distinct(_ items: [(text: String, label: String)]) -> [(text: String, label: String)] {
    var seen = Set<String>()
    return items.filter { seen.insert($0.text).inserted }
}
let (supportTrainAll, supportTestAll) = split(support, fraction: 0.2, rng: &rng)
// A text in both parts would not be held out: the test keeps only texts the training file lacks.
let supportTrain = supportTrainAll, trainTexts = Set(supportTrainAll.map(\.text))
let supportTest = supportTestAll.filter { !trainTexts.contains($0.text) }
let sms = rng.shuffled(distinct(try pairs(shared + "/sms_spam/all.csv")))
let snips = rng.shuffled(distinct(try pairs(shared + "/snips/train.csv")))
try write(supportTrain.map { ($0.text, $0.label, "in_scope", $0.label) } + sms.prefix(400).map { ($0.text, "out_of_scope", "seen", "sms_" + $0.label) },
          to: output + "/support-train.csv")
try write(supportTest.map { ($0.text, $0.label, "in_scope", $0.label) } + sms.dropFirst(400).prefix(100).map { ($0.text, "out_of_scope", "seen", "sms_" + $0.label) }
          + snips.prefix(100).map { ($0.text, "out_of_scope", "unseen", "snips_" + $0.label) }, to: output + "/support-test.csv")
var supportSpec = try String(contentsOfFile: root + "/examples/support/task.yaml", encoding: .utf8)
for (from, to) in [("name: support-queue\n", "name: support-queue-oos\n"), ("adapter: support-queue.adapter.json", "adapter: support-queue-oos.adapter.json"),
                   ("data: {text_column: text, label_column: queue}", "data: {text_column: text, label_column: label}"),
                   ("backbone: {model: minilm", "out_of_scope:\n  label: out_of_scope\n  description: Not a message for Larkspur Home Internet's support team.\n  expected_share: 0.1\n  kind_column: source\nbackbone: {model: minilm")] {
    precondition(supportSpec.contains(from), "examples/support/task.yaml changed: no '\(from)'")
    supportSpec = supportSpec.replacingOccurrences(of: from, with: to)
}
supportSpec = supportSpec.replacingOccurrences(of: "\nname:", with: "\n# With SMS messages as out-of-scope examples (scripts/make-scope-data.swift writes this file).\nname:")
try supportSpec.write(toFile: output + "/support-oos.yaml", atomically: true, encoding: .utf8)
print("wrote \(output): Banking77 \(inTrain.count) + \(seenTrain.count) out-of-scope training rows, test \(inTest.count) in scope + \(seenInTest.count) seen + \(unseenInTest.count) unseen; support \(supportTrain.count) + 400 training rows, test \(supportTest.count) + 100 seen + 100 unseen")
