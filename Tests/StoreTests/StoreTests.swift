import Foundation
import Testing
@testable import Store

/// A decision and, when `review`, its pending review item.
func sample(_ i: Int, task: String = "t", review: Bool = true, at time: Double = 1_000) -> (DecisionRecord, ReviewItem?) {
    let id = UUID().uuidString.lowercased()
    let created = Date(timeIntervalSince1970: time + Double(i))
    let d = DecisionRecord(
        id: id, task: task, createdAt: created, input: "input \(i)", inputSHA256: "h\(i)", label: "a", fieldsJSON: nil,
        confidence: 0.5, route: review ? "review" : "accepted", reason: "below_threshold", detail: "d", tier: review ? "human" : "small",
        draftJSON: nil, escalationJSON: nil, latencyJSON: "{}", modelVersion: "m", adapterVersion: "v")
    let r = review ? ReviewItem(decisionId: id, task: task, text: "input \(i)", draftLabel: "a", draftFieldsJSON: nil, confidence: 0.5,
                                reason: "below_threshold", detail: "d", createdAt: created) : nil
    return (d, r)
}

/// The contract every store keeps, run against SQLite always and PostgreSQL when `MICROSCALE_TEST_POSTGRES_URL` is set
/// (`make test` starts one on loopback and sets it).
enum StoreContract {
    static func run(_ store: any DecisionStore, task: String) async throws {
        // Round trip.
        let (d, r) = sample(0, task: task)
        try await store.record(d, review: r)
        #expect(try await store.decision(id: d.id) == d)
        #expect(try await store.reviewItem(decisionId: d.id)?.status == .pending)
        // A duplicate id is refused and leaves the first intact (nothing half-written).
        await #expect(throws: (any Error).self) { try await store.record(d, review: r) }
        #expect(try await store.decision(id: d.id) == d)
        let (accepted, _) = sample(1, task: task, review: false)
        try await store.record(accepted, review: nil)
        #expect(try await store.recentDecisions(task: task, limit: 10).map(\.id) == [accepted.id, d.id])

        // Claims: the oldest first, never the same item twice while the claim holds.
        let (d2, r2) = sample(2, task: task)
        try await store.record(d2, review: r2)
        let now = Date()
        let first = try #require(try await store.claim(reviewer: "ana", task: task, now: now, lease: 600))
        #expect(first.decisionId == d.id && first.status == .claimed && first.claimedBy == "ana")
        let second = try #require(try await store.claim(reviewer: "bo", task: task, now: now, lease: 600))
        #expect(second.decisionId == d2.id)
        #expect(try await store.claim(reviewer: "cy", task: task, now: now, lease: 600) == nil)
        // An expired claim can be taken over.
        let later = now.addingTimeInterval(601)
        let retaken = try #require(try await store.claim(reviewer: "cy", task: task, now: later, lease: 600))
        #expect(retaken.decisionId == d.id && retaken.claimedBy == "cy")

        // Resolving: only by the holder, once; the answer becomes a labelled example.
        await #expect(throws: StoreError.self) {
            _ = try await store.resolve(decisionId: d.id, reviewer: "ana", label: "b", fieldsJSON: nil, outcome: "corrected", now: later)
        }
        let resolved = try await store.resolve(decisionId: d.id, reviewer: "cy", label: "b", fieldsJSON: nil, outcome: "corrected", now: later)
        #expect(resolved.status == .resolved && resolved.resolvedLabel == "b" && resolved.outcome == "corrected")
        do {
            _ = try await store.resolve(decisionId: d.id, reviewer: "cy", label: "b", fieldsJSON: nil, outcome: "corrected", now: later)
            Issue.record("a second resolve succeeded")
        } catch let e as StoreError {
            #expect(e.description.contains("already resolved"))
        }
        await #expect(throws: StoreError.notFound("no review item for decision nope")) {
            _ = try await store.resolve(decisionId: "nope", reviewer: "cy", label: "b", fieldsJSON: nil, outcome: "corrected", now: later)
        }
        let examples = try await store.examples(task: task, limit: 10)
        #expect(examples.count == 1 && examples[0].label == "b" && examples[0].text == "input 0" && examples[0].source == "corrected")
        #expect(try await store.recentResolved(task: task, limit: 10).map(\.decisionId) == [d.id])
        #expect(try await store.reviewItems(task: task, status: .claimed, limit: 10).map(\.decisionId) == [d2.id])
        try await store.ping()
    }

    /// Several claimers on several store connections (standing for replicas) drain one queue: every item is handed
    /// out exactly once.
    static func concurrentClaims(_ stores: [any DecisionStore], task: String, items: Int = 120, claimersPerStore: Int = 6) async throws {
        var ids: [String] = []
        for i in 0..<items {
            let (d, r) = sample(i, task: task)
            try await stores[0].record(d, review: r)
            ids.append(d.id)
        }
        let now = Date()
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for (s, store) in stores.enumerated() {
                for c in 0..<claimersPerStore {
                    group.addTask {
                        var mine: [String] = []
                        while let item = try await store.claim(reviewer: "r\(s)-\(c)", task: task, now: now, lease: 600) {
                            mine.append(item.decisionId)
                        }
                        return mine
                    }
                }
            }
            var all: [String] = []
            for try await part in group { all += part }
            return all
        }
        #expect(claimed.count == items, "every item claimed once: \(claimed.count) claims for \(items) items")
        #expect(Set(claimed) == Set(ids))
    }
}

@Suite struct SQLiteStoreTests {
    func path() -> String { FileManager.default.temporaryDirectory.appendingPathComponent("microscale-\(UUID().uuidString).sqlite").path }

    @Test func contract() async throws {
        try await StoreContract.run(try SQLiteStore(path: path()), task: "t")
    }

    @Test func twoConnectionsOnOneFileNeverHandOutAnItemTwice() async throws {
        let file = path()
        try await StoreContract.concurrentClaims([try SQLiteStore(path: file), try SQLiteStore(path: file)], task: "c", items: 60)
    }

    @Test func decisionsSurviveReopening() async throws {
        let file = path()
        let (d, r) = sample(0)
        do {
            let store = try SQLiteStore(path: file)
            try await store.record(d, review: r)
        }
        let reopened = try SQLiteStore(path: file)
        #expect(try await reopened.decision(id: d.id) == d)
        let mode = try await reopened.journalMode()
        #expect(mode == "wal")
    }

    @Test func badURLsAreExplained() async throws {
        await #expect(throws: StoreError.self) { _ = try await openStore(url: "mysql://x") }
        do {
            _ = try await PostgresStore(url: "postgres://nobody:secret@127.0.0.1:1/none", connectTimeout: 2)
            Issue.record("connected to nothing")
        } catch {
            #expect("\(error)".contains("127.0.0.1:1") && !"\(error)".contains("secret"), "\(error)")
        }
    }
}

@Suite(.enabled(if: ProcessInfo.processInfo.environment["MICROSCALE_TEST_POSTGRES_URL"] != nil, "needs MICROSCALE_TEST_POSTGRES_URL (make test sets it)"))
struct PostgresStoreTests {
    let url = ProcessInfo.processInfo.environment["MICROSCALE_TEST_POSTGRES_URL"] ?? ""

    @Test func contract() async throws {
        let store = try await PostgresStore(url: url)
        try await StoreContract.run(store, task: "t-\(UUID().uuidString)")
        await store.close()
    }

    @Test func twoReplicasNeverHandOutAnItemTwice() async throws {
        let a = try await PostgresStore(url: url), b = try await PostgresStore(url: url)
        try await StoreContract.concurrentClaims([a, b], task: "c-\(UUID().uuidString)", items: 200, claimersPerStore: 8)
        await a.close()
        await b.close()
    }
}
