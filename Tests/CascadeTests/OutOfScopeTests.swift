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
        #expect(spec.outOfScope?.floorQuantiles == [0, 0.01, 0.05])
        #expect(spec.outOfScope?.kindColumn == nil && spec.outOfScope?.kindFolds == 5)
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
            (baseSpec.replacingOccurrences(of: "out_of_scope_below: 0.4", with: "out_of_scope_quantile: 0.02") + "\nout_of_scope: {label: x}", "floor_quantiles"),
        ] {
            #expect { try loadSpec(yaml) } throws: { "\($0)".contains(words) }
        }
    }
}

@Suite struct OutOfScopeDataTests {
    @Test func theKindColumnIsReadWhenPresentAndOnlyTrainingNeedsIt() throws {
        let spec = try loadSpec(scopeSpec + "\n  kind_column: source")
        #expect(spec.outOfScope?.kindColumn == "source")
        let file = URL(fileURLWithPath: spec.file).deletingLastPathComponent().path + "/data.csv"
        try "text,label,source\nmy invoice,billing,x\nweather?,none_of_these,snips\nhi,none_of_these,sms\n".write(toFile: file, atomically: true, encoding: .utf8)
        let data = try LabelledData.load(file, spec: spec)
        #expect(data.kinds == ["", "snips", "sms"], "in-scope rows have no kind")
        // A file to evaluate on need not have the column, nor name every kind: training checks (Trainer.train).
        try "text,label,source\nmy invoice,billing,x\nweather?,none_of_these, \n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try LabelledData.load(file, spec: spec).kinds == ["", ""])
        try "text,label\nmy invoice,billing\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try LabelledData.load(file, spec: spec).kinds == nil)
        #expect { try LabelledData.load(file, spec: spec, groupColumn: "kind") } throws: { "\($0)".contains("no column 'kind'") }
        // A group column for evaluation is read alike.
        try "text,label,kind,source\nmy invoice,billing,in,x\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try LabelledData.load(file, spec: spec, groupColumn: "kind").groups == ["in"])
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
        #expect(certificate.candidates.count == 3)
        #expect(abs(certificate.deltaPerCandidate - spec.delta / 3) < 1e-12)
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
        // A wrong first audit or two is not an alert (1 of 1 has a 5% lower bound), until min_audits allows it.
        let first = AuditStatus(riskClass: standard, wrong: [true, true], outOfScope: 0, delta: 0.05)
        #expect(first.lowerBound > 0.02 && first.state == .unconfirmed)
        #expect(AuditStatus(riskClass: standard, wrong: [true, true], outOfScope: 0, delta: 0.05, minAudits: 2).state == .breached)
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
        let statuses = AuditStatus.of(audits, spec: spec, window: 40, minAudits: 10)
        #expect(statuses.map(\.riskClass) == ["standard", "high"], "the out-of-scope class accepts nothing, so it is never audited")
        let standard = statuses[0]
        #expect(standard.audited == 40, "the newest 40 of 58")
        #expect(standard.wrong == 8 && standard.outOfScope == 5)
        #expect(statuses[1].audited == 20 && statuses[1].wrong == 0)
        #expect(standard.state == .breached, "8 wrong of 40 against a 5% target")
    }
}

/// Out-of-scope traffic end to end with the real MiniLM backbone (release mode): the support task with SMS messages
/// as declared out-of-scope examples, SNIPS requests as a kind it never saw.
@Suite(.serialized) struct OutOfScopeModelTests {
    @Test func theCertificateTheEvaluationAndTheAuditsCountOutOfScopeTraffic() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-oos-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let yaml = try String(contentsOfFile: ProjectPaths.root + "/examples/support/task.yaml", encoding: .utf8)
            + "\nout_of_scope: {label: out_of_scope, expected_share: 0.1}\n"
        try yaml.write(toFile: folder + "/task.yaml", atomically: true, encoding: .utf8)
        let spec = try TaskSpec.load(folder + "/task.yaml")
        let oos = try #require(spec.outOfScopeIndex)
        var data = try LabelledData.load(ProjectPaths.root + "/examples/support/messages.csv", spec: spec)
        var seen = Set(data.texts)
        let sms = try CSVTable(path: SharedData.directory + "/sms_spam/all.csv").column("text").filter { seen.insert($0).inserted }.prefix(500)
        data.texts += sms
        data.labels += [Int](repeating: oos, count: sms.count)

        var trial = Trial(spec: spec)
        trial.resplits = 2
        trial.sizes = []
        trial.latencySamples = 0
        trial.verbose = false
        let outcome = try trial.run(data: data, writeAdapter: false)
        let adapter = outcome.classifier.adapter, e = outcome.evaluation

        // The certificate: the floor grid, each candidate at δ / 3, calibration at the expected 10% out of scope.
        let certificate = try #require(adapter.outOfScope)
        #expect(certificate.candidates.count == 3 && abs(certificate.deltaPerCandidate - 0.05 / 3) < 1e-12)
        let share = Double(certificate.outOfScopeItems) / Double(certificate.inScopeItems + certificate.outOfScopeItems)
        #expect(abs(share - 0.1) < 0.01, "calibration share \(share)")
        #expect(adapter.scope?.floor == certificate.candidates[certificate.chosen].floor)
        #expect(adapter.scope.map { $0.centroids.count / outcome.classifier.extractor.backbone.model.dimension } == spec.labels.count - 1,
                "centroids of the in-scope labels only")
        for t in adapter.thresholds where t.certificate.threshold != nil { #expect(t.certificate.upperBound <= t.certificate.target) }

        // The evaluation: every accepted item is in scope or counted as an error; none is accepted as out of scope.
        let s = try #require(e.scopeOutcome)
        #expect(s.inScopeAccepted + s.outOfScopeAccepted == e.count(.accept))
        #expect(s.outOfScopeItems > 50 && s.outOfScopeRecall >= 0.9, "SMS messages are far from support traffic")
        #expect(s.inScopeCoverage > 0.5)
        #expect(!e.decisions.contains { $0.label == "out_of_scope" && $0.route == .accept })
        let curve = try #require(e.tradeOff)
        #expect(curve.count >= 101 && curve.first?.threshold == 0 && curve.last?.threshold == 1)
        for (a, b) in zip(curve, curve.dropFirst()) {
            #expect(b.threshold > a.threshold && b.inScopeCoverage <= a.inScopeCoverage && b.outOfScopeRecall >= a.outOfScopeRecall)
        }
        // The recall at a coverage is the best the curve offers while keeping it.
        let at = try #require(e.outOfScopeRecall(atCoverage: 0.8))
        #expect(at.inScopeCoverage >= 0.8 && !curve.contains { $0.inScopeCoverage >= 0.8 && $0.outOfScopeRecall > at.outOfScopeRecall })
        let html = Report.html(e)
        #expect(html.contains("Out of scope") && html.contains("Scope trade-off") && html.contains("How the scope floor was chosen"))

        // A kind it never saw: SNIPS voice-assistant requests are rarely accepted.
        let snips = try CSVTable(path: SharedData.directory + "/snips/train.csv").column("text")
        let unseen = try outcome.classifier.decide(batch: stride(from: 0, to: snips.count, by: snips.count / 200).prefix(200).map { snips[$0] })
        #expect(unseen.count { $0.route == .accept } <= 20, "\(unseen.count { $0.route == .accept }) of 200 accepted")

        // Audits watching traffic whose out-of-scope share does not change: the error stays well under the 5% target
        // (about half of it), and no run alerts.
        let calm = AuditDriftSimulation(e, before: 0.05, after: 0.05, share: 0.2, window: 200, decisionsBefore: 3000, decisionsAfter: 3000, runs: 20, seed: 1)
        #expect(calm.errorAfter < 0.03 && calm.auditsToAlert.allSatisfy { $0 == nil } && calm.falseAlarms == 0,
                "\(calm.errorAfter) \(calm.auditsToAlert) \(calm.falseAlarms)")
        // A scope check gone blind (every out-of-scope item accepted): the error after the change is far above target
        // and the audits say so within a few hundred audits in every run.
        var blind = e
        for i in blind.decisions.indices where blind.calibrated.labels[i] == oos {
            blind.decisions[i].route = .accept
            blind.decisions[i].label = "billing"
            blind.decisions[i].riskClass = "standard"
        }
        let alarmed = AuditDriftSimulation(blind, before: 0.0, after: 0.3, share: 0.2, window: 200, decisionsBefore: 3000, decisionsAfter: 3000, runs: 20, seed: 1)
        #expect(alarmed.errorAfter > 0.2 && alarmed.errorBefore < 0.05)
        #expect(alarmed.auditsToAlert.allSatisfy { $0 != nil } && alarmed.falseAlarms == 0)
        #expect((alarmed.quantile(1) ?? .max) < 200)

        // With a kind column, each out-of-scope calibration item is scored by a head that never saw its kind.
        var kindSpec = spec
        kindSpec.outOfScope?.kindColumn = "source"
        var kinded = data
        kinded.kinds = data.labels.indices.map { data.labels[$0] == oos ? ($0 % 2 == 0 ? "sms_even" : "sms_odd") : "" }
        var kindTrial = trial
        kindTrial.spec = kindSpec
        kindTrial.resplits = 0
        let unseenKinds = try #require(try kindTrial.run(data: kinded, writeAdapter: false).classifier.adapter.outOfScope)
        #expect(unseenKinds.kindsHeldOut == 2 && unseenKinds.kindFolds == 2)
        #expect(certificate.kindsHeldOut == nil)
        // Training needs the kinds the spec names.
        var missing = kinded
        missing.kinds = nil
        #expect { try kindTrial.run(data: missing, writeAdapter: false) } throws: { "\($0)".contains("no column 'source'") }
        missing.kinds = kinded.kinds!.map { _ in "" }
        #expect { try kindTrial.run(data: missing, writeAdapter: false) } throws: { "\($0)".contains("have no kind") }
    }
}
