import Foundation
import Logging
import PostgresNIO

/// The shared store: PostgreSQL, for several router replicas writing one decision log and serving one review queue.
/// Claims use `FOR UPDATE SKIP LOCKED`, so two replicas never hand out the same item while a claim holds.
public final class PostgresStore: DecisionStore {
    public let kind = "postgres"
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger

    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, TLS off: loopback or a private network)
    /// and creates the tables if they are missing, failing after `connectTimeout` seconds without an answer.
    public init(url: String, connectTimeout: Double = 30, logger: Logger = PostgresStore.defaultLogger) async throws {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty,
              let user = components.user, !components.path.dropFirst().isEmpty
        else { throw StoreError.badURL(redactedURL(url)) }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: String(components.path.dropFirst()), tls: .disable)
        configuration.options.maximumConnections = 8
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let client = self.client
        runner = Task { await client.run() }
        self.logger = logger
        do {
            let shown = redactedURL(url)
            try await withDeadline(seconds: connectTimeout, orThrow: StoreError.database(
                "no answer from \(shown) within \(Int(connectTimeout)) s: is PostgreSQL running and the URL right?")) {
                try await client.withTransaction(logger: logger) { connection in
                    // Replicas starting together must not race to create the tables.
                    try await connection.query("SELECT pg_advisory_xact_lock(727274)", logger: logger)
                    for statement in SQL.schema(real: "DOUBLE PRECISION") {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    for added in SQL.addedColumns(real: "DOUBLE PRECISION") {
                        try await connection.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(added.table) ADD COLUMN IF NOT EXISTS \(added.column) \(added.type)"),
                                                   logger: logger)
                    }
                }
            }
        } catch {
            runner.cancel()
            throw error
        }
    }

    deinit { runner.cancel() }

    /// Connection retries are logged at warning and above only.
    public static var defaultLogger: Logger {
        var logger = Logger(label: "microscale.store")
        logger.logLevel = .warning
        return logger
    }

    private func query(_ sql: String, _ values: [SQL.Value], on connection: PostgresConnection? = nil) async throws -> [PostgresRandomAccessRow] {
        var binds = PostgresBindings()
        for value in values {
            switch value {
            case let .text(s): binds.append(s)
            case let .real(d): binds.append(d)
            case let .int(n): binds.append(n)
            case .null: binds.appendNull()
            }
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        do {
            let rows: PostgresRowSequence
            if let connection { rows = try await connection.query(query, logger: logger) } else { rows = try await client.query(query, logger: logger) }
            var result: [PostgresRandomAccessRow] = []
            for try await row in rows { result.append(row.makeRandomAccess()) }
            return result
        } catch let error as PSQLError {
            throw StoreError.database(String(reflecting: error))
        }
    }

    public func record(_ decision: DecisionRecord, review: ReviewItem?) async throws {
        try await client.withTransaction(logger: logger) { connection in
            _ = try await self.query(SQL.insertDecision, SQL.decisionValues(decision), on: connection)
            if let review { _ = try await self.query(SQL.insertReview, SQL.reviewValues(review), on: connection) }
        }
    }

    public func decision(id: String) async throws -> DecisionRecord? {
        try await query(SQL.decisionById, [.text(id)]).first?.decision()
    }

    public func reviewItem(decisionId: String) async throws -> ReviewItem? {
        try await query(SQL.reviewById, [.text(decisionId)]).first?.review()
    }

    public func reviewItems(task: String?, status: ReviewStatus?, limit: Int) async throws -> [ReviewItem] {
        try await query(SQL.reviewItems, [.optionalText(task), .optionalText(status?.rawValue), .int(limit)]).map { try $0.review() }
    }

    public func claim(reviewer: String, task: String?, now: Date, lease: TimeInterval) async throws -> ReviewItem? {
        try await query(SQL.claim(lock: "FOR UPDATE SKIP LOCKED"), [
            .optionalText(task), .text(reviewer), .real(now.timeIntervalSince1970), .real(now.timeIntervalSince1970 - lease),
        ]).first?.review()
    }

    public func resolve(decisionId: String, reviewer: String, label: String?, fieldsJSON: String?, outcome: String, now: Date) async throws -> ReviewItem {
        let resolved: ReviewItem? = try await client.withTransaction(logger: logger) { connection in
            guard let item = try await self.query(SQL.resolve, [
                .text(decisionId), .text(reviewer), .optionalText(label), .optionalText(fieldsJSON), .text(outcome),
                .real(now.timeIntervalSince1970),
            ], on: connection).first?.review() else { return nil }
            _ = try await self.query(SQL.insertExample, SQL.exampleValues(LabelledExample(
                task: item.task, text: item.text, label: label, fieldsJSON: fieldsJSON, source: outcome, decisionId: decisionId,
                reviewer: reviewer, createdAt: now)), on: connection)
            return item
        }
        if let resolved { return resolved }
        throw SQLiteStore.resolveFailure(decisionId, reviewer, current: try await reviewItem(decisionId: decisionId))
    }

    public func examples(task: String?, limit: Int) async throws -> [LabelledExample] {
        try await query(SQL.examples, [.optionalText(task), .int(limit)]).map { try $0.example() }
    }

    public func recentDecisions(task: String, limit: Int) async throws -> [DecisionRecord] {
        try await query(SQL.recentDecisions, [.text(task), .int(limit)]).map { try $0.decision() }
    }

    public func recentResolved(task: String, limit: Int) async throws -> [ReviewItem] {
        try await query(SQL.recentResolved, [.text(task), .int(limit)]).map { try $0.review() }
    }

    public func transact(_ statements: [StoreStatement]) async throws -> [[StoredRow]] {
        do {
            return try await transactOnce(statements)
        } catch let error as PostgresTransactionError {
            // The closure's own error (a conflict) is the one that explains what happened.
            if let inner = error.closureError as? StoreError { throw inner }
            throw StoreError.database(String(reflecting: error))
        }
    }

    private func transactOnce(_ statements: [StoreStatement]) async throws -> [[StoredRow]] {
        try await client.withTransaction(logger: logger) { connection in
            var out: [[StoredRow]] = []
            for statement in statements {
                let rows = try await self.query(statement.sql, statement.values, on: connection)
                if let message = statement.requireRows, rows.isEmpty { throw StoreError.conflict(message) }
                out.append(try rows.map { row in
                    var values: [String: StoreValue] = [:]
                    for cell in row {
                        switch cell.dataType {
                        case .float8, .float4, .numeric: values[cell.columnName] = (try cell.decode(Double?.self)).map(StoreValue.real) ?? .null
                        case .int8, .int4, .int2: values[cell.columnName] = (try cell.decode(Int?.self)).map(StoreValue.int) ?? .null
                        default: values[cell.columnName] = (try cell.decode(String?.self)).map(StoreValue.text) ?? .null
                        }
                    }
                    return StoredRow(values: values)
                })
            }
            return out
        }
    }

    public func ping() async throws { _ = try await query("SELECT 1", []) }

    public func close() async { runner.cancel() }
}

extension PostgresRandomAccessRow: Row {
    func text(_ column: String) throws -> String? {
        guard contains(column) else { return nil }
        return try self[column].decode(String?.self)
    }

    func real(_ column: String) throws -> Double? {
        guard contains(column) else { return nil }
        return try self[column].decode(Double?.self)
    }
}

/// A database URL without its password, for messages and logs.
public func redactedURL(_ url: String) -> String {
    guard var c = URLComponents(string: url), c.password != nil else { return url }
    c.password = "***"
    return c.string ?? url
}
