import Cascade
import Foundation
import Testing
@testable import Server
@testable import Store

/// Audits of accepted decisions: a random share goes to review as well, reviewers' answers give the realised error
/// with exact bounds per risk class, and a breach alerts (drift, /metrics, the review page's endpoint).
@Suite(.serialized) struct AuditTests {
    static let task = "support-queue"

    @Test func theAuditSettingsAreReadAndCheckedByName() throws {
        let file = Fixtures.temporary("serve-audit.yaml")
        try "store: sqlite:log.sqlite\naudit: {share: 0.05, window: 200}\n".write(toFile: file, atomically: true, encoding: .utf8)
        let c = try ServiceConfig.load(file, environment: [:], requireSecrets: false)
        #expect(c.audit.share == 0.05 && c.audit.window == 200)
        for (yaml, words) in [("audit: {share: 1.5}", "share"), ("audit: {every: 10}", "every"), ("audit: {window: 3}", "window"),
                              ("audit: {window: 100, min_audits: 200}", "cannot exceed window")] {
            try ("store: sqlite:log.sqlite\n" + yaml).write(toFile: file, atomically: true, encoding: .utf8)
            #expect { try ServiceConfig.load(file, environment: [:], requireSecrets: false) } throws: { "\($0)".contains(words) }
        }
        #expect(ServiceConfig().audit.share == 0 && ServiceConfig().audit.minAudits == 50, "no audits unless asked for")
    }

    @Test func aShareOfAcceptedDecisionsIsAuditedAtRandom() async throws {
        let adapter = try await Fixtures.supportAdapter()
        var config = Fixtures.config(adapter: adapter)
        config.escalationDisabled = true
        config.audit.share = 0.5
        try await withServer(config) { _, service in
            let spec = try TaskSpec.load(Fixtures.supportTask)
            let data = try LabelledData.load(Fixtures.root + "/examples/support/messages.csv", spec: spec)
            var accepted: [DecisionResponse] = []
            for start in stride(from: 0, to: 64, by: 8) {
                accepted += try await service.decide(taskName: Self.task, inputs: Array(data.texts[start..<start + 8]), batch: true).filter { $0.route == .accept }
            }
            #expect(accepted.count >= 30)
            var audited = 0
            for d in accepted where try await service.store.reviewItem(decisionId: d.id)?.reason == auditReason { audited += 1 }
            // Binomial(n, 0.5): outside 20–80% with probability below 0.1% for n ≥ 30.
            #expect(Double(audited) > 0.2 * Double(accepted.count) && Double(audited) < 0.8 * Double(accepted.count), "\(audited) of \(accepted.count)")
        }
    }

    @Test func acceptedDecisionsAreAuditedAndABreachAlerts() async throws {
        let adapter = try await Fixtures.supportAdapter()
        var config = Fixtures.config(adapter: adapter)
        config.escalationDisabled = true
        config.audit.share = 1
        config.audit.window = 50
        config.audit.minAudits = 1  // a handful of accepted messages is all this test decides
        let settings = config
        try await withServer(config) { http, service in
            // Messages the adapter accepts, found from the data rather than assumed.
            let spec = try TaskSpec.load(Fixtures.supportTask)
            let data = try LabelledData.load(Fixtures.root + "/examples/support/messages.csv", spec: spec)
            let accepted = try await service.decide(taskName: Self.task, inputs: Array(data.texts.prefix(8)), batch: true)
                .filter { $0.route == .accept }
            #expect(!accepted.isEmpty)
            // Every accepted decision (share 1) is queued as an audit, beside its unchanged route.
            for d in accepted {
                let item = try #require(try await service.store.reviewItem(decisionId: d.id))
                #expect(item.reason == auditReason && item.draftLabel == d.label)
                #expect(item.detail.hasPrefix("audit:") && !item.detail.contains(d.label!), "the detail does not give the answer away")
                #expect(try await service.store.decision(id: d.id)?.route == "accepted")
            }
            // Until someone answers, nothing is known.
            let before = try await http.send("GET", "/v1/audit", key: "reviewer-key")
            #expect(before.status == 200)
            let none = ((before.json["tasks"] as? [[String: Any]])?.first?["risk_classes"] as? [[String: Any]])?.first
            #expect(none?["audited"] as? Int == 0 && none?["state"] as? String == "unconfirmed")

            // Reviewers say every audited decision was wrong (and confirm the policy's own reviews).
            var answered = 0, others = 0
            while let item = try await service.store.claim(reviewer: "r", task: Self.task, now: Date(), lease: 60) {
                guard item.reason == auditReason else {
                    _ = try await service.resolve(decisionId: item.decisionId, reviewer: "r", label: item.draftLabel, fields: nil)
                    others += 1
                    continue
                }
                let label = answered % 2 == 0 ? "legal_dispute" : (item.draftLabel == "billing" ? "refund" : "billing")
                _ = try await service.resolve(decisionId: item.decisionId, reviewer: "r", label: label, fields: nil)
                answered += 1
            }
            #expect(answered == accepted.count)
            let report = try await DriftReport.measure(task: Self.task, store: service.store, drift: settings.drift, spec: spec, audit: settings.audit)
            let standard = try #require(report.audit.first { $0.riskClass == "standard" })
            #expect(standard.audited == answered && standard.wrong == answered)
            #expect(standard.state == .breached, "\(standard)")
            #expect(report.alerts.contains { $0.metric == "audit_error" && $0.riskClass == "standard" })
            // Audits are not drift's corrections: the correction rate counts the policy's own reviews only.
            #expect(report.current.resolved == others && report.current.correctionRate ?? 0 == 0)

            let after = try await http.send("GET", "/v1/audit", key: "reviewer-key")
            let row = ((after.json["tasks"] as? [[String: Any]])?.first?["risk_classes"] as? [[String: Any]])?.first { $0["risk_class"] as? String == "standard" }
            #expect(row?["state"] as? String == "breached" && row?["wrong"] as? Int == answered)
            #expect(try await http.send("GET", "/v1/audit", key: .some(nil)).status == 401, "reviewers only")

            // The monitor publishes the figures as gauges.
            DriftMonitor(tasks: [Self.task], store: service.store, drift: settings.drift, logger: Fixtures.logger).publish(report)
            let metrics = try await http.send("GET", "/metrics")
            #expect(metrics.text.contains("microscale_audit_breached{") && metrics.text.contains("risk_class=\"standard\""))

            // Audit answers are people's labels on live traffic: the retraining set takes them as such.
            let reviewed = try await service.store.reviewedExamples(task: Self.task)
            #expect(reviewed.count { $0.reason == auditReason } == answered && reviewed.count == answered + others)
        }
    }
}
