import Foundation

/// Where an adapter version stands.
public enum AdapterStatus: String, Sendable, CaseIterable, Codable {
    /// Trained, not serving.
    case candidate
    /// Scored on live traffic beside the active version, never routing.
    case shadow
    /// Serving.
    case active
    /// Served before; the version a rollback returns to is the newest of these.
    case retired
    /// Taken out of service by a rollback.
    case rolledBack = "rolled_back"
}

/// One version of a task's adapter as the store keeps it: the adapter file's bytes and what the promotion gate said.
public struct AdapterVersion: Sendable, Equatable {
    /// Task name.
    public var task: String
    /// SHA-256 of `body` (the same digest decisions record as their adapter version).
    public var version: String
    /// When it was stored.
    public var createdAt: Date
    /// Where it stands.
    public var status: AdapterStatus
    /// How it was made: `file` (registered by `serve` from the task's adapter file) or `retrain`.
    public var source: String
    /// The adapter file (JSON).
    public var body: String
    /// The promotion gate's result (JSON), when it went through one.
    public var gateJSON: String?
    /// The promotion report's path, when one was written.
    public var report: String?
    /// When it last became active.
    public var promotedAt: Date?

    /// A version from its parts.
    public init(task: String, version: String, createdAt: Date, status: AdapterStatus, source: String, body: String,
                gateJSON: String? = nil, report: String? = nil, promotedAt: Date? = nil) {
        self.task = task; self.version = version; self.createdAt = createdAt; self.status = status; self.source = source
        self.body = body; self.gateJSON = gateJSON; self.report = report; self.promotedAt = promotedAt
    }
}

/// A candidate adapter's decision on a live input, logged beside the decision that was served (never routing).
public struct ShadowDecision: Sendable, Equatable {
    /// The served decision.
    public var decisionId: String
    /// Task name.
    public var task: String
    /// The candidate's version.
    public var adapterVersion: String
    /// Its label, confidence, route (accepted, escalated, review) and reason.
    public var label: String
    public var confidence: Double
    public var route: String
    public var reason: String
    /// When.
    public var createdAt: Date

    /// A shadow decision from its parts.
    public init(decisionId: String, task: String, adapterVersion: String, label: String, confidence: Double, route: String, reason: String,
                createdAt: Date) {
        self.decisionId = decisionId; self.task = task; self.adapterVersion = adapterVersion; self.label = label
        self.confidence = confidence; self.route = route; self.reason = reason; self.createdAt = createdAt
    }
}

/// A shadow decision with what was served and what a reviewer said.
public struct ShadowComparison: Sendable {
    /// The candidate's decision.
    public var shadow: ShadowDecision
    /// The served label, route and tier.
    public var servedLabel: String?
    public var servedRoute: String
    public var servedTier: String
    /// The reviewer's label, when the item was reviewed.
    public var reviewedLabel: String?
}

/// A label a teacher gave: the larger tier's answer to a live escalation, or a `microscale distill` answer.
public struct TeacherLabel: Sendable, Equatable {
    /// The decision row it lives in.
    public var decisionId: String
    /// The input (nil when the log keeps only a hash or a redacted form: then it cannot train).
    public var text: String?
    /// SHA-256 of the input.
    public var inputSHA256: String
    /// The teacher's label.
    public var label: String
    /// nil: live traffic; `distill`: offline.
    public var origin: String?
    /// The student's draft (JSON) and the teacher's call (JSON: endpoint, model, prompt digest, usage).
    public var draftJSON: String?
    public var escalationJSON: String?
    /// When.
    public var createdAt: Date
}

/// Why a review item was queued to check a teacher's label (the `reason` column of the review queue): chosen because
/// the teacher and the small model disagree (or the small model was unsure).
public let teacherCheckReason = "teacher_check"
/// A teacher's label checked because the input's hash fell in the sample: independent of either model, so the
/// agreement measured on these is unbiased.
public let teacherSampleReason = "teacher_sample"

/// An accepted decision sent to review at random (`audit.share`) to check the guarantee on live traffic.
public let auditReason = "audit"

extension DecisionStore {
    /// The newest `limit` answered audits of a task, newest first: the label accepted and the reviewer's; only of
    /// decisions accepted as one of `labels` (nil: any) by `adapterVersion` (nil: any).
    public func audits(task: String, labels: [String]? = nil, adapterVersion: String? = nil, limit: Int) async throws
        -> [(accepted: String, reviewer: String)]
    {
        if let labels, labels.isEmpty { return [] }
        let inList = (labels ?? []).indices.map { "$\($0 + 5)" }.joined(separator: ", ")
        return try await transact([StoreStatement("""
            SELECT d.label, r.resolved_label FROM reviews r JOIN decisions d ON d.id = r.decision_id
            WHERE r.task = $1 AND r.reason = $2 AND r.status = 'resolved' AND d.label IS NOT NULL AND r.resolved_label IS NOT NULL
            AND (CAST($3 AS TEXT) IS NULL OR d.adapter_version = CAST($3 AS TEXT))\(labels == nil ? "" : " AND d.label IN (\(inList))")
            ORDER BY r.resolved_at DESC, r.decision_id LIMIT $4
            """, [.text(task), .text(auditReason), adapterVersion.map(StoreValue.text) ?? .null, .int(limit)] + (labels ?? []).map(StoreValue.text))])[0]
            .map { (try $0.required("label"), try $0.required("resolved_label")) }
    }

    /// SHA-256 of every input `microscale distill` has a teacher's answer for, for task `task`.
    public func distilledInputs(task: String) async throws -> Set<String> {
        let rows = try await transact([StoreStatement(
            "SELECT input_sha256 FROM decisions WHERE task = $1 AND origin = 'distill' AND teacher_label IS NOT NULL", [.text(task)])])[0]
        return Set(try rows.map { try $0.required("input_sha256") })
    }

    /// Every teacher label of a task, oldest first: decisions the larger tier answered (live escalations and distilled
    /// items), whatever route they took afterwards.
    public func teacherLabels(task: String) async throws -> [TeacherLabel] {
        let rows = try await transact([StoreStatement(
            "SELECT id, input, input_sha256, teacher_label, origin, draft, escalation, created_at FROM decisions WHERE task = $1 AND teacher_label IS NOT NULL ORDER BY created_at, id",
            [.text(task)])])[0]
        return try rows.map {
            TeacherLabel(decisionId: try $0.required("id"), text: try $0.text("input"), inputSHA256: try $0.required("input_sha256"),
                         label: try $0.required("teacher_label"), origin: try $0.text("origin"), draftJSON: try $0.text("draft"),
                         escalationJSON: try $0.text("escalation"), createdAt: try $0.date("created_at") ?? Date(timeIntervalSince1970: 0))
        }
    }

    /// Stores decisions in one transaction (distilled items arrive in groups).
    public func record(_ decisions: [DecisionRecord]) async throws {
        guard !decisions.isEmpty else { return }
        _ = try await transact(decisions.map { StoreStatement(SQL.insertDecision, SQL.decisionValues($0)) })
    }

    /// Queues review items for decisions already stored; an item already queued for the same decision is left as it is.
    public func queueReviews(_ items: [ReviewItem]) async throws {
        guard !items.isEmpty else { return }
        _ = try await transact(items.map { StoreStatement(SQL.insertReview + " ON CONFLICT (decision_id) DO NOTHING", SQL.reviewValues($0)) })
    }

    /// Review items of a task queued for `reason`, oldest first.
    public func reviewItems(task: String, reason: String) async throws -> [ReviewItem] {
        try await transact([StoreStatement(
            "SELECT \(SQL.reviewColumns) FROM reviews WHERE task = $1 AND reason = $2 ORDER BY created_at, decision_id",
            [.text(task), .text(reason)])])[0].map { try $0.review() }
    }

    /// Reviewers' answers to inputs a teacher had labelled: (teacher's label, reviewer's label), oldest first.
    public func teacherReviews(task: String) async throws -> [(teacher: String, reviewer: String, reason: String)] {
        try await transact([StoreStatement("""
            SELECT d.teacher_label, r.resolved_label, r.reason FROM reviews r JOIN decisions d ON d.id = r.decision_id
            WHERE d.task = $1 AND d.teacher_label IS NOT NULL AND r.status = 'resolved' AND r.resolved_label IS NOT NULL ORDER BY r.resolved_at
            """, [.text(task)])])[0].map { (try $0.required("teacher_label"), try $0.required("resolved_label"), try $0.required("reason")) }
    }

    /// Reviewers' answers with why each item came to review (its `reason`), oldest first.
    public func reviewedExamples(task: String) async throws -> [(example: LabelledExample, reason: String)] {
        try await transact([StoreStatement("""
            SELECT e.task, e.text, e.label, e.fields, e.source, e.decision_id, e.reviewer, e.created_at, r.reason
            FROM examples e JOIN reviews r ON r.decision_id = e.decision_id WHERE e.task = $1 ORDER BY e.created_at, e.decision_id
            """, [.text(task)])])[0].map { (try $0.example(), try $0.required("reason")) }
    }

    // MARK: Adapter versions

    static var adapterColumns: String { "task, version, created_at, status, source, body, gate, report, promoted_at" }

    /// Every stored version of a task's adapter, newest first.
    public func adapterVersions(task: String) async throws -> [AdapterVersion] {
        try await transact([StoreStatement(
            "SELECT \(Self.adapterColumns) FROM adapters WHERE task = $1 ORDER BY created_at DESC, version", [.text(task)])])[0].map(Self.adapterVersion)
    }

    /// One version (nil when the store has no such version of the task).
    public func adapterVersion(task: String, version: String) async throws -> AdapterVersion? {
        try await transact([StoreStatement(
            "SELECT \(Self.adapterColumns) FROM adapters WHERE task = $1 AND version = $2", [.text(task), .text(version)])])[0]
            .first.map(Self.adapterVersion)
    }

    /// The active and shadow version of every task (what a running service polls): (task, version, status).
    public func servingAdapters() async throws -> [(task: String, version: String, status: AdapterStatus)] {
        try await transact([StoreStatement("SELECT task, version, status FROM adapters WHERE status IN ('active', 'shadow')")])[0].map {
            (try $0.required("task"), try $0.required("version"), AdapterStatus(rawValue: try $0.required("status")) ?? .candidate)
        }
    }

    /// Records a new gate verdict (and report) for a candidate that a retrain made again (the same digest).
    public func updateGate(task: String, version: String, gateJSON: String, report: String?) async throws {
        _ = try await transact([StoreStatement(
            "UPDATE adapters SET gate = $3, report = $4 WHERE task = $1 AND version = $2 AND status IN ('candidate', 'shadow')",
            [.text(task), .text(version), .text(gateJSON), .optionalText(report)])])
    }

    /// Stores a version; storing one that exists already (same task and digest) changes nothing and returns false.
    @discardableResult
    public func addAdapter(_ v: AdapterVersion) async throws -> Bool {
        let rows = try await transact([StoreStatement(
            "INSERT INTO adapters (\(Self.adapterColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (task, version) DO NOTHING RETURNING version",
            [.text(v.task), .text(v.version), .real(v.createdAt.timeIntervalSince1970), .text(v.status.rawValue), .text(v.source),
             .text(v.body), .optionalText(v.gateJSON), .optionalText(v.report), .optionalReal(v.promotedAt?.timeIntervalSince1970)])])
        return !rows[0].isEmpty
    }

    /// Makes `version` the task's active adapter (the one active before becomes `retired`, the version a rollback
    /// returns to), atomically. The gate is the caller's: this only moves the statuses.
    public func activate(task: String, version: String, now: Date = Date()) async throws {
        guard let target = try await adapterVersion(task: task, version: version) else {
            throw StoreError.notFound("no adapter version \(version) of task \(task) in the store")
        }
        guard target.status != .active else { return }
        _ = try await transact([
            StoreStatement("UPDATE adapters SET status = 'retired' WHERE task = $1 AND status = 'active'", [.text(task)]),
            StoreStatement("UPDATE adapters SET status = 'active', promoted_at = $3 WHERE task = $1 AND version = $2 RETURNING version",
                           [.text(task), .text(version), .real(now.timeIntervalSince1970)], requireRows: "version \(version) of \(task) is gone"),
        ])
    }

    /// Takes the active version out of service (`rolled_back`) and makes the previously active one active again;
    /// returns (from, to).
    public func rollback(task: String, now: Date = Date()) async throws -> (from: String, to: String) {
        let versions = try await adapterVersions(task: task)
        guard let current = versions.first(where: { $0.status == .active }) else {
            throw StoreError.notFound("task \(task) has no active adapter version in the store")
        }
        guard let previous = versions.filter({ $0.status == .retired })
            .max(by: { ($0.promotedAt ?? .distantPast) < ($1.promotedAt ?? .distantPast) }) else {
            throw StoreError.conflict("task \(task) has no earlier active version to roll back to (only \(current.version.prefix(12)) was ever active)")
        }
        // Both updates are conditional on what was read: if another writer moved the versions meanwhile, the
        // transaction is rolled back and nothing changes.
        let changed = "the versions of \(task) changed meanwhile; look again with microscale adapters list"
        _ = try await transact([
            StoreStatement("UPDATE adapters SET status = 'rolled_back' WHERE task = $1 AND version = $2 AND status = 'active' RETURNING version",
                           [.text(task), .text(current.version)], requireRows: changed),
            StoreStatement("UPDATE adapters SET status = 'active', promoted_at = $3 WHERE task = $1 AND version = $2 AND status = 'retired' RETURNING version",
                           [.text(task), .text(previous.version), .real(now.timeIntervalSince1970)], requireRows: changed),
        ])
        return (current.version, previous.version)
    }

    /// Runs `version` in shadow (nil: stops any shadow). A shadowed version goes back to `candidate` when stopped.
    public func setShadow(task: String, version: String?) async throws {
        var statements = [StoreStatement("UPDATE adapters SET status = 'candidate' WHERE task = $1 AND status = 'shadow'", [.text(task)])]
        if let version {
            guard let target = try await adapterVersion(task: task, version: version) else {
                throw StoreError.notFound("no adapter version \(version) of task \(task) in the store")
            }
            guard target.status == .candidate || target.status == .shadow else {
                throw StoreError.conflict("version \(version.prefix(12)) is \(target.status.rawValue); only a candidate can run in shadow")
            }
            statements.append(StoreStatement("UPDATE adapters SET status = 'shadow' WHERE task = $1 AND version = $2", [.text(task), .text(version)]))
        }
        _ = try await transact(statements)
    }

    static func adapterVersion(_ row: StoredRow) throws -> AdapterVersion {
        AdapterVersion(task: try row.required("task"), version: try row.required("version"), createdAt: try row.date("created_at") ?? Date(timeIntervalSince1970: 0),
                       status: AdapterStatus(rawValue: try row.required("status")) ?? .candidate, source: try row.required("source"),
                       body: try row.required("body"), gateJSON: try row.text("gate"), report: try row.text("report"),
                       promotedAt: try row.date("promoted_at"))
    }

    // MARK: Shadow

    /// Logs shadow decisions.
    public func recordShadow(_ items: [ShadowDecision]) async throws {
        guard !items.isEmpty else { return }
        _ = try await transact(items.map {
            StoreStatement("INSERT INTO shadow_decisions (decision_id, task, adapter_version, label, confidence, route, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (decision_id) DO NOTHING",
                           [.text($0.decisionId), .text($0.task), .text($0.adapterVersion), .text($0.label), .real($0.confidence), .text($0.route),
                            .text($0.reason), .real($0.createdAt.timeIntervalSince1970)])
        })
    }

    /// A version's shadow decisions beside what was served and what reviewers said, oldest first.
    public func shadowComparisons(task: String, version: String) async throws -> [ShadowComparison] {
        let rows = try await transact([StoreStatement("""
            SELECT s.decision_id, s.task, s.adapter_version, s.label, s.confidence, s.route AS shadow_route, s.reason AS shadow_reason, s.created_at,
                   d.label AS served_label, d.route AS served_route, d.tier AS served_tier, r.resolved_label
            FROM shadow_decisions s JOIN decisions d ON d.id = s.decision_id LEFT JOIN reviews r ON r.decision_id = s.decision_id AND r.status = 'resolved'
            WHERE s.task = $1 AND s.adapter_version = $2 ORDER BY s.created_at
            """, [.text(task), .text(version)])])[0]
        return try rows.map {
            ShadowComparison(
                shadow: ShadowDecision(decisionId: try $0.required("decision_id"), task: try $0.required("task"), adapterVersion: try $0.required("adapter_version"),
                                       label: try $0.required("label"), confidence: try $0.real("confidence") ?? 0, route: try $0.required("shadow_route"),
                                       reason: try $0.required("shadow_reason"), createdAt: try $0.date("created_at") ?? Date(timeIntervalSince1970: 0)),
                servedLabel: try $0.text("served_label"), servedRoute: try $0.required("served_route"), servedTier: try $0.required("served_tier"),
                reviewedLabel: try $0.text("resolved_label"))
        }
    }
}
