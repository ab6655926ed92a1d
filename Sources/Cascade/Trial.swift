import Foundation
import Statistics

/// The whole loop on one labelled file: hold out a stratified share, train and certify on the rest, decide the
/// held-out items, and study the guarantee on repeated calibration splits.
public struct Trial {
    /// The task.
    public var spec: TaskSpec
    /// Share of each label held out for testing.
    public var holdout = 0.2
    /// Random calibration splits in the guarantee study (0: none).
    public var resplits = 20
    /// Calibration sizes for the coverage-against-size study.
    public var sizes = [250, 500, 1_000, 2_000, 3_000]
    /// Target error of that study.
    public var sizeTarget = 0.01
    /// Repeats per size.
    public var sizeRepeats = 5
    /// Single requests timed for latency (0: none).
    public var latencySamples = 300
    /// Threads for the backbone and the optimiser.
    public var threads = 2
    /// Progress on standard error.
    public var verbose = true

    /// A trial of a task with the default settings.
    public init(spec: TaskSpec) { self.spec = spec }

    /// What a trial produced.
    public struct Outcome: Sendable {
        /// The classifier trained (its adapter is also written to the spec's adapter path when asked).
        public var classifier: Classifier
        /// The evaluation on the held-out items.
        public var evaluation: Evaluation
        /// The held-out texts, in evaluation order.
        public var heldOutTexts: [String]
    }

    /// Runs the trial; with `writeAdapter` the adapter is saved to the spec's adapter path.
    public func run(data: LabelledData, writeAdapter: Bool) throws -> Outcome {
        let backbone = try LoadedBackbone(spec.backbone, maxTokens: spec.maxInputTokens, threads: threads)
        let extractor = FeatureExtractor(backbone: backbone, template: spec.template, maxTokens: spec.maxInputTokens)
        var trainer = Trainer(spec: spec, extractor: extractor)
        trainer.threads = threads
        trainer.verbose = verbose
        let features = try trainer.features(data)
        let (train, test) = Splits.stratified(data.labels, fraction: holdout, seed: spec.training.seed &+ 1)
        let trained = try trainer.train(
            features: features.subset(train), texts: train.map { data.texts[$0] }, labels: train.map { data.labels[$0] },
            dataDigest: data.digest, kinds: data.kinds.map { kinds in train.map { kinds[$0] } })
        if writeAdapter { try trained.adapter.write(to: spec.adapterPath) }
        let classifier = Classifier(spec: spec, extractor: extractor, adapter: trained.adapter)
        let texts = test.map { data.texts[$0] }, labels = test.map { data.labels[$0] }
        var evaluation = Evaluation(
            classifier: classifier, features: features.subset(test), labels: labels, texts: texts,
            source: "\(URL(fileURLWithPath: data.file).lastPathComponent), a stratified \(percent(holdout)) held out (seed \(spec.training.seed &+ 1))")
        if latencySamples > 0 { try evaluation.measureLatency(classifier, texts: texts, samples: latencySamples) }
        if resplits > 0 {
            // The pool: calibration items and held-out items, none of which the head was fitted on.
            let pool = trained.calibrationIndices.map { train[$0] } + test
            evaluation.study = GuaranteeStudy(
                spec: spec, logits: classifier.logits(features.subset(pool), texts: pool.map { data.texts[$0] }),
                labels: pool.map { data.labels[$0] }, texts: pool.map { data.texts[$0] },
                calibrationSize: trained.calibrationIndices.count, repeats: resplits, sizes: sizes,
                sizeTarget: sizeTarget, sizeRepeats: sizeRepeats, seed: spec.training.seed &+ 100)
        }
        return Outcome(classifier: classifier, evaluation: evaluation, heldOutTexts: texts)
    }
}
