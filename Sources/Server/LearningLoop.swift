import AsyncHTTPClient
import Cascade
import Foundation
import Logging
import Statistics
import Store
import StructuredOutput

/// What a teacher is asked about a classification input: the task, its labels with their descriptions, and the
/// answer's shape. The small model's draft is not shown (a teacher labelling data should not be anchored on it).
func teacherQuestion(_ spec: TaskSpec) -> String {
    let list = spec.labels.map { "- \($0.name)" + ($0.description.map { ": " + $0 } ?? "") }.joined(separator: "\n")
    return """
        Task: \(spec.summary)
        Choose exactly one label for the user's message. Labels:
        \(list)
        Answer with JSON: {"label": "<one of the labels>"}
        """
}

/// `microscale distill`: a teacher (any OpenAI-compatible endpoint) labels unlabelled inputs under the task's JSON
/// schema, through the escalation client (its concurrency limit, retries and circuit breaker). Every answer is stored
/// as it arrives, as a decision row with `origin = distill` whose `teacher_label` is the answer, the teacher's call
/// (endpoint, model, prompt digest, tokens) in its escalation column and the small model's draft beside it. A rerun
/// skips inputs already answered, so a killed run loses nothing that was stored and asks nothing twice that was
/// answered; only the requests in flight at the kill are asked again.
public struct Distiller {
    /// The task.
    public let spec: TaskSpec
    /// The teacher.
    public let tier: ServiceConfig.Escalation
    /// Where labels go.
    public let store: any DecisionStore
    /// The small model (nil: no adapter yet), for its draft and for choosing what people check.
    public let student: Classifier?
    /// Share of teacher labels to send to review.
    public var reviewShare: Double = 0
    /// The student adapter's version (SHA-256 of its file), recorded with each label.
    public var studentVersion: String?
    let logger: Logger

    /// A distiller.
    public init(spec: TaskSpec, tier: ServiceConfig.Escalation, store: any DecisionStore, student: Classifier?, logger: Logger) {
        self.spec = spec; self.tier = tier; self.store = store; self.student = student; self.logger = logger
    }

    /// What a run did.
    public struct Summary: Sendable {
        public var inputs = 0, duplicates = 0, alreadyLabelled = 0, asked = 0, answered = 0, failed = 0
        public var promptTokens = 0, completionTokens = 0
        /// Cost of the answered requests at the task's `tiers.large.cost_per_1k`.
        public var cost = 0.0
        /// Failure messages (first few).
        public var failures: [String] = []
        /// Review items queued for people to check teacher labels (this run).
        public var queuedForReview = 0
    }

    /// Labels `texts` (validated by the caller) and queues the review share.
    public func run(_ texts: [String], progress: (@Sendable (Int, Int) -> Void)? = nil) async throws -> Summary {
        var summary = Summary()
        summary.inputs = texts.count
        var seen = Set<String>(), todo: [(text: String, sha: String)] = []
        let done = try await store.distilledInputs(task: spec.name)
        for text in texts {
            let sha = Digest.of(text)
            guard seen.insert(sha).inserted else { summary.duplicates += 1; continue }
            if done.contains(sha) { summary.alreadyLabelled += 1; continue }
            todo.append((text, sha))
        }
        let drafts: [Decision?] = try student.map { s in try s.decide(batch: todo.map(\.text)).map { Optional($0) } }
            ?? [Decision?](repeating: nil, count: todo.count)
        let schema = try ServedClassification.labelSchema(spec)
        let question = teacherQuestion(spec)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let client = EscalationClient(tier: tier, http: http, logger: logger)
        let costPerRequest = (spec.tiers.large?.costPer1k ?? 0) / 1000
        do {
            try await withThrowingTaskGroup(of: (Int, EscalationOutcome).self) { group in
                var next = 0, finished = 0
                func launch() {
                    guard next < todo.count else { return }
                    let i = next
                    next += 1
                    let draft = drafts[i], text = todo[i].text, name = spec.name
                    group.addTask {
                        let headers = draft.map { [("Label", $0.label), ("Confidence", String(format: "%.4f", $0.probability))] } ?? []
                        return (i, await client.ask(task: name, system: question, user: text, schema: schema, draft: headers))
                    }
                }
                for _ in 0..<max(1, tier.maxConcurrent) { launch() }
                while let (i, outcome) = try await group.next() {
                    finished += 1
                    summary.asked += 1
                    if outcome.outcome == .answered, let label = outcome.answer?["label"]?.stringValue {
                        summary.answered += 1
                        summary.promptTokens += outcome.usage?.promptTokens ?? 0
                        summary.completionTokens += outcome.usage?.completionTokens ?? 0
                        summary.cost += costPerRequest
                        let draft = drafts[i].map { Draft(label: $0.label, confidence: $0.probability, fields: nil) }
                        try await store.record(DecisionRecord(
                            id: UUID().uuidString.lowercased(), task: spec.name, createdAt: Date(), input: todo[i].text, inputSHA256: todo[i].sha,
                            label: label, fieldsJSON: nil, confidence: nil, route: Route.escalate.outcome, reason: "distilled",
                            detail: "labelled by the teacher \(tier.model) at \(tier.baseURL) (microscale distill)", tier: Tier.large.rawValue,
                            draftJSON: try draft.map { String(decoding: try encodeJSON($0), as: UTF8.self) },
                            escalationJSON: String(decoding: try encodeJSON(outcome), as: UTF8.self), latencyJSON: "{}",
                            modelVersion: "teacher:" + tier.model, adapterVersion: studentVersion, origin: "distill", teacherLabel: label), review: nil)
                    } else {
                        summary.failed += 1
                        if summary.failures.count < 5 { summary.failures.append(outcome.error ?? outcome.outcome.rawValue) }
                    }
                    progress?(finished, todo.count)
                    launch()
                }
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try? await http.shutdown()
        summary.queuedForReview = try await queueChecks()
        return summary
    }

    /// Queues review items so that `reviewShare` of the task's distilled labels are checked by a person: half by input
    /// hash (`teacher_sample`, independent of both models: the unbiased measure of the teacher), half where the teacher
    /// and the small model disagree first, then the least confident drafts (`teacher_check`). Returns how many were
    /// queued now.
    public func queueChecks() async throws -> Int {
        guard reviewShare > 0 else { return 0 }
        let labels = try await store.teacherLabels(task: spec.name).filter { $0.origin == "distill" && $0.text != nil }
        let checks = try await store.reviewItems(task: spec.name, reason: teacherCheckReason)
        let samples = try await store.reviewItems(task: spec.name, reason: teacherSampleReason)
        var queued = Set((checks + samples).map(\.decisionId))
        let total = Int((reviewShare * Double(labels.count)).rounded(.up))
        let wantedSamples = max(0, total / 2 - labels.count { samples.map(\.decisionId).contains($0.decisionId) })
        func draft(_ l: TeacherLabel) -> Draft? { l.draftJSON.flatMap { try? JSONDecoder().decode(Draft.self, from: Data($0.utf8)) } }
        var items: [ReviewItem] = []
        for l in labels.filter({ !queued.contains($0.decisionId) }).sorted(by: { Digest.of("teacher-sample\u{0}" + $0.text!) < Digest.of("teacher-sample\u{0}" + $1.text!) })
            .prefix(wantedSamples) {
            let d = draft(l)
            items.append(ReviewItem(decisionId: l.decisionId, task: spec.name, text: l.text!, draftLabel: l.label, draftFieldsJSON: nil, confidence: d?.confidence,
                                    reason: teacherSampleReason, detail: "teacher sample: the teacher said \(l.label), the small model \(d?.label ?? "nothing")",
                                    createdAt: Date()))
            queued.insert(l.decisionId)
        }
        let wantedChecks = max(0, total - samples.count - checks.count - items.count)
        let ranked = labels.filter { !queued.contains($0.decisionId) }.map { l -> (TeacherLabel, Draft?) in (l, draft(l)) }.sorted { a, b in
            let da = a.1.map { $0.label != a.0.label } ?? false, db = b.1.map { $0.label != b.0.label } ?? false
            if da != db { return da }
            let ca = a.1?.confidence ?? 0, cb = b.1?.confidence ?? 0
            if ca != cb { return ca < cb }
            return a.0.inputSHA256 < b.0.inputSHA256
        }.prefix(wantedChecks)
        for (l, d) in ranked {
            let disagrees = d.map { $0.label != l.label } ?? false
            items.append(ReviewItem(decisionId: l.decisionId, task: spec.name, text: l.text!, draftLabel: l.label, draftFieldsJSON: nil, confidence: d?.confidence,
                                    reason: teacherCheckReason,
                                    detail: disagrees ? "teacher check: the teacher said \(l.label), the small model \(d?.label ?? "nothing")"
                                        : d == nil ? "teacher check: no small model yet" : "teacher check: the small model agreed with low confidence",
                                    createdAt: Date()))
        }
        try await store.queueReviews(items)
        return items.count
    }
}

extension ServedClassification {
    /// `{"label": <one of the task's labels>}`.
    static func labelSchema(_ spec: TaskSpec) throws -> Schema {
        try Schema(document: .object([
            ("type", .string("object")),
            ("properties", .object([("label", .object([("type", .string("string")), ("enum", .array(spec.labels.map { .string($0.name) }))]))])),
            ("required", .array([.string("label")])), ("additionalProperties", .bool(false)),
        ]))
    }
}

/// Reviewers' agreement with the teacher, per teacher label, from every reviewed input a teacher had labelled; and,
/// unbiased, on the hash-sampled checks alone (the other checks favour disagreements, so agreement on them is low).
public struct TeacherAgreement: Sendable, Encodable {
    /// One label.
    public struct Row: Sendable, Encodable {
        public var label: String
        public var reviewed: Int
        public var agreed: Int
        public var agreement: Double { reviewed > 0 ? Double(agreed) / Double(reviewed) : 0 }
        /// Below the floor (with at least 5 reviews).
        public var flagged: Bool
    }

    public var rows: [Row]
    public var reviewed: Int
    public var agreed: Int
    public var agreement: Double { reviewed > 0 ? Double(agreed) / Double(reviewed) : 0 }
    /// Hash-sampled checks and agreement on them.
    public var sampled: Int
    public var sampledAgreed: Int
    public var floor: Double
    /// The teacher is below the floor: on the sampled checks when there are at least 20, else on all (with 20).
    public var flagged: Bool

    /// Measures agreement for `task`.
    public static func measure(task: String, store: any DecisionStore, floor: Double) async throws -> TeacherAgreement {
        let pairs = try await store.teacherReviews(task: task)
        var byLabel: [String: (Int, Int)] = [:]
        for p in pairs { byLabel[p.teacher, default: (0, 0)].0 += 1; if p.teacher == p.reviewer { byLabel[p.teacher]!.1 += 1 } }
        let rows = byLabel.keys.sorted().map { l in
            let (n, a) = byLabel[l]!
            return Row(label: l, reviewed: n, agreed: a, flagged: n >= 5 && Double(a) / Double(n) < floor)
        }
        let n = pairs.count, a = pairs.count { $0.teacher == $0.reviewer }
        let samples = pairs.filter { $0.reason == teacherSampleReason }, sa = samples.count { $0.teacher == $0.reviewer }
        let flagged = samples.count >= 20 ? Double(sa) / Double(samples.count) < floor : n >= 20 && Double(a) / Double(n) < floor
        return TeacherAgreement(rows: rows, reviewed: n, agreed: a, sampled: samples.count, sampledAgreed: sa, floor: floor, flagged: flagged)
    }

    /// The agreement in words, one line per label.
    public var text: String {
        guard reviewed > 0 else { return "reviewers' agreement with the teacher: no teacher label reviewed yet" }
        var out = String(format: "reviewers' agreement with the teacher: %.1f%% of %d reviewed (checks favour disagreements); on the %d hash-sampled checks %@ (floor %.0f%%)%@",
                         agreement * 100, reviewed, sampled, sampled > 0 ? String(format: "%.1f%%", Double(sampledAgreed) / Double(sampled) * 100) : "—",
                         floor * 100, flagged ? " — FLAGGED: below the floor" : "")
        for r in rows {
            out += String(format: "\n  %@: %d of %d (%.1f%%)%@", r.label, r.agreed, r.reviewed, r.agreement * 100, r.flagged ? "  FLAGGED" : "")
        }
        return out
    }
}

/// Retraining from the log (`microscale retrain`): the training set is the seed file, reviewers' answers and teacher
/// labels; a candidate is fitted, certified on people's labels only, compared with the active version on a
/// human-labelled holdout, and stored as a candidate version with the gate's verdict.
public struct LogRetrain {
    /// The task.
    public let spec: TaskSpec
    /// The store.
    public let store: any DecisionStore
    /// The retrain.
    public var retraining: Retraining

    /// A retrain over the store.
    public init(spec: TaskSpec, store: any DecisionStore, retraining: Retraining) {
        self.spec = spec; self.store = store; self.retraining = retraining
    }

    /// What was gathered and made.
    public struct Result: Sendable {
        public var outcome: Retraining.Outcome
        /// The candidate's version (SHA-256 of its file) and file bytes.
        public var version: String
        public var body: String
        /// The active version compared against.
        public var currentVersion: String?
        /// Teacher labels left out because the log keeps no text for them (log_inputs: hash or redacted).
        public var teacherWithoutText: Int
    }

    /// Gathers, fits, compares; stores the candidate with its gate verdict (and `report`'s path).
    public func run(seed: LabelledData?, report: String?) async throws -> Result {
        var items: [LabelledItem] = []
        if let seed {
            for (i, (text, label)) in zip(seed.texts, seed.labels).enumerated() {
                let kind = seed.kinds.map { $0[i] }.flatMap { $0.isEmpty ? nil : $0 }
                items.append(LabelledItem(text: text, label: spec.labels[label].name, source: .seed, time: .distantPast, kind: kind))
            }
        }
        for (e, reason) in try await store.reviewedExamples(task: spec.name) {
            guard let label = e.label else { continue }
            items.append(LabelledItem(text: e.text, label: label, source: reason == teacherCheckReason ? .checked : reason == auditReason ? .audited : .reviewed, time: e.createdAt))
        }
        var withoutText = 0
        for t in try await store.teacherLabels(task: spec.name) {
            // A redacted input is not what the model will see: only the full text trains.
            guard let text = t.text, Digest.of(text) == t.inputSHA256 else { withoutText += 1; continue }
            items.append(LabelledItem(text: text, label: t.label, source: .teacher, time: t.createdAt))
        }
        let set = TrainingSet.assemble(items, spec: spec)
        let versions = try await store.adapterVersions(task: spec.name)
        let active = versions.first { $0.status == .active }
        let extractor = retraining.extractor
        let current = try active.map {
            try Adapter.decode(Data($0.body.utf8), source: "active version \($0.version.prefix(12))", for: spec, extractor: extractor)
        }
        var outcome = try retraining.run(set, current: current)
        outcome.gate.baseline = active?.version
        let body = String(decoding: try outcome.candidate.json(), as: UTF8.self)
        let version = Digest.of(body)
        if let report {
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: report).deletingLastPathComponent().path, withIntermediateDirectories: true)
            try Report.promotion(outcome, spec: spec, candidateVersion: version, currentVersion: active?.version).write(toFile: report, atomically: true, encoding: .utf8)
        }
        let gateJSON = String(decoding: try encodeJSON(outcome.gate), as: UTF8.self)
        if !(try await store.addAdapter(AdapterVersion(task: spec.name, version: version, createdAt: Date(), status: .candidate, source: "retrain",
                                                       body: body, gateJSON: gateJSON, report: report))) {
            // The same candidate again (same data, same fit): the new verdict replaces the old one.
            try await store.updateGate(task: spec.name, version: version, gateJSON: gateJSON, report: report)
        }
        return Result(outcome: outcome, version: version, body: body, currentVersion: active?.version, teacherWithoutText: withoutText)
    }
}

/// Promotion through the gate: a version becomes active only if the gate stored with it passed.
public enum Promotion {
    /// Why a version cannot be promoted.
    public struct Refused: Error, CustomStringConvertible {
        public var description: String
    }

    /// Promotes `version` (default: the newest candidate) of `task`; returns the version promoted.
    @discardableResult
    public static func promote(task: String, version: String?, store: any DecisionStore) async throws -> String {
        let versions = try await store.adapterVersions(task: task)
        let chosen: AdapterVersion
        if let version {
            let matches = versions.filter { $0.version.hasPrefix(version) }
            guard matches.count == 1 else {
                throw Refused(description: matches.isEmpty ? "no version \(version) of \(task) in the store (microscale adapters list shows them)"
                                                           : "\(version) names \(matches.count) versions; give more of the digest")
            }
            chosen = matches[0]
        } else {
            guard let newest = versions.first(where: { $0.status == .candidate || $0.status == .shadow }) else {
                throw Refused(description: "task \(task) has no candidate version: run microscale retrain first")
            }
            chosen = newest
        }
        guard chosen.status != .active else { return chosen.version }
        guard let gateJSON = chosen.gateJSON, let gate = try? JSONDecoder().decode(PromotionGate.self, from: Data(gateJSON.utf8)) else {
            throw Refused(description: "version \(chosen.version.prefix(12)) (\(chosen.source)) has not been through the promotion gate; candidates come from microscale retrain, which judges them")
        }
        guard gate.passed else {
            throw Refused(description: "version \(chosen.version.prefix(12)) did not pass the promotion gate: "
                          + gate.checks.filter { !$0.passed }.map { "\($0.name): \($0.detail)" }.joined(separator: "; "))
        }
        let active = versions.first { $0.status == .active }?.version
        guard gate.baseline == active else {
            throw Refused(description: "version \(chosen.version.prefix(12)) was judged against \(gate.baseline.map { String($0.prefix(12)) } ?? "no active version"), but \(active.map { String($0.prefix(12)) } ?? "none") is active now: retrain to judge it against the version that serves")
        }
        try await store.activate(task: task, version: chosen.version)
        return chosen.version
    }
}
