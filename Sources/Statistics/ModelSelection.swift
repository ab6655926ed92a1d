/// Chooses the L2 strength of a softmax-regression head by stratified k-fold cross-validation.
public enum ModelSelection {
    /// Mean held-out scores of one candidate strength.
    public struct Candidate: Sendable, Codable {
        /// The L2 strength on dense features.
        public var l2: Double
        /// The L2 strength on sparse features (0 when there are none).
        public var sparseL2: Double
        /// Mean held-out negative log-likelihood across folds.
        public var negativeLogLikelihood: Double
        /// Mean held-out accuracy across folds.
        public var accuracy: Double
    }

    /// Scores each pair of strengths in `grid` × `sparseGrid` by `folds`-fold cross-validation and returns them
    /// all; the best is the pair with the lowest held-out negative log-likelihood. `progress` is called after each fit.
    public static func crossValidate(
        _ x: FeatureMatrix, sparse: SparseRows? = nil, labels: [Int], classes: Int, grid: [Double],
        sparseGrid: [Double] = [0], folds: Int, seed: UInt64,
        optimizer: LBFGS = LBFGS(), threads: Int = 2, progress: (Int, Int) -> Void = { _, _ in }
    ) -> (best: Candidate, candidates: [Candidate]) {
        precondition(!grid.isEmpty && !sparseGrid.isEmpty && folds >= 2)
        let parts = Splits.folds(labels, folds: folds, seed: seed)
        let pairs = grid.flatMap { l2 in (sparse == nil ? [0] : sparseGrid).map { (l2, $0) } }
        var candidates = [Candidate]()
        var done = 0
        for (l2, sparseL2) in pairs {
            var nll = 0.0, accuracy = 0.0
            for held in parts {
                let heldSet = Set(held)
                let train = (0..<x.rows).filter { !heldSet.contains($0) }
                let fit = SoftmaxRegression.fit(
                    x.subset(train), sparse: sparse?.subset(train), labels: train.map { labels[$0] }, classes: classes,
                    l2: l2, sparseL2: sparseL2, optimizer: optimizer, threads: threads)
                let scored = ScoredItems(
                    probabilities: softmax(fit.model.logits(x.subset(held), sparse: sparse?.subset(held), threads: threads), classes: classes),
                    labels: held.map { labels[$0] }, classes: classes)
                nll += scored.negativeLogLikelihood / Double(folds)
                accuracy += scored.accuracy / Double(folds)
                done += 1
                progress(done, pairs.count * folds)
            }
            candidates.append(Candidate(l2: l2, sparseL2: sparseL2, negativeLogLikelihood: nll, accuracy: accuracy))
        }
        return (candidates.min { $0.negativeLogLikelihood < $1.negativeLogLikelihood }!, candidates)
    }
}
