import Foundation
import Testing
import Datasets
@testable import Cascade
@testable import Statistics

/// Writes a spec into a fresh folder and loads it; `bert:.` names the folder itself, so no model is needed.
func loadSpec(_ yaml: String) throws -> TaskSpec {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-spec-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let file = folder + "/task.yaml"
    try yaml.write(toFile: file, atomically: true, encoding: .utf8)
    return try TaskSpec.load(file)
}

let baseSpec = """
    name: tickets
    backbone: "bert:."
    risk_classes:
      standard: {target_error: 0.05}
      high: {target_error: 0.02, on_reject: review, miss_target: 0.1, max_mass: 0.3}
    labels:
      billing: standard
      outage: standard
      legal: {risk: high, description: Legal threats and chargebacks.}
    out_of_scope_below: 0.4
    always_review: []
    rules:
      - {name: lawyer, pattern: "(?i)\\\\blawyer\\\\b", route: review}
    tiers:
      small: {cost_per_1k: 0.01}
      large: {cost_per_1k: 2, endpoint: "http://localhost:9/v1"}
      human: {cost_per_1k: 300, queue: review}
    """

/// An adapter with hand-set certificates, for policy tests.
func adapter(
    for spec: TaskSpec, thresholds: [Double?], massBound: Double?, labelItems: [Int]? = nil, kind: Adapter.Kind = .trained,
    scope: Adapter.Scope? = nil
) -> Adapter {
    let k = spec.labels.count
    return Adapter(
        task: spec.name, kind: kind, created: "", labels: spec.labels.map(\.name), backbone: "b", backboneSHA256: "b",
        templateSHA256: "t", dataSHA256: "d", policySHA256: Adapter.policyDigest(spec),
        head: SoftmaxRegression(classes: k, dimension: 1, weights: .init(repeating: 0, count: k), bias: .init(repeating: 0, count: k)),
        temperature: 1, l2: 0, lexical: nil, crossValidation: [],
        calibration: .init(items: 0, fitItems: 0, accuracy: 0, nllBefore: 0, nllAfter: 0, eceBefore: 0, eceAfter: 0),
        thresholds: zip(spec.riskClasses, thresholds).map { c, t in
            var certificate = CertifiedThreshold.none(target: c.targetError, delta: spec.delta, reason: "test: none")
            certificate.threshold = t
            return .init(riskClass: c.name, certificate: certificate)
        },
        massBounds: massBound.map { [.init(riskClass: "high", bound: $0, missTarget: 0.1, items: 100, misses: 0, upperBound: 0.03, reason: nil)] } ?? [],
        labelCalibrationItems: labelItems ?? .init(repeating: 50, count: k), scope: scope)
}

@Suite struct TaskSpecTests {
    @Test func loadsTheExampleTasks() throws {
        let support = try TaskSpec.load(ProjectPaths.root + "/examples/support/task.yaml")
        #expect(support.labels.count == 10)
        #expect(support.riskClasses.filter(\.isHighRisk).map(\.name) == ["high"])
        #expect(support.labels.first { $0.name == "legal_dispute" }?.risk == "high")
        let banking = try TaskSpec.load(ProjectPaths.root + "/examples/banking77/task.yaml")
        #expect(banking.labels.count == 77 && banking.riskClasses.map(\.targetError) == [0.02])
        #expect(banking.backbone.layers == [4, 6] && banking.training.lexical != nil)
    }

    @Test func invalidSpecsNameThePlaceAndTheReason() throws {
        func failure(_ yaml: String) -> String {
            do { _ = try loadSpec(yaml); return "loaded" } catch { return "\(error)" }
        }
        let misspelt = failure(baseSpec.replacingOccurrences(of: "out_of_scope_below", with: "out_of_scope_belo"))
        #expect(misspelt.contains("task.yaml:10: out_of_scope_belo: unknown key"))
        #expect(failure(baseSpec.replacingOccurrences(of: "outage: standard", with: "outage: hgh"))
            .contains("labels.outage: unknown risk class 'hgh'"))
        #expect(failure(baseSpec.replacingOccurrences(of: "bert:.", with: "bert:missing-model"))
            .contains("backbone: the model") == true)
        #expect(failure(baseSpec.replacingOccurrences(of: "(?i)", with: "(?i")).contains("rules[0].pattern: not a valid regular expression"))
        #expect(failure(baseSpec.replacingOccurrences(of: "target_error: 0.05", with: "target_error: 5")).contains("risk_classes.standard.target_error: 5.0 is outside"))
        #expect(failure(baseSpec.replacingOccurrences(of: "always_review: []", with: "always_review: [refunds]")).contains("'refunds' is not a label"))
        #expect(failure(baseSpec + "\ntemplate: \"no slot\"\n").contains("template must contain {text}"))
        #expect(failure("name: [unclosed").contains("not valid YAML"))
    }
}

@Suite struct PolicyTests {
    @Test func routesFollowCertificatesBoundsAndRules() throws {
        let spec = try loadSpec(baseSpec)
        let policy = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [0.8, 0.95], massBound: 0.05))
        func decide(_ p: [Double], _ text: String = "my bill") -> Policy.Outcome { policy.decide(p, text: text) }

        #expect(decide([0.9, 0.08, 0.02]).route == .accept)
        #expect(decide([0.75, 0.2, 0.05]).reason == .belowThreshold)
        #expect(decide([0.75, 0.2, 0.05]).route == .escalate)  // standard rejects go to the large tier
        // Confident, but too much mass on the high-risk class: a person looks.
        let masked = decide([0.88, 0.0, 0.12])
        #expect(masked.route == .review && masked.reason == .highRiskMass)
        // High-risk predictions need their own, stricter threshold; rejected ones go to review.
        #expect(decide([0.02, 0.01, 0.97]).route == .accept)
        #expect(decide([0.05, 0.05, 0.9]).route == .review)
        // Low confidence everywhere is out of scope.
        #expect(decide([0.35, 0.33, 0.32]).reason == .outOfScope)
        // Rules apply after the model and only make routes stricter.
        let ruled = decide([0.9, 0.08, 0.02], "I will call my LAWYER")
        #expect(ruled.route == .review && ruled.reason == .rule)
        #expect(decide([0.35, 0.33, 0.32], "lawyer").route == .review)
        // Far from every label's training examples: out of scope, however confident the head is.
        let scoped = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [0.8, 0.95], massBound: 0.05,
                                                         scope: .init(centroids: [], floor: 0.5, quantile: 0.01)))
        #expect(scoped.decide([0.99, 0.01, 0], text: "x", similarity: 0.3).reason == .outOfScope)
        #expect(scoped.decide([0.99, 0.01, 0], text: "x", similarity: 0.7).route == .accept)
    }

    @Test func uncertifiedClassesAndThinLabelsAreNeverAccepted() throws {
        let spec = try loadSpec(baseSpec)
        let none = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [nil, 0.95], massBound: 0.05))
        let outcome = none.decide([0.99, 0.01, 0], text: "x")
        #expect(outcome.route == .escalate && outcome.reason == .uncertified)
        let thin = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [0.8, 0.95], massBound: 0.05, labelItems: [50, 3, 50]))
        #expect(thin.decide([0.01, 0.99, 0], text: "x").reason == .uncertified)
        #expect(thin.decide([0.99, 0.01, 0], text: "x").route == .accept)
        // With no mass bound certified (bound 0), nothing low-risk is accepted.
        let blocked = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [0.8, 0.95], massBound: 0))
        #expect(blocked.decide([0.99, 0.01, 0], text: "x").reason == .highRiskMass)
        let zeroShot = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [nil, nil], massBound: nil, kind: .zeroShot))
        #expect(zeroShot.decide([0.99, 0.01, 0], text: "x").route == .review)
    }

    @Test func alwaysReviewAndNoLargeTier() throws {
        let spec = try loadSpec(baseSpec
            .replacingOccurrences(of: "always_review: []", with: "always_review: [outage]")
            .replacingOccurrences(of: "  large: {cost_per_1k: 2, endpoint: \"http://localhost:9/v1\"}\n", with: ""))
        let policy = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [0.8, 0.95], massBound: 0.05))
        #expect(policy.decide([0.01, 0.99, 0], text: "x").reason == .alwaysReview)
        #expect(policy.decide([0.7, 0.3, 0], text: "x").route == .review)  // no larger tier: escalations go to people
    }

    @Test func certifierRespectsTheMissTarget() throws {
        // Synthetic calibration: high-risk items (label 2) sometimes predicted as billing with some mass on "legal".
        let spec = try loadSpec(baseSpec)
        var g = SeededGenerator(seed: 9)
        var probabilities = [Double](), labels = [Int]()
        for i in 0..<3_000 {
            let label = i % 10 == 0 ? 2 : i % 2
            let confident = Double(g.float(0.6, 1))
            let wrong = g.float(0, 1) < 0.04
            let predicted = wrong ? (label == 2 ? 0 : 1 - label) : label
            var row = [Double](repeating: 0, count: 3)
            row[predicted] = confident
            let rest = 1 - confident
            let other = (0..<3).filter { $0 != predicted }
            row[other[0]] = rest * 0.5
            row[other[1]] = rest * 0.5
            probabilities += row
            labels.append(label)
        }
        let items = ScoredItems(probabilities: probabilities, labels: labels, classes: 3)
        let (thresholds, bounds) = Certifier.certify(items, spec: spec, labelItems: [1_350, 1_350, 300])
        #expect(bounds.count == 1 && bounds[0].items == 300)
        let bound = try #require(bounds.first)
        #expect(bound.bound > 0 && bound.upperBound <= 0.1)
        // The count of misses the bound admits is what the certificate claims.
        let missed = (0..<items.count).filter { items.labels[$0] == 2 && items.top($0).label != 2 && items.probabilities[$0 * 3 + 2] < bound.bound }.count
        #expect(missed == bound.misses)
        for t in thresholds { #expect(t.certificate.threshold == nil || t.certificate.upperBound <= t.certificate.target) }
        // Too few high-risk calibration items: no positive bound, and the reason says how many are needed.
        let few = Certifier.certify(
            ScoredItems(probabilities: Array(probabilities.prefix(200 * 3)), labels: Array(labels.prefix(200)), classes: 3),
            spec: spec, labelItems: [90, 90, 20])
        #expect(few.massBounds[0].bound == 0 && few.massBounds[0].reason?.contains("at least") == true)
    }

    @Test func lexicalFeaturesAreNormalisedTfIdf() {
        let lexical = LexicalFeatures(fitting: ["Top up failed", "top up pending", "card arrived", "card lost"], minDocuments: 2)
        #expect(lexical.terms == ["card", "top", "top up", "up"])
        let rows = lexical.rows(["top up top", "nothing known"])
        let first = (rows.offsets[0]..<rows.offsets[1]).map { rows.values[$0] }
        #expect(abs(first.reduce(0) { $0 + $1 * $1 } - 1) < 1e-6)
        #expect(rows.offsets[2] == rows.offsets[1])  // no known terms: an empty row
    }
}
