import Foundation
import Testing
@testable import Store

/// The learning loop's part of the store contract: teacher labels, teacher checks, adapter versions, shadow decisions.
enum LearningContract {
    static func decision(_ task: String, _ text: String, teacher: String?, origin: String?, route: String = "escalated", tier: String = "large",
                         at time: Double) -> DecisionRecord {
        DecisionRecord(id: UUID().uuidString.lowercased(), task: task, createdAt: Date(timeIntervalSince1970: time), input: text,
                       inputSHA256: "sha-" + text, label: teacher, fieldsJSON: nil, confidence: nil, route: route, reason: "r", detail: "d",
                       tier: tier, draftJSON: #"{"label":"a","confidence":0.4}"#, escalationJSON: nil, latencyJSON: "{}", modelVersion: "m",
                       adapterVersion: "v", origin: origin, teacherLabel: teacher)
    }

    static func run(_ store: any DecisionStore, task: String) async throws {
        // Teacher labels: distilled rows, a live escalation the tier answered, and one it answered that then went to review.
        let distilled = decision(task, "distilled 🇫🇷", teacher: "b", origin: "distill", at: 10)
        let live = decision(task, "live", teacher: "a", origin: nil, at: 20)
        let reviewedLive = decision(task, "live high-risk", teacher: "legal", origin: nil, route: "review", tier: "human", at: 30)
        let plain = decision(task, "accepted", teacher: nil, origin: nil, route: "accepted", tier: "small", at: 40)
        try await store.record([distilled, live])
        try await store.record(reviewedLive, review: ReviewItem(decisionId: reviewedLive.id, task: task, text: "live high-risk", draftLabel: "legal",
                                                               draftFieldsJSON: nil, confidence: 0.4, reason: "uncertified", detail: "d",
                                                               createdAt: Date(timeIntervalSince1970: 30)))
        try await store.record(plain, review: nil)
        #expect(try await store.decision(id: distilled.id) == distilled)
        #expect(try await store.distilledInputs(task: task) == ["sha-distilled 🇫🇷"])
        let labels = try await store.teacherLabels(task: task)
        #expect(labels.map(\.label) == ["b", "a", "legal"] && labels.map(\.origin) == ["distill", nil, nil])
        #expect(labels[0].text == "distilled 🇫🇷")
        // Drift reads live traffic only.
        #expect(try await store.recentDecisions(task: task, limit: 10).map(\.id) == [plain.id, reviewedLive.id, live.id])

        // Teacher checks: queued once, whatever is asked twice; agreement pairs after review.
        let check = ReviewItem(decisionId: distilled.id, task: task, text: "distilled 🇫🇷", draftLabel: "b", draftFieldsJSON: nil, confidence: 0.4,
                               reason: teacherCheckReason, detail: "d", createdAt: Date(timeIntervalSince1970: 50))
        try await store.queueReviews([check])
        try await store.queueReviews([check])
        #expect(try await store.reviewItems(task: task, reason: teacherCheckReason).map(\.decisionId) == [distilled.id])
        for _ in 0..<2 {
            let item = try #require(try await store.claim(reviewer: "ana", task: task, now: Date(timeIntervalSince1970: 100), lease: 60))
            _ = try await store.resolve(decisionId: item.decisionId, reviewer: "ana", label: item.decisionId == distilled.id ? "c" : "legal", fieldsJSON: nil,
                                        outcome: "x", now: Date(timeIntervalSince1970: 100))
        }
        let pairs = try await store.teacherReviews(task: task)
        #expect(Set(pairs.map { "\($0.teacher)>\($0.reviewer)" }) == ["b>c", "legal>legal"])

        // Audits: accepted decisions queued at random; only answered ones count, newest first, with the label accepted.
        var audited: [DecisionRecord] = []
        for (i, label) in ["a", "b", "a"].enumerated() {
            var d = decision(task, "audited \(i) ✓", teacher: nil, origin: nil, route: "accepted", tier: "small", at: 60 + Double(i))
            d.label = label
            try await store.record(d, review: ReviewItem(decisionId: d.id, task: task, text: d.input!, draftLabel: label, draftFieldsJSON: nil,
                                                         confidence: 0.99, reason: auditReason, detail: "audit", createdAt: d.createdAt))
            audited.append(d)
        }
        #expect(try await store.audits(task: task, limit: 10).isEmpty, "nothing answered yet")
        for (i, answer) in ["a", "out_of_scope"].enumerated() {
            let item = try #require(try await store.claim(reviewer: "ana", task: task, now: Date(timeIntervalSince1970: 200 + Double(i)), lease: 60))
            #expect(item.reason == auditReason)
            _ = try await store.resolve(decisionId: item.decisionId, reviewer: "ana", label: answer, fieldsJSON: nil, outcome: "x",
                                        now: Date(timeIntervalSince1970: 200 + Double(i)))
        }
        let audits = try await store.audits(task: task, limit: 10)
        #expect(audits.map { "\($0.accepted)>\($0.reviewer)" } == ["b>out_of_scope", "a>a"])
        #expect(try await store.audits(task: task, limit: 1).count == 1)
        // Per risk class (the labels of one class) and per adapter version.
        #expect(try await store.audits(task: task, labels: ["b"], limit: 10).map(\.accepted) == ["b"])
        #expect(try await store.audits(task: task, labels: ["a", "zz"], limit: 10).map(\.accepted) == ["a"])
        #expect(try await store.audits(task: task, labels: [], limit: 10).isEmpty)
        #expect(try await store.audits(task: task, adapterVersion: "v", limit: 10).count == 2)
        #expect(try await store.audits(task: task, adapterVersion: "w", limit: 10).isEmpty)
        #expect(try await store.recentResolved(task: task, limit: 10).allSatisfy { $0.reason != auditReason }, "audits are not drift's corrections")
        #expect(try await store.audits(task: task + "-other", limit: 10).isEmpty)

        // Adapter versions.
        func version(_ v: String, at t: Double) -> AdapterVersion {
            AdapterVersion(task: task, version: v, createdAt: Date(timeIntervalSince1970: t), status: .candidate, source: "retrain", body: "{\"v\":\"\(v)\"}",
                           gateJSON: #"{"checks":[]}"#)
        }
        #expect(try await store.addAdapter(version("v1", at: 1)))
        #expect(try await store.addAdapter(version("v1", at: 1)) == false)
        try await store.addAdapter(version("v2", at: 2))
        try await store.activate(task: task, version: "v1", now: Date(timeIntervalSince1970: 5))
        try await store.activate(task: task, version: "v2", now: Date(timeIntervalSince1970: 6))
        var statuses = Dictionary(uniqueKeysWithValues: try await store.adapterVersions(task: task).map { ($0.version, $0.status) })
        #expect(statuses == ["v1": .retired, "v2": .active])
        #expect(try await store.servingAdapters().filter { $0.task == task }.map(\.version) == ["v2"])
        let back = try await store.rollback(task: task, now: Date(timeIntervalSince1970: 7))
        #expect(back.from == "v2" && back.to == "v1")
        statuses = Dictionary(uniqueKeysWithValues: try await store.adapterVersions(task: task).map { ($0.version, $0.status) })
        #expect(statuses == ["v1": .active, "v2": .rolledBack])
        await #expect(throws: StoreError.self) { _ = try await store.rollback(task: task) }   // nothing earlier
        await #expect(throws: StoreError.self) { try await store.setShadow(task: task, version: "v2") }   // rolled back: not a candidate
        await #expect(throws: StoreError.self) { try await store.activate(task: task, version: "nope") }
        try await store.addAdapter(version("v3", at: 3))
        try await store.setShadow(task: task, version: "v3")
        #expect(Set(try await store.servingAdapters().filter { $0.task == task }.map { "\($0.version):\($0.status.rawValue)" }) == ["v1:active", "v3:shadow"])

        // Shadow decisions beside what was served and what the reviewer said.
        try await store.recordShadow([ShadowDecision(decisionId: reviewedLive.id, task: task, adapterVersion: "v3", label: "legal", confidence: 0.9,
                                                     route: "review", reason: "uncertified", createdAt: Date(timeIntervalSince1970: 31)),
                                      ShadowDecision(decisionId: plain.id, task: task, adapterVersion: "v3", label: "a", confidence: 0.99,
                                                     route: "accepted", reason: "confident", createdAt: Date(timeIntervalSince1970: 41))])
        let shadow = try await store.shadowComparisons(task: task, version: "v3")
        #expect(shadow.map(\.reviewedLabel) == ["legal", nil] && shadow.map(\.servedRoute) == ["review", "accepted"])
        try await store.setShadow(task: task, version: nil)
        #expect(try await store.servingAdapters().filter { $0.task == task }.map(\.version) == ["v1"])
    }
}

@Suite struct LearningStoreTests {
    @Test func sqlite() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-\(UUID().uuidString).sqlite").path
        try await LearningContract.run(try SQLiteStore(path: path), task: "t")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["MICROSCALE_TEST_POSTGRES_URL"] != nil, "needs MICROSCALE_TEST_POSTGRES_URL (make test sets it)"))
    func postgres() async throws {
        let store = try await PostgresStore(url: ProcessInfo.processInfo.environment["MICROSCALE_TEST_POSTGRES_URL"]!)
        try await LearningContract.run(store, task: "t-\(UUID().uuidString)")
        await store.close()
    }

    /// A log written before the learning loop (no origin or teacher_label column) opens and gains them.
    @Test func oldLogsGainTheNewColumns() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-\(UUID().uuidString).sqlite").path
        do {
            let db = try SQLiteConnection(path: path)
            try db.execute("""
                CREATE TABLE decisions (id TEXT PRIMARY KEY, task TEXT NOT NULL, created_at REAL NOT NULL, input TEXT, input_sha256 TEXT NOT NULL,
                  label TEXT, fields TEXT, confidence REAL, route TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, tier TEXT NOT NULL,
                  draft TEXT, escalation TEXT, latency TEXT NOT NULL, model_version TEXT NOT NULL, adapter_version TEXT)
                """)
            try db.execute("INSERT INTO decisions VALUES ('old', 't', 1, 'x', 'h', 'a', NULL, 0.5, 'accepted', 'confident', 'd', 'small', NULL, NULL, '{}', 'm', 'v')")
        }
        let store = try SQLiteStore(path: path)
        let old = try #require(try await store.decision(id: "old"))
        #expect(old.origin == nil && old.teacherLabel == nil && old.label == "a")
        #expect(try await store.recentDecisions(task: "t", limit: 5).map(\.id) == ["old"])
    }
}
