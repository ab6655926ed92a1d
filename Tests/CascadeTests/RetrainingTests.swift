import Foundation
import Testing
@testable import Cascade

@Suite struct RetrainingTests {
    let spec: TaskSpec

    init() throws { spec = try loadSpec(baseSpec) }

    func item(_ text: String, _ label: String, _ source: LabelSource, _ time: Double) -> LabelledItem {
        LabelledItem(text: text, label: label, source: source, time: Date(timeIntervalSince1970: time))
    }

    @Test func conflictsAreSettledForPeopleThenTheNewest() {
        let set = TrainingSet.assemble([
            item("a", "billing", .teacher, 300), item("a", "outage", .seed, 0),          // a person beats a newer teacher
            item("b", "billing", .seed, 0), item("b", "legal", .reviewed, 100),          // a reviewer's correction beats the seed
            item("c", "outage", .reviewed, 100), item("c", "billing", .reviewed, 200),   // the newest review wins
            item("d", "outage", .teacher, 100), item("d", "billing", .teacher, 50),      // the newest teacher wins
            item("e", "billing", .teacher, 10), item("e", "billing", .reviewed, 20),     // agreement is no conflict
            item("f", "refunds", .teacher, 10),                                           // not a label of the task
            item("e\u{301}", "legal", .teacher, 10), item("é", "outage", .teacher, 10),   // different bytes, different texts
        ], spec: spec)
        let byText = Dictionary(uniqueKeysWithValues: set.items.map { (ExactText($0.text), $0) })
        #expect(byText[ExactText("a")]?.label == "outage" && byText[ExactText("a")]?.source == .seed)
        #expect(byText[ExactText("b")]?.label == "legal")
        #expect(byText[ExactText("c")]?.label == "billing")
        #expect(byText[ExactText("d")]?.label == "outage")
        #expect(byText[ExactText("e")]?.source == .reviewed)
        #expect(byText[ExactText("e\u{301}")]?.label == "legal" && byText[ExactText("é")]?.label == "outage")
        #expect(byText[ExactText("f")] == nil && set.unknownLabels == ["refunds": 1])
        #expect(set.conflicts == 4 && set.humanOverTeacher == 1)
        #expect(set.items.count == 7)
    }

    @Test func onlyUnchosenPeoplesLabelsCalibrate() {
        #expect(LabelSource.allCases.filter(\.calibrates) == [.seed, .reviewed, .audited])
        #expect(LabelSource.allCases.filter(\.isHuman) == [.seed, .reviewed, .checked, .audited])
    }

    @Test func partsAreStableAndTeachersOnlyFit() {
        var counts: [RetrainPart: Int] = [:]
        for i in 0..<4000 {
            let text = "message number \(i) 🇫🇷"
            let part = RetrainPart.of(text, human: true, holdout: 0.2, calibration: 0.5)
            #expect(part == RetrainPart.of(text, human: true, holdout: 0.2, calibration: 0.5))
            // A teacher's label fits the head, except on a holdout text, where it is not used at all.
            #expect(RetrainPart.of(text, human: false, holdout: 0.2, calibration: 0.5) == (part == .holdout ? .unused : .fit))
            counts[part, default: 0] += 1
        }
        // 20% held out, then half of the rest calibrates: 800 / 1600 / 1600 expected (binomial sd ≈ 25–30).
        #expect(abs((counts[.holdout] ?? 0) - 800) < 120)
        #expect(abs((counts[.calibration] ?? 0) - 1600) < 150)
        // A holdout item stays out of training whatever the calibration share.
        let held = (0..<200).map { "held \($0)" }.filter { RetrainPart.of($0, human: true, holdout: 0.2, calibration: 0.5) == .holdout }
        #expect(!held.isEmpty && held.allSatisfy { RetrainPart.of($0, human: true, holdout: 0.2, calibration: 0.9) == .holdout })
    }

    func score(coverage: Double, items: Int = 400, certified: [String] = ["standard"], autoAccepted: Int = 0, errors: Int = 0) -> HoldoutScore {
        let accepted = Int(coverage * Double(items))
        return HoldoutScore(items: items, accuracy: 0.9, ece: 0.02, accepted: accepted, coverage: coverage, acceptedErrors: errors,
                     acceptedError: accepted > 0 ? Double(errors) / Double(accepted) : 0, acceptedErrorBound: 0.01, recall: [:],
                     highRisk: [.init(riskClass: "high", items: 40, missedByModel: 3, autoAcceptedAsLowRisk: autoAccepted)],
                     cost: .init(small: 0.01, large: 1, human: 10), allLarge: .init(small: 0, large: 2, human: 12), certified: certified)
    }

    @Test func theGateStatesEachCheck() {
        // First version: certified is enough.
        #expect(PromotionGate.judge(candidate: score(coverage: 0.5), current: nil).passed)
        #expect(!PromotionGate.judge(candidate: score(coverage: 0, certified: []), current: nil).passed)
        // Better coverage, same misses: passes.
        #expect(PromotionGate.judge(candidate: score(coverage: 0.6), current: score(coverage: 0.5)).passed)
        // Within two standard errors (0.05 on 400 items at 50%): noise, passes; beyond: fails, and says why.
        #expect(PromotionGate.judge(candidate: score(coverage: 0.46), current: score(coverage: 0.5)).passed)
        let lower = PromotionGate.judge(candidate: score(coverage: 0.44), current: score(coverage: 0.5))
        #expect(!lower.passed && lower.checks.filter { !$0.passed }.map(\.name) == ["coverage"])
        // One more high-risk item auto-accepted as low-risk: fails.
        let misses = PromotionGate.judge(candidate: score(coverage: 0.7, autoAccepted: 1), current: score(coverage: 0.5))
        #expect(misses.checks.filter { !$0.passed }.map(\.name) == ["high_risk_fnr:high"])
        // Losing a certified class fails, as does a holdout too small to compare on.
        let lost = PromotionGate.judge(candidate: score(coverage: 0.7), current: score(coverage: 0.5, certified: ["standard", "high"]))
        #expect(lost.checks.filter { !$0.passed }.map(\.name) == ["certified"])
        #expect(!PromotionGate.judge(candidate: score(coverage: 0.7, items: 10), current: score(coverage: 0.5, items: 10)).passed)
        // Error among accepted holdout items clearly above the target (12 of 200 = 6%; lower bound ≈ 3.5% > 2%) fails;
        // 6 of 200 (3%, lower bound ≈ 1.3%) is within noise of a 2% target.
        let over = PromotionGate.judge(candidate: score(coverage: 0.5, errors: 12), current: nil, targetError: 0.02)
        #expect(over.checks.filter { !$0.passed }.map(\.name) == ["accepted_error"])
        #expect(PromotionGate.judge(candidate: score(coverage: 0.5, errors: 6), current: nil, targetError: 0.02).passed)
    }
}
