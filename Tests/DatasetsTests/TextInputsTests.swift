import Foundation
import Testing
@testable import Datasets

/// Reading texts to decide from files (`microscale decide --input FILE`).
@Suite struct TextInputsTests {
    func write(_ text: String, as name: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-inputs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func csvGivesTheTextColumnExactly() throws {
        let path = try write("id,message\n1,\"two\nlines, and a comma\"\n2,\n3,  padded  \n", as: "inputs.csv")
        #expect(try TextInputs.read(file: path, textColumn: "message").map(\.text) == ["two\nlines, and a comma", "", "  padded  "])
        #expect(throws: TextInputError.self) { try TextInputs.read(file: path, textColumn: "text") }
    }

    @Test func jsonLinesKeepOneRecordPerLine() throws {
        let text = "{\"text\": \"first\"}\r\n\n   \n{\"text\": 5}\nnot json\n{\"text\": \"é \\\"quoted\\\"\", \"id\": 9}\n"
        for name in ["inputs.jsonl", "inputs.json", "INPUTS.JSONL"] {
            let records = try TextInputs.read(file: try write(text, as: name), textColumn: "ignored")
            #expect(records.map(\.text) == ["first", "{\"text\": 5}", "not json", "é \"quoted\""])
            #expect(records.map { $0.problem != nil } == [false, true, true, false])
            #expect(records[1].problem?.contains("line 4") == true)
        }
        do {
            _ = try TextInputs.read(file: try write("[{\"text\": \"a\"}]", as: "array.json"), textColumn: "text")
            Issue.record("a JSON array was read as lines")
        } catch let error as TextInputError {
            #expect(error.message.contains("JSON Lines"))
        }
    }

    @Test func otherExtensionsAreErrorsNamingThem() throws {
        for (name, shown) in [("inputs.txt", "'.txt'"), ("inputs", "'(none)'")] {
            do {
                _ = try TextInputs.read(file: try write("a\n", as: name), textColumn: "text")
                Issue.record("\(name) was read")
            } catch let error as TextInputError {
                #expect(error.message.contains("unsupported extension \(shown)") && error.message.contains(".csv"))
            }
        }
        #expect(throws: TextInputError.self) { try TextInputs.read(file: "/nonexistent/inputs.jsonl", textColumn: "text") }
    }
}
