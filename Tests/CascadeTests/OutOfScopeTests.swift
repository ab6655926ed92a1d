import Foundation
import Testing
import Datasets
@testable import Cascade
@testable import Statistics

/// A tickets spec with out-of-scope inputs declared as data (no high-risk class: its mass bound would need legal items).
let scopeSpec = """
    name: tickets
    backbone: "bert:."
    risk_classes:
      standard: {target_error: 0.05}
      high: {target_error: 0.02, on_reject: review}
    labels:
      billing: standard
      outage: standard
      legal: high
    always_review: []
    tiers:
      small: {cost_per_1k: 0.01}
      large: {cost_per_1k: 2, endpoint: "http://localhost:9/v1"}
      human: {cost_per_1k: 300, queue: review}
    out_of_scope:
      label: none_of_these
      expected_share: 0.2
    """

@Suite struct OutOfScopeSpecTests {
    @Test func theOutOfScopeLabelIsTheLastLabelInARiskClassOfItsOwn() throws {
        let spec = try loadSpec(scopeSpec)
        #expect(spec.labels.map(\.name) == ["billing", "outage", "legal", "none_of_these"])
        #expect(spec.outOfScopeIndex == 3)
        #expect(spec.labels[3].risk == "none_of_these")
        #expect(spec.riskClasses.last?.name == "none_of_these")
        #expect(spec.riskClasses.last?.onReject == .escalate)
        #expect(spec.outOfScope?.expectedShare == 0.2)
        #expect(spec.outOfScope?.floorQuantiles == [0, 0.01, 0.02, 0.05, 0.1])
        // Declaring it changes what the thresholds were certified for.
        let undeclared = try loadSpec(scopeSpec.components(separatedBy: "out_of_scope:")[0])
        #expect(Adapter.policyDigest(spec) != Adapter.policyDigest(undeclared))
        #expect(undeclared.outOfScope == nil && undeclared.labels.count == 3)
        // Rules and always-review may name it.
        _ = try loadSpec(scopeSpec.replacingOccurrences(of: "always_review: []", with: "always_review: [none_of_these]"))
    }

    @Test func mistakesInTheDeclarationAreRefusedByName() throws {
        for (yaml, words) in [
            (baseSpec + "\nout_of_scope: {label: billing}", "also under labels"),
            (baseSpec + "\nout_of_scope: {label: standard}", "also a risk class"),
            (baseSpec + "\nout_of_scope: {route: accept}", "cannot be accepted"),
            (baseSpec + "\nout_of_scope: {expected_share: 0.95}", "expected_share"),
            (baseSpec + "\nout_of_scope: {share: 0.1}", "share"),
            (baseSpec + "\nout_of_scope: {floor_quantiles: []}", "1 to 10"),
        ] {
            #expect { try loadSpec(yaml) } throws: { "\($0)".contains(words) }
        }
    }
}

@Suite struct OutOfScopeCertificationTests {
    /// Items of the 4-label scope spec: `inScope` correct billing predictions at confidence 0.99, and `outside`
    /// out-of-scope items predicted as billing at confidence `outsideConfidence`.
    func items(inScope: Int, outside: Int, outsideConfidence: Double) -> ScoredItems {
        var p = [Double](), labels = [Int]()
        for _ in 0..<inScope { p += [0.99, 0.005, 0.0025, 0.0025]; labels.append(0) }
        for _ in 0..<outside { p += [outsideConfidence, 0.5 * (1 - outsideConfidence), 0, 0.5 * (1 - outsideConfidence)]; labels.append(3) }
        return ScoredItems(probabilities: p, labels: labels, classes: 4)
    }

    @Test func anAcceptedOutOfScopeInputIsAnError() throws {
        let spec = try loadSpec(scopeSpec)
        let labelItems = [400, 400, 400, 400]
        // Clean in-scope items certify billing; confident out-of-scope ones (6% of the accepted) must not.
        let clean = Certifier.certify(items(inScope: 400, outside: 0, outsideConfidence: 0), spec: spec, labelItems: labelItems)
        #expect(clean.thresholds[0].certificate.threshold != nil)
        let polluted = Certifier.certify(items(inScope: 400, outside: 25, outsideConfidence: 0.995), spec: spec, labelItems: labelItems)
        #expect(polluted.thresholds[0].certificate.threshold == nil)
        #expect(polluted.thresholds[0].certificate.errors == 25, "the 25 out-of-scope items are the most confident and all wrong")
        // Less confident than the in-scope items: a threshold between them certifies, and accepts none of them.
        let separable = Certifier.certify(items(inScope: 400, outside: 25, outsideConfidence: 0.9), spec: spec, labelItems: labelItems)
        let t = try #require(separable.thresholds[0].certificate.threshold)
        #expect(t > 0.9 && separable.thresholds[0].certificate.errors == 0)
        // The out-of-scope class itself is never accepted.
        #expect(separable.thresholds[2].certificate.threshold == nil)
        #expect(separable.thresholds[2].certificate.reason?.contains("never accepted") == true)
    }

    @Test func itemsFailingTheScopeCheckAreNeverInTheAcceptedSet() throws {
        let spec = try loadSpec(scopeSpec)
        let scored = items(inScope: 400, outside: 25, outsideConfidence: 0.995)
        // The scope check turns away exactly the out-of-scope items: what is left certifies.
        let acceptable = scored.labels.map { $0 != 3 }
        let result = Certifier.certify(scored, spec: spec, labelItems: [400, 400, 400, 400], acceptable: acceptable)
        #expect(result.thresholds[0].certificate.threshold != nil)
        #expect(result.thresholds[0].certificate.items == 400)
    }

    @Test func theJointSearchSplitsDeltaAndKeepsTheFloorThatAcceptsMostInScopeItems() throws {
        let spec = try loadSpec(scopeSpec)
        let scored = items(inScope: 400, outside: 25, outsideConfidence: 0.995)
        // Fitted in-scope similarities 0.50…0.99: the quantiles fix the floors before calibration is read.
        let fit = (0..<100).map { 0.5 + Double($0) * 0.005 }
        // In-scope calibration items are similar (0.9), out-of-scope ones not (0.4).
        let similarities = scored.labels.map { $0 == 3 ? 0.4 : 0.9 }
        let (certificate, thresholds, _) = Certifier.jointScope(
            scored, spec: spec, labelItems: [400, 400, 400, 400], outOfScope: spec.outOfScope!, outOfScopeIndex: 3,
            fitSimilarities: fit, similarities: similarities)
        #expect(certificate.candidates.count == 5)
        #expect(abs(certificate.deltaPerCandidate - spec.delta / 5) < 1e-12)
        #expect(certificate.candidates[0].floor == -1, "quantile 0 is no floor")
        #expect(certificate.candidates[0].outOfScopeAccepted == 0 && certificate.candidates[0].inScopeAccepted == 0,
                "without a floor the confident out-of-scope items block every threshold")
        let chosen = certificate.candidates[certificate.chosen]
        #expect(chosen.floor > 0.4 && chosen.floor <= 0.9)
        #expect(chosen.inScopeAccepted == 400 && chosen.outOfScopeAccepted == 0)
        #expect(chosen.inScopeCoverage == 1 && chosen.outOfScopeRecall == 1)
        #expect(certificate.chosen == 1, "ties go to the lowest floor")
        #expect(thresholds[0].certificate.threshold != nil)
        #expect(certificate.inScopeItems == 400 && certificate.outOfScopeItems == 25)
    }

    @Test func calibrationIsSubsampledToTheExpectedShare() {
        let indices = Array(0..<1000), isOut = { (i: Int) in i < 300 }
        // 30% out of scope in the data, 10% expected: out-of-scope items are cut to 700 × 1/9 ≈ 78.
        let cut = Certifier.matchShare(indices, isOutOfScope: isOut, share: 0.1, seed: 1)
        #expect(cut.count { $0 >= 300 } == 700)
        #expect(cut.count { $0 < 300 } == 78)
        // 50% expected: in-scope items are cut to 300.
        let other = Certifier.matchShare(indices, isOutOfScope: isOut, share: 0.5, seed: 1)
        #expect(other.count { $0 < 300 } == 300 && other.count { $0 >= 300 } == 300)
        #expect(Certifier.matchShare(indices, isOutOfScope: isOut, share: 0.1, seed: 1) == cut, "seeded")
        #expect(Certifier.matchShare(Array(300..<400), isOutOfScope: isOut, share: 0.1, seed: 1) == Array(300..<400), "nothing to match")
    }

    @Test func aPredictionOfTheOutOfScopeLabelIsNeverAccepted() throws {
        let spec = try loadSpec(scopeSpec)
        let policy = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [0.5, 0.5, nil], massBound: nil))
        let outcome = policy.decide([0, 0, 0, 1], text: "what's the weather in Lisbon?")
        #expect(outcome.route == .escalate && outcome.reason == .outOfScope && outcome.label == 3)
        #expect(outcome.detail.contains("none_of_these"))
        // Without a larger tier it goes to review; with route: review it goes there anyway.
        let noLarge = try loadSpec(scopeSpec.replacingOccurrences(of: "  large: {cost_per_1k: 2, endpoint: \"http://localhost:9/v1\"}\n", with: ""))
        #expect(Policy(spec: noLarge, adapter: adapter(for: noLarge, thresholds: [0.5, 0.5, nil], massBound: nil)).decide([0, 0, 0, 1], text: "x").route == .review)
        let toReview = try loadSpec(scopeSpec + "\n  route: review")
        #expect(Policy(spec: toReview, adapter: adapter(for: toReview, thresholds: [0.5, 0.5, nil], massBound: nil)).decide([0, 0, 0, 1], text: "x").route == .review)
        // An in-scope prediction above its threshold is still accepted.
        #expect(policy.decide([0.97, 0.01, 0.01, 0.01], text: "my invoice is wrong").route == .accept)
    }

    @Test func theLargerTiersOutOfScopeAnswerStandsUnderEscalateAndGoesToAPersonUnderReview() throws {
        for (yaml, route) in [(scopeSpec, Route.escalate), (scopeSpec + "\n  route: review", .review)] {
            let spec = try loadSpec(yaml)
            let policy = Policy(spec: spec, adapter: adapter(for: spec, thresholds: [0.5, 0.5, nil], massBound: nil))
            var outcome = Policy.Outcome(label: 3, probability: 0, route: .escalate, reason: .belowThreshold, detail: "")
            policy.applyToLargerTier(&outcome, text: "what's the weather in Lisbon?")
            #expect(outcome.route == route)
        }
    }
}

@Suite struct AuditStatusTests {
    let standard = RiskClass(name: "standard", targetError: 0.02, onReject: .escalate, missTarget: nil, maxMass: 1)

    @Test func theVerdictFollowsTheExactBounds() {
        // 149 audits without an error confirm 2% at 95% (0.98^149 < 0.05); 100 do not.
        let confirmed = AuditStatus(riskClass: standard, wrong: .init(repeating: false, count: 149), outOfScope: 0, delta: 0.05)
        #expect(confirmed.state == .within && confirmed.upperBound <= 0.02 && confirmed.lowerBound == 0)
        let early = AuditStatus(riskClass: standard, wrong: .init(repeating: false, count: 100), outOfScope: 0, delta: 0.05)
        #expect(early.state == .unconfirmed && early.alert == nil)
        // 10 wrong of 100: the lower bound (about 5.5%) is above 2%.
        let breached = AuditStatus(riskClass: standard, wrong: (0..<100).map { $0 < 10 }, outOfScope: 4, delta: 0.05)
        #expect(breached.state == .breached)
        #expect(breached.lowerBound > 0.05 && breached.lowerBound < 0.06)
        #expect(breached.alert?.contains("4 out of scope") == true)
        let none = AuditStatus(riskClass: standard, wrong: [], outOfScope: 0, delta: 0.05)
        #expect(none.realisedError == nil && none.upperBound == 1 && none.state == .unconfirmed)
    }

    @Test func theLowerBoundIsWhereTheUpperTailIsDelta() {
        for (k, n) in [(1, 10), (10, 100), (37, 400), (5, 5)] {
            let lb = Binomial.lowerBound(events: k, trials: n, delta: 0.05)
            // P(X ≥ k | lb) = 0.05, so just above lb the tail is above 0.05 and just below it under.
            #expect(abs((1 - Binomial.cdf(k - 1, trials: n, probability: lb)) - 0.05) < 1e-6)
            #expect(lb < Double(k) / Double(n) && lb < Binomial.upperBound(events: k, trials: n, delta: 0.05))
        }
    }

    @Test func auditsAreCountedPerRiskClassOverTheNewestWindow() throws {
        let spec = try loadSpec(scopeSpec)
        var audits = [AuditStatus.Audit]()
        audits += (0..<5).map { _ in .init(accepted: "billing", reviewer: "none_of_these") }  // newest: out of scope
        audits += (0..<3).map { _ in .init(accepted: "outage", reviewer: "billing") }
        audits += (0..<20).map { _ in .init(accepted: "legal", reviewer: "legal") }
        audits += (0..<50).map { _ in .init(accepted: "billing", reviewer: "billing") }
        audits.append(.init(accepted: "a_label_since_removed", reviewer: "billing"))
        let statuses = AuditStatus.of(audits, spec: spec, window: 40)
        #expect(statuses.map(\.riskClass) == ["standard", "high"], "the out-of-scope class accepts nothing, so it is never audited")
        let standard = statuses[0]
        #expect(standard.audited == 40, "the newest 40 of 58")
        #expect(standard.wrong == 8 && standard.outOfScope == 5)
        #expect(statuses[1].audited == 20 && statuses[1].wrong == 0)
    }
}
