import ArgumentParser
import ContactExtraction
import Foundation
import TiplineCore

struct Extract: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the contacts in ad text (the same extractor the workers use).",
        discussion: """
            Plain mode reads all of standard input (UTF-8, at most 16 MiB) as one text and prints a \
            JSON array of {"kind", "value"}. With --jsonl each input line is {"id", "text"} and each output line is \
            {"id", "contacts"}, printed as lines arrive; a malformed line (read as strictly as submit \
            reads one) is reported on stderr with its number and why, and skipped: the exit status is \
            then 3.
            """
    )

    /// Longest input of plain mode (16 MiB): the extractor keeps several copies of its text.
    static let maxPlainBytes = 16 << 20

    @Flag(help: "Read {\"id\", \"text\"} lines and print {\"id\", \"contacts\"} lines.")
    var jsonl = false

    func run() async throws {
        let extractor = ContactExtractor()
        let output = BufferedOutput()
        guard jsonl else {
            let text: String
            do {
                text = try WholeText.read(path: "-", limit: Self.maxPlainBytes)
            } catch {
                throw CommandFailure(error)
            }
            try output.write(ContactJSON.array(extractor.extract(text)) + "\n")
            try output.flush()
            return
        }
        // Line by line as it comes (what is printed is flushed before each wait for more input), and
        // each line read as `submit` reads one (`LineReader.nextJSONObject`).
        let reader: LineReader
        do {
            reader = try LineReader(path: "-")
        } catch {
            throw CommandFailure(error)
        }
        var skipped = 0
        func skip(_ number: Int, _ reason: String) {
            skipped += 1
            Output.error("line \(number): \(reason.terminalSafe)\n")
        }
        while let (number, parsed) = try reader.nextJSONObject(shape: "one ad, {\"id\": ..., \"text\": ...}", beforeWaiting: { try output.flush() }) {
            let object: [String: Any]
            switch parsed {
            case .success(let read): object = read
            case .failure(let error):
                skip(number, "\(error)")
                continue
            }
            guard let text = object["text"] as? String else {
                skip(number, "\"text\" is missing or not a string")
                continue
            }
            let id = object["id"] ?? NSNull()
            let idJSON = (try? JSONSerialization.data(withJSONObject: id, options: [.fragmentsAllowed, .withoutEscapingSlashes]))
                .map { String(decoding: $0, as: UTF8.self) } ?? "null"
            try output.write("{\"id\":\(idJSON),\"contacts\":\(ContactJSON.array(extractor.extract(text)))}\n")
        }
        try output.flush()
        // Like `submit`: 3 when some lines were skipped.
        if skipped > 0 { throw ExitCode(3) }
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
