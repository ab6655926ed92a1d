import Foundation
import Statistics

/// Where a decision goes.
public enum Route: String, Codable, Sendable, CaseIterable, Comparable {
    /// The small model's answer is used.
    case accept
    /// The larger tier answers, with the small model's draft attached.
    case escalate
    /// A person decides.
    case review

    /// Stricter routes compare greater: rules may only move a decision up.
    public static func < (a: Route, b: Route) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Why a decision took its route.
public enum Reason: String, Codable, Sendable, CaseIterable {
    /// Confidence at or above the certified threshold.
    case confident
    /// Confidence below the certified threshold.
    case belowThreshold
    /// No threshold could be certified for the label or its risk class.
    case uncertified
    /// A low-risk prediction carried too much probability on a high-risk class.
    case highRiskMass
    /// Low confidence everywhere: the input is probably outside the task.
    case outOfScope
    /// The label always goes to review.
    case alwaysReview
    /// A rule of the spec matched the input.
    case rule
    /// A zero-shot adapter: nothing is certified yet, everything is reviewed so labels accumulate.
    case zeroShot
}

/// The decision policy of a task: certified thresholds, the asymmetric high-risk bounds, out-of-scope handling and
/// the spec's rules. Pure and deterministic given the calibrated probabilities and the text.
public struct Policy: Sendable {
    /// Outcome of the policy for one input.
    public struct Outcome: Sendable {
        /// An outcome from its parts.
        public init(label: Int, probability: Double, route: Route, reason: Reason, detail: String) {
            self.label = label; self.probability = probability; self.route = route; self.reason = reason; self.detail = detail
        }
        /// Most probable label.
        public var label: Int
        /// Its calibrated probability.
        public var probability: Double
        /// The route.
        public var route: Route
        /// Why.
        public var reason: Reason
        /// The reason in words.
        public var detail: String
    }

    let spec: TaskSpec
    let kind: Adapter.Kind
    let classOfLabel: [Int]
    let thresholds: [CertifiedThreshold]
    let labelEligible: [Bool]
    let massBounds: [(riskClass: Int, bound: Double, labels: [Int])]
    let alwaysReview: Set<Int>
    let scopeFloor: Double?

    /// The policy of a spec with an adapter's certified values.
    public init(spec: TaskSpec, adapter: Adapter) {
        self.init(spec: spec, kind: adapter.kind, thresholds: adapter.thresholds, massBounds: adapter.massBounds,
                  labelCalibrationItems: adapter.labelCalibrationItems, scopeFloor: adapter.scope?.floor)
    }

    /// The policy of a spec with certified values from anywhere (an adapter, or a calibration being studied).
    public init(
        spec: TaskSpec, kind: Adapter.Kind, thresholds: [Adapter.ClassThreshold], massBounds: [Adapter.MassBound],
        labelCalibrationItems: [Int], scopeFloor: Double?
    ) {
        self.spec = spec
        self.kind = kind
        classOfLabel = spec.riskClassIndices
        self.thresholds = spec.riskClasses.map { c in
            thresholds.first { $0.riskClass == c.name }?.certificate
                ?? .none(target: c.targetError, delta: spec.delta, reason: "no certificate in the adapter")
        }
        labelEligible = labelCalibrationItems.map { $0 >= spec.training.minLabelItems }
        self.massBounds = massBounds.compactMap { m in
            guard let c = spec.riskClasses.firstIndex(where: { $0.name == m.riskClass }) else { return nil }
            return (c, m.bound, spec.labels.indices.filter { spec.labels[$0].risk == m.riskClass })
        }
        alwaysReview = Set(spec.alwaysReview.compactMap { spec.labelIndex($0) })
        self.scopeFloor = scopeFloor
    }

    /// Probability mass on each high-risk class, by class name.
    public func highRiskMass(_ p: [Double]) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: massBounds.map { m in
            (spec.riskClasses[m.riskClass].name, m.labels.reduce(0) { $0 + p[$1] })
        })
    }

    /// The route a rejected prediction of `riskClass` takes (review when there is no larger tier).
    func rejectRoute(_ riskClass: Int) -> Route {
        let route = spec.riskClasses[riskClass].onReject
        return route == .escalate && spec.tiers.large == nil ? .review : route
    }

    /// The model's route before rules; `similarity` is the input's highest cosine similarity to a label centroid.
    func modelRoute(_ p: [Double], similarity: Double?) -> Outcome {
        let label = p.indices.max { p[$0] < p[$1] }!
        let confidence = p[label], c = classOfLabel[label], riskClass = spec.riskClasses[c]
        func outcome(_ route: Route, _ reason: Reason, _ detail: String) -> Outcome {
            Outcome(label: label, probability: confidence, route: route, reason: reason, detail: detail)
        }
        if kind == .zeroShot {
            return outcome(.review, .zeroShot, "zero-shot adapter: no labelled data has certified any threshold yet")
        }
        if label == spec.outOfScopeIndex {
            return outcome(rejectRoute(c), .outOfScope, String(
                format: "predicted %@ (probability %.3f): none of the task's labels applies", spec.labels[label].name, confidence))
        }
        if let similarity, let floor = scopeFloor, similarity < floor {
            return outcome(spec.tiers.large == nil ? .review : .escalate, .outOfScope,
                           String(format: "similarity %.3f to the nearest label's training examples is below the scope floor %.3f", similarity, floor))
        }
        if confidence < spec.outOfScopeBelow {
            return outcome(spec.tiers.large == nil ? .review : .escalate, .outOfScope,
                           String(format: "top probability %.3f is below the out-of-scope floor %.3f", confidence, spec.outOfScopeBelow))
        }
        guard let threshold = thresholds[c].threshold else {
            return outcome(rejectRoute(c), .uncertified, "risk class \(riskClass.name) has no certified threshold: \(thresholds[c].reason ?? "none")")
        }
        guard labelEligible[label] else {
            return outcome(rejectRoute(c), .uncertified, "label \(spec.labels[label].name) had fewer than \(spec.training.minLabelItems) calibration items")
        }
        if confidence < threshold {
            return outcome(rejectRoute(c), .belowThreshold,
                           String(format: "probability %.3f is below %@'s certified threshold %.3f", confidence, riskClass.name, threshold))
        }
        if !riskClass.isHighRisk {
            for m in massBounds {
                let mass = m.labels.reduce(0) { $0 + p[$1] }
                if mass >= m.bound {
                    return outcome(.review, .highRiskMass, String(
                        format: "probability %.3f on high-risk class %@ is at or above its bound %.3f", mass,
                        spec.riskClasses[m.riskClass].name, m.bound))
                }
            }
        }
        return outcome(.accept, .confident, String(format: "probability %.3f ≥ %@'s certified threshold %.3f", confidence, riskClass.name, threshold))
    }

    /// The decision for calibrated probabilities `p` of input `text` (with its similarity to the nearest label
    /// centroid, when known): the model's route, then the spec's always-review labels and rules, which can only make
    /// it stricter.
    public func decide(_ p: [Double], text: String, similarity: Double? = nil) -> Outcome {
        var outcome = modelRoute(p, similarity: similarity)
        applyRules(&outcome, text: text)
        return outcome
    }

    /// Raises `outcome` by the always-review labels and the spec's rules for its label (also used when another tier
    /// answered: its label meets the same rules, so no answer, and no text in a prompt, can loosen them).
    public func applyRules(_ outcome: inout Outcome, text: String) {
        if alwaysReview.contains(outcome.label), outcome.route < .review {
            outcome.route = .review
            outcome.reason = .alwaysReview
            outcome.detail = "label \(spec.labels[outcome.label].name) always goes to review"
        }
        // Rules read the text as a person sees it (RuleText.normalized: no invisible characters, look-alikes folded
        // to Latin); the visible and the given text are tried too, so normalising only ever adds matches.
        var forms: [(text: String, range: NSRange)] = []  // computed for the first rule that applies
        for rule in spec.rules where rule.route > outcome.route {
            if !rule.labels.isEmpty && !rule.labels.contains(spec.labels[outcome.label].name) { continue }
            if forms.isEmpty { forms = RuleText.forms(text).map { ($0, NSRange($0.startIndex..., in: $0)) } }
            if forms.contains(where: { rule.expression.firstMatch(in: $0.text, range: $0.range) != nil }) {
                outcome.route = rule.route
                outcome.reason = .rule
                outcome.detail = "rule '\(rule.name)' matched"
            }
        }
    }
}
