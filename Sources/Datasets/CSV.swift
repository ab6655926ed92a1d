import Foundation

/// Errors reading a delimited text file.
public enum CSVError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be read.
    case unreadable(path: String)
    /// The bytes are not valid UTF-8.
    case invalidUTF8(path: String)
    /// A quoted field is not closed before the end of the file.
    case unterminatedQuote(line: Int)
    /// A required column is missing from the header.
    case missingColumn(String, header: [String])

    public var description: String {
        switch self {
        case let .unreadable(path): return "cannot read \(path)"
        case let .invalidUTF8(path): return "\(path) is not valid UTF-8"
        case let .unterminatedQuote(line): return "a quoted field opened on line \(line) is never closed"
        case let .missingColumn(name, header): return "no column '\(name)' in the header \(header)"
        }
    }
}

/// RFC 4180 comma-separated values: quoted fields may hold commas, doubled quotes and line breaks.
public struct CSVTable: Sendable {
    /// Column names from the first record.
    public let header: [String]
    /// Data records (after the header).
    public let rows: [[String]]

    /// Parses `text`; the first record is the header.
    public init(text: String) throws {
        var records = try Self.parse(text)
        header = records.isEmpty ? [] : records.removeFirst()
        rows = records
    }

    /// Reads and parses the file at `path`.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw CSVError.unreadable(path: path) }
        guard let text = String(validating: data, as: UTF8.self) else { throw CSVError.invalidUTF8(path: path) }
        try self.init(text: text)
    }

    /// The values of column `name`, one per row (empty where a row is short).
    public func column(_ name: String) throws -> [String] {
        guard let i = header.firstIndex(of: name) else { throw CSVError.missingColumn(name, header: header) }
        return rows.map { i < $0.count ? $0[i] : "" }
    }

    static func parse(_ text: String) throws -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field: [UInt8] = []
        var quoted = false, fieldStarted = false
        var line = 1, quoteLine = 1
        let bytes = Array(text.utf8)
        var i = 0
        func endField() {
            record.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            fieldStarted = false
        }
        while i < bytes.count {
            let b = bytes[i]
            if quoted {
                if b == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") {
                        field.append(b)
                        i += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if b == UInt8(ascii: "\n") { line += 1 }
                    field.append(b)
                }
            } else {
                switch b {
                case UInt8(ascii: "\"") where !fieldStarted && field.isEmpty:
                    quoted = true
                    fieldStarted = true
                    quoteLine = line
                case UInt8(ascii: ","):
                    endField()
                case UInt8(ascii: "\r") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\n"):
                    break
                case UInt8(ascii: "\n"):
                    endField()
                    records.append(record)
                    record = []
                    line += 1
                default:
                    field.append(b)
                    fieldStarted = true
                }
            }
            i += 1
        }
        if quoted { throw CSVError.unterminatedQuote(line: quoteLine) }
        if fieldStarted || !field.isEmpty || !record.isEmpty {
            endField()
            records.append(record)
        }
        return records
    }
}
