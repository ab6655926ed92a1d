import Foundation

/// A file of texts that cannot be read as inputs.
public struct TextInputError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file.
    public var file: String
    /// What is wrong and what to do.
    public var message: String
    public var description: String { "\(file): \(message)" }
}

/// One input record read from a file: its text exactly as read, or, for a record that holds no text, the record as
/// read and what is wrong with it (so it can be answered with an error in its place instead of shifting the rest).
public struct TextInput: Sendable, Equatable {
    /// The text (for an unusable record, the record itself).
    public var text: String
    /// Why the record holds no usable text (nil when it does).
    public var problem: String?

    /// A record from its parts.
    public init(text: String, problem: String? = nil) {
        self.text = text
        self.problem = problem
    }
}

/// Reading texts to decide from files, by extension.
public enum TextInputs {
    /// The extensions `read(file:textColumn:)` understands, in words.
    public static let formats = ".csv (the task's text column, data.text_column), .jsonl or .json (JSON Lines: one object with a string member \"text\" per line)"

    /// Reads the inputs of `path` in file order: `.csv` gives column `textColumn` of every row; `.jsonl` and `.json`
    /// are JSON Lines, one object with a string member `text` per line (blank lines are skipped; a line that is not
    /// such an object is a record with a problem). Any other extension is an error naming it.
    public static func read(file path: String, textColumn: String) throws -> [TextInput] {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        switch ext {
        case "csv":
            let table: CSVTable
            do { table = try CSVTable(path: path) } catch { throw TextInputError(file: path, message: "\(error)") }
            guard table.header.contains(textColumn) else {
                throw TextInputError(file: path, message: "no column '\(textColumn)' (the file has: \(table.header.joined(separator: ", "))); the task's data.text_column names it")
            }
            return try table.column(textColumn).map { TextInput(text: $0) }
        case "jsonl", "json":
            guard let data = FileManager.default.contents(atPath: path) else { throw TextInputError(file: path, message: "cannot read it") }
            guard let text = String(validating: data, as: UTF8.self) else { throw TextInputError(file: path, message: "not valid UTF-8") }
            return try jsonLines(text, file: path)
        default:
            throw TextInputError(file: path, message: "unsupported extension '\(ext.isEmpty ? "(none)" : "." + ext)': give \(formats), or - for standard input (one text per line)")
        }
    }

    /// The records of JSON Lines `text`, one per non-blank line.
    public static func jsonLines(_ text: String, file: String) throws -> [TextInput] {
        // "\r\n" is one Character in Swift, so both line ends are named.
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        if lines.first(where: { !$0.allSatisfy(\.isWhitespace) })?.first(where: { !$0.isWhitespace }) == "[" {
            throw TextInputError(file: file, message: "it holds a JSON array; inputs are read as JSON Lines: one object {\"text\": …} per line")
        }
        var records = [TextInput]()
        for (number, line) in lines.enumerated() where !line.allSatisfy(\.isWhitespace) {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
            if let text = (object as? [String: Any])?["text"] as? String {
                records.append(TextInput(text: text))
            } else {
                records.append(TextInput(text: String(line), problem: "line \(number + 1) of \(URL(fileURLWithPath: file).lastPathComponent) is not a JSON object with a string member \"text\""))
            }
        }
        return records
    }
}
