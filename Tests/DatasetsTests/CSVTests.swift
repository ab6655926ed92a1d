import Testing
@testable import Datasets

@Suite struct CSVTests {
    @Test func parsesQuotingAsRFC4180() throws {
        let table = try CSVTable(text: "text,label\nplain,a\n\"with, comma\",b\n\"say \"\"hi\"\"\",c\n\"two\nlines\",d\r\nlast,e")
        #expect(table.header == ["text", "label"])
        #expect(try table.column("text") == ["plain", "with, comma", "say \"hi\"", "two\nlines", "last"])
        #expect(try table.column("label") == ["a", "b", "c", "d", "e"])
    }

    @Test func reportsProblems() {
        #expect(throws: CSVError.unterminatedQuote(line: 2)) { try CSVTable(text: "a\n\"open\n") }
        #expect(throws: CSVError.missingColumn("x", header: ["a"])) { try CSVTable(text: "a\n1\n").column("x") }
    }

    /// The shared datasets parse to the row counts their SOURCES.md states.
    @Test func readsSharedDatasets() throws {
        let data = SharedData.directory
        #expect(try CSVTable(path: data + "/banking77/train.csv").rows.count == 10_003)
        #expect(try CSVTable(path: data + "/sms_spam/all.csv").rows.count == 5_574)
        #expect(try CSVTable(path: data + "/snips/train.csv").rows.count == 13_784)
    }
}
