import Foundation

/// One decision as the log keeps it. Nested parts (fields, draft, escalation, latencies) are JSON text, so the store
/// knows nothing of the cascade's types.
public struct DecisionRecord: Sendable, Equatable {
    /// Decision id (a UUID).
    public var id: String
    /// Task name.
    public var task: String
    /// When it was decided.
    public var createdAt: Date
    /// The input as configured: the full text, a redacted form, or nil (hash only).
    public var input: String?
    /// SHA-256 of the input text.
    public var inputSHA256: String
    /// The answered label (classification).
    public var label: String?
    /// The answered fields (extraction), JSON.
    public var fieldsJSON: String?
    /// The small model's calibrated confidence.
    public var confidence: Double?
    /// accepted, escalated or review.
    public var route: String
    /// Why.
    public var reason: String
    /// The reason in words.
    public var detail: String
    /// Who answered: small, large or human.
    public var tier: String
    /// The small model's draft when another tier answered, JSON.
    public var draftJSON: String?
    /// What the escalation tier did, JSON.
    public var escalationJSON: String?
    /// Milliseconds per stage, JSON.
    public var latencyJSON: String
    /// Digest of the model weights.
    public var modelVersion: String
    /// Digest of the adapter file.
    public var adapterVersion: String?
    /// Tokens the backbone's tokenizer made of the input (classification; nil when not measured).
    public var inputTokens: Int?
    /// Tokens the backbone read: fewer than ``inputTokens`` when the input was truncated to the task's limit.
    public var tokensKept: Int?
    /// Where the input came from: nil for live traffic, `distill` for an item a teacher labelled offline
    /// (`microscale distill`). Drift and audits read live traffic only.
    public var origin: String?
    /// The label the larger tier (a teacher) answered, when it answered (classification): training data, and what
    /// reviewers' agreement with the teacher is measured on, whatever route the decision took afterwards.
    public var teacherLabel: String?

    /// A record from its parts.
    public init(id: String, task: String, createdAt: Date, input: String?, inputSHA256: String, label: String?, fieldsJSON: String?,
                confidence: Double?, route: String, reason: String, detail: String, tier: String, draftJSON: String?,
                escalationJSON: String?, latencyJSON: String, modelVersion: String, adapterVersion: String?,
                inputTokens: Int? = nil, tokensKept: Int? = nil, origin: String? = nil, teacherLabel: String? = nil) {
        self.inputTokens = inputTokens; self.tokensKept = tokensKept; self.origin = origin; self.teacherLabel = teacherLabel
        self.id = id; self.task = task; self.createdAt = createdAt; self.input = input; self.inputSHA256 = inputSHA256
        self.label = label; self.fieldsJSON = fieldsJSON; self.confidence = confidence; self.route = route; self.reason = reason
        self.detail = detail; self.tier = tier; self.draftJSON = draftJSON; self.escalationJSON = escalationJSON
        self.latencyJSON = latencyJSON; self.modelVersion = modelVersion; self.adapterVersion = adapterVersion
    }
}

/// Where a review item is.
public enum ReviewStatus: String, Sendable, CaseIterable, Codable {
    /// Waiting for a reviewer.
    case pending
    /// A reviewer holds it (until the lease runs out).
    case claimed
    /// Answered.
    case resolved
}

/// An input waiting for (or answered by) a person. It keeps the text whatever the log's input setting: a person has to
/// read it.
public struct ReviewItem: Sendable, Equatable {
    /// The decision it belongs to.
    public var decisionId: String
    /// Task name.
    public var task: String
    /// The input text.
    public var text: String
    /// The small model's label.
    public var draftLabel: String?
    /// The small model's fields (extraction), JSON.
    public var draftFieldsJSON: String?
    /// The small model's confidence.
    public var confidence: Double?
    /// Why it came to review.
    public var reason: String
    /// The reason in words.
    public var detail: String
    /// Where it is.
    public var status: ReviewStatus
    /// The reviewer holding or having answered it.
    public var claimedBy: String?
    /// When it was claimed.
    public var claimedAt: Date?
    /// The reviewer's label.
    public var resolvedLabel: String?
    /// The reviewer's fields, JSON.
    public var resolvedFieldsJSON: String?
    /// confirmed or corrected.
    public var outcome: String?
    /// Who answered.
    public var resolvedBy: String?
    /// When.
    public var resolvedAt: Date?
    /// When it entered the queue.
    public var createdAt: Date

    /// A pending item.
    public init(decisionId: String, task: String, text: String, draftLabel: String?, draftFieldsJSON: String?, confidence: Double?,
                reason: String, detail: String, createdAt: Date) {
        self.decisionId = decisionId; self.task = task; self.text = text; self.draftLabel = draftLabel
        self.draftFieldsJSON = draftFieldsJSON; self.confidence = confidence; self.reason = reason; self.detail = detail
        status = .pending; self.createdAt = createdAt
    }
}

/// A reviewer's answer kept as training and evaluation data.
public struct LabelledExample: Sendable, Equatable {
    /// Task name.
    public var task: String
    /// The input text.
    public var text: String
    /// The label (classification).
    public var label: String?
    /// The fields (extraction), JSON.
    public var fieldsJSON: String?
    /// confirmed or corrected.
    public var source: String
    /// The decision it came from.
    public var decisionId: String
    /// Who answered.
    public var reviewer: String
    /// When.
    public var createdAt: Date
}

/// Store failures, with what to do.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    /// The store URL is not understood.
    case badURL(String)
    /// The database refused or failed an operation.
    case database(String)
    /// No such item.
    case notFound(String)
    /// The item is in a state that forbids the operation.
    case conflict(String)

    public var description: String {
        switch self {
        case let .badURL(u): "store URL '\(u)' is not understood: use sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        case let .database(m): "database error: \(m)"
        case let .notFound(m): m
        case let .conflict(m): m
        }
    }
}

/// The decision log and the review queue. Every method is atomic; a decision and its review item are stored together.
public protocol DecisionStore: Sendable {
    /// "sqlite" or "postgres".
    var kind: String { get }
    /// Stores a decision (and its review item) durably; returns only once committed.
    func record(_ decision: DecisionRecord, review: ReviewItem?) async throws
    /// A decision by id.
    func decision(id: String) async throws -> DecisionRecord?
    /// A review item by decision id.
    func reviewItem(decisionId: String) async throws -> ReviewItem?
    /// Review items, oldest first.
    func reviewItems(task: String?, status: ReviewStatus?, limit: Int) async throws -> [ReviewItem]
    /// Hands the oldest pending item (or one whose claim expired) to `reviewer`; nil when there is none. No item is
    /// handed to two reviewers while a claim holds, across every process sharing the store.
    func claim(reviewer: String, task: String?, now: Date, lease: TimeInterval) async throws -> ReviewItem?
    /// Answers an item claimed by `reviewer` and stores the answer as a labelled example.
    func resolve(decisionId: String, reviewer: String, label: String?, fieldsJSON: String?, outcome: String, now: Date) async throws -> ReviewItem
    /// Labelled examples from reviews, oldest first.
    func examples(task: String?, limit: Int) async throws -> [LabelledExample]
    /// The newest decisions of a task, newest first.
    func recentDecisions(task: String, limit: Int) async throws -> [DecisionRecord]
    /// The newest resolved review items of a task, newest first.
    func recentResolved(task: String, limit: Int) async throws -> [ReviewItem]
    /// Runs `statements` in one transaction and returns each one's rows (the learning loop's tables are built on this).
    func transact(_ statements: [StoreStatement]) async throws -> [[StoredRow]]
    /// Checks the store answers.
    func ping() async throws
    /// Closes connections.
    func close() async
}

/// The SQL both stores share (SQLite and PostgreSQL read `$1`-style parameters alike here).
enum SQL {
    static let decisionColumns = "id, task, created_at, input, input_sha256, label, fields, confidence, route, reason, detail, tier, draft, escalation, latency, model_version, adapter_version, input_tokens, tokens_kept, origin, teacher_label"
    static let reviewColumns = "decision_id, task, text, draft_label, draft_fields, confidence, reason, detail, status, claimed_by, claimed_at, resolved_label, resolved_fields, outcome, resolved_by, resolved_at, created_at"
    static let exampleColumns = "task, text, label, fields, source, decision_id, reviewer, created_at"

    /// Tables, with `real` standing for the database's floating-point type.
    static func schema(real: String) -> [String] {
        [
            """
            CREATE TABLE IF NOT EXISTS decisions (id TEXT PRIMARY KEY, task TEXT NOT NULL, created_at \(real) NOT NULL, input TEXT,
              input_sha256 TEXT NOT NULL, label TEXT, fields TEXT, confidence \(real), route TEXT NOT NULL, reason TEXT NOT NULL,
              detail TEXT NOT NULL, tier TEXT NOT NULL, draft TEXT, escalation TEXT, latency TEXT NOT NULL, model_version TEXT NOT NULL,
              adapter_version TEXT, input_tokens \(real), tokens_kept \(real))
            """,
            "CREATE INDEX IF NOT EXISTS decisions_task_time ON decisions (task, created_at)",
            """
            CREATE TABLE IF NOT EXISTS reviews (decision_id TEXT PRIMARY KEY REFERENCES decisions(id), task TEXT NOT NULL, text TEXT NOT NULL,
              draft_label TEXT, draft_fields TEXT, confidence \(real), reason TEXT NOT NULL, detail TEXT NOT NULL, status TEXT NOT NULL,
              claimed_by TEXT, claimed_at \(real), resolved_label TEXT, resolved_fields TEXT, outcome TEXT, resolved_by TEXT,
              resolved_at \(real), created_at \(real) NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS reviews_status_time ON reviews (status, created_at)",
            """
            CREATE TABLE IF NOT EXISTS examples (decision_id TEXT PRIMARY KEY REFERENCES reviews(decision_id), task TEXT NOT NULL,
              text TEXT NOT NULL, label TEXT, fields TEXT, source TEXT NOT NULL, reviewer TEXT NOT NULL, created_at \(real) NOT NULL)
            """,
            """
            CREATE TABLE IF NOT EXISTS adapters (task TEXT NOT NULL, version TEXT NOT NULL, created_at \(real) NOT NULL, status TEXT NOT NULL,
              source TEXT NOT NULL, body TEXT NOT NULL, gate TEXT, report TEXT, promoted_at \(real), PRIMARY KEY (task, version))
            """,
            """
            CREATE TABLE IF NOT EXISTS shadow_decisions (decision_id TEXT PRIMARY KEY, task TEXT NOT NULL, adapter_version TEXT NOT NULL,
              label TEXT NOT NULL, confidence \(real) NOT NULL, route TEXT NOT NULL, reason TEXT NOT NULL, created_at \(real) NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS shadow_task_version ON shadow_decisions (task, adapter_version)",
            // At most one active version per task, whatever two writers race to do.
            "CREATE UNIQUE INDEX IF NOT EXISTS adapters_one_active ON adapters (task) WHERE status = 'active'",
        ]
    }

    /// Columns added after the first release, for logs created before them: (table, column, type).
    static func addedColumns(real: String) -> [(table: String, column: String, type: String)] {
        [("decisions", "input_tokens", real), ("decisions", "tokens_kept", real), ("decisions", "origin", "TEXT"), ("decisions", "teacher_label", "TEXT")]
    }

    static let insertDecision = "INSERT INTO decisions (\(decisionColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
    static let insertReview = "INSERT INTO reviews (\(reviewColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    static let insertExample = "INSERT INTO examples (\(exampleColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"

    static func decisionValues(_ d: DecisionRecord) -> [Value] {
        [.text(d.id), .text(d.task), .real(d.createdAt.timeIntervalSince1970), .optionalText(d.input), .text(d.inputSHA256),
         .optionalText(d.label), .optionalText(d.fieldsJSON), .optionalReal(d.confidence), .text(d.route), .text(d.reason),
         .text(d.detail), .text(d.tier), .optionalText(d.draftJSON), .optionalText(d.escalationJSON), .text(d.latencyJSON),
         .text(d.modelVersion), .optionalText(d.adapterVersion), .optionalReal(d.inputTokens.map(Double.init)),
         .optionalReal(d.tokensKept.map(Double.init)), .optionalText(d.origin), .optionalText(d.teacherLabel)]
    }

    static func reviewValues(_ r: ReviewItem) -> [Value] {
        [.text(r.decisionId), .text(r.task), .text(r.text), .optionalText(r.draftLabel), .optionalText(r.draftFieldsJSON),
         .optionalReal(r.confidence), .text(r.reason), .text(r.detail), .text(r.status.rawValue), .optionalText(r.claimedBy),
         .optionalReal(r.claimedAt?.timeIntervalSince1970), .optionalText(r.resolvedLabel), .optionalText(r.resolvedFieldsJSON),
         .optionalText(r.outcome), .optionalText(r.resolvedBy), .optionalReal(r.resolvedAt?.timeIntervalSince1970),
         .real(r.createdAt.timeIntervalSince1970)]
    }

    static func exampleValues(_ e: LabelledExample) -> [Value] {
        [.text(e.task), .text(e.text), .optionalText(e.label), .optionalText(e.fieldsJSON), .text(e.source), .text(e.decisionId),
         .text(e.reviewer), .real(e.createdAt.timeIntervalSince1970)]
    }

    /// The claim: the oldest claimable item of the task (any task when `$1` is null), taken only if nobody took it since.
    /// PostgreSQL adds `FOR UPDATE SKIP LOCKED` so concurrent replicas pass over rows another is claiming.
    static func claim(lock: String) -> String {
        """
        UPDATE reviews SET status = 'claimed', claimed_by = $2, claimed_at = $3
        WHERE decision_id = (SELECT decision_id FROM reviews
                             WHERE (status = 'pending' OR (status = 'claimed' AND claimed_at < $4)) AND (CAST($1 AS TEXT) IS NULL OR task = CAST($1 AS TEXT))
                             ORDER BY created_at, decision_id LIMIT 1 \(lock))
          AND (status = 'pending' OR (status = 'claimed' AND claimed_at < $4))
        RETURNING \(reviewColumns)
        """
    }

    // The reads, the same text for both databases (`CAST(… AS TEXT)` lets PostgreSQL type a parameter that may be null).
    static let decisionById = "SELECT \(decisionColumns) FROM decisions WHERE id = $1"
    static let reviewById = "SELECT \(reviewColumns) FROM reviews WHERE decision_id = $1"
    static let reviewItems = """
        SELECT \(reviewColumns) FROM reviews
        WHERE (CAST($1 AS TEXT) IS NULL OR task = CAST($1 AS TEXT)) AND (CAST($2 AS TEXT) IS NULL OR status = CAST($2 AS TEXT))
        ORDER BY created_at, decision_id LIMIT $3
        """
    static let examples = """
        SELECT \(exampleColumns) FROM examples WHERE (CAST($1 AS TEXT) IS NULL OR task = CAST($1 AS TEXT)) ORDER BY created_at LIMIT $2
        """
    /// Live traffic only: items distilled offline are not decisions anyone waited for.
    static let recentDecisions = "SELECT \(decisionColumns) FROM decisions WHERE task = $1 AND origin IS NULL ORDER BY created_at DESC LIMIT $2"
    /// Reviews of the small model's decisions: checks of a teacher's labels measure the teacher, not drift, and audits
    /// of accepted decisions have their own figures (``auditReason``).
    static let recentResolved = "SELECT \(reviewColumns) FROM reviews WHERE task = $1 AND status = 'resolved' AND reason NOT IN ('teacher_check', 'teacher_sample', 'audit') ORDER BY resolved_at DESC LIMIT $2"

    static let resolve = """
        UPDATE reviews SET status = 'resolved', resolved_label = $3, resolved_fields = $4, outcome = $5, resolved_by = $2, resolved_at = $6
        WHERE decision_id = $1 AND status = 'claimed' AND claimed_by = $2
        RETURNING \(reviewColumns)
        """

    typealias Value = StoreValue
}

/// A value bound to a statement or read from a row.
public enum StoreValue: Sendable, Equatable {
    case text(String), real(Double), int(Int), null
    static func optionalText(_ s: String?) -> StoreValue { s.map(StoreValue.text) ?? .null }
    static func optionalReal(_ d: Double?) -> StoreValue { d.map(StoreValue.real) ?? .null }
}

/// One SQL statement with its `$N` parameters, written once for both databases.
public struct StoreStatement: Sendable {
    /// The SQL text.
    public var sql: String
    /// Its parameters, `$1` first.
    public var values: [StoreValue]
    /// The transaction is rolled back (``StoreError/conflict(_:)`` with this message) if the statement returns no row.
    public var requireRows: String?
    public init(_ sql: String, _ values: [StoreValue] = [], requireRows: String? = nil) {
        self.sql = sql; self.values = values; self.requireRows = requireRows
    }
}

/// A result row as column name → value.
public struct StoredRow: Row, Sendable {
    let values: [String: StoreValue]

    func text(_ column: String) throws -> String? {
        switch values[column] {
        case let .text(s): s
        case .null, nil: nil
        case let .real(d): String(d)
        case let .int(n): String(n)
        }
    }

    func real(_ column: String) throws -> Double? {
        switch values[column] {
        case let .real(d): d
        case let .int(n): Double(n)
        case let .text(s): Double(s)
        case .null, nil: nil
        }
    }
}

/// A result row, read by column name.
protocol Row {
    func text(_ column: String) throws -> String?
    func real(_ column: String) throws -> Double?
}

extension Row {
    func required(_ column: String) throws -> String {
        guard let v = try text(column) else { throw StoreError.database("column \(column) is null") }
        return v
    }

    func date(_ column: String) throws -> Date? { try real(column).map(Date.init(timeIntervalSince1970:)) }

    func decision() throws -> DecisionRecord {
        DecisionRecord(
            id: try required("id"), task: try required("task"), createdAt: try date("created_at") ?? Date(timeIntervalSince1970: 0),
            input: try text("input"), inputSHA256: try required("input_sha256"), label: try text("label"), fieldsJSON: try text("fields"),
            confidence: try real("confidence"), route: try required("route"), reason: try required("reason"), detail: try required("detail"),
            tier: try required("tier"), draftJSON: try text("draft"), escalationJSON: try text("escalation"), latencyJSON: try required("latency"),
            modelVersion: try required("model_version"), adapterVersion: try text("adapter_version"),
            inputTokens: try real("input_tokens").flatMap { Int(exactly: $0) }, tokensKept: try real("tokens_kept").flatMap { Int(exactly: $0) },
            origin: try text("origin"), teacherLabel: try text("teacher_label"))
    }

    func review() throws -> ReviewItem {
        var r = ReviewItem(
            decisionId: try required("decision_id"), task: try required("task"), text: try required("text"), draftLabel: try text("draft_label"),
            draftFieldsJSON: try text("draft_fields"), confidence: try real("confidence"), reason: try required("reason"),
            detail: try required("detail"), createdAt: try date("created_at") ?? Date(timeIntervalSince1970: 0))
        r.status = ReviewStatus(rawValue: try required("status")) ?? .pending
        r.claimedBy = try text("claimed_by")
        r.claimedAt = try date("claimed_at")
        r.resolvedLabel = try text("resolved_label")
        r.resolvedFieldsJSON = try text("resolved_fields")
        r.outcome = try text("outcome")
        r.resolvedBy = try text("resolved_by")
        r.resolvedAt = try date("resolved_at")
        return r
    }

    func example() throws -> LabelledExample {
        LabelledExample(task: try required("task"), text: try required("text"), label: try text("label"), fieldsJSON: try text("fields"),
                        source: try required("source"), decisionId: try required("decision_id"), reviewer: try required("reviewer"),
                        createdAt: try date("created_at") ?? Date(timeIntervalSince1970: 0))
    }
}

/// Opens the store a URL names: `sqlite:PATH` (or a path ending in .sqlite / .db) or `postgres://…`.
public func openStore(url: String) async throws -> any DecisionStore {
    if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") { return try await PostgresStore(url: url) }
    if url.hasPrefix("sqlite:") { return try SQLiteStore(path: String(url.dropFirst("sqlite:".count))) }
    if url.hasSuffix(".sqlite") || url.hasSuffix(".db") { return try SQLiteStore(path: url) }
    throw StoreError.badURL(redactedURL(url))
}

/// Runs `body`, cancelling it and throwing `error` if it takes longer than `seconds` (an unreachable database would
/// otherwise wait for the pool's own retries; a hanging HTTP peer for ever).
public func withDeadline<T: Sendable>(seconds: Double, orThrow error: @autoclosure @escaping @Sendable () -> any Error,
                                      _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            throw error()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
