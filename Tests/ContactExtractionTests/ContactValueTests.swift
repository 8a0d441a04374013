import ContactExtraction
import Foundation
import Testing

@Suite("Contact values")
struct ContactValueTests {
    @Test("equal exactly when kind and value are equal; equal contacts hash alike; JSON holds only kind and value")
    func equalityHashingAndCoding() throws {
        let values = ["", "a", "b", "ab", "ba", "seller_1x", "seller_1y", "+8613812345678", "微信号", "微信號", "x@y.cn"]
        let contacts = ContactKind.allCases.flatMap { kind in values.map { Contact(kind: kind, value: $0) } }
        #expect(Set(contacts).count == contacts.count)
        for a in contacts {
            let twin = Contact(kind: a.kind, value: String(a.value.unicodeScalars.map(Character.init)))
            #expect(twin == a && twin.hashValue == a.hashValue)
            for b in contacts where b.kind != a.kind || b.value != a.value { #expect(a != b) }
        }
        let json = try JSONEncoder().encode(contacts[7])
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: String])
        #expect(object == ["kind": contacts[7].kind.rawValue, "value": contacts[7].value])
        let decoded = try JSONDecoder().decode([Contact].self, from: JSONEncoder().encode(contacts))
        #expect(decoded == contacts && Set(decoded) == Set(contacts))
    }
}
