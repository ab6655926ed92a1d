import ArgumentParser
import Cascade
import Datasets
import Foundation
import Statistics

/// `microscale train --task SPEC --data FILE`: fit, calibrate and certify a task's adapter.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a task's adapter: backbone features, a logistic-regression head (L2 by cross-validation), temperature scaling and certified thresholds.")

    @Option(help: "The task spec (YAML).")
    var task: String

    @Option(help: "Labelled CSV with the spec's text and label columns (omit with --zero-shot).")
    var data: String?

    @Flag(help: "No labelled data yet: score label descriptions by similarity and send every decision to review.")
    var zeroShot = false

    @Option(help: "Where to write the adapter (default: the spec's adapter path).")
    var output: String?

    @Flag(help: "Leave out rows whose label is not one of the task's (and say how many per label) instead of refusing the file.")
    var skipUnknownLabels = false

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    func run() throws {
        let spec = try TaskSpec.load(task)
        let backbone = try LoadedBackbone(spec.backbone, maxTokens: spec.maxInputTokens, threads: threads)
        var trainer = Trainer(spec: spec, extractor: FeatureExtractor(backbone: backbone, template: spec.template, maxTokens: spec.maxInputTokens))
        trainer.threads = threads
        let adapter: Adapter
        if zeroShot {
            adapter = try trainer.zeroShot()
        } else {
            guard let data else { throw ValidationError("give --data FILE, or --zero-shot to start without labels") }
            let labelled = try LabelledData.load(data, spec: spec, skipUnknownLabels: skipUnknownLabels)
            if let skipped = labelled.skippedSummary { print(skipped) }
            adapter = try trainer.train(
                features: try trainer.features(labelled), texts: labelled.texts, labels: labelled.labels,
                dataDigest: labelled.digest, dataFile: data, kinds: labelled.kinds).adapter
        }
        let path = output ?? spec.adapterPath
        try adapter.write(to: path)
        print("wrote \(path)")
        for t in adapter.thresholds {
            let c = t.certificate
            if let threshold = c.threshold {
                print(String(format: "  %@: accept at p ≥ %.4f (target error %@, %d/%d calibration items accepted, %d wrong, bound %@ at %@ confidence)",
                             t.riskClass, threshold, percent(c.target), c.accepted, c.items, c.errors, percent(c.upperBound), percent(1 - c.delta)))
            } else {
                print("  \(t.riskClass): never auto-accepted: \(c.reason ?? "")")
            }
        }
        for m in adapter.massBounds {
            print("  \(m.riskClass) (high risk): low-risk acceptance needs its mass < \(m.bound)" + (m.reason.map { " — \($0)" } ?? ", certified miss rate ≤ \(percent(m.upperBound))"))
        }
        let thin = spec.labels.indices.filter { adapter.labelCalibrationItems[$0] < spec.training.minLabelItems }
        if !thin.isEmpty && !zeroShot {
            print("  never auto-accepted (fewer than \(spec.training.minLabelItems) calibration items): \(thin.map { spec.labels[$0].name }.joined(separator: ", "))")
        }
    }
}

/// `microscale decide --task SPEC [TEXT …] | --input FILE | -`: one JSON line per input, in input order.
struct Decide: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decide inputs with a trained task: one JSON line per input, in input order, saying which input it answers.",
        discussion: """
            Inputs: the TEXT arguments; or --input FILE: \(TextInputs.formats); or standard input, one text per line, \
            with - (as an argument or as --input -). Standard input is decided line by line as it arrives.

            Each line carries "index" (0-based, in input order) and "input" (the text exactly as received) beside the \
            decision in the service's shape: label, confidence, route (accepted, escalated, review), reason \
            (e.g. out_of_scope), detail, risk_class, tier (small, large, human), alternatives, high_risk_mass, \
            latency_ms and destination. A refused input (empty, too long, or a record with no text) gets a line too: \
            {"index": …, "input": …, "error": {"message": …, "type": "invalid_request_error"}}, and the exit status \
            is 2 if any input was refused.
            """)

    @Option(help: "The task spec (YAML).")
    var task: String

    @Option(help: "Adapter file (default: the spec's adapter path).")
    var adapter: String?

    @Option(help: ArgumentHelp("Read the inputs from FILE: .csv (the spec's text column), .jsonl or .json (one {\"text\": …} object per line), or - for standard input (one text per line).", valueName: "file"))
    var input: String?

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    @Argument(help: ArgumentHelp("Texts to decide; - reads standard input, one text per line.", valueName: "text"))
    var texts: [String] = []

    func validate() throws {
        if input != nil && !texts.isEmpty { throw ValidationError("give the inputs as TEXT arguments or with --input, not both") }
        if input == nil && texts.isEmpty { throw ValidationError("nothing to decide: give TEXT arguments, --input FILE, or - to read standard input") }
        if texts.count(where: { $0 == "-" }) > 1 { throw ValidationError("- (standard input) can be given once") }
    }

    func run() throws {
        let spec = try TaskSpec.load(task)
        // A file is read before the model loads, so a wrong path or format fails at once.
        let records = try input.flatMap { $0 == "-" ? nil : try TextInputs.read(file: $0, textColumn: spec.textColumn) }
        let classifier = try Classifier(spec: spec, adapterPath: adapter, threads: threads)
        var index = 0, refused = 0
        func answer(_ record: TextInput) throws {
            let line = try record.problem.map { DecisionLine(index: index, input: record.text, refusal: $0) }
                ?? DecisionLine(index: index, input: record.text, decide: classifier.decide)
            // Written at once (unbuffered), so a pipe sees each line as soon as it is decided.
            FileHandle.standardOutput.write(Data((try line.json() + "\n").utf8))
            index += 1
            if line.refused { refused += 1 }
        }
        func answerStandardInput() throws {
            while let line = readLine(strippingNewline: true) { try answer(TextInput(text: line)) }
        }
        if let records {
            for record in records { try answer(record) }
        } else if input == "-" {
            try answerStandardInput()
        } else {
            for text in texts {
                if text == "-" { try answerStandardInput() } else { try answer(TextInput(text: text)) }
            }
        }
        if index == 0 {
            FileHandle.standardError.write(Data("nothing to decide: the input had no texts\n".utf8))
            throw ExitCode(2)
        }
        if refused > 0 {
            // One bad input does not stop the others; its line says why, and the exit status says something failed.
            FileHandle.standardError.write(Data("\(refused) of \(index) inputs refused (their lines carry \"error\")\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// `microscale eval --task SPEC --data FILE`: metrics and an HTML report.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a trained task on labelled data it has not seen and write an HTML report.")

    @Option(help: "The task spec (YAML).")
    var task: String

    @Option(help: "Labelled CSV with the spec's columns (not the adapter's training data: that is detected and warned about).")
    var data: String

    @Option(help: "Adapter file (default: the spec's adapter path).")
    var adapter: String?

    @Option(help: "HTML report path.")
    var report = "reports/eval.html"

    @Flag(help: "Leave out rows whose label is not one of the task's (and say how many per label) instead of refusing the file.")
    var skipUnknownLabels = false

    @Option(help: "Single requests to time for latency.")
    var latencySamples = 300

    @Option(help: "A column of the file whose values group the items (e.g. the kind of out-of-scope input): figures per group.")
    var groupColumn: String?

    @Option(help: "Simulate a drift watched by audits: the out-of-scope share of traffic before and after the change, e.g. 0.05,0.30 (the task needs an out-of-scope label, the file items of both kinds).")
    var auditDrift: String?

    @Option(help: "Share of accepted decisions audited in the drift simulation.")
    var auditShare = 0.1

    @Option(help: "Audits per risk class the simulated alert is computed over (the service's audit.window).")
    var auditWindow = 300

    @Option(help: "Fewest audits in the window before the simulated alert may fire (the service's audit.min_audits).")
    var auditMinAudits = AuditStatus.defaultMinAudits

    @Option(help: "Decisions before and after the simulated change.")
    var auditDecisions = "20000,20000"

    @Option(help: "Runs of the drift simulation.")
    var auditRuns = 200

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    func run() throws {
        let spec = try TaskSpec.load(task)
        let drift = try auditDrift.map { try pair($0, name: "--audit-drift", as: Double.self) }
        let decisions = try pair(auditDecisions, name: "--audit-decisions", as: Int.self)
        if drift != nil {
            guard spec.outOfScope != nil else { throw ValidationError("--audit-drift needs a task with an out_of_scope label; \(task) declares none") }
            for (share, name) in [(drift!.0, "before"), (drift!.1, "after")] where !(0...1).contains(share) {
                throw ValidationError("--audit-drift: the out-of-scope share \(name) the change must be in [0, 1], not \(share)")
            }
            guard auditShare > 0 && auditShare <= 1 else { throw ValidationError("--audit-share must be in (0, 1], not \(auditShare)") }
            guard auditWindow >= 10 else { throw ValidationError("--audit-window must be at least 10, not \(auditWindow)") }
            guard (1...auditWindow).contains(auditMinAudits) else { throw ValidationError("--audit-min-audits must be between 1 and --audit-window (\(auditWindow)), not \(auditMinAudits)") }
            guard decisions.0 >= 0 && decisions.1 > 0 && auditRuns > 0 else { throw ValidationError("--audit-decisions and --audit-runs must be positive") }
        }
        let classifier = try Classifier(spec: spec, adapterPath: adapter, threads: threads)
        let labelled = try LabelledData.load(data, spec: spec, skipUnknownLabels: skipUnknownLabels, groupColumn: groupColumn)
        if let skipped = labelled.skippedSummary { print(skipped) }
        let bar = ProgressBar("features")
        let features = try classifier.extractor.features(labelled.texts) { bar.update($0, $1) }
        var evaluation = Evaluation(classifier: classifier, features: features, labels: labelled.labels, texts: labelled.texts, source: data)
        evaluation.groups = labelled.groups
        evaluation.checkTrainingOverlap(dataDigest: labelled.digest, texts: labelled.texts)
        if let (before, after) = drift {
            let oos = spec.outOfScopeIndex!
            guard labelled.labels.contains(oos), labelled.labels.contains(where: { $0 != oos }) else {
                throw ValidationError("--audit-drift needs items of both kinds in \(data): in-scope ones and ones labelled \(spec.labels[oos].name)")
            }
            evaluation.auditDrift = AuditDriftSimulation(
                evaluation, before: before, after: after, share: auditShare, window: auditWindow, minAudits: auditMinAudits,
                decisionsBefore: decisions.0, decisionsAfter: decisions.1, runs: auditRuns, seed: spec.training.seed)
        }
        for warning in evaluation.warnings { FileHandle.standardError.write(Data("WARNING: \(warning)\n".utf8)) }
        try evaluation.measureLatency(classifier, texts: labelled.texts, samples: latencySamples)
        try Summary.print(evaluation)
        try Summary.write(evaluation, to: report)
    }
}

/// Two comma-separated values of an option ("0.05,0.30").
func pair<T: LosslessStringConvertible>(_ text: String, name: String, as: T.Type) throws -> (T, T) {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard parts.count == 2, let a = T(parts[0]), let b = T(parts[1]) else {
        throw ValidationError("\(name) takes two comma-separated \(T.self == Int.self ? "integers" : "numbers"), e.g. \(T.self == Int.self ? "20000,20000" : "0.05,0.30"); got '\(text)'")
    }
    return (a, b)
}

/// `microscale trial --task SPEC --data FILE`: the whole loop on one labelled file.
struct TrialCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trial",
        abstract: "Hold out part of a labelled file, train and certify on the rest, decide the held-out items, study the guarantee over repeated calibration splits, and write an HTML report.")

    @Option(help: "The task spec (YAML).")
    var task: String

    @Option(help: "Labelled CSV with the spec's columns.")
    var data: String

    @Option(help: "Where to write the trial's adapter (default: reports/TASK.trial.adapter.json; never the spec's adapter path, which serve and decide use, unless named here).")
    var output: String?

    @Flag(help: "Leave out rows whose label is not one of the task's (and say how many per label) instead of refusing the file.")
    var skipUnknownLabels = false

    @Option(help: "Share of each label held out for testing.")
    var holdout = 0.2

    @Option(help: "Random calibration splits in the guarantee study.")
    var resplits = 20

    @Option(help: "Target error of the coverage-against-calibration-size study.")
    var sizeTarget = 0.01

    @Option(help: "HTML report path.")
    var report: String?

    @Option(help: "Decisions to show per route.")
    var show = 4

    @Option(help: "Single requests to time for latency.")
    var latencySamples = 300

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    func run() throws {
        let spec = try TaskSpec.load(task)
        var trial = Trial(spec: spec)
        trial.holdout = holdout
        trial.resplits = resplits
        trial.sizeTarget = sizeTarget
        trial.latencySamples = latencySamples
        trial.threads = threads
        let labelled = try LabelledData.load(data, spec: spec, skipUnknownLabels: skipUnknownLabels)
        if let skipped = labelled.skippedSummary { print(skipped) }
        let outcome = try trial.run(data: labelled, writeAdapter: false)
        // The trial's adapter is trained on part of the file only: it goes beside the report, not where serve and
        // decide look, unless --output names that path.
        let path = output ?? "reports/\(spec.name).trial.adapter.json"
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        var adapter = outcome.classifier.adapter
        adapter.dataFile = URL(fileURLWithPath: data).standardizedFileURL.path
        try adapter.write(to: path)
        print("trial adapter written to \(path)" + (URL(fileURLWithPath: path).standardizedFileURL == URL(fileURLWithPath: spec.adapterPath).standardizedFileURL
            ? " (the spec's adapter path: serve and decide now use it)\n"
            : " (the spec's adapter, \(spec.adapterPath), is unchanged; use this one with decide --adapter \(path))\n"))
        let e = outcome.evaluation
        for route in Route.allCases {
            let chosen = e.decisions.indices.filter { e.decisions[$0].route == route }.prefix(show)
            guard !chosen.isEmpty else { continue }
            print("\(route.rawValue.uppercased()), for example:")
            for i in chosen {
                let d = e.decisions[i], truth = spec.labels[e.calibrated.labels[i]].name
                let text = outcome.heldOutTexts[i].replacingOccurrences(of: "\n", with: " ")
                print(String(format: "  %-62@ → %@ p=%.3f (%@)%@", String(text.prefix(60)) as NSString, d.label, d.probability, d.detail,
                             d.label == truth ? "" : " [truth: \(truth)]"))
            }
        }
        print()
        try Summary.print(e)
        try Summary.write(e, to: report ?? "reports/\(spec.name).html")
    }
}

/// Plain-text summary of an evaluation, and writing its report.
enum Summary {
    static func print(_ e: Evaluation) throws {
        let spec = e.spec
        func pct(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }
        for warning in e.warnings { Swift.print("WARNING: \(warning)") }
        Swift.print("\(e.decisions.count) \(e.warnings.isEmpty ? "held-out" : "evaluated (NOT held-out)") items: accepted \(e.count(.accept)) (\(pct(e.rate(.accept)))), escalated \(e.count(.escalate)) (\(pct(e.rate(.escalate)))), reviewed \(e.count(.review)) (\(pct(e.rate(.review))))")
        Swift.print("accuracy \(pct(e.calibrated.accuracy)), macro-F1 \(String(format: "%.4f", e.calibrated.macroF1)), ECE \(String(format: "%.4f", e.raw.expectedCalibrationError())) → \(String(format: "%.4f", e.calibrated.expectedCalibrationError())) after temperature scaling (T=\(String(format: "%.3f", e.adapter.temperature))), NLL \(String(format: "%.4f", e.calibrated.negativeLogLikelihood))")
        Swift.print("error among accepted \(pct(e.acceptedError))")
        if let s = e.scopeOutcome {
            let inside = s.inScopeItems > 0 ? "\(s.inScopeAccepted) of \(s.inScopeItems) accepted (coverage \(pct(s.inScopeCoverage)))" : "no items"
            let outside = s.outOfScopeItems > 0 ? "\(s.outOfScopeAccepted) of \(s.outOfScopeItems) accepted as some label (out-of-scope recall \(String(format: "%.3f", s.outOfScopeRecall)))" : "no items"
            Swift.print("in scope: \(inside); out of scope: \(outside)")
            if s.inScopeItems > 0 && s.outOfScopeItems > 0 {
                let points = [0.95, 0.9, 0.85, 0.8, 0.7].compactMap { c in e.outOfScopeRecall(atCoverage: c).map { (c, $0) } }
                Swift.print("  trade-off, one threshold for every label: " + points.map { c, p in
                    String(format: "coverage ≥ %.0f%%: recall %.3f (threshold %.3f, error among accepted %.2f%%)", c * 100, p.outOfScopeRecall, p.threshold, p.acceptedError * 100)
                }.joined(separator: "; "))
            }
        }
        for g in e.groupOutcomes {
            Swift.print("  group \(g.name): \(g.items) items, accepted \(g.accepted) (\(pct(Double(g.accepted) / Double(max(g.items, 1))))), wrong among accepted \(g.errors)"
                        + (g.outOfScopeItems > 0 ? "; out of scope \(g.outOfScopeItems), recall \(String(format: "%.3f", 1 - Double(g.outOfScopeAccepted) / Double(g.outOfScopeItems)))" : ""))
        }
        for o in e.classOutcomes {
            Swift.print("  \(o.riskClass.name): target \(pct(o.riskClass.targetError)), accepted \(o.accepted) of \(o.predicted) predicted (\(pct(o.coverage))), realised error \(o.accepted > 0 ? pct(o.realisedError) : "—")")
        }
        for h in e.highRiskOutcomes {
            Swift.print("  high-risk \(h.riskClass.name): \(h.items) items, \(h.missedByModel) predicted as another class, \(h.autoAcceptedAsLowRisk) auto-accepted as low-risk")
        }
        let c = spec.tiers.currency
        Swift.print("cost per 1,000 requests (each with the same review of the larger tier's answers): \(Report.costLine(e.cost, currency: c)) with the cascade; \(Report.costLine(e.allLarge, currency: c)) sending everything to \(spec.tiers.large?.name ?? spec.tiers.human.name); \(c)\(String(format: "%.2f", spec.tiers.human.costPer1k)) reviewing everything")
        if let l = e.latency {
            Swift.print(String(format: "decision latency over %d single requests: p50 %.2f ms, p99 %.2f ms (backbone p50 %.2f ms)", l.samples, l.p50, l.p99, l.backboneP50))
        }
        if let s = e.study {
            for c in s.acceptingClasses {
                let riskClass = s.riskClasses[c]
                let coverage = s.splits.map { $0.coverage[c] }.sorted(), error = s.splits.map { $0.realisedError[c] }.sorted()
                guard let low = coverage.first, let high = coverage.last else { continue }
                if high == 0 {
                    Swift.print("  \(s.splits.count) calibration splits, \(riskClass.name): never auto-accepted")
                    continue
                }
                Swift.print("  \(s.splits.count) calibration splits, \(riskClass.name): within target in \(s.withinTarget(c)); coverage \(pct(low))–\(pct(high)), realised error \(pct(error.first!))–\(pct(error.last!))")
            }
            for p in s.sizes {
                Swift.print("  at a \(pct(p.target)) target with \(p.size) calibration items: coverage \(pct(p.coverages.reduce(0, +) / Double(p.coverages.count))) (mean of \(p.coverages.count))")
            }
        }
        if let d = e.auditDrift {
            let alerted = d.auditsToAlert.count { $0 != nil }
            Swift.print("audit drift simulation (\(d.auditsToAlert.count) runs): out-of-scope share \(pct(d.before)) → \(pct(d.after)) after \(d.decisionsBefore) decisions; \(pct(d.share)) of accepted audited, window \(d.window), alerts from \(d.minAudits) audits")
            Swift.print("  error among accepted implied by these items: \(pct(d.errorBefore)) before, \(pct(d.errorAfter)) after; \(String(format: "%.0f", d.auditsBefore)) audits before the change per run, \(d.falseAlarms) run(s) alerted before it")
            Swift.print("  alert within \(d.decisionsAfter) decisions after the change in \(alerted) of \(d.auditsToAlert.count) runs; audits after the change until the alert: median \(d.quantile(0.5).map(String.init) ?? "—"), 90th percentile \(d.quantile(0.9).map(String.init) ?? "—"), max \(d.quantile(1).map(String.init) ?? "—")")
        }
        // Said again at the end, where the figures stop: they are easy to quote without the lines above.
        if !e.warnings.isEmpty { Swift.print("WARNING: the figures above are not held-out (see the warning at the top)") }
    }

    static func write(_ e: Evaluation, to path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Report.html(e).write(toFile: path, atomically: true, encoding: .utf8)
        Swift.print("report: \(path)")
    }
}
