import ArgumentParser
import ContactExtraction
import Foundation

struct Extract: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the contacts in ad text (the same extractor the workers use).",
        discussion: """
            Plain mode reads all of standard input as one text and prints a JSON array of \
            {"kind", "value"}. With --jsonl each input line is {"id", "text"} and each output line is \
            {"id", "contacts"}; a malformed line is reported on stderr with its number and skipped.
            """
    )

    @Flag(help: "Read {\"id\", \"text\"} lines and print {\"id\", \"contacts\"} lines.")
    var jsonl = false

    func run() async throws {
        let extractor = ContactExtractor()
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let output = BufferedOutput()
        guard jsonl else {
            let text = String(decoding: input, as: UTF8.self)
            try output.write(ContactJSON.array(extractor.extract(text)) + "\n")
            try output.flush()
            return
        }
        var lineNumber = 0
        for line in input.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            var bytes = Data(line)
            if bytes.last == 0x0D { bytes.removeLast() }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            guard let object = try? JSONSerialization.jsonObject(with: bytes, options: []) as? [String: Any] else {
                Output.error("line \(lineNumber): not a JSON object\n")
                continue
            }
            guard let text = object["text"] as? String else {
                Output.error("line \(lineNumber): \"text\" is missing or not a string\n")
                continue
            }
            let id = object["id"] ?? NSNull()
            let idJSON = (try? JSONSerialization.data(withJSONObject: id, options: [.fragmentsAllowed]))
                .map { String(decoding: $0, as: UTF8.self) } ?? "null"
            try output.write("{\"id\":\(idJSON),\"contacts\":\(ContactJSON.array(extractor.extract(text)))}\n")
        }
        try output.flush()
    }
}

/// JSON for contact lists, with stable key order.
enum ContactJSON {
    static func array(_ contacts: [Contact]) -> String {
        "[" + contacts.map { "{\"kind\":\(string($0.kind.rawValue)),\"value\":\(string($0.value))}" }
            .joined(separator: ",") + "]"
    }

    static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
