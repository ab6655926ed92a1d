import CSQLite
import Foundation

/// The embedded store: one SQLite file in WAL mode with full synchronous commits, so an acknowledged decision survives
/// a crash. Several processes may open the same file (writers take turns); across machines use PostgreSQL.
public actor SQLiteStore: DecisionStore {
    public nonisolated let kind = "sqlite"
    private let db: SQLiteConnection

    /// Opens (and creates) the database at `path`.
    public init(path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let db = try SQLiteConnection(path: path)
        try db.execute("PRAGMA journal_mode = WAL")
        try db.execute("PRAGMA synchronous = FULL")
        try db.execute("PRAGMA foreign_keys = ON")
        try db.execute("PRAGMA busy_timeout = 10000")
        try db.transaction { for statement in SQL.schema(real: "REAL") { try db.execute(statement) } }
        self.db = db
    }

    public func record(_ decision: DecisionRecord, review: ReviewItem?) throws {
        try db.transaction {
            try db.execute(SQL.insertDecision, SQL.decisionValues(decision))
            if let review { try db.execute(SQL.insertReview, SQL.reviewValues(review)) }
        }
    }

    public func decision(id: String) throws -> DecisionRecord? {
        try db.query("SELECT \(SQL.decisionColumns) FROM decisions WHERE id = $1", [.text(id)]).first?.decision()
    }

    public func reviewItem(decisionId: String) throws -> ReviewItem? {
        try db.query("SELECT \(SQL.reviewColumns) FROM reviews WHERE decision_id = $1", [.text(decisionId)]).first?.review()
    }

    public func reviewItems(task: String?, status: ReviewStatus?, limit: Int) throws -> [ReviewItem] {
        try db.query("""
            SELECT \(SQL.reviewColumns) FROM reviews WHERE ($1 IS NULL OR task = $1) AND ($2 IS NULL OR status = $2)
            ORDER BY created_at, decision_id LIMIT $3
            """, [.optionalText(task), .optionalText(status?.rawValue), .int(limit)]).map { try $0.review() }
    }

    public func claim(reviewer: String, task: String?, now: Date, lease: TimeInterval) throws -> ReviewItem? {
        try db.transaction {
            try db.query(SQL.claim(lock: ""), [.optionalText(task), .text(reviewer), .real(now.timeIntervalSince1970),
                                                .real(now.timeIntervalSince1970 - lease)]).first?.review()
        }
    }

    public func resolve(decisionId: String, reviewer: String, label: String?, fieldsJSON: String?, outcome: String, now: Date) throws -> ReviewItem {
        try db.transaction {
            guard let item = try db.query(SQL.resolve, [.text(decisionId), .text(reviewer), .optionalText(label), .optionalText(fieldsJSON),
                                                        .text(outcome), .real(now.timeIntervalSince1970)]).first?.review()
            else { throw try Self.resolveFailure(decisionId, reviewer, current: reviewItem(decisionId: decisionId)) }
            try db.execute(SQL.insertExample, SQL.exampleValues(LabelledExample(
                task: item.task, text: item.text, label: label, fieldsJSON: fieldsJSON, source: outcome, decisionId: decisionId,
                reviewer: reviewer, createdAt: now)))
            return item
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

    public func examples(task: String?, limit: Int) throws -> [LabelledExample] {
        try db.query("SELECT \(SQL.exampleColumns) FROM examples WHERE ($1 IS NULL OR task = $1) ORDER BY created_at LIMIT $2",
                     [.optionalText(task), .int(limit)]).map { try $0.example() }
    }

    public func recentDecisions(task: String, limit: Int) throws -> [DecisionRecord] {
        try db.query("SELECT \(SQL.decisionColumns) FROM decisions WHERE task = $1 ORDER BY created_at DESC LIMIT $2",
                     [.text(task), .int(limit)]).map { try $0.decision() }
    }

    public func recentResolved(task: String, limit: Int) throws -> [ReviewItem] {
        try db.query("SELECT \(SQL.reviewColumns) FROM reviews WHERE task = $1 AND status = 'resolved' ORDER BY resolved_at DESC LIMIT $2",
                     [.text(task), .int(limit)]).map { try $0.review() }
    }

    public func ping() throws { _ = try db.query("SELECT 1 AS one", []) }

    /// The journal mode in force (tests check it is WAL).
    func journalMode() throws -> String? { try db.query("PRAGMA journal_mode", []).first?.text("journal_mode") }

    public func close() {}
}

/// One SQLite connection: prepared statements bound by `$N` names, rows read into dictionaries.
final class SQLiteConnection {
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

    func query(_ sql: String, _ values: [SQL.Value]) throws -> [SQLiteRow] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { throw error }
        defer { sqlite3_finalize(statement) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, value) in values.enumerated() {
            let index = sqlite3_bind_parameter_index(statement, "$\(i + 1)")
            guard index > 0 else { continue }
            let rc: Int32
            switch value {
            case let .text(s): rc = sqlite3_bind_text(statement, index, s, -1, transient)
            case let .real(d): rc = sqlite3_bind_double(statement, index, d)
            case let .int(n): rc = sqlite3_bind_int64(statement, index, Int64(n))
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw error }
        }
        var rows: [SQLiteRow] = []
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
                default: row[name] = .text(String(cString: sqlite3_column_text(statement, c)))
                }
            }
            rows.append(SQLiteRow(values: row))
        }
        return rows
    }
}

struct SQLiteRow: Row {
    let values: [String: SQL.Value]

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
