import Foundation
import Testing
@testable import Server
import Store

/// Drift rates by final route, withheld alerts and the configuration `microscale drift` reads.
@Suite struct DriftRouteTests {
    func record(_ route: String, reason: String = "r", escalation: String? = nil, at offset: Double = 0) -> DecisionRecord {
        DecisionRecord(id: UUID().uuidString, task: "t", createdAt: Date().addingTimeInterval(offset), input: nil, inputSHA256: "",
                       label: "a", fieldsJSON: nil, confidence: 0.5, route: route, reason: reason, detail: "", tier: "small",
                       draftJSON: nil, escalationJSON: escalation, latencyJSON: "{}", modelVersion: "m", adapterVersion: nil)
    }

    /// The user report: a failed escalation counted as escalated and as reviewed, so the rates added up to 125%.
    @Test func eachDecisionCountsUnderOneFinalRoute() {
        let failed = "{\"outcome\": \"failed\", \"attempts\": 2}", answered = "{\"outcome\": \"answered\", \"attempts\": 1}"
        let w = DriftWindow(decisions: [
            record("accepted"), record("escalated", reason: "below_threshold", escalation: answered),
            record("review", reason: "escalation_failed", escalation: failed),
            record("review", reason: "rule", escalation: answered),  // answered, then a rule sent it to a person
        ], resolved: [])
        #expect(w.acceptRate == 0.25 && w.escalationRate == 0.25 && w.reviewRate == 0.5)
        #expect(w.acceptRate + w.escalationRate + w.reviewRate == 1)
        #expect(w.escalationFailureRate == 0.25 && w.escalationFailureRate <= w.reviewRate)
        for mix in [["accepted", "review"], ["escalated", "escalated", "review"], ["review"], ["accepted", "escalated", "review", "review"]] {
            let window = DriftWindow(decisions: mix.map { record($0, reason: $0 == "review" ? "escalation_failed" : "r") }, resolved: [])
            #expect(abs(window.acceptRate + window.escalationRate + window.reviewRate - 1) < 1e-12)
        }
    }

    /// The user report: alerts waited for an undocumented 30 decisions. The minimum is `drift.min_samples`, and the
    /// report says which alerts it withholds and why.
    @Test func withheldAlertsSayWhy() async throws {
        let store = try SQLiteStore(path: Fixtures.temporary("drift-withheld.sqlite"))
        for i in 0..<20 { try await store.record(record("review", at: Double(i) * 1e-3), review: nil) }
        var drift = ServiceConfig.Drift()
        drift.window = 100
        drift.reviewRate = 0.5
        drift.correctionRate = 0.2
        #expect(drift.minSamples == 30)
        let waiting = try await DriftReport.measure(task: "t", store: store, drift: drift)
        #expect(waiting.alerts.isEmpty && waiting.minSamples == 30)
        #expect(waiting.withheld.map(\.metric) == ["review_rate", "correction_rate"])
        #expect(waiting.withheld[0].message.contains("20 decisions") && waiting.withheld[0].message.contains("drift.min_samples = 30"))
        drift.minSamples = 10
        let firing = try await DriftReport.measure(task: "t", store: store, drift: drift)
        #expect(firing.alerts.map(\.metric) == ["review_rate"] && firing.withheld.map(\.metric) == ["correction_rate"])
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(firing)) as? [String: Any])
        #expect(json["min_samples"] as? Int == 10 && (json["current"] as? [String: Any])?["escalation_failure_rate"] != nil)
    }

    /// A tier that keeps failing moves decisions from escalated to review, lowering the escalation rate: its own alert
    /// catches it.
    @Test func aFailingTierRaisesItsOwnAlert() async throws {
        let store = try SQLiteStore(path: Fixtures.temporary("drift-failing.sqlite"))
        for i in 0..<12 {
            try await store.record(record(i < 8 ? "review" : "accepted", reason: i < 8 ? "escalation_failed" : "confident", at: Double(i) * 1e-3), review: nil)
        }
        var drift = ServiceConfig.Drift()
        drift.window = 100
        drift.minSamples = 10
        drift.escalationRate = 0.5
        drift.escalationFailureRate = 0.2
        let report = try await DriftReport.measure(task: "t", store: store, drift: drift)
        #expect(report.alerts.map(\.metric) == ["escalation_failure_rate"], "\(report.alerts)")
        #expect(report.current.escalationRate == 0)
    }

    /// The user report: `microscale drift` needed the API keys of the server to read the file.
    @Test func driftReadsTheConfigurationWithoutKeys() throws {
        let file = Fixtures.temporary("serve-drift.yaml")
        try """
        auth: {api_keys: [env:DRIFT_TEST_KEY, literal-key], reviewer_keys: [env:DRIFT_TEST_REVIEWER]}
        escalation: {base_url: "http://x/v1", model: big, api_key: env:DRIFT_TEST_KEY}
        store: sqlite:log.sqlite
        drift: {window: 100, min_samples: 12}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try ServiceConfig.load(file, environment: [:]) }
        let c = try ServiceConfig.load(file, environment: [:], requireSecrets: false)
        #expect(c.apiKeys == ["literal-key"] && c.reviewerKeys.isEmpty && c.escalation?.apiKey == nil)
        #expect(c.drift.minSamples == 12 && c.store.hasSuffix("/log.sqlite"))
        let served = try ServiceConfig.load(file, environment: ["DRIFT_TEST_KEY": "k", "DRIFT_TEST_REVIEWER": "r"])
        #expect(served.apiKeys == ["k", "literal-key"] && served.reviewerKeys == ["r"] && served.escalation?.apiKey == "k")
    }
}
