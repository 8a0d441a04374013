import ContactExtraction
import Foundation
import Testing
@testable import TiplineCore

@Suite("RetryPolicy")
struct RetryTests {
    @Test("the delay doubles with each attempt when jitter is neutral")
    func exponential() {
        let policy = RetryPolicy(base: 2, cap: 600)
        let delays = (1...6).map { policy.delay(afterAttempt: $0, unit: 0.5) }
        #expect(delays == [2, 4, 8, 16, 32, 64])
    }

    @Test("the delay never exceeds the cap, however many attempts")
    func capped() {
        let policy = RetryPolicy(base: 2, cap: 600)
        for attempt in [10, 11, 30, 31, 1_000, Int.max] {
            for unit in [0.0, 0.5, 0.999_999] {
                #expect(policy.delay(afterAttempt: attempt, unit: unit) <= 600, "attempt \(attempt)")
            }
        }
        #expect(policy.delay(afterAttempt: 20, unit: 0.5) == 600)
    }

    @Test("jitter keeps the delay within [0.5, 1.5) of the exponential value")
    func jitterRange() {
        let policy = RetryPolicy(base: 2, cap: 1_000_000)
        var generator = SplitMix64(seed: 42)
        for attempt in 1...12 {
            let exponential = 2 * Double(1 << (attempt - 1))
            #expect(policy.delay(afterAttempt: attempt, unit: 0) == exponential * 0.5)
            for _ in 0..<50 {
                let delay = policy.delay(afterAttempt: attempt, unit: Double.random(in: 0..<1, using: &generator))
                #expect(delay >= exponential * 0.5 && delay < exponential * 1.5, "attempt \(attempt): \(delay)")
            }
        }
    }

    @Test("different jitter units spread jobs that failed together")
    func spread() {
        let policy = RetryPolicy()
        #expect(policy.delay(afterAttempt: 3, unit: 0.1) < policy.delay(afterAttempt: 3, unit: 0.9))
    }

    @Test("attempt zero or below is treated as the first attempt")
    func nonPositiveAttempt() {
        let policy = RetryPolicy(base: 2, cap: 600)
        #expect(policy.delay(afterAttempt: 0, unit: 0.5) == 2)
        #expect(policy.delay(afterAttempt: -5, unit: 0.5) == 2)
    }

    @Test("the default policy starts at 2 seconds and caps at 10 minutes")
    func defaults() {
        #expect(RetryPolicy() == RetryPolicy(base: 2, cap: 600))
    }
}
