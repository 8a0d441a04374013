/// The verdict of `tipline status`: what needs an administrator now, each in one line saying what
/// and what to do. No problem: the queue is healthy.
public enum QueueHealth {
    /// A report waiting this long (seconds) means the workers are too few, stuck or gone.
    public static let longestWait: Double = 300

    /// The problems in a queue with `waiting` reports queued or waiting for a retry (`inBackoff` of
    /// them for a retry whose time has not come; the oldest of the others ready for
    /// `oldestWaitingSeconds`), `liveWorkers` workers heartbeating, `dead` reports given up on and
    /// `expiredLeases` jobs still held by workers whose lease ran out a while ago (`StatusSnapshot`).
    public static func problems(waiting: Int, inBackoff: Int = 0, oldestWaitingSeconds: Double?, liveWorkers: Int, dead: Int,
                                expiredLeases: Int = 0) -> [String] {
        var problems: [String] = []
        if waiting > 0, liveWorkers == 0 {
            // A retry in its backoff is not waiting yet (the screen's "Oldest" leaves it out), but
            // nobody will make it either.
            let retry = inBackoff == 0 ? "" : inBackoff == waiting ? " for a retry" : " (\(inBackoff) of them for a retry)"
            problems.append("\(waiting) \(waiting == 1 ? "report waits" : "reports wait")\(retry) and no worker is live: start `tipline work`")
        }
        if expiredLeases > 0 {
            // Only a live worker's heartbeat returns them to the queue.
            let held = "\(expiredLeases) \(expiredLeases == 1 ? "report is" : "reports are") still held by a worker whose lease ran out a while ago"
            problems.append(held + (liveWorkers == 0
                ? ": no worker is live to take them back; start `tipline work`"
                : ": the live workers' heartbeats have not taken them back; check their logs"))
        }
        if let oldest = oldestWaitingSeconds, oldest >= longestWait {
            problems.append("the oldest waiting report has waited \(duration(oldest)), over \(Int(longestWait / 60)) minutes: "
                            + "more workers are needed, or they are stuck")
        }
        if dead > 0 {
            problems.append("\(dead) dead \(dead == 1 ? "report" : "reports") (every attempt failed): "
                            + "see `tipline dead list`, queue again with `tipline dead retry`")
        }
        return problems
    }

    /// `seconds` as `45s`, `7m05s` or `2h03m`.
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + pad(s % 60) + "s" }
        return "\(s / 3600)h" + pad(s % 3600 / 60) + "m"
    }

    private static func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
