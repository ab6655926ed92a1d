import Datasets

/// Seeded, stratified partitions of labelled items: every class is split in the same proportion.
public enum Splits {
    /// Indices of `labels` split in two: about `fraction` of each class goes to the second part. Deterministic for a
    /// seed; a class with one item stays in the first part.
    public static func stratified(_ labels: [Int], fraction: Double, seed: UInt64) -> (first: [Int], second: [Int]) {
        var generator = SeededGenerator(seed: seed)
        var first = [Int](), second = [Int]()
        for members in groups(labels) {
            var shuffled = members
            shuffled.shuffle(using: &generator)
            let take = members.count < 2 ? 0 : min(members.count - 1, Int((Double(members.count) * fraction).rounded()))
            second.append(contentsOf: shuffled.prefix(take))
            first.append(contentsOf: shuffled.dropFirst(take))
        }
        return (first.sorted(), second.sorted())
    }

    /// `folds` disjoint, stratified folds covering every index.
    public static func folds(_ labels: [Int], folds: Int, seed: UInt64) -> [[Int]] {
        var generator = SeededGenerator(seed: seed)
        var out = [[Int]](repeating: [], count: folds)
        var next = 0
        for members in groups(labels) {
            var shuffled = members
            shuffled.shuffle(using: &generator)
            // Deal round-robin, continuing where the previous class stopped so fold sizes stay even.
            for index in shuffled {
                out[next % folds].append(index)
                next += 1
            }
        }
        return out.map { $0.sorted() }
    }

    /// Indices grouped by label, labels in ascending order.
    static func groups(_ labels: [Int]) -> [[Int]] {
        var byLabel = [Int: [Int]]()
        for (i, label) in labels.enumerated() { byLabel[label, default: []].append(i) }
        return byLabel.keys.sorted().map { byLabel[$0]! }
    }
}
