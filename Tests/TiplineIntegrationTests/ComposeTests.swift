import ArgumentParser
import Foundation
import Testing
@testable import tipline

@Suite("compose.yaml")
struct ComposeTests {
    /// Every `command: [...]` in compose.yaml, as argument lists.
    static func commands() throws -> [[String]] {
        let text = try ProjectTree.text("compose.yaml")
        return try text.split(separator: "\n").compactMap { line -> [String]? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("command:") else { return nil }
            let value = trimmed.dropFirst("command:".count).trimmingCharacters(in: .whitespaces)
            guard let array = try JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String] else {
                throw TestSetupError("compose.yaml: command must be a JSON-style list of strings: \(line)")
            }
            return array
        }
    }

    @Test("every tipline command in compose.yaml parses with the real argument parser")
    func composeCommandsParse() throws {
        let commands = try Self.commands()
        #expect(Set(commands.compactMap(\.first)).isSuperset(of: ["migrate", "work", "status"]))
        for command in commands {
            #expect(throws: Never.self, "compose.yaml: tipline \(command.joined(separator: " "))") {
                _ = try Tipline.parseAsRoot(command)
            }
        }
    }

    @Test("a command the parser rejects is caught")
    func parserRejectsUnknownOption() {
        #expect(throws: (any Error).self) { _ = try Tipline.parseAsRoot(["work", "--no-such-option"]) }
    }
}
