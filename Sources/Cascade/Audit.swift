import Foundation
import Datasets
import Statistics

/// The guarantee watched on live traffic: how one risk class's accepted decisions fared when people audited a random
/// share of them.
///
/// The certificate bounds the error among accepted decisions on traffic that looks like calibration. Audits check
/// it on the traffic that came: a fixed share of accepted decisions, chosen by a hash of the decision id (so
/// independently of the input and the model), goes to review as well. Over the newest `window` audits of the class,
/// `wrong / audited` is the realised error (an out-of-scope input accepted as a label counts as wrong), bracketed by
/// exact Clopper-Pearson bounds at the task's confidence:
/// - `within`: the upper bound is at or under the target: live traffic confirms the guarantee;
/// - `unconfirmed`: neither bound crosses the target (with few audits the upper bound stays above it: at a 2%
///   target and 95% confidence, 149 audits without an error are the least that confirm it);
/// - `breached`: the lower bound is above the target, over at least `minAudits` audits: the accepted decisions are
///   wrong more often than certified, with confidence 1 − δ. This is the alert. The minimum keeps a wrong first audit
///   or two from raising it (one wrong audit of one has a 5% lower bound, above a 2% target); the bound is recomputed
///   at every audit, so over a long run the chance of a false alert is above δ, and the measured rate is in the README.
public struct AuditStatus: Codable, Sendable, Equatable {
    /// What the audits say of the guarantee.
    public enum State: String, Codable, Sendable, CaseIterable {
        case within, unconfirmed, breached
    }

    /// The risk class.
    public var riskClass: String
    /// Its target error among accepted decisions.
    public var target: Double
    /// Confidence of the bounds (the task's 1 − δ).
    public var confidence: Double
    /// Audited decisions in the window.
    public var audited: Int
    /// Of those, the reviewer gave another label.
    public var wrong: Int
    /// Of the wrong ones, the reviewer said the input is out of scope.
    public var outOfScope: Int
    /// wrong / audited (nil with no audits).
    public var realisedError: Double?
    /// Exact bounds on the error rate (0 and 1 with no audits).
    public var lowerBound, upperBound: Double
    /// The verdict.
    public var state: State

    enum CodingKeys: String, CodingKey {
        case target, confidence, audited, wrong, state
        case riskClass = "risk_class", outOfScope = "out_of_scope", realisedError = "realised_error"
        case lowerBound = "lower_bound", upperBound = "upper_bound"
    }

    /// The status of `riskClass` from its audits' outcomes (`wrong[i]`: the reviewer's label differs from the accepted
    /// one; `outOfScope` of them answered out of scope), at confidence 1 − `delta`; `breached` needs `minAudits`.
    public init(riskClass: RiskClass, wrong: [Bool], outOfScope: Int, delta: Double, minAudits: Int = AuditStatus.defaultMinAudits) {
        self.riskClass = riskClass.name
        target = riskClass.targetError
        confidence = 1 - delta
        audited = wrong.count
        self.wrong = wrong.count { $0 }
        self.outOfScope = outOfScope
        realisedError = audited > 0 ? Double(self.wrong) / Double(audited) : nil
        lowerBound = audited > 0 ? Binomial.lowerBound(events: self.wrong, trials: audited, delta: delta) : 0
        upperBound = audited > 0 ? Binomial.upperBound(events: self.wrong, trials: audited, delta: delta) : 1
        state = AuditStatus.breached(wrong: self.wrong, audited: audited, target: target, delta: delta, minAudits: minAudits)
            ? .breached : upperBound <= target ? .within : .unconfirmed
    }

    /// The alert rule: over at least `minAudits` audits, the exact lower bound on the error is above `target`, that is
    /// P(X ≥ wrong | target) < δ for X ~ Binomial(audited, target).
    public static func breached(wrong: Int, audited: Int, target: Double, delta: Double, minAudits: Int) -> Bool {
        audited >= minAudits && wrong > 0 && 1 - Binomial.cdf(wrong - 1, trials: audited, probability: target) < delta
    }

    /// Audits a window needs before it may alert (`audit.min_audits`).
    public static let defaultMinAudits = 50

    /// One audited decision: the label accepted and the reviewer's.
    public struct Audit: Sendable, Equatable {
        /// The accepted label.
        public var accepted: String
        /// The reviewer's label.
        public var reviewer: String
        /// An audit from its labels.
        public init(accepted: String, reviewer: String) { self.accepted = accepted; self.reviewer = reviewer }
    }

    /// Per risk class of `spec` that can accept (not the out-of-scope one), the status over its newest `window` audits;
    /// `audits` come newest first. Audits of labels the spec no longer has are left out.
    public static func of(_ audits: [Audit], spec: TaskSpec, window: Int, minAudits: Int = AuditStatus.defaultMinAudits) -> [AuditStatus] {
        let outOfScope = spec.outOfScope?.label
        return spec.riskClasses.filter { $0.name != outOfScope }.map { riskClass in
            let mine = audits.filter { a in spec.labels.first { $0.name == a.accepted }?.risk == riskClass.name }.prefix(window)
            return AuditStatus(riskClass: riskClass, wrong: mine.map { $0.accepted != $0.reviewer },
                               outOfScope: mine.count { $0.accepted != $0.reviewer && $0.reviewer == outOfScope }, delta: spec.delta,
                               minAudits: minAudits)
        }
    }

    /// The alert for a breached class, in words (nil otherwise).
    public var alert: String? {
        guard state == .breached, let realisedError else { return nil }
        return String(format: "audited error of %@ is %.2f%% over the last %d audits (%d wrong%@): its lower bound %.2f%% is above the %.2f%% target at %.0f%% confidence",
                      riskClass, realisedError * 100, audited, wrong, outOfScope > 0 ? ", \(outOfScope) out of scope" : "",
                      lowerBound * 100, target * 100, confidence * 100)
    }
}

/// Audits watching a simulated drift: decisions are drawn from an evaluation's items, the share of out-of-scope
/// inputs stepping from `before` to `after` once `decisionsBefore` decisions have passed; `share` of the accepted ones
/// are audited (the reviewer gives the item's true label) and each risk class's ``AuditStatus`` is checked after every
/// audit, over its newest `window` audits, as the service does. Repeated `runs` times with different draws.
public struct AuditDriftSimulation: Sendable {
    /// Out-of-scope share of traffic before and after the change.
    public var before, after: Double
    /// Share of accepted decisions audited.
    public var share: Double
    /// Audits per risk class the status is computed over, and the fewest that may alert.
    public var window: Int
    public var minAudits: Int
    /// Decisions before the change, and the most after it.
    public var decisionsBefore, decisionsAfter: Int
    /// Error among accepted decisions the pools imply before and after the change.
    public var errorBefore, errorAfter: Double
    /// Per run, audits after the change until the first alert (nil: none within `decisionsAfter`).
    public var auditsToAlert: [Int?]
    /// Runs in which an alert fired before the change (false alarms: the error was within target then).
    public var falseAlarms: Int
    /// Audits before the change per run (mean).
    public var auditsBefore: Double

    /// Simulates on `evaluation`'s items (its task must declare an out-of-scope label, and the items hold both kinds).
    public init(_ evaluation: Evaluation, before: Double, after: Double, share: Double, window: Int, minAudits: Int = AuditStatus.defaultMinAudits,
                decisionsBefore: Int, decisionsAfter: Int, runs: Int, seed: UInt64) {
        self.before = before; self.after = after; self.share = share; self.window = window; self.minAudits = minAudits
        self.decisionsBefore = decisionsBefore; self.decisionsAfter = decisionsAfter
        let spec = evaluation.spec, oos = spec.outOfScopeIndex ?? -1, labels = evaluation.calibrated.labels
        let inside = labels.indices.filter { labels[$0] != oos }, outside = labels.indices.filter { labels[$0] == oos }
        let accepted = evaluation.decisions.map { $0.route == .accept }
        let wrong = evaluation.decisions.indices.map { spec.labelIndex(evaluation.decisions[$0].label) != labels[$0] }
        func rates(_ pool: [Int]) -> (accepted: Double, wrong: Double) {
            let n = Double(max(pool.count, 1))
            return (Double(pool.count { accepted[$0] }) / n, Double(pool.count { accepted[$0] && wrong[$0] }) / n)
        }
        let rin = rates(inside), rout = rates(outside)
        func error(_ p: Double) -> Double {
            let a = (1 - p) * rin.accepted + p * rout.accepted
            return a > 0 ? ((1 - p) * rin.wrong + p * rout.wrong) / a : 0
        }
        errorBefore = error(before)
        errorAfter = error(after)
        let classOf = Dictionary(uniqueKeysWithValues: spec.labels.enumerated().map { ($1.name, spec.riskClassIndices[$0]) })
        var toAlert: [Int?] = [], alarms = 0, auditedBefore = 0
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<runs {
            // Per risk class: the newest `window` audit outcomes and how many are wrong.
            var windows = [[Bool]](repeating: [], count: spec.riskClasses.count), wrongIn = [Int](repeating: 0, count: spec.riskClasses.count)
            var heads = [Int](repeating: 0, count: spec.riskClasses.count)
            var alarmed = false, found: Int?, auditsAfter = 0
            for d in 0..<(decisionsBefore + decisionsAfter) {
                let changed = d >= decisionsBefore
                let pool = Double.random(in: 0..<1, using: &generator) < (changed ? after : before) ? outside : inside
                guard !pool.isEmpty else { continue }
                let i = pool[Int.random(in: 0..<pool.count, using: &generator)]
                guard accepted[i], Double.random(in: 0..<1, using: &generator) < share else { continue }
                let c = classOf[evaluation.decisions[i].label]!
                if changed { auditsAfter += 1 } else { auditedBefore += 1 }
                if windows[c].count < window { windows[c].append(wrong[i]) } else {
                    if windows[c][heads[c]] { wrongIn[c] -= 1 }
                    windows[c][heads[c]] = wrong[i]
                    heads[c] = (heads[c] + 1) % window
                }
                if wrong[i] { wrongIn[c] += 1 }
                guard AuditStatus.breached(wrong: wrongIn[c], audited: windows[c].count, target: spec.riskClasses[c].targetError,
                                           delta: spec.delta, minAudits: minAudits) else { continue }
                if !changed { alarmed = true } else { found = auditsAfter; break }
            }
            if alarmed { alarms += 1 }
            toAlert.append(found)
        }
        auditsToAlert = toAlert
        falseAlarms = alarms
        auditsBefore = Double(auditedBefore) / Double(max(runs, 1))
    }

    /// The `q` quantile of audits to alert over the runs that alerted (nil when none did).
    public func quantile(_ q: Double) -> Int? {
        let found = auditsToAlert.compactMap { $0 }.sorted()
        return found.isEmpty ? nil : found[min(found.count - 1, Int(q * Double(found.count)))]
    }
}
