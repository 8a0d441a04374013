import Testing
import TiplineCore

@Suite("the status verdict")
struct QueueHealthTests {
    @Test("an empty queue, or one that workers keep up with, needs nothing")
    func healthy() {
        #expect(QueueHealth.problems(waiting: 0, oldestWaitingSeconds: nil, liveWorkers: 0, dead: 0).isEmpty)
        #expect(QueueHealth.problems(waiting: 5_000, oldestWaitingSeconds: 299, liveWorkers: 2, dead: 0).isEmpty)
    }

    @Test("reports waiting with no live worker")
    func noWorker() {
        let problems = QueueHealth.problems(waiting: 12, oldestWaitingSeconds: 3, liveWorkers: 0, dead: 0)
        #expect(problems == ["12 reports wait and no worker is live: start `tipline work`"])
        #expect(QueueHealth.problems(waiting: 1, oldestWaitingSeconds: 3, liveWorkers: 0, dead: 0)
            == ["1 report waits and no worker is live: start `tipline work`"])
        // A retry whose time has not come is not said to wait as if it were ready.
        #expect(QueueHealth.problems(waiting: 1, inBackoff: 1, oldestWaitingSeconds: nil, liveWorkers: 0, dead: 0)
            == ["1 report waits for a retry and no worker is live: start `tipline work`"])
        #expect(QueueHealth.problems(waiting: 5, inBackoff: 2, oldestWaitingSeconds: 3, liveWorkers: 0, dead: 0)
            == ["5 reports wait (2 of them for a retry) and no worker is live: start `tipline work`"])
    }

    @Test("a report waiting five minutes or more, even with workers live")
    func longWait() {
        let problems = QueueHealth.problems(waiting: 40, oldestWaitingSeconds: 432, liveWorkers: 3, dead: 0)
        #expect(problems == ["the oldest waiting report has waited 7m12s, over 5 minutes: more workers are needed, or they are stuck"])
        #expect(QueueHealth.problems(waiting: 40, oldestWaitingSeconds: 300, liveWorkers: 3, dead: 0).count == 1)
    }

    @Test("dead reports need an administrator until they are retried")
    func dead() {
        #expect(QueueHealth.problems(waiting: 0, oldestWaitingSeconds: nil, liveWorkers: 1, dead: 3)
            == ["3 dead reports (every attempt failed): see `tipline dead list`, queue again with `tipline dead retry`"])
    }

    @Test("reports held by a worker whose lease ran out a while ago, with no live worker or with live ones")
    func expiredLeases() {
        #expect(QueueHealth.problems(waiting: 0, oldestWaitingSeconds: nil, liveWorkers: 0, dead: 0, expiredLeases: 100)
            == ["100 reports are still held by a worker whose lease ran out a while ago: no worker is live to take them back; start `tipline work`"])
        #expect(QueueHealth.problems(waiting: 0, oldestWaitingSeconds: nil, liveWorkers: 2, dead: 0, expiredLeases: 1)
            == ["1 report is still held by a worker whose lease ran out a while ago: the live workers' heartbeats have not taken them back; check their logs"])
    }

    @Test("every problem at once, in a fixed order")
    func all() {
        let problems = QueueHealth.problems(waiting: 2, oldestWaitingSeconds: 8_000, liveWorkers: 0, dead: 1)
        #expect(problems.count == 3)
        #expect(problems[0].hasPrefix("2 reports wait") && problems[1].contains("2h13m") && problems[2].hasPrefix("1 dead report "))
    }

    @Test("durations read as seconds, minutes and hours")
    func durations() {
        #expect(QueueHealth.duration(45) == "45s")
        #expect(QueueHealth.duration(300) == "5m00s")
        #expect(QueueHealth.duration(3_599) == "59m59s")
        #expect(QueueHealth.duration(7_380) == "2h03m")
    }
}
