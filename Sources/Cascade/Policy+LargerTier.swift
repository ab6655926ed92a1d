extension Policy {
    /// Raises the larger tier's answer by the same review policy the small model's answers meet: the always-review
    /// labels and the rules (``applyRules(_:text:)``), and, for a label whose risk class sends rejected predictions to
    /// review, review: the larger tier has no certified threshold, so its answer for such a label counts as uncertain.
    public func applyToLargerTier(_ outcome: inout Outcome, text: String) {
        let riskClass = spec.riskClasses[classOfLabel[outcome.label]]
        if riskClass.onReject == .review, outcome.route < .review {
            outcome.route = .review
            outcome.reason = .uncertified
            outcome.detail = "label \(spec.labels[outcome.label].name) is in risk class \(riskClass.name), whose answers without a certified "
                + "threshold go to review, and the larger tier is not certified"
        }
        applyRules(&outcome, text: text)
    }
}
