import Foundation

/// Predicted class probabilities for a set of items with known labels, and the quality measures computed from them.
public struct ScoredItems: Sendable {
    /// Number of classes.
    public let classes: Int
    /// `count × classes` probabilities, item by item.
    public let probabilities: [Double]
    /// The true class of each item.
    public let labels: [Int]

    /// Scored items; each probability row must sum to about 1.
    public init(probabilities: [Double], labels: [Int], classes: Int) {
        precondition(probabilities.count == labels.count * classes)
        self.probabilities = probabilities
        self.labels = labels
        self.classes = classes
    }

    /// Number of items.
    public var count: Int { labels.count }

    /// The most probable class of item `i` and its probability.
    public func top(_ i: Int) -> (label: Int, confidence: Double) {
        var best = 0
        for j in 1..<classes where probabilities[i * classes + j] > probabilities[i * classes + best] { best = j }
        return (best, probabilities[i * classes + best])
    }

    /// Predicted class of every item.
    public var predictions: [Int] { (0..<count).map { top($0).label } }

    /// Fraction of items whose most probable class is the true one.
    public var accuracy: Double {
        Double((0..<count).filter { top($0).label == labels[$0] }.count) / Double(max(count, 1))
    }

    /// Mean negative log-likelihood of the true class (probabilities floored at 1e-15).
    public var negativeLogLikelihood: Double {
        (0..<count).reduce(0) { $0 - log(max(probabilities[$1 * classes + labels[$1]], 1e-15)) } / Double(max(count, 1))
    }

    /// Mean multi-class Brier score: Σ_j (p_j − y_j)², averaged over items.
    public var brier: Double {
        var total = 0.0
        for i in 0..<count {
            for j in 0..<classes {
                let d = probabilities[i * classes + j] - (j == labels[i] ? 1 : 0)
                total += d * d
            }
        }
        return total / Double(max(count, 1))
    }

    /// One bin of a reliability diagram.
    public struct ReliabilityBin: Sendable, Codable {
        /// Lower and upper edge of the confidence range.
        public var lower, upper: Double
        /// Items whose top confidence falls in the bin.
        public var count: Int
        /// Their mean top confidence.
        public var confidence: Double
        /// Their accuracy.
        public var accuracy: Double
    }

    /// Equal-width bins over top-class confidence.
    public func reliability(bins: Int = 15) -> [ReliabilityBin] {
        var count = [Int](repeating: 0, count: bins), confidence = [Double](repeating: 0, count: bins)
        var correct = [Double](repeating: 0, count: bins)
        for i in 0..<self.count {
            let (label, p) = top(i)
            let b = min(bins - 1, Int(p * Double(bins)))
            count[b] += 1
            confidence[b] += p
            correct[b] += label == labels[i] ? 1 : 0
        }
        return (0..<bins).map { b in
            ReliabilityBin(
                lower: Double(b) / Double(bins), upper: Double(b + 1) / Double(bins), count: count[b],
                confidence: count[b] > 0 ? confidence[b] / Double(count[b]) : 0,
                accuracy: count[b] > 0 ? correct[b] / Double(count[b]) : 0)
        }
    }

    /// Expected calibration error: Σ_bins (n_b / N)·|accuracy_b − confidence_b| over equal-width confidence bins.
    public func expectedCalibrationError(bins: Int = 15) -> Double {
        reliability(bins: bins).reduce(0) { $0 + Double($1.count) * abs($1.accuracy - $1.confidence) } / Double(max(count, 1))
    }

    /// Precision, recall and F1 of one class.
    public struct ClassScores: Sendable, Codable {
        /// The class.
        public var label: Int
        /// Items whose true class it is.
        public var support: Int
        /// Of items predicted as the class, the fraction that are.
        public var precision: Double
        /// Of items of the class, the fraction predicted as it.
        public var recall: Double
        /// Harmonic mean of precision and recall (0 when both are 0).
        public var f1: Double
    }

    /// Per-class precision, recall and F1.
    public var perClass: [ClassScores] {
        let predicted = predictions
        var truePositive = [Int](repeating: 0, count: classes), predictedCount = truePositive, support = truePositive
        for i in 0..<count {
            support[labels[i]] += 1
            predictedCount[predicted[i]] += 1
            if predicted[i] == labels[i] { truePositive[labels[i]] += 1 }
        }
        return (0..<classes).map { j in
            let precision = predictedCount[j] > 0 ? Double(truePositive[j]) / Double(predictedCount[j]) : 0
            let recall = support[j] > 0 ? Double(truePositive[j]) / Double(support[j]) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return ClassScores(label: j, support: support[j], precision: precision, recall: recall, f1: f1)
        }
    }

    /// Mean F1 over the classes that occur among the true labels.
    public var macroF1: Double {
        let present = perClass.filter { $0.support > 0 }
        return present.reduce(0) { $0 + $1.f1 } / Double(max(present.count, 1))
    }

    /// The most frequent (true, predicted) mistakes, most common first.
    public func confusedPairs(limit: Int = 10) -> [(truth: Int, predicted: Int, count: Int)] {
        var pairs = [Int: Int]()
        let predicted = predictions
        for i in 0..<count where predicted[i] != labels[i] { pairs[labels[i] * classes + predicted[i], default: 0] += 1 }
        return pairs.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit)
            .map { (truth: $0.key / classes, predicted: $0.key % classes, count: $0.value) }
    }

    /// Accuracy of the most confident fraction of items, for each coverage from 1/`points` to 1.
    public func coverageCurve(points: Int = 50) -> [(coverage: Double, accuracy: Double)] {
        let order = (0..<count).map { (top($0).confidence, top($0).label == labels[$0]) }.sorted { $0.0 > $1.0 }
        guard !order.isEmpty else { return [] }
        var correctPrefix = [Int](repeating: 0, count: order.count + 1)
        for (i, item) in order.enumerated() { correctPrefix[i + 1] = correctPrefix[i] + (item.1 ? 1 : 0) }
        return (1...points).map { step in
            let n = max(1, Int((Double(step) / Double(points) * Double(order.count)).rounded()))
            return (Double(n) / Double(order.count), Double(correctPrefix[n]) / Double(n))
        }
    }
}
