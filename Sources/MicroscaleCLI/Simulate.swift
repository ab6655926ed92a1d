import ArgumentParser
import AsyncHTTPClient
import Cascade
import Datasets
import Foundation
import Logging
import NIOCore
import Server
import Statistics
import Store
import StructuredOutput

/// `microscale simulate`: the learning loop end to end, with a labelled file playing traffic, teacher and reviewers.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream a labelled file through `microscale serve` as traffic and run the learning loop round by round: a small human-labelled seed, a stand-in teacher with a stated error rate as the larger tier, reviewers played by the true labels, retrain and promotion through the gate after every round.",
        discussion: """
            The file is split (seeded): a held-out part (--test FILE, or --holdout-share of the file by text hash) \
            never seen as traffic or training, a seed of --seed-per-label items per label, and the rest as traffic in \
            rounds of --round-size. The service is a real `microscale serve` process on its own SQLite store in the \
            work folder; the teacher is an in-process stand-in (`microscale teacher-stub`) that answers the true label, \
            wrong at --teacher-error. After each round every pending review item is answered with its true label, \
            `retrain` runs on the log, and a candidate that passes the gate is promoted; the service picks it up \
            without a restart. Each round reports, on the traffic: accepted share, escalated share, review load and \
            cost per 1,000 by tier (against everything to the larger tier with the same review of high-risk answers); \
            on the held-out part: the served adapter's coverage and error among accepted with its Clopper-Pearson bound.
            """)

    @Option(help: "The task spec (YAML).")
    var task: String
    @Option(help: "Labelled CSV: seed, traffic and (without --test) the held-out part.")
    var data: String
    @Option(help: "Labelled CSV held out for the realised error (default: --holdout-share of --data).")
    var test: String?
    @Option(help: "Share of --data held out when no --test is given (default 0.2).")
    var holdoutShare: Double?
    @Option(help: "Human-labelled seed items per label.")
    var seedPerLabel = 5
    @Option(help: "Rounds.")
    var rounds = 6
    @Option(help: "Traffic items per round.")
    var roundSize = 1000
    @Option(help: "The stand-in teacher's error rate.")
    var teacherError = 0.05
    @Option(help: "Share of the teacher's answers people check (learning.review_share).")
    var reviewShare = 0.1
    @Option(help: "Share of the human-labelled texts (outside the retrain's holdout) that calibrate (learning.calibration_share).")
    var calibrationShare = 0.5
    @Option(help: "Work folder (store, adapters, the service's log); emptied first.")
    var work: String?
    @Option(help: "HTML report (default reports/TASK.simulation.html); a JSON table is written beside it.")
    var report: String?
    @Option(help: "Shuffle seed.")
    var seed = 7
    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    func validate() throws {
        guard rounds >= 1, roundSize >= 1, seedPerLabel >= 1 else { throw ValidationError("--rounds, --round-size and --seed-per-label must be at least 1") }
        if test != nil && holdoutShare != nil { throw ValidationError("give --test FILE or --holdout-share, not both") }
        guard (0...1).contains(teacherError), (0...1).contains(reviewShare), (0..<1).contains(holdoutShare ?? 0.2), (0.05...0.95).contains(calibrationShare) else {
            throw ValidationError("--teacher-error and --review-share must be in 0…1, --holdout-share in 0…1 (exclusive)")
        }
    }

    /// One round's figures.
    struct RoundRow: Codable {
        var round: Int, trafficSoFar: Int, items: Int
        var acceptedShare: Double, escalatedShare: Double, reviewShare: Double
        var trafficAcceptedErrors: Int
        var reviewLoad: Int
        var cost: Evaluation.Cost, allLarge: Evaluation.Cost
        var servedVersion: String
        var heldOutItems: Int, heldOutCoverage: Double, heldOutError: Double, heldOutErrorBound: Double
        var certified: [String]
        var humanLabels: Int, teacherLabels: Int
        var candidate: String?, gatePassed: Bool?, gateFailures: [String]
        var highRiskCertified: [String: Bool]
        /// Per risk class on the held-out part: accepted, wrong among them, and the Clopper-Pearson bound.
        var classes: [ClassRow]
        /// Per high-risk class on the held-out part: items, and those auto-accepted as a low-risk label.
        var highRiskMisses: [String: [Int]]
    }

    struct ClassRow: Codable {
        var riskClass: String, target: Double, accepted: Int, errors: Int, bound: Double
    }

    func run() async throws {
        let spec = try TaskSpec.load(task)
        let all = try LabelledData.load(data, spec: spec, skipUnknownLabels: true)
        let folder = work ?? "reports/sim-\(spec.name)"
        // The folder is emptied only if it is a simulation's (it has the marker) or empty: never whatever --work names.
        let marker = folder + "/.microscale-simulation"
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: folder), !contents.isEmpty {
            guard FileManager.default.fileExists(atPath: marker) else {
                throw ValidationError("\(folder) is not empty and not a simulation's work folder: give --work an empty or new folder")
            }
            try FileManager.default.removeItem(atPath: folder)
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: marker, contents: Data())
        let absolute = URL(fileURLWithPath: folder).standardizedFileURL.path

        // Split: held-out part, seed, traffic.
        var heldOut: (texts: [String], labels: [Int]) = ([], [])
        var pool: [Int] = []
        if let test {
            let t = try LabelledData.load(test, spec: spec, skipUnknownLabels: true)
            heldOut = (t.texts, t.labels)
            pool = Array(all.texts.indices)
        } else {
            for i in all.texts.indices {
                if Digest.uniform("holdout\u{0}" + all.texts[i]) < holdoutShare ?? 0.2 {
                    heldOut.texts.append(all.texts[i]); heldOut.labels.append(all.labels[i])
                } else { pool.append(i) }
            }
        }
        var generator = SeededGenerator(seed: UInt64(seed))
        pool.shuffle(using: &generator)
        var perLabel = [Int](repeating: 0, count: spec.labels.count)
        var seedRows: [Int] = [], traffic: [Int] = []
        for i in pool {
            if perLabel[all.labels[i]] < seedPerLabel { perLabel[all.labels[i]] += 1; seedRows.append(i) } else { traffic.append(i) }
        }
        let seedFile = absolute + "/seed.csv"
        var csv = "\(spec.textColumn),\(spec.labelColumn)\n"
        for i in seedRows { csv += csvField(all.texts[i]) + "," + csvField(spec.labels[all.labels[i]].name) + "\n" }
        try csv.write(toFile: seedFile, atomically: true, encoding: .utf8)
        let seedData = try LabelledData.load(seedFile, spec: spec)
        print("\(spec.name): seed \(seedRows.count) items (\(seedPerLabel) per label), traffic \(traffic.count) available (\(min(traffic.count, rounds * roundSize)) used), held out \(heldOut.texts.count)")

        // The initial adapter, trained on the seed.
        let backbone = try LoadedBackbone(spec.backbone, maxTokens: spec.maxInputTokens, threads: threads)
        let extractor = FeatureExtractor(backbone: backbone, template: spec.template, maxTokens: spec.maxInputTokens)
        let cache = FeatureCache(extractor: extractor)
        var trainer = Trainer(spec: spec, extractor: extractor)
        trainer.verbose = false
        trainer.threads = threads
        var initial = try trainer.train(features: try cache.features(seedData.texts), texts: seedData.texts, labels: seedData.labels,
                                        dataDigest: seedData.digest, dataFile: seedFile, kinds: seedData.kinds).adapter
        initial.dataFile = seedFile
        let adapterFile = absolute + "/initial.adapter.json"
        try initial.write(to: adapterFile)

        // The stand-in teacher.
        var truth: [ExactText: String] = [:]
        for (t, l) in zip(all.texts, all.labels) { truth[ExactText(t)] = spec.labels[l].name }
        var logger = Logger(label: "microscale.simulate")
        logger.logLevel = .warning
        let stub = TeacherStub(truth: truth, errorRate: teacherError, seed: UInt64(seed))
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let stubTask = Task { try await stub.application(port: 0, logger: logger) { portContinuation.yield($0) }.runService() }
        var ports = portStream.makeAsyncIterator()
        guard let stubPort = await ports.next() else { throw ValidationError("the teacher stub did not start") }

        // The service, as its own process.
        let storeFile = absolute + "/store.sqlite"
        let config = absolute + "/serve.yaml"
        try """
            listen: {host: 127.0.0.1, port: 0}
            store: sqlite:\(storeFile)
            log_inputs: full
            tasks:
              - {path: \(URL(fileURLWithPath: task).standardizedFileURL.path), adapter: \(adapterFile)}
            escalation:
              base_url: "http://127.0.0.1:\(stubPort)/v1"
              model: stub-teacher
              timeout_seconds: 10
              retries: 1
              max_concurrent: 8
            limits: {max_batch_inputs: 64, max_queue: 4096, max_batch: 32}
            learning: {review_share: \(reviewShare), calibration_share: \(calibrationShare), poll_seconds: 0.5}
            threads: \(threads)

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let settings = try ServiceConfig.load(config)
        let server = try ServeProcess(config: config, log: absolute + "/serve.log")
        defer { server.stop() }
        let base = try server.waitForAddress()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let store = try await openStore(url: settings.store)
        var retraining = Retraining(spec: spec, extractor: extractor, cache: cache)
        retraining.verbose = false
        retraining.settings.holdout = settings.learning.holdout
        retraining.settings.calibration = settings.learning.calibrationShare
        retraining.settings.minHoldout = settings.learning.minHoldout
        let heldOutFeatures = try cache.features(heldOut.texts)
        let tiers = spec.tiers
        var rows: [RoundRow] = []
        var served = Digest.of(try String(contentsOfFile: adapterFile, encoding: .utf8))
        do {
            for round in 1...rounds {
                let slice = Array(traffic.dropFirst((round - 1) * roundSize).prefix(roundSize))
                guard !slice.isEmpty else { print("traffic exhausted after \(round - 1) rounds"); break }
                // Traffic.
                var accepted = 0, escalated = 0, reviewed = 0, acceptedWrong = 0
                for start in stride(from: 0, to: slice.count, by: 32) {
                    let chunk = Array(slice[start..<min(start + 32, slice.count)])
                    let body = JSONValue.object([("inputs", .array(chunk.map { .string(all.texts[$0]) }))])
                    let answer = try await post(http, base + "/v1/tasks/\(spec.name)/decide", body)
                    guard case let .array(decisions)? = answer["decisions"], decisions.count == chunk.count else {
                        throw ValidationError("unexpected answer from the service: \(answer.description.prefix(300))")
                    }
                    for (d, i) in zip(decisions, chunk) {
                        if d["escalation"] != nil && d["escalation"] != .null { escalated += 1 }
                        switch d["route"]?.stringValue {
                        case "accepted" where d["tier"]?.stringValue == "small":
                            accepted += 1
                            if d["label"]?.stringValue != spec.labels[all.labels[i]].name { acceptedWrong += 1 }
                        case "review": reviewed += 1
                        default: break
                        }
                    }
                }
                // Reviewers: every pending item, answered with its true label.
                var reviewLoad = 0
                while true {
                    let item = try await post(http, base + "/v1/review/claim", .object([("reviewer", .string("simulated-reviewer")), ("task", .string(spec.name))]))
                    guard let id = item["decision_id"]?.stringValue, let text = item["text"]?.stringValue else { break }
                    guard let label = truth[ExactText(text)] else { throw ValidationError("a review item's text is not in the data") }
                    _ = try await post(http, base + "/v1/review/items/\(id)/resolve", .object([("reviewer", .string("simulated-reviewer")), ("label", .string(label))]))
                    reviewLoad += 1
                }
                let n = Double(slice.count)
                // The served adapter: its policy prices this round, and it is scored on the held-out part.
                let classifier = try await currentClassifier(store: store, spec: spec, extractor: extractor, version: served)
                let policy = classifier.policy
                let reviewedIfLarge = slice.count { i in
                    var o = Policy.Outcome(label: all.labels[i], probability: 0, route: .escalate, reason: .belowThreshold, detail: "")
                    policy.applyToLargerTier(&o, text: all.texts[i])
                    return o.route == .review
                }
                let cost = Evaluation.Cost(small: tiers.small.costPer1k, large: Double(escalated) / n * (tiers.large?.costPer1k ?? 0),
                                           human: Double(reviewLoad) / n * tiers.human.costPer1k)
                let allLarge = Evaluation.Cost(small: 0, large: tiers.large?.costPer1k ?? 0, human: Double(reviewedIfLarge) / n * tiers.human.costPer1k)
                // The served adapter on the held-out part.
                let evaluation = Evaluation(classifier: classifier, features: heldOutFeatures, labels: heldOut.labels, texts: heldOut.texts, source: "held out")
                let score = HoldoutScore(evaluation)
                // Retrain and promote.
                let result = try await LogRetrain(spec: spec, store: store, retraining: retraining).run(seed: seedData, report: absolute + "/round\(round).promotion.html")
                let human = result.outcome.composition.values.reduce(0) { total, part in
                    total + LabelSource.allCases.filter(\.isHuman).reduce(0) { n, source in n + (part[source] ?? 0) }
                }
                let teacherCount = result.outcome.composition.values.reduce(0) { $0 + ($1[.teacher] ?? 0) }
                let servedThisRound = served
                if result.outcome.gate.passed {
                    try await Promotion.promote(task: spec.name, version: result.version, store: store)
                    try await waitForVersion(http, base, task: spec.name, version: result.version)
                    served = result.version
                }
                var highRisk: [String: Bool] = [:]
                for c in spec.riskClasses where c.isHighRisk { highRisk[c.name] = score.certified.contains(c.name) }
                let row = RoundRow(
                    round: round, trafficSoFar: (round - 1) * roundSize + slice.count, items: slice.count,
                    acceptedShare: Double(accepted) / n, escalatedShare: Double(escalated) / n, reviewShare: Double(reviewed) / n,
                    trafficAcceptedErrors: acceptedWrong, reviewLoad: reviewLoad, cost: cost, allLarge: allLarge,
                    servedVersion: String(servedThisRound.prefix(12)),
                    heldOutItems: score.items, heldOutCoverage: score.coverage, heldOutError: score.acceptedError, heldOutErrorBound: score.acceptedErrorBound,
                    certified: score.certified, humanLabels: human, teacherLabels: teacherCount, candidate: String(result.version.prefix(12)),
                    gatePassed: result.outcome.gate.passed, gateFailures: result.outcome.gate.checks.filter { !$0.passed }.map(\.name),
                    highRiskCertified: highRisk,
                    classes: evaluation.classOutcomes.map {
                        ClassRow(riskClass: $0.riskClass.name, target: $0.riskClass.targetError, accepted: $0.accepted, errors: $0.errors,
                                 bound: $0.accepted > 0 ? Binomial.upperBound(events: $0.errors, trials: $0.accepted, delta: spec.delta) : 1)
                    },
                    highRiskMisses: Dictionary(uniqueKeysWithValues: score.highRisk.map { ($0.riskClass, [$0.items, $0.autoAcceptedAsLowRisk]) }))
                rows.append(row)
                print(Self.line(row, currency: tiers.currency))
            }
        } catch {
            try? await http.shutdown()
            await store.close()
            stubTask.cancel()
            throw error
        }
        let agreement = try await TeacherAgreement.measure(task: spec.name, store: store, floor: settings.learning.agreementFloor).text
        print(agreement.components(separatedBy: "\n")[0])
        try? await http.shutdown()
        await store.close()
        stubTask.cancel()
        let path = report ?? "reports/\(spec.name).simulation.html"
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(rows).write(to: URL(fileURLWithPath: path.replacingOccurrences(of: ".html", with: "") + ".json"))
        try html(rows, spec: spec).write(toFile: path, atomically: true, encoding: .utf8)
        print("report: \(path)")
    }

    /// The classifier of the version now served (read from the store).
    func currentClassifier(store: any DecisionStore, spec: TaskSpec, extractor: FeatureExtractor, version: String) async throws -> Classifier {
        guard let stored = try await store.adapterVersion(task: spec.name, version: version) else {
            throw ValidationError("adapter \(version.prefix(12)) is not in the store")
        }
        let adapter = try Adapter.decode(Data(stored.body.utf8), source: version, for: spec, extractor: extractor)
        return Classifier(spec: spec, extractor: extractor, adapter: adapter)
    }

    func post(_ http: HTTPClient, _ url: String, _ body: JSONValue) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body.description))
        let response = try await http.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        if response.status.code == 204 { return .null }
        guard response.status.code == 200 else { throw ValidationError("\(url): HTTP \(response.status.code): \(String(buffer: bytes).prefix(400))") }
        return try JSONValue.parse(Array(bytes.readableBytesView))
    }

    func waitForVersion(_ http: HTTPClient, _ base: String, task: String, version: String) async throws {
        for _ in 0..<120 {
            var request = HTTPClientRequest(url: base + "/v1/tasks")
            request.method = .GET
            let response = try await http.execute(request, timeout: .seconds(10))
            let bytes = try await response.body.collect(upTo: 16 << 20)
            if String(buffer: bytes).contains(version) { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw ValidationError("the service did not pick up adapter \(version.prefix(12)) within 30 s")
    }

    static func line(_ r: RoundRow, currency: String) -> String {
        let classes = r.classes.map { c in
            c.accepted > 0 ? String(format: "%@ %d/%d wrong (≤ %.2f%%, target %.0f%%)", c.riskClass, c.errors, c.accepted, c.bound * 100, c.target * 100)
                : "\(c.riskClass) none accepted"
        }.joined(separator: ", ")
        return String(format: "round %d (%d items): accepted %.1f%%, escalated %.1f%%, review load %d; held out: coverage %.1f%%, error %.2f%% (≤ %.2f%%); cost %@ vs %@ all-to-large; human labels %d, teacher %d; candidate %@ %@",
               r.round, r.items, r.acceptedShare * 100, r.escalatedShare * 100, r.reviewLoad, r.heldOutCoverage * 100, r.heldOutError * 100,
               r.heldOutErrorBound * 100, Report.costLine(r.cost, currency: currency), Report.costLine(r.allLarge, currency: currency), r.humanLabels,
               r.teacherLabels, r.candidate ?? "—", r.gatePassed == true ? "promoted" : "not promoted (\(r.gateFailures.joined(separator: ", ")))")
            + "\n  held out by risk class: " + classes
    }

    func html(_ rows: [RoundRow], spec: TaskSpec) -> String {
        let c = spec.tiers.currency
        var body = "<h1>\(spec.name): the learning loop, simulated</h1>\n<p class=meta>Command: <code>microscale simulate --task \(task) --data \(data)\(test.map { " --test " + $0 } ?? "") --seed-per-label \(seedPerLabel) --rounds \(rounds) --round-size \(roundSize) --teacher-error \(teacherError) --review-share \(reviewShare) --calibration-share \(calibrationShare)</code>. Traffic went through a real <code>microscale serve</code>; the larger tier was a stand-in teacher wrong on \(Int(teacherError * 100))% of inputs; reviewers answered the true label; after each round the loop retrained from the log and promoted a candidate only through the gate. Costs per 1,000 requests, by tier; the comparison sends everything to the larger tier with the same review of its high-risk answers.</p>\n"
        body += "<table><tr><th>round</th><th>traffic</th><th>accepted</th><th>escalated</th><th>review load</th><th>held-out coverage</th><th>held-out error (bound)</th><th>by risk class: wrong / accepted (bound)</th><th>certified</th><th>cost / 1,000</th><th>all to larger tier</th><th>human / teacher labels</th><th>candidate</th></tr>\n"
        for r in rows {
            body += "<tr><td>\(r.round)</td><td>\(r.trafficSoFar)</td><td>\(String(format: "%.1f%%", r.acceptedShare * 100))</td><td>\(String(format: "%.1f%%", r.escalatedShare * 100))</td><td>\(r.reviewLoad)</td><td>\(String(format: "%.1f%%", r.heldOutCoverage * 100))</td><td>\(r.heldOutCoverage > 0 ? String(format: "%.2f%% (≤ %.2f%%)", r.heldOutError * 100, r.heldOutErrorBound * 100) : "—")</td><td>\(r.classes.map { c in c.accepted > 0 ? String(format: "%@: %d / %d (≤ %.2f%%; target %.0f%%)", c.riskClass, c.errors, c.accepted, c.bound * 100, c.target * 100) : "\(c.riskClass): —" }.joined(separator: "<br>"))</td><td>\(r.certified.joined(separator: ", "))</td><td>\(Report.costLine(r.cost, currency: c))</td><td>\(Report.costLine(r.allLarge, currency: c))</td><td>\(r.humanLabels) / \(r.teacherLabels)</td><td>\(r.candidate ?? "—") \(r.gatePassed == true ? "promoted" : "held back: " + r.gateFailures.joined(separator: ", "))</td></tr>\n"
        }
        body += "</table>\n"
        // Plot: accepted share and held-out coverage (%), cost per 1,000 against all-to-large.
        let w = 520.0, h = 260.0, left = 50.0, bottom = 30.0
        func x(_ i: Int) -> Double { left + (w - left - 20) * (rows.count > 1 ? Double(i) / Double(rows.count - 1) : 0.5) }
        func polyline(_ values: [Double], top: Double, color: String) -> String {
            let points = values.enumerated().map { String(format: "%.1f,%.1f", x($0.offset), h - bottom - (h - bottom - 20) * min($0.element / max(top, 1e-9), 1)) }
            return "<polyline fill=none stroke=\(color) stroke-width=2 points='\(points.joined(separator: " "))'/>"
        }
        func axes(_ label: String, top: String) -> String {
            "<line x1=\(left) y1=\(h - bottom) x2=\(w - 10) y2=\(h - bottom) stroke=#888/><line x1=\(left) y1=20 x2=\(left) y2=\(h - bottom) stroke=#888/><text x=4 y=24 font-size=11>\(top)</text><text x=4 y=\(h - bottom) font-size=11>0</text><text x=\(w / 2 - 30) y=\(h - 8) font-size=11>round</text><text x=\(left + 8) y=14 font-size=12>\(label)</text>"
        }
        let share = "<svg width=\(w) height=\(h)>" + axes("accepted share (blue), held-out coverage (green), held-out error ×10 (red)", top: "100%")
            + polyline(rows.map(\.acceptedShare), top: 1, color: "#1f6fb4") + polyline(rows.map(\.heldOutCoverage), top: 1, color: "#2a8a2a")
            + polyline(rows.map { $0.heldOutError * 10 }, top: 1, color: "#c0392b") + "</svg>"
        let topCost = max(rows.map(\.cost.total).max() ?? 1, rows.map(\.allLarge.total).max() ?? 1)
        let cost = "<svg width=\(w) height=\(h)>" + axes("cost per 1,000: cascade (blue), all to larger tier (grey)", top: c + String(format: "%.0f", topCost))
            + polyline(rows.map(\.cost.total), top: topCost, color: "#1f6fb4") + polyline(rows.map(\.allLarge.total), top: topCost, color: "#777") + "</svg>"
        body += "<div class=charts>\(share)\(cost)</div>\n"
        return Report.page(title: "\(spec.name) — learning loop simulation", body: body)
    }
}

/// RFC 4180 quoting of one field, decided and done on UTF-8 bytes (a comma, quote or line break can begin a grapheme
/// cluster with what follows it, so a `Character` test would miss it).
func csvField(_ value: String) -> String {
    let special: Set<UInt8> = [0x2C, 0x22, 0x0A, 0x0D]
    guard value.utf8.contains(where: special.contains) else { return value }
    return String(decoding: [0x22] + value.utf8.flatMap { $0 == 0x22 ? [0x22, 0x22] : [$0] } + [0x22], as: UTF8.self)
}

/// `microscale serve` as a child process, stopped with SIGTERM.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let output = Pipe()

    init(config: String, log: String) throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.resolvingSymlinksInPath()
        if !FileManager.default.isExecutableFile(atPath: process.executableURL!.path) {
            process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
        }
        process.arguments = ["serve", "--config", config, "--port", "0", "--log-level", "warning"]
        process.standardOutput = output
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
    }

    /// The base URL from the "listening on URL" line (waits up to 120 s).
    func waitForAddress() throws -> String {
        var buffer = Data()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { guard process.isRunning else { break }; continue }
            buffer.append(chunk)
            if let text = String(data: buffer, encoding: .utf8), let range = text.range(of: "listening on ") {
                let rest = text[range.upperBound...]
                if let end = rest.firstIndex(of: "\n") { return String(rest[..<end]) }
            }
        }
        throw ValidationError("microscale serve did not start (see its log)")
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
