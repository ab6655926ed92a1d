import Foundation
import Statistics

/// How a task's cascade did on labelled items it was not trained or calibrated on.
public struct Evaluation: Sendable {
    /// The task.
    public var spec: TaskSpec
    /// The adapter evaluated.
    public var adapter: Adapter
    /// Where the items came from.
    public var source: String
    /// Probabilities before temperature scaling.
    public var raw: ScoredItems
    /// Calibrated probabilities.
    public var calibrated: ScoredItems
    /// The decision for every item (without timings).
    public var decisions: [Decision]
    /// Single-request decision latency, when measured.
    public var latency: Latency?
    /// Repeated calibration splits, when run.
    public var study: GuaranteeStudy?
    /// Why the figures are not held-out, when they are not (see `checkTrainingOverlap`).
    public var warnings: [String] = []
    /// Cost per 1,000 requests of the cascade, and of everything to the larger tier with the same review policy.
    public var cost: Cost
    public var allLarge: Cost
    /// Each item's similarity to its nearest label centroid (nil without a scope check).
    public var similarities: [Double]?
    /// Each item's group (a column of the evaluated file, e.g. the kind of out-of-scope input), when one was named.
    public var groups: [String]?
    /// Audit drift simulations, when run.
    public var auditDrift: AuditDriftSimulation?

    /// How a task with an out-of-scope label treats in-scope and out-of-scope items.
    public struct ScopeOutcome: Sendable {
        /// Items whose true label is in scope, and of those accepted.
        public var inScopeItems, inScopeAccepted: Int
        /// Items whose true label is the out-of-scope one, and of those accepted (as some label: each is an error).
        public var outOfScopeItems, outOfScopeAccepted: Int
        /// inScopeAccepted / inScopeItems.
        public var inScopeCoverage: Double { inScopeItems > 0 ? Double(inScopeAccepted) / Double(inScopeItems) : 0 }
        /// Share of out-of-scope items not accepted (1 with none).
        public var outOfScopeRecall: Double { outOfScopeItems > 0 ? 1 - Double(outOfScopeAccepted) / Double(outOfScopeItems) : 1 }
    }

    /// One point of the scope trade-off: every risk class's threshold set to `threshold` (the scope floor kept).
    public struct TradeOffPoint: Sendable {
        /// The common threshold on the top probability.
        public var threshold: Double
        /// Accepted share of in-scope items, share of out-of-scope items not accepted, error among all accepted.
        public var inScopeCoverage, outOfScopeRecall, acceptedError: Double
    }

    /// Figures of one group of items (``groups``).
    public struct GroupOutcome: Sendable {
        /// The group's name.
        public var name: String
        /// Items, accepted, wrong among the accepted.
        public var items, accepted, errors: Int
        /// Out-of-scope items in the group, and of those accepted.
        public var outOfScopeItems, outOfScopeAccepted: Int
    }

    /// Latency percentiles in milliseconds.
    public struct Latency: Sendable {
        /// Requests timed.
        public var samples: Int
        /// Percentiles of the whole decision, and the backbone's part at the median.
        public var p50, p95, p99, mean, backboneP50: Double
    }

    /// Outcome of one risk class's predictions.
    public struct ClassOutcome: Sendable {
        /// Risk class.
        public var riskClass: RiskClass
        /// Items predicted as one of its labels.
        public var predicted: Int
        /// Of those, accepted.
        public var accepted: Int
        /// Wrong among the accepted.
        public var errors: Int
        /// accepted / predicted.
        public var coverage: Double { predicted > 0 ? Double(accepted) / Double(predicted) : 0 }
        /// errors / accepted.
        public var realisedError: Double { accepted > 0 ? Double(errors) / Double(accepted) : 0 }
    }

    /// How items of a high-risk class fared.
    public struct HighRiskOutcome: Sendable {
        /// Risk class.
        public var riskClass: RiskClass
        /// Items whose true label is in it.
        public var items: Int
        /// Of those, predicted as a label outside it (the classifier's false negatives).
        public var missedByModel: Int
        /// Of those, auto-accepted as a label outside every high-risk class (the misses the policy must prevent).
        public var autoAcceptedAsLowRisk: Int
    }

    /// Evaluates an adapter on features of labelled items.
    public init(classifier: Classifier, features: FeatureMatrix, labels: [Int], texts: [String], source: String) {
        spec = classifier.spec
        adapter = classifier.adapter
        self.source = source
        let k = spec.labels.count
        let logits = classifier.logits(features, texts: texts)
        raw = ScoredItems(probabilities: softmax(logits, classes: k), labels: labels, classes: k)
        let probabilities = softmax(logits, classes: k, temperature: classifier.adapter.temperature)
        let similarities = classifier.similarities(features)
        self.similarities = similarities
        calibrated = ScoredItems(probabilities: probabilities, labels: labels, classes: k)
        decisions = (0..<labels.count).map { i in
            classifier.decision(Array(probabilities[i * k..<(i + 1) * k]), text: texts[i], similarity: similarities?[i])
        }
        cost = Cost(small: 0, large: 0, human: 0)
        allLarge = cost
        cost = cascadeCost(policy: classifier.policy, texts: texts)
        allLarge = allLargeCost(policy: classifier.policy, texts: texts)
    }

    /// Checks whether the evaluated items are the adapter's training data (see `trainingOverlap`); each finding is
    /// added to `warnings` and to `source`, so the summary and the report both say the figures are not held-out.
    public mutating func checkTrainingOverlap(dataDigest: String, texts: [String]) {
        let found = Evaluation.trainingOverlap(adapter: adapter, dataDigest: dataDigest, texts: texts)
        warnings += found
        for warning in found { source += " — WARNING: \(warning)" }
    }

    /// Why `texts`, read from a file with SHA-256 `dataDigest`, are not held-out for `adapter`: the file is the one it
    /// was trained on (same digest), or some of the texts are among its training texts (when it stores their
    /// fingerprints). Empty when neither.
    public static func trainingOverlap(adapter: Adapter, dataDigest: String, texts: [String]) -> [String] {
        if adapter.kind == .trained && !adapter.dataSHA256.isEmpty && dataDigest == adapter.dataSHA256 {
            return ["this is the very file the adapter was trained on (same SHA-256, \(dataDigest.prefix(12))…): these figures are NOT held-out and overstate how it does on new inputs; evaluate on data it has not seen"]
        }
        if let seen = adapter.trainedOn(texts) {
            let n = seen.count { $0 }
            if n > 0 {
                return ["\(n == texts.count ? "all" : "\(n) of") \(texts.count) evaluated texts (\(percent(Double(n) / Double(texts.count)))) are training texts of the adapter: figures on them are NOT held-out"]
            }
        }
        return []
    }

    /// Items per route.
    public func count(_ route: Route) -> Int { decisions.filter { $0.route == route }.count }

    /// Share of items per route.
    public func rate(_ route: Route) -> Double { Double(count(route)) / Double(max(decisions.count, 1)) }

    /// Whether item `i`'s predicted label is right.
    func correct(_ i: Int) -> Bool { spec.labelIndex(decisions[i].label) == calibrated.labels[i] }

    /// Error rate among accepted items.
    public var acceptedError: Double {
        let accepted = decisions.indices.filter { decisions[$0].route == .accept }
        return accepted.isEmpty ? 0 : Double(accepted.filter { !correct($0) }.count) / Double(accepted.count)
    }

    /// Per risk class: predicted, accepted, errors.
    public var classOutcomes: [ClassOutcome] {
        spec.riskClasses.map { c in
            let predicted = decisions.indices.filter { decisions[$0].riskClass == c.name }
            let accepted = predicted.filter { decisions[$0].route == .accept }
            return ClassOutcome(riskClass: c, predicted: predicted.count, accepted: accepted.count,
                                errors: accepted.filter { !correct($0) }.count)
        }
    }

    /// In-scope coverage and out-of-scope recall (nil when the task declares no out-of-scope label).
    public var scopeOutcome: ScopeOutcome? {
        guard let oos = spec.outOfScopeIndex else { return nil }
        let accepted = decisions.map { $0.route == .accept }, labels = calibrated.labels
        return ScopeOutcome(
            inScopeItems: labels.count { $0 != oos }, inScopeAccepted: labels.indices.count { labels[$0] != oos && accepted[$0] },
            outOfScopeItems: labels.count { $0 == oos }, outOfScopeAccepted: labels.indices.count { labels[$0] == oos && accepted[$0] })
    }

    /// The trade-off between in-scope coverage and out-of-scope recall as one threshold on the top probability moves
    /// from 0 to 1: at steps of 0.01 and at each percentile of the in-scope items' top probabilities (so the curve is
    /// fine where the probabilities crowd near 1), in increasing order. Out-of-scope predictions are never accepted and
    /// the adapter's scope floor is kept; nil when the task declares no out-of-scope label.
    public var tradeOff: [TradeOffPoint]? {
        guard let oos = spec.outOfScopeIndex else { return nil }
        let floor = adapter.scope?.floor
        let tops = calibrated.labels.indices.map { calibrated.top($0) }
        let inScope = calibrated.labels.count { $0 != oos }, outOfScope = calibrated.labels.count - inScope
        let confidences = calibrated.labels.indices.filter { calibrated.labels[$0] != oos }.map { tops[$0].confidence }.sorted()
        var thresholds = Set((0...100).map { Double($0) / 100 })
        if !confidences.isEmpty {
            for q in 1..<100 { thresholds.insert(confidences[min(confidences.count - 1, q * confidences.count / 100)]) }
        }
        return thresholds.sorted().map { t in
            var inAccepted = 0, outAccepted = 0, errors = 0
            for (i, top) in tops.enumerated() where top.label != oos && top.confidence >= t {
                if let floor, let s = similarities?[i], s < floor { continue }
                if calibrated.labels[i] == oos { outAccepted += 1 } else { inAccepted += 1 }
                if top.label != calibrated.labels[i] { errors += 1 }
            }
            let accepted = inAccepted + outAccepted
            return TradeOffPoint(
                threshold: t, inScopeCoverage: inScope > 0 ? Double(inAccepted) / Double(inScope) : 0,
                outOfScopeRecall: outOfScope > 0 ? 1 - Double(outAccepted) / Double(outOfScope) : 1,
                acceptedError: accepted > 0 ? Double(errors) / Double(accepted) : 0)
        }
    }

    /// The highest out-of-scope recall on the trade-off curve among thresholds that keep at least `coverage` of in-scope
    /// items (nil without an out-of-scope label or when no threshold does).
    public func outOfScopeRecall(atCoverage coverage: Double) -> TradeOffPoint? {
        tradeOff?.filter { $0.inScopeCoverage >= coverage }.max { $0.outOfScopeRecall < $1.outOfScopeRecall }
    }

    /// Figures per group, in order of first appearance (empty without groups).
    public var groupOutcomes: [GroupOutcome] {
        guard let groups else { return [] }
        let oos = spec.outOfScopeIndex
        var order: [String] = [], rows: [String: GroupOutcome] = [:]
        for (i, name) in groups.enumerated() {
            if rows[name] == nil { order.append(name); rows[name] = GroupOutcome(name: name, items: 0, accepted: 0, errors: 0, outOfScopeItems: 0, outOfScopeAccepted: 0) }
            let accepted = decisions[i].route == .accept, isOut = calibrated.labels[i] == oos
            rows[name]!.items += 1
            if accepted { rows[name]!.accepted += 1 }
            if accepted && !correct(i) { rows[name]!.errors += 1 }
            if isOut { rows[name]!.outOfScopeItems += 1 }
            if isOut && accepted { rows[name]!.outOfScopeAccepted += 1 }
        }
        return order.map { rows[$0]! }
    }

    /// Per high-risk class: the model's and the policy's misses.
    public var highRiskOutcomes: [HighRiskOutcome] {
        let highRisk = Set(spec.riskClasses.filter(\.isHighRisk).map(\.name))
        return spec.riskClasses.filter(\.isHighRisk).map { c in
            let items = calibrated.labels.indices.filter { spec.labels[calibrated.labels[$0]].risk == c.name }
            return HighRiskOutcome(
                riskClass: c, items: items.count,
                missedByModel: items.filter { decisions[$0].riskClass != c.name }.count,
                autoAcceptedAsLowRisk: items.filter { decisions[$0].route == .accept && !highRisk.contains(decisions[$0].riskClass) }.count)
        }
    }

    /// Cost per 1,000 requests, split by the tier each part goes to.
    public struct Cost: Sendable, Codable, Equatable {
        /// The small model, the larger tier and people.
        public var small, large, human: Double
        /// All of it.
        public var total: Double { small + large + human }
        /// A cost from its parts.
        public init(small: Double, large: Double, human: Double) { self.small = small; self.large = large; self.human = human }
    }

    /// Whether the larger tier's answer for item `i` would still go to a person under the task's review policy
    /// (``Policy/applyToLargerTier(_:text:)``: always-review labels, rules, and labels whose risk class sends
    /// uncertain answers to review). The larger tier is taken to answer the item's reference label.
    func largerTierAnswerReviewed(_ i: Int, policy: Policy, text: String) -> Bool {
        var outcome = Policy.Outcome(label: calibrated.labels[i], probability: 0, route: .escalate, reason: .belowThreshold, detail: "")
        policy.applyToLargerTier(&outcome, text: text)
        return outcome.route == .review
    }

    /// Cost per 1,000 requests of the cascade: every request runs the small tier; escalations add the larger tier,
    /// and a person when its answer still needs one (``largerTierAnswerReviewed``); reviews add a person.
    public func cascadeCost(policy: Policy, texts: [String]) -> Cost {
        let tiers = spec.tiers, n = Double(max(decisions.count, 1))
        let escalated = decisions.indices.filter { decisions[$0].route == .escalate }
        let reviewedAfterTier = escalated.filter { largerTierAnswerReviewed($0, policy: policy, text: texts[$0]) }.count
        return Cost(small: tiers.small.costPer1k, large: Double(escalated.count) / n * (tiers.large?.costPer1k ?? 0),
                    human: (Double(count(.review)) + Double(reviewedAfterTier)) / n * tiers.human.costPer1k)
    }

    /// Cost per 1,000 requests of sending everything to the larger tier under the same review policy as the cascade:
    /// its answers that the policy sends to a person cost a review too (like with like). Without a larger tier,
    /// everything goes to people.
    public func allLargeCost(policy: Policy, texts: [String]) -> Cost {
        guard let large = spec.tiers.large else { return Cost(small: 0, large: 0, human: spec.tiers.human.costPer1k) }
        let n = Double(max(decisions.count, 1))
        let reviewed = decisions.indices.filter { largerTierAnswerReviewed($0, policy: policy, text: texts[$0]) }.count
        return Cost(small: 0, large: large.costPer1k, human: Double(reviewed) / n * spec.tiers.human.costPer1k)
    }

    /// Times `samples` single decisions (after two warm-up calls).
    public mutating func measureLatency(_ classifier: Classifier, texts: [String], samples: Int) throws {
        let chosen = Array(texts.prefix(samples))
        guard !chosen.isEmpty else { return }
        for text in chosen.prefix(2) { _ = try classifier.decide(text) }
        var totals = [Double](), backbone = [Double]()
        for text in chosen {
            let decision = try classifier.decide(text)
            totals.append(decision.timings.total)
            backbone.append(decision.timings.backbone)
        }
        totals.sort()
        backbone.sort()
        func quantile(_ sorted: [Double], _ q: Double) -> Double { sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] }
        latency = Latency(samples: totals.count, p50: quantile(totals, 0.5), p95: quantile(totals, 0.95),
                          p99: quantile(totals, 0.99), mean: totals.reduce(0, +) / Double(totals.count),
                          backboneP50: quantile(backbone, 0.5))
    }
}
