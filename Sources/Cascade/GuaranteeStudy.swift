import Foundation
import Statistics

/// How the certified thresholds behave on fresh data: the head is kept, the items it never saw (calibration plus
/// held-out) are re-split at random many times, and each time the temperature and thresholds are refitted on one
/// part and checked on the other.
public struct GuaranteeStudy: Sendable {
    /// One random calibration split.
    public struct Split: Sendable {
        /// Per risk class: coverage of the test part (accepted / predicted as the class) and the realised error
        /// among accepted, or nil when nothing was accepted.
        public var coverage: [Double]
        /// Realised error among accepted items per risk class (0 when none).
        public var realisedError: [Double]
        /// Accepted per risk class.
        public var accepted: [Int]
        /// Share of all test items accepted.
        public var overallCoverage: Double
    }

    /// Coverage the guarantee allows at one calibration size and target.
    public struct SizePoint: Sendable {
        /// Calibration items.
        public var size: Int
        /// Target error applied to every risk class.
        public var target: Double
        /// Overall coverage of the test part, one per repeat.
        public var coverages: [Double]
        /// Realised error among accepted, one per repeat.
        public var errors: [Double]
    }

    /// The risk classes, in order.
    public var riskClasses: [RiskClass]
    /// The out-of-scope label's risk class, which never accepts (nil: the task declares none).
    public var outOfScopeClass: String?

    /// The classes that can accept, by index into `riskClasses`.
    public var acceptingClasses: [Int] { riskClasses.indices.filter { riskClasses[$0].name != outOfScopeClass } }
    /// Items calibrated on in each split.
    public var calibrationSize: Int
    /// Items tested on in each split.
    public var testSize: Int
    /// The splits.
    public var splits: [Split]
    /// Coverage against calibration size at a stricter target.
    public var sizes: [SizePoint]

    /// Splits in which risk class `c`'s realised error stayed at or under its target.
    public func withinTarget(_ c: Int) -> Int {
        splits.filter { $0.realisedError[c] <= riskClasses[c].targetError }.count
    }

    /// Runs `repeats` splits of the pool (`logits` of items never fitted on) into `calibrationSize` calibration
    /// items and the rest, and for each size in `sizes` (below the pool size) `sizeRepeats` splits at `sizeTarget`.
    public init(
        spec: TaskSpec, logits: [Float], labels: [Int], texts: [String], calibrationSize: Int, repeats: Int,
        sizes: [Int], sizeTarget: Double, sizeRepeats: Int, seed: UInt64
    ) {
        let k = spec.labels.count, n = labels.count
        riskClasses = spec.riskClasses
        outOfScopeClass = spec.outOfScope?.label
        self.calibrationSize = calibrationSize
        testSize = n - calibrationSize
        func run(_ spec: TaskSpec, calibrationFraction: Double, seed: UInt64) -> (Split, accepted: Int, errors: Int) {
            let (test, calibration) = Splits.stratified(labels, fraction: calibrationFraction, seed: seed)
            func rows(_ indices: [Int]) -> [Float] { indices.flatMap { logits[$0 * k..<($0 + 1) * k] } }
            let calibrated = Certifier.calibrate(logits: rows(calibration), labels: calibration.map { labels[$0] }, spec: spec)
            let policy = Policy(
                spec: spec, kind: .trained, thresholds: calibrated.thresholds, massBounds: calibrated.massBounds,
                labelCalibrationItems: calibrated.labelItems, scopeFloor: nil)
            let probabilities = softmax(rows(test), classes: k, temperature: calibrated.temperature)
            var predicted = [Int](repeating: 0, count: spec.riskClasses.count), accepted = predicted, errors = predicted
            let classOf = spec.riskClassIndices
            for (row, i) in test.enumerated() {
                let outcome = policy.decide(Array(probabilities[row * k..<(row + 1) * k]), text: texts[i])
                let c = classOf[outcome.label]
                predicted[c] += 1
                if outcome.route == .accept {
                    accepted[c] += 1
                    if outcome.label != labels[i] { errors[c] += 1 }
                }
            }
            let split = Split(
                coverage: zip(accepted, predicted).map { $1 > 0 ? Double($0) / Double($1) : 0 },
                realisedError: zip(errors, accepted).map { $1 > 0 ? Double($0) / Double($1) : 0 },
                accepted: accepted, overallCoverage: Double(accepted.reduce(0, +)) / Double(max(test.count, 1)))
            return (split, accepted.reduce(0, +), errors.reduce(0, +))
        }
        let fraction = Double(calibrationSize) / Double(n)
        splits = (0..<repeats).map { run(spec, calibrationFraction: fraction, seed: seed &+ UInt64($0)).0 }
        var strict = spec
        for c in strict.riskClasses.indices { strict.riskClasses[c].targetError = sizeTarget }
        self.sizes = sizes.filter { $0 < n }.map { size in
            let runs = (0..<sizeRepeats).map { run(strict, calibrationFraction: Double(size) / Double(n), seed: seed &+ 1000 &+ UInt64($0)) }
            return SizePoint(size: size, target: sizeTarget, coverages: runs.map(\.0.overallCoverage),
                             errors: runs.map { $0.accepted > 0 ? Double($0.errors) / Double($0.accepted) : 0 })
        }
    }
}
