import Foundation
import Testing
import TiplineCore

@Suite("strict JSON")
struct StrictJSONTests {
    static func problem(_ text: String, naming: Set<String> = ["text", "k3", "k39", "b"]) -> String? {
        StrictJSON.problem(in: Array(text.utf8), naming: naming)
    }

    @Test("well-formed JSON passes, whatever its values")
    func valid() {
        for text in [#"{}"#, #" { "a" : 1 } "#, #"{"text":"出租微信 V信: abc_123x","n":-0.5e+3,"ok":true,"no":false,"x":null}"#,
                     #"{"a":[1,[2,{}],"s\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]}"#, #"[]"#, #""just a string""#, "0", "{\"a\":\"\u{0}\u{7F}\"}".replacingOccurrences(of: "\u{0}", with: "\\u0000")] {
            #expect(Self.problem(text) == nil, "\(text)")
        }
    }

    @Test("Foundation's leniencies are refused: a trailing comma, a member named twice")
    func leniencies() {
        #expect(Self.problem(#"{"text":"a",}"#) == "a comma before '}' (trailing commas are not JSON) (byte 12)")
        #expect(Self.problem(#"{"a":[1,2,]}"#) == "a comma before ']' (trailing commas are not JSON) (byte 10)")
        #expect(Self.problem(#"{"text":"a","text":"b"}"#) == #"the member "text" appears twice in one object (byte 12)"#)
        // The same name however it is written: escaped, or in another Unicode normalisation.
        #expect(Self.problem(#"{"text":"a","t\u0065xt":"b"}"#) == #"the member "text" appears twice in one object (byte 12)"#)
        // Many members: compared as strings past the first sixteen.
        let many = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        #expect(Self.problem("{" + many + "}") == nil)
        #expect(Self.problem("{" + many + ",\"k3\":1}")?.hasPrefix(#"the member "k3" appears twice"#) == true)
        #expect(Self.problem("{" + many + ",\"k39\":1}")?.hasPrefix(#"the member "k39" appears twice"#) == true)
        #expect(Self.problem("{\"caf\u{E9}\":1,\"cafe\u{301}\":2}")?.contains("appears twice") == true)
        // Nested objects too; the same name in two different objects is fine.
        #expect(Self.problem(#"{"a":{"b":1,"b":2}}"#)?.contains(#""b" appears twice"#) == true)
        #expect(Self.problem(#"{"a":{"b":1},"c":{"b":2}}"#) == nil)
        // A name not among those given is the sender's data (maybe a caller's number): not shown.
        #expect(Self.problem(#"{"13900001111":1,"13900001111":2}"#, naming: ["text"])
                == "a member appears twice in one object (its name is not one of a report's fields: not shown) (byte 17)")
    }

    @Test("a lone surrogate escape and a number beyond a Double are refused with what and where, not Foundation's words")
    func loneSurrogatesAndHugeNumbers() {
        #expect(Self.problem(#"{"text":"lone \ud800 surrogate"}"#) == #"a lone UTF-16 surrogate escape (\uD800) is not a character (byte 14)"#)
        #expect(Self.problem(#"{"text":"\udc00"}"#) == #"a lone UTF-16 surrogate escape (\uDC00) is not a character (byte 9)"#)
        #expect(Self.problem(#"{"text":"\ud800\u0041"}"#) == #"a lone UTF-16 surrogate escape (\uD800) is not a character (byte 9)"#)
        #expect(Self.problem(#"{"text":"\ud83d\ude00"}"#) == nil)
        #expect(Self.problem(#"{"x":1e400}"#) == "a number too large to read (beyond 1.8e308) (byte 5)")
        #expect(Self.problem("{\"x\":" + String(repeating: "9", count: 400) + "}") == "a number too large to read (beyond 1.8e308) (byte 5)")
        #expect(Self.problem(#"{"x":-1.5e308,"y":1e-400,"z":123456789012345678901234567890}"#) == nil)
    }

    @Test("every malformed text gets what and where")
    func malformed() {
        let cases: [(String, String)] = [
            ("", "the JSON ends where a value should be (byte 0)"),
            (#"{"a":1"#, "the JSON ends inside an object (byte 6)"),
            (#"{"a" 1}"#, "':' is expected after a member name (byte 5)"),
            (#"{a:1}"#, "a member name (a string in double quotes) is expected (byte 1)"),
            (#"{"a":1 "b":2}"#, "',' or '}' is expected after a member (byte 7)"),
            (#"[1 2]"#, "',' or ']' is expected after an element (byte 3)"),
            (#"{"a":01}"#, "a number cannot start with 0 followed by digits (byte 5)"),
            (#"{"a":1.}"#, "a number needs digits after '.' (byte 5)"),
            (#"{"a":-}"#, "a number needs a digit after '-' (byte 5)"),
            (#"{"a":1e}"#, "a number needs digits in its exponent (byte 5)"),
            (#"{"a":tru}"#, "unexpected character where a value should be (byte 5)"),
            (#"{"a":'x'}"#, "unexpected character where a value should be (byte 5)"),
            (#"{"a":"x\q"}"#, "'\\q' is not a JSON escape (byte 7)"),
            (#"{"a":"\u12"}"#, "'\\u' needs four hexadecimal digits (byte 6)"),
            ("{\"a\":\"x\ty\"}", "a control character (U+0009) inside a string must be escaped (byte 7)"),
            (#"{"a":"open}"#, "a string is not closed (byte 5)"),
            (#"{"a":1} {"#, "unexpected text after the JSON value (byte 8)"),
            (#"{"a":[}"#, "a value is missing before '}' (a trailing comma?) (byte 6)"),
        ]
        for (text, expected) in cases {
            #expect(Self.problem(text) == expected, "\(text)")
        }
    }

    @Test("nesting is bounded, without recursing without end")
    func depth() {
        let ok = String(repeating: "[", count: StrictJSON.maxDepth) + String(repeating: "]", count: StrictJSON.maxDepth)
        #expect(Self.problem(ok) == nil)
        let deep = String(repeating: "[", count: 100_000)
        #expect(Self.problem(deep) == "nested deeper than \(StrictJSON.maxDepth) levels (byte \(StrictJSON.maxDepth))")
    }

    @Test("whatever passes, Foundation's parser reads too (random mutations of a report)")
    func agreesWithFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        let base = Array(#"{"external_id":"e-1","reporter":"u_9","text":"出租微信 V信: a\"b\\c\u00e9","n":[1,-2.5e3,true,null],"o":{}}"#.utf8)
        let alphabet = Array(#"{}[],:"\ -+.0123456789eEtrufalsn"#.utf8)
        #expect(StrictJSON.problem(in: base) == nil)
        var passed = 0
        for _ in 0..<5_000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes.remove(at: index)
                case 1: bytes.insert(alphabet.randomElement(using: &generator)!, at: index)
                default: bytes[index] = alphabet.randomElement(using: &generator)!
                }
            }
            guard String(validating: bytes, as: UTF8.self) != nil else { continue }
            if StrictJSON.problem(in: bytes) == nil {
                passed += 1
                #expect((try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil,
                        "strict JSON passed what Foundation refuses: \(String(decoding: bytes, as: UTF8.self))")
            }
        }
        // Enough mutations pass for the comparison to mean something (most change a string's content).
        #expect(passed >= 500, "only \(passed) of 5,000 mutations passed the strict check")
    }
}
