import Foundation
import Statistics

/// Renders an evaluation as one self-contained HTML page with inline SVG charts.
public enum Report {
    /// The page.
    public static func html(_ e: Evaluation) -> String {
        let spec = e.spec, labels = spec.labels.map(\.name), currency = spec.tiers.currency
        var body = ""
        body += "<h1>\(escape(spec.name)): evaluation</h1>\n"
        body += "<p>\(escape(spec.summary))</p>\n"
        body += "<p class=meta>\(e.calibrated.count) items from \(escape(e.source)); backbone \(escape(e.adapter.backbone)); adapter \(escape(e.adapter.kind.rawValue)), created \(escape(e.adapter.created)); confidence of each guarantee \(percent(spec.confidence)).</p>\n"

        body += "<h2>Routes</h2>\n" + table(["route", "items", "share"], Route.allCases.map { r in
            [r.rawValue, "\(e.count(r))", pct(e.rate(r))]
        })
        body += "<h3>Reasons</h3>\n" + table(["reason", "items"], Reason.allCases.compactMap { r in
            let n = e.decisions.filter { $0.reason == r }.count
            return n > 0 ? [r.rawValue, "\(n)"] : nil
        })
        body += "<p>Error among accepted items: <b>\(pct(e.acceptedError))</b>. Cost per 1,000 requests, with the same review of the larger tier's answers on both sides (its answers that the task's policy sends to a person cost a review): cascade <b>\(escape(costLine(e.cost, currency: currency)))</b> against \(escape(costLine(e.allLarge, currency: currency))) for sending everything to \(escape(spec.tiers.large?.name ?? spec.tiers.human.name)) and \(money(spec.tiers.human.costPer1k, currency)) for reviewing everything.</p>\n"

        body += "<h2>Risk classes: coverage and realised error of the accepted set</h2>\n"
        body += table(["risk class", "target error", "certified threshold", "calibration bound", "predicted", "accepted", "coverage", "realised error"],
                      zip(e.classOutcomes, e.adapter.thresholds).map { o, t in
            let c = t.certificate
            return [o.riskClass.name, pct(o.riskClass.targetError),
                    c.threshold.map { String(format: "%.4f", $0) } ?? "none: \(c.reason ?? "")",
                    c.threshold == nil ? "—" : "\(c.errors)/\(c.accepted) wrong, bound \(pct(c.upperBound))",
                    "\(o.predicted)", "\(o.accepted)", pct(o.coverage), o.accepted > 0 ? pct(o.realisedError) : "—"]
        })
        if !e.highRiskOutcomes.isEmpty {
            body += "<h3>High-risk classes</h3>\n" + table(
                ["class", "items", "predicted as another class (model FNR)", "auto-accepted as low-risk", "mass bound", "certified miss rate"],
                e.highRiskOutcomes.map { h in
                    let bound = e.adapter.massBounds.first { $0.riskClass == h.riskClass.name }
                    return [h.riskClass.name, "\(h.items)", "\(h.missedByModel) (\(pct(Double(h.missedByModel) / Double(max(h.items, 1)))))",
                            "\(h.autoAcceptedAsLowRisk) (\(pct(Double(h.autoAcceptedAsLowRisk) / Double(max(h.items, 1)))))",
                            bound.map { String(format: "%.3f", $0.bound) } ?? "—",
                            bound.map { $0.reason ?? "≤ \(pct($0.upperBound)) (target \(pct($0.missTarget)))" } ?? "—"]
                })
        }
        let uncertified = spec.labels.indices.filter { e.adapter.labelCalibrationItems[$0] < spec.training.minLabelItems }
        if !uncertified.isEmpty && e.adapter.kind == .trained {
            body += "<p class=warn>Never auto-accepted (fewer than \(spec.training.minLabelItems) calibration items): \(uncertified.map { escape(labels[$0]) }.joined(separator: ", ")).</p>\n"
        }

        body += scopeHTML(e)

        body += "<h2>Accuracy and calibration</h2>\n"
        body += table(["", "before scaling", "after scaling (T = \(String(format: "%.3f", e.adapter.temperature)))"], [
            ["accuracy", pct(e.raw.accuracy), pct(e.calibrated.accuracy)],
            ["macro-F1", String(format: "%.4f", e.raw.macroF1), String(format: "%.4f", e.calibrated.macroF1)],
            ["negative log-likelihood", String(format: "%.4f", e.raw.negativeLogLikelihood), String(format: "%.4f", e.calibrated.negativeLogLikelihood)],
            ["Brier score", String(format: "%.4f", e.raw.brier), String(format: "%.4f", e.calibrated.brier)],
            ["expected calibration error (15 bins)", String(format: "%.4f", e.raw.expectedCalibrationError()), String(format: "%.4f", e.calibrated.expectedCalibrationError())],
        ])
        body += "<div class=charts>" + reliabilitySVG(e.raw.reliability(), e.calibrated.reliability()) + coverageSVG(e.calibrated.coverageCurve(points: 100), e) + "</div>\n"

        if let l = e.latency {
            body += "<h2>Decision latency</h2>\n<p>\(l.samples) single requests, one at a time (backbone + head + policy): p50 <b>\(ms(l.p50))</b>, p95 \(ms(l.p95)), p99 <b>\(ms(l.p99))</b>, mean \(ms(l.mean)); the backbone's share at the median \(ms(l.backboneP50)).</p>\n"
        }
        if let s = e.study { body += studyHTML(s) }

        body += "<h2>Per label</h2>\n" + table(["label", "risk", "support", "precision", "recall", "F1", "calibration items"],
            e.calibrated.perClass.map { c in
                [labels[c.label], spec.labels[c.label].risk, "\(c.support)", pct(c.precision), pct(c.recall), String(format: "%.3f", c.f1),
                 "\(e.adapter.labelCalibrationItems[c.label])"]
            })
        body += "<h2>Most confused pairs</h2>\n" + table(["true label", "predicted", "items"],
            e.calibrated.confusedPairs(limit: 12).map { [labels[$0.truth], labels[$0.predicted], "\($0.count)"] })
        if !e.adapter.crossValidation.isEmpty {
            body += "<h2>Training</h2>\n<p>\(e.adapter.calibration.fitItems) items fitted, \(e.adapter.calibration.items) held out for calibration. L2 strength chosen by cross-validation:</p>\n"
            let best = e.adapter.crossValidation.map(\.negativeLogLikelihood).min()
            body += table(["L2 (embedding)", "L2 (lexical)", "held-out NLL", "held-out accuracy"], e.adapter.crossValidation.map {
                [String(format: "%.0e", $0.l2) + ($0.negativeLogLikelihood == best ? " (chosen)" : ""),
                 e.adapter.lexical == nil ? "—" : String(format: "%.0e", $0.sparseL2),
                 String(format: "%.4f", $0.negativeLogLikelihood), pct($0.accuracy)]
            })
            if let lexical = e.adapter.lexical { body += "<p>Lexical features: \(lexical.count) terms (words and word pairs) from the fitted texts.</p>\n" }
        }
        return page(title: "\(spec.name) — Microscale evaluation", body: body)
    }

    /// A complete HTML page around `body`, in the reports' style.
    public static func page(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang=en><head><meta charset=utf-8><title>\(escape(title))</title>
        <style>
        body{font:15px/1.45 system-ui,sans-serif;max-width:1050px;margin:2em auto;padding:0 1em;color:#222}
        table{border-collapse:collapse;margin:.6em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
        th{background:#f3f3f3}.meta{color:#666}.warn{color:#a40}.charts{display:flex;flex-wrap:wrap;gap:1em}
        svg{border:1px solid #ddd;background:#fff}.pass{color:#070}.fail{color:#b00}
        </style></head><body>
        \(body)
        </body></html>
        """
    }

    static func studyHTML(_ s: GuaranteeStudy) -> String {
        var out = "<h2>The guarantee on fresh data</h2>\n<p>The head is kept; the \(s.calibrationSize + s.testSize) items it never saw are split \(s.splits.count) times at random into \(s.calibrationSize) for calibration and \(s.testSize) for testing. Each time the temperature and thresholds are refitted and the accepted set is checked.\(s.outOfScopeClass == nil ? "" : " With out-of-scope items the refit here is the plain certificate at the full δ: no grid of scope floors, no calibration share or held-out kinds; its figures describe the head, not the adapter's own certificate.")</p>\n"
        out += table(["risk class", "target", "splits within target", "coverage min / median / max", "realised error min / median / max"],
            s.acceptingClasses.map { c in
                let coverage = s.splits.map { $0.coverage[c] }.sorted(), error = s.splits.map { $0.realisedError[c] }.sorted()
                return [s.riskClasses[c].name, pct(s.riskClasses[c].targetError), "\(s.withinTarget(c)) of \(s.splits.count)",
                        "\(pct(coverage.first ?? 0)) / \(pct(median(coverage))) / \(pct(coverage.last ?? 0))",
                        "\(pct(error.first ?? 0)) / \(pct(median(error))) / \(pct(error.last ?? 0))"]
            })
        if !s.sizes.isEmpty {
            out += "<h3>The price of a stricter guarantee: coverage at a \(pct(s.sizes[0].target)) target by calibration size</h3>\n"
            out += table(["calibration items", "coverage (mean, range)", "realised error (mean)"], s.sizes.map { p in
                let c = p.coverages.sorted()
                return ["\(p.size)", "\(pct(c.reduce(0, +) / Double(max(c.count, 1)))) (\(pct(c.first ?? 0))–\(pct(c.last ?? 0)))",
                        pct(p.errors.reduce(0, +) / Double(max(p.errors.count, 1)))]
            })
        }
        return out
    }

    static func reliabilitySVG(_ before: [ScoredItems.ReliabilityBin], _ after: [ScoredItems.ReliabilityBin]) -> String {
        let size = 320.0, pad = 40.0
        func x(_ v: Double) -> Double { pad + v * (size - 2 * pad) }
        func y(_ v: Double) -> Double { size - pad - v * (size - 2 * pad) }
        var svg = "<svg width=\(Int(size)) height=\(Int(size)) viewBox=\"0 0 \(Int(size)) \(Int(size))\" role=img aria-label=\"reliability diagram\">"
        svg += "<text x=\(Int(size / 2)) y=18 text-anchor=middle font-size=13>Reliability (15 bins)</text>"
        svg += axes(size: size, pad: pad, xLabel: "confidence", yLabel: "accuracy")
        svg += "<line x1=\(x(0)) y1=\(y(0)) x2=\(x(1)) y2=\(y(1)) stroke=#999 stroke-dasharray=4 />"
        for (bins, colour) in [(before, "#d62728"), (after, "#1f77b4")] {
            let points = bins.filter { $0.count > 0 }.map { "\(x($0.confidence)),\(y($0.accuracy))" }.joined(separator: " ")
            svg += "<polyline points=\"\(points)\" fill=none stroke=\(colour) stroke-width=2 />"
            for b in bins where b.count > 0 {
                svg += "<circle cx=\(x(b.confidence)) cy=\(y(b.accuracy)) r=3 fill=\(colour)><title>\(b.count) items, confidence \(String(format: "%.3f", b.confidence)), accuracy \(String(format: "%.3f", b.accuracy))</title></circle>"
            }
        }
        svg += legend([("before scaling", "#d62728"), ("after scaling", "#1f77b4")], x: pad + 8, y: pad + 4)
        return xml(svg + "</svg>")
    }

    static func coverageSVG(_ curve: [(coverage: Double, accuracy: Double)], _ e: Evaluation) -> String {
        let width = 420.0, height = 320.0, pad = 40.0
        let low = max(0, min(curve.map(\.accuracy).min() ?? 0, 1 - e.spec.riskClasses.map(\.targetError).max()!) - 0.02)
        func x(_ v: Double) -> Double { pad + v * (width - 2 * pad) }
        func y(_ v: Double) -> Double { height - pad - (v - low) / (1 - low) * (height - 2 * pad) }
        var svg = "<svg width=\(Int(width)) height=\(Int(height)) viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=img aria-label=\"coverage against accuracy\">"
        svg += "<text x=\(Int(width / 2)) y=18 text-anchor=middle font-size=13>Accuracy of the most confident fraction</text>"
        svg += "<line x1=\(pad) y1=\(height - pad) x2=\(width - pad) y2=\(height - pad) stroke=#333 />"
        svg += "<line x1=\(pad) y1=\(pad) x2=\(pad) y2=\(height - pad) stroke=#333 />"
        svg += "<text x=\(Int(width / 2)) y=\(Int(height - 8)) text-anchor=middle font-size=12>coverage</text>"
        svg += "<text x=\(pad) y=\(height - pad + 14) font-size=11 text-anchor=middle>0</text><text x=\(width - pad) y=\(height - pad + 14) font-size=11 text-anchor=middle>1</text>"
        svg += "<text x=\(pad - 4) y=\(pad + 4) font-size=11 text-anchor=end>1.00</text><text x=\(pad - 4) y=\(height - pad + 4) font-size=11 text-anchor=end>\(String(format: "%.2f", low))</text>"
        let points = curve.map { "\(x($0.coverage)),\(y($0.accuracy))" }.joined(separator: " ")
        svg += "<polyline points=\"\(points)\" fill=none stroke=#1f77b4 stroke-width=2 />"
        for c in e.spec.riskClasses {
            let target = 1 - c.targetError
            svg += "<line x1=\(pad) y1=\(y(target)) x2=\(width - pad) y2=\(y(target)) stroke=#2ca02c stroke-dasharray=4><title>\(escape(c.name)) target</title></line>"
        }
        let covered = 1 - e.rate(.escalate) - e.rate(.review)
        svg += "<line x1=\(x(covered)) y1=\(pad) x2=\(x(covered)) y2=\(height - pad) stroke=#ff7f0e stroke-dasharray=2 />"
        svg += legend([("accuracy", "#1f77b4"), ("1 − target error", "#2ca02c"), ("accepted share", "#ff7f0e")], x: pad + 8, y: height - pad - 52)
        return xml(svg + "</svg>")
    }

    /// The out-of-scope section: in-scope coverage and out-of-scope recall, per group, the certificate's joint choice
    /// of scope floor and thresholds, the trade-off curve, and the audit drift simulation (empty without an
    /// out-of-scope label).
    static func scopeHTML(_ e: Evaluation) -> String {
        guard let s = e.scopeOutcome, let curve = e.tradeOff else { return "" }
        var out = "<h2>Out of scope</h2>\n<p>An accepted out-of-scope input counts as an error: the error among accepted above includes them. In scope: \(s.inScopeItems > 0 ? "<b>\(s.inScopeAccepted) of \(s.inScopeItems)</b> accepted (coverage <b>\(pct(s.inScopeCoverage))</b>)" : "no items"). Out of scope: \(s.outOfScopeItems > 0 ? "\(s.outOfScopeAccepted) of \(s.outOfScopeItems) accepted as some label (out-of-scope recall <b>\(String(format: "%.3f", s.outOfScopeRecall))</b>)" : "no items").</p>\n"
        let groups = e.groupOutcomes
        if !groups.isEmpty {
            out += table(["group", "items", "accepted", "wrong among accepted", "out-of-scope items", "out-of-scope recall"], groups.map { g in
                [g.name, "\(g.items)", "\(g.accepted) (\(pct(Double(g.accepted) / Double(max(g.items, 1)))))",
                 g.accepted > 0 ? "\(g.errors) (\(pct(Double(g.errors) / Double(g.accepted))))" : "—", "\(g.outOfScopeItems)",
                 g.outOfScopeItems > 0 ? String(format: "%.3f", 1 - Double(g.outOfScopeAccepted) / Double(g.outOfScopeItems)) : "—"]
            })
        }
        if let c = e.adapter.outOfScope {
            if c.outOfScopeItems == 0 { out += "<p class=warn>Calibration held no out-of-scope items: the certificate does not count out-of-scope traffic.</p>\n" }
            out += "<h3>How the scope floor was chosen</h3>\n<p>Calibration held \(c.inScopeItems) in-scope and \(c.outOfScopeItems) out-of-scope items (\(c.expectedShare.map { "subsampled to the configured expected share \(pct($0))" } ?? "the data's own share, \(pct(Double(c.outOfScopeItems) / Double(max(c.inScopeItems + c.outOfScopeItems, 1))))")). \(c.kindsHeldOut.map { k in "Each out-of-scope calibration item was scored by a head fitted without its kind (\(k) kinds held out in \(c.kindFolds ?? 0) folds), so the certificate treats them as kinds never seen. " } ?? "Out-of-scope calibration items were scored by the served head, which was fitted on other items of the same kinds: the certificate covers those kinds, not kinds the training data lacks. ")Each candidate floor was certified at δ = \(String(format: "%.4f", c.deltaPerCandidate)) (Bonferroni over \(c.candidates.count)), and the one accepting the most in-scope calibration items was kept.</p>\n"
            out += table(["floor quantile", "similarity floor", "in-scope accepted", "out-of-scope accepted", "wrong", "in-scope coverage", "out-of-scope recall", ""],
                         c.candidates.enumerated().map { i, k in
                [String(format: "%.2f", k.quantile), String(format: "%.3f", k.floor), "\(k.inScopeAccepted)", "\(k.outOfScopeAccepted)", "\(k.errors)",
                 pct(k.inScopeCoverage), String(format: "%.3f", k.outOfScopeRecall), i == c.chosen ? "chosen" : ""]
            })
        }
        let points = [0.95, 0.9, 0.85, 0.8, 0.7].compactMap { c in e.outOfScopeRecall(atCoverage: c).map { (c, $0) } }
        if !points.isEmpty && s.outOfScopeItems > 0 {
            out += "<h3>The trade-off with one threshold for every label</h3>\n" + table(
                ["in-scope coverage at least", "threshold", "in-scope coverage", "out-of-scope recall", "error among accepted"],
                points.map { c, p in [pct(c), String(format: "%.4f", p.threshold), pct(p.inScopeCoverage), String(format: "%.3f", p.outOfScopeRecall), pct(p.acceptedError)] })
        }
        out += "<div class=charts>" + tradeOffSVG(curve, operating: s) + "</div>\n"
        if let d = e.auditDrift {
            let alerted = d.auditsToAlert.count { $0 != nil }
            out += "<h3>Audits watching a drift</h3>\n<p>\(d.auditsToAlert.count) simulated runs drawing these items as traffic: the out-of-scope share steps from \(pct(d.before)) to \(pct(d.after)) after \(d.decisionsBefore) decisions; \(pct(d.share)) of accepted decisions are audited and each risk class is checked after every audit over its newest \(d.window) audits, alerting when the exact lower bound on the error exceeds the target (from \(d.minAudits) audits on). The items imply an error among accepted of \(pct(d.errorBefore)) before and \(pct(d.errorAfter)) after. Alerts before the change: \(d.falseAlarms) run(s). After it: \(alerted) of \(d.auditsToAlert.count) runs alerted within \(d.decisionsAfter) decisions, after a median of <b>\(d.quantile(0.5).map(String.init) ?? "—")</b> audits (90th percentile \(d.quantile(0.9).map(String.init) ?? "—")).</p>\n"
        }
        return out
    }

    /// Out-of-scope recall against in-scope coverage as one threshold moves, with the certified operating point.
    static func tradeOffSVG(_ curve: [Evaluation.TradeOffPoint], operating: Evaluation.ScopeOutcome) -> String {
        let size = 320.0, pad = 44.0
        func x(_ v: Double) -> Double { pad + v * (size - 2 * pad) }
        func y(_ v: Double) -> Double { size - pad - v * (size - 2 * pad) }
        var svg = "<svg width=\(Int(size)) height=\(Int(size)) viewBox=\"0 0 \(Int(size)) \(Int(size))\" role=img aria-label=\"out-of-scope recall against in-scope coverage\">"
        svg += "<text x=\(Int(size / 2)) y=18 text-anchor=middle font-size=13>Scope trade-off (threshold 0 → 1)</text>"
        svg += axes(size: size, pad: pad, xLabel: "in-scope coverage", yLabel: "out-of-scope recall")
        let points = curve.map { String(format: "%.1f,%.1f", x($0.inScopeCoverage), y($0.outOfScopeRecall)) }.joined(separator: " ")
        svg += "<polyline points=\"\(points)\" fill=none stroke=#1f77b4 stroke-width=2 />"
        for p in curve where abs(p.threshold * 10 - (p.threshold * 10).rounded()) < 1e-9 {
            svg += "<circle cx=\(x(p.inScopeCoverage)) cy=\(y(p.outOfScopeRecall)) r=2.5 fill=#1f77b4><title>threshold \(String(format: "%.2f", p.threshold)): coverage \(pct(p.inScopeCoverage)), recall \(String(format: "%.3f", p.outOfScopeRecall)), error among accepted \(pct(p.acceptedError))</title></circle>"
        }
        svg += "<circle cx=\(x(operating.inScopeCoverage)) cy=\(y(operating.outOfScopeRecall)) r=5 fill=#ff7f0e><title>certified: coverage \(pct(operating.inScopeCoverage)), recall \(String(format: "%.3f", operating.outOfScopeRecall))</title></circle>"
        svg += legend([("one threshold for all labels", "#1f77b4"), ("certified operating point", "#ff7f0e")], x: pad + 8, y: size - pad - 36)
        return xml(svg + "</svg>")
    }

    /// Quotes bare attribute values and declares the namespace, so each chart is also a valid standalone SVG file.
    static func xml(_ svg: String) -> String {
        let bare = try! NSRegularExpression(pattern: "(\\s[a-z][a-z0-9-]*)=([^\"\\s>]+)")
        let quoted = bare.stringByReplacingMatches(in: svg, range: NSRange(svg.startIndex..., in: svg), withTemplate: "$1=\"$2\"")
        return quoted.replacingOccurrences(of: "<svg ", with: "<svg xmlns=\"http://www.w3.org/2000/svg\" ")
    }

    static func axes(size: Double, pad: Double, xLabel: String, yLabel: String) -> String {
        var s = "<line x1=\(pad) y1=\(size - pad) x2=\(size - pad) y2=\(size - pad) stroke=#333 />"
        s += "<line x1=\(pad) y1=\(pad) x2=\(pad) y2=\(size - pad) stroke=#333 />"
        s += "<text x=\(Int(size / 2)) y=\(Int(size - 8)) text-anchor=middle font-size=12>\(xLabel)</text>"
        s += "<text x=12 y=\(Int(size / 2)) font-size=12 transform=\"rotate(-90 12 \(Int(size / 2)))\" text-anchor=middle>\(yLabel)</text>"
        for (value, label) in [(0.0, "0"), (0.5, "0.5"), (1.0, "1")] {
            let along = pad + value * (size - 2 * pad)
            s += "<text x=\(along) y=\(size - pad + 14) font-size=11 text-anchor=middle>\(label)</text>"
            s += "<text x=\(pad - 4) y=\(size - along + 4) font-size=11 text-anchor=end>\(label)</text>"
        }
        return s
    }

    static func legend(_ items: [(String, String)], x: Double, y: Double) -> String {
        items.enumerated().map { i, item in
            "<rect x=\(x) y=\(y + Double(i) * 16) width=10 height=10 fill=\(item.1) /><text x=\(x + 14) y=\(y + Double(i) * 16 + 9) font-size=11>\(item.0)</text>"
        }.joined()
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
            + rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined(separator: "\n") + "</table>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func pct(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }
    static func ms(_ x: Double) -> String { String(format: "%.2f ms", x) }
    static func money(_ x: Double, _ currency: String) -> String { currency + String(format: "%.2f", x) }
    static func median(_ sorted: [Double]) -> Double { sorted.isEmpty ? 0 : sorted[sorted.count / 2] }

    /// "$43.10 (small $0.02, large $0.05, human $43.03)": a cost and the tier each part goes to.
    public static func costLine(_ c: Evaluation.Cost, currency: String) -> String {
        func m(_ x: Double) -> String { currency + String(format: "%.2f", x) }
        return "\(m(c.total)) (small \(m(c.small)), large \(m(c.large)), human \(m(c.human)))"
    }
}
