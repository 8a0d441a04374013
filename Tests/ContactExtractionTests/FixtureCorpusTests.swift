import ContactExtraction
import Foundation
import Testing

/// One hand-written case of the fixture corpus: an ad's text and the contacts it must yield.
struct FixtureCase: Decodable {
    let name: String
    let text: String
    let contacts: [Contact]
}

/// Loads `Fixtures/contacts.jsonl`, one case per line.
func loadFixtureCases() throws -> [FixtureCase] {
    let directory = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    let data = try Data(contentsOf: directory.appendingPathComponent("contacts.jsonl"))
    let decoder = JSONDecoder()
    return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }.map {
        try decoder.decode(FixtureCase.self, from: Data($0))
    }
}

@Suite("fixture corpus")
struct FixtureCorpusTests {
    @Test("every fixture ad yields exactly its expected contacts")
    func corpus() throws {
        let cases = try loadFixtureCases()
        #expect(cases.count >= 300)
        let extractor = ContactExtractor()
        var failures: [String] = []
        for fixture in cases {
            let got = extractor.extract(fixture.text)
            let expected = Array(Set(fixture.contacts)).sorted()
            if got != expected {
                failures.append("""
                    FAIL \(fixture.name)
                      text:     \(fixture.text.debugDescription)
                      expected: \(expected.map { "\($0.kind.rawValue):\($0.value)" })
                      got:      \(got.map { "\($0.kind.rawValue):\($0.value)" })
                    """)
            }
        }
        for failure in failures { print(failure) }
        print("fixture corpus: \(cases.count - failures.count)/\(cases.count) passed")
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) fixture cases failed")
    }

    @Test("fixture names are unique")
    func uniqueNames() throws {
        let names = try loadFixtureCases().map(\.name)
        #expect(Set(names).count == names.count)
    }
}
