import Crypto
import Foundation
import Statistics

/// A text as its exact bytes, for dictionaries and sets of texts. Swift's `String` compares by canonical equivalence
/// (U+00E9 equals e + U+0301), but a tokenizer reads bytes and a log stores them: two texts are the same only if
/// their UTF-8 is.
public struct ExactText: Hashable, Sendable {
    /// The UTF-8 bytes.
    public let utf8: [UInt8]
    /// The key of `text`.
    public init(_ text: String) { utf8 = Array(text.utf8) }
}

/// Where a training label came from.
public enum LabelSource: String, Codable, Sendable, CaseIterable {
    /// The labelled file training started from (people labelled it).
    case seed
    /// A reviewer's answer in the review queue (a confirmation or a correction), for an item the policy sent there or
    /// a teacher label sampled by its hash.
    case reviewed
    /// A reviewer's answer to a teacher check chosen because the teacher and the small model disagreed: a person's
    /// label, but chosen for being likely wrong, so it trains the head and never calibrates or compares.
    case checked
    /// A teacher: the larger tier's answer to a live escalation, or a `microscale distill` answer.
    case teacher
    /// A reviewer's answer auditing an accepted decision chosen at random (`audit.share`): a person's label on live
    /// traffic as it came, out-of-scope inputs included, so it trains, calibrates and compares.
    case audited

    /// Whether a person gave (or checked) the label.
    public var isHuman: Bool { self != .teacher }
    /// Whether the label may calibrate and compare: a person's, not chosen for disagreeing with the small model.
    public var calibrates: Bool { self == .seed || self == .reviewed || self == .audited }
}

/// One labelled text with its provenance.
public struct LabelledItem: Sendable, Equatable {
    /// The text, exactly as received.
    public var text: String
    /// The label's name.
    public var label: String
    /// Who gave it.
    public var source: LabelSource
    /// When (the seed file's labels count as oldest).
    public var time: Date
    /// An out-of-scope item's kind, when known (a seed file's `out_of_scope.kind_column`).
    public var kind: String? = nil

    /// An item from its parts.
    public init(text: String, label: String, source: LabelSource, time: Date, kind: String? = nil) {
        self.text = text; self.label = label; self.source = source; self.time = time; self.kind = kind
    }

    /// The kind an out-of-scope label from the log is held out as (it has none of its own).
    public static let logKind = "(labelled in the log)"
}

/// The training set a retrain builds from the log, one label per distinct text.
///
/// Conflicts (the same text, byte for byte, with different labels) are settled by two rules: a person's label (seed
/// or reviewer) beats a teacher's, and among labels of the same kind the newest wins (a reviewer's correction after
/// the seed file's label; the latest of two reviews). Labels that are not the task's are left out and counted.
public struct TrainingSet: Sendable {
    /// One item per distinct text.
    public var items: [LabelledItem]
    /// Texts that had more than one distinct label.
    public var conflicts: Int
    /// Of those, settled for a person against a teacher.
    public var humanOverTeacher: Int
    /// Labels that are not the task's: items per label.
    public var unknownLabels: [String: Int]

    /// Settles `all` into one item per text by the rules above.
    public static func assemble(_ all: [LabelledItem], spec: TaskSpec) -> TrainingSet {
        var unknown: [String: Int] = [:]
        var byText: [ExactText: [LabelledItem]] = [:]
        var order: [ExactText] = []
        for item in all {
            guard spec.labelIndex(item.label) != nil else { unknown[item.label, default: 0] += 1; continue }
            let key = ExactText(item.text)
            if byText[key] == nil { order.append(key) }
            byText[key, default: []].append(item)
        }
        var items: [LabelledItem] = [], conflicts = 0, humanOverTeacher = 0
        for text in order {
            let candidates = byText[text]!
            let winner = candidates.max { ($0.source.isHuman ? 1 : 0, $0.time) < ($1.source.isHuman ? 1 : 0, $1.time) }!
            if Set(candidates.map(\.label)).count > 1 {
                conflicts += 1
                if winner.source.isHuman && candidates.contains(where: { !$0.source.isHuman && $0.label != winner.label }) { humanOverTeacher += 1 }
            }
            items.append(winner)
        }
        return TrainingSet(items: items, conflicts: conflicts, humanOverTeacher: humanOverTeacher, unknownLabels: unknown)
    }
}

/// Which part of a retrain an item serves.
public enum RetrainPart: String, Codable, Sendable, CaseIterable {
    /// The head is fitted on it.
    case fit
    /// Temperature and thresholds are calibrated and certified on it (people's labels only).
    case calibration
    /// Candidate and current adapters are compared on it; training never sees it (people's labels only).
    case holdout
    /// A teacher's label on a text whose hash falls in the holdout: it neither trains (a person may label the same
    /// text later, and it would then be compared on) nor compares.
    case unused

    /// The part of a text: by two independent uniforms drawn from its SHA-256, so an item keeps its part from one
    /// retrain to the next (a holdout text is never trained on, whoever labels it). `human` says whether the label may
    /// calibrate and compare (``LabelSource/calibrates``); other labels only fit the head.
    public static func of(_ text: String, human: Bool, holdout: Double, calibration: Double) -> RetrainPart {
        let digest = Array(SHA256.hash(data: Data(text.utf8)))
        func uniform(_ offset: Int) -> Double {
            Double(digest[offset..<offset + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } >> 11) / Double(1 << 53)
        }
        if uniform(0) < holdout { return human ? .holdout : .unused }
        return human && uniform(8) < calibration ? .calibration : .fit
    }
}

/// How an adapter does on the human-labelled holdout.
public struct HoldoutScore: Codable, Sendable {
    /// Holdout items.
    public var items: Int
    /// Top-label accuracy.
    public var accuracy: Double
    /// Expected calibration error (15 bins) of the calibrated probabilities.
    public var ece: Double
    /// Items auto-accepted, and the share.
    public var accepted: Int
    public var coverage: Double
    /// Wrong among the accepted, the rate, and its Clopper-Pearson upper bound at the task's confidence.
    public var acceptedErrors: Int
    public var acceptedError: Double
    public var acceptedErrorBound: Double
    /// Recall per label with holdout items (label → recall).
    public var recall: [String: Double]
    /// Per high-risk class: items, predicted as another class (the model's false negatives), auto-accepted as a
    /// low-risk label (the cascade's false negatives).
    public var highRisk: [HighRisk]
    /// Cost per 1,000 requests of the cascade and of everything to the larger tier, by tier (same review policy).
    public var cost: Evaluation.Cost
    public var allLarge: Evaluation.Cost
    /// Risk classes with a certified threshold.
    public var certified: [String]

    /// One high-risk class on the holdout.
    public struct HighRisk: Codable, Sendable {
        public var riskClass: String
        public var items: Int
        public var missedByModel: Int
        public var autoAcceptedAsLowRisk: Int
        /// The model's false-negative rate (predicted as another class).
        public var modelFNR: Double { items > 0 ? Double(missedByModel) / Double(items) : 0 }
        /// The cascade's false-negative rate (auto-accepted as low-risk).
        public var cascadeFNR: Double { items > 0 ? Double(autoAcceptedAsLowRisk) / Double(items) : 0 }
    }

}

extension HoldoutScore {
    /// Scores an evaluation on the holdout.
    public init(_ e: Evaluation) {
        let spec = e.spec
        items = e.decisions.count
        accuracy = e.calibrated.accuracy
        ece = e.calibrated.expectedCalibrationError()
        let acceptedItems = e.decisions.indices.filter { e.decisions[$0].route == .accept }
        accepted = acceptedItems.count
        coverage = items > 0 ? Double(accepted) / Double(items) : 0
        acceptedErrors = acceptedItems.filter { !e.correct($0) }.count
        acceptedError = accepted > 0 ? Double(acceptedErrors) / Double(accepted) : 0
        acceptedErrorBound = accepted > 0 ? Binomial.upperBound(events: acceptedErrors, trials: accepted, delta: spec.delta) : 1
        var recall: [String: Double] = [:]
        for c in e.calibrated.perClass where c.support > 0 { recall[spec.labels[c.label].name] = c.recall }
        self.recall = recall
        highRisk = e.highRiskOutcomes.map {
            HighRisk(riskClass: $0.riskClass.name, items: $0.items, missedByModel: $0.missedByModel, autoAcceptedAsLowRisk: $0.autoAcceptedAsLowRisk)
        }
        cost = e.cost
        allLarge = e.allLarge
        certified = e.adapter.thresholds.filter { $0.certificate.threshold != nil }.map(\.riskClass)
    }
}

/// The promotion gate: a candidate replaces the active adapter only if every check passes.
///
/// 1. **Certified**: the candidate certifies at least one risk class, and every class the active adapter certifies.
/// 2. **High-risk misses not worse**: on the same holdout items, the candidate auto-accepts no more items of each
///    high-risk class as a low-risk label than the active adapter does.
/// 3. **Coverage not lower beyond noise**: the candidate's holdout coverage is at least the active one's minus two
///    binomial standard errors, `2·sqrt(c(1−c)/n)`.
/// 4. **Enough holdout**: when there is an active adapter to compare with, at least `minHoldout` holdout items.
/// 5. **Accepted error not clearly above target**: the Clopper-Pearson lower bound of the candidate's error among
///    accepted holdout items is at most the task's largest target error.
public struct PromotionGate: Codable, Sendable {
    /// One check.
    public struct Check: Codable, Sendable {
        public var name: String
        public var passed: Bool
        public var detail: String
    }

    /// Whether every check passed.
    public var passed: Bool { checks.allSatisfy(\.passed) }
    /// The checks, in the order above.
    public var checks: [Check]
    /// The version that was active when the gate judged (nil: none). A verdict holds only against that version:
    /// promotion refuses it once another is active.
    public var baseline: String? = nil

    /// Judges `candidate` against `current` (nil: nothing active yet); `targetError` is the largest target error of
    /// the task's risk classes and `delta` one minus the task's confidence.
    public static func judge(candidate: HoldoutScore, current: HoldoutScore?, minHoldout: Int = 30, targetError: Double = 1,
                             delta: Double = 0.05) -> PromotionGate {
        var checks: [Check] = []
        if candidate.accepted > 0 {
            // Clopper-Pearson lower bound of the error among accepted holdout items: above every target means the
            // certificate does not hold on data it was not calibrated on.
            let lower = 1 - Binomial.upperBound(events: candidate.accepted - candidate.acceptedErrors, trials: candidate.accepted, delta: delta)
            checks.append(Check(
                name: "accepted_error", passed: lower <= targetError,
                detail: String(format: "%d wrong of %d accepted holdout items (%.2f%%; lower bound %.2f%% against the largest target %.2f%%)",
                               candidate.acceptedErrors, candidate.accepted, candidate.acceptedError * 100, lower * 100, targetError * 100)))
        }
        let lost = Set(current?.certified ?? []).subtracting(candidate.certified)
        checks.append(Check(
            name: "certified", passed: !candidate.certified.isEmpty && lost.isEmpty,
            detail: candidate.certified.isEmpty ? "no risk class is certified: the candidate would accept nothing"
                : lost.isEmpty ? "certifies \(candidate.certified.joined(separator: ", "))"
                : "no longer certifies \(lost.sorted().joined(separator: ", ")), which the active adapter does"))
        guard let current else {
            checks.append(Check(name: "compared", passed: true, detail: "no active adapter: nothing to compare with"))
            return PromotionGate(checks: checks)
        }
        for h in candidate.highRisk {
            let before = current.highRisk.first { $0.riskClass == h.riskClass }?.autoAcceptedAsLowRisk ?? 0
            checks.append(Check(
                name: "high_risk_fnr:\(h.riskClass)", passed: h.autoAcceptedAsLowRisk <= before,
                detail: "\(h.autoAcceptedAsLowRisk) of \(h.items) \(h.riskClass) holdout items auto-accepted as low-risk (active adapter: \(before))"))
        }
        let c = current.coverage, n = Double(max(candidate.items, 1))
        let noise = 2 * (c * (1 - c) / n).squareRoot()
        checks.append(Check(
            name: "coverage", passed: candidate.coverage >= c - noise,
            detail: String(format: "coverage %.2f%% against %.2f%% (allowed down to %.2f%%: two standard errors on %d items)",
                           candidate.coverage * 100, c * 100, max(0, c - noise) * 100, candidate.items)))
        checks.append(Check(
            name: "holdout", passed: candidate.items >= minHoldout,
            detail: "\(candidate.items) human-labelled holdout items (at least \(minHoldout) needed to compare)"))
        return PromotionGate(checks: checks)
    }
}

/// Settings of a retrain.
public struct RetrainSettings: Sendable {
    /// Share of human-labelled texts held out for comparing adapters.
    public var holdout = 0.2
    /// Share of the other human-labelled texts used to calibrate and certify (the rest, and every teacher label, fit).
    public var calibration = 0.5
    /// Fewest holdout items the gate compares on.
    public var minHoldout = 30
    /// A settings value with the defaults.
    public init() {}
}

/// Embeddings of texts kept in memory across retrains (each text embedded once per process).
public final class FeatureCache: @unchecked Sendable {
    private let extractor: FeatureExtractor
    private var rows: [ExactText: [Float]] = [:]
    private let lock = NSLock()

    /// A cache over an extractor.
    public init(extractor: FeatureExtractor) { self.extractor = extractor }

    /// Features of `texts`, embedding those not seen before in batches of 32.
    public func features(_ texts: [String], progress: ((Int, Int) -> Void)? = nil) throws -> FeatureMatrix {
        let missing = lock.withLock { Array(Set(texts.map(ExactText.init).filter { rows[$0] == nil })) }.map { String(decoding: $0.utf8, as: UTF8.self) }
        for start in stride(from: 0, to: missing.count, by: 32) {
            let chunk = Array(missing[start..<min(start + 32, missing.count)])
            let x = try extractor.features(uncached: chunk)
            lock.withLock { for (i, text) in chunk.enumerated() { rows[ExactText(text)] = Array(x.row(i)) } }
            progress?(min(start + 32, missing.count), missing.count)
        }
        let d = extractor.backbone.model.dimension
        var values = [Float]()
        values.reserveCapacity(texts.count * d)
        lock.withLock { for text in texts { values += rows[ExactText(text)]! } }
        return FeatureMatrix(rows: texts.count, columns: d, values: values)
    }
}

/// A retrain: a candidate adapter fitted on a training set from the log, certified on people's labels only, and
/// compared with the active adapter on a human-labelled holdout it never saw.
public struct Retraining {
    /// The task.
    public let spec: TaskSpec
    /// Embeddings.
    public let cache: FeatureCache
    /// The extractor the cache embeds with.
    public let extractor: FeatureExtractor
    /// Settings.
    public var settings = RetrainSettings()
    /// Progress on standard error.
    public var verbose = true

    /// A retrain over a task's backbone.
    public init(spec: TaskSpec, extractor: FeatureExtractor, cache: FeatureCache? = nil) {
        self.spec = spec
        self.extractor = extractor
        self.cache = cache ?? FeatureCache(extractor: extractor)
    }

    /// What a retrain produced.
    public struct Outcome: Sendable {
        /// The candidate.
        public var candidate: Adapter
        /// Candidate and active adapter on the holdout (nil: no active adapter).
        public var candidateScore: HoldoutScore
        public var currentScore: HoldoutScore?
        /// The gate's verdict.
        public var gate: PromotionGate
        /// Items per part and source.
        public var composition: [RetrainPart: [LabelSource: Int]]
        /// The training set (for its conflict counts).
        public var set: TrainingSet
        /// Calibration items per label (people's labels).
        public var calibrationPerLabel: [Int]
        /// Holdout texts left out of the comparison because the active adapter was trained on them.
        public var holdoutSeenByCurrent: Int
    }

    /// Fits, certifies and compares. Throws when there are too few people's labels to calibrate on.
    public func run(_ set: TrainingSet, current: Adapter?) throws -> Outcome {
        var parts: [RetrainPart] = []
        var composition: [RetrainPart: [LabelSource: Int]] = [:]
        for item in set.items {
            let part = RetrainPart.of(item.text, human: item.source.calibrates, holdout: settings.holdout, calibration: settings.calibration)
            parts.append(part)
            composition[part, default: [:]][item.source, default: 0] += 1
        }
        let train = set.items.indices.filter { parts[$0] != .holdout }
        let fit = train.indices.filter { parts[train[$0]] == .fit }, calibration = train.indices.filter { parts[train[$0]] == .calibration }
        guard !calibration.isEmpty else {
            throw DataError(file: spec.file, message: "no human-labelled items fall in the calibration part (\(set.items.count(where: { $0.source.calibrates })) human labels that may calibrate): thresholds are certified on people's labels only; review more items first")
        }
        let texts = train.map { set.items[$0].text }, labels = train.map { spec.labelIndex(set.items[$0].label)! }
        let bar = verbose ? ProgressBar("features") : nil
        let features = try cache.features(texts) { bar?.update($0, $1) }
        var trainer = Trainer(spec: spec, extractor: extractor)
        trainer.verbose = verbose
        let digest = Digest.of(set.items.map { "\($0.label)\u{0}\($0.text)" }.joined(separator: "\u{1}"))
        // With a kind column, out-of-scope labels keep their seed file's kinds; those from the log are one kind more.
        let kinds = spec.outOfScope?.kindColumn == nil ? nil : train.map { set.items[$0].kind ?? LabelledItem.logKind }
        var candidate = try trainer.train(features: features, texts: texts, labels: labels, dataDigest: digest, split: (fit, calibration),
                                          kinds: kinds).adapter
        candidate.dataFile = nil

        var holdout = set.items.indices.filter { parts[$0] == .holdout }
        // Holdout texts the active adapter was trained on (a seed file trained on whole) would flatter it: both are
        // compared on the rest.
        if let seen = current?.trainedOn(holdout.map { set.items[$0].text }) {
            holdout = zip(holdout, seen).filter { !$0.1 }.map(\.0)
        }
        let seenByCurrent = set.items.indices.count { parts[$0] == .holdout } - holdout.count
        let holdoutTexts = holdout.map { set.items[$0].text }, holdoutLabels = holdout.map { spec.labelIndex(set.items[$0].label)! }
        let holdoutFeatures = try cache.features(holdoutTexts)
        func score(_ adapter: Adapter) -> HoldoutScore {
            let classifier = Classifier(spec: spec, extractor: extractor, adapter: adapter)
            return HoldoutScore(Evaluation(classifier: classifier, features: holdoutFeatures, labels: holdoutLabels, texts: holdoutTexts, source: "holdout"))
        }
        let candidateScore = score(candidate)
        let currentScore = current.map(score)
        var perLabel = [Int](repeating: 0, count: spec.labels.count)
        for i in calibration { perLabel[labels[i]] += 1 }
        return Outcome(candidate: candidate, candidateScore: candidateScore, currentScore: currentScore,
                       gate: PromotionGate.judge(candidate: candidateScore, current: currentScore, minHoldout: settings.minHoldout,
                                                 targetError: spec.riskClasses.map(\.targetError).max() ?? 1, delta: spec.delta),
                       composition: composition, set: set, calibrationPerLabel: perLabel, holdoutSeenByCurrent: seenByCurrent)
    }
}

extension Report {
    /// The promotion report: candidate against the active adapter on the holdout, the gate, and what the training set
    /// was made of.
    public static func promotion(_ o: Retraining.Outcome, spec: TaskSpec, candidateVersion: String, currentVersion: String?) -> String {
        let c = o.candidateScore, a = o.currentScore, currency = spec.tiers.currency
        func both(_ f: (HoldoutScore) -> String) -> [String] { [f(c), a.map(f) ?? "—"] }
        var body = "<h1>\(escape(spec.name)): promotion report</h1>\n"
        body += "<p class=meta>Candidate \(escape(String(candidateVersion.prefix(12)))) against \(currentVersion.map { "the active adapter " + escape(String($0.prefix(12))) } ?? "no active adapter"), on \(c.items) human-labelled holdout items that neither was trained or calibrated on\(o.holdoutSeenByCurrent > 0 ? " (\(o.holdoutSeenByCurrent) more holdout texts were left out: the active adapter was trained on them)" : ""). Thresholds are certified on people's labels only (seed file and reviewers): a teacher's labels train the head but never enter a certificate, because the teacher's own errors would bias the measured error rate, and with it the guarantee. People's answers to teacher checks chosen for disagreeing with the small model train the head too, but neither calibrate nor compare: they were chosen for being likely wrong.</p>\n"
        body += "<h2>Gate: <span class=\(o.gate.passed ? "pass" : "fail")>\(o.gate.passed ? "passed" : "not passed")</span></h2>\n"
        body += table(["check", "result", "detail"], o.gate.checks.map { [$0.name, $0.passed ? "pass" : "FAIL", $0.detail] })
        body += "<h2>On the holdout</h2>\n"
        var rows: [[String]] = [
            ["items"] + both { "\($0.items)" },
            ["accuracy"] + both { pct($0.accuracy) },
            ["ECE (15 bins)"] + both { String(format: "%.4f", $0.ece) },
            ["coverage (auto-accepted)"] + both { "\(pct($0.coverage)) (\($0.accepted))" },
            ["error among accepted (upper bound)"] + both { $0.accepted > 0 ? "\(pct($0.acceptedError)) (≤ \(pct($0.acceptedErrorBound)))" : "—" },
            ["certified risk classes"] + both { $0.certified.joined(separator: ", ") },
            ["cost per 1,000: cascade"] + both { costLine($0.cost, currency: currency) },
            ["cost per 1,000: everything to the larger tier"] + both { costLine($0.allLarge, currency: currency) },
        ]
        for h in c.highRisk {
            rows.append(["high-risk \(h.riskClass): model FNR / cascade FNR"] + both { s in
                guard let x = s.highRisk.first(where: { $0.riskClass == h.riskClass }) else { return "—" }
                return "\(pct(x.modelFNR)) / \(pct(x.cascadeFNR)) of \(x.items)"
            })
        }
        body += table(["", "candidate", "active"], rows)
        body += "<h2>Recall per label</h2>\n"
        body += table(["label", "candidate", "active", "calibration items"], spec.labels.indices.compactMap { i in
            let name = spec.labels[i].name
            guard let r = c.recall[name] else { return nil }
            return [name, pct(r), a?.recall[name].map(pct) ?? "—", "\(o.calibrationPerLabel[i])"]
        })
        body += "<h2>Training set</h2>\n<p>One label per distinct text: a person's label beats a teacher's, and among labels of the same kind the newest wins. \(o.set.conflicts) texts had conflicting labels (\(o.set.humanOverTeacher) settled for a person against a teacher).\(o.set.unknownLabels.isEmpty ? "" : " Left out, labels that are not the task's: " + o.set.unknownLabels.map { "\($0.key) (\($0.value))" }.sorted().joined(separator: ", ") + ".")</p>\n"
        body += table(["part"] + LabelSource.allCases.map(\.rawValue), RetrainPart.allCases.map { p in
            [p.rawValue] + LabelSource.allCases.map { "\(o.composition[p]?[$0] ?? 0)" }
        })
        return page(title: "\(spec.name) — promotion report", body: body)
    }
}
