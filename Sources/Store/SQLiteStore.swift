import CSQLite
import Foundation

/// The embedded store: one SQLite file in WAL mode with full synchronous commits, so an acknowledged decision survives
/// a crash. Several processes may open the same file (writers take turns); across machines use PostgreSQL.
///
/// The connection lives on one serial queue (off Swift's cooperative pool: a commit waits for the disk). Decisions
/// arriving while a commit is under way are written together in the next transaction (group commit): each caller
/// still returns only after its own decision is on disk, and one fsync serves many of them.
public actor SQLiteStore: DecisionStore {
    public nonisolated let kind = "sqlite"
    private nonisolated let db: SQLiteConnection
    private nonisolated let queue = DispatchQueue(label: "microscale.sqlite")
    private var pending: [(DecisionRecord, ReviewItem?, CheckedContinuation<Void, any Error>)] = []
    private var flushing = false

    /// Opens (and creates) the database at `path`.
    public init(path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let db = try SQLiteConnection(path: path)
        try db.execute("PRAGMA journal_mode = WAL")
        try db.execute("PRAGMA synchronous = FULL")
        try db.execute("PRAGMA foreign_keys = ON")
        try db.execute("PRAGMA busy_timeout = 10000")
        try db.transaction {
            for statement in SQL.schema(real: "REAL") { try db.execute(statement) }
            // A log written by an earlier version lacks the columns added since: add them (SQLite has no IF NOT EXISTS here).
            for added in SQL.addedColumns(real: "REAL") {
                let present = try db.query("SELECT name FROM pragma_table_info('\(added.table)')", []).compactMap { try $0.text("name") }
                if !present.contains(added.column) { try db.execute("ALTER TABLE \(added.table) ADD COLUMN \(added.column) \(added.type)") }
            }
        }
        self.db = db
    }

    /// Runs `work` on the connection's queue.
    private nonisolated func onConnection<T: Sendable>(_ work: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work(self.db) }) }
        }
    }

    public func record(_ decision: DecisionRecord, review: ReviewItem?) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            pending.append((decision, review, continuation))
            if !flushing {
                flushing = true
                Task { await flush() }
            }
        }
    }

    /// Commits everything pending in one transaction; if that fails, each record alone, so one bad record (a
    /// duplicate id) fails only its own caller.
    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            let rows = batch.map { ($0.0, $0.1) }
            do {
                try await onConnection { db in
                    try db.transaction { for (d, r) in rows { try Self.insert(d, r, into: db) } }
                }
                for (_, _, c) in batch { c.resume() }
            } catch {
                for (d, r, c) in batch {
                    do {
                        try await onConnection { db in try db.transaction { try Self.insert(d, r, into: db) } }
                        c.resume()
                    } catch { c.resume(throwing: error) }
                }
            }
        }
        flushing = false
    }

    private static func insert(_ decision: DecisionRecord, _ review: ReviewItem?, into db: SQLiteConnection) throws {
        try db.execute(SQL.insertDecision, SQL.decisionValues(decision))
        if let review { try db.execute(SQL.insertReview, SQL.reviewValues(review)) }
    }

    public func decision(id: String) async throws -> DecisionRecord? {
        try await onConnection { try $0.query(SQL.decisionById, [.text(id)]).first?.decision() }
    }

    public func reviewItem(decisionId: String) async throws -> ReviewItem? {
        try await onConnection { try Self.reviewItem(decisionId, on: $0) }
    }

    private static func reviewItem(_ id: String, on db: SQLiteConnection) throws -> ReviewItem? {
        try db.query(SQL.reviewById, [.text(id)]).first?.review()
    }

    public func reviewItems(task: String?, status: ReviewStatus?, limit: Int) async throws -> [ReviewItem] {
        try await onConnection {
            try $0.query(SQL.reviewItems, [.optionalText(task), .optionalText(status?.rawValue), .int(limit)]).map { try $0.review() }
        }
    }

    public func claim(reviewer: String, task: String?, now: Date, lease: TimeInterval) async throws -> ReviewItem? {
        try await onConnection { db in
            try db.transaction {
                try db.query(SQL.claim(lock: ""), [.optionalText(task), .text(reviewer), .real(now.timeIntervalSince1970),
                                                    .real(now.timeIntervalSince1970 - lease)]).first?.review()
            }
        }
    }

    public func resolve(decisionId: String, reviewer: String, label: String?, fieldsJSON: String?, outcome: String, now: Date) async throws -> ReviewItem {
        try await onConnection { db in
            try db.transaction {
                guard let item = try db.query(SQL.resolve, [.text(decisionId), .text(reviewer), .optionalText(label), .optionalText(fieldsJSON),
                                                            .text(outcome), .real(now.timeIntervalSince1970)]).first?.review()
                else { throw Self.resolveFailure(decisionId, reviewer, current: try Self.reviewItem(decisionId, on: db)) }
                try db.execute(SQL.insertExample, SQL.exampleValues(LabelledExample(
                    task: item.task, text: item.text, label: label, fieldsJSON: fieldsJSON, source: outcome, decisionId: decisionId,
                    reviewer: reviewer, createdAt: now)))
                return item
            }
        }
    }

    /// Why a resolve matched no row.
    static func resolveFailure(_ id: String, _ reviewer: String, current: ReviewItem?) -> StoreError {
        guard let current else { return .notFound("no review item for decision \(id)") }
        switch current.status {
        case .resolved: return .conflict("decision \(id) was already resolved by \(current.resolvedBy ?? "someone")")
        case .pending: return .conflict("decision \(id) is not claimed: claim it first")
        case .claimed: return .conflict("decision \(id) is claimed by \(current.claimedBy ?? "someone else"), not \(reviewer)")
        }
    }

    public func examples(task: String?, limit: Int) async throws -> [LabelledExample] {
        try await onConnection {
            try $0.query(SQL.examples, [.optionalText(task), .int(limit)]).map { try $0.example() }
        }
    }

    public func recentDecisions(task: String, limit: Int) async throws -> [DecisionRecord] {
        try await onConnection {
            try $0.query(SQL.recentDecisions, [.text(task), .int(limit)]).map { try $0.decision() }
        }
    }

    public func recentResolved(task: String, limit: Int) async throws -> [ReviewItem] {
        try await onConnection {
            try $0.query(SQL.recentResolved, [.text(task), .int(limit)]).map { try $0.review() }
        }
    }

    public func transact(_ statements: [StoreStatement]) async throws -> [[StoredRow]] {
        try await onConnection { db in
            try db.transaction {
                try statements.map { statement in
                    let rows = try db.query(statement.sql, statement.values)
                    if let message = statement.requireRows, rows.isEmpty { throw StoreError.conflict(message) }
                    return rows
                }
            }
        }
    }

    public func ping() async throws { _ = try await onConnection { try $0.query("SELECT 1 AS one", []).count } }

    /// The journal mode in force (tests check it is WAL).
    func journalMode() async throws -> String? { try await onConnection { try $0.query("PRAGMA journal_mode", []).first?.text("journal_mode") } }

    public func close() {}
}

/// One SQLite connection: prepared statements bound by `$N` names, rows read into dictionaries. Used from one
/// serial queue only.
final class SQLiteConnection: @unchecked Sendable {
    private var handle: OpaquePointer?

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        if sqlite3_open_v2(path, &handle, flags, nil) != SQLITE_OK {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            throw StoreError.database("cannot open SQLite database \(path): \(message)")
        }
    }

    deinit { sqlite3_close_v2(handle) }

    private var error: StoreError { .database(String(cString: sqlite3_errmsg(handle))) }

    /// Runs `body` inside BEGIN IMMEDIATE … COMMIT, rolling back on any error.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    func execute(_ sql: String, _ values: [SQL.Value] = []) throws { _ = try query(sql, values) }

    func query(_ sql: String, _ values: [SQL.Value]) throws -> [StoredRow] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { throw error }
        defer { sqlite3_finalize(statement) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, value) in values.enumerated() {
            let index = sqlite3_bind_parameter_index(statement, "$\(i + 1)")
            guard index > 0 else { continue }
            let rc: Int32
            switch value {
            // Bound with its byte length: every byte is stored, an embedded NUL included.
            case let .text(s): rc = sqlite3_bind_text(statement, index, s, Int32(s.utf8.count), transient)
            case let .real(d): rc = sqlite3_bind_double(statement, index, d)
            case let .int(n): rc = sqlite3_bind_int64(statement, index, Int64(n))
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw error }
        }
        var rows: [StoredRow] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error }
            var row: [String: SQL.Value] = [:]
            for c in 0..<sqlite3_column_count(statement) {
                let name = String(cString: sqlite3_column_name(statement, c))
                switch sqlite3_column_type(statement, c) {
                case SQLITE_NULL: row[name] = .null
                case SQLITE_INTEGER: row[name] = .int(Int(sqlite3_column_int64(statement, c)))
                case SQLITE_FLOAT: row[name] = .real(sqlite3_column_double(statement, c))
                default:
                    // Read by byte count, not up to the first NUL.
                    let bytes = UnsafeBufferPointer(start: sqlite3_column_text(statement, c), count: Int(sqlite3_column_bytes(statement, c)))
                    row[name] = .text(String(decoding: bytes, as: UTF8.self))
                }
            }
            rows.append(StoredRow(values: row))
        }
        return rows
    }
}
