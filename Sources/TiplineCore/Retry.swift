/// How long a failed job waits before its next attempt: exponential, capped, with jitter so that
/// jobs that failed together do not all come back at the same instant.
public struct RetryPolicy: Sendable, Equatable {
    /// Delay after the first failed attempt, in seconds.
    public var base: Double
    /// The longest delay, in seconds.
    public var cap: Double

    /// Creates a policy.
    public init(base: Double = 2, cap: Double = 600) {
        self.base = base
        self.cap = cap
    }

    /// The delay after failed attempt number `attempt` (1-based); `unit` in [0, 1) picks the jitter,
    /// spreading the delay over [0.5, 1.5) of the exponential value.
    public func delay(afterAttempt attempt: Int, unit: Double) -> Double {
        let exponent = Double(max(0, min(attempt - 1, 30)))
        let raw = min(cap, base * pow2(exponent))
        return min(cap, raw * (0.5 + unit))
    }

    private func pow2(_ exponent: Double) -> Double {
        var value = 1.0
        var left = Int(exponent)
        while left > 0 { value *= 2; left -= 1 }
        return value
    }
}
