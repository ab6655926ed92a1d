import Foundation
import Testing
import Datasets
@testable import Statistics

/// Gaussian blobs: `perClass` points around a random centre per class, in `dimension` dimensions.
func blobs(classes: Int, perClass: Int, dimension: Int, spread: Float, seed: UInt64) -> (FeatureMatrix, [Int]) {
    var generator = SeededGenerator(seed: seed)
    let centres = (0..<classes).map { _ in (0..<dimension).map { _ in generator.float(-1, 1) } }
    var values = [Float](), labels = [Int]()
    for c in 0..<classes {
        for _ in 0..<perClass {
            values.append(contentsOf: centres[c].map { $0 + spread * gaussian(&generator) })
            labels.append(c)
        }
    }
    return (FeatureMatrix(rows: labels.count, columns: dimension, values: values), labels)
}

func gaussian(_ g: inout SeededGenerator) -> Float {
    let u = max(g.float(0, 1), 1e-7), v = g.float(0, 1)
    return (-2 * logf(u)).squareRoot() * cosf(2 * .pi * v)
}

@Suite struct BinomialTests {
    @Test func cdfMatchesDirectSum() {
        for (n, p) in [(10, 0.3), (25, 0.02), (40, 0.5)] {
            var direct = 0.0
            for k in 0...n {
                var choose = 1.0
                for i in 0..<k { choose = choose * Double(n - i) / Double(i + 1) }
                direct += choose * pow(p, Double(k)) * pow(1 - p, Double(n - k))
                #expect(abs(Binomial.cdf(k, trials: n, probability: p) - direct) < 1e-12)
            }
        }
    }

    @Test func upperBoundSolvesTheTailEquation() {
        for (k, n) in [(0, 150), (3, 200), (20, 1_000), (50, 60)] {
            let u = Binomial.upperBound(events: k, trials: n, delta: 0.05)
            #expect(u > Double(k) / Double(n))
            #expect(abs(Binomial.cdf(k, trials: n, probability: u) - 0.05) < 1e-9)
        }
        // With no events the bound has the closed form 1 − δ^(1/n).
        #expect(abs(Binomial.upperBound(events: 0, trials: 150, delta: 0.05) - (1 - pow(0.05, 1.0 / 150))) < 1e-12)
        #expect(Binomial.minimumTrials(target: 0.02, delta: 0.05) == Int((log(0.05) / log(0.98)).rounded(.up)))
    }
}

@Suite struct OptimisationTests {
    @Test func lbfgsFindsTheRosenbrockMinimum() {
        var optimizer = LBFGS()
        optimizer.maxIterations = 2_000
        optimizer.gradientTolerance = 1e-9
        optimizer.relativeTolerance = 0
        let result = optimizer.minimize(from: [-1.2, 1]) { x, g in
            let a = 1 - x[0], b = x[1] - x[0] * x[0]
            g[0] = -2 * a - 400 * x[0] * b
            g[1] = 200 * b
            return a * a + 100 * b * b
        }
        #expect(abs(result.x[0] - 1) < 1e-4 && abs(result.x[1] - 1) < 1e-4)
    }

    @Test func softmaxRegressionReachesItsOptimum() {
        let (x, labels) = blobs(classes: 4, perClass: 150, dimension: 12, spread: 0.6, seed: 3)
        var optimizer = LBFGS()
        optimizer.gradientTolerance = 1e-7
        optimizer.relativeTolerance = 0
        let fit = SoftmaxRegression.fit(x, labels: labels, classes: 4, l2: 0.01, optimizer: optimizer)
        let scored = ScoredItems(probabilities: softmax(fit.model.logits(x), classes: 4), labels: labels, classes: 4)
        #expect(scored.accuracy > 0.9)
        // The bias is unpenalised, so at the optimum each class's mean predicted probability equals its frequency.
        for c in 0..<4 {
            let mean = (0..<x.rows).reduce(0.0) { $0 + scored.probabilities[$1 * 4 + c] } / Double(x.rows)
            #expect(abs(mean - 0.25) < 1e-3)
        }
        // A stronger penalty gives smaller weights.
        let strong = SoftmaxRegression.fit(x, labels: labels, classes: 4, l2: 1)
        let strongNorm: Float = strong.model.weights.map { $0 * $0 }.reduce(0, +)
        let weakNorm: Float = fit.model.weights.map { $0 * $0 }.reduce(0, +)
        #expect(strongNorm < weakNorm)
    }

    @Test func temperatureScalingRecoversTheTemperature() {
        // Labels drawn from softmax(z / 2.5) for random logits z: the fitted temperature should be near 2.5.
        var generator = SeededGenerator(seed: 11)
        let classes = 5, n = 20_000
        var logits = [Float](), labels = [Int]()
        for _ in 0..<n {
            let z = (0..<classes).map { _ in 4 * gaussian(&generator) }
            logits.append(contentsOf: z)
            let p = softmax(z, classes: classes, temperature: 2.5)
            var u = Double(generator.float(0, 1)), label = classes - 1
            for j in 0..<classes { u -= p[j]; if u < 0 { label = j; break } }
            labels.append(label)
        }
        let t = TemperatureScaling.fit(logits, labels: labels, classes: classes)
        #expect(abs(t - 2.5) < 0.1)
        let scaled = ScoredItems(probabilities: softmax(logits, classes: classes, temperature: t), labels: labels, classes: classes)
        let raw = ScoredItems(probabilities: softmax(logits, classes: classes), labels: labels, classes: classes)
        #expect(scaled.expectedCalibrationError() < 0.015)
        #expect(raw.expectedCalibrationError() > scaled.expectedCalibrationError())
        #expect(scaled.negativeLogLikelihood < raw.negativeLogLikelihood)
    }
}

@Suite struct MetricsTests {
    @Test func handWorkedScores() {
        // Three classes, five items: truths 0 0 1 2 2, predictions 0 1 1 2 0 (one-hot probabilities).
        let predicted = [0, 1, 1, 2, 0], truth = [0, 0, 1, 2, 2]
        var p = [Double](repeating: 0, count: 15)
        for (i, c) in predicted.enumerated() { p[i * 3 + c] = 1 }
        let s = ScoredItems(probabilities: p, labels: truth, classes: 3)
        #expect(s.accuracy == 0.6)
        let scores = s.perClass
        #expect(scores[0].precision == 0.5 && scores[0].recall == 0.5)
        #expect(scores[1].precision == 0.5 && scores[1].recall == 1)
        #expect(scores[2].precision == 1 && scores[2].recall == 0.5)
        #expect(abs(s.macroF1 - (0.5 + 2.0 / 3 + 2.0 / 3) / 3) < 1e-12)
        #expect(s.brier == 0.8)  // two wrong items, each contributing 2, over five
        #expect(s.expectedCalibrationError() == 0.4)  // confidence 1, accuracy 0.6
        #expect(s.confusedPairs().count == 2)
        let curve = s.coverageCurve(points: 5)
        #expect(curve.last!.coverage == 1 && curve.last!.accuracy == 0.6)
    }

    @Test func stratifiedSplitsKeepProportions() {
        let labels = (0..<1_000).map { $0 % 7 == 0 ? 1 : ($0 % 3 == 0 ? 2 : 0) }
        let (a, b) = Splits.stratified(labels, fraction: 0.25, seed: 5)
        #expect(Set(a).isDisjoint(with: b) && a.count + b.count == labels.count)
        for c in 0..<3 {
            let total = labels.filter { $0 == c }.count, second = b.filter { labels[$0] == c }.count
            #expect(abs(Double(second) - 0.25 * Double(total)) <= 1)
        }
        #expect(Splits.stratified(labels, fraction: 0.25, seed: 5).second == b)
        #expect(Splits.stratified(labels, fraction: 0.25, seed: 6).second != b)
        let folds = Splits.folds(labels, folds: 5, seed: 1)
        #expect(folds.flatMap { $0 }.sorted() == Array(0..<1_000))
        #expect(folds.allSatisfy { abs($0.count - 200) <= 1 })
    }
}

@Suite struct RiskControlTests {
    /// Items whose chance of being wrong falls as their score rises: P(error | s) = 0.3·(1 − s)².
    func simulate(_ n: Int, _ g: inout SeededGenerator) -> (scores: [Double], errors: [Bool]) {
        var scores = [Double](), errors = [Bool]()
        for _ in 0..<n {
            let s = Double(g.float(0, 1))
            scores.append(s)
            errors.append(Double(g.float(0, 1)) < 0.3 * (1 - s) * (1 - s))
        }
        return (scores, errors)
    }

    @Test func guaranteeHoldsAcrossRepeatedCalibrations() {
        // The true error rate among items scoring ≥ t is ∫_t^1 0.3(1−s)² ds / (1 − t) = 0.1·(1 − t)².
        // Over many calibration sets, the chosen threshold's true rate may exceed the target in at most δ of them.
        var g = SeededGenerator(seed: 2024)
        let target = 0.02, runs = 300
        var violations = 0, certified = 0
        for _ in 0..<runs {
            let (scores, errors) = simulate(2_000, &g)
            let result = RiskControl.threshold(scores: scores, errors: errors, target: target, delta: 0.05)
            guard let t = result.threshold else { continue }
            certified += 1
            let trueRate = 0.1 * (1 - t) * (1 - t)
            if trueRate > target { violations += 1 }
            #expect(result.upperBound <= target)
        }
        #expect(certified > runs * 9 / 10)
        #expect(Double(violations) / Double(runs) <= 0.05 + 0.03)  // δ plus sampling slack over 300 runs
    }

    @Test func tooLittleDataIsNeverAccepted() {
        var g = SeededGenerator(seed: 1)
        let (scores, errors) = simulate(100, &g)
        let result = RiskControl.threshold(scores: scores, errors: errors, target: 0.02, delta: 0.05)
        #expect(result.threshold == nil && result.accepted == 0)
        #expect(result.reason?.contains("too little calibration data") == true)
        #expect(result.itemsNeeded == RiskControl.startSize(target: 0.02, delta: 0.05))
        // At its start size an error rate of half the target passes, and one item fewer it would not.
        let m = result.itemsNeeded
        #expect(Binomial.pValue(events: Int(0.01 * Double(m)), trials: m, target: 0.02) <= 0.05)
    }

    @Test func boundSearchStopsAtFirstFailure() {
        // Misses grow with the bound; the search keeps the largest bound whose miss rate is certified.
        let misses = [0.01: 0, 0.05: 1, 0.1: 3, 0.2: 30]
        let found = RiskControl.largestBound(grid: [0.01, 0.05, 0.1, 0.2], trials: 400, target: 0.03, delta: 0.05) { misses[$0]! }
        #expect(found?.bound == 0.1 && found?.misses == 3)
        #expect(RiskControl.largestBound(grid: [0.01], trials: 20, target: 0.03, delta: 0.05) { _ in 0 } == nil)
    }
}
