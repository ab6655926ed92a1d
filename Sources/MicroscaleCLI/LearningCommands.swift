import ArgumentParser
import Cascade
import Datasets
import Foundation
import Logging
import Server
import Statistics
import Store

/// The spec of a task a service configuration serves, by name.
func servedSpec(_ settings: ServiceConfig, task: String, config: String) throws -> (spec: TaskSpec, entry: ServiceConfig.TaskEntry) {
    var names: [String] = []
    for entry in settings.tasks {
        let name = try YAMLReader.load(entry.path).required("name").string()
        names.append(name)
        if name == task {
            guard try YAMLReader.load(entry.path).child("schema") == nil else {
                throw ValidationError("task \(task) is an extraction task; the learning loop retrains classification adapters")
            }
            return (try TaskSpec.load(entry.path), entry)
        }
    }
    throw ValidationError("no task '\(task)' in \(config); its tasks: \(names.joined(separator: ", "))")
}

/// `microscale distill`: a teacher labels unlabelled inputs; labels are stored with provenance, resumably.
struct Distill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Have a teacher (any OpenAI-compatible endpoint) label unlabelled inputs under the task's label schema, store each label with its provenance, and queue a share for people to check.",
        discussion: """
            Each answer is stored as it arrives (a decision row with origin "distill" in the store), so a rerun after \
            a crash or kill skips every input already answered and asks only the rest. Tokens (the teacher's reported \
            usage) and cost (tiers.large.cost_per_1k of the task) are totalled. With --review-share, that share of the \
            distilled labels goes to the review queue: where the teacher and the small model disagree first, then where \
            the small model is least confident. Inputs: \(TextInputs.formats).
            """)

    @Option(help: "The task spec (YAML).")
    var task: String

    @Option(help: ArgumentHelp("The teacher: a base URL up to /v1, or a service configuration (YAML) whose escalation tier (and store) to use.", valueName: "url|config"))
    var teacher: String

    @Option(help: "Model name sent to the teacher (with a URL; default: the task's tiers.large.model, else 'default').")
    var teacherModel: String?

    @Option(help: "Unlabelled inputs.")
    var data: String

    @Option(help: "The store (default: the configuration's with --teacher CONFIG, else sqlite:reports/decisions.sqlite).")
    var store: String?

    @Option(help: "Adapter of the small model whose drafts rank what people check (default: the spec's adapter, if it exists).")
    var adapter: String?

    @Option(help: "Share of distilled labels to send to review (0–1).")
    var reviewShare = 0.0

    @Option(help: "Most requests to the teacher at once.")
    var maxConcurrent: Int?

    @Option(help: "Reviewers' agreement with the teacher below which it is flagged.")
    var agreementFloor = 0.9

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    func validate() throws {
        guard (0...1).contains(reviewShare) else { throw ValidationError("--review-share must be between 0 and 1") }
        if let m = maxConcurrent, !(1...64).contains(m) { throw ValidationError("--max-concurrent must be between 1 and 64") }
        guard (0...1).contains(agreementFloor) else { throw ValidationError("--agreement-floor must be between 0 and 1") }
    }

    func run() async throws {
        var logger = Logger(label: "microscale.distill")
        logger.logLevel = .error
        if try YAMLReader.load(task).child("schema") != nil {
            throw ValidationError("\(task) is an extraction task: distill labels classification tasks (an extraction model has no adapter to retrain yet)")
        }
        let spec = try TaskSpec.load(task)
        var tier: ServiceConfig.Escalation
        var storeURL = store ?? "sqlite:reports/decisions.sqlite"
        if teacher.hasSuffix(".yaml") || teacher.hasSuffix(".yml") {
            let settings = try ServiceConfig.load(teacher)
            guard let t = settings.escalation else { throw ValidationError("\(teacher) has no escalation block to use as the teacher") }
            tier = t
            if store == nil { storeURL = settings.store }
        } else {
            guard teacher.hasPrefix("http://") || teacher.hasPrefix("https://") else {
                throw ValidationError("--teacher must be a URL (http://…/v1) or a service configuration (.yaml)")
            }
            tier = ServiceConfig.Escalation(baseURL: teacher, model: teacherModel ?? spec.tiers.large?.model ?? "default")
            tier.apiKey = ProcessInfo.processInfo.environment["MICROSCALE_ESCALATION_KEY"]
        }
        if let teacherModel { tier.model = teacherModel }
        if let maxConcurrent { tier.maxConcurrent = maxConcurrent }

        let records = try TextInputs.read(file: data, textColumn: spec.textColumn)
        var texts: [String] = [], refused = 0
        for (i, r) in records.enumerated() {
            let problem = r.problem ?? InputProblem(r.text, maxCharacters: spec.maxInputCharacters)?.describe("the text", task: spec.name)
            if let problem {
                refused += 1
                FileHandle.standardError.write(Data("\(data): item \(i + 1) refused: \(problem)\n".utf8))
            } else {
                texts.append(r.text)
            }
        }
        let adapterPath = adapter ?? spec.adapterPath
        let student = FileManager.default.fileExists(atPath: adapterPath) ? try Classifier(spec: spec, adapterPath: adapterPath, threads: threads) : nil
        let db = try await openStore(url: storeURL)
        var distiller = Distiller(spec: spec, tier: tier, store: db, student: student, logger: logger)
        distiller.reviewShare = reviewShare
        distiller.studentVersion = student == nil ? nil : try Digest.of(file: adapterPath)
        print("teacher \(tier.model) at \(tier.baseURL); store \(redactedURL(storeURL)); \(texts.count) inputs" + (student == nil ? " (no small model yet: no drafts)" : ""))
        let bar = ProgressBar("teacher")
        let s = try await distiller.run(texts) { bar.update($0, $1) }
        let c = spec.tiers.currency
        print("asked \(s.asked), answered \(s.answered), failed \(s.failed); skipped \(s.alreadyLabelled) already labelled and \(s.duplicates) duplicates")
        print("tokens: \(s.promptTokens) prompt, \(s.completionTokens) completion; cost \(c)\(String(format: "%.4f", s.cost)) at \(c)\(spec.tiers.large?.costPer1k ?? 0) per 1,000 requests")
        if !s.failures.isEmpty { print("failures (first \(s.failures.count)): " + s.failures.joined(separator: " | ") + "\nrerun the same command to ask those again") }
        if reviewShare > 0 { print("queued \(s.queuedForReview) teacher labels for review (share \(reviewShare))") }
        print(try await TeacherAgreement.measure(task: spec.name, store: db, floor: agreementFloor).text)
        await db.close()
        if refused > 0 || s.failed > 0 {
            FileHandle.standardError.write(Data("\(refused) inputs refused, \(s.failed) not answered\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// `microscale retrain --config FILE --task NAME`: a candidate adapter from the log, judged by the promotion gate.
struct Retrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit a candidate adapter from the log (seed file, reviewers' answers, teacher labels), certify it on people's labels only, compare it with the active version on a human-labelled holdout, and store it with the promotion gate's verdict.",
        discussion: """
            Conflicts: one label per distinct text; a person's label (seed or reviewer) beats a teacher's, and among \
            labels of the same kind the newest wins. Parts: human-labelled texts are held out (learning.holdout) or \
            calibrate (learning.calibration_share of the rest) by their SHA-256, so a text keeps its part across \
            retrains; teacher labels only fit the head. The gate: the candidate certifies every risk class the active \
            version does; per high-risk class, no more holdout items auto-accepted as low-risk; coverage not lower than \
            the active version's by more than two standard errors; at least learning.min_holdout holdout items.
            """)

    @Option(help: "The service configuration (YAML): its store, tasks and learning settings.")
    var config: String

    @Option(help: "The task's name.")
    var task: String

    @Option(help: "The human-labelled seed file (CSV with the spec's columns; default: the file the task's adapter was trained on, when it exists).")
    var data: String?

    @Flag(help: "Promote the candidate if it passes the gate (the running service picks it up without a restart).")
    var promote = false

    @Option(help: "Promotion report (HTML; default reports/TASK.promotion.html).")
    var report: String?

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    func run() async throws {
        let settings = try ServiceConfig.load(config, requireSecrets: false)
        let (spec, entry) = try servedSpec(settings, task: task, config: config)
        var seedFile = data
        if seedFile == nil, let body = FileManager.default.contents(atPath: entry.adapter ?? spec.adapterPath),
           let file = (try? JSONDecoder().decode(Adapter.self, from: body))?.dataFile, FileManager.default.fileExists(atPath: file) {
            seedFile = file
            print("seed: \(file) (the file the task's adapter was trained on; --data names another)")
        }
        let seed = try seedFile.map { try LabelledData.load($0, spec: spec, skipUnknownLabels: false) }
        if seed == nil { print("no seed file: training from the log only") }
        let backbone = try LoadedBackbone(spec.backbone, maxTokens: spec.maxInputTokens, threads: threads)
        let extractor = FeatureExtractor(backbone: backbone, template: spec.template, maxTokens: spec.maxInputTokens)
        var retraining = Retraining(spec: spec, extractor: extractor)
        retraining.settings.holdout = settings.learning.holdout
        retraining.settings.calibration = settings.learning.calibrationShare
        retraining.settings.minHoldout = settings.learning.minHoldout
        let store = try await openStore(url: settings.store)
        let path = report ?? "reports/\(spec.name).promotion.html"
        let result = try await LogRetrain(spec: spec, store: store, retraining: retraining).run(seed: seed, report: path)
        printRetrain(result, spec: spec)
        print(try await TeacherAgreement.measure(task: spec.name, store: store, floor: settings.learning.agreementFloor).text)
        print("report: \(path)")
        if promote {
            if result.outcome.gate.passed {
                try await Promotion.promote(task: spec.name, version: result.version, store: store)
                print("promoted \(result.version.prefix(12)): services on this store serve it within learning.poll_seconds (\(settings.learning.pollSeconds) s)")
            } else {
                print("not promoted: the gate did not pass")
            }
        }
        await store.close()
    }
}

/// Prints what a retrain made.
func printRetrain(_ r: LogRetrain.Result, spec: TaskSpec) {
    let o = r.outcome
    func count(_ p: RetrainPart) -> String { LabelSource.allCases.map { "\(o.composition[p]?[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ") }
    print("training set: \(o.set.items.count) texts (\(o.set.conflicts) with conflicting labels, \(o.set.humanOverTeacher) settled for a person over a teacher)"
          + (r.teacherWithoutText > 0 ? "; \(r.teacherWithoutText) teacher labels left out: the log keeps no text for them (log_inputs)" : ""))
    for p in RetrainPart.allCases { print("  \(p.rawValue): \(count(p))") }
    print("candidate \(r.version.prefix(12)) against \(r.currentVersion.map { "active " + String($0.prefix(12)) } ?? "no active version"), on \(o.candidateScore.items) holdout items:")
    func line(_ name: String, _ s: HoldoutScore?) {
        guard let s else { return }
        print(String(format: "  %@: accuracy %.2f%%, ECE %.4f, coverage %.2f%%, error among accepted %@, certified: %@", name, s.accuracy * 100, s.ece,
                     s.coverage * 100, s.accepted > 0 ? String(format: "%.2f%% (≤ %.2f%%)", s.acceptedError * 100, s.acceptedErrorBound * 100) : "—",
                     s.certified.isEmpty ? "none" : s.certified.joined(separator: ", ")))
    }
    line("candidate", o.candidateScore)
    line("active   ", o.currentScore)
    for t in o.candidate.thresholds where t.certificate.threshold == nil { print("  \(t.riskClass) not certified: \(t.certificate.reason ?? "")") }
    print("gate: " + (o.gate.passed ? "passed" : "NOT passed"))
    for c in o.gate.checks { print("  \(c.passed ? "pass" : "FAIL") \(c.name): \(c.detail)") }
}

/// `microscale adapters …`: the versions of a task's adapter in the store.
struct Adapters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, promote, roll back and shadow the versions of a task's adapter in the store.",
        subcommands: [List.self, Promote.self, Rollback.self, Shadow.self, ShadowReport.self])

    struct Target: ParsableArguments {
        @Option(help: "The service configuration (YAML): its store and tasks.")
        var config: String
        @Option(help: "The task's name.")
        var task: String

        func open() async throws -> (ServiceConfig, any DecisionStore) {
            let settings = try ServiceConfig.load(config, requireSecrets: false)
            _ = try servedSpec(settings, task: task, config: config)
            return (settings, try await openStore(url: settings.store))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every version, newest first, with its status and gate verdict.")
        @OptionGroup var target: Target
        func run() async throws {
            let (_, store) = try await target.open()
            let formatter = ISO8601DateFormatter()
            print("version       status       source   created               promoted              gate")
            for v in try await store.adapterVersions(task: target.task) {
                let gate = v.gateJSON.flatMap { try? JSONDecoder().decode(PromotionGate.self, from: Data($0.utf8)) }
                print(String(v.version.prefix(12)).padding(toLength: 14, withPad: " ", startingAt: 0)
                      + v.status.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0) + v.source.padding(toLength: 9, withPad: " ", startingAt: 0)
                      + formatter.string(from: v.createdAt).padding(toLength: 22, withPad: " ", startingAt: 0)
                      + (v.promotedAt.map { formatter.string(from: $0) } ?? "—").padding(toLength: 22, withPad: " ", startingAt: 0)
                      + (gate.map { $0.passed ? "passed" : "failed: " + $0.checks.filter { !$0.passed }.map(\.name).joined(separator: ", ") } ?? "none"))
            }
            await store.close()
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a candidate active, if it passed the promotion gate.")
        @OptionGroup var target: Target
        @Option(help: "The version (a prefix of its digest; default: the newest candidate).")
        var version: String?
        func run() async throws {
            let (settings, store) = try await target.open()
            do {
                let v = try await Promotion.promote(task: target.task, version: version, store: store)
                print("active: \(v.prefix(12)); services on this store serve it within \(settings.learning.pollSeconds) s")
            } catch let e as Promotion.Refused {
                await store.close()
                throw ValidationError(e.description)
            }
            await store.close()
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take the active version out of service and serve the previously active one again.")
        @OptionGroup var target: Target
        func run() async throws {
            let (settings, store) = try await target.open()
            let (from, to) = try await store.rollback(task: target.task)
            print("rolled back \(from.prefix(12)) → \(to.prefix(12)); services on this store serve it within \(settings.learning.pollSeconds) s")
            await store.close()
        }
    }

    struct Shadow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a candidate in shadow: services score live inputs with it too and log its decisions, which never route (costs a second backbone pass per input).")
        @OptionGroup var target: Target
        @Option(help: "The version (a prefix of its digest).")
        var version: String?
        @Flag(help: "Stop shadowing.")
        var stop = false
        func validate() throws {
            if stop == (version != nil) { throw ValidationError("give --version V to start a shadow, or --stop") }
        }
        func run() async throws {
            let (_, store) = try await target.open()
            var full: String?
            if let version {
                let matches = try await store.adapterVersions(task: target.task).filter { $0.version.hasPrefix(version) }
                guard matches.count == 1 else { throw ValidationError("\(version) names \(matches.count) versions of \(target.task)") }
                full = matches[0].version
            }
            try await store.setShadow(task: target.task, version: full)
            print(full.map { "shadowing \($0.prefix(12))" } ?? "shadow stopped")
            await store.close()
        }
    }

    struct ShadowReport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "shadow-report", abstract: "How a shadowed version's decisions compare with what was served (and with reviewers' labels).")
        @OptionGroup var target: Target
        @Option(help: "The version (a prefix; default: the one in shadow now).")
        var version: String?
        func run() async throws {
            let (_, store) = try await target.open()
            let versions = try await store.adapterVersions(task: target.task)
            let chosen: AdapterVersion
            if let version {
                let matches = versions.filter { $0.version.hasPrefix(version) }
                guard matches.count == 1 else { throw ValidationError("\(version) names \(matches.count) versions of \(target.task) (microscale adapters list shows them)") }
                chosen = matches[0]
            } else {
                guard let shadowed = versions.first(where: { $0.status == .shadow }) else { throw ValidationError("no version is in shadow now: give --version") }
                chosen = shadowed
            }
            let rows = try await store.shadowComparisons(task: target.task, version: chosen.version)
            guard !rows.isEmpty else { print("no shadow decisions of \(chosen.version.prefix(12)) yet"); await store.close(); return }
            let n = Double(rows.count)
            let sameLabel = rows.count { $0.shadow.label == $0.servedLabel }
            let shadowAccepts = rows.count { $0.shadow.route == "accepted" }, servedAccepts = rows.count { $0.servedRoute == "accepted" && $0.servedTier == "small" }
            print("shadow \(chosen.version.prefix(12)): \(rows.count) live inputs")
            print(String(format: "  same label as served: %.1f%%; would accept %.1f%% (served accepted %.1f%%)", Double(sameLabel) / n * 100,
                         Double(shadowAccepts) / n * 100, Double(servedAccepts) / n * 100))
            let reviewed = rows.filter { $0.reviewedLabel != nil }
            if !reviewed.isEmpty {
                let s = reviewed.count { $0.shadow.label == $0.reviewedLabel }, d = reviewed.count { $0.servedLabel == $0.reviewedLabel }
                print("  on \(reviewed.count) reviewed inputs: shadow right \(s), served right \(d)")
            }
            await store.close()
        }
    }
}

/// `microscale teacher-stub --data labelled.csv`: a stand-in teacher with a stated error rate.
struct TeacherStubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teacher-stub",
        abstract: "Serve an OpenAI-compatible stand-in teacher that answers a labelled file's labels, wrong at a stated rate (for trials and simulations without a large model).")

    @Option(help: "The task spec (YAML): its text and label columns.")
    var task: String
    @Option(help: "Labelled CSV whose labels the stub answers.")
    var data: String
    @Option(help: "Share of answers that are wrong (0–1).")
    var errorRate = 0.05
    @Option(help: "Port (0: any free port; printed).")
    var port = 0
    @Option(help: "Milliseconds each answer takes (a slow teacher).")
    var latencyMs = 0

    func run() async throws {
        let spec = try TaskSpec.load(task)
        let labelled = try LabelledData.load(data, spec: spec, skipUnknownLabels: true)
        var truth: [ExactText: String] = [:]
        for (t, l) in zip(labelled.texts, labelled.labels) { truth[ExactText(t)] = spec.labels[l].name }
        let stub = TeacherStub(truth: truth, errorRate: errorRate, latency: .milliseconds(latencyMs))
        let count = truth.count, errorRate = errorRate
        var logger = Logger(label: "microscale.teacher-stub")
        logger.logLevel = .warning
        try await stub.application(port: port, logger: logger) { port in
            FileHandle.standardOutput.write(Data("listening on http://127.0.0.1:\(port)/v1 (teacher stub: \(count) texts, error rate \(errorRate))\n".utf8))
        }.runService()
    }
}
